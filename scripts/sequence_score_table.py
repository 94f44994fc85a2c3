"""TimeGAN's scores on sines as gandiag computes them, beside TimeGAN's published rows (docs/sequences.md).

    python scripts/sequence_score_table.py [--runs 10] [--n 1000]

Real data: sines drawn with seed 1; "another draw": seed 2; noise: uniform [0, 1]; collapsed: one
sequence of the other draw repeated. Prints a markdown table with seconds per run (CPU, one thread).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gandiag.data.sequences import sines_data
from gandiag.metrics import sequences as S


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=S.TIMEGAN_SCORE_RUNS)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    real = sines_data(a.n, seed=1).astype(np.float32)
    other = sines_data(a.n, seed=2).astype(np.float32)
    sets = {"another draw of sines (real vs real)": other,
            "uniform noise in [0, 1]": np.random.default_rng(0).uniform(0, 1, real.shape).astype(np.float32),
            "collapsed: one sequence repeated": np.repeat(other[:1], a.n, axis=0)}
    print(f"| generated ({a.n} vs {a.n} sines, {a.runs} runs) | discriminative | s/run | predictive | s/run |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, fake in sets.items():
        t0 = time.process_time()
        d = S.discriminative_score(real, fake, a.runs, a.seed)
        t1 = time.process_time()
        p = S.predictive_score(real, fake, a.runs, a.seed)
        t2 = time.process_time()
        print(f"| {name} | {d['value']:.3f} ± {d['std']:.3f} | {(t1 - t0) / a.runs:.1f} | "
              f"{p['value']:.3f} ± {p['std']:.3f} | {(t2 - t1) / a.runs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
