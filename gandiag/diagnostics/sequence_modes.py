"""Mode-collapse signals for sequences (kind ``sequences``, float (N, T, C)): copies, and copies up to a shift
or a scale.

Both read the raw sequences, not an extractor's features, so they judge any
sequences (the user's own, with no trained network) and do not depend on how
well a feature network sees time:

- ``duplicates`` (:data:`DUPLICATES`): near-identical sequences. Each channel
  is standardised by the real data's mean and standard deviation (so a
  gyroscope channel in rad/s and an accelerometer in g weigh alike), each
  sequence flattened to T·C numbers, and :func:`.duplicates.analyse` runs as
  for images: τ = the 5th percentile of the real nearest-neighbour distances,
  the pair rate of generated sequences closer than τ against the real rate,
  the birthday-paradox support. It takes the place of the feature-space
  ``duplicates`` signal for this kind (same key, same numbers, plus ``space``).
- ``shapes`` (:data:`SHAPES`): the per-step diversity the issue asks for,
  sequences that differ only by a time shift, an amplitude scale or an
  offset. The *shape distance* of two sequences is, over time lags ℓ (linear
  shifts up to ``MAX_LAG_FRACTION`` of T, the overlap z-scored per channel;
  and circular shifts of the whole z-scored sequence), the smallest
  √(2·(1 − ρ̄)), ρ̄ the mean per-channel Pearson correlation over the overlap:
  0 for a shifted, scaled and offset copy, √2 for unrelated ones. τ is the
  5th percentile of the real sequences' nearest shape distances, and the
  generated *shape-twin* pair rate is compared with the real one exactly as
  duplicates are. ``closest_pairs`` keep the lag that aligns them.

Both judge alike (:func:`judge_copies`): the share of generated sequences
that have a copy or a shape twin (``duplicate_share``, ``samples_with_twin``),
which does not grow with the sample size, above the real share by
``TWIN_PARTIAL`` → partial, by ``TWIN_SEVERE`` → severe; and, with at least
``MIN_REAL_FOR_RATE`` real sequences, the rule of :mod:`.duplicates` (≥
``MIN_PAIRS`` pairs and a rate over 10× the real one → partial, over 100× →
severe). docs/diagnostics.md has the calibration on planted generators. ``step_std_ratio`` (the median over steps
and channels of the across-sample standard deviation, generated ÷ real) is
reported as evidence: 0 when every sample is the same sequence.

:func:`is_sequences`, :func:`generated` and :func:`real` are shared with
:mod:`.temporal_health`.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..features.stats import one_cpu_thread
from . import duplicates, fmt, reason

KIND = "sequences"
MAX_SAMPLES = 2000  # generated and real sequences judged (the sequences kind keeps 2,000 for diagnostics)
SHAPE_SAMPLES = 500  # per side for the shape distance (all pairs at every lag)
SHAPE_BUDGET = 1.5e9  # pairs x values x lags: fewer samples for long sequences
MAX_LAG_FRACTION = 0.5  # linear shifts up to T/2 (the overlap is at least half the sequence)
MAX_LAGS = 24  # lag values per direction (and circular shifts / 2): longer sequences use a stride
Z_EPS = 1e-8  # a window whose std is below this (relative to the data's scale) is constant: z-scored to 0
TAU_QUANTILE = duplicates.TAU_QUANTILE
MIN_PAIRS = duplicates.MIN_PAIRS
RATIO_PARTIAL = duplicates.RATIO_PARTIAL
RATIO_SEVERE = duplicates.RATIO_SEVERE
TWIN_PARTIAL, TWIN_SEVERE = 0.35, 0.6  # share of generated sequences with a copy (or shape twin), above the real share
MIN_REAL_FOR_RATE = 200  # real sequences needed before the pair-rate ratio is judged
KEEP_PAIRS = 8
SEED_OFFSET = 3_571


# -- the samples ----------------------------------------------------------------------------------

def is_sequences(ctx) -> bool:
    """Whether the run's samples are sequences: the contract's kind, else the real samples' kind."""
    c = getattr(ctx, "contract", None)
    if c is not None and getattr(c, "kind", None):
        return c.kind == KIND
    rs = getattr(ctx, "real_samples", None)
    if rs is not None and getattr(rs, "kind", None):
        return rs.kind == KIND
    kept = getattr(ctx, "fake_kept", None)  # pre-generated samples, no real data: sequences are 3-d floats
    return kept is not None and kept.dim() == 3 and kept.is_floating_point()


def generated(ctx, n: int = MAX_SAMPLES) -> Optional[torch.Tensor]:
    """The kept generated sequences (the first ``n``), float64 (N, T, C)."""
    kept = ctx.fake_kept
    return None if kept is None or kept.dim() != 3 else kept[:n].double()


