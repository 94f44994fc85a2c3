"""Each --compute-precision mode against strict fp32: the metrics' deviations and the feature pass's speed.

Two cases, as the issue asks, both offline:

- the bundled data: the digits DCGAN of tests/fixtures against the bundled digits, digits-classifier
  features, 10,000 samples (FID, KID, precision, recall, density, coverage);
- the suite's images: 400 + 400 coloured digits (tests/conftest.py), Inception-v3 with random weights
  (the same cost and the same numerics as the real ones), compiled (IS, FID, KID).

On a CPU the modes are strict and bf16 (tf32 is a GPU mode and runs strict there); with --device cuda
tf32 and torch's default are measured too. Writes benchmarks/results/compute_precision_<device>.{json,md}.

    PYTHONPATH=. python benchmarks/compute_precision.py [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from results_io import write_results  # noqa: E402  (benchmarks/ is on sys.path when one runs)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
DCGAN = ROOT / "tests" / "fixtures" / "models" / "digits_dcgan" / "checkpoint.pt"


def run(target, real, mode, device, **kw) -> dict:
    import gandiag

    t = time.perf_counter()
    r = gandiag.evaluate(target, real, compute_precision=mode, device=device, progress=False, use_cache=False,
                         diagnostics=False, **kw)
    return {"seconds": round(time.perf_counter() - t, 2), "precision": r.provenance["compute"]["precision"],
            "metrics": {k: m["value"] for k, m in r.metrics.items() if isinstance(m.get("value"), float)},
            "features_s": round(r.provenance["timings_s"].get("features", 0.0), 2)}


def cases(device: str, tmp: Path) -> dict:
    from conftest import _random_inception_state, colour_digits, write_pngs

    weights = tmp / "inception.pth"
    torch.save(_random_inception_state(), weights)
    fake = write_pngs(tmp / "fake", colour_digits(400, seed=1, shift=0.05))
    real = write_pngs(tmp / "real", colour_digits(400, seed=2))
    return {
        "bundled digits (DCGAN, digits features, 10,000 samples)":
            (DCGAN, None, dict(num_samples=10000)),
        "suite's images (400 + 400, Inception-v3, compiled)":
            (fake, real, dict(feature_extractor=["inception-v3"], feature_weights=[str(weights)], compile=True,
                              metrics=["is", "fid", "kid"], kid_subset_size=200, batch_size=50)),
    }


def table(rows: dict) -> str:
    lines = [f"--compute-precision against strict fp32, torch {torch.__version__}, "
             f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads", "",
             "| case | mode | metric | strict | mode's | relative deviation | feature pass (s) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for case, modes in rows.items():
        base = modes["strict"]
        for mode, r in modes.items():
            if mode == "strict":
                continue
            for name, v in r["metrics"].items():
                b = base["metrics"].get(name)
                dev = abs(v - b) / abs(b) if b else float("nan")
                lines.append(f"| {case} | {r['precision']} | {name} | {b:.6g} | {v:.6g} | {dev:.2%} | "
                             f"{base['features_s']} → {r['features_s']} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    modes = ["strict", "bf16"] + (["tf32", None] if args.device.startswith("cuda") else [])
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, (target, real, kw) in cases(args.device, Path(tmp)).items():
            rows[case] = {}
            for mode in modes:
                rows[case][mode or "torch default"] = run(target, real, mode, args.device, **kw)
                print(case, mode, json.dumps(rows[case][mode or "torch default"]), flush=True)
    write_results(args.out, f"compute_precision_{args.device.split(':')[0]}",
                  {"torch": torch.__version__, "rows": rows}, table(rows))


if __name__ == "__main__":
    main()
