"""Budgets: named limits on what a file or a flag can make gandiag allocate.

A 4 MB ``.npz`` can declare a 4 GB array, 144 KB of PNGs can decode to 3.5 GB
of pixels, and ``-n 1000000000000`` asks for terabytes of features. Every such
size is checked against a budget *before* the allocation, and a refusal is a
:class:`BudgetError` (exit 2) that names the limit and how to raise it. The
defaults are far above any real evaluation (50,000 images of 1024x1024, a
2048-d feature space) and far below what would take a 24 GB machine down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import GandiagError


class BudgetError(GandiagError):
    """An input or a flag asks for more than a budget allows."""


@dataclass(frozen=True)
class Budget:
    name: str  # what is limited, as the message says it
    env: str  # the environment variable that raises it
    default: int
    unit: str = ""  # "bytes" prints with a binary suffix
    flag: str = ""  # the command-line flag whose value is limited, when there is one

    @property
    def value(self) -> int:
        raw = os.environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default
        try:
            v = parse_size(raw)
        except ValueError:
            raise BudgetError(f"{self.env}={raw!r} is not a number (e.g. 1000000, 4G)") from None
        if v <= 0:
            raise BudgetError(f"{self.env}={raw!r} must be positive")
        return v

    def check(self, amount: int, what: str) -> None:
        """Raise BudgetError when ``amount`` exceeds this budget; ``what`` says whose amount it is."""
        limit = self.value
        if amount > limit:
            raise BudgetError(f"{what}: {self.fmt(amount)} exceeds the limit of {self.fmt(limit)} {self.name} "
                              f"({self.how_to_raise()})")

    def how_to_raise(self) -> str:
        return f"set {self.env} to raise it"

    def fmt(self, n: int) -> str:
        return format_bytes(n) if self.unit == "bytes" else f"{n:,}"


_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'4G', '512M', '1e6', '1000000' → an int (K/M/G/T are binary)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = _SUFFIX.get(t[-1:], None) if t and t[-1].isalpha() else 1
    if mult is None:
        raise ValueError(text)
    if t and t[-1].isalpha():
        t = t[:-1]
    return int(float(t) * mult)


def format_bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


# The budgets. Defaults are documented in docs/security.md.
IMAGE_PIXELS = Budget("pixels per image", "GANDIAG_MAX_IMAGE_PIXELS", 1 << 26)  # 8192 x 8192
TOTAL_PIXELS = Budget("pixels per image set", "GANDIAG_MAX_TOTAL_PIXELS", 1 << 36)  # ~68.7e9: 50k at 1024x1024 x 1.3
ARRAY_BYTES = Budget("per array", "GANDIAG_MAX_ARRAY_BYTES", 8 << 30, unit="bytes")
BATCH_SIZE = Budget("samples per batch", "GANDIAG_MAX_BATCH_SIZE", 65_536, flag="--batch-size")
# -n, and the sample count (first dimension, from the header) of a samples .npz/.npy: --real, --train-data, the
# evaluated file (gandiag.data.samples)
NUM_SAMPLES = Budget("samples", "GANDIAG_MAX_SAMPLES", 10_000_000, flag="-n/--num-samples")
LATENT_SIZE = Budget("latent values per sample", "GANDIAG_MAX_LATENT_SIZE", 1 << 16, flag="--latent-dim")
# each resample recomputes FID and PRDC on up to 5,000 rows a set (measured on a 2-core CPU: 0.45 s for 2-d points,
# ~20 s for 2048-d features; a GPU is far faster); 1,000-2,000 resamples already give a stable 95% interval, so
# the limit refuses only counts no evaluation needs
BOOTSTRAP = Budget("bootstrap resamples", "GANDIAG_MAX_BOOTSTRAP", 10_000, flag="--bootstrap")
CLASSES = Budget("classes", "GANDIAG_MAX_CLASSES", 100_000, flag="--num-classes")
FEATURE_DIM = Budget("feature dimensions", "GANDIAG_MAX_FEATURE_DIM", 16_384)
TEXT_FILE_BYTES = Budget("per text input (JSON, TOML, log)", "GANDIAG_MAX_TEXT_BYTES", 256 << 20, unit="bytes")
ARCHIVE_BYTES = Budget("uncompressed per archive", "GANDIAG_MAX_ARCHIVE_BYTES", 16 << 30, unit="bytes")
ARCHIVE_MEMBERS = Budget("members per archive", "GANDIAG_MAX_ARCHIVE_MEMBERS", 100_000)
NESTING = 200  # JSON/TOML nesting depth; deeper documents are refused (Python's parsers recurse)


def _half_ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class _MemoryBudget(Budget):
    """Estimated memory: by default half of this machine's RAM."""

    @property
    def value(self) -> int:
        if not os.environ.get(self.env, "").strip():
            return _half_ram()
        return Budget.value.fget(self)


MEMORY = _MemoryBudget("of estimated memory", "GANDIAG_MAX_MEMORY", 0, unit="bytes")  # default: half the RAM


def check_flag(budget: Budget, value: int) -> None:
    """A flag's value against its budget; the message names the flag."""
    budget.check(int(value), f"{budget.flag} {value:,}" if budget.flag else f"{value:,}")


EXTERNAL_DATA_BYTES = Budget("of external tensor data per model", "GANDIAG_MAX_EXTERNAL_DATA_BYTES", 16 << 30,
                             unit="bytes")  # ONNX tensors stored beside the model
