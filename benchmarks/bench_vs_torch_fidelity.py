"""gandiag against torch-fidelity, same inputs, same device, one process.

Three measurements, each printed with both times and the ratio
(torch-fidelity time / gandiag time; > 1 means gandiag is faster):

1. end to end: IS + FID + KID on two image folders (Inception-v3, the same
   weights file for both tools); then gandiag again with its real-feature
   cache warm, as a user re-evaluating checkpoints against the same data sees;
2. the FID statistics stage alone at 2048-d, N >= d: mean/covariance of both
   sets and the Fréchet distance (torch-fidelity: np.cov + eigvals; gandiag:
   streaming float64 stats + Cholesky/eigvalsh);
3. the same stage with N < d (rank-deficient covariances; gandiag uses the
   N×N SVD form);
4. the KID stage alone at 2048-d, 100 subsets of 1,000, the same seed (so the
   same subsets): torch-fidelity computes each subset's kernels; gandiag the
   kernel over the whole sets once where that costs less (metrics/kid.py).

The values themselves are compared too: a speed-up that changes the number
would be worthless.

    python benchmarks/bench_vs_torch_fidelity.py [--images 100] [--n-stats 10000] [--device cpu]
        [--weights PATH]   # real Inception weights; default: a random Inception saved to a temp file
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def timed(fn, repeats=1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def end_to_end(n_images: int, device: str, weights: str, tmp: Path) -> list:
    import torch_fidelity
    from conftest import colour_digits, write_pngs

    import gandiag

    fake = write_pngs(tmp / "fake", colour_digits(n_images, seed=1, shift=0.05))
    real = write_pngs(tmp / "real", colour_digits(n_images, seed=2))
    kw = dict(kid_subset_size=min(1000, n_images // 2), kid_subsets=100)
    os.environ["GANDIAG_CACHE_DIR"] = str(tmp / "cache")
    t_tf, ref = timed(lambda: torch_fidelity.calculate_metrics(
        input1=fake, input2=real, isc=True, fid=True, kid=True, cuda=device.startswith("cuda"), verbose=False,
        feature_extractor_weights_path=weights, cache=False, batch_size=64, **kw))
    run = lambda: gandiag.evaluate(fake, real, metrics=["is", "fid", "kid"], feature_extractor="inception-v3",
                                   feature_weights=weights, device=device, batch_size=64, diagnostics=False,
                                   kid_subsets=kw["kid_subsets"], kid_subset_size=kw["kid_subset_size"])
    t_cold, ours = timed(run)  # fills the real-feature cache
    t_warm, ours2 = timed(run)
    fid_ref, fid_ours = ref["frechet_inception_distance"], ours.value("fid")
    assert abs(fid_ref - fid_ours) <= 1e-4 * abs(fid_ref), (fid_ref, fid_ours)
    assert ours2.value("fid") == fid_ours
    return [
        (f"end to end, {n_images}+{n_images} images, IS+FID+KID", t_tf, t_cold, f"FID {fid_ref:.6g} vs {fid_ours:.6g}"),
        ("  same, gandiag real features cached", t_tf, t_warm, ""),
    ]


def _features(n, d, seed):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(rng.normal(size=(n, d)) @ mix + 0.05 * seed, 0).astype(np.float32)  # ReLU-like, as pool3


def stats_stage(n: int, d: int, device: str) -> tuple:
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    from gandiag.features.stats import FeatureStats
    from gandiag.metrics.fid import frechet_distance

    x1, x2 = _features(n, d, 1), _features(n, d, 2)
    t1, t2 = torch.from_numpy(x1), torch.from_numpy(x2)

    def ref():
        s1, s2 = fid_features_to_statistics(t1), fid_features_to_statistics(t2)
        return fid_statistics_to_metric(s1, s2, False)["frechet_inception_distance"]

    def ours():
        s1, s2 = FeatureStats.empty(d), FeatureStats.empty(d)
        for i in range(0, n, 500):  # as the pipeline streams batches
            s1.update(t1[i : i + 500].to(device))
            s2.update(t2[i : i + 500].to(device))
        return frechet_distance(s1, s2, t1 if n < d else None, t2 if n < d else None, device)["value"]

    t_ref, v_ref = timed(ref, 2)
    t_ours, v_ours = timed(ours, 2)
    assert abs(v_ref - v_ours) <= 1e-6 * abs(v_ref), (v_ref, v_ours)
    return (f"FID statistics stage, N={n}, d={d}", t_ref, t_ours, f"FID {v_ref:.8g} vs {v_ours:.8g}")


def kid_stage(n: int, d: int, device: str) -> tuple:
    from torch_fidelity.metric_kid import kid_features_to_metric

    from gandiag.metrics.kid import kid

    t1, t2 = torch.from_numpy(_features(n, d, 1)), torch.from_numpy(_features(n, d, 2))
    m = min(1000, n)
    t_ref, ref = timed(lambda: kid_features_to_metric(t1, t2, kid_subsets=100, kid_subset_size=m, rng_seed=2020,
                                                      verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3,
                                                      kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1))
    t_ours, ours = timed(lambda: kid(t1, t2, 100, m, 2020, device))
    v_ref, v_ours = ref["kernel_inception_distance_mean"], ours["value"]
    assert abs(v_ref - v_ours) <= 1e-4 * abs(v_ref), (v_ref, v_ours)  # its sums are float32 (6e-5 seen)
    return (f"KID stage, N={n}, d={d}, 100 subsets of {m}", t_ref, t_ours, f"KID {v_ref:.7g} vs {v_ours:.7g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--n-stats", type=int, default=10000)
    ap.add_argument("--n-lowrank", type=int, default=1000)
    ap.add_argument("--n-kid", default="2000,10000", help="comma-separated set sizes for the KID stage rows")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--weights", help="Inception weights file (default: random weights, offline)")
    ap.add_argument("--skip-end-to-end", action="store_true")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = args.weights
        if not weights and not args.skip_end_to_end:
            from conftest import _random_inception_state

            weights = str(tmp / "random-inception.pth")
            torch.save(_random_inception_state(), weights)
        if not args.skip_end_to_end:
            rows += end_to_end(args.images, args.device, weights, tmp)
        rows.append(stats_stage(args.n_stats, 2048, args.device))
        rows.append(stats_stage(args.n_lowrank, 2048, args.device))
        rows += [kid_stage(int(n), 2048, args.device) for n in args.n_kid.split(",") if n]
    dev = args.device if args.device == "cpu" else torch.cuda.get_device_name(0)
    print(f"device: {dev}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print("| measurement | torch-fidelity (s) | gandiag (s) | speed-up | check |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, a, b, note in rows:
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.1f}x | {note} |")
    if args.json:
        import torch_fidelity

        Path(args.json).write_text(json.dumps({
            "device": dev, "torch": torch.__version__, "torch_fidelity": torch_fidelity.__version__,
            "threads": torch.get_num_threads(),
            "rows": [dict(zip(("name", "torch_fidelity_s", "gandiag_s", "check"), r)) for r in rows]}, indent=2))


if __name__ == "__main__":
    main()
