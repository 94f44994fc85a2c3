"""Metrics of the time-series GAN literature, on the sequences themselves (the ``series`` role).

Every sequence feature extractor gives the ``series`` role (the (N, T, C)
sequences, :mod:`gandiag.features.sequence_stats`); these metrics read it,
so they run on any sequences whatever the features, once per evaluation
(with the run's primary extractor: their value does not depend on it).
Lower is better for all four.

- ``disc_score``: TimeGAN's discriminative score (Yoon et al. 2019,
  jsyoon0823/TimeGAN ``metrics/discriminative_metrics.py``). A post-hoc GRU
  (hidden size ⌊C/2⌋, at least 1; its last state → a linear unit) learns to
  tell real from generated sequences on 80 % of each set (batches of as many
  of each); the score is |accuracy − 0.5| on the other 20 %: 0 when it cannot
  tell them apart, 0.5 when they are trivially separable. The accuracy is
  balanced (the mean of the real and the generated sets' accuracies), which is
  TimeGAN's accuracy when the sets are the same size and does not reward
  answering "generated" when there are many more generated sequences.
- ``pred_score``: TimeGAN's predictive score (``metrics/predictive_metrics.py``):
  a GRU (hidden ⌊C/2⌋, a per-step linear unit and a sigmoid) trained on the
  generated sequences to predict the last channel one step ahead from the other
  channels (input ``x[:-1, :C−1]``, target ``x[1:, C−1]``, L1 loss), then its
  mean absolute error on every real sequence ("train on synthetic, test on
  real"). With one channel the input is the channel's own past.
- ``acf_distance``: mean over channels and lags 1..min(10, T−1) of the
  absolute difference between the real and generated sets' autocorrelation
  (each set's per-sequence ACF averaged over its sequences; 0 for a constant
  sequence).
- ``marginal_w1``: per channel, the Wasserstein-1 distance between the real
  and generated values (every step pooled), averaged over channels.

The two TimeGAN scores train networks: each is run ``--score-runs`` times
(default 3; TimeGAN's tables use 10), reported as the mean with the runs' std,
every run seeded from ``--seed`` and its index (same seed, same numbers). Both
run on CPU, in one thread, with fewer steps than TimeGAN's (2,000 and 5,000
Adam steps of batch 128 at its default rate 1e-3): ``DISC_ITERATIONS`` and
``PRED_ITERATIONS`` steps at ``LEARNING_RATE``, which reach the same numbers on
``sines`` (docs/sequences.md; tests/test_sequence_metrics.py). As in TimeGAN the
predictor ends in a sigmoid, so data must lie in [0, 1]: when the real data do
not, both sets are min-max scaled by the real data's per-channel range first
(recorded as ``scaled``), as TimeGAN's loaders scale their data.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from ..features.sequence_stats import series_to_sequences
from ..features.stats import one_cpu_thread
from . import MetricContext, finite_or_raise

DEFAULT_SCORE_RUNS = 3
TIMEGAN_SCORE_RUNS = 10
DISC_ITERATIONS = 1000  # TimeGAN: 2,000 at Adam's default 1e-3
PRED_ITERATIONS = 600  # TimeGAN: 5,000
BATCH_SIZE = 128  # TimeGAN's
LEARNING_RATE = 5e-3
TRAIN_FRACTION = 0.8  # TimeGAN's train_test_divide
ACF_MAX_LAG = 10
ROLE = "series"


@contextlib.contextmanager
def _one_thread_seeded(seed: int):
    """Small recurrent nets run fastest on one CPU thread; the global torch RNG is left as it was."""
    with one_cpu_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _run_seed(seed: int, run: int, tag: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, run, tag]).generate_state(1)[0])


def scale_like_timegan(real: np.ndarray, fake: np.ndarray):
    """Both sets as float32 in the predictor's [0, 1] range: unchanged when the real data lie in it, else
    min-max scaled by the real data's per-channel range. → (real, fake, scaled?)"""
    real = np.asarray(real, dtype=np.float32)
    fake = np.asarray(fake, dtype=np.float32)
    if real.min() >= 0.0 and real.max() <= 1.0:
        return real, fake, False
    lo, hi = real.min(axis=(0, 1)), real.max(axis=(0, 1))
    span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
    return (real - lo) / span, (fake - lo) / span, True


