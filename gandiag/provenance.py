"""Stage 6 of an evaluation: the results, with the provenance that makes a number reproducible and comparable.

Versions, plugins, device, seed, N, every extractor with its weights' sha256,
the metric options and numerics gates compare, the real data's content hash and
seconds per stage (docs/results-schema.md).
"""

from __future__ import annotations

import datetime
import platform
from typing import Optional

import numpy as np
import torch

from . import __version__
from .plugins import plugin_versions
from .results import Results


def make_results(ctx, tgt, real, diagnostics: dict, timings: dict, world: int) -> Results:
    """Stage 6: the results, with the provenance that makes a number reproducible and comparable."""
    results = Results(
        metrics=ctx.metrics,
        generator=tgt.info,
        contract=tgt.contract.to_json() if tgt.contract else None,
        real=_real_info(real),
        provenance=provenance(ctx, tgt.n, timings, world),
        diagnostics=diagnostics,
        warnings=list(dict.fromkeys(ctx.warnings)),  # once each, however many feature spaces raised it
    )
    results.extras.update(context=ctx)
    return results


def _real_info(real) -> Optional[dict]:
    if real is None:
        return None
    if real.statistics is not None:  # external statistics: their file's sha256 is what gates compare
        return {"source": real.spec, "n": None, "description": real.statistics.description,
                "content_sha256": real.content_sha256, "statistics": real.statistics.to_json()}
    return {"source": real.spec, "n": real.samples.n, "description": getattr(real.samples, "description", real.spec),
            "content_sha256": real.content_sha256}


def provenance(ctx, n: int, timings: dict, world: int) -> dict:
    opts, extractor, device = ctx.options, ctx.extractor, ctx.options.device
    shown_device = device
    if device.startswith("cuda"):
        shown_device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "gandiag_version": __version__, "torch_version": torch.__version__, "numpy_version": np.__version__,
        "python_version": platform.python_version(), "plugins": plugin_versions(),
        "device": shown_device, "seed": opts.seed, "num_samples": n, "batch_size": opts.batch_size,
        "world_size": world,
        "extractor": _extractor_info(extractor),  # the primary one: plain metric keys are on its features
        "extractors": [_extractor_info(e) for e in ctx.extractors],
        "metric_options": opts.comparable(), "compute": compute_settings(ctx.numerics, ctx.compiled),
        **({"real_statistics": {**ctx.real_statistics.to_json(), "assumed_extractor": _extractor_info(extractor)}}
           if ctx.real_statistics is not None else {}),
        "timings_s": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in timings.items()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _extractor_info(e) -> dict:
    return {"name": e.name, "weights_sha256": e.weights_sha256, "preprocessing": e.preprocessing}


def compute_settings(numerics: str, compiled: Optional[dict] = None) -> dict:
    """The numerics in force (gates compare ``precision``), and which extractors ran compiled and why."""
    compiled = compiled or {}
    return {"precision": numerics, "compile": any(c.get("compiled") for c in compiled.values()),
            "compiled_extractors": compiled}
