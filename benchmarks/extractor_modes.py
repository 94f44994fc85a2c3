"""How fast Inception-v3 extracts features in each way gandiag could run it, and how far each is from eager fp32.

Issue 15 asks for compile defaults on the GPU (channels_last, cuDNN autotuning, CUDA graphs) decided by
measurement; this is that measurement, run in one process on one device so the rows compare. Each
configuration runs gandiag's own Inception extractor (torch-fidelity's TF-compatible port, random weights:
the same cost and numerics as the real ones) over the same uint8 images, batch by batch as the pipeline
calls it, and reports:

- steady images/s (after the warm-up batches, timed with the device synchronised);
- the first call's seconds (compilation, autotuning, graph capture: what a run pays once);
- the largest absolute feature difference from eager strict fp32 on the same images (pool3 and logits);
- the images a run must extract before the configuration pays for its first call against eager, the
  number ``gandiag.features.compiled.COMPILE_FROM`` holds per device type.

Configurations (``--configs``; each may be suffixed ``+tf32`` for TensorFloat-32 convolutions and products):
``eager``, ``eager-cl`` (channels_last input and weights), ``eager-bench`` (``cudnn.benchmark``),
``compile`` (inductor, as gandiag compiles today: freezing on a CPU), ``compile-cl``,
``compile-cudagraphs`` (``mode="reduce-overhead"``: CUDA graphs), ``compile-max`` (``max-autotune``, minutes
of autotuning). By default a CPU runs ``eager,compile`` and a GPU the ones worth a 15-minute lease.

    PYTHONPATH=. python benchmarks/extractor_modes.py --device cuda --batch 256 --images 4096
    PYTHONPATH=. python benchmarks/extractor_modes.py --device cpu --batch 32 --images 96

Writes benchmarks/results/extractor_modes_<device>.{json,md}.
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
WARMUP_BATCHES = 2
DEFAULT_CONFIGS = {"cpu": "eager,compile",
                   "cuda": "eager,eager+tf32,eager-cl+tf32,eager-bench+tf32,compile+tf32,compile-cudagraphs+tf32,"
                           "compile-cudagraphs"}  # three compilations: about three minutes on an H100 host


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build(config: str, net: torch.nn.Module, device: str):
    """(callable on uint8 NCHW batches on the device, restore-torch function) for one configuration."""
    base, _, precision = config.partition("+")
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.conv.fp32_precision,
             torch.backends.cuda.matmul.fp32_precision)
    value = "tf32" if precision == "tf32" else "ieee"
    if device.startswith("cuda"):
        torch.backends.cudnn.conv.fp32_precision = value
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.cudnn.benchmark = base in ("eager-bench",) or base.startswith("compile")

    def restore():
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.conv.fp32_precision,
         torch.backends.cuda.matmul.fp32_precision) = saved

    channels_last = base.endswith("-cl")
    model = net.to(memory_format=torch.channels_last) if channels_last else net.to(memory_format=torch.contiguous_format)
    if base.startswith("compile"):
        kw = {"dynamic": False}
        if base == "compile-cudagraphs":
            kw["mode"] = "reduce-overhead"
        elif base == "compile-max":
            kw["mode"] = "max-autotune"
        elif not device.startswith("cuda"):
            kw["options"] = {"freezing": True}
        model = torch.compile(model, **kw)

    @torch.no_grad()
    def call(x):
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        pool, logits = model(x)
        return pool.clone(), logits.clone()  # CUDA graphs overwrite their outputs on the next replay

    return call, restore


def measure(config: str, net, images: torch.Tensor, batch: int, device: str, reference) -> dict:
    call, restore = build(config, net, device)
    try:
        batches = [images[i:i + batch].to(device) for i in range(0, images.shape[0] - batch + 1, batch)]
        sync(device)
        t = time.perf_counter()
        first = call(batches[0])
        sync(device)
        first_s = time.perf_counter() - t
        for b in batches[1:WARMUP_BATCHES]:
            call(b)
        sync(device)
        timed = batches[WARMUP_BATCHES:] or batches[-1:]
        t = time.perf_counter()
        outs = [call(b) for b in timed]
        sync(device)
        seconds = time.perf_counter() - t
    finally:
        restore()
    n = sum(b.shape[0] for b in timed)
    row = {"config": config, "batch": batch, "images_per_s": round(n / seconds, 1), "first_call_s": round(first_s, 2)}
    if reference is not None:  # the first batch and the timed ones, against eager's features of the same images
        start = len(batches) - len(timed)
        pool = torch.cat([first[0].cpu()] + [o[0].cpu() for o in outs])
        logits = torch.cat([first[1].cpu()] + [o[1].cpu() for o in outs])
        idx = torch.cat([torch.arange(batch), torch.arange(start * batch, start * batch + n)])
        row["max_abs_diff_pool"] = float((pool - reference[0][idx]).abs().max())
        row["max_abs_diff_logits"] = float((logits - reference[1][idx]).abs().max())
    return row


def reference_features(net, images: torch.Tensor, batch: int, device: str) -> tuple:
    """Eager strict fp32 features of every image: what each configuration is compared with."""
    call, restore = build("eager", net, device)
    try:
        outs = [call(images[i:i + batch].to(device)) for i in range(0, images.shape[0], batch)]
    finally:
        restore()
    return torch.cat([o[0] for o in outs]).cpu(), torch.cat([o[1] for o in outs]).cpu()


def pays_from(row: dict, eager: dict):
    """Images from which the configuration's first-call cost is repaid by its per-image saving over eager."""
    if row is eager:
        return 0
    saved = 1 / eager["images_per_s"] - 1 / row["images_per_s"]
    return int((row["first_call_s"] - eager["first_call_s"]) / saved) + 1 if saved > 0 else None


