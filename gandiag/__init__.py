"""gandiag: evaluation and diagnostics for generative adversarial networks.

From a notebook::

    import gandiag
    results = gandiag.evaluate("runs/dcgan/checkpoint.pt")
    results.metrics["fid"]["value"]

A plugin imports everything it needs from here (docs/plugins.md)::

    from gandiag import hookimpl, LoadedGenerator, GeneratorContract

Names that would import torch are imported on first use, so ``import gandiag``
stays cheap.
"""

from .errors import (CheckpointError, DataError, FeatureExtractorError, GandiagError, GeneratorOutputError, PluginError,
                     UnknownNameError)

__version__ = "0.1.0"

# Public name -> the module that defines it, imported on first access (PEP 562).
_LAZY = {
    "hookimpl": "gandiag.hookspecs",
    # stage 1: the generator
    "GeneratorContract": "gandiag.generator.contract",
    "LoadedGenerator": "gandiag.generator.loading",
    "LoadOptions": "gandiag.generator.loading",
    # stage 2: samples
    "SampleSet": "gandiag.data.samples",
    # stage 3: features
    "ExtractorSpec": "gandiag.features.extractor",
    "FeatureExtractor": "gandiag.features.extractor",
    "FeatureSet": "gandiag.features.featureset",
    # stage 4: metrics
    "Metric": "gandiag.metrics",
    "MetricContext": "gandiag.metrics",
    "EvalOptions": "gandiag.options",
    # stage 5: diagnostics
    "EvalContext": "gandiag.pipeline",
    "reason": "gandiag.diagnostics",
    "MODE_LEVELS": "gandiag.diagnostics",
    "HEALTH_LEVELS": "gandiag.diagnostics",
    "INFO": "gandiag.diagnostics",
    "ERROR": "gandiag.diagnostics",
    "NOT_APPLICABLE": "gandiag.diagnostics",
    "FAILING_VERDICTS": "gandiag.diagnostics",
    # stage 6: results and the report
    "Results": "gandiag.results",
    "RunView": "gandiag.report",
    "ComparisonView": "gandiag.report",
    # any training loop: log, periodic verdicts, alarms (docs/monitor.md)
    "Monitor": "gandiag.monitor",
    "StopTraining": "gandiag.monitor",
}

__all__ = [
    "__version__", "evaluate", *_LAZY,
    "GandiagError", "CheckpointError", "GeneratorOutputError", "DataError", "FeatureExtractorError",
    "UnknownNameError", "PluginError",
]


def evaluate(*args, **kwargs):
    """See :func:`gandiag.pipeline.evaluate`."""
    from .pipeline import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gandiag' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
