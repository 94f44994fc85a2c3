"""Built-in diagnostics: ``mode_collapse``, ``gradient_health`` and ``temporal_health`` (docs/diagnostics.md)."""

from gandiag import hookimpl

from ..diagnostics.gradient_health import GradientHealth
from ..diagnostics.mode_collapse import ModeCollapse
from ..diagnostics.temporal_health import TemporalHealth


@hookimpl(trylast=True)
def register_diagnostics(register):
    register(ModeCollapse())
    register(GradientHealth())
    register(TemporalHealth())
