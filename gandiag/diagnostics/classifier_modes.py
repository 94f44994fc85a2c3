"""Mode-collapse signal from a classifier feature network (e.g. ``digits``): which classes are drawn.

Any extractor of the run with a ``logits`` role and labelled real data serves
(``digits`` on images, ``motion``'s activities on sequences), the primary
extractor first.

Each sample's class is the argmax of the extractor's ``logits`` role, and
only *confident* samples count (softmax probability ≥ ``CONFIDENT``), on the
generated and on the real side alike: a generator that never saw a 9 still
draws blobs a small classifier calls "9" at low confidence, so raw argmax
shares hide the very classes that are gone (docs/diagnostics.md has the
numbers). Per class, ``share_ratio`` = generated confident share / real
confident share.

- *missing*: ratio below ``MISSING_RATIO`` (the generator draws recognisable
  members of the class at under 40% of the real rate; ``absent_classes`` are
  those under ``ABSENT_RATIO``, i.e. practically never drawn) → ``partial``;
  at most half the classes covered → ``severe``;
- KL(generated ‖ real) of the confident class distributions above
  ``KL_PARTIAL`` → ``partial``.

The argmax shares over every sample (``share_all``) and the confident
fraction are reported too, and the real labels give ``label_share`` (the
dataset's own class balance). ``class_status`` says, per class, what the
verdict calls it (``covered`` / ``missing`` / ``absent`` / ``not_in_real``),
so that readers such as the HTML report show the verdict's call instead of
re-deriving it.

For conditional generators (the pipeline's generated labels are known), it
also measures, within each requested class, the agreement (share classified
as the requested class) and the diversity: mean pairwise distance of the
``pool`` features, divided by that of the real samples of the class. A class
whose ratio falls below ``DIVERSITY_RATIO`` has collapsed inside itself →
``partial`` (``severe`` when that is most classes).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from . import fmt, reason

SIGNAL = "classes"
REAL_FEATURES_USE = ("logits", "the real samples' class frequencies")  # the real features it reads, and what for
CONFIDENT = 0.8
MISSING_RATIO = 0.4
ABSENT_RATIO = 0.1
KL_PARTIAL = 0.15
DIVERSITY_RATIO = 0.5
DIVERSITY_SAMPLES = 200  # per class, for the mean pairwise distance


def classifier_sets(ctx):
    """(generated, real) feature sets of the run's first extractor with ``logits`` and labelled real data, or None.

    The primary extractor's first; then the run's other extractors (``--feature-extractor sequence-stats,motion``:
    the activities come from ``motion``, the second one).
    """
    pairs = [(ctx.fake, ctx.real)] + list((getattr(ctx, "features", None) or {}).values())
    for fake, real in pairs:
        # Real labels say the classifier's classes are the data's own (not ImageNet's 1008 on a folder of faces).
        if (fake is not None and "logits" in fake.roles and real is not None and "logits" in real.roles
                and real.labels is not None):
            return fake, real
    return None


def applies(ctx) -> bool:
    return classifier_sets(ctx) is not None


def compute(ctx) -> dict:
    fake, real = classifier_sets(ctx)
    fake_logits, real_logits = fake.features("logits"), real.features("logits")
    real_labels = np.asarray(real.labels).astype(np.int64)
    cond = None
    if (fake.labels is not None and ctx.contract is not None and ctx.contract.num_classes and "pool" in fake.roles
            and "pool" in real.roles):
        cond = (np.asarray(fake.labels).astype(np.int64), fake.features("pool"), real.features("pool"))
    return analyse(fake_logits.numpy(), real_logits.numpy(), real_labels, cond, ctx.seed)


def _softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = np.exp(x - x.max(1, keepdims=True))
    return x / x.sum(1, keepdims=True)


def analyse(fake_logits: np.ndarray, real_logits: np.ndarray, real_labels: Optional[np.ndarray] = None,
            conditional: Optional[tuple] = None, seed: int = 0) -> dict:
    pf, pr = _softmax(fake_logits), _softmax(real_logits)
    k = pf.shape[1]
    fake_pred, real_pred = pf.argmax(1), pr.argmax(1)
    fc, rc = pf.max(1) >= CONFIDENT, pr.max(1) >= CONFIDENT
    counts = np.bincount(fake_pred[fc], minlength=k)
    share = counts / max(int(fc.sum()), 1)
    real_share = np.bincount(real_pred[rc], minlength=k) / max(int(rc.sum()), 1)
    classes = np.flatnonzero(real_share > 0)
    ratio = np.full(k, np.nan)
    ratio[classes] = share[classes] / real_share[classes]
    missing = [int(c) for c in classes if ratio[c] < MISSING_RATIO]
    nz = (share > 0) & (real_share > 0)
    kl = float(np.sum(share[nz] * np.log(share[nz] / real_share[nz])))
    out = {
        "classes_total": int(len(classes)),
        "classes_covered": int(len(classes) - len(missing)),
        "missing_classes": missing,
        "absent_classes": [int(c) for c in classes if ratio[c] < ABSENT_RATIO],
        "counts": [int(c) for c in counts],
        "share": [round(float(s), 5) for s in share],
        "real_share": [round(float(s), 5) for s in real_share],
        "share_ratio": [None if np.isnan(r) else round(float(r), 4) for r in ratio],
        "class_status": [class_status(r) for r in ratio],
        "missing_ratio": MISSING_RATIO,
        "absent_ratio": ABSENT_RATIO,
        "kl_to_real": kl,
        "confident": CONFIDENT,
        "confident_fraction": float(fc.mean()) if len(fc) else 0.0,
        "real_confident_fraction": float(rc.mean()) if len(rc) else 0.0,
        "share_all": [round(float(s), 5) for s in np.bincount(fake_pred, minlength=k) / max(len(fake_pred), 1)],
        "n": int(len(fake_pred)),
    }
    if real_labels is not None and len(real_labels):
        out["label_share"] = [round(float(s), 5) for s in np.bincount(real_labels, minlength=k)[:k] / len(real_labels)]
    if conditional is not None and real_labels is not None:
        out["conditional"] = per_class_diversity(fake_pred, *conditional, real_labels, seed)
    out["reasons"] = judge(out)
    return out


def class_status(ratio: float) -> str:
    """What the verdict calls one class, from its share ratio (the same tests as ``missing_classes``/``absent_classes``).

    Reported per class so that a reader (the HTML report) shows the verdict's
    own call and never re-derives it with a threshold of its own.
    """
    if np.isnan(ratio):
        return "not_in_real"  # no confident real sample: the class is not judged
    if ratio < ABSENT_RATIO:
        return "absent"  # missing, and practically never drawn
    return "missing" if ratio < MISSING_RATIO else "covered"


def _mean_pairwise(x: torch.Tensor, rng: np.random.Generator) -> Optional[float]:
    if len(x) < 2:
        return None
    if len(x) > DIVERSITY_SAMPLES:
        x = x[torch.from_numpy(rng.choice(len(x), DIVERSITY_SAMPLES, replace=False))]
    d = torch.cdist(x.double(), x.double())
    m = len(x)
    return float(d.sum() / (m * (m - 1)))


def per_class_diversity(fake_pred, requested, fake_pool, real_pool, real_labels, seed) -> dict:
    rng = np.random.default_rng(seed)
    per = {}
    for c in np.unique(requested):
        idx = np.flatnonzero(requested == c)
        real_idx = np.flatnonzero(real_labels == c)
        d_fake = _mean_pairwise(fake_pool[torch.from_numpy(idx)], rng)
        d_real = _mean_pairwise(real_pool[torch.from_numpy(real_idx)], rng) if len(real_idx) else None
        ratio = (d_fake / d_real) if d_fake is not None and d_real else None
        per[int(c)] = {
            "n": int(len(idx)),
            "agreement": float(np.mean(fake_pred[idx] == c)),
            "diversity": d_fake,
            "real_diversity": d_real,
            "diversity_ratio": ratio,
            "collapsed": ratio is not None and ratio < DIVERSITY_RATIO,  # the verdict's call, for readers
        }
    ratios = [v["diversity_ratio"] for v in per.values() if v["diversity_ratio"] is not None]
    return {
        "per_class": per,
        "mean_agreement": float(np.mean([v["agreement"] for v in per.values()])) if per else None,
        "min_diversity_ratio": min(ratios) if ratios else None,
        "diversity_threshold": DIVERSITY_RATIO,
        "collapsed_classes": [c for c, v in per.items() if v["collapsed"]],
    }


def judge(s: dict) -> list:
    reasons = []
    total, covered = s["classes_total"], s["classes_covered"]
    if s["missing_classes"]:
        level = "severe" if covered <= total / 2 else "partial"
        reasons.append(reason(SIGNAL, level, f"{covered}/{total} classes covered; missing classes {s['missing_classes']} "
                              f"(confidently drawn at under {MISSING_RATIO:.0%} of their real rate; ratios "
                              f"{[s['share_ratio'][c] for c in s['missing_classes']]})", covered,
                              total // 2 if level == "severe" else total))
    if s["kl_to_real"] > KL_PARTIAL:
        reasons.append(reason(SIGNAL, "partial", f"KL(generated ‖ real) of the class distribution {fmt(s['kl_to_real'])} "
                              f"> {KL_PARTIAL}", s["kl_to_real"], KL_PARTIAL))
    cond = s.get("conditional")
    if cond and cond["collapsed_classes"]:
        n, total_c = len(cond["collapsed_classes"]), len(cond["per_class"])
        level = "severe" if n > total_c / 2 else "partial"
        reasons.append(reason(SIGNAL, level, f"requested classes {cond['collapsed_classes']} have collapsed within "
                              f"themselves (feature diversity under {DIVERSITY_RATIO:.0%} of the real class's; "
                              f"lowest {fmt(cond['min_diversity_ratio'])})", cond["min_diversity_ratio"], DIVERSITY_RATIO))
    return reasons
