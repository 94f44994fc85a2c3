"""DINOv2 and CLIP extractors (FD-DINOv2, CMMD, CLIP-FID), without downloading anything.

The published networks are over a gigabyte and slow on two cores, so these tests
run a *small* configuration of the same model code (timm's VisionTransformer with
DINOv2's arguments, open_clip's VisionTransformer with OpenAI's) with random
weights saved in the published formats, end to end through ``gandiag evaluate``.
The features are checked against forward passes written here from the upstream
architectures (facebookresearch/dinov2's hub model, OpenAI's CLIP image tower),
CMMD against a transcription of google-research/cmmd's ``distance.py``, and on
the meta device the published checkpoints' keys and shapes (built here from the
upstream model definitions) load strictly into the full-size networks.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from conftest import colour_digits, gandiag_in_process, installed, require_extra, write_pngs

from gandiag import hookimpl

require_extra("timm")
require_extra("open_clip")

from gandiag.features import clip, dinov2, vit_preprocess, vit_weights  # noqa: E402
from gandiag.metrics.cmmd import cmmd  # noqa: E402

TINY_DINO = dinov2.DinoArch("dinov2_tiny", width=64, depth=2, heads=2, trained_grid=4)
TINY_CLIP = clip.ClipArch(image_size=56, patch=14, width=64, depth=2, heads=2, embed_dim=32)
N = 48


# ----------------------------------------------------------------------------- small weights, published formats

def dinov2_published_shapes(arch: dinov2.DinoArch) -> dict:
    """The tensors of facebookresearch/dinov2's ``*_pretrain.pth`` (DinoVisionTransformer, block_chunks=0, no
    registers, MLP FFN), by name and shape, as its vision_transformer.py registers them."""
    d, hidden = arch.width, 4 * arch.width
    shapes = {"cls_token": (1, 1, d), "pos_embed": (1, 1 + arch.trained_grid ** 2, d),
              "patch_embed.proj.weight": (d, 3, 14, 14), "patch_embed.proj.bias": (d,)}
    for i in range(arch.depth):
        p = f"blocks.{i}."
        shapes.update({p + "norm1.weight": (d,), p + "norm1.bias": (d,), p + "attn.qkv.weight": (3 * d, d),
                       p + "attn.qkv.bias": (3 * d,), p + "attn.proj.weight": (d, d), p + "attn.proj.bias": (d,),
                       p + "ls1.gamma": (d,), p + "norm2.weight": (d,), p + "norm2.bias": (d,),
                       p + "mlp.fc1.weight": (hidden, d), p + "mlp.fc1.bias": (hidden,),
                       p + "mlp.fc2.weight": (d, hidden), p + "mlp.fc2.bias": (d,), p + "ls2.gamma": (d,)})
    shapes.update({"norm.weight": (d,), "norm.bias": (d,), "mask_token": (1, d)})
    return shapes


def _resblocks(prefix: str, d: int, layers: int) -> dict:
    shapes = {}
    for i in range(layers):
        p = f"{prefix}transformer.resblocks.{i}."
        shapes.update({p + "attn.in_proj_weight": (3 * d, d), p + "attn.in_proj_bias": (3 * d,),
                       p + "attn.out_proj.weight": (d, d), p + "attn.out_proj.bias": (d,), p + "ln_1.weight": (d,),
                       p + "ln_1.bias": (d,), p + "mlp.c_fc.weight": (4 * d, d), p + "mlp.c_fc.bias": (4 * d,),
                       p + "mlp.c_proj.weight": (d, 4 * d), p + "mlp.c_proj.bias": (d,), p + "ln_2.weight": (d,),
                       p + "ln_2.bias": (d,)})
    return shapes


def clip_published_shapes(arch: clip.ClipArch, text_width: int = 16, text_layers: int = 1, vocab: int = 10,
                          context: int = 7) -> dict:
    """The tensors of OpenAI's CLIP state dict (clip/model.py's CLIP; open_clip's files hold the same names):
    the image tower under ``visual.``, then the text tower's, by name and shape."""
    d, grid = arch.width, arch.image_size // arch.patch
    shapes = {"visual.class_embedding": (d,), "visual.positional_embedding": (grid * grid + 1, d),
              "visual.proj": (d, arch.embed_dim), "visual.conv1.weight": (d, 3, arch.patch, arch.patch),
              "visual.ln_pre.weight": (d,), "visual.ln_pre.bias": (d,), **_resblocks("visual.", d, arch.depth),
              "visual.ln_post.weight": (d,), "visual.ln_post.bias": (d,)}
    shapes.update({"positional_embedding": (context, text_width), "text_projection": (text_width, arch.embed_dim),
                   "logit_scale": (), "token_embedding.weight": (vocab, text_width),
                   **_resblocks("", text_width, text_layers), "ln_final.weight": (text_width,),
                   "ln_final.bias": (text_width,)})
    return shapes


