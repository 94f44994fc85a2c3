"""TensorFlow imported before PyTorch's triton: keep triton out rather than crash the process.

In a notebook that runs ``import tensorflow`` before gandiag loads a ``.pt2``
program, loading that program imports ``torch._dynamo``, which imports triton,
whose native library ``libtriton.so`` then dies with SIGSEGV while it starts:
its bundled LLVM's static initialisers (``PassBuilder.cpp``: the
``llvm::DebugCounter`` registry) run against the same-named LLVM globals that
TensorFlow's libraries brought in first (a different LLVM build, a different
layout) and ``free()`` a pointer that is not theirs. Loaded in the other order
both work, which is why :func:`gandiag.export.tensorflow.import_tensorflow`
loads triton first.

Once TensorFlow is in, nothing can make triton loadable in that process, so
gandiag marks it as missing (``sys.modules["triton"] = None``): torch then
takes triton as not installed, the way it runs on any machine without it
(gandiag evaluates on CPU or with eager CUDA kernels and needs no triton).
"""

from __future__ import annotations

import importlib.util
import logging
import sys


def keep_triton_out_after_tensorflow() -> bool:
    """Mark triton as not installed when TensorFlow is loaded and triton is not yet; True when it did so."""
    if "tensorflow" not in sys.modules or "triton" in sys.modules:
        return False  # no TensorFlow, or triton already loaded (first, the safe order) or already kept out
    try:
        if importlib.util.find_spec("triton") is None:
            return False
    except (ImportError, ValueError):
        return False
    sys.modules["triton"] = None  # "import triton" raises ImportError: torch's has_triton() is False
    # torch's one warning about it ("triton not found; flop counting will not work...") is of gandiag's making
    logging.getLogger("torch.utils.flop_counter").setLevel(logging.ERROR)
    return True
