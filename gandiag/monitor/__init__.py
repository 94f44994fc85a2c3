"""Watching training runs: :class:`Monitor` inside any loop, ``gandiag watch`` on any run folder (docs/monitor.md)."""

from .alarms import Alarm
from .core import Monitor, StopTraining

__all__ = ["Alarm", "Monitor", "StopTraining"]