def randomised(shapes: dict, seed: int) -> dict:
    """Random tensors of those shapes with activations of order one: fan-in scaled matrices, norms and
    LayerScale gammas near 1 (so every block matters), small biases."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        x = torch.randn(shape, generator=g)
        if name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "gamma")) or ".ln_" in name \
                or name.startswith(("ln_", "visual.ln_")) and name.endswith("weight"):
            x = 1 + 0.1 * x if name.endswith(("weight", "gamma")) else 0.1 * x
        elif len(shape) >= 2 and not name.endswith(("pos_embed", "positional_embedding", "cls_token")):
            x = x / math.sqrt(math.prod(shape[1:]) if len(shape) == 4 else shape[-1])
        elif len(shape) >= 1:
            x = (0.5 if "embed" in name or "token" in name else 0.1) * x
        out[name] = x
    return out


def dinov2_hub_state(arch: dinov2.DinoArch, seed: int = 0) -> dict:
    return randomised(dinov2_published_shapes(arch), seed)


def clip_openai_state(arch: clip.ClipArch, seed: int = 1) -> dict:
    """Random weights in OpenAI's layout, with the scalar entries OpenAI's archive also carries."""
    return {**randomised(clip_published_shapes(arch), seed), "input_resolution": torch.tensor(arch.image_size),
            "context_length": torch.tensor(7), "vocab_size": torch.tensor(10)}


# ----------------------------------------------------------------------------- the upstream forward passes

def _attention(x, w_qkv, b_qkv, w_out, b_out, heads):
    """Multi-head self-attention as both upstream models compute it: one qkv projection, softmax(qkᵀ/√d)v."""
    n, t, d = x.shape
    q, k, v = F.linear(x, w_qkv, b_qkv).reshape(n, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    return F.linear((a @ v).transpose(1, 2).reshape(n, t, d), w_out, b_out)


def dinov2_hub_forward(state: dict, arch: dinov2.DinoArch, x: torch.Tensor) -> torch.Tensor:
    """facebookresearch/dinov2's DinoVisionTransformer.forward (x_norm_clstoken), its interpolate_pos_encoding
    included (bicubic, scale factor (w0 + 0.1) / M, no antialiasing), written from the upstream source."""
    s, d = state, arch.width
    tokens = F.conv2d(x, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=14).flatten(2).transpose(1, 2)
    tokens = torch.cat([s["cls_token"].expand(len(x), -1, -1), tokens], 1)
    m, w0 = arch.trained_grid, x.shape[-1] // 14
    grid = s["pos_embed"][:, 1:].reshape(1, m, m, d).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((w0 + 0.1) / m, (w0 + 0.1) / m), mode="bicubic", antialias=False)
    h = tokens + torch.cat([s["pos_embed"][:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, d)], 1)
    for i in range(arch.depth):
        p = f"blocks.{i}."
        y = F.layer_norm(h, (d,), s[p + "norm1.weight"], s[p + "norm1.bias"], eps=1e-6)
        h = h + s[p + "ls1.gamma"] * _attention(y, s[p + "attn.qkv.weight"], s[p + "attn.qkv.bias"],
                                                s[p + "attn.proj.weight"], s[p + "attn.proj.bias"], arch.heads)
        y = F.layer_norm(h, (d,), s[p + "norm2.weight"], s[p + "norm2.bias"], eps=1e-6)
        y = F.linear(F.gelu(F.linear(y, s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"])), s[p + "mlp.fc2.weight"],
                     s[p + "mlp.fc2.bias"])
        h = h + s[p + "ls2.gamma"] * y
    return F.layer_norm(h, (d,), s["norm.weight"], s["norm.bias"], eps=1e-6)[:, 0]


def clip_openai_forward(state: dict, arch: clip.ClipArch, x: torch.Tensor) -> torch.Tensor:
    """OpenAI CLIP's VisionTransformer.forward (clip/model.py): QuickGELU, LayerNorm eps 1e-5, ln_post on the
    class token, then the projection; not normalised."""
    s, d = {k[len("visual."):]: t for k, t in state.items() if k.startswith("visual.")}, arch.width
    h = F.conv2d(x, s["conv1.weight"], stride=arch.patch).flatten(2).transpose(1, 2)
    h = torch.cat([s["class_embedding"].expand(len(x), 1, -1), h], 1) + s["positional_embedding"]
    h = F.layer_norm(h, (d,), s["ln_pre.weight"], s["ln_pre.bias"], eps=1e-5)
    for i in range(arch.depth):
        p = f"transformer.resblocks.{i}."
        y = F.layer_norm(h, (d,), s[p + "ln_1.weight"], s[p + "ln_1.bias"], eps=1e-5)
        h = h + _attention(y, s[p + "attn.in_proj_weight"], s[p + "attn.in_proj_bias"], s[p + "attn.out_proj.weight"],
                           s[p + "attn.out_proj.bias"], arch.heads)
        y = F.layer_norm(h, (d,), s[p + "ln_2.weight"], s[p + "ln_2.bias"], eps=1e-5)
        y = F.linear(y, s[p + "mlp.c_fc.weight"], s[p + "mlp.c_fc.bias"])
        h = h + F.linear(y * torch.sigmoid(1.702 * y), s[p + "mlp.c_proj.weight"], s[p + "mlp.c_proj.bias"])
    return F.layer_norm(h[:, 0], (d,), s["ln_post.weight"], s["ln_post.bias"], eps=1e-5) @ s["proj"]


def pil_reference(images: np.ndarray, size: int, centre_crop: bool) -> torch.Tensor:
    """The references' resizing, image by image: dgm-eval's Resize((224, 224), BICUBIC) on a PIL image, or
    CMMD's io_util crop of the centred square then resize((size, size), BICUBIC); then /255 as float32."""
    from PIL import Image

    out = []
    for a in images:
        im = Image.fromarray(a, "RGB")
        if centre_crop:
            w, h = im.size
            side = min(w, h)
            im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
        out.append(np.asarray(im.resize((size, size), Image.BICUBIC)).astype(np.float32) / 255.0)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


