"""Full-size DINOv2 ViT-L/14 and CLIP ViT-L/14@336: gandiag's features against the upstream forward passes.

No published weights can be downloaded where this project is built, so the full-size networks get random
weights in the published layouts (facebookresearch/dinov2's ``dinov2_vitl14_pretrain.pth``, OpenAI's CLIP
state dict), written to a file and read back by the extractors as a user's file would be. The same images go
through the forward passes transcribed from the upstream sources in tests/test_modern_extractors.py (the hub
model's position-embedding interpolation from 37x37 to 16x16 included) after the references' PIL resizing.
What this measures is the arithmetic at full size (24 blocks, 1,024 wide; 257 and 577 tokens); what it cannot
measure is the published weights' own numbers, which need the files.

Also measured: EDM2's fast "torch" resize (antialiased bicubic interpolate, no uint8 rounding) against the
PIL resize gandiag uses (dgm-eval's, EDM2's "pil" mode), as a relative L2 change of the DINOv2 features.

    PYTHONPATH=. python benchmarks/modern_parity.py [--n 8]

Writes benchmarks/results/modern_parity_cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from results_io import write_results  # noqa: E402  (benchmarks/ is on sys.path when one runs)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def deviation(got: torch.Tensor, want: torch.Tensor) -> dict:
    got, want = got.double(), want.double()
    return {"max_abs": float((got - want).abs().max()),
            "rel_l2": float((got - want).norm() / want.norm()),
            "min_cosine": float(F.cosine_similarity(got, want, dim=1).min())}


def dinov2_case(images, folder: Path) -> dict:
    import test_modern_extractors as t

    from gandiag.features import dinov2

    arch = dinov2.ARCHS["dinov2-vitl14"]
    state = t.dinov2_hub_state(arch)
    path = folder / "dinov2_vitl14_pretrain.pth"
    torch.save(state, path)
    extractor = dinov2.dinov2_spec("dinov2-vitl14", arch).build(str(path), "cpu")
    batch = torch.from_numpy(images).permute(0, 3, 1, 2)
    t0 = time.perf_counter()
    got = extractor(batch)["pool"]
    seconds = time.perf_counter() - t0
    x = t.normalise(t.pil_reference(images, 224, centre_crop=False), dinov2.IMAGENET_MEAN, dinov2.IMAGENET_STD)
    with torch.no_grad():
        want = t.dinov2_hub_forward(state, arch, x)
        fast = F.interpolate(batch.float(), size=(224, 224), mode="bicubic", antialias=True) / 255.0
        fast_features = extractor.net(t.normalise(fast, dinov2.IMAGENET_MEAN, dinov2.IMAGENET_STD))
    return {"network": "DINOv2 ViT-L/14, random weights in the hub layout (1 + 37² position embeddings)",
            "vs_hub_forward": deviation(got, want), "edm2_torch_resize_vs_pil": deviation(fast_features, got),
            "seconds_per_image": seconds / len(images)}


def clip_case(images, folder: Path) -> dict:
    import test_modern_extractors as t

    from gandiag.features import clip

    arch = clip.ARCHS["clip-vitl14-336"]
    shapes = t.clip_published_shapes(arch, text_width=768, text_layers=1, vocab=16, context=77)
    state = t.randomised(shapes, seed=1)
    path = folder / "open_clip_pytorch_model.bin"
    torch.save(state, path)
    extractor = clip.clip_spec("clip-vitl14-336", arch).build(str(path), "cpu")
    t0 = time.perf_counter()
    got = extractor(torch.from_numpy(images).permute(0, 3, 1, 2))
    seconds = time.perf_counter() - t0
    x = t.normalise(t.pil_reference(images, 336, centre_crop=True), clip.CLIP_MEAN, clip.CLIP_STD)
    with torch.no_grad():
        want = t.clip_openai_forward(state, arch, x)
    return {"network": "CLIP ViT-L/14@336, random weights in OpenAI's layout",
            "pool_vs_openai_forward": deviation(got["pool"], want),
            "clip_vs_normalised_openai_forward": deviation(got["clip"], want / want.norm(dim=1, keepdim=True)),
            "seconds_per_image": seconds / len(images)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="images (40x32 coloured digits, tests/conftest.py)")
    args = ap.parse_args()
    from conftest import colour_digits

    torch.manual_seed(0)
    images = colour_digits(args.n, seed=1, size=40)[:, 4:36]
    with tempfile.TemporaryDirectory() as tmp:
        results = {"images": f"{args.n} coloured digits, 32x40", "torch": torch.__version__,
                   "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                   "dinov2": dinov2_case(images, Path(tmp)), "clip": clip_case(images, Path(tmp))}
    write_results(ROOT / "benchmarks" / "results", "modern_parity_cpu", results, markdown(results))


def markdown(r: dict) -> str:
    rows = [("DINOv2 ViT-L/14 vs hub forward", r["dinov2"]["vs_hub_forward"]),
            ("DINOv2: EDM2 torch resize vs PIL", r["dinov2"]["edm2_torch_resize_vs_pil"]),
            ("CLIP ViT-L/14@336 pool vs OpenAI forward", r["clip"]["pool_vs_openai_forward"]),
            ("CLIP clip (normalised) vs OpenAI forward", r["clip"]["clip_vs_normalised_openai_forward"])]
    lines = [f"Full-size networks, random weights in the published layouts; {r['images']}; torch {r['torch']}, "
             f"{r['threads']} threads.", "", "| comparison | max abs | rel. L2 | min cosine |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {d['max_abs']:.2e} | {d['rel_l2']:.2e} | {d['min_cosine']:.8f} |" for name, d in rows]
    lines += ["", f"CPU seconds per image: DINOv2 ViT-L/14 {r['dinov2']['seconds_per_image']:.2f}, "
                  f"CLIP ViT-L/14@336 {r['clip']['seconds_per_image']:.2f}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
