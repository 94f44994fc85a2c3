"""Quality of the sequence variants' defaults (`tcn-gan`, `rnn-gan`) on a CPU, against TimeGAN's published rows.

Trains each row with the trainer's defaults for several seeds, then judges the
final generator (its EMA when there is one) as TimeGAN's paper does:

- as many generated sequences as real ones (sines: 10,000; a labelled source:
  its own size, a conditional G's labels cycling uniformly over the classes);
- TimeGAN's **discriminative score** (|accuracy − 0.5| of a post-hoc GRU
  telling real from generated, 0 is best) and **predictive score** (MAE on
  real sequences of a next-step GRU trained on the generated ones; the real
  data's own score is the floor), from :mod:`gandiag.metrics.sequences`,
  ``--score-runs`` runs each (TimeGAN: 10);
- the autocorrelation and marginal distances of the same module, and the
  training run's wall and CPU seconds (one torch thread).

TimeGAN Table 2 (sines, 10 runs): TimeGAN discriminative 0.011 ± 0.008,
predictive 0.093 ± 0.019 (../shared/REFERENCES.md). The other rows of that table
(RCGAN, C-RNN-GAN, ...) belong in the docs only once read from the paper.

Writes benchmarks/results/sequence_quality[_ROWS].{json,md} and prints the table.

    PYTHONPATH=.:plugins python benchmarks/sequence_quality.py --rows sines --seeds 0,1,2 --jobs 2
    PYTHONPATH=.:plugins python benchmarks/sequence_quality.py --rows basicmotions --seeds 0,1,2
    PYTHONPATH=.:plugins python benchmarks/sequence_quality.py --rows sines --seeds 0 --steps 200 --score-runs 1  # smoke test
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

from gandiag.data.sources import load_real  # noqa: E402
from gandiag.generator.checkpoint import build_network, read_checkpoint  # noqa: E402
from gandiag.training import train  # noqa: E402
from gandiag.training.periodic_eval import sample_generator  # noqa: E402

# (variant, data, options)
ROWS = {
    "sines": [("tcn-gan", "sines", {}), ("rnn-gan", "sines", {"cell": "lstm"}), ("rnn-gan", "sines", {"cell": "gru"})],
    "basicmotions": [("tcn-gan", "basicmotions", {}), ("rnn-gan", "basicmotions", {"cell": "gru"})],
}
ROWS["all"] = ROWS["sines"] + ROWS["basicmotions"]
PUBLISHED = {  # TimeGAN, Yoon et al. 2019, Table 2 (sines); mean ± std over 10 runs
    "sines": [("TimeGAN (published)", (0.011, 0.008), (0.093, 0.019))],
}
EVAL_SEED = 2500
REAL_SEED = 0


def generator_of(ckpt: dict):
    G = build_network(ckpt["generator"])
    if ckpt.get("ema_generator") is not None:
        G.load_state_dict(ckpt["ema_generator"])
    return G.eval()


def real_of(data: str) -> np.ndarray:
    return load_real(data, seed=REAL_SEED).data.numpy()


def scores():
    """The metrics engineer's TimeGAN scores, or None while gandiag.metrics.sequences does not provide them."""
    try:
        from gandiag.metrics import sequences as m
    except ImportError:
        return None
    need = ("discriminative_score", "predictive_score", "acf_distance", "marginal_w1")
    return m if all(hasattr(m, f) for f in need) else None


def _value(d):
    return d["value"] if isinstance(d, dict) else float(d)


def judge(ckpt: dict, data: str, runs: int, seed: int) -> dict:
    c = ckpt["contract"]
    real = real_of(data)
    fake = sample_generator(generator_of(ckpt), len(real), c["latent_dim"], c["num_classes"], EVAL_SEED).numpy()
    out = {"n_real": len(real), "n_fake": len(fake), "finite": bool(np.isfinite(fake).all())}
    m = scores()
    if m is None:
        out["scores"] = "gandiag.metrics.sequences does not provide the TimeGAN scores yet"
        return out
    disc = m.discriminative_score(real, fake, runs=runs, seed=seed)
    pred = m.predictive_score(real, fake, runs=runs, seed=seed)
    out.update(disc=disc["value"], disc_std=disc["std"], pred=pred["value"], pred_std=pred["std"],
               acf=_value(m.acf_distance(real, fake)), marginal_w1=_value(m.marginal_w1(real, fake)))
    return out


def real_floor(data: str, runs: int) -> dict:
    """The real data's own predictive score (trained on real, tested on real): what a perfect generator gets."""
    m = scores()
    if m is None:
        return {}
    real = real_of(data)
    pred = m.predictive_score(real, real, runs=runs, seed=0)
    return {"pred": pred["value"], "pred_std": pred["std"]}


