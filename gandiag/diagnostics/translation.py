"""Translation diagnostics: does a translator use its input, change it, keep its content? (docs/translation.md)

Three diagnostics here and one in :mod:`.steganography`; each applies when
the pipeline evaluated a translator (``ctx.translation``, a
:class:`~gandiag.translation.run.TranslationRun`: the first 256 inputs, their
outputs and reconstructions, the forward and inverse callables, the target
domain's first 256 real samples) and runs again on the inverse direction
(keys suffixed ``:b2a``). Distances are the translation measures' units:
mean |difference| of grey levels in [0, 1] per image (images larger than
64 pixels a side are area-averaged down to 64 first), Euclidean for points.
``div(S)`` below is the mean distance between two different samples of a
set S.

``input_ignored`` (translation collapse; ``none`` / ``partial`` / ``collapsed``):

- ``diversity``: ``div(outputs) ÷ div(target samples)`` (the inputs' when
  there is no target). Below ``DIVERSITY_BAD`` → collapsed, below
  ``DIVERSITY_WARN`` → partial.
- ``consistency``: the inputs translated again, in a shuffled order (so in
  other batches); ``mean d(G(x) now, G(x) before) ÷ div(outputs)``. An
  output drawn at random whatever the input gives ≈ 1; a deterministic,
  batch-independent translator 0. Above ``CONSISTENCY_BAD`` → collapsed,
  above ``CONSISTENCY_WARN`` → partial.
- ``dependence``: Spearman correlation, over all pairs (i, j) of inputs,
  between d(x_i, x_j) and d(G(x_i), G(x_j)) (a Mantel test; its null spread
  from ``PERMUTATIONS`` shuffles is reported). A translator that keeps the
  input's content keeps which inputs are alike; a target sample picked by a
  hash of the input, a function of it though it is, scores ≈ 0. Below
  ``DEPENDENCE_BAD`` → collapsed, below ``DEPENDENCE_WARN`` → partial.

``identity_mapping`` (``none`` / ``partial`` / ``identity``): ``change ÷
gap``, where ``change`` is mean d(G(x), x) (the measure ``change_l1``) and
``gap`` the mean distance from an input to its nearest target sample (how
far the input domain lies from the target domain). Below ``IDENTITY_BAD`` →
identity, below ``IDENTITY_WARN`` → partial. Not judged when the gap is no
larger than ``OVERLAP`` × the target samples' own nearest-neighbour distance
(the domains overlap: leaving an input as it is already lands in the
target) or when inputs and outputs differ in shape.

``content_preservation`` (``preserved`` / ``partial`` / ``lost``): the
measure ``label_preservation`` (a classifier trained on the target domain's
real features labels the outputs; the share labelled as their inputs were),
scaled between chance (the input labels' largest class share) and the
classifier's own ceiling: ``score = (value − chance) ÷ (ceiling − chance)``.
Below ``CONTENT_BAD`` → lost, below ``CONTENT_WARN`` → partial; classes
whose outputs are labelled as their input's class less than ``CLASS_FLIPPED``
times as often as held-out real samples of that class are (the class's own
ceiling) are listed. ``not_applicable``
without labels on both sides, or when the ceiling is within
``MIN_CEILING_MARGIN`` of chance.

Calibration (planted translators of tests/translators.py on the bundled
pairs, 200 inputs; the numbers are in docs/translation.md, "Diagnostics").
"""

from __future__ import annotations

import numpy as np
import torch

from . import INFO, NOT_APPLICABLE, fmt, judged, reason, run_parts

IGNORED_LEVELS = ("none", "partial", "collapsed")
IDENTITY_LEVELS = ("none", "partial", "identity")
CONTENT_LEVELS = ("preserved", "partial", "lost")

