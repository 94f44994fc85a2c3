"""Train the sequence feature networks and write gandiag/features/weights/{sines,motion}_tcn.pt.

    PYTHONPATH=. python scripts/train_sequence_features.py [--which sines|motion|all]

Deterministic on CPU (fixed seeds, one thread), so the shipped weights can be
rebuilt and their sha256 compared (gandiag.features.sequence_nets).

- ``sines``: TimeGAN's sines have no labels; the proxy task is to regress
  every channel's frequency and phase (each drawn from U[0, 0.1], targets
  divided by 0.1), MSE, on fresh draws every epoch (the same formula as
  gandiag.data.sequences.sines_data, checked below). Held out: 2,000 draws of
  another seed; the script prints the mean absolute error of frequency and
  phase, against the error of predicting the mean (0.025).
- ``motion``: BasicMotions' 4 activities (needs the ``motion`` extra,
  sktime). Trained on the archive's train split (40 sequences) with
  augmentation (per-channel amplitude x U[0.8, 1.2], Gaussian noise of 0.05
  standardised units, a circular shift of up to 10 steps); the held-out
  accuracy is on the archive's test split (40).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gandiag.atomic import write_bytes  # noqa: E402
from gandiag.data.sequences import SINES_MAX_FREQUENCY, sines_data  # noqa: E402
from gandiag.features.sequence_nets import MOTION, SINES, SequenceTCN  # noqa: E402

SEED = 0
SINES_HELDOUT_SEED = 987_654


def sines_with_parameters(n: int, seed: int):
    """(sequences (n, 24, 5) float32, targets (n, 10): frequencies then phases per channel, / 0.1)."""
    rng = np.random.RandomState(seed)
    draws = rng.uniform(0, SINES_MAX_FREQUENCY, size=(n, SINES.channels, 2))  # (freq, phase) per channel, in order
    t = np.arange(SINES.steps)
    x = (np.sin(draws[:, None, :, 0] * t[None, :, None] + draws[:, None, :, 1]) + 1) * 0.5
    targets = np.concatenate([draws[:, :, 0], draws[:, :, 1]], axis=1) / SINES_MAX_FREQUENCY
    return x.astype(np.float32), targets.astype(np.float32)


def save(net, out: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(out, buf.getvalue())
    print(f"wrote {out} ({len(buf.getvalue())} bytes)")


def train_sines(epochs: int, out: Path) -> None:
    x_check, _ = sines_with_parameters(50, 3)
    assert np.allclose(x_check, sines_data(50, seed=3), atol=1e-6), "sines_with_parameters drifted from sines_data"
    rng = np.random.default_rng(SEED)
    net = SequenceTCN(SINES)
    x0, _ = sines_with_parameters(10_000, 1)
    net.mean.copy_(torch.from_numpy(x0.mean(axis=(0, 1))))
    net.std.copy_(torch.from_numpy(x0.std(axis=(0, 1))))
    xh, yh = (torch.from_numpy(a) for a in sines_with_parameters(2_000, SINES_HELDOUT_SEED))
    per_epoch, batch = 10_000, 128
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * (per_epoch // batch))
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        x, y = (torch.from_numpy(a) for a in sines_with_parameters(per_epoch, 1000 + epoch))
        order = torch.from_numpy(rng.permutation(per_epoch))
        for i in range(0, per_epoch - batch + 1, batch):
            b = order[i:i + batch]
            loss = F.mse_loss(net(x[b])[1], y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            err = (net(xh)[1] - yh).abs() * SINES_MAX_FREQUENCY
        print(f"epoch {epoch + 1:3d}  loss {loss.item():.5f}  held-out MAE frequency {err[:, :5].mean():.5f}  "
              f"phase {err[:, 5:].mean():.5f}", flush=True)
    print(f"trained in {time.perf_counter() - t0:.1f} s; held-out ({len(xh)} draws, seed {SINES_HELDOUT_SEED}): "
          f"MAE frequency {err[:, :5].mean():.5f}, phase {err[:, 5:].mean():.5f} (predicting the mean: 0.025)")
    save(net, out)


def motion_data():
    from gandiag.data.motion import sources

    src = next(s for s in sources() if s.name == "basicmotions")
    s = src.load("basicmotions")
    n_train = s.meta["splits"]["train"]
    x, y = s.data.numpy(), np.asarray(s.labels)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def train_motion(epochs: int, out: Path) -> None:
    rng = np.random.default_rng(SEED)
    xtr, ytr, xte, yte = motion_data()
    net = SequenceTCN(MOTION)
    net.mean.copy_(torch.from_numpy(xtr.mean(axis=(0, 1))))
    net.std.copy_(torch.from_numpy(xtr.std(axis=(0, 1))))
    std = xtr.std(axis=(0, 1))
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    batch = 20
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(xtr))
        for i in range(0, len(xtr), batch):
            b = order[i:i + batch]
            x = xtr[b] * rng.uniform(0.8, 1.2, size=(len(b), 1, MOTION.channels))
            x = x + rng.normal(0, 0.05, size=x.shape) * std
            shifts = rng.integers(-10, 11, size=len(b))
            x = np.stack([np.roll(s, k, axis=0) for s, k in zip(x, shifts)]).astype(np.float32)
            loss = F.cross_entropy(net(torch.from_numpy(x))[1], ytr_t[b], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if (epoch + 1) % 20 == 0:
            net.eval()
            with torch.no_grad():
                acc = float((net(torch.from_numpy(xte))[1].argmax(1).numpy() == yte).mean())
                train_acc = float((net(xtr_t)[1].argmax(1).numpy() == ytr).mean())
            print(f"epoch {epoch + 1:3d}  loss {loss.item():.4f}  train acc {train_acc:.3f}  held-out acc {acc:.3f}",
                  flush=True)
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(xte))[1].argmax(1).numpy()
    acc = float((pred == yte).mean())
    print(f"trained in {time.perf_counter() - t0:.1f} s on the train split ({len(xtr)}); held-out accuracy on the "
          f"test split ({len(xte)}): {acc:.4f} ({int((pred == yte).sum())}/{len(yte)})")
    save(net, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--which", choices=("sines", "motion", "all"), default="all")
    p.add_argument("--sines-epochs", type=int, default=30)
    p.add_argument("--motion-epochs", type=int, default=100)
    p.add_argument("--out-dir", default=str(SINES.default_weights.parent))
    args = p.parse_args(argv)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = Path(args.out_dir)
    if args.which in ("sines", "all"):
        train_sines(args.sines_epochs, out / SINES.weights_file)
    if args.which in ("motion", "all"):
        torch.manual_seed(SEED + 1)
        train_motion(args.motion_epochs, out / MOTION.weights_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
