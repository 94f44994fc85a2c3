"""The k-NN metrics' stage: gandiag's precision/recall/density/coverage against clovaai's ``prdc`` and
torch-fidelity's precision/recall, same features, same process, values checked equal before times are compared.

Features are synthetic (offline there are no 50k real images), float32 as extractors give them, of two
kinds (``--data``): ``clouds``, two independent Gaussian clouds of N points in D dimensions, the fake one
shifted and scaled a little (every distance within a few percent of every other: the hardest case for
screening in float32); ``manifold``, non-negative features on a 16-dimensional manifold (a ReLU of a
random linear map), as a network's pooled features are, the fake latents shifted and widened. gandiag
computes all four in one set of distance passes, screened in float32 and settled in float64
(gandiag/metrics/prdc.py, screening.py; each row says how many of its three passes fell back to float64
products); clovaai's package computes them with
scikit-learn's pairwise distances over whole N×N matrices (O(N²) memory: rows where it would not fit are
marked "skipped"); torch-fidelity computes precision and recall only (k=3), in float32 on the device.

    PYTHONPATH=. python benchmarks/bench_knn.py --n 2000,10000 --dim 2048 --data clouds,manifold
    PYTHONPATH=. python benchmarks/bench_knn.py --n 10000,50000 --dim 2048 --device cuda

Writes benchmarks/results/bench_knn_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from results_io import write_results  # noqa: E402  (benchmarks/ is on sys.path when one runs)

ROOT = Path(__file__).resolve().parent.parent
CLOVA_MAX_N = 20000  # N×N float64 matrices: 3.2 GB each at 20k; beyond that the package cannot run here


def clouds(n: int, dim: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, dim), dtype=np.float32)
    fake = rng.standard_normal((n, dim), dtype=np.float32) * 1.02 + 0.01
    return real, fake


def manifold(n: int, dim: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((16, dim)) / 4.0
    real = np.maximum(rng.standard_normal((n, 16)) @ w + 0.3, 0).astype(np.float32)
    fake = np.maximum((rng.standard_normal((n, 16)) * 1.1 + 0.1) @ w + 0.3, 0).astype(np.float32)
    return real, fake


DATA = {"clouds": clouds, "manifold": manifold}


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def ours(real, fake, device: str) -> tuple:
    """(the four, seconds, passes that fell back to float64 products)."""
    from gandiag.metrics import screening
    from gandiag.metrics.prdc import all_four

    fallbacks, crowded = [], screening.Screen.crowded

    def counted(screen):
        fallbacks.append(screen.dtype != torch.float64)
        crowded(screen)

    screening.Screen.crowded = counted
    try:
        x, y = torch.from_numpy(real), torch.from_numpy(fake)
        out, seconds = timed(lambda: all_four(x, y, 3, 5, device))
    finally:
        screening.Screen.crowded = crowded
    return out, seconds, sum(fallbacks)


def clovaai(real, fake) -> tuple:
    import prdc

    d3, t3 = timed(lambda: prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=3))
    d5, t5 = timed(lambda: prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5))
    return {"precision": float(d3["precision"]), "recall": float(d3["recall"]), "density": float(d5["density"]),
            "coverage": float(d5["coverage"])}, t3 + t5


def fidelity(real, fake, device: str) -> tuple:
    from torch_fidelity.metric_prc import prc_features_to_metric

    x, y = torch.from_numpy(real).to(device), torch.from_numpy(fake).to(device)
    # its convention: features_1 generated, features_2 real; the memory-saving path, as at 50k one must
    out, t = timed(lambda: prc_features_to_metric(y, x, prc_neighborhood=3, prc_batch_size=10000,
                                                  save_cpu_ram=True, verbose=False))
    return {"precision": float(out["precision"]), "recall": float(out["recall"])}, t


def row(data: str, n: int, dim: int, device: str, peers: bool) -> dict:
    real, fake = DATA[data](n, dim)
    mine, t_mine, fallbacks = ours(real, fake, device)
    out = {"data": data, "n": n, "dim": dim, "device": device, "gandiag_s": round(t_mine, 2), "gandiag": mine,
           "float64_passes": fallbacks, "peers_run": peers}
    if not peers:
        return out
    if n <= CLOVA_MAX_N:
        ref, t_ref = clovaai(real, fake)
        out.update(clovaai_s=round(t_ref, 2), clovaai=ref,
                   same_as_clovaai=all(abs(ref[k] - mine[k]) < 1e-9 for k in ref))
    try:
        tf, t_tf = fidelity(real, fake, device)
        out.update(torch_fidelity_s=round(t_tf, 2), torch_fidelity=tf,
                   same_as_torch_fidelity=all(abs(tf[k] - mine[k]) < 1e-3 for k in tf))
    except Exception as exc:  # torch-fidelity's API moves between versions: say so rather than fail
        out["torch_fidelity_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


def table(rows: list) -> str:
    lines = [f"k-NN metrics stage (precision/recall k=3, density/coverage k=5), torch {torch.__version__}, "
             f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads", "",
             "| features | N real + N fake | dim | device | gandiag, all four (s) | passes in float64 | "
             "clovaai prdc, all four (s) | speed-up | torch-fidelity, P/R only (s) | same values? |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        c = r.get("clovaai_s")
        same = []
        if "same_as_clovaai" in r:
            same.append("prdc: " + ("yes" if r["same_as_clovaai"] else "NO"))
        if "same_as_torch_fidelity" in r:
            same.append("torch-fidelity P/R: " + ("yes" if r["same_as_torch_fidelity"] else "NO"))
        ratio = f"{c / r['gandiag_s']:.1f}x" if c else "–"
        missing = "skipped (N×N memory)" if r["peers_run"] else "not run"
        lines.append(f"| {r['data']} | {r['n']:,} | {r['dim']} | {r['device']} | {r['gandiag_s']} | "
                     f"{r['float64_passes']} of 3 | {c if c is not None else missing} | {ratio} | "
                     f"{r.get('torch_fidelity_s', 'n/a' if r['peers_run'] else 'not run')} | {', '.join(same) or '–'} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="2000,10000")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--data", default="clouds", help="comma-separated: " + ", ".join(DATA))
    ap.add_argument("--peers-up-to", type=int, default=10 ** 9,
                    help="run clovaai's prdc and torch-fidelity only for N up to this (they take minutes at 50k)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    rows = []
    for data in args.data.split(","):
        for n in (int(v) for v in args.n.split(",")):
            rows.append(row(data, n, args.dim, args.device, n <= args.peers_up_to))
            print(json.dumps(rows[-1]), flush=True)
    write_results(args.out, f"bench_knn_{args.device.split(':')[0]}", {"torch": torch.__version__, "rows": rows},
                  table(rows))


if __name__ == "__main__":
    main()
