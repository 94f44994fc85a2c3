"""DINOv2 ViT features (FD-DINOv2 as dgm-eval and EDM2 compute it), on timm's VisionTransformer.

Stein et al. 2023 (dgm-eval) and EDM2 report the Fréchet distance on the
DINOv2 ViT-L/14 embedding: each image resized to 224x224 by PIL's bicubic
filter (no crop), scaled to [0, 1], normalised with ImageNet's mean and std,
and the class token after the final LayerNorm taken (the torch hub model's
``forward``, its head being the identity). The network is timm's
VisionTransformer with DINOv2's arguments (patch 14, LayerScale, LayerNorm
eps 1e-6), built for 224x224 inputs.

The published checkpoints were trained at 518x518 and hold 1 + 37² position
embeddings. The hub model interpolates them to the input's grid at every call
(``interpolate_pos_encoding``: bicubic, no antialiasing, scale factor
(16 + 0.1) / 37); timm's own checkpoint filter would resample them
differently (antialiased, to a size), so :func:`position_embeddings_for`
does the hub's arithmetic once, at load time: at 224x224 the features are the
hub model's. The hub's ``mask_token`` (used only in training) is dropped,
which is all timm's DINOv2 filter does to these keys; timm's own
``model.safetensors`` (same names, no mask token) loads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from ..errors import FeatureExtractorError
from .extractor import ExtractorSpec, sha256_file
from .vit_preprocess import normalised, pil_bicubic
from .vit_weights import (empty_network, find_weights, hf_cached, hub_checkpoint, load_strict, read_state_dict,
                          require_library)

INPUT_SIZE = 224
PATCH = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HUB_OFFSET = 0.1  # dinov2's interpolate_offset: "a small number to avoid floating point error"
FD_LABELS = {"FID": "FD"}  # a Fréchet distance on DINOv2 features is FD-DINOv2, not Inception's FID


@dataclass(frozen=True)
class DinoArch:
    """One DINOv2 backbone: its width, depth, heads and the grid of its published position embeddings."""

    hub_name: str  # facebookresearch/dinov2's name: the hub checkpoint is f"{hub_name}_pretrain.pth"
    width: int
    depth: int
    heads: int
    trained_grid: int = 37  # 518 / 14

    @property
    def timm_repo(self) -> str:
        size = {"dinov2_vits14": "small", "dinov2_vitb14": "base", "dinov2_vitl14": "large"}.get(self.hub_name)
        return f"timm/vit_{size}_patch14_dinov2.lvd142m" if size else ""


ARCHS = {
    "dinov2-vits14": DinoArch("dinov2_vits14", 384, 12, 6),
    "dinov2-vitb14": DinoArch("dinov2_vitb14", 768, 12, 12),
    "dinov2-vitl14": DinoArch("dinov2_vitl14", 1024, 24, 16),
}


def build_network(arch: DinoArch, extractor: str = "dinov2") -> torch.nn.Module:
    """timm's VisionTransformer with DINOv2's arguments, for 224x224 inputs, returning the normed class token."""
    vt = require_library("timm.models.vision_transformer", extractor)
    return vt.VisionTransformer(img_size=INPUT_SIZE, patch_size=PATCH, embed_dim=arch.width, depth=arch.depth,
                                num_heads=arch.heads, init_values=1e-5, num_classes=0, global_pool="token")


def position_embeddings_for(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + M², D) → (1, 1 + grid², D) exactly as the hub model's ``interpolate_pos_encoding`` does it."""
    n = pos_embed.shape[1] - 1
    m = int(round(n ** 0.5))
    if m * m != n:
        raise FeatureExtractorError(f"position embeddings of {n} patches are not a square grid")
    if m == grid:
        return pos_embed
    dtype, dim = pos_embed.dtype, pos_embed.shape[-1]
    pos = pos_embed.float()
    patches = pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2)
    scale = (grid + HUB_OFFSET) / m
    patches = F.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if tuple(patches.shape[-2:]) != (grid, grid):
        raise FeatureExtractorError(f"position embeddings of a {m}x{m} grid cannot be interpolated to {grid}x{grid}")
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat((pos[:, :1], patches), dim=1).to(dtype)


def to_timm(state: dict, arch: DinoArch, extractor: str = "dinov2") -> dict:
    """A hub (``*_pretrain.pth``) or timm state dict → the keys and shapes of :func:`build_network`'s network."""
    if "register_tokens" in state or "reg_token" in state:
        raise FeatureExtractorError(f"these are DINOv2 weights with register tokens; {extractor} is the DINOv2 "
                                    "without registers that dgm-eval and EDM2 use")
    out = {k: v for k, v in state.items() if k != "mask_token"}
    if "pos_embed" in out:
        pos = out["pos_embed"]
        if pos.dim() != 3 or pos.shape[0] != 1 or pos.shape[-1] != arch.width:
            return out  # the strict load names the shape that is wrong
        out["pos_embed"] = position_embeddings_for(pos, INPUT_SIZE // PATCH)
    return out


def weights_path(explicit: Optional[str], name: str, arch: DinoArch):
    hub_file = f"{arch.hub_name}_pretrain.pth"
    cached = [hub_checkpoint(hub_file)] + (hf_cached(arch.timm_repo, ["model.safetensors", "pytorch_model.bin"])
                                           if arch.timm_repo else [])
    where = f"put {hub_file} (facebookresearch/dinov2's release) in {hub_checkpoint(hub_file).parent}"
    return find_weights(explicit, cached, name, where)


class DinoV2Extractor:
    kinds = ("images",)
    metric_labels = FD_LABELS
    preprocessing = (f"RGB (grey repeated), PIL bicubic resize to {INPUT_SIZE}x{INPUT_SIZE} (no crop), /255, "
                     "ImageNet mean/std; class token after the final LayerNorm (dgm-eval, EDM2)")

    def __init__(self, name: str, arch: DinoArch, weights: Optional[str] = None, device: str = "cpu"):
        self.name, self.arch = name, arch
        self.roles = {"pool": arch.width}
        net = empty_network(lambda: build_network(arch, name))
        path = weights_path(weights, name, arch)
        load_strict(net, to_timm(read_state_dict(path, name), arch, name), path, name)
        self.weights_path, self.weights_sha256 = str(path), sha256_file(path)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, batch: torch.Tensor) -> dict:
        x = normalised(pil_bicubic(batch, INPUT_SIZE), IMAGENET_MEAN, IMAGENET_STD, self.device)
        return {"pool": self.net(x).float()}


def dinov2_spec(name: str, arch: DinoArch) -> ExtractorSpec:
    """The registration of one DINOv2 backbone; tests register a small one through this same function."""
    return ExtractorSpec(
        name=name,
        description=(f"DINOv2 {arch.hub_name.split('_')[-1].upper()} class token ({arch.width}-d) after the final "
                     "norm, 224x224 PIL bicubic, as dgm-eval/EDM2 (FD-DINOv2); weights: --feature-weights PATH or "
                     "the torch hub / Hugging Face cache; needs gandiag[modern]"),
        kinds=("images",),
        build=lambda weights_path=None, device="cpu": DinoV2Extractor(name, arch, weights_path, device),
        metric_labels=FD_LABELS,
    )


SPECS = [dinov2_spec(name, arch) for name, arch in ARCHS.items()]