MAX_SIDE = 64  # images are area-averaged down to this many pixels a side before distances
DIVERSITY_WARN, DIVERSITY_BAD = 0.5, 0.1  # div(outputs) ÷ div(target)
CONSISTENCY_WARN, CONSISTENCY_BAD = 0.2, 0.5  # re-translation distance ÷ div(outputs)
DEPENDENCE_WARN, DEPENDENCE_BAD = 0.2, 0.1  # the larger of Spearman ρ and the neighbour score (chance: 0)
PERMUTATIONS = 20
NEIGHBOURS = 5  # nearest neighbours compared, input side vs output side
IDENTITY_WARN, IDENTITY_BAD = 0.5, 0.15  # change ÷ gap
OVERLAP = 1.0  # gap ≤ OVERLAP × the target's own nearest-neighbour distance: the domains overlap
CONTENT_WARN, CONTENT_BAD = 0.8, 0.4  # (accuracy − chance) ÷ (ceiling − chance)
CLASS_FLIPPED = 0.5  # a class whose outputs are labelled as it less than this × its own ceiling
MIN_CEILING_MARGIN = 0.1  # the classifier must beat chance by this much for the score to mean anything
MIN_SAMPLES = 8
SEED_OFFSET = 4141


def translation_of(ctx):
    return getattr(ctx, "translation", None)


