"""The report's pictures of an evaluation, saved beside its results JSON.

The results JSON holds numbers only. A report made later from a saved file
(``gandiag report out.json``) also wants a few samples and a picture of the
feature space, so ``evaluate --json out.json`` writes a small sidecar
``out.artifacts.npz`` (plain arrays, no pickles) and records it in the JSON
under ``provenance.artifacts`` as ``{"path": <relative to the JSON>,
"sha256": ...}``. A report checks the hash and, when the file is missing or
differs, says so instead of showing pictures of another run.

Arrays (any may be absent):

- ``kind``: "images", "points" or "sequences";
- ``fake_samples`` / ``fake_labels``: kept generated samples (≤ 64 images,
  uint8 NCHW, ≤ 2,000 points, or ≤ 64 sequences, float32 (N, T, C)) and their
  class (the conditional label, else the classifier's prediction where an
  extractor of the run classifies);
- ``real_samples``: a few real samples (same caps); ``real_labels``: their
  classes, where the real data has labels (sequences);
- ``shape_pair_a`` / ``shape_pair_b`` / ``shape_pair_lag`` /
  ``shape_pair_circular`` / ``shape_pair_index``: sequences, the closest pairs
  of the mode-collapse ``shapes`` signal (the pair's two generated sequences,
  the lag that aligns them, whether it is a roll, their indices);
- ``pca_real`` / ``pca_fake`` / ``pca_explained``: a 2-D PCA of the ``pool``
  features, fitted on the real set, ≤ 2,000 points per set;
- ``nn_fake_index`` / ``nn_real_samples`` / ``nn_distance`` / ``nn_real_scale``:
  for the first 16 kept generated images, their nearest real image in feature
  space, the distance, and the median nearest-neighbour distance among real
  features (the scale against which "very close" is judged);
- ``memo_fake_index`` / ``memo_train_samples`` / ``memo_distance`` /
  ``memo_copy_threshold``: when the ``memorization`` verdict judged the run,
  the kept generated images closest to a training image (their indices into
  ``fake_samples``), that training image, the distance, and the verdict's
  own copy threshold τ;
- ``class_counts_fake`` / ``class_counts_real``: class histograms;
- translators, per direction ``<d>`` (``a2b``; ``b2a`` when the inverse was
  evaluated too), from the run's :class:`~gandiag.translation.run.TranslationRun`:
  ``translation_<d>_inputs`` / ``_outputs`` / ``_reconstructions`` (the first
  16 images, or 256 points, in order: row i of each is one input, its
  translation and its way back; no reconstructions without an inverse),
  ``translation_<d>_input_labels`` (those inputs' classes, where the input
  domain has labels) and, for points, ``translation_<d>_targets`` (the first
  256 real samples of the target domain).
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..atomic import write_bytes
from ..errors import GandiagError
from ..safety.budgets import ARRAY_BYTES
from ..safety.files import read_bytes_limited

PCA_CAP = 2000
POINTS_CAP = 2000
IMAGES_CAP = 64
SEQUENCES_CAP = 64
NN_PAIRS = 16
MEMO_PAIRS = 8  # the kept generated images nearest a training image, shown beside it
TRANSLATION_IMAGES = 16  # input -> output -> reconstruction triples kept per direction
TRANSLATION_POINTS = 256  # points kept per direction (inputs, outputs, reconstructions, targets)
SUFFIX = ".artifacts.npz"


def artifacts_path(json_path) -> Path:
    p = Path(json_path)
    return p.with_name((p.name[: -len(".json")] if p.name.endswith(".json") else p.name) + SUFFIX)


def _cap_rows(x: np.ndarray, cap: int, seed: int) -> np.ndarray:
    if len(x) <= cap:
        return np.arange(len(x))
    return np.sort(np.random.default_rng(seed).choice(len(x), cap, replace=False))


def _real_rows(real_samples, index: np.ndarray) -> Optional[np.ndarray]:
    """Rows of a real sample set (in memory or a folder) as a numpy array."""
    data = getattr(real_samples, "data", None)
    if data is not None:
        return np.asarray(data[torch.as_tensor(index)])
    paths = getattr(real_samples, "paths", None)
    if paths is not None:
        from ..data.image_folders import _read_image

        ch = real_samples.sample_shape[0]
        return np.stack([_read_image(paths[int(i)], ch) for i in index])
    return None


def _pca(real: torch.Tensor, fake: torch.Tensor, seed: int) -> dict:
    r = real.double()[_cap_rows(real, PCA_CAP, seed)]
    f = fake.double()[_cap_rows(fake, PCA_CAP, seed + 1)]
    mu = r.mean(0)
    if r.shape[1] <= 2:  # already 2-D (mixtures): the coordinates themselves
        pr, pf = (r - mu), (f - mu)
        explained = np.array([1.0, 1.0][: r.shape[1]])
    else:
        _, s, vt = torch.linalg.svd(r - mu, full_matrices=False)
        comp = vt[:2].T
        pr, pf = (r - mu) @ comp, (f - mu) @ comp
        var = s**2
        explained = (var[:2] / var.sum()).numpy()
    return {"pca_real": pr.float().numpy(), "pca_fake": pf.float().numpy(), "pca_explained": np.asarray(explained)}


def _predicted(fs, n: Optional[int] = None) -> Optional[np.ndarray]:
    if "logits" not in fs.roles:
        return None
    lg = fs.features("logits")
    return lg[:n].argmax(1).numpy() if n is not None else lg.argmax(1).numpy()


def collect(results) -> dict:
    """The artifact arrays of an in-process evaluation (``results.extras["context"]``); {} without one."""
    ctx = results.extras.get("context")
    if ctx is None:
        return {}
    out: dict = {}
    kind = _kind(ctx)
    out["kind"] = np.array(kind)
    seed = int(ctx.seed)
    cap = {"points": POINTS_CAP, "sequences": SEQUENCES_CAP}.get(kind, IMAGES_CAP)
    if ctx.fake_kept is not None:
        kept = ctx.fake_kept.cpu()
        idx = _cap_rows(kept.numpy(), cap, seed) if kind == "points" else np.arange(min(cap, kept.shape[0]))
        out["fake_samples"] = kept.numpy()[idx]
        labels = None
        if ctx.fake_labels is not None and len(ctx.fake_labels) >= kept.shape[0]:
            labels = np.asarray(ctx.fake_labels)[: kept.shape[0]][idx]
        elif kind in ("images", "sequences"):
            pred = _predicted(_classifying(ctx) if kind == "sequences" else ctx.fake, kept.shape[0])
            labels = pred[idx] if pred is not None else None
        if labels is not None:
            out["fake_labels"] = labels.astype(np.int64)
        if kind == "sequences":
            out.update(_shape_pairs(results, kept))
    rs = ctx.real_samples
    if rs is not None and rs.n:
        ridx = _cap_rows(np.empty(rs.n), cap, seed + 2)
        rows = _real_rows(rs, ridx)
        if rows is not None:
            out["real_samples"] = rows
            if kind == "sequences" and getattr(rs, "labels", None) is not None:
                out["real_labels"] = np.asarray(rs.labels)[ridx].astype(np.int64)
    if ctx.real is not None and "pool" in ctx.real.roles and "pool" in ctx.fake.roles:
        out.update(_pca(ctx.real.features("pool"), ctx.fake.features("pool"), seed))
        if kind == "images" and "fake_samples" in out and rs is not None:
            out.update(_nearest_real(ctx, len(out["fake_samples"]), seed))
        if kind == "images" and "fake_samples" in out:
            out.update(_memorization_pairs(ctx, results, len(out["fake_samples"])))
    # Class histograms: conditional labels, else the classifier's predictions.
    k = None
    fake_cls = ctx.fake_labels if ctx.fake_labels is not None else _predicted(ctx.fake)
    real_cls = None
    if ctx.real is not None:
        real_cls = _predicted(ctx.real) if "logits" in ctx.real.roles else ctx.real.labels
    if fake_cls is not None or real_cls is not None:
        k = int(max([np.max(c) for c in (fake_cls, real_cls) if c is not None and len(c)] + [0])) + 1
        if fake_cls is not None:
            out["class_counts_fake"] = np.bincount(np.asarray(fake_cls, dtype=np.int64), minlength=k)
        if real_cls is not None:
            out["class_counts_real"] = np.bincount(np.asarray(real_cls, dtype=np.int64), minlength=k)
    out.update(_translation(ctx))
    return out


def _translation(ctx) -> dict:
    """A translator's kept inputs, outputs and reconstructions, per direction (``translation_<d>_*``)."""
    out: dict = {}
    back = getattr(ctx, "other_direction", None)
    for run in (getattr(ctx, "translation", None), getattr(back, "translation", None) if back is not None else None):
        if run is None or getattr(run, "inputs", None) is None or getattr(run, "outputs", None) is None:
            continue
        points = getattr(run, "kind", None) == "points"
        cap = TRANSLATION_POINTS if points else TRANSLATION_IMAGES
        prefix = f"translation_{run.direction}_"
        n = min(cap, len(run.inputs), len(run.outputs))
        out[prefix + "inputs"] = _numpy(run.inputs[:n])
        out[prefix + "outputs"] = _numpy(run.outputs[:n])
        rec = getattr(run, "reconstructions", None)
        if rec is not None and len(rec) >= n:
            out[prefix + "reconstructions"] = _numpy(rec[:n])
        labels = getattr(run, "input_labels", None)
        if labels is not None and len(labels) >= n and np.asarray(labels).dtype.kind in "iub":
            out[prefix + "input_labels"] = np.asarray(labels)[:n].astype(np.int64)
        targets = getattr(run, "target_samples", None)
        if points and targets is not None:
            out[prefix + "targets"] = _numpy(targets[:TRANSLATION_POINTS])
    return out


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _kind(ctx) -> str:
    """The run's sample kind: the contract's, else the real samples', else the kept samples' shape."""
    c = getattr(ctx, "contract", None)
    if c is not None and getattr(c, "kind", None):
        return str(c.kind)
    rs = getattr(ctx, "real_samples", None)
    if rs is not None and getattr(rs, "kind", None):
        return str(rs.kind)
    kept = ctx.fake_kept
    if kept is not None and kept.dim() == 3 and kept.is_floating_point():
        return "sequences"
    return "points" if kept is not None and kept.dim() == 2 else "images"


