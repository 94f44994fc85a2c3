"""Quality of `gandiag train`'s defaults on a CPU: the table in the README.

Trains each (variant, data) row with the trainer's defaults for several seeds,
then judges the final generator (its EMA when there is one) independently of the
training-time evaluation:

- ring8 / grid25: the PacGAN/VEEGAN protocol on 2,500 samples (3σ): modes
  captured, % high quality, reverse KL (gandiag.data.mixtures);
- digits: 2,000 samples through the bundled digits classifier: classes covered
  (≥ 10% of their uniform share), FID on its 64-d features against the 1,797 digits.

Writes benchmarks/results/trainer_quality.{json,md} and prints the table; saves
a sample grid of the first dcgan digits seed to docs/img/dcgan_digits_grid.png.

    PYTHONPATH=.:plugins python benchmarks/trainer_quality.py             # the full table (≈1-2 h on 2 cores)
    PYTHONPATH=.:plugins python benchmarks/trainer_quality.py --rows targets   # the three quality targets only
    ... --jobs 2    # two runs at a time (one per core); the CPU seconds stay the per-run estimate
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from gandiag.data.mixtures import MIXTURES  # noqa: E402
from gandiag.data.mixtures import mixture_mode_stats  # noqa: E402
from gandiag.generator.checkpoint import build_network, read_checkpoint  # noqa: E402
from gandiag.training import train  # noqa: E402
from gandiag.training.periodic_eval import sample_generator  # noqa: E402

OTHERS = ["gan", "cgan", "wgan", "wgan-gp", "lsgan", "hinge-sn"]
# (variant, data, options, target text, budget seconds)
TARGETS = [
    ("gan", "ring8", {"pack": 4}, "8/8 modes and ≥ 90% HQ on every seed", 120),
    ("gan", "grid25", {"pack": 4}, "≥ 24/25 modes and ≥ 50% HQ (mean)", 300),
    ("dcgan", "digits", {}, "10/10 classes", 300),
]
ROWS = {
    "targets": TARGETS,
    "ring8": [r for r in TARGETS if r[1] == "ring8"] + [(v, "ring8", {}, "", None) for v in OTHERS],
    "grid25": [r for r in TARGETS if r[1] == "grid25"] + [(v, "grid25", {}, "", None) for v in OTHERS],
    "digits": [r for r in TARGETS if r[1] == "digits"] + [(v, "digits", {}, "", None) for v in OTHERS],
}
ROWS["all"] = ROWS["ring8"] + ROWS["grid25"] + ROWS["digits"]
ROWS["others"] = [r for r in ROWS["all"] if r not in TARGETS]
for _d in ("ring8", "grid25", "digits"):
    ROWS[f"others-{_d}"] = [r for r in ROWS["others"] if r[1] == _d]
    ROWS[f"target-{_d}"] = [r for r in TARGETS if r[1] == _d]
EVAL_SEED = 2500
N_POINTS, N_IMAGES = 2500, 2000


def generator_of(ckpt: dict):
    G = build_network(ckpt["generator"])
    if ckpt.get("ema_generator") is not None:
        G.load_state_dict(ckpt["ema_generator"])
    return G.eval()


def judge(ckpt: dict, data: str) -> dict:
    c = ckpt["contract"]
    G = generator_of(ckpt)
    if data in MIXTURES:
        x = sample_generator(G, N_POINTS, c["latent_dim"], c["num_classes"], EVAL_SEED)
        s = mixture_mode_stats(x.numpy(), MIXTURES[data])
        return {k: s[k] for k in ("modes_captured", "modes_total", "high_quality_fraction", "reverse_kl", "missing_modes")}
    from gandiag.features.digits import build, digits_uint8
    from gandiag.features.featureset import FeatureSet
    from gandiag.data.images import to_uint8_nchw
    from gandiag.generator.contract import GeneratorContract
    from gandiag.metrics.fid import frechet_distance

    ext = build()
    x = to_uint8_nchw(sample_generator(G, N_IMAGES, c["latent_dim"], c["num_classes"], EVAL_SEED),
                      GeneratorContract.from_json(c))
    fake, real = FeatureSet(), FeatureSet()
    fake.add(ext(x))
    real.add(ext(digits_uint8()[0]))
    counts = np.bincount(fake.features("logits").argmax(1).numpy(), minlength=10)
    fid = frechet_distance(real.stats("pool"), fake.stats("pool"))["value"]
    return {"classes_covered": int((counts >= 0.1 * N_IMAGES / 10).sum()), "class_counts": counts.tolist(), "fid_digits": fid}


def save_grid(ckpt: dict, path: Path, n: int = 100) -> None:
    from PIL import Image

    c = ckpt["contract"]
    x = sample_generator(generator_of(ckpt), n, c["latent_dim"], c["num_classes"], 7)
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].numpy()  # (n, 8, 8)
    side = int(np.sqrt(n))
    h = x.shape[1]
    grid = np.zeros((side * (h + 1) + 1, side * (h + 1) + 1), np.uint8)
    for i in range(side * side):
        r, q = divmod(i, side)
        grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + q * (h + 1): 1 + q * (h + 1) + h] = x[i]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST).save(path)


def row_name(variant, options):
    return variant + "".join(f" --{k.replace('_', '-')} {v}" for k, v in options.items())


def summarise(runs: list, data: str) -> dict:
    def ms(key, scale=1.0):
        vals = [r[key] * scale for r in runs if r.get(key) is not None]
        if not vals:
            return "n/a"
        return f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}" if len(vals) > 1 else f"{vals[0]:.2f}"

    per_seed = lambda key, fmt: ", ".join(fmt(r[key]) if r.get(key) is not None else "n/a" for r in runs)  # noqa: E731
    out = {"seconds": ms("seconds"), "cpu_seconds": ms("cpu_seconds"), "steps_per_second": ms("steps_per_second")}
    if data in MIXTURES:
        out.update(modes=ms("modes_captured"), hq=ms("high_quality_fraction", 100), rkl=ms("reverse_kl"),
                   per_seed=per_seed("modes_captured", str) + " modes; " + per_seed("high_quality_fraction", lambda v: f"{100 * v:.1f}%"))
    else:
        out.update(classes=ms("classes_covered"), fid=ms("fid_digits"), per_seed=per_seed("classes_covered", str) + " classes")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="all", choices=sorted(ROWS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, help="override the default steps (quick checks only; not the table)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--grid", default=str(ROOT / "docs" / "img" / "dcgan_digits_grid.png"))
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time, one process and one torch thread each")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    json_path = out / f"trainer_quality{'' if args.rows == 'all' else '_' + args.rows}.json"
    rows = ROWS[args.rows]
    tasks = [(variant, data, options, seed, args.steps, args.grid) for variant, data, options, _, _ in rows for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        done = pool.imap(run_seed, tasks)  # in order: a row is complete once its last seed is back
        for variant, data, options, target, budget in rows:
            runs = [next(done) for _ in seeds]
            results.append({"variant": row_name(variant, options), "data": data, "target": target, "budget_s": budget,
                            "runs": runs, "summary": summarise(runs, data)})
            json_path.write_text(json.dumps({"machine": machine(args.jobs), "seeds": seeds, "results": results}, indent=1))
            (json_path.with_suffix(".md")).write_text(table(results, seeds, args.jobs))  # after every row
    print(table(results, seeds, args.jobs))


def timed_train(variant: str, data: str, folder, seed: int, steps=None, **options) -> tuple[dict, float, float]:
    """(checkpoint, wall seconds, CPU seconds) of one run on one torch thread, whose CPU seconds
    estimate the wall time on an unloaded core."""
    torch.set_num_threads(1)
    t, c = time.perf_counter(), time.process_time()
    path = train(variant, data, folder, steps=steps, seed=seed, progress=False, **options)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    return read_checkpoint(path), seconds, cpu


def run_seed(task) -> dict:
    """Train one (row, seed) with the trainer's defaults and judge it; runs in a worker process."""
    variant, data, options, seed, steps, grid = task
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, seconds, cpu = timed_train(variant, data, tmp, seed, steps, **options)
        n = ckpt["config"]["resolved"]["steps"]
        r = {"seed": seed, "seconds": seconds, "cpu_seconds": cpu, "steps": n, "steps_per_second": n / seconds,
             "load_average": os.getloadavg()[0], "diverged": ckpt["config"].get("diverged", False), **judge(ckpt, data)}
        if variant == "dcgan" and data == "digits" and seed == 0:
            save_grid(ckpt, Path(grid))
    print(json.dumps({"variant": row_name(variant, options), "data": data, **r}), file=sys.stderr, flush=True)
    return r


