"""Near-duplicates among generated samples and the birthday-paradox support estimate (Arora & Zhang 2017).

In the extractor's ``pool`` features:

- the near-duplicate distance τ is the ``TAU_QUANTILE`` quantile of the real
  samples' nearest-neighbour distances: a generated pair closer than τ is
  closer than all but the closest few percent of real images are to anything;
- the duplicate *pair rate* r = (pairs closer than τ) / (pairs) is measured on
  the first ``MAX_SAMPLES`` generated samples and, with the same τ, on the
  real samples. r does not depend on how many samples are drawn (it is the
  probability that two independent draws are within τ), so the two rates
  compare directly: ``rate_ratio`` = r_fake / r_real;
- birthday paradox: a batch of s samples holds a near-duplicate with
  probability ≈ 1 − exp(−r·s(s−1)/2), ½ at s½ = √(2 ln 2 / r); Arora & Zhang
  read the support size as ≈ s½². With no duplicate pair the estimate is a
  lower bound, reported as such;
- the ``KEEP_PAIRS`` closest generated pairs are kept (sample indices, which
  the seed reproduces, and distances) for the report;
- copies are memorisation's, not collapse's: when the run knows the
  generator's training set (:func:`.memorization.copied_training_rows`), a
  pair of samples that are both copies of *the same* training sample is
  counted apart (``copy_pairs``) and left out of the rate. A generator that
  returns its training images draws the same one again as often as a draw
  from the training set would; that repeats the training set's support, not
  a collapse of it. Copies of one or a few training samples still collapse
  the classes and the latent response, which those signals judge.

A generator whose samples repeat far more often than the real data's
(``rate_ratio`` above ``RATIO_PARTIAL``, with at least ``MIN_PAIRS``
duplicate pairs as evidence) is partially collapsed; above
``RATIO_SEVERE``, severely. Points (2D mixtures) are left out: their real
modes are 0.01 wide, and the mixture protocol already counts them.
Sequences are judged by :mod:`.sequence_modes` with this arithmetic on the
raw sequences, under the same key.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import fmt, reason

SIGNAL = "duplicates"
REAL_FEATURES_USE = ("pool", "a distance threshold calibrated on the real features")  # the real features it reads
TAU_QUANTILE = 0.05
MAX_SAMPLES = 3000
KEEP_PAIRS = 8
MIN_PAIRS = 10
RATIO_PARTIAL = 10.0
RATIO_SEVERE = 100.0
CHUNK = 1024


def applies(ctx) -> bool:
    from . import sequence_modes

    return (ctx.real is not None and "pool" in ctx.real.roles and ctx.real.n >= 20 and ctx.fake.n >= 20
            and not (ctx.contract is not None and ctx.contract.kind == "points")
            and not (ctx.fake_kept is not None and ctx.fake_kept.dim() == 2)
            and not sequence_modes.is_sequences(ctx))  # sequences: judged on the raw sequences (sequence_modes)


def compute(ctx) -> dict:
    from .memorization import copied_training_rows

    fake = ctx.fake.features("pool")
    return analyse(ctx.real.features("pool"), fake, copied_training_rows(ctx, MAX_SAMPLES))


def nearest_neighbour_distances(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    out = torch.empty(len(x), dtype=torch.float64)
    for s in range(0, len(x), CHUNK):
        d = torch.cdist(x[s:s + CHUNK], x)
        d[torch.arange(d.shape[0]), torch.arange(s, s + d.shape[0])] = float("inf")
        out[s:s + CHUNK] = d.min(1).values
    return out


def close_pairs(x: torch.Tensor, tau: float, keep: int = KEEP_PAIRS, copied=None):
    """(pairs i<j closer than tau, samples with a neighbour closer than tau, the `keep` closest pairs as (i, j, d),
    pairs closer than tau that copy the same training sample). ``copied``: per row, the training sample it copies
    or -1; such pairs count only in the last number."""
    x = x.double()
    count, with_dup, best, copy_pairs = 0, 0, [], 0
    same = None if copied is None else torch.as_tensor(np.asarray(copied))
    for s in range(0, len(x), CHUNK):
        d = torch.cdist(x[s:s + CHUNK], x)
        rows = torch.arange(s, s + d.shape[0])[:, None]
        d[torch.arange(d.shape[0]), rows[:, 0]] = float("inf")
        if same is not None:  # pairs that copy one training sample: memorisation's, set apart
            both = (same[s:s + d.shape[0], None] == same[None, :]) & (same[None, :] >= 0)
            copy_pairs += int(((d < tau) & both & (torch.arange(len(x))[None, :] > rows)).sum())
            d = d.masked_fill(both, float("inf"))
        with_dup += int((d.min(1).values < tau).sum())
        d = torch.where(torch.arange(len(x))[None, :] > rows, d, torch.full_like(d, float("inf")))  # i < j only
        count += int((d < tau).sum())
        flat = d.flatten()
        m = min(keep, flat.numel())
        vals, idx = torch.topk(flat, m, largest=False)
        for v, i in zip(vals.tolist(), idx.tolist()):
            if math.isfinite(v):
                best.append((s + i // d.shape[1], i % d.shape[1], v))
    best.sort(key=lambda t: t[2])
    return count, with_dup, best[:keep], copy_pairs


def support_estimate(pairs: int, total_pairs: int) -> dict:
    if total_pairs == 0:
        return {"support": None, "lower_bound": True, "batch_for_half": None}
    if pairs == 0:
        return {"support": 2 * math.log(2) * total_pairs, "lower_bound": True, "batch_for_half": None}
    r = pairs / total_pairs
    s_half = math.sqrt(2 * math.log(2) / r)
    return {"support": s_half**2, "lower_bound": False, "batch_for_half": s_half}


def analyse(real: torch.Tensor, fake: torch.Tensor, copied=None) -> dict:
    """``copied``: per generated row (of the first MAX_SAMPLES), the training sample it copies or -1 (see above)."""
    real, fake = real[:MAX_SAMPLES], fake[:MAX_SAMPLES]
    tau = float(torch.quantile(nearest_neighbour_distances(real), TAU_QUANTILE))
    nf, nr = len(fake), len(real)
    tf, tr = nf * (nf - 1) // 2, nr * (nr - 1) // 2
    pf, with_dup, closest, copy_pairs = close_pairs(fake, tau, copied=copied)
    pr, _, _, _ = close_pairs(real, tau, keep=0)
    rate_f, rate_r = pf / tf, pr / tr
    ratio = rate_f / rate_r if pr else (rate_f * tr if pf else 0.0)  # no real pair: compare with one pair's rate
    sf, sr = support_estimate(pf, tf), support_estimate(pr, tr)
    out = {
        "tau": tau,
        "tau_quantile": TAU_QUANTILE,
        "n_fake": nf,
        "n_real": nr,
        "duplicate_pairs": pf,
        "pair_rate": rate_f,
        "real_pair_rate": rate_r,
        "rate_ratio": ratio,
        "support_estimate": sf["support"],
        "support_is_lower_bound": sf["lower_bound"],
        "batch_for_half": sf["batch_for_half"],
        "real_support_estimate": sr["support"],
        "closest_pairs": [{"i": int(i), "j": int(j), "distance": round(float(d), 6)} for i, j, d in closest],
    }
    out["samples_with_duplicate"] = with_dup
    if copied is not None:  # set apart as memorisation's: pairs of copies of one training sample
        out["copy_pairs"] = copy_pairs
        out["copies"] = int((np.asarray(copied) >= 0).sum())
    out["reasons"] = judge(out)
    return out


def judge(s: dict) -> list:
    ratio, pairs = s["rate_ratio"], s["duplicate_pairs"]
    support = s["support_estimate"]
    text = (f"{pairs} near-duplicate pairs among {s['n_fake']} samples, {fmt(ratio)}× the real data's rate; "
            f"birthday-paradox support {'≥ ' if s['support_is_lower_bound'] else '≈ '}{fmt(support)}")
    if s.get("copy_pairs"):
        text += (f"; {s['copy_pairs']} more pairs are copies of one training sample ({s['copies']} samples copy "
                 "training ones): memorization's, not counted")
    if pairs >= MIN_PAIRS and ratio > RATIO_SEVERE:
        return [reason(SIGNAL, "severe", text, ratio, RATIO_SEVERE)]
    if pairs >= MIN_PAIRS and ratio > RATIO_PARTIAL:
        return [reason(SIGNAL, "partial", text, ratio, RATIO_PARTIAL)]
    return [reason(SIGNAL, "info", text, ratio, None)]