def _classifying(ctx):
    """The generated feature set of the run's first extractor with ``logits`` (the primary one first)."""
    sets = [ctx.fake] + [f for f, _ in (getattr(ctx, "features", None) or {}).values()]
    return next((f for f in sets if f is not None and "logits" in f.roles), ctx.fake)


def _shape_pairs(results, kept: torch.Tensor) -> dict:
    """The closest pairs the ``shapes`` signal named (sequences), when both sequences are among the kept ones."""
    mc = (results.diagnostics or {}).get("mode_collapse") if isinstance(results.diagnostics, dict) else None
    sig = ((mc or {}).get("signals") or {}).get("shapes") if isinstance(mc, dict) else None
    pairs = [p for p in (sig or {}).get("closest_pairs") or [] if isinstance(p, dict)
             and 0 <= int(p.get("i", -1)) < len(kept) and 0 <= int(p.get("j", -1)) < len(kept)]
    if not pairs:
        return {}
    i = np.array([int(p["i"]) for p in pairs])
    j = np.array([int(p["j"]) for p in pairs])
    return {"shape_pair_a": kept.numpy()[i], "shape_pair_b": kept.numpy()[j],
            "shape_pair_lag": np.array([int(p.get("lag", 0)) for p in pairs]),
            "shape_pair_circular": np.array([bool(p.get("circular")) for p in pairs]),
            "shape_pair_index": np.stack([i, j], axis=1)}


