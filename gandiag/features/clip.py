"""CLIP ViT-L/14@336 image embeddings (CMMD's, and CLIP-FID's), on open_clip's VisionTransformer.

CMMD (Jayasumana et al. 2024; google-research/cmmd ``embedding.py`` and
``io_util.py``) embeds each image with OpenAI's CLIP ViT-L/14 at 336x336:
the centred square of side min(H, W) cropped and resized to 336x336 by PIL's
bicubic filter, scaled to [0, 1], normalised with CLIP's mean and std, the
image tower's projected class token, then divided by its L2 norm (scenic's
``encode_image``; the sayakpaul/cmmd-pytorch port divides the same way).

Two roles come out of one pass: ``clip``, the L2-normalised embedding CMMD
reads (:mod:`gandiag.metrics.cmmd`), and ``pool``, the embedding before
normalising, which FID, KID and precision/recall read: the Fréchet distance
on it is what clean-fid calls CLIP-FID (clean-fid uses ``encode_image``'s
output as it is, on ViT-B/32), labelled ``FD [clip-vitl14-336]`` here.

The network is open_clip's VisionTransformer with OpenAI's arguments
(QuickGELU, LayerNorm eps 1e-5, 16 heads of 64), the architecture OpenAI's
TorchScript archive holds and ``open_clip.create_model("ViT-L-14-336",
pretrained="openai")`` builds. Only the image tower is built; the file's
``visual.*`` tensors load into it strictly, the text tower's are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import FeatureExtractorError
from .extractor import ExtractorSpec, sha256_file
from .vit_preprocess import normalised, pil_bicubic
from .vit_weights import (empty_network, find_weights, hf_cached, load_strict, openai_clip_cache, read_state_dict,
                          require_library)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FD_LABELS = {"FID": "FD"}  # a Fréchet distance on CLIP features (CLIP-FID), not Inception's FID
VISUAL = "visual."


@dataclass(frozen=True)
class ClipArch:
    """One CLIP image tower: input size, patch, width, depth, heads and the embedding's size."""

    image_size: int
    patch: int
    width: int
    depth: int
    heads: int
    embed_dim: int
    openai_file: str = ""  # OpenAI's TorchScript archive, as open_clip caches it
    hf_repo: str = ""  # the Hugging Face repository holding open_clip's copy of the weights


ARCHS = {
    "clip-vitl14-336": ClipArch(336, 14, 1024, 24, 16, 768, "ViT-L-14-336px.pt",
                                "timm/vit_large_patch14_clip_336.openai"),
}


def build_network(arch: ClipArch, extractor: str = "clip") -> torch.nn.Module:
    """open_clip's VisionTransformer with OpenAI's arguments: the projected class token, not normalised."""
    tr = require_library("open_clip.transformer", extractor)
    return tr.VisionTransformer(image_size=arch.image_size, patch_size=arch.patch, width=arch.width,
                                layers=arch.depth, heads=arch.heads, mlp_ratio=4.0, output_dim=arch.embed_dim,
                                act_layer=tr.QuickGELU, norm_layer=tr.LayerNorm)


def image_tower(state: dict, extractor: str = "clip") -> dict:
    """The image tower's tensors of a whole-CLIP state dict (``visual.*``), or the dict itself if it is only that."""
    if any(k.startswith(VISUAL) for k in state):
        return {k[len(VISUAL):]: v for k, v in state.items() if k.startswith(VISUAL)}
    if any(k.startswith(("transformer.", "token_embedding")) for k in state) and "conv1.weight" not in state:
        raise FeatureExtractorError(f"these CLIP weights have no image tower (no visual.* tensors) for {extractor}")
    return state


def weights_path(explicit: Optional[str], name: str, arch: ClipArch):
    cached = hf_cached(arch.hf_repo, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]) \
        if arch.hf_repo else []
    if arch.openai_file:
        cached.append(openai_clip_cache(arch.openai_file))
    where = (f"put open_clip_model.safetensors from huggingface.co/{arch.hf_repo} in the Hugging Face cache, or "
             f"OpenAI's {arch.openai_file} in {openai_clip_cache(arch.openai_file).parent}")
    return find_weights(explicit, cached, name, where)


class ClipExtractor:
    kinds = ("images",)
    metric_labels = FD_LABELS

    def __init__(self, name: str, arch: ClipArch, weights: Optional[str] = None, device: str = "cpu"):
        self.name, self.arch = name, arch
        self.roles = {"pool": arch.embed_dim, "clip": arch.embed_dim}
        self.preprocessing = (f"RGB (grey repeated), centre square crop, PIL bicubic resize to {arch.image_size}x"
                              f"{arch.image_size}, /255, CLIP mean/std; projected class token (pool), L2-normalised "
                              "(clip) as google-research/cmmd")
        net = empty_network(lambda: build_network(arch, name))
        path = weights_path(weights, name, arch)
        load_strict(net, image_tower(read_state_dict(path, name), name), path, name)
        self.weights_path, self.weights_sha256 = str(path), sha256_file(path)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, batch: torch.Tensor) -> dict:
        x = normalised(pil_bicubic(batch, self.arch.image_size, centre_crop=True), CLIP_MEAN, CLIP_STD, self.device)
        emb = self.net(x).float()
        return {"pool": emb, "clip": emb / torch.linalg.vector_norm(emb, dim=-1, keepdim=True)}


def clip_spec(name: str, arch: ClipArch) -> ExtractorSpec:
    """The registration of one CLIP image tower; tests register a small one through this same function."""
    return ExtractorSpec(
        name=name,
        description=(f"CLIP ViT image embedding ({arch.embed_dim}-d) at {arch.image_size}x{arch.image_size}, centre "
                     "crop + PIL bicubic, as CMMD: 'clip' (L2-normalised, CMMD) and 'pool' (CLIP-FID); weights: "
                     "--feature-weights PATH or the Hugging Face / open_clip cache; needs gandiag[modern]"),
        kinds=("images",),
        build=lambda weights_path=None, device="cpu": ClipExtractor(name, arch, weights_path, device),
        metric_labels=FD_LABELS,
    )


SPECS = [clip_spec(name, arch) for name, arch in ARCHS.items()]