def table(rows: list, device_name: str) -> str:
    lines = [f"Inception-v3 feature extraction on {device_name}, torch {torch.__version__}: images/s after warm-up, "
             "first call (compilation, autotuning, capture), largest feature difference from eager strict fp32, "
             "and the images a run must extract before the configuration pays against eager (same batch).", "",
             "| config | batch | images/s | first call (s) | max abs diff pool3 | max abs diff logits | pays from |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        pays = "–" if r.get("pays_from") is None else f"{r['pays_from']:,}"
        lines.append(f"| {r['config']} | {r['batch']} | {r['images_per_s']} | {r['first_call_s']} | "
                     f"{r.get('max_abs_diff_pool', 0):.2e} | {r.get('max_abs_diff_logits', 0):.2e} | {pays} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", default=None, help="comma-separated batch sizes (default: 32 on a CPU, 256 on a GPU)")
    ap.add_argument("--images", type=int, default=None, help="images per measurement (default: 96 CPU, 4096 GPU)")
    ap.add_argument("--size", type=int, default=64, help="input side in pixels (resized to 299 inside the network)")
    ap.add_argument("--configs", default=None, help="comma-separated; see the module docstring")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    kind = torch.device(args.device).type
    batches = [int(b) for b in (args.batch or ("32" if kind == "cpu" else "256")).split(",")]
    n = args.images or (96 if kind == "cpu" else 4096)
    configs = (args.configs or DEFAULT_CONFIGS.get(kind, "eager")).split(",")
    from conftest import _random_inception_state

    from gandiag.features.inception import InceptionExtractor

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "inception.pth"
        torch.save(_random_inception_state(), weights)
        net = InceptionExtractor(str(weights), args.device).net
    images = torch.randint(0, 256, (n, 3, args.size, args.size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    rows = []
    for batch in batches:
        if n < (WARMUP_BATCHES + 1) * batch:
            raise SystemExit(f"--images {n} is too few for batch {batch}: at least {(WARMUP_BATCHES + 1) * batch}")
        reference = reference_features(net, images, batch, args.device)
        eager = None
        for config in configs:
            torch._dynamo.reset()
            row = measure(config, net, images, batch, args.device, reference)
            eager = row if config == "eager" else eager
            rows.append(row)
            print(json.dumps(row), flush=True)
        for row in rows[-len(configs):]:
            row["pays_from"] = pays_from(row, eager) if eager is not None else None
    name = args.device if kind == "cpu" else torch.cuda.get_device_name(0)
    payload = {"device": name, "torch": torch.__version__, "python": platform.python_version(),
               "threads": torch.get_num_threads(), "images": n, "size": args.size, "rows": rows}
    write_results(args.out, f"extractor_modes_{kind}", payload, table(rows, name))


if __name__ == "__main__":
    main()
