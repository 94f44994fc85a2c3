"""gandiag: evaluation and diagnostics for generative adversarial networks.

From a notebook::

    import gandiag
    results = gandiag.evaluate("runs/dcgan/checkpoint.pt")
    results.metrics["fid"]["value"]
"""

__version__ = "0.1.0"


def evaluate(*args, **kwargs):
    """See :func:`gandiag.pipeline.evaluate`."""
    from .pipeline import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