def flat(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Samples as float64 rows in distance units: images in [0, 1] (at most MAX_SIDE a side), points as they are."""
    if kind == "images":
        x = x.detach().cpu().double() / 255.0
        if x.dim() == 4 and max(x.shape[2], x.shape[3]) > MAX_SIDE:
            x = torch.nn.functional.adaptive_avg_pool2d(x, (min(x.shape[2], MAX_SIDE), min(x.shape[3], MAX_SIDE)))
        return x.flatten(1)
    return x.detach().cpu().double().flatten(1)


def pairwise(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Distances between rows of ``flat`` samples: mean |difference| for images, Euclidean for points."""
    if kind == "images":
        return torch.cdist(a, b, p=1) / a.shape[1]
    return torch.cdist(a, b, p=2)


def rowwise(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "images":
        return (a - b).abs().mean(1)
    return (a - b).norm(dim=1)


def diversity(d: torch.Tensor) -> float:
    """Mean off-diagonal entry of a square distance matrix."""
    n = d.shape[0]
    return float(d.sum() / (n * (n - 1))) if n > 1 else 0.0


def _ranks(v: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(v)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def mantel(d_in: torch.Tensor, d_out: torch.Tensor, seed: int = 0, permutations: int = PERMUTATIONS) -> dict:
    """Spearman ρ between the upper triangles of two distance matrices, with its null spread under shuffles."""
    n = d_in.shape[0]
    iu = np.triu_indices(n, 1)
    din, dout = d_in.numpy(), d_out.numpy()
    r_in = _ranks(din[iu])
    rho = _corr(r_in, _ranks(dout[iu]))
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(permutations):
        p = rng.permutation(n)
        null.append(_corr(r_in, _ranks(dout[p][:, p][iu])))
    return {"rho": rho, "null_mean": float(np.mean(null)), "null_std": float(np.std(null)), "pairs": int(len(r_in))}


def _level(value: float, warn: float, bad: float, levels: tuple, low_is_bad: bool = True) -> str | None:
    if low_is_bad:
        return levels[2] if value < bad else levels[1] if value < warn else None
    return levels[2] if value > bad else levels[1] if value > warn else None


def _finish(levels: tuple, parts: dict, errors: dict, seconds: dict, **extra) -> dict:
    """:func:`~gandiag.diagnostics.judged`, with the levels said (the report colours verdicts by them)."""
    return judged(levels, parts, errors, seconds, levels=list(levels), **extra)


def not_applicable(name: str, levels: tuple, why: str) -> dict:
    return {"verdict": NOT_APPLICABLE, "levels": list(levels), "reasons": [reason(name, INFO, f"not judged: {why}")]}


# ----------------------------------------------------------------------------- input_ignored


class InputIgnored:
    name = "input_ignored"
    levels = IGNORED_LEVELS
    description = ("translation collapse: output diversity against the target domain's, outputs that do not follow "
                   "their input when translated again, input distances kept → none/partial/collapsed")

    def applies(self, ctx) -> bool:
        return translation_of(ctx) is not None

    def run(self, ctx) -> dict:
        return input_ignored(translation_of(ctx), seed=int(getattr(ctx, "seed", 0) or 0))


def input_ignored(run, seed: int = 0) -> dict:
    """The ``input_ignored`` diagnostic on a TranslationRun; usable from a notebook."""
    name = InputIgnored.name
    if run.outputs is None or run.inputs is None or len(run.outputs) < MIN_SAMPLES:
        return not_applicable(name, IGNORED_LEVELS, f"fewer than {MIN_SAMPLES} translated samples kept")
    x, y = run.inputs, run.outputs
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    fy = flat(y, run.kind)
    d_out = pairwise(fy, fy, run.kind)
    parts, errors, seconds = run_parts([
        ("diversity", lambda: _diversity(run, d_out, x)),
        ("consistency", lambda: _consistency(run, x, fy, d_out, seed)),
        ("dependence", lambda: _dependence(run, x, d_out, seed)),
    ])
    return _finish(IGNORED_LEVELS, parts, errors, seconds, n=int(n))


def _diversity(run, d_out: torch.Tensor, x: torch.Tensor) -> dict:
    t = run.target_samples
    against = "target samples"
    if t is None or tuple(t.shape[1:]) != tuple(run.outputs.shape[1:]) or len(t) < 2:
        t, against = x, "inputs"
        if tuple(t.shape[1:]) != tuple(run.outputs.shape[1:]):
            return {"reasons": [reason("diversity", INFO, "output diversity not judged: no target samples of the "
                                       "outputs' shape to compare with")]}
    ft = flat(t, run.kind)
    div_out, div_ref = diversity(d_out), diversity(pairwise(ft, ft, run.kind))
    ratio = div_out / div_ref if div_ref > 0 else float("nan")
    out = {"output_diversity": div_out, "reference_diversity": div_ref, "reference": against, "ratio": ratio}
    text = (f"outputs are {fmt(ratio)}× as far apart as {against} (mean pairwise distance {fmt(div_out)} vs "
            f"{fmt(div_ref)})")
    lvl = _level(ratio, DIVERSITY_WARN, DIVERSITY_BAD, IGNORED_LEVELS) if np.isfinite(ratio) else None
    out["reasons"] = [reason("diversity", lvl or INFO, text, ratio,
                             DIVERSITY_BAD if lvl == IGNORED_LEVELS[2] else DIVERSITY_WARN)]
    return out


def _consistency(run, x: torch.Tensor, fy: torch.Tensor, d_out: torch.Tensor, seed: int) -> dict:
    g = torch.Generator().manual_seed(int(seed) + SEED_OFFSET)
    perm = torch.randperm(len(x), generator=g)
    again = run.forward(x[perm])
    if tuple(again.shape) != tuple(run.outputs[perm].shape):
        raise ValueError(f"translating the inputs again gave shape {tuple(again.shape)}, not "
                         f"{tuple(run.outputs[:len(x)].shape)}")
    moved = float(rowwise(flat(again, run.kind), fy[perm], run.kind).mean())
    div_out = diversity(d_out)
    gap = moved / div_out if div_out > 0 else (0.0 if moved == 0 else float("inf"))
    out = {"retranslation_distance": moved, "output_diversity": div_out, "ratio": gap}
    lvl = _level(gap, CONSISTENCY_WARN, CONSISTENCY_BAD, IGNORED_LEVELS, low_is_bad=False)
    if lvl:
        text = (f"the same inputs translated again (shuffled, in other batches) land {fmt(gap)}× as far from their "
                f"first outputs as outputs of different inputs are from each other: the output does not follow "
                f"the input")
        out["reasons"] = [reason("consistency", lvl, text, gap,
                                 CONSISTENCY_BAD if lvl == IGNORED_LEVELS[2] else CONSISTENCY_WARN)]
    else:
        out["reasons"] = [reason("consistency", INFO, f"the same inputs translated again in other batches land "
                                 f"{fmt(gap)}× as far from their first outputs as different inputs' outputs lie "
                                 "from each other", gap, CONSISTENCY_WARN)]
    return out


def neighbours(d_in: torch.Tensor, d_out: torch.Tensor, k: int = NEIGHBOURS) -> dict:
    """Share of each input's k nearest inputs that are among its output's k nearest outputs, above chance."""
    n = d_in.shape[0]
    k = max(1, min(k, n - 2))
    eye = torch.eye(n, dtype=torch.bool)
    nx = d_in.masked_fill(eye, float("inf")).topk(k, largest=False).indices
    ny = d_out.masked_fill(eye, float("inf")).topk(k, largest=False).indices
    hit = (nx[:, :, None] == ny[:, None, :]).any(2).double().mean()
    chance = k / (n - 1)
    return {"k": k, "overlap": float(hit), "chance": chance, "score": float((hit - chance) / (1 - chance))}


def _dependence(run, x: torch.Tensor, d_out: torch.Tensor, seed: int) -> dict:
    fx = flat(x, run.kind)
    d_in = pairwise(fx, fx, run.kind)
    if float(d_in.max()) == 0:
        return {"reasons": [reason("dependence", INFO, "input dependence not judged: the inputs are all equal")]}
    out = mantel(d_in, d_out, seed)
    out["neighbours"] = neighbours(d_in, d_out)
    rho, nb = out["rho"], out["neighbours"]["score"]
    out["score"] = score = max(rho, nb)
    lvl = _level(score, DEPENDENCE_WARN, DEPENDENCE_BAD, IGNORED_LEVELS)
    text = (f"distances between outputs follow distances between their inputs with Spearman ρ = {fmt(rho)} "
            f"(shuffled pairs: {fmt(out['null_mean'])} ± {fmt(out['null_std'])}), and an input's "
            f"{out['neighbours']['k']} nearest inputs are among its output's nearest outputs "
            f"{out['neighbours']['overlap']:.0%} of the time (chance {out['neighbours']['chance']:.0%})")
    if float(d_out.max()) == 0:
        text = "every output is the same: distances between inputs do not show in the outputs at all"
    out["reasons"] = [reason("dependence", lvl, text + ": the output barely depends on which input it came from",
                             score, DEPENDENCE_BAD if lvl == IGNORED_LEVELS[2] else DEPENDENCE_WARN)] if lvl else \
        [reason("dependence", INFO, text, score, DEPENDENCE_WARN)]
    return out


# ----------------------------------------------------------------------------- identity_mapping


class IdentityMapping:
    name = "identity_mapping"
    levels = IDENTITY_LEVELS
    description = "identity mapping: how much a translator changes its inputs against how far the target domain lies"

    def applies(self, ctx) -> bool:
        return translation_of(ctx) is not None

    def run(self, ctx) -> dict:
        return identity_mapping(translation_of(ctx))


def identity_mapping(run) -> dict:
    """The ``identity_mapping`` diagnostic on a TranslationRun; usable from a notebook."""
    name = IdentityMapping.name
    x, y, t = run.inputs, run.outputs, run.target_samples
    if x is None or y is None or len(y) < MIN_SAMPLES:
        return not_applicable(name, IDENTITY_LEVELS, f"fewer than {MIN_SAMPLES} translated samples kept")
    if tuple(x.shape[1:]) != tuple(y.shape[1:]):
        return not_applicable(name, IDENTITY_LEVELS, f"inputs of shape {tuple(x.shape[1:])} and outputs of shape "
                              f"{tuple(y.shape[1:])} cannot be compared")
    if t is None or tuple(t.shape[1:]) != tuple(x.shape[1:]) or len(t) < 2:
        return not_applicable(name, IDENTITY_LEVELS, "no target samples of the inputs' shape to measure how far "
                              "the target domain lies")
    parts, errors, seconds = run_parts([("change", lambda: _identity(run.kind, x[:len(y)], y[:len(x)], t))])
    return _finish(IDENTITY_LEVELS, parts, errors, seconds)


def _identity(kind: str, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> dict:
    fx, fy, ft = flat(x, kind), flat(y, kind), flat(t, kind)
    change = float(rowwise(fy, fx, kind).mean())
    d_xt = pairwise(fx, ft, kind)
    gap = float(d_xt.min(1).values.mean())
    d_tt = pairwise(ft, ft, kind)
    d_tt.fill_diagonal_(float("inf"))
    own = float(d_tt.min(1).values.mean())
    d_yt = pairwise(fy, ft, kind).min(1).values
    closer = float((rowwise(fy, fx, kind) < d_yt).double().mean())
    out = {"change": change, "domain_gap": gap, "target_nn_distance": own, "ratio": change / gap if gap > 0 else None,
           "closer_to_input_fraction": closer}
    if gap <= OVERLAP * own:
        out["reasons"] = [reason("change", INFO, f"identity not judged: inputs lie {fmt(gap)} from their nearest target "
                                 f"sample, no farther than target samples from each other ({fmt(own)}): the domains "
                                 "overlap", gap, OVERLAP * own)]
        return out
    ratio = change / gap
    lvl = _level(ratio, IDENTITY_WARN, IDENTITY_BAD, IDENTITY_LEVELS)
    text = (f"outputs moved {fmt(change)} from their inputs, {fmt(ratio)}× the distance from an input to the nearest "
            f"target sample ({fmt(gap)}); {closer:.0%} of outputs are closer to their input than to any target sample")
    out["reasons"] = [reason("change", lvl or INFO, text, ratio,
                             IDENTITY_BAD if lvl == IDENTITY_LEVELS[2] else IDENTITY_WARN)]
    return out


# ----------------------------------------------------------------------------- content_preservation


class ContentPreservation:
    name = "content_preservation"
    levels = CONTENT_LEVELS
    description = ("content preservation: outputs labelled as their inputs by a target-domain classifier, between "
                   "chance and its ceiling → preserved/partial/lost")

    def applies(self, ctx) -> bool:
        return translation_of(ctx) is not None

    def run(self, ctx) -> dict:
        return content_preservation(translation_of(ctx))


def content_preservation(run) -> dict:
    """The ``content_preservation`` diagnostic on a TranslationRun (reads ``run.measures['label_preservation']``)."""
    name = ContentPreservation.name
    if run.input_labels is None or run.target_labels is None:
        side = "inputs" if run.input_labels is None else "target domain"
        return not_applicable(name, CONTENT_LEVELS, f"the {side} carry no labels")
    entry = (run.measures or {}).get("label_preservation")
    if not isinstance(entry, dict):
        return not_applicable(name, CONTENT_LEVELS, "label preservation was not measured (it needs the target "
                              "domain's real samples and features with a pool role)")
    if entry.get("value") is None:
        return not_applicable(name, CONTENT_LEVELS, entry.get("not_applicable") or "label preservation has no value")
    parts, errors, seconds = run_parts([("labels", lambda: _content(entry, run.input_labels))])
    return _finish(CONTENT_LEVELS, parts, errors, seconds)


def _flipped(entry: dict) -> bool:
    """A class labelled as itself less than CLASS_FLIPPED times as often as held-out real samples of it are."""
    accuracy, ceiling = entry.get("accuracy"), entry.get("ceiling")
    if accuracy is None:
        return False
    return accuracy < CLASS_FLIPPED * (ceiling if ceiling is not None else 1.0)


def _content(entry: dict, input_labels) -> dict:
    value, ceiling = float(entry["value"]), entry.get("ceiling")
    labels = np.asarray(input_labels)[:int(entry.get("n") or len(input_labels))]
    _, counts = np.unique(labels, return_counts=True)
    chance = float(counts.max() / counts.sum())
    ceiling = float(ceiling) if ceiling is not None else 1.0
    per_class = entry.get("per_class") or {}
    flipped = sorted((c for c, v in per_class.items() if _flipped(v)), key=lambda c: (len(c), c))
    out = {"accuracy": value, "ceiling": ceiling, "chance": chance, "flipped_classes": flipped}
    if ceiling - chance < MIN_CEILING_MARGIN:
        out["score"] = None
        out["reasons"] = [reason("labels", INFO, f"content not judged: the target-domain classifier scores "
                                 f"{fmt(ceiling)} on real data, within {MIN_CEILING_MARGIN:g} of chance "
                                 f"({fmt(chance)})", ceiling - chance, MIN_CEILING_MARGIN)]
        return out
    score = (value - chance) / (ceiling - chance)
    out["score"] = score
    lvl = _level(score, CONTENT_WARN, CONTENT_BAD, CONTENT_LEVELS)
    text = (f"{value:.0%} of outputs are labelled as their inputs (chance {chance:.0%}, the classifier's ceiling "
            f"{ceiling:.0%}): {fmt(score)} of the way from chance to the ceiling")
    if flipped:
        text += f"; classes mostly changed: {', '.join(flipped[:10])}"
    out["reasons"] = [reason("labels", lvl or INFO, text, score,
                             CONTENT_BAD if lvl == CONTENT_LEVELS[2] else CONTENT_WARN)]
    return out
