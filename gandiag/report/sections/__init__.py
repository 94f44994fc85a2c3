"""The built-in report sections, one class per section, in one module per group; registered as a default plugin.

- :mod:`.summary`: metrics, verdicts and gates (``Summary``), runs side by side (``Comparison``);
- :mod:`.samples`: the sample grid, a row per class (``SampleGrid``);
- :mod:`.translation`: translators only: inputs, outputs and their way back, the translation measures, label
  preservation and the translation verdicts, per direction (``Translation``);
- :mod:`.sequences`: sequences only: trajectories per channel and class (``Trajectories``), temporal health
  with autocorrelation curves (``TemporalHealthSection``), shift/scale copies (``SequenceShapes``);
- :mod:`.features`: the feature-space projection (``FeatureSpace``), near-duplicate pairs (``Duplicates``);
- :mod:`.memorization`: generated samples beside their nearest training sample, with the memorization verdict
  (``NearestReal``);
- :mod:`.modes`: mixture modes and class shares with the verdict's calls (``Modes``), NDB bins (``NDBBins``);
- :mod:`.training`: gradient health and per-layer norms (``GradientNorms``), log.jsonl curves (``TrainingCurves``);
- :mod:`.provenance`: how the numbers were made (``Provenance``);
- :mod:`.common`: the ``Section`` base and the helpers that read diagnostics.

Each reads what it needs from a :class:`~gandiag.report.RunView` (results,
diagnostics, artifacts) and tolerates anything missing. Whatever a verdict
judged (a missing class, a missed mode, a severity) is shown as the
diagnostic wrote it, never re-derived; colours come from the diagnostic's
declared levels (:mod:`gandiag.report.severity`).
"""

from __future__ import annotations

from ..severity import tone
from .common import Section, find_diag, find_signal, first, fmt, number_list, reason_items, reasons, scalars
from .features import Duplicates, FeatureSpace
from .memorization import NearestReal
from .modes import Modes, NDBBins
from .provenance import Provenance, flatten
from .samples import SampleGrid
from .sequences import SequenceShapes, TemporalHealthSection, Trajectories
from .summary import Comparison, Summary
from .translation import Translation
from .training import GradientNorms, TrainingCurves, curve_series, read_training_log, training_log_path

BUILTIN_SECTIONS = (Summary, Translation, SampleGrid, Trajectories, FeatureSpace, Modes, TemporalHealthSection, NDBBins,
                    Duplicates, SequenceShapes, NearestReal, GradientNorms, TrainingCurves, Provenance, Comparison)

__all__ = ["BUILTIN_SECTIONS", "Section", "tone", "fmt", "first", "scalars", "number_list", "find_diag", "find_signal",
           "reasons", "reason_items", "flatten", "curve_series", "read_training_log", "training_log_path",
           "Summary", "SampleGrid", "FeatureSpace", "Modes", "NDBBins", "Duplicates", "NearestReal", "GradientNorms",
           "TrainingCurves", "Provenance", "Comparison", "Trajectories", "TemporalHealthSection", "SequenceShapes",
           "Translation"]