def normalise(x, mean, std):
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


# ----------------------------------------------------------------------------- reference metric arithmetic

def cmmd_reference(x: np.ndarray, y: np.ndarray, dtype=np.float32) -> float:
    """google-research/cmmd distance.py, transcribed: σ = 10, scale 1000, every mean over all pairs (the
    diagonal included), ‖x − y‖² expanded as the reference expands it."""
    x, y = x.astype(dtype), y.astype(dtype)
    gamma = 1 / (2 * 10 ** 2)
    xx, yy = np.diag(x @ x.T), np.diag(y @ y.T)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + xx[:, None] + xx[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + xx[:, None] + yy[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + yy[:, None] + yy[None, :])))
    return float(1000 * (k_xx + k_yy - 2 * k_xy))


def frechet_reference(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) with scipy's sqrtm, as EDM2's calculate_metrics_from_stats."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.square(a.mean(0) - b.mean(0)).sum() + np.trace(s1 + s2 - 2 * np.real(root)))


# ----------------------------------------------------------------------------- fixtures

class _SmallModels:
    @hookimpl
    def register_feature_extractors(self, register):
        register(dinov2.dinov2_spec("dinov2-small-test", TINY_DINO))
        register(clip.clip_spec("clip-small-test", TINY_CLIP))


@pytest.fixture
def small_models():
    with installed(_SmallModels(), "small-vit-test"):
        yield


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit-weights")
    paths = {"dino": folder / "dinov2_tiny_pretrain.pth", "clip": folder / "open_clip_pytorch_model.bin"}
    torch.save(dinov2_hub_state(TINY_DINO), paths["dino"])
    torch.save(clip_openai_state(TINY_CLIP), paths["clip"])
    return paths


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    """Fakes and reals: 40x32 RGB digits (not square, so CMMD's centre crop matters), the fakes shifted."""
    root = tmp_path_factory.mktemp("vit-images")
    fake = colour_digits(N, seed=1, size=40, shift=0.08)[:, 4:36]
    real = colour_digits(N, seed=2, size=40)[:, 4:36]
    return write_pngs(root / "fake", fake), write_pngs(root / "real", real), fake, real