def row_name(variant: str, options: dict) -> str:
    return " ".join([variant] + [f"--{k.replace('_', '-')} {v}" for k, v in sorted(options.items())])


def timed_train(variant: str, data: str, folder, seed: int, steps=None, **options):
    """(checkpoint, wall seconds, CPU seconds) of one run on one torch thread."""
    torch.set_num_threads(1)
    t, c = time.perf_counter(), time.process_time()
    path = train(variant, data, folder, steps=steps, seed=seed, progress=False, **options)
    return read_checkpoint(path), time.perf_counter() - t, time.process_time() - c


def run_seed(task) -> dict:
    """Train one (row, seed) with the trainer's defaults and judge it; runs in a worker process."""
    variant, data, options, seed, steps, runs = task
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, seconds, cpu = timed_train(variant, data, tmp, seed, steps, **options)
        n = ckpt["config"]["resolved"]["steps"]
        r = {"seed": seed, "seconds": seconds, "cpu_seconds": cpu, "steps": n, "load_average": os.getloadavg()[0],
             "diverged": ckpt["config"].get("diverged", False), "conditional": ckpt["config"]["variant"]["conditional"],
             **judge(ckpt, data, runs, seed)}
    print(json.dumps({"variant": row_name(variant, options), "data": data, **r}), file=sys.stderr, flush=True)
    return r


def _ms(runs: list, key: str, digits: int = 3) -> str:
    v = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    if not v:
        return "–"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.pstdev(v):.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"


def table(results: list, floors: dict, seeds: list, runs: int, jobs: int) -> str:
    lines = [f"Seeds {', '.join(map(str, seeds))}; mean ± std over seeds of each seed's score (the mean of {runs} "
             f"score run(s)). One torch thread per run, {jobs} run(s) at a time; CPU s estimates the wall time on an "
             "unloaded core.", "",
             "| data | variant | discriminative ↓ | predictive ↓ | ACF distance ↓ | marginal W1 ↓ | CPU s | wall s |",
             "|---|---|---|---|---|---|---:|---:|"]
    for data in dict.fromkeys(r["data"] for r in results):
        for r in (r for r in results if r["data"] == data):
            s = r["runs"]
            lines.append(f"| {data} | `{r['variant']}` | {_ms(s, 'disc')} | {_ms(s, 'pred')} | {_ms(s, 'acf')} | "
                         f"{_ms(s, 'marginal_w1')} | {_ms(s, 'cpu_seconds', 0)} | {_ms(s, 'seconds', 0)} |")
        if floors.get(data):
            f = floors[data]
            lines.append(f"| {data} | real data (floor) | – | {f['pred']:.3f} ± {f['pred_std']:.3f} | | | | |")
        for name, disc, pred in PUBLISHED.get(data, []):
            lines.append(f"| {data} | {name} | {disc[0]:.3f} ± {disc[1]:.3f} | {pred[0]:.3f} ± {pred[1]:.3f} | | | | |")
    missing = [r for r in results if any(isinstance(x.get("scores"), str) for x in r["runs"])]
    if missing:
        lines += ["", "Scores missing: " + missing[0]["runs"][0]["scores"]]
    return "\n".join(lines) + "\n"


def available(data: str) -> bool:
    from gandiag.data.sources import bundled_names

    return data in bundled_names()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="sines", choices=sorted(ROWS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, help="override the default steps (smoke tests only; not the table)")
    ap.add_argument("--score-runs", type=int, default=3, help="runs per TimeGAN score (TimeGAN's tables: 10)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time, one process and one torch thread each")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [r for r in ROWS[args.rows] if available(r[1])]
    for variant, data, _ in ROWS[args.rows]:
        if not available(data):
            print(f"skipping {variant} on {data}: no such real-data source here (an optional extra?)", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"sequence_quality{'' if args.rows == 'all' else '_' + args.rows}.json"
    torch.set_num_threads(1)
    floors = {d: real_floor(d, args.score_runs) for d in dict.fromkeys(r[1] for r in rows)}
    tasks = [(v, d, o, seed, args.steps, args.score_runs) for v, d, o in rows for seed in seeds]
    results = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        done = pool.imap(run_seed, tasks)  # in order: a row is complete once its last seed is back
        for variant, data, options in rows:
            runs = [next(done) for _ in seeds]
            results.append({"variant": row_name(variant, options), "data": data, "runs": runs})
            meta = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": 1, "jobs": args.jobs, "score_runs": args.score_runs, "steps": args.steps}
            json_path.write_text(json.dumps({"machine": meta, "seeds": seeds, "real_floor": floors,
                                             "results": results}, indent=1))
            json_path.with_suffix(".md").write_text(table(results, floors, seeds, args.score_runs, args.jobs))
    print(table(results, floors, seeds, args.score_runs, args.jobs))


if __name__ == "__main__":
    main()
