"""Try trainer settings side by side: one process (one torch thread) per run.

How the trainer's per-data defaults were chosen (docs/training.md): each run
is a (variant, data, options, seed); runs go to a pool of worker processes,
each judged like benchmarks/trainer_quality.py (the final generator, its EMA
and its raw weights both, for the mixtures on the 2,500-sample protocol),
with the %HQ trajectory of the run's periodic evaluations. Results stream to
a JSON-lines file as runs finish, so a sweep cut short keeps what it did.

    PYTHONPATH=.:plugins python benchmarks/sweep_trainer.py runs.json --workers 8 --out sweep.jsonl

runs.json: [{"name": "wide", "variant": "gan", "data": "grid25", "seed": 0,
             "options": {"pack": 4, "width": 256, "steps": 20000}}, ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "benchmarks")]


def run_one(spec: dict) -> dict:
    from trainer_quality import judge, timed_train

    from gandiag.training import read_log

    options = dict(spec.get("options", {}))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ckpt, seconds, cpu = timed_train(spec["variant"], spec["data"], tmp, spec.get("seed", 0), **options)
        except Exception as exc:  # a sweep reports a failed setting and goes on
            return {**spec, "error": f"{type(exc).__name__}: {exc}"}
        out = {**spec, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
               "steps": ckpt["config"]["resolved"]["steps"], "final": judge(ckpt, spec["data"])}
        if ckpt.get("ema_generator") is not None:
            raw = dict(ckpt, ema_generator=None)
            out["final_raw"] = judge(raw, spec["data"])
        evals = [r for r in read_log(Path(tmp) / "log.jsonl") if "eval" in r]
        out["trajectory"] = [{"step": r["step"], **{k: v for k, v in r["eval"].items() if isinstance(v, (int, float))}}
                             for r in evals]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", help="JSON list of runs")
    ap.add_argument("--workers", type=int, default=max(mp.cpu_count() - 1, 1))
    ap.add_argument("--out", default="sweep.jsonl")
    args = ap.parse_args()
    runs = json.loads(Path(args.runs).read_text())
    out = Path(args.out)
    with mp.get_context("spawn").Pool(args.workers) as pool, out.open("a") as f:
        for r in pool.imap_unordered(run_one, runs):
            f.write(json.dumps(r, default=float) + "\n")
            f.flush()
            fin = r.get("final", {})
            print(r["name"], r.get("seed"), r.get("error") or
                  f"modes {fin.get('modes_captured')} hq {fin.get('high_quality_fraction', 0):.3f} cpu {r['cpu_seconds']}s",
                  flush=True)


if __name__ == "__main__":
    main()