# ----------------------------------------------------------------------------- features equal the upstream forward

def test_dinov2_features_are_the_hub_models_at_224(weights, image_folders):
    """Preprocessing as dgm-eval (PIL bicubic to 224, ImageNet mean/std) and the hub model's forward, including
    its position-embedding interpolation from the trained grid: equal to float32 rounding."""
    extractor = dinov2.dinov2_spec("dinov2-small-test", TINY_DINO).build(str(weights["dino"]), "cpu")
    images = image_folders[2][:8]
    got = extractor(torch.from_numpy(images).permute(0, 3, 1, 2))["pool"]
    x = normalise(pil_reference(images, 224, centre_crop=False), dinov2.IMAGENET_MEAN, dinov2.IMAGENET_STD)
    want = dinov2_hub_forward(torch.load(weights["dino"], weights_only=True), TINY_DINO, x)
    assert got.shape == (8, TINY_DINO.width)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert extractor.weights_sha256 == vit_weights_sha(weights["dino"])


def test_clip_features_are_openais_image_tower_after_cmmds_crop_and_resize(weights, image_folders):
    """CMMD's preprocessing (centre square, PIL bicubic, CLIP mean/std) and OpenAI's image tower; ``clip`` is the
    L2-normalised embedding, ``pool`` the embedding itself."""
    extractor = clip.clip_spec("clip-small-test", TINY_CLIP).build(str(weights["clip"]), "cpu")
    images = image_folders[3][:8]
    got = extractor(torch.from_numpy(images).permute(0, 3, 1, 2))
    x = normalise(pil_reference(images, TINY_CLIP.image_size, centre_crop=True), clip.CLIP_MEAN, clip.CLIP_STD)
    want = clip_openai_forward(torch.load(weights["clip"], weights_only=True), TINY_CLIP, x)
    torch.testing.assert_close(got["pool"], want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got["clip"], want / want.norm(dim=1, keepdim=True), rtol=1e-5, atol=1e-5)
    assert extractor.roles == {"pool": TINY_CLIP.embed_dim, "clip": TINY_CLIP.embed_dim}


def vit_weights_sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pil_resizing_is_not_torchs_interpolate():
    """Why the images go through PIL: torch's bicubic interpolate (antialiased, float) is not PIL's uint8 filter,
    which clips and rounds between its two passes; on noise the two differ by tens of grey levels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 30, 50, 3), dtype=np.uint8)
    ours = vit_preprocess.pil_bicubic(torch.from_numpy(images).permute(0, 3, 1, 2), 64, centre_crop=True)
    ref = pil_reference(images, 64, centre_crop=True)
    assert torch.equal(ours.float() / 255.0, ref)
    torch_way = F.interpolate(torch.from_numpy(images[:, :, 10:40]).permute(0, 3, 1, 2).float(), size=(64, 64),
                              mode="bicubic", antialias=True)
    assert (torch_way - ours.float()).abs().max() > 10


# ----------------------------------------------------------------------------- metrics against the references

def test_cmmd_is_the_references_arithmetic():
    """Against distance.py transcribed in float64 (1e-10 relative) and in float32, the reference's precision: its
    kernel means are ~0.99 and CMMD is 1000x their difference of ~3e-4, so float32's rounding of the means
    (6e-8) is ~2e-4 of the result (measured here: 2.1e-4), hence 1e-3. Unequal set sizes; identical sets give
    exactly 0 (the biased estimator's mark)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 24))
    y = rng.normal(loc=0.15, size=(260, 24))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    ours = cmmd(x, y)
    assert ours == pytest.approx(cmmd_reference(x, y, np.float64), rel=1e-10)
    assert ours == pytest.approx(cmmd_reference(x, y, np.float32), rel=1e-3)
    assert ours > 0
    assert cmmd(x, x) == pytest.approx(0.0, abs=1e-12)
    shuffled = x[rng.permutation(len(x))]
    assert cmmd(x, shuffled) == pytest.approx(0.0, abs=1e-12)


def test_cmmd_in_row_blocks_equals_one_block(monkeypatch):
    import gandiag.metrics.cmmd as cmmd_module

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(70, 8)), rng.normal(size=(50, 8))
    whole = cmmd(x, y)
    monkeypatch.setattr(cmmd_module, "BLOCK_BYTES", 8 * 50 * 3)  # three rows per block
    assert cmmd(x, y) == pytest.approx(whole, rel=1e-12)


