"""Built-in diagnostics: ``mode_collapse`` and ``gradient_health`` (docs/diagnostics.md)."""

from gandiag import hookimpl

from ..diagnostics.gradient_health import GradientHealth
from ..diagnostics.mode_collapse import ModeCollapse


@hookimpl(trylast=True)
def register_diagnostics(register):
    register(ModeCollapse())
    register(GradientHealth())