def _nearest_real(ctx, n_kept: int, seed: int) -> dict:
    from ..metrics.prdc import kth_nn_radii
    from ..metrics.screening import squared_distances

    real = ctx.real.features("pool").double()
    fake = ctx.fake.features("pool")[: min(NN_PAIRS, n_kept)].double()
    d2 = squared_distances(fake, real, (real * real).sum(1))
    dist, idx = d2.min(1)
    sub = real[_cap_rows(real, PCA_CAP, seed + 3)]
    scale = float(kth_nn_radii(sub, 1).median()) if sub.shape[0] > 1 else float("nan")
    rows = _real_rows(ctx.real_samples, idx.numpy())
    if rows is None:
        return {}
    return {"nn_fake_index": np.arange(fake.shape[0]), "nn_real_samples": rows,
            "nn_distance": dist.sqrt().numpy(), "nn_real_scale": np.array(scale)}


def _memorization_pairs(ctx, results, n_kept: int) -> dict:
    """The kept generated images nearest a training image, and that image, for the memorization section.

    The verdict's own closest pairs range over every sample, most of which
    are not kept; these pairs are the closest among the kept ones, read
    against the verdict's threshold τ (``memo_copy_threshold``).
    """
    from ..diagnostics.data_copying import nearest
    from ..diagnostics.memorization import training_set

    memo = (results.diagnostics or {}).get("memorization") if isinstance(results.diagnostics, dict) else None
    tau = ((memo or {}).get("copies") or {}).get("copy_threshold") if isinstance(memo, dict) else None
    if tau is None:
        return {}
    ts, _ = training_set(ctx)
    if ts is None:
        return {}
    dist, index = nearest(ctx.fake.features("pool")[:n_kept], ts.train)
    order = np.argsort(dist, kind="stable")[:MEMO_PAIRS]
    if ts.train_rows is not None:
        rows = _real_rows(ctx.real_samples, ts.train_rows[index[order]])
    else:
        rows = _real_rows(ctx.train_samples, index[order])
    if rows is None:
        return {}
    return {"memo_fake_index": order, "memo_train_samples": rows, "memo_distance": dist[order],
            "memo_copy_threshold": np.array(float(tau))}


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def artifacts_bytes(results, json_path) -> Optional[bytes]:
    """The sidecar's bytes, recorded in ``results.provenance["artifacts"]``; None without an in-process context.

    Call before the JSON is serialised so the JSON names the file.
    """
    arrays = collect(results)
    if not arrays:
        return None
    data = _npz_bytes(arrays)
    results.provenance["artifacts"] = {"path": artifacts_path(json_path).name,
                                       "sha256": hashlib.sha256(data).hexdigest(), "arrays": sorted(arrays)}
    return data