# ----------------------------------------------------------------------------- end to end, as a user runs it

def _evaluate(tmp_path, image_folders, extractor, weights_file, *extra):
    fake, real = image_folders[0], image_folders[1]
    out = tmp_path / "r.json"
    res = gandiag_in_process("evaluate", fake, "--real", real, "--feature-extractor", extractor,
                             "--feature-weights", weights_file, "--json", out, "--no-cache", "--no-diagnostics",
                             *extra)
    assert res.returncode == 0, res.stderr
    return json.loads(out.read_text()), res


def _features(spec_name, arch_spec, weights_file, images):
    extractor = arch_spec.build(str(weights_file), "cpu")
    return extractor(torch.from_numpy(images).permute(0, 3, 1, 2))


def test_fd_dinov2_end_to_end_is_the_frechet_distance_of_the_features(tmp_path, weights, image_folders,
                                                                      small_models):
    r, res = _evaluate(tmp_path, image_folders, "dinov2-small-test", weights["dino"])
    fid = r["metrics"]["fid"]
    assert fid["label"] == "FD [dinov2-small-test]" and fid["features"] == "dinov2-small-test"
    assert "FD [dinov2-small-test]" in res.stdout
    spec = dinov2.dinov2_spec("dinov2-small-test", TINY_DINO)
    fake = _features("dino", spec, weights["dino"], image_folders[2])["pool"].numpy()
    real = _features("dino", spec, weights["dino"], image_folders[3])["pool"].numpy()
    # the same features, batched differently: float32 rounding, then FD's float64 arithmetic (1e-5 relative)
    assert fid["value"] == pytest.approx(frechet_reference(fake, real), rel=1e-5)
    assert "cmmd" not in r["metrics"]  # CMMD reads CLIP's normalised embedding, which DINOv2 does not give
    for key, m in r["metrics"].items():
        assert m["label"].endswith("[dinov2-small-test]"), key


def test_cmmd_and_clip_fid_end_to_end(tmp_path, weights, image_folders, small_models):
    r, res = _evaluate(tmp_path, image_folders, "clip-small-test", weights["clip"])
    m = r["metrics"]
    assert m["cmmd"]["label"] == "CMMD [clip-small-test]" and m["fid"]["label"] == "FD [clip-small-test]"
    spec = clip.clip_spec("clip-small-test", TINY_CLIP)
    fake = _features("clip", spec, weights["clip"], image_folders[2])
    real = _features("clip", spec, weights["clip"], image_folders[3])
    # float32 features computed in other batches, the reference's formula in float64: 1e-5 relative
    assert m["cmmd"]["value"] == pytest.approx(cmmd_reference(fake["clip"].numpy(), real["clip"].numpy(),
                                                              np.float64), rel=1e-5)
    assert m["cmmd"]["value"] > 0 and m["cmmd"]["sigma"] == 10 and m["cmmd"]["scale"] == 1000
    assert m["fid"]["value"] == pytest.approx(frechet_reference(fake["pool"].numpy(), real["pool"].numpy()),
                                              rel=1e-5)
    assert r["provenance"]["extractor"]["weights_sha256"] == vit_weights_sha(weights["clip"])
    assert "centre square crop" in r["provenance"]["extractor"]["preprocessing"]


