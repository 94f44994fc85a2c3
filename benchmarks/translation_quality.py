"""Quality of `gandiag train cyclegan` on the bundled pairs, judged by `gandiag evaluate` against each pair's truth.

Each row trains CycleGAN with the trainer's defaults (or the options the row
names) for several seeds on one CPU thread, then evaluates the checkpoint
with no other flag: both directions, every input of side A (B), against the
target side's real samples, with the pair's own features (digits: the
bundled digits classifier; points: the points themselves). Reported, as
mean ± std over seeds:

- **paired L1** against the pair's exact translation (digits-thick: A→B
  only, thin strokes cannot be recovered), 0 is the truth;
- **cycle L1**, the translators' round trip;
- **label preservation** (a classifier of the target domain's real features
  labels the outputs; the share labelled as their inputs were) next to that
  classifier's own ceiling on held-out real samples;
- **FID** to the target domain in the pair's features, and the verdicts of
  ``content_preservation``, ``input_ignored`` and ``steganographic_cycle``.

The identity loss rows flip the trainer's per-pair default: it is off for
digits-inverted (whose exact translation it penalises) and on (0.5 × λ, the
authors' setting) for digits-thick, whose truth is close to an identity
(docs/training.md, "Translators").

Writes benchmarks/results/translation_quality[_ROWS].{json,md} and prints the table.

    PYTHONPATH=. python benchmarks/translation_quality.py --seeds 0,1,2 --jobs 2
    PYTHONPATH=. python benchmarks/translation_quality.py --rows digits-inverted --seeds 0 --steps 100  # smoke test
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import tempfile
import time
from pathlib import Path
from results_io import write_results  # noqa: E402  (benchmarks/ is on sys.path when one runs)

ROOT = Path(__file__).resolve().parent.parent
ROWS = {  # name: (pair, trainer options); the defaults' identity weight is the pair's (0, 0.5, 0)
    "digits-inverted": ("digits-inverted", {}),
    "digits-inverted identity=0.5": ("digits-inverted", {"identity_weight": 0.5}),
    "digits-thick": ("digits-thick", {}),
    "digits-thick identity=0": ("digits-thick", {"identity_weight": 0.0}),
    "ring8-rotated": ("ring8-rotated", {}),
}
MEASURES = ("paired_l1", "cycle_l1", "label_preservation", "fid")
VERDICTS = ("content_preservation", "input_ignored", "steganographic_cycle")


def run_seed(task) -> dict:
    """Train one seed of one row and evaluate it; the numbers of both directions."""
    import resource

    import torch

    import gandiag
    from gandiag.training import train

    row, seed, steps = task
    pair, options = ROWS[row]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
        path = train("cyclegan", pair, folder, steps=steps, seed=seed, progress=False, **options)
        wall, cpu = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
        r = gandiag.evaluate(path, progress=False, seed=seed)
    out = {"seed": seed, "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1)}
    for suffix in ("", ":b2a"):
        for name in MEASURES:
            entry = r.metrics.get(name + suffix) or {}
            out[name + suffix] = entry.get("value")
            if name == "label_preservation":
                out["ceiling" + suffix] = entry.get("ceiling")
        for name in VERDICTS:
            out[name + suffix] = (r.diagnostics.get(name + suffix) or {}).get("verdict")
    return out


def _ms(runs: list, key: str, digits: int = 3) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _verdicts(runs: list, key: str) -> str:
    seen = [r[key] for r in runs if r.get(key)]
    return ", ".join(f"{v} ×{seen.count(v)}" for v in dict.fromkeys(seen)) or "n/a"


def table(results: list, seeds: list) -> str:
    lines = [f"CycleGAN on the bundled pairs, seeds {','.join(map(str, seeds))}, one CPU thread "
             f"({platform.processor() or platform.machine()}); mean ± std over seeds.", "",
             "| row | direction | paired L1 | cycle L1 | label preservation (ceiling) | FID | content | input "
             "ignored | steganographic | train s |", "|" + " --- |" * 10]
    for res in results:
        runs = res["runs"]
        for suffix, label in (("", "A→B"), (":b2a", "B→A")):
            lines.append(
                f"| {res['row']} | {label} | {_ms(runs, 'paired_l1' + suffix)} | {_ms(runs, 'cycle_l1' + suffix)} | "
                f"{_ms(runs, 'label_preservation' + suffix, 2)} ({_ms(runs, 'ceiling' + suffix, 2)}) | "
                f"{_ms(runs, 'fid' + suffix, 2)} | {_verdicts(runs, 'content_preservation' + suffix)} | "
                f"{_verdicts(runs, 'input_ignored' + suffix)} | {_verdicts(runs, 'steganographic_cycle' + suffix)} | "
                f"{_ms(runs, 'train_wall_s', 0) if not suffix else ''} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, help="override the trainer's default steps (smoke tests)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}: choose from {', '.join(ROWS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = [(row, seed, args.steps) for row in rows for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        done = pool.map(run_seed, tasks, chunksize=1)
    results = [{"row": row, "pair": ROWS[row][0], "options": ROWS[row][1],
                "runs": [d for (r, _, _), d in zip(tasks, done) if r == row]} for row in rows]
    stem = "translation_quality" + ("" if args.rows == ",".join(ROWS) else "_" + "_".join(
        r.replace(" ", "_").replace("=", "") for r in rows)) + ("" if args.steps is None else f"_steps{args.steps}")
    write_results(args.out, stem, {"seeds": seeds, "steps": args.steps, "results": results}, table(results, seeds))


if __name__ == "__main__":
    main()