def machine(jobs: int = 1) -> dict:
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "threads": 1, "jobs": jobs, "load_average_at_end": os.getloadavg()}


def table(results: list, seeds: list, jobs: int = 1) -> str:
    lines = [f"Seeds {', '.join(map(str, seeds))}; mean ± std over seeds. Times per run, one torch thread, {jobs} run(s) "
             "at a time: wall seconds on the (shared, loaded) benchmark machine, and the process's CPU seconds, which "
             "estimate the wall time on an unloaded core.", ""]
    mix = [r for r in results if r["data"] in MIXTURES]
    if mix:
        lines += ["| data | variant | modes | % high quality | reverse KL | per seed | wall s (loaded) | CPU s (≈ unloaded) | target |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in mix:
            s = r["summary"]
            lines.append(f"| {r['data']} | `{r['variant']}` | {s['modes']} | {s['hq']} | {s['rkl']} | {s['per_seed']} | "
                         f"{s['seconds']} | {s['cpu_seconds']} | {r['target']} |")
        lines.append("")
    dig = [r for r in results if r["data"] not in MIXTURES]
    if dig:
        lines += ["| data | variant | classes covered | FID (digits features) | per seed | wall s (loaded) | CPU s (≈ unloaded) | target |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in dig:
            s = r["summary"]
            lines.append(f"| {r['data']} | `{r['variant']}` | {s['classes']} | {s['fid']} | {s['per_seed']} | {s['seconds']} | {s['cpu_seconds']} | {r['target']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