def test_cmmd_on_other_features_is_one_line(tmp_path, weights, image_folders, small_models):
    fake, real = image_folders[0], image_folders[1]
    res = gandiag_in_process("evaluate", fake, "--real", real, "--feature-extractor", "dinov2-small-test",
                             "--feature-weights", weights["dino"], "--metrics", "fid,cmmd", "--no-cache")
    assert res.returncode == 2
    assert "cmmd" in res.stderr and "'clip'" in res.stderr and len(res.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- the published checkpoints, full size

def test_published_dinov2_vitl14_checkpoint_loads_strictly_on_meta():
    """dinov2_vitl14_pretrain.pth's names and shapes (1 + 37² position embeddings: trained at 518 = 37 x 14) go
    through the conversion (mask token dropped, position embeddings interpolated to 16 x 16 as the hub model
    does at 224) into the full-size network, strictly; timm's own DINOv2 ViT-L/14 has the same tensors."""
    timm = pytest.importorskip("timm")
    arch = dinov2.ARCHS["dinov2-vitl14"]
    shapes = dinov2_published_shapes(arch)
    assert len(shapes) == 4 + 24 * 14 + 3 and shapes["pos_embed"] == (1, 1370, 1024)
    with torch.device("meta"):
        published = {k: torch.empty(s) for k, s in shapes.items()}
        net = dinov2.build_network(arch)
        converted = dinov2.to_timm(published, arch)
        vit_weights.load_strict(net, converted, "dinov2_vitl14_pretrain.pth", "dinov2-vitl14", assign=True)
        upstream = timm.create_model("vit_large_patch14_dinov2", pretrained=False, img_size=518, num_classes=0)
    assert converted["pos_embed"].shape == (1, 257, 1024)
    dropped = 1024 + (1370 - 257) * 1024  # the mask token, and the position embeddings the 518 grid has beyond 224's
    assert sum(p.numel() for p in net.parameters()) == sum(math.prod(s) for s in shapes.values()) - dropped
    assert {k: tuple(v.shape) for k, v in upstream.state_dict().items()} == \
        {k: s for k, s in shapes.items() if k != "mask_token"}


def test_published_clip_vitl14_336_checkpoint_loads_strictly_on_meta():
    """OpenAI's ViT-L/14@336 state dict (the TorchScript archive's, and open_clip's files): its ``visual.*``
    tensors (577 = 24² + 1 position embeddings, a 1024 x 768 projection) load strictly into the image tower,
    which is open_clip's own ViT-L-14-336 tower; the text tower's tensors are left aside."""
    open_clip = pytest.importorskip("open_clip")
    arch = clip.ARCHS["clip-vitl14-336"]
    shapes = clip_published_shapes(arch, text_width=768, text_layers=12, vocab=49408, context=77)
    assert shapes["visual.positional_embedding"] == (577, 1024) and shapes["visual.proj"] == (1024, 768)
    with torch.device("meta"):
        published = {k: torch.empty(s) for k, s in shapes.items()}
        net = clip.build_network(arch)
        vit_weights.load_strict(net, clip.image_tower(published), "ViT-L-14-336px.pt", "clip-vitl14-336",
                                assign=True)
        reference = open_clip.create_model("ViT-L-14-336", pretrained=None, device="meta")
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == shapes
    assert type(net.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"  # OpenAI's activation


# ----------------------------------------------------------------------------- formats and caches

def test_safetensors_and_torchscript_files_give_the_same_features(tmp_path, weights, image_folders):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    images = torch.from_numpy(image_folders[2][:4]).permute(0, 3, 1, 2)
    dino_st = tmp_path / "model.safetensors"
    safetensors_torch.save_file(dinov2.to_timm(torch.load(weights["dino"], weights_only=True), TINY_DINO), dino_st)
    spec = dinov2.dinov2_spec("dinov2-small-test", TINY_DINO)
    torch.testing.assert_close(spec.build(str(dino_st))(images)["pool"],
                               spec.build(str(weights["dino"]))(images)["pool"])

    class Whole(torch.nn.Module):  # a traced CLIP holds its image tower under ``visual`` as OpenAI's archive does
        def __init__(self, visual):
            super().__init__()
            self.visual = visual

        def forward(self, x):
            return self.visual(x)

    tower = clip.build_network(TINY_CLIP)
    tower.load_state_dict(clip.image_tower(torch.load(weights["clip"], weights_only=True)))
    scripted = tmp_path / "ViT-tiny.pt"
    with warnings.catch_warnings():  # the tracer's notes on multi-head attention's shape checks
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(Whole(tower).eval(), torch.zeros(1, 3, 56, 56), check_trace=False), scripted)
    spec = clip.clip_spec("clip-small-test", TINY_CLIP)
    torch.testing.assert_close(spec.build(str(scripted))(images)["clip"],
                               spec.build(str(weights["clip"]))(images)["clip"])


def test_weights_are_found_in_the_usual_caches_and_never_downloaded(tmp_path, monkeypatch, weights, image_folders,
                                                                    small_models):
    import huggingface_hub.constants

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    res = gandiag_in_process("evaluate", image_folders[0], "--real", image_folders[1], "--feature-extractor",
                             "dinov2-small-test", "--no-cache")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "never downloads" in res.stderr and "dinov2_tiny_pretrain.pth" in res.stderr
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "dinov2_tiny_pretrain.pth").write_bytes(weights["dino"].read_bytes())
    assert dinov2.weights_path(None, "dinov2-small-test", TINY_DINO) == hub / "dinov2_tiny_pretrain.pth"
    # the Hugging Face hub cache's layout (refs/main names the snapshot), as timm and open_clip leave it
    repo = tmp_path / "hf" / "models--timm--vit_large_patch14_clip_336.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    (repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors").write_bytes(b"x")
    found = clip.weights_path(None, "clip-vitl14-336", clip.ARCHS["clip-vitl14-336"])
    assert found == repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors"


