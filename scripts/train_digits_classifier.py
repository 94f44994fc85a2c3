"""Train the ``digits`` feature extractor and write gandiag/features/weights/digits_classifier.pt.

Deterministic on CPU (fixed seeds, one thread count) so the shipped weights
can be rebuilt and their sha256 compared. Trains on the same uint8 form the
``digits`` real source serves, through the same preprocess() the extractor
uses, and holds out heldout_split()'s test indices for the accuracy report.

Augmentation is chosen for what the network will be shown: small shifts (hand-
drawn digits are not centred exactly) and round trips through larger sizes,
resize filters and RGB (what a generator trained on upscaled digits emits).

    PYTHONPATH=. python scripts/train_digits_classifier.py
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
from gandiag.features.digits import DEFAULT_WEIGHTS, DigitsNet, digits_uint8, heldout_split, preprocess  # noqa: E402

SEED = 0
UPSCALE_SIZES = (12, 16, 20, 24, 28, 32)
UPSCALE_MODES = ("bilinear", "nearest", "bicubic")


def shift(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each image moved by -1..1 pixels in each direction, zeros filled in."""
    padded = F.pad(x, (1, 1, 1, 1))
    dy, dx = rng.integers(0, 3, size=(2, x.shape[0]))
    return torch.stack([padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8] for i in range(x.shape[0])])


def round_trip(x: torch.Tensor, size: int, mode: str, rgb: bool) -> torch.Tensor:
    """uint8 8x8 -> uint8 size x size (grey or RGB), as a generator would emit it."""
    kw = {} if mode == "nearest" else {"align_corners": False}
    up = F.interpolate(x.float(), size=(size, size), mode=mode, **kw)
    up = up.round().clamp(0, 255).to(torch.uint8)
    return up.expand(-1, 3, -1, -1).contiguous() if rgb else up


def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A uint8 batch -> the float 8x8 batch the network trains on."""
    x = shift(x, rng)
    if rng.random() < 0.5:
        size = int(rng.choice(UPSCALE_SIZES))
        x = round_trip(x, size, str(rng.choice(UPSCALE_MODES)), bool(rng.random() < 0.5))
    return preprocess(x)


def accuracy(net, images, labels, **trip) -> float:
    x = round_trip(images, **trip) if trip else images
    with torch.no_grad():
        _, logits = net.eval()(preprocess(x))
    return float((logits.argmax(1).numpy() == labels).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    args = p.parse_args(argv)

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)

    images, labels = digits_uint8()
    train, test = heldout_split()
    xtr, ytr = images[train], torch.from_numpy(labels[train])
    net = DigitsNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    batch = 64
    steps = args.epochs * ((len(train) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)

    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(len(train)))
        for i in range(0, len(train), batch):
            b = order[i : i + batch]
            _, logits = net(augment(xtr[b], rng))
            loss = F.cross_entropy(logits, ytr[b], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 10 == 0:
            acc = accuracy(net, images[test], labels[test])
            print(f"epoch {epoch + 1:3d}  loss {loss.item():.3f}  held-out acc {acc:.4f}", flush=True)
    elapsed = time.perf_counter() - t0

    xte, yte = images[test], labels[test]
    print(f"trained in {elapsed:.1f} s on {len(train)} images; held-out ({len(test)} images):")
    print(f"  8x8 grey                   {accuracy(net, xte, yte):.4f}")
    for size, mode, rgb in ((16, "nearest", False), (28, "bilinear", True), (32, "bilinear", True), (32, "bicubic", False)):
        a = accuracy(net, xte, yte, size=size, mode=mode, rgb=rgb)
        print(f"  {size}x{size} {mode:8s} {'RGB ' if rgb else 'grey'}     {a:.4f}")

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out} ({len(buf.getvalue())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