class _GRU(nn.Module):
    def __init__(self, channels: int, hidden: int, per_step: bool):
        super().__init__()
        self.rnn = nn.GRU(channels, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)
        self.per_step = per_step

    def forward(self, x):
        outputs, last = self.rnn(x)
        return self.out(outputs) if self.per_step else self.out(last[-1])


def _hidden(channels: int) -> int:
    return max(1, channels // 2)  # TimeGAN: int(dim / 2)


def discriminative_once(real: np.ndarray, fake: np.ndarray, seed: int, iterations: int = DISC_ITERATIONS) -> float:
    """One run of the discriminative score on two (N, T, C) float32 arrays of the same (T, C)."""
    rng = np.random.default_rng(seed)
    ri, fi = rng.permutation(len(real)), rng.permutation(len(fake))
    nr, nf = int(len(real) * TRAIN_FRACTION), int(len(fake) * TRAIN_FRACTION)
    r_train, r_test = torch.from_numpy(real[ri[:nr]]), torch.from_numpy(real[ri[nr:]])
    f_train, f_test = torch.from_numpy(fake[fi[:nf]]), torch.from_numpy(fake[fi[nf:]])
    if min(len(r_train), len(f_train), len(r_test), len(f_test)) < 1:
        raise ValueError(f"{len(real)} real and {len(fake)} generated sequences are too few for an 80/20 split")
    with _one_thread_seeded(seed):
        net = _GRU(real.shape[2], _hidden(real.shape[2]), per_step=False)
        opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
        loss_fn = nn.BCEWithLogitsLoss()
        b = min(BATCH_SIZE, len(r_train), len(f_train))  # as many real as generated in every batch
        target = torch.cat([torch.ones(b, 1), torch.zeros(b, 1)])
        for _ in range(iterations):
            x = torch.cat([r_train[rng.choice(len(r_train), b, replace=False)],
                           f_train[rng.choice(len(f_train), b, replace=False)]])
            loss = loss_fn(net(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            real_right = float((net(r_test) > 0).float().mean())
            fake_right = float((net(f_test) <= 0).float().mean())
    # Balanced accuracy: TimeGAN's accuracy when the sets are the same size (as in their benchmark), and not
    # 0.5 + the size imbalance when they are not (80 BasicMotions recordings against 2,000 generated).
    return abs((real_right + fake_right) / 2 - 0.5)


def _predictive_io(x: torch.Tensor):
    c = x.shape[2]
    inputs = x[:, :-1, : c - 1] if c > 1 else x[:, :-1, :]
    return inputs, x[:, 1:, c - 1:]


def predictive_once(train_on: np.ndarray, test_on: np.ndarray, seed: int, iterations: int = PRED_ITERATIONS) -> float:
    """One run of the predictive score: trained on ``train_on`` (generated), MAE on every ``test_on`` (real)."""
    if train_on.shape[1] < 2:
        raise ValueError("the predictive score needs sequences of at least 2 steps")
    rng = np.random.default_rng(seed)
    x_train, y_train = _predictive_io(torch.from_numpy(train_on))
    x_test, y_test = _predictive_io(torch.from_numpy(test_on))
    c = x_train.shape[2]
    with _one_thread_seeded(seed):
        net = _GRU(c, _hidden(train_on.shape[2]), per_step=True)
        opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
        b = min(BATCH_SIZE, len(x_train))
        for _ in range(iterations):
            idx = rng.choice(len(x_train), b, replace=False)
            loss = (torch.sigmoid(net(x_train[idx])) - y_train[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            mae = float((torch.sigmoid(net(x_test)) - y_test).abs().mean())
    return mae


def _repeat(fn, runs: int, seed: int, tag: int) -> dict:
    if runs < 1:
        raise ValueError(f"--score-runs must be at least 1, got {runs}")
    values = [fn(_run_seed(seed, r, tag)) for r in range(runs)]
    return {"value": float(np.mean(values)), "std": float(np.std(values)), "runs": [float(v) for v in values],
            "num_runs": runs}


def discriminative_score(real, fake, runs: int = DEFAULT_SCORE_RUNS, seed: int = 0,
                         iterations: int = DISC_ITERATIONS) -> dict:
    r, f, scaled = scale_like_timegan(real, fake)
    out = _repeat(lambda s: discriminative_once(r, f, s, iterations), runs, seed, tag=1)
    return {**out, "iterations": iterations, "scaled": scaled}


def predictive_score(real, fake, runs: int = DEFAULT_SCORE_RUNS, seed: int = 0,
                     iterations: int = PRED_ITERATIONS) -> dict:
    """Train on ``fake``, test on ``real``. ``predictive_score(real, real)`` is TimeGAN's "original data" row."""
    r, f, scaled = scale_like_timegan(real, fake)
    out = _repeat(lambda s: predictive_once(f, r, s, iterations), runs, seed, tag=2)
    return {**out, "iterations": iterations, "scaled": scaled}


def mean_acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """(N, T, C) → (max_lag, C): per-sequence autocorrelation at lags 1..max_lag averaged over sequences."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=1, keepdims=True)
    denom = (centred ** 2).sum(axis=1)
    constant = denom <= 1e-12 * (1.0 + (x ** 2).sum(axis=1))
    safe = np.where(constant, 1.0, denom)
    out = np.empty((max_lag, x.shape[2]))
    for k in range(1, max_lag + 1):
        r = (centred[:, :-k] * centred[:, k:]).sum(axis=1) / safe
        out[k - 1] = np.where(constant, 0.0, r).mean(axis=0)
    return out


def acf_distance(real, fake, max_lag: int = ACF_MAX_LAG) -> dict:
    lags = min(max_lag, np.asarray(real).shape[1] - 1)
    if lags < 1:
        raise ValueError("the autocorrelation distance needs sequences of at least 2 steps")
    d = np.abs(mean_acf(real, lags) - mean_acf(fake, lags))
    return {"value": float(d.mean()), "max_lag": lags, "per_channel": d.mean(axis=0).tolist()}


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two 1-d empirical distributions: ∫|F_a − F_b|, exact (scipy's definition)."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    allv = np.sort(np.concatenate([a, b]))
    deltas = np.diff(allv)
    fa = np.searchsorted(a, allv[:-1], side="right") / len(a)
    fb = np.searchsorted(b, allv[:-1], side="right") / len(b)
    return float((np.abs(fa - fb) * deltas).sum())


def marginal_w1(real, fake) -> dict:
    real, fake = np.asarray(real), np.asarray(fake)
    per = [wasserstein1(real[:, :, c].ravel(), fake[:, :, c].ravel()) for c in range(real.shape[2])]
    return {"value": float(np.mean(per)), "per_channel": per}


def _pair(ctx: MetricContext, label: str):
    """(real, fake) float32 (N, T, C) arrays from the ``series`` role, shapes checked."""
    key = "sequences"
    if key not in ctx.shared:
        fake = series_to_sequences(ctx.fake.features(ROLE))
        real = series_to_sequences(ctx.real.features(ROLE))
        if real.shape[1:] != fake.shape[1:]:
            raise ValueError(f"real sequences are {real.shape[1]} steps x {real.shape[2]} channels, generated "
                             f"{fake.shape[1]} x {fake.shape[2]}: {label} compares sequences of one shape")
        ctx.shared[key] = (real, fake)
    return ctx.shared[key]


def score_runs(ctx: MetricContext) -> int:
    return int(getattr(ctx.options, "score_runs", None) or DEFAULT_SCORE_RUNS)


class SequenceMetric:
    role = ROLE
    needs_real, higher_is_better = True, False
    reads_samples = True  # computed on the sequences, once per run, whatever the features

    def __init__(self, name, label, description, fn):
        self.name, self.label, self.description, self._fn = name, label, description, fn

    def compute(self, ctx: MetricContext) -> dict:
        real, fake = _pair(ctx, self.label)
        out = self._fn(real, fake, ctx)
        out["value"] = finite_or_raise(self.label, out["value"])
        return out


def builtin_metrics() -> list:
    return [
        SequenceMetric("disc_score", "Discriminative score",
                       "TimeGAN's |accuracy − 0.5| of a post-hoc GRU telling real from generated (held-out 20 %)",
                       lambda r, f, ctx: discriminative_score(r, f, score_runs(ctx), ctx.options.seed)),
        SequenceMetric("pred_score", "Predictive score",
                       "TimeGAN's MAE on real sequences of a GRU next-step predictor trained on generated ones",
                       lambda r, f, ctx: predictive_score(r, f, score_runs(ctx), ctx.options.seed)),
        SequenceMetric("acf_distance", "ACF distance",
                       "mean |ACF difference| over channels and lags 1..10 (real vs generated)",
                       lambda r, f, ctx: acf_distance(r, f)),
        SequenceMetric("marginal_w1", "Marginal W1",
                       "per-channel Wasserstein-1 distance of the values' marginal distributions, averaged",
                       lambda r, f, ctx: marginal_w1(r, f)),
    ]