def save_artifacts(results, json_path) -> Optional[Path]:
    """Write ``<json>.artifacts.npz`` and record it in ``results.provenance["artifacts"]``.

    Call before ``results.save(json_path)`` so the JSON names the file. Does
    nothing (returns None) for results without an in-process context.
    """
    data = artifacts_bytes(results, json_path)
    if data is None:
        return None
    return write_bytes(artifacts_path(json_path), data, "artifacts")


def load_artifacts(json_path, results_json: dict) -> tuple[dict, Optional[str]]:
    """(arrays, None) for the sidecar a results JSON names, or ({}, why not)."""
    ref = (results_json.get("provenance") or {}).get("artifacts")
    if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
        return {}, "these results name no artifacts file (evaluate with --json to write one)"
    rel = Path(ref["path"])
    if rel.is_absolute() or ".." in rel.parts:
        return {}, f"artifacts path {ref['path']!r} is not a file beside the results; ignored"
    path = Path(json_path).parent / rel
    try:
        present = path.exists()
    except (OSError, ValueError):  # a name too long, a NUL
        return {}, f"artifacts path {ref['path'][:80]!r} is not a usable file name; ignored"
    if not present:
        return {}, f"artifacts file {path.name} is missing (it should sit beside the results JSON)"
    try:
        data = read_bytes_limited(path, "an artifacts file", budget=ARRAY_BYTES)
    except GandiagError as exc:
        return {}, f"artifacts file {path.name} cannot be read ({exc})"
    if hashlib.sha256(data).hexdigest() != ref.get("sha256"):
        return {}, f"artifacts file {path.name} does not match these results (sha256 differs); not shown"
    from ..safety.npz import read_npz_all

    try:  # the verified bytes, through the budgeted reader (each array's header checked before it is allocated)
        with tempfile.TemporaryDirectory(prefix="gandiag-artifacts-") as private:
            copy = Path(private) / "artifacts.npz"
            copy.write_bytes(data)
            return read_npz_all(copy), None
    except GandiagError as exc:
        return {}, f"artifacts file {path.name} cannot be read ({str(exc).replace(str(copy), path.name)})"
    except Exception as exc:  # a damaged file is reported, never trusted
        return {}, f"artifacts file {path.name} cannot be read ({exc})"
