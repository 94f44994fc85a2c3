"""Fuzzed real-feature cache entries (gandiag/features/cache.py): edited arrays, mutated bytes, other .npz
files and unusable cache folders give the no-cache numbers, with a warning when the entry was invalid.

Contract and settings: tests/fuzz_support.py. Unit tests of each check, a hit and the key per weights file:
tests/test_feature_cache.py.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (Blob, _one_thread, _quiet, apply_mutations, env, fuzz, genuine_npz,  # noqa: E402,F401
                          mutations, nothing_left_behind, npz_files, ring_points, scratch)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


CACHE_EVAL = dict(feature_extractor="digits", metrics=["fid", "kid", "precision", "recall"], diagnostics=False,
                  device="cpu", kid_subsets=5, kid_subset_size=30, batch_size=128)


@pytest.fixture(scope="module")
def digits_fake(tmp_path_factory):
    """Real data (120 digits, a .npz read by the path source) and 60 'generated' digits (noisy copies), and the
    no-cache numbers. Small, so that recomputing after a damaged entry is cheap."""
    from sklearn.datasets import load_digits

    from gandiag.pipeline import evaluate

    d = tmp_path_factory.mktemp("cachefake")
    imgs = np.rint(load_digits().images[:180] * (255 / 16)).astype(np.uint8)[:, None]
    np.savez(d / "real.npz", images=imgs[:120])
    noisy = imgs[120:].astype(int) + np.random.default_rng(0).integers(-30, 30, imgs[120:].shape)
    np.savez(d / "fake.npz", images=np.clip(noisy, 0, 255).astype(np.uint8))
    ref = evaluate(d / "fake.npz", str(d / "real.npz"), use_cache=False, **CACHE_EVAL)
    return (d / "fake.npz", str(d / "real.npz")), {k: v["value"] for k, v in ref.metrics.items()}


def _values(res) -> dict:
    return {k: v["value"] for k, v in res.metrics.items()}


def _same_numbers(got: dict, want: dict) -> bool:
    return got.keys() == want.keys() and all(
        math.isclose(got[k], want[k], rel_tol=1e-6, abs_tol=1e-9) for k in want)


def _evaluate_capturing(paths):
    """evaluate() with the cache on; (results, the warnings it gave: results.warnings + Python warnings)."""
    from gandiag.pipeline import evaluate

    fake, real = paths
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = evaluate(fake, real, use_cache=True, **CACHE_EVAL)
    # numpy leaks a ResourceWarning on a bad zip, whose text names the (cache) file: not a warning to the user
    return res, list(res.warnings) + [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _semantic_cache_edit(arrays: dict, data) -> tuple:
    """An invalid entry of the kinds the cache must catch: NaN, wrong shapes, wrong counts, inconsistent sums.

    Returns (arrays, whether a warning is due when they differ from the original). Edits that leave the
    features and their statistics consistent but different (a deliberate forgery) are not made: only a
    signature could catch those, and the cache is not a security boundary."""
    arrays = dict(arrays)
    feats = sorted(k for k in arrays if k.startswith("features_"))
    key = data.draw(st.sampled_from(sorted(arrays)), label="array")
    how = data.draw(st.sampled_from(["nan", "inf", "drop_rows", "drop_cols", "transpose", "flatten", "sum_off",
                                     "outer_off", "delete", "dtype", "labels", "empty"]), label="edit")
    a = np.array(arrays[key])
    if how == "nan" and a.size and a.dtype.kind == "f":
        a.flat[data.draw(st.integers(0, a.size - 1), label="at")] = np.nan
    elif how == "inf" and a.size and a.dtype.kind == "f":
        a.flat[0] = np.inf
    elif how == "drop_rows" and a.ndim >= 1 and len(a) > 1:
        a = a[: data.draw(st.integers(0, len(a) - 1), label="rows")]
    elif how == "drop_cols" and a.ndim == 2 and a.shape[1] > 1:
        a = a[:, 1:]
    elif how == "transpose" and a.ndim == 2:
        a = a.T.copy()
    elif how == "flatten":
        a = a.reshape(-1)
    elif how == "sum_off" and feats:
        k = data.draw(st.sampled_from([k for k in arrays if k.startswith("sum_")] or [key]), label="sum")
        key, a = k, np.array(arrays[k]) * 1.5 + 1.0
    elif how == "outer_off":
        k = data.draw(st.sampled_from([k for k in arrays if k.startswith("outer_")] or [key]), label="outer")
        key, a = k, np.array(arrays[k]) * 2.0
    elif how == "delete":
        del arrays[key]
        return arrays, key.startswith("features_")  # stats can be recomputed from the features: no warning needed
    elif how == "dtype" and a.dtype.kind in "fiub":  # a number array (the checksum string has no number form)
        a = a.astype(data.draw(st.sampled_from(["float16", "int8", "complex64", "bool", "<U2"]), label="dtype"))
    elif how == "labels":
        arrays["labels"] = data.draw(hnp.arrays(np.int64, data.draw(st.integers(0, 5), label="n labels")), label="lab")
        return arrays, True
    elif how == "empty" and a.ndim >= 1:
        a = a[:0]
    else:
        a = a * 2 + 1 if a.dtype.kind in "fiu" else a
    arrays[key] = a
    return arrays, True


@pytest.fixture(scope="module")
def cache_entry(tmp_path_factory, digits_fake):
    """The genuine cache entry an evaluation writes: (path relative to the cache folder, bytes, arrays)."""
    fake, want = digits_fake
    d = tmp_path_factory.mktemp("cache")
    with env(GANDIAG_CACHE_DIR=d):
        res, _ = _evaluate_capturing(fake)  # writes the entry
        assert _same_numbers(_values(res), want), "a fresh cache entry changed the numbers"
        res, _ = _evaluate_capturing(fake)  # reads it
        assert res.provenance["timings_s"].get("real_features_cached"), "the entry was not used"
        assert _same_numbers(_values(res), want), "a genuine cache hit changed the numbers"
    entries = sorted(d.rglob("*.npz"))
    assert len(entries) == 1, f"expected one cache entry, found {entries}"
    with np.load(entries[0]) as z:
        arrays = {k: z[k] for k in z.files}
    return entries[0].relative_to(d), Blob(entries[0].read_bytes()), arrays


def _check_damaged_entry(base, digits_fake, cache_entry, blob: bytes, warning_due: bool):
    """Put ``blob`` where the entry was, evaluate: the no-cache numbers, and a warning when ``warning_due``."""
    fake, want = digits_fake
    rel, original, _ = cache_entry
    with scratch(base) as d, env(GANDIAG_CACHE_DIR=d / "cache"):
        entry = d / "cache" / rel
        entry.parent.mkdir(parents=True)
        entry.write_bytes(blob)
        with nothing_left_behind(d, allowed=[entry]):
            res, said = _evaluate_capturing(fake)
        assert _same_numbers(_values(res), want), \
            f"a damaged cache entry was trusted: {_values(res)} != no-cache {want}"
        if warning_due and blob != original:
            assert any("cache" in w.lower() for w in said), \
                f"an invalid cache entry was recomputed without a warning (warnings: {said})"


@pytest.mark.slow
@fuzz(8, shrink=False)
@given(data=st.data(), level=st.sampled_from(["semantic", "semantic", "bytes", "random_npz"]))
def test_cache_entry_fuzzed(tmp_path, digits_fake, cache_entry, genuine_npz, data, level):
    """The cache entry of the real features replaced by a damaged one (edited arrays, mutated bytes, another
    .npz): the evaluation gives the no-cache numbers, with a warning when the entry was invalid."""
    _, original, arrays = cache_entry
    if level == "semantic":
        edited, warn_due = _semantic_cache_edit(arrays, data)
        buf = io.BytesIO()
        np.savez(buf, **edited)
        blob, warn_due = buf.getvalue(), warn_due and not _same_arrays(arrays, edited)
    elif level == "bytes":
        blob = apply_mutations(original, data.draw(mutations(), label="ops"))
        warn_due = _unreadable(blob)  # a flip that still reads may or may not be caught; the numbers must hold
    else:
        blob, warn_due = data.draw(npz_files(genuine_npz), label="npz"), True
    _check_damaged_entry(tmp_path, digits_fake, cache_entry, blob, warn_due)


def _npz_of(arrays: dict, **changes) -> bytes:
    arrays = dict(arrays)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k, None)
        else:
            arrays[k] = v
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _with_nan(a):
    a = np.array(a)
    a.flat[0] = np.nan
    return a


CACHE_EDGES = {
    "garbage bytes": lambda a, b: b"garbage",
    "truncated": lambda a, b: b[: len(b) // 2],
    "empty npz": lambda a, b: _npz_of({}),
    "NaN in features_pool": lambda a, b: _npz_of(a, features_pool=_with_nan(a["features_pool"])),
    "NaN in sum_pool": lambda a, b: _npz_of(a, sum_pool=_with_nan(a["sum_pool"])),
    "sum_pool inconsistent": lambda a, b: _npz_of(a, sum_pool=a["sum_pool"] * 1.5 + 1),
    "outer_pool inconsistent": lambda a, b: _npz_of(a, outer_pool=a["outer_pool"] * 2),
    "features_pool one column short": lambda a, b: _npz_of(a, features_pool=a["features_pool"][:, 1:]),
    "features_pool transposed": lambda a, b: _npz_of(a, features_pool=a["features_pool"].T.copy()),
    "features_pool flattened": lambda a, b: _npz_of(a, features_pool=a["features_pool"].reshape(-1)),
    "features_pool half the rows": lambda a, b: _npz_of(a, features_pool=a["features_pool"][::2].copy()),
    "features_logits half the rows": lambda a, b: _npz_of(a, features_logits=a["features_logits"][:20]),
    "features_pool missing": lambda a, b: _npz_of(a, features_pool=None),
    "features_pool as int8": lambda a, b: _npz_of(a, features_pool=a["features_pool"].astype(np.int8)),
    "features_pool as float16": lambda a, b: _npz_of(a, features_pool=a["features_pool"].astype(np.float16)),
    "labels of the wrong length": lambda a, b: _npz_of(a, labels=np.arange(3)),
}


@pytest.mark.parametrize("name", sorted(CACHE_EDGES))
def test_cache_entry_edge_cases(tmp_path, digits_fake, cache_entry, name):
    """Hand-picked damaged entries: the no-cache numbers, and a warning that the entry was ignored."""
    _, original, arrays = cache_entry
    _check_damaged_entry(tmp_path, digits_fake, cache_entry, CACHE_EDGES[name](arrays, original), True)


def _same_arrays(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            return False
    return True


def _unreadable(blob: bytes) -> bool:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            for k in z.files:
                z[k]
        return False
    except Exception:
        return True


@pytest.mark.parametrize("how", ["dir_is_file", "under_a_file", "features_is_file", "entry_is_dir", "proc"])
def test_cache_dir_unusable(tmp_path, digits_fake, cache_entry, how):
    """A cache folder that is a file, sits under a file, or cannot be created: a warning and no cache, the same
    numbers, never a failure."""
    fake, want = digits_fake
    cache = tmp_path / "cache"
    if how == "dir_is_file":
        cache.write_text("not a folder")
    elif how == "under_a_file":
        (tmp_path / "file").write_text("x")
        cache = tmp_path / "file" / "cache"
    elif how == "features_is_file":
        cache.mkdir()
        (cache / "features").write_text("x")
    elif how == "entry_is_dir":
        (cache / cache_entry[0]).mkdir(parents=True)
    else:
        cache = Path("/proc/gandiag-fuzz-cache")  # nobody, root included, can create it
    with env(GANDIAG_CACHE_DIR=cache), nothing_left_behind(tmp_path):
        res, said = _evaluate_capturing(fake)
    assert _same_numbers(_values(res), want)
    assert any("cache" in w.lower() for w in said), f"an unusable cache gave no warning (warnings: {said})"