# ----------------------------------------------------------------------------- hostile and mistaken inputs

def _refused(tmp_path, image_folders, extractor, weights_file) -> str:
    res = gandiag_in_process("evaluate", image_folders[0], "--real", image_folders[1], "--feature-extractor",
                             extractor, "--feature-weights", weights_file, "--no-cache")
    assert res.returncode == 2, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gandiag: error:"), res.stderr
    return lines[0]


def test_wrong_truncated_and_pickled_weights_are_one_line(tmp_path, weights, image_folders, small_models):
    line = _refused(tmp_path, image_folders, "clip-small-test", weights["dino"])  # a DINOv2 file given to CLIP
    assert "does not hold clip-small-test weights" in line and "missing" in line
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights["dino"].read_bytes()[: weights["dino"].stat().st_size // 2])
    assert "truncated" in _refused(tmp_path, image_folders, "dinov2-small-test", truncated)
    wider = tmp_path / "wider.pth"
    torch.save(dinov2_hub_state(dinov2.DinoArch("dinov2_tiny", 96, 2, 2, trained_grid=4)), wider)
    assert "of another shape" in _refused(tmp_path, image_folders, "dinov2-small-test", wider)
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)
    line = _refused(tmp_path, image_folders, "dinov2-small-test", pickled)
    assert "pickled Python objects" in line and "torch.nn.modules.linear.Linear" in line
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    assert "not a weights file" in _refused(tmp_path, image_folders, "dinov2-small-test", text)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    assert "safetensors" in _refused(tmp_path, image_folders, "dinov2-small-test", garbage)
    nan = dinov2_hub_state(TINY_DINO)
    nan["norm.weight"][0] = float("nan")
    torch.save(nan, tmp_path / "nan.pth")
    assert "NaN" in _refused(tmp_path, image_folders, "dinov2-small-test", tmp_path / "nan.pth")


def test_torchscript_that_could_act_while_loading_is_refused(tmp_path, image_folders, small_models):
    class Chatty(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = torch.nn.Linear(2, 2)

        def forward(self, x):
            print("loaded")
            return self.visual(x)

    path = tmp_path / "chatty.pt"
    torch.jit.save(torch.jit.script(Chatty()), path)
    line = _refused(tmp_path, image_folders, "clip-small-test", path)
    assert "print" in line and "state dict" in line and "--trust-checkpoint" not in line


def test_without_the_extra_one_line_names_it(tmp_path, monkeypatch, weights, image_folders, small_models):
    import sys

    for name in ("timm", "timm.models", "timm.models.vision_transformer"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if timm were not installed
    line = _refused(tmp_path, image_folders, "dinov2-small-test", weights["dino"])
    assert "timm" in line and "pip install 'gandiag[modern]'" in line


def test_cmmd_comes_from_the_clip_extractor_wherever_it_is_listed(tmp_path, weights, image_folders, small_models):
    """One sampling pass, two feature spaces: CMMD is computed on CLIP's features (keyed cmmd@NAME when CLIP is
    not first) and on nothing else; every metric is labelled with its features."""
    r, _ = _evaluate(tmp_path, image_folders, "dinov2-small-test,clip-small-test",
                     f"dinov2-small-test={weights['dino']}", "--feature-weights", f"clip-small-test={weights['clip']}")
    m = r["metrics"]
    assert "cmmd" not in m and m["cmmd@clip-small-test"]["label"] == "CMMD [clip-small-test]"
    assert m["fid"]["label"] == "FD [dinov2-small-test]" and m["fid@clip-small-test"]["label"] == "FD [clip-small-test]"
    alone, _ = _evaluate(tmp_path, image_folders, "clip-small-test", weights["clip"])
    assert m["cmmd@clip-small-test"]["value"] == pytest.approx(alone["metrics"]["cmmd"]["value"], rel=1e-9)
