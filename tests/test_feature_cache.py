"""The real-feature cache (gandiag/features/cache.py): a hit is used and changes nothing, every weights file
has its own entries, and a damaged entry is never trusted.

Damage already covered elsewhere, not repeated here: NaN features, a column cut, inconsistent float64 sums and
outer products, a flipped byte (tests/test_boundary.py, end to end); garbage, truncated, empty, transposed,
flattened, half-row, missing-role and wrong-dtype entries with a stale checksum, and unusable cache folders
(tests/test_fuzz_cache.py). Added here: each check of :func:`cache.validate` that those never reach, on an
entry whose checksum is consistent with its damaged content (so only that check can catch it), and the
checksum check itself on intact content.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gandiag.features import cache

ARGS = ["--real", "digits", "--metrics", "fid,kid,precision,recall", "--kid-subsets", "10", "--no-diagnostics",
        "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """200 bundled digits as the 'generated' images: the digits extractor has weights, so real features are cached."""
    from sklearn.datasets import load_digits

    p = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(p, images=np.rint(load_digits().images[:200] * 255 / 16).astype(np.uint8))
    return p


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANDIAG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "features"


def evaluate(tmp_path, target, *extra) -> dict:
    """`gandiag evaluate` in-process; the results JSON."""
    from gandiag.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    out = tmp_path / f"r{len(list(tmp_path.glob('r*.json')))}.json"
    res = CliRunner().invoke(cli, ["evaluate", str(target), *ARGS, *map(str, extra), "--json", str(out)])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


def values(doc: dict) -> dict:
    return {k: (m["value"], m.get("std")) for k, m in doc["metrics"].items()}


def cached(doc: dict) -> bool:
    return bool(doc["provenance"]["timings_s"].get("real_features_cached"))


@pytest.fixture
def images_seen(monkeypatch):
    """Counts the images the digits extractor is given (generated and real alike)."""
    from gandiag.features.digits import DigitsExtractor

    seen = []
    call = DigitsExtractor.__call__

    def counting(self, batch):
        seen.append(int(batch.shape[0]))
        return call(self, batch)

    monkeypatch.setattr(DigitsExtractor, "__call__", counting)
    return seen


# ----------------------------------------------------------------------------- a hit


def test_second_evaluation_reads_the_cache_and_gives_identical_numbers(tmp_path, cache_dir, digits_npz, images_seen):
    first = evaluate(tmp_path, digits_npz)
    assert not cached(first) and len(list(cache_dir.glob("*.npz"))) == 1  # a miss, then written
    n_fake, n_real = first["provenance"]["num_samples"], first["real"]["n"]
    assert sum(images_seen) == n_fake + n_real
    images_seen.clear()
    second = evaluate(tmp_path, digits_npz)
    assert cached(second)
    assert sum(images_seen) == n_fake  # the real images were not run through the extractor again
    assert values(second) == values(first)  # identical, not close: the entry holds the same float32 features
    assert len(list(cache_dir.glob("*.npz"))) == 1 and second["warnings"] == first["warnings"]


def test_no_cache_neither_reads_nor_writes(tmp_path, cache_dir, digits_npz):
    evaluate(tmp_path, digits_npz)  # an entry exists
    entry = next(cache_dir.glob("*.npz"))
    stamp = entry.stat().st_mtime_ns
    doc = evaluate(tmp_path, digits_npz, "--no-cache")
    assert not cached(doc) and list(cache_dir.glob("*.npz")) == [entry] and entry.stat().st_mtime_ns == stamp


# ----------------------------------------------------------------------------- one key per weights file


def test_key_changes_with_each_part():
    base = cache.feature_key("c" * 64, "digits", "w" * 64)
    assert len(base) == 32 and base == cache.feature_key("c" * 64, "digits", "w" * 64)
    others = [cache.feature_key("d" * 64, "digits", "w" * 64), cache.feature_key("c" * 64, "inception-v3", "w" * 64),
              cache.feature_key("c" * 64, "digits", "x" * 64), cache.feature_key("c" * 64, "digits", None)]
    assert len({base, *others}) == 5


def _weights_with_one_value_changed(path: Path) -> Path:
    from gandiag.features.digits import DEFAULT_WEIGHTS

    state = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 2)
    state[name] = state[name].clone()
    state[name].view(-1)[0] += 0.5
    torch.save(state, path)
    return path


def test_two_weights_files_never_share_an_entry(tmp_path, cache_dir, digits_npz):
    from gandiag.features.digits import DEFAULT_WEIGHTS

    shipped = evaluate(tmp_path, digits_npz)
    changed_path = _weights_with_one_value_changed(tmp_path / "changed.pt")
    changed = evaluate(tmp_path, digits_npz, "--feature-weights", changed_path)
    # the shipped weights' entry was not used for the changed weights: a miss, a second entry, other numbers
    assert not cached(changed) and len(list(cache_dir.glob("*.npz"))) == 2
    sha = lambda doc: doc["provenance"]["extractor"]["weights_sha256"]  # noqa: E731
    assert sha(changed) != sha(shipped)
    assert values(changed) != values(shipped)
    again = evaluate(tmp_path, digits_npz, "--feature-weights", changed_path)  # its own entry, now a hit
    assert cached(again) and values(again) == values(changed)
    # the key is the weights' content, not their path: an identical copy elsewhere reads the shipped entry
    copy = shutil.copy(DEFAULT_WEIGHTS, tmp_path / "copy.pt")
    same = evaluate(tmp_path, digits_npz, "--feature-weights", copy)
    assert cached(same) and values(same) == values(shipped) and len(list(cache_dir.glob("*.npz"))) == 2


# ----------------------------------------------------------------------------- damaged entries


@pytest.fixture(scope="module")
def genuine_entry(tmp_path_factory, digits_npz):
    """(arrays of the entry an evaluation wrote, its n, the extractor's roles)."""
    from gandiag.features.digits import DigitsExtractor

    d = tmp_path_factory.mktemp("entry")
    old = os.environ.get("GANDIAG_CACHE_DIR")
    os.environ["GANDIAG_CACHE_DIR"] = str(d / "cache")
    try:
        doc = evaluate(d, digits_npz)
    finally:
        if old is None:
            os.environ.pop("GANDIAG_CACHE_DIR")
        else:
            os.environ["GANDIAG_CACHE_DIR"] = old
    (entry,) = (d / "cache" / "features").glob("*.npz")
    with np.load(entry) as z:
        arrays = {k: z[k] for k in z.files}
    assert {"features_pool", "features_logits", "sum_pool", "outer_pool", "checksum"} <= set(arrays)
    return arrays, doc["real"]["n"], dict(DigitsExtractor.roles)


def _consistent(arrays: dict) -> dict:
    """The arrays with a checksum recomputed over them: only the content checks can catch the damage."""
    arrays = {k: v for k, v in arrays.items() if k != "checksum"}
    arrays["checksum"] = np.array(cache._checksum(arrays))
    return arrays


def _set(**changes):
    def edit(a):
        a = dict(a)
        for k, v in changes.items():
            if v is None:
                a.pop(k)
            else:
                a[k] = v(a) if callable(v) else v
        return _consistent(a)
    return edit


def _inf(a):
    x = a["features_logits"].copy()
    x[3, 2] = np.inf
    return x


DAMAGE = {  # name: (edit of the genuine arrays, words of the InvalidEntry message)
    "checksum of other content": (lambda a: {**a, "checksum": np.array("0" * 64)}, "checksum does not match"),
    "no checksum": (lambda a: {k: v for k, v in a.items() if k != "checksum"}, "checksum does not match"),
    "checksum not a scalar": (lambda a: {**a, "checksum": np.array([str(a["checksum"])])}, "checksum does not match"),
    "Inf in logits": (_set(features_logits=_inf), "NaN or Inf"),
    "one sample fewer": (_set(features_pool=lambda a: a["features_pool"][:-1].copy(),
                              features_logits=lambda a: a["features_logits"][:-1].copy(),
                              sum_pool=lambda a: a["features_pool"][:-1].astype(np.float64).sum(0)), "are not"),
    "logits as float64": (_set(features_logits=lambda a: a["features_logits"].astype(np.float64)), "float32"),
    "a role the extractor does not give": (_set(features_extra=lambda a: a["features_logits"].copy()),
                                           "roles this extractor does not give (extra)"),
    "sum_pool missing": (_set(sum_pool=None), "missing or misshapen"),
    "outer_pool as float32": (_set(outer_pool=lambda a: a["outer_pool"].astype(np.float32)), "missing or misshapen"),
    "outer_pool not symmetric": (_set(outer_pool=lambda a: a["outer_pool"] + np.triu(np.ones_like(a["outer_pool"]), 1)),
                                 "outer products"),
    "NaN off the diagonal of outer_pool": (_set(outer_pool=lambda a: np.where(np.eye(len(a["sum_pool"])) > 0,
                                                                              a["outer_pool"], np.nan)), "disagree"),
    "negative label": (_set(labels=lambda a: np.full(len(a["features_pool"]), -1, np.int64)), "labels"),
    "labels of another length": (_set(labels=lambda a: np.zeros(len(a["features_pool"]) + 1, np.int64)), "labels"),
    "float labels": (_set(labels=lambda a: np.zeros(len(a["features_pool"]), np.float64)), "labels"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_validate_refuses_each_kind_of_damage(genuine_entry, name):
    arrays, n, roles = genuine_entry
    cache.validate(dict(arrays), n, roles)  # the genuine entry passes
    edit, words = DAMAGE[name]
    with pytest.raises(cache.InvalidEntry, match=words.replace("(", r"\(").replace(")", r"\)")):
        cache.validate(edit(arrays), n, roles)


def test_an_entry_for_another_sample_count_is_refused(genuine_entry):
    arrays, n, roles = genuine_entry
    with pytest.raises(cache.InvalidEntry, match=f"not {n + 1} x"):
        cache.validate(dict(arrays), n + 1, roles)


@pytest.mark.parametrize("name", ["checksum of other content", "a role the extractor does not give",
                                  "negative label"])
def test_damaged_entry_end_to_end_is_recomputed_with_a_warning(tmp_path, cache_dir, digits_npz, name):
    """Kinds test_boundary.py does not run end to end: a warning naming the check, the clean numbers, a rewritten
    entry that the next run reads without a warning."""
    clean = evaluate(tmp_path, digits_npz)
    (entry,) = cache_dir.glob("*.npz")
    with np.load(entry) as z:
        arrays = {k: z[k] for k in z.files}
    edit, words = DAMAGE[name]
    np.savez(entry, **edit(arrays))
    again = evaluate(tmp_path, digits_npz)
    assert not cached(again)
    assert [w for w in again["warnings"] if "cache entry" in w and words in w], again["warnings"]
    assert values(again) == values(clean)
    third = evaluate(tmp_path, digits_npz)
    assert cached(third) and not [w for w in third["warnings"] if "cache" in w]
