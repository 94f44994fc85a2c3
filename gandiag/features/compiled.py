"""Compiled feature extractors: ``torch.compile`` when a run is long enough to pay for the compilation.

Measured on the 2-core development machine (torch 2.14.1, torch-fidelity's
Inception-v3, batches of 32): eager 7.4 images/s; compiled with inductor and
**freezing** (weights folded into the graph as constants, which lets
inductor pre-pack them for its convolution kernels) 15.6 images/s, features
within 2e-6 absolute of eager's. Compiling costs ~67 s the first time and
~25 s once inductor's on-disk cache holds the graph (``TORCHINDUCTOR_CACHE_DIR``,
by default under the system's temporary folder). At 0.07 s saved per image,
compilation pays for itself from about 1,000 images cold (350 warm), hence
the CPU rule: compile when the run extracts at least ``COMPILE_FROM["cpu"]``
images (generated plus real). On a GPU the network already runs thousands
of images a second and no measurement here says compilation pays, so it is
off unless ``--compile`` asks for it.

A compiled extractor sees one batch shape only (``dynamic=False``: a
shape-specialised graph is the fast one): a smaller last batch is padded
to the compiled size with zeros and the padding's features dropped. If
compilation fails (no C++ compiler on the machine, an operator inductor
cannot lower), the run goes on eagerly with a warning; the results record
whether the features came from a compiled network (``provenance.compute``).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import torch

COMPILE_FROM = {"cpu": 1000}  # images per run from which compiling is the default, by device type


def decide(requested: Optional[bool], n_images: int, device: str, extractor) -> tuple:
    """(compile?, why): ``--compile``/``--no-compile`` win; otherwise the device's rule above."""
    if not hasattr(extractor, "compile"):
        return False, f"{extractor.name} has no compiled form"
    if requested is not None:
        return bool(requested), "--compile" if requested else "--no-compile"
    kind = torch.device(device).type
    threshold = COMPILE_FROM.get(kind)
    if threshold is None:
        return False, f"not the default on {kind} (no measurement says it pays); --compile asks for it"
    if n_images < threshold:
        return False, f"{n_images:,} images < {threshold:,}: compiling would cost more than it saves"
    return True, f"{n_images:,} images >= {threshold:,}"


class CompiledCall:
    """A network's forward compiled for one batch size, padding smaller batches; eager again if compiling fails."""

    def __init__(self, net: torch.nn.Module, device: str, warn: Callable[[str], None]):
        options = {"freezing": True} if torch.device(device).type == "cpu" else {}
        self.eager, self.warn = net, warn
        self.compiled = torch.compile(net, dynamic=False, options=options)
        self.batch: Optional[int] = None
        self.failed: Optional[str] = None
        self.first_call_s: Optional[float] = None  # compilation plus one batch: what compiling cost this run

    def __call__(self, x: torch.Tensor):
        if self.failed is not None:
            return self.eager(x)
        n = x.shape[0]
        if self.batch is None:
            self.batch = n
        if n > self.batch:
            parts = [self(x[i : i + self.batch]) for i in range(0, n, self.batch)]
            return tuple(torch.cat(p) for p in zip(*parts))
        padded = x if n == self.batch else torch.cat([x, x.new_zeros((self.batch - n, *x.shape[1:]))])
        t0 = time.perf_counter()
        try:
            out = self.compiled(padded)
            if self.first_call_s is None:
                self.first_call_s = round(time.perf_counter() - t0, 3)
        except Exception as exc:  # the backend, not the data: the eager network gives the same features
            self.failed = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            self.warn(f"compiling the feature extractor failed ({self.failed}); running it without compilation")
            return self.eager(x)
        return tuple(t[:n] for t in out)


def apply(extractors: list, requested: Optional[bool], n_images: int, device: str, warn) -> dict:
    """Compile the extractors the rule picks; {extractor name: {"compiled": bool, "why": str}} for provenance."""
    out = {}
    for e in extractors:
        use, why = decide(requested, n_images, device, e)
        if use:
            e.compile(warn)
        out[e.name] = {"compiled": use, "why": why}
    return out


def state(extractors: list, decided: dict) -> dict:
    """What actually ran: a compilation that failed and fell back to eager is recorded as not compiled."""
    out = {}
    for e in extractors:
        entry = dict(decided.get(e.name, {"compiled": False, "why": "not decided"}))
        call = getattr(e, "compiled_call", None)
        failed = getattr(call, "failed", None)
        if entry["compiled"] and failed:
            entry.update(compiled=False, why=f"compilation failed, ran eagerly: {failed}")
        elif entry["compiled"] and getattr(call, "first_call_s", None) is not None:
            entry["first_batch_s"] = call.first_call_s  # compiling plus the first batch
        out[e.name] = entry
    return out
