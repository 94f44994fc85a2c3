"""Remake the trained-generator fixtures under tests/fixtures/models/ with `gandiag train`.

Each fixture is a run folder holding `checkpoint.pt` (optimizer states dropped to
keep the repository small, so fixtures cannot be resumed; everything else as the
trainer wrote it) and `log.jsonl`. Measured numbers go to
tests/fixtures/models/fixtures.json (tests/fixtures/models/README.md quotes them).

    PYTHONPATH=.:plugins python scripts/make_fixtures.py [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "benchmarks")]

from trainer_quality import judge  # noqa: E402

from gandiag.generator.checkpoint import read_checkpoint, save_checkpoint  # noqa: E402
from gandiag.training import train  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "models"
SMALL_IMAGES = {"width": 32, "latent_dim": 32}
SMALL_POINTS = {"width": 64}

# name: (variant, data, options, what it is for, seeds to try, accept(result) -> bool)
FIXTURES = {
    "ring8_gan_pack4": ("gan", "ring8", {"pack": 4, **SMALL_POINTS}, "healthy: PacGAN4 on ring8", [0], None),
    "ring8_gan_collapsed": ("gan", "ring8", {"steps": 800, "ema": 0.0, **SMALL_POINTS}, "collapsed: plain GAN on ring8 that drops modes",
                            list(range(10)), lambda r: r["modes_captured"] <= 6),
    "ring8_wgan_gp": ("wgan-gp", "ring8", {"steps": 1000, "ema": 0.0, **SMALL_POINTS}, "WGAN-GP on ring8, 1000 steps at the published lr 1e-4: under-trained", [0], None),
    "ring8_gan_lr1": ("gan", "ring8", {"steps": 300, "lr_g": 1.0, "lr_d": 1.0, "ema": 0.0, **SMALL_POINTS},
                      "broken learning rate (1.0): diverged or saturated D", [0], None),
    "digits_dcgan": ("dcgan", "digits", {"steps": 2000, **SMALL_IMAGES}, "healthy DCGAN on digits", [0], None),
    "digits_dcgan_no789": ("dcgan", "digits", {"steps": 2000, "exclude_classes": [7, 8, 9], **SMALL_IMAGES},
                           "DCGAN starved of classes 7, 8, 9 (data source still 'digits')", [0], None),
    "digits_cgan": ("cgan", "digits", {"steps": 2000, **SMALL_IMAGES}, "class-conditional GAN on digits", [0], None),
}


def make(name: str) -> dict:
    variant, data, options, purpose, seeds, accept = FIXTURES[name]
    options = dict(options)
    steps = options.pop("steps", None)
    folder = OUT / name
    for seed in seeds:
        shutil.rmtree(folder, ignore_errors=True)
        t = time.perf_counter()
        path = train(variant, data, folder, steps=steps, seed=seed, progress=False, **options)
        seconds = time.perf_counter() - t
        ckpt = read_checkpoint(path)
        result = judge(ckpt, data) if not ckpt["config"].get("diverged") else {"diverged": True}
        if accept is None or accept(result):
            break
    else:
        raise SystemExit(f"{name}: no seed in {seeds} gave the wanted model; last: {result}")
    ckpt["optimizers"] = {}  # keep fixtures small; they are for evaluation, not resuming
    save_checkpoint(ckpt, path)
    cmd = f"gandiag train {variant} --data {data} --out {name} --seed {seed}" + (f" --steps {steps}" if steps else "") + "".join(
        f" --{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in options.items())
    return {"name": name, "purpose": purpose, "command": cmd, "seed": seed, "seconds": round(seconds, 1),
            "diverged": ckpt["config"].get("diverged", False), "bytes": path.stat().st_size, **result}


README_HEAD = """# Trained-generator fixtures

Small generators trained by gandiag's own trainer (`gandiag train`), healthy and
broken, so the tests of the evaluation, diagnostics and report use real models.
Remake them all with `PYTHONPATH=.:plugins python scripts/make_fixtures.py`
(one with `--only NAME`); the numbers below are rewritten from `fixtures.json`.

Each folder holds `checkpoint.pt` (gandiag checkpoint format, loads with
`weights_only=True`, data source recorded so `gandiag evaluate DIR/checkpoint.pt`
needs no flag; optimizer states dropped to keep them small, so they cannot be
resumed) and the run's `log.jsonl` (docs/training-log.md). Nets are smaller than
the trainer's defaults (points: width 64; digits: width 32, latent 32).

Measured on the final generator: 2D mixtures with the PacGAN protocol (2,500
samples, 3σ); digits with 2,000 samples through the digits classifier (classes
covered = classes with ≥ 10% of their uniform share; FID on its 64-d features
against the 1,797 digits).

The digits fixtures below were trained on all 1,797 digits, before the trainer
held out a fixed fifth of them (docs/diagnostics.md, "Memorisation"); their
checkpoints record no `data.split`, and the `memorization` verdict says so. They
were re-measured after the split and kept: `memorization` none for each (copy share
0.1-0.7% against the held-out digits' 5%), every other verdict unchanged. Remade
with the current trainer, they would train on the 1,438 training rows.

"""


def write_readme(records: list) -> None:
    lines = ["| fixture | what it is | how it was made | measured | train s | size |", "|---|---|---|---|---|---|"]
    for r in records:
        if r.get("diverged"):
            m = "diverged (NaN)"
        elif "modes_captured" in r:
            rkl = "n/a" if r["reverse_kl"] is None else f"{r['reverse_kl']:.3f}"
            m = (f"{r['modes_captured']}/{r['modes_total']} modes, {100 * r['high_quality_fraction']:.1f}% HQ, "
                 f"rev-KL {rkl}; missing {r['missing_modes'] or 'none'}")
        else:
            m = f"{r['classes_covered']}/10 classes, FID {r['fid_digits']:.2f}; counts {r['class_counts']}"
        lines.append(f"| `{r['name']}` | {r['purpose']} | `{r['command']}` | {m} | {r['seconds']} | {r['bytes'] // 1024} KiB |")
    (OUT / "README.md").write_text(README_HEAD + "\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated fixture names")
    ap.add_argument("--readme-only", action="store_true", help="rewrite README.md from fixtures.json")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(FIXTURES)
    OUT.mkdir(parents=True, exist_ok=True)
    index = OUT / "fixtures.json"
    known = {r["name"]: r for r in json.loads(index.read_text())} if index.exists() else {}
    if args.readme_only:
        return write_readme([known[n] for n in FIXTURES if n in known])
    for name in names:
        r = make(name)
        # re-read: another `--only` process may have written its fixtures meanwhile
        known = {r["name"]: r for r in json.loads(index.read_text())} if index.exists() else {}
        known[name] = r
        print(json.dumps(r), flush=True)
        index.write_text(json.dumps([known[n] for n in FIXTURES if n in known], indent=1) + "\n")
    write_readme([known[n] for n in FIXTURES if n in known])


if __name__ == "__main__":
    main()
