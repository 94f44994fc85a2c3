"""NDB/K and JS over k-means bins of the real features (Richardson & Weiss 2018, "On GANs and GMMs").

Definition (REFERENCES.md; their ``utils/ndb.py``):

1. k-means with K = 100 centres on the real features (K capped at
   n_real / ``MIN_PER_BIN`` so that each bin expects a few real samples;
   sklearn ``KMeans``, ``n_init`` = ``N_INIT``, seeded);
2. every real and every generated sample goes to its nearest centre;
3. per bin, a two-proportion z-test with the pooled proportion,
   p = (n₁p₁ + n₂p₂)/(n₁ + n₂), SE = √(p(1−p)(1/n₁ + 1/n₂)), z = (p₁ − p₂)/SE;
   the bin is *statistically different* when the two-sided p-value < α = 0.05;
4. NDB = number of different bins, reported as NDB/K, and the Jensen–Shannon
   divergence of the two bin-proportion vectors (natural log).

The bins that differ are listed, most significant first, with both shares
and, when the real data has labels, the class most of the bin's real samples
belong to (so "bins under-represented: mostly 7s, 8s and 9s" reads off the
report). Generated samples in bins the real data fills are what mode
collapse removes, so under-represented bins are the evidence that counts;
over-represented bins are listed too.

In the verdict NDB is supporting evidence only (an ``info`` reason): with
thousands of generated samples the z-test finds most bins different for
any imperfect generator, healthy or not (calibration, docs/diagnostics.md:
healthy DCGAN on digits NDB/K ≈ 0.7, the one starved of 7/8/9 ≈ 0.76; a
healthy PacGAN4 on ring8 ≈ 0.76, its 100 bins slicing 8 modes 0.01 wide).
What it adds is *where*: the differing bins, and with real labels the share of
each label's real samples that sit in bins the generator empties
(``emptied_by_label``; labels at or above ``EMPTIED_LABEL`` are named in the
reason: the starved DCGAN's 7s sit there at 1.0, the healthy one's worst label at 0.76).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import fmt, reason

SIGNAL = "ndb"
REAL_FEATURES_USE = ("pool", "bins of the real features")  # the real features it reads, and what for
K = 100
MIN_PER_BIN = 10
N_INIT = 2
ALPHA = 0.05
MAX_FIT = 20_000  # real samples used to fit k-means
EMPTIED_LABEL = 0.9
UNDER_FACTOR = 0.5  # a bin is "emptied" when its generated share is below half its real share
LIST_BINS = 20


def applies(ctx) -> bool:
    return ctx.real is not None and "pool" in ctx.real.roles and ctx.real.n >= 2 * MIN_PER_BIN


def compute(ctx) -> dict:
    labels = None if ctx.real.labels is None else np.asarray(ctx.real.labels)
    return ndb(ctx.real.features("pool").numpy(), ctx.fake.features("pool").numpy(), seed=ctx.seed, real_labels=labels)


def two_proportion_z(c1: np.ndarray, n1: int, c2: np.ndarray, n2: int):
    """Pooled two-proportion z-test per bin: (z, two-sided p)."""
    from scipy.stats import norm

    p1, p2 = c1 / n1, c2 / n2
    p = (c1 + c2) / (n1 + n2)
    se = np.sqrt(p * (1 - p) * (1.0 / n1 + 1.0 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p1 - p2) / se, 0.0)
    return z, 2 * norm.sf(np.abs(z))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / b[nz])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def ndb(real: np.ndarray, fake: np.ndarray, k: int = K, alpha: float = ALPHA, seed: int = 0,
        real_labels: Optional[np.ndarray] = None) -> dict:
    from sklearn.cluster import KMeans

    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    k = int(max(2, min(k, len(real) // MIN_PER_BIN)))
    rng = np.random.default_rng(seed)
    fit = real if len(real) <= MAX_FIT else real[rng.choice(len(real), MAX_FIT, replace=False)]
    km = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed % (2**32)).fit(fit)
    real_bin, fake_bin = km.predict(real), km.predict(fake)
    cr, cf = np.bincount(real_bin, minlength=k), np.bincount(fake_bin, minlength=k)
    nr, nf = len(real), len(fake)
    z, pval = two_proportion_z(cr, nr, cf, nf)
    different = pval < alpha
    pr, pf = cr / nr, cf / nf
    order = [int(i) for i in np.argsort(pval) if different[i]]
    bins = []
    for i in order[:LIST_BINS]:
        b = {"bin": i, "real_share": round(float(pr[i]), 5), "fake_share": round(float(pf[i]), 5),
             "z": round(float(z[i]), 3), "p": float(pval[i]),
             "direction": "under" if pf[i] < pr[i] else "over"}
        if real_labels is not None and cr[i]:
            lab = np.asarray(real_labels)[real_bin == i]
            vals, cnt = np.unique(lab, return_counts=True)
            b["real_majority_label"] = int(vals[cnt.argmax()])
            b["real_majority_fraction"] = round(float(cnt.max() / cnt.sum()), 3)
        bins.append(b)
    emptied = (pf < UNDER_FACTOR * pr) & different
    out = {
        "k": k,
        "ndb": int(different.sum()),
        "ndb_over_k": float(different.sum() / k),
        "js": js_divergence(pr, pf),
        "alpha": alpha,
        "n_real": nr,
        "n_fake": nf,
        "under_bins": int(((pf < pr) & different).sum()),
        "over_bins": int(((pf > pr) & different).sum()),
        "emptied_real_mass": float(pr[emptied].sum()),
        "different_bins": bins,
    }
    if real_labels is not None:
        out["emptied_by_label"] = _emptied_by_label(real_labels, real_bin, emptied)
        # the labels the reason names, for readers (the report) that must not re-apply the threshold
        out["emptied_labels"] = [c for c, v in out["emptied_by_label"].items() if v >= EMPTIED_LABEL]
        out["emptied_label_threshold"] = EMPTIED_LABEL
    out["reasons"] = judge(out)
    return out


def _emptied_by_label(real_labels, real_bin, emptied) -> dict:
    """For each real label, the share of its real samples that sit in emptied bins."""
    labels = np.asarray(real_labels)
    in_emptied = emptied[real_bin]
    return {int(c): round(float(in_emptied[labels == c].mean()), 3) for c in np.unique(labels)}


def judge(s: dict) -> list:
    text = (f"NDB/K = {fmt(s['ndb_over_k'])} ({s['ndb']} of {s['k']} bins differ at p < {s['alpha']}: "
            f"{s['under_bins']} under-, {s['over_bins']} over-represented), JS {fmt(s['js'])}")
    gone = [c for c, v in (s.get("emptied_by_label") or {}).items() if v >= EMPTIED_LABEL]
    if gone:
        text += f"; real labels {gone} sit almost entirely (≥ {EMPTIED_LABEL:.0%}) in bins the generator under-fills"
    return [reason(SIGNAL, "info", text, s["ndb_over_k"], None)]
