"""Inception Score: exp(E_x KL(p(y|x) ‖ p(y))), mean ± std over splits.

As torch-fidelity: samples are shuffled by ``RandomState(seed).permutation``
before splitting, split ``i`` holds rows ``[i·N//splits, (i+1)·N//splits)``,
and the softmax is taken in float64 from the logits. With Inception the
logits role is torch-fidelity's 1008-way ``logits_unbiased``.
"""

from __future__ import annotations

import numpy as np
import torch

from . import MetricContext, finite_or_raise


def inception_score(logits, splits: int = 10, seed: int = 2020, shuffle: bool = True) -> dict:
    x = torch.as_tensor(logits)
    n = x.shape[0]
    if n < splits:
        raise ValueError(f"IS with {splits} splits needs at least {splits} samples, got {n}")
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    x = x.to(torch.float64)
    p, log_p = x.softmax(1), x.log_softmax(1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        pc, lpc = p[lo:hi], log_p[lo:hi]
        q = pc.mean(0, keepdim=True)
        scores.append(float((pc * (lpc - q.log())).sum(1).mean().exp()))
    return {"value": finite_or_raise("IS", float(np.mean(scores))), "std": float(np.std(scores)), "splits": splits}


class InceptionScore:
    name, label, role = "is", "IS", "logits"
    needs_real, higher_is_better = False, True
    description = "exp of the mean KL divergence between p(y|x) and p(y), over splits"

    def compute(self, ctx: MetricContext) -> dict:
        return inception_score(ctx.fake.features(self.role), ctx.options.is_splits, ctx.options.seed)