def real(ctx, n: int = MAX_SAMPLES) -> Optional[torch.Tensor]:
    """Up to ``n`` real sequences (a seeded subset when there are more), float64 (N, T, C); None without any."""
    rs = ctx.real_samples
    data = getattr(rs, "data", None) if rs is not None else None
    if data is None or getattr(rs, "kind", KIND) != KIND or data.dim() != 3 or not len(data):
        return None
    if len(data) > n:
        idx = np.sort(np.random.default_rng(int(ctx.seed) + SEED_OFFSET).choice(len(data), n, replace=False))
        data = data[torch.from_numpy(idx)]
    return data.double()


def _applies(ctx) -> bool:
    if not is_sequences(ctx):
        return False
    g, r = ctx.fake_kept, ctx.real_samples
    return (g is not None and g.dim() == 3 and len(g) >= 20 and r is not None and getattr(r, "data", None) is not None
            and r.n >= 20)


def standardise(real_x: torch.Tensor, fake_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets scaled per channel by the real data's mean and std (over samples and steps), flattened to (N, T·C)."""
    mu = real_x.mean((0, 1))
    sd = real_x.std((0, 1))
    sd = torch.where(sd > 0, sd, torch.ones_like(sd))
    return ((real_x - mu) / sd).reshape(len(real_x), -1), ((fake_x - mu) / sd).reshape(len(fake_x), -1)


def step_std_ratio(real_x: torch.Tensor, fake_x: torch.Tensor) -> Optional[float]:
    """Median over (step, channel) of the across-sample std, generated ÷ real (where the real one is not 0)."""
    if len(real_x) < 2 or len(fake_x) < 2 or real_x.shape[1:] != fake_x.shape[1:]:
        return None
    rs, fs = real_x.std(0), fake_x.std(0)
    ok = rs > 0
    return float((fs[ok] / rs[ok]).median()) if ok.any() else None


# -- duplicates on the raw sequences -------------------------------------------------------------

class _Duplicates:
    SIGNAL = "duplicates"

    def applies(self, ctx) -> bool:
        return _applies(ctx)

    def compute(self, ctx) -> dict:
        r, g = real(ctx), generated(ctx)
        return analyse_duplicates(*standardise(r, g), _copied(ctx, g))


def _copied(ctx, g: Optional[torch.Tensor]):
    """Which training sequence each kept generated one copies (or -1), judged on the features by memorization;
    None without a training set."""
    from .memorization import copied_training_rows

    if g is None or ctx.fake is None or "pool" not in ctx.fake.roles:
        return None
    return copied_training_rows(ctx, len(g))


def analyse_duplicates(real_flat: torch.Tensor, fake_flat: torch.Tensor, copied=None) -> dict:
    """:func:`.duplicates.analyse` on standardised sequences, judged by :func:`judge_copies` (twin share too).

    ``copied``: per generated row, the training sequence it copies or -1 (:func:`.memorization.copied_training_rows`):
    two copies of one training sequence are memorisation's, set apart as for images."""
    with one_cpu_thread():  # many small matrix operations: 50x faster than two threads under load
        out = duplicates.analyse(real_flat, fake_flat, copied)
        nn = duplicates.nearest_neighbour_distances(real_flat[:duplicates.MAX_SAMPLES])
    out["space"] = "sequences, each channel standardised by the real data's mean and std"
    out["duplicate_share"] = out["samples_with_duplicate"] / max(out["n_fake"], 1)
    out["real_duplicate_share"] = float((nn < out["tau"]).double().mean())
    text = (f"{out['duplicate_pairs']} near-duplicate pairs among {out['n_fake']} sequences, {fmt(out['rate_ratio'])}× "
            f"the real data's rate; {out['duplicate_share']:.0%} of generated sequences have a near-copy (real: "
            f"{out['real_duplicate_share']:.0%}); birthday-paradox support "
            f"{'≥ ' if out['support_is_lower_bound'] else '≈ '}{fmt(out['support_estimate'])}")
    if out.get("copy_pairs"):
        text += (f"; {out['copy_pairs']} more pairs are copies of one training sequence ({out['copies']} sequences "
                 "copy training ones): memorization's, not counted")
    out["reasons"] = judge_copies(DUPLICATES.SIGNAL, text, out["rate_ratio"], out["duplicate_pairs"],
                                  out["duplicate_share"] - out["real_duplicate_share"], out["n_real"])
    return out


# -- shapes: copies up to a shift, a scale and an offset -----------------------------------------

def _zscore(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Each sequence z-scored per channel over its steps, flattened and divided by √(steps·channels).

    Then ‖a − b‖² = 2·(1 − mean per-channel correlation); a constant channel becomes 0.
    """
    mu = x.mean(1, keepdim=True)
    sd = x.std(1, keepdim=True, unbiased=False)
    z = torch.where(sd > Z_EPS * scale, (x - mu) / sd.clamp_min(1e-300), torch.zeros_like(x))
    return z.reshape(len(x), -1) / math.sqrt(x.shape[1] * x.shape[2])


def lags(steps: int) -> tuple[list, list]:
    """(linear lags, circular shifts) compared: every lag up to T/2 for short sequences, a stride for long ones."""
    top = int(steps * MAX_LAG_FRACTION)
    stride = max(1, math.ceil(top / MAX_LAGS))
    linear = sorted(set(range(-top, top + 1, stride)) | {0})
    cstride = max(1, math.ceil(steps / (2 * MAX_LAGS)))
    circular = list(range(cstride, steps, cstride))
    return linear, circular


def shape_distances(x: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, lag) for every pair (x_i, x_j) of one set: the smallest shape distance over the lags, and the lag.

    Lag ℓ ≥ 0 compares x_i's steps ℓ.. with x_j's first T − ℓ steps (x_j runs ℓ steps behind), −ℓ the other
    way round; a circular shift r of x_j (x_j rolled by r steps) is coded ``T + r``. The matrix is symmetric in
    distance; the lag of (j, i) is the reverse of (i, j)'s.
    """
    x = x.double()
    n, steps = len(x), x.shape[1]
    linear, circular = lags(steps)
    best = torch.full((n, n), float("inf"), dtype=torch.float64)
    lag = torch.zeros((n, n), dtype=torch.int64)

    def take(d, code):
        better = d < best
        torch.minimum(best, d, out=best)
        lag.masked_fill_(better, code)

    def dist(a, b):  # rows of unit-ish norm: |a|² + |b|² − 2 a·b, as one matrix product
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return d2.clamp_min_(0.0).sqrt_()

    for s in (s for s in linear if s >= 0):
        d = dist(_zscore(x[:, s:], scale), _zscore(x[:, :steps - s], scale))
        take(d, s)
        if s:
            take(d.T, -s)
    z = _zscore(x, scale)
    z3 = z.reshape(n, steps, -1)
    for r in (r for r in circular if r <= steps // 2):
        d = dist(z, torch.roll(z3, r, dims=1).reshape(n, -1))
        take(d, steps + r)
        if r != steps - r:
            take(d.T, steps + (steps - r))
    return best, lag


def _shape_sample_count(steps: int, channels: int) -> int:
    linear, circular = lags(steps)
    n = int(math.sqrt(SHAPE_BUDGET / max(1, steps * channels * (len(linear) + len(circular)))))
    return max(50, min(SHAPE_SAMPLES, n))


def _pair_stats(d: torch.Tensor, tau: float) -> tuple[int, int, int]:
    """(pairs i < j closer than tau, all pairs, samples with such a neighbour) of a symmetric distance matrix."""
    n = d.shape[0]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    return int(((d < tau) & upper).sum()), n * (n - 1) // 2, int((_nearest(d) < tau).sum())


def analyse_shapes(real_x: torch.Tensor, fake_x: torch.Tensor, keep: int = KEEP_PAIRS, copied=None) -> dict:
    """The ``shapes`` signal on real and generated sequences (N, T, C): numbers, closest pairs and reasons.
    ``copied`` as for :func:`analyse_duplicates`: twins that copy one training sequence are set apart."""
    with one_cpu_thread():  # many small matrix operations: 50x faster than two threads under load
        return _analyse_shapes(real_x, fake_x, keep, copied)


def _copies_apart(d: torch.Tensor, copied, tau: float) -> tuple[torch.Tensor, int]:
    """``d`` with the pairs that copy one training sequence at infinity, and how many of them were closer than tau."""
    if copied is None:
        return d, 0
    same = torch.as_tensor(np.asarray(copied)[: d.shape[0]])
    both = (same[:, None] == same[None, :]) & (same[None, :] >= 0)
    both.fill_diagonal_(False)
    pairs = int(((d < tau) & both & torch.triu(torch.ones_like(both), 1)).sum())
    return d.masked_fill(both, float("inf")), pairs


def _analyse_shapes(real_x: torch.Tensor, fake_x: torch.Tensor, keep: int, copied=None) -> dict:
    steps, channels = real_x.shape[1], real_x.shape[2]
    m = _shape_sample_count(steps, channels)
    real_x, fake_x = real_x[:m].double(), fake_x[:m].double()
    scale = float(real_x.abs().max()) or 1.0
    dr, _ = shape_distances(real_x, scale)
    nn_real = _nearest(dr)
    tau = float(torch.quantile(nn_real, TAU_QUANTILE))
    pr, tr, real_with = _pair_stats(dr, tau)
    df, lf = shape_distances(fake_x, scale)
    df, copy_pairs = _copies_apart(df, copied, tau)
    pf, tf, fake_with = _pair_stats(df, tau)
    rate_f, rate_r = pf / tf if tf else 0.0, pr / tr if tr else 0.0
    ratio = rate_f / rate_r if pr else (rate_f * tr if pf else 0.0)
    sf = duplicates.support_estimate(pf, tf)
    linear, circular = lags(steps)
    out = {
        "tau": tau,
        "tau_quantile": TAU_QUANTILE,
        "n_fake": int(len(fake_x)),
        "n_real": int(len(real_x)),
        "max_lag": max(linear),
        "lag_stride": (linear[1] - linear[0]) if len(linear) > 1 else 1,
        "circular_shifts": len(circular),
        "shape_pairs": pf,
        "pair_rate": rate_f,
        "real_pair_rate": rate_r,
        "rate_ratio": ratio,
        "samples_with_twin": fake_with / len(fake_x),
        "real_samples_with_twin": real_with / len(real_x),
        "support_estimate": sf["support"],
        "support_is_lower_bound": sf["lower_bound"],
        "median_nearest": float(_nearest(df).median()),
        "real_median_nearest": float(nn_real.median()),
        "step_std_ratio": step_std_ratio(real_x, fake_x),
        "closest_pairs": closest(df, lf, steps, keep),
    }
    if copied is not None:
        out["copy_pairs"] = copy_pairs
    out["reasons"] = judge_shapes(out)
    return out


def _nearest(d: torch.Tensor) -> torch.Tensor:
    """Each sample's nearest other sample's distance, from a symmetric matrix."""
    d = d.clone()
    d.fill_diagonal_(float("inf"))
    return d.min(1).values


def closest(d: torch.Tensor, lag: torch.Tensor, steps: int, keep: int) -> list:
    """The ``keep`` closest pairs i < j: distance, and the lag that aligns j with i (``circular``: a roll of j)."""
    n = d.shape[0]
    if n < 2 or keep <= 0:
        return []
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    flat = torch.where(upper, d, torch.full_like(d, float("inf"))).flatten()
    vals, idx = torch.topk(flat, min(keep, n * (n - 1) // 2), largest=False)
    out = []
    for v, k in zip(vals.tolist(), idx.tolist()):
        i, j = divmod(k, n)
        code = int(lag[i, j])
        circ = code > steps
        out.append({"i": int(i), "j": int(j), "distance": round(float(v), 6),
                    "lag": code - steps if circ else code, "circular": circ})
    return out


class _Shapes:
    SIGNAL = "shapes"

    def applies(self, ctx) -> bool:
        return _applies(ctx) and ctx.fake_kept.shape[1] >= 4  # a shape needs a few steps

    def compute(self, ctx) -> dict:
        g = generated(ctx)
        return analyse_shapes(real(ctx), g, copied=_copied(ctx, g))


def judge_shapes(s: dict) -> list:
    text = (f"{s['shape_pairs']} pairs of sequences that differ only by a time shift, a scale or an offset (shape "
            f"distance < {fmt(s['tau'])}) among {s['n_fake']}, {fmt(s['rate_ratio'])}× the real data's rate; "
            f"{s['samples_with_twin']:.0%} of generated sequences have such a twin (real: "
            f"{s['real_samples_with_twin']:.0%})")
    if s.get("copy_pairs"):
        text += f"; {s['copy_pairs']} more pairs copy one training sequence: memorization's, not counted"
    return judge_copies(SHAPES.SIGNAL, text, s["rate_ratio"], s["shape_pairs"],
                        s["samples_with_twin"] - s["real_samples_with_twin"], s["n_real"])


def judge_copies(signal: str, text: str, ratio: float, pairs: int, excess: float, n_real: int) -> list:
    """The worse of two rules. The share of generated sequences with a copy, above the real share (≈ 5% by τ's
    definition, whatever the sample size); and, with at least ``MIN_REAL_FOR_RATE`` real sequences, the pair-rate
    rule of :mod:`.duplicates` (a rate ratio grows with the number of real samples, and with a few dozen real
    sequences τ is their second-closest pair: on BasicMotions' 40 against 40, healthy halves read 17×)."""
    rate_judged = n_real >= MIN_REAL_FOR_RATE and pairs >= MIN_PAIRS
    if excess > TWIN_SEVERE:
        return [reason(signal, "severe", text, excess, TWIN_SEVERE)]
    if rate_judged and ratio > RATIO_SEVERE:
        return [reason(signal, "severe", text, ratio, RATIO_SEVERE)]
    if excess > TWIN_PARTIAL:
        return [reason(signal, "partial", text, excess, TWIN_PARTIAL)]
    if rate_judged and ratio > RATIO_PARTIAL:
        return [reason(signal, "partial", text, ratio, RATIO_PARTIAL)]
    return [reason(signal, "info", text, ratio, None)]


DUPLICATES = _Duplicates()
SHAPES = _Shapes()
