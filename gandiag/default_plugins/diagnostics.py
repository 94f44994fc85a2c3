"""Built-in diagnostics: ``mode_collapse``, ``memorization``, ``gradient_health``, ``temporal_health`` and, for
translators, ``input_ignored``, ``identity_mapping``, ``content_preservation`` and ``steganographic_cycle``
(docs/diagnostics.md, docs/translation.md)."""

from gandiag import hookimpl

from ..diagnostics.gradient_health import GradientHealth
from ..diagnostics.memorization import Memorization
from ..diagnostics.mode_collapse import ModeCollapse
from ..diagnostics.steganography import SteganographicCycle
from ..diagnostics.temporal_health import TemporalHealth
from ..diagnostics.translation import ContentPreservation, IdentityMapping, InputIgnored


@hookimpl(trylast=True)
def register_diagnostics(register):
    register(ModeCollapse())
    register(Memorization())
    register(GradientHealth())
    register(TemporalHealth())
    register(InputIgnored())
    register(IdentityMapping())
    register(ContentPreservation())
    register(SteganographicCycle())
