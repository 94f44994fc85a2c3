"""The StyleGAN / BigGAN loader plugin (plugins/gandiag_stylegan) on stand-ins written here.

NVlabs' ``torch_utils`` and ``dnnlib`` are not on PyPI, so each test writes a
miniature of them into a temporary folder: ``torch_utils.persistence`` with the
same pickle layout (a persistent class pickles its module's source and is
rebuilt by ``_reconstruct_persistent_obj``, which execs it), and a tiny
mapping + synthesis generator with StyleGAN's attributes and call. The pickle
is written the way StyleGAN's training loop writes a snapshot. The stand-in
leaves a marker file whenever it is unpickled, so a refusal can be shown to
run nothing. A stand-in ``pytorch_pretrained_biggan`` does the same for BigGAN.
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
import textwrap

import numpy as np
import pytest
import torch

import gandiag
from conftest import colour_digits, gandiag_in_process
from gandiag.generator.contract import GeneratorContract
from gandiag.generator.sampling import latents

RES, Z, W = 16, 6, 8
N = 40
MARKER_ENV = "GANDIAG_TEST_PAYLOAD_MARKER"

DNNLIB = '''
class EasyDict(dict):
    """dnnlib.EasyDict: a dict with attribute access."""
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)
    def __setattr__(self, name, value):
        self[name] = value
'''

PERSISTENCE = '''
"""A miniature of NVlabs' torch_utils/persistence.py, written for gandiag's tests: the same pickle layout."""
import copy, inspect, os, sys, types, uuid
import dnnlib

_version = 6
_decorators = set()
_module_to_src_dict, _src_to_module_dict = {}, {}

def persistent_class(orig_class):
    if orig_class in _decorators:
        return orig_class
    orig_module_src = _module_to_src(sys.modules[orig_class.__module__])

    class Decorator(orig_class):
        _orig_module_src = orig_module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args, self._init_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)

        def __reduce__(self):
            fields = list(super().__reduce__()) + [None] * 3
            meta = dict(type="class", version=_version, module_src=self._orig_module_src,
                        class_name=self._orig_class_name, state=fields[2])
            return (_reconstruct_persistent_obj, (meta,), None)

    Decorator.__name__ = orig_class.__name__
    _decorators.add(Decorator)
    return Decorator

def _reconstruct_persistent_obj(meta):
    marker = os.environ.get("GANDIAG_TEST_PAYLOAD_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write("unpickled\\n")
    meta = dnnlib.EasyDict(meta)
    assert meta.version == _version and meta.type == "class"
    module = _src_to_module(meta.module_src)
    cls = persistent_class(module.__dict__[meta.class_name])
    obj = cls.__new__(cls)
    obj.__setstate__(meta.state)
    return obj

def _module_to_src(module):
    src = _module_to_src_dict.get(module)
    if src is None:
        src = inspect.getsource(module)
        _module_to_src_dict[module], _src_to_module_dict[src] = src, module
    return src

def _src_to_module(src):
    module = _src_to_module_dict.get(src)
    if module is None:
        module = types.ModuleType("_imported_module_" + uuid.uuid4().hex)
        sys.modules[module.__name__] = module
        _module_to_src_dict[module], _src_to_module_dict[src] = src, module
        exec(src, module.__dict__)
    return module
'''

NETWORKS = '''
"""A tiny StyleGAN-like generator: mapping (z, one-hot c) -> w with w_avg truncation, synthesis w -> NCHW."""
import torch
from torch_utils import persistence

F = torch.nn.functional

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.embed = torch.nn.Linear(c_dim, w_dim) if c_dim else None
        self.fc = torch.nn.Linear(z_dim + (w_dim if c_dim else 0), w_dim)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, c, truncation_psi=1):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.c_dim:
            y = self.embed(c.to(torch.float32))
            x = torch.cat([x, y * (y.square().mean(1, keepdim=True) + 1e-8).rsqrt()], 1)
        w = F.leaky_relu(self.fc(x), 0.2)
        return self.w_avg.lerp(w, truncation_psi) if truncation_psi != 1 else w

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels):
        super().__init__()
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.const = torch.nn.Parameter(torch.randn(8, 4, 4))
        self.affine = torch.nn.Linear(w_dim, 8)
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.torgb = torch.nn.Conv2d(8, img_channels, 1)
        self.register_buffer("noise_const", torch.randn(img_resolution, img_resolution))

    def forward(self, w, noise_mode="random"):
        x = self.const[None] * (self.affine(w)[:, :, None, None] + 1)
        x = F.interpolate(x, size=self.img_resolution, mode="bilinear", align_corners=False)
        x = F.leaky_relu(self.conv(x), 0.2)
        noise = self.noise_const if noise_mode == "const" else torch.randn(x.shape[0], 1, *x.shape[2:])
        return 0.5 * self.torgb(x + 0.3 * noise)  # no tanh: like StyleGAN's, the images overshoot [-1, 1] a little

@persistence.persistent_class
class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim)
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        return self.synthesis(self.mapping(z, c, truncation_psi=truncation_psi), **synthesis_kwargs)

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    def __init__(self, c_dim, img_resolution, img_channels):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.fc = torch.nn.Linear(img_channels * img_resolution ** 2, 1)
'''

BIGGAN = '''
"""A stand-in for pytorch-pretrained-BigGAN's BigGAN: config.z_dim/num_classes, forward(z, class_onehot, truncation)."""
import torch

class BigGANConfig:
    def __init__(self, z_dim=8, num_classes=5, output_dim=16):
        self.z_dim, self.num_classes, self.output_dim = z_dim, num_classes, output_dim

class BigGAN(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = torch.nn.Linear(config.num_classes, config.z_dim, bias=False)
        self.gen = torch.nn.Linear(2 * config.z_dim, 3 * config.output_dim ** 2)

    def forward(self, z, class_label, truncation):
        assert 0 < truncation <= 1
        x = torch.cat([z, self.embeddings(class_label)], 1)
        return torch.tanh(self.gen(x) * (0.5 + truncation)).view(-1, 3, self.config.output_dim, self.config.output_dim)

class Sampler(torch.nn.Module):
    """Of the same package, but no BigGAN: no config, forward(z)."""
    def forward(self, z):
        return z
'''

STAND_IN_MODULES = ("torch_utils", "dnnlib", "training", "_imported_module_", "pytorch_pretrained_biggan")


def _forget_stand_ins():
    for name in [m for m in sys.modules if m.startswith(STAND_IN_MODULES)]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def _clean_modules():
    """Every test imports the stand-ins afresh, from its own folder, as a new process would."""
    _forget_stand_ins()
    yield
    _forget_stand_ins()


def write_package(root, files: dict) -> str:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return str(root)


def nvlabs_clone(tmp_path) -> str:
    return write_package(tmp_path / "stylegan2-ada-pytorch", {
        "dnnlib/__init__.py": DNNLIB, "torch_utils/__init__.py": "", "torch_utils/persistence.py": PERSISTENCE,
        "training/__init__.py": "", "training/networks.py": NETWORKS})


def stylegan_pickle(tmp_path, c_dim: int):
    """A snapshot pickled as StyleGAN's training loop does; returns (path, the clone's folder, G_ema in memory)."""
    clone = nvlabs_clone(tmp_path)
    sys.path.insert(0, clone)
    try:
        from training import networks

        torch.manual_seed(c_dim)
        G = networks.Generator(z_dim=Z, c_dim=c_dim, w_dim=W, img_resolution=RES, img_channels=3)
        D = networks.Discriminator(c_dim=c_dim, img_resolution=RES, img_channels=3)
        with torch.no_grad():
            c = torch.eye(c_dim)[torch.arange(256) % c_dim] if c_dim else torch.zeros(256, 0)
            G.mapping.w_avg.copy_(G.mapping(torch.randn(256, Z), c).mean(0))  # what training tracks
            G_ema = copy.deepcopy(G)
            for p in G_ema.parameters():
                p.mul_(0.9)
        snapshot = dict(training_set_kwargs=dict(path="data.zip", use_labels=c_dim > 0, resolution=RES))
        for name, module in [("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", None)]:
            if module is not None:
                module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
            snapshot[name] = module
        path = tmp_path / f"network-snapshot-c{c_dim}.pkl"
        with open(path, "wb") as f:
            pickle.dump(snapshot, f)
    finally:
        sys.path.remove(clone)
    _forget_stand_ins()  # the loader must import them itself, through --generator-path
    return path, clone, snapshot["G_ema"]


@pytest.fixture
def real_npz(tmp_path):
    path = tmp_path / "real.npz"
    np.savez(path, images=colour_digits(N, seed=1, size=RES).transpose(0, 3, 1, 2))
    return str(path)


def one_line(res, match):
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("gandiag: error:") and res.stderr.strip().count("\n") == 0, res.stderr
    assert match in res.stderr, res.stderr


def evaluate(target, real, **kw):
    return gandiag.evaluate(str(target), real, num_samples=N, batch_size=N, seed=3, feature_extractor="digits",
                            metrics=["fid", "precision", "recall"], diagnostics=False, use_cache=False, **kw)


def same_pipeline_direct(tmp_path, call, z_dim, num_classes, real):
    """The metrics of ``call(z, onehot)`` on gandiag's own latents, written as uint8 images to a .npz."""
    z, labels = latents(GeneratorContract(latent_dim=z_dim, num_classes=num_classes), 0, N, seed=3)
    onehot = torch.nn.functional.one_hot(labels, num_classes).float() if num_classes else None
    with torch.no_grad():
        imgs = call(z, onehot)
    path = tmp_path / "direct.npz"
    np.savez(path, images=((imgs + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).numpy())
    return evaluate(path, real)


def assert_same_metrics(a, b):
    for key in ("fid", "precision", "recall"):
        assert a.metrics[key]["value"] == pytest.approx(b.metrics[key]["value"], rel=1e-6, abs=1e-6), key


# ----------------------------------------------------------------------------- registration and refusals

def test_registered_through_its_entry_point_like_the_other_loaders():
    from gandiag.plugins import pm, registry

    loaders = registry("loader")
    assert "stylegan" in loaders and loaders.owner["stylegan"] == "stylegan"
    impl = next(i for i in pm.hook.register_loaders.get_hookimpls() if i.plugin_name == "stylegan")
    assert impl.trylast  # a third-party plugin can replace it, as it can every built-in
    listing = {p["name"]: p for p in json.loads(gandiag_in_process("plugins").stdout)}
    assert (listing["stylegan"]["builtin"], listing["stylegan"]["package"]) == (False, "gandiag")
    assert listing["stylegan"]["provides"] == {"loader": ["stylegan"]}


def test_untrusted_pickle_is_refused_in_one_line_and_runs_nothing(tmp_path, real_npz, monkeypatch):
    path, clone, _ = stylegan_pickle(tmp_path, 0)
    marker = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    res = gandiag_in_process("evaluate", path, "--real", real_npz, "--generator-path", clone, "-n", N)
    one_line(res, "--trust-checkpoint")
    assert "StyleGAN network pickle" in res.stderr
    assert not marker.exists() and "torch_utils" not in sys.modules


def test_trusted_without_nvlabs_code_names_generator_path(tmp_path, real_npz):
    path, _, _ = stylegan_pickle(tmp_path, 0)
    res = gandiag_in_process("evaluate", path, "--real", real_npz, "--trust-checkpoint", "-n", N)
    one_line(res, "--generator-path")
    assert "NVlabs" in res.stderr and "stylegan2-ada-pytorch" in res.stderr


def test_tensorflow_stylegan_pickle_says_how_to_convert(tmp_path):
    path = tmp_path / "karras2019stylegan-ffhq-1024x1024.pkl"
    path.write_bytes(b"\x80\x03cdnnlib.tflib.network\nNetwork\n)\x81.")  # never unpickled: read as opcodes
    res = gandiag_in_process("evaluate", path, "--real", "digits", "--trust-checkpoint", "-n", N)
    one_line(res, "legacy.py")


# ----------------------------------------------------------------------------- evaluations

def test_unconditional_cli_evaluates_g_ema_and_records_psi(tmp_path, real_npz, monkeypatch):
    path, clone, _ = stylegan_pickle(tmp_path, 0)
    monkeypatch.setenv(MARKER_ENV, str(tmp_path / "marker"))
    out = tmp_path / "r.json"
    res = gandiag_in_process("evaluate", path, "--real", real_npz, "--trust-checkpoint", "--generator-path", clone,
                             "-n", N, "--feature-extractor", "digits", "--metrics", "fid", "--no-diagnostics",
                             "--no-cache", "--json", out)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "marker").exists()
    d = json.loads(out.read_text())
    g, c = d["generator"], d["contract"]
    assert (g["loader"], g["format"], g["family"], g["network"]) == ("stylegan", "stylegan-pkl", "stylegan", "G_ema")
    assert (g["truncation_psi"], g["truncation_psi_from"], g["noise_mode"]) == (1.0, "default", "const")
    assert (c["latent_dim"], c["num_classes"], c["layout"], c["output_range"]) == (Z, 0, "NCHW", "-1,1")
    assert c["decided"]["latent_dim"] == "file" and c["detected"] == []
    assert np.isfinite(d["metrics"]["fid"]["value"])
    exported = gandiag_in_process("export", path, "--to", "onnx", "-o", tmp_path / "g.onnx", "--trust-checkpoint",
                                  "--generator-path", clone)
    assert exported.returncode == 2 and "not exported" in exported.stderr and not (tmp_path / "g.onnx").exists()


def test_conditional_with_truncation_equals_calling_g_directly(tmp_path, real_npz):
    path, clone, G_ema = stylegan_pickle(tmp_path, 4)
    r = evaluate(path, real_npz, trust_checkpoint=True, generator_path=[clone], truncation_psi=0.6)
    assert (r.generator["truncation_psi"], r.generator["truncation_psi_from"]) == (0.6, "flag")
    assert (r.contract["num_classes"], r.contract["label_format"]) == (4, "onehot")
    direct = same_pipeline_direct(tmp_path, lambda z, c: G_ema(z, c, truncation_psi=0.6, noise_mode="const"), Z, 4,
                                  real_npz)
    assert_same_metrics(r, direct)
    untruncated = evaluate(path, real_npz, trust_checkpoint=True, generator_path=[clone])
    assert untruncated.generator["truncation_psi"] == 1.0
    assert untruncated.metrics["fid"]["value"] != pytest.approx(r.metrics["fid"]["value"], rel=1e-3)


def test_no_ema_evaluates_g(tmp_path, real_npz):
    path, clone, _ = stylegan_pickle(tmp_path, 0)
    ema = evaluate(path, real_npz, trust_checkpoint=True, generator_path=[clone])
    raw = evaluate(path, real_npz, trust_checkpoint=True, generator_path=[clone], use_ema=False)
    assert (ema.generator["network"], raw.generator["network"]) == ("G_ema", "G")
    assert raw.metrics["fid"]["value"] != pytest.approx(ema.metrics["fid"]["value"], rel=1e-3)


# ----------------------------------------------------------------------------- BigGAN-style

def biggan_file(tmp_path):
    pkg = write_package(tmp_path / "biggan", {"pytorch_pretrained_biggan/__init__.py":
                                              "from .model import BigGAN, BigGANConfig, Sampler\n",
                                              "pytorch_pretrained_biggan/model.py": BIGGAN})
    sys.path.insert(0, pkg)
    try:
        from pytorch_pretrained_biggan import BigGAN, BigGANConfig, Sampler

        torch.manual_seed(0)
        model = BigGAN(BigGANConfig(z_dim=8, num_classes=5, output_dim=RES)).eval()
        path = tmp_path / "biggan.pkl"
        with open(path, "wb") as f:
            pickle.dump(model, f)  # a whole module, as docs/loaders-and-export.md says to save BigGAN.from_pretrained
        with open(tmp_path / "sampler.pkl", "wb") as f:
            pickle.dump(Sampler(), f)
    finally:
        sys.path.remove(pkg)
    _forget_stand_ins()
    return path, pkg, model


def test_biggan_module_refused_untrusted_and_equals_direct_call_with_truncated_latents(tmp_path, real_npz):
    from gandiag_stylegan import truncated_normal

    path, pkg, model = biggan_file(tmp_path)
    one_line(gandiag_in_process("evaluate", path, "--real", real_npz, "--generator-path", pkg, "-n", N),
             "--trust-checkpoint")
    r = evaluate(path, real_npz, trust_checkpoint=True, generator_path=[pkg], truncation_psi=0.5)
    assert (r.generator["family"], r.generator["truncation_psi"]) == ("biggan", 0.5)
    assert (r.contract["latent_dim"], r.contract["num_classes"], r.contract["label_format"]) == (8, 5, "onehot")
    direct = same_pipeline_direct(tmp_path, lambda z, c: model(truncated_normal(z, 0.5), c, 0.5), 8, 5, real_npz)
    assert_same_metrics(r, direct)
    res = gandiag_in_process("evaluate", path, "--real", real_npz, "--trust-checkpoint", "--generator-path", pkg,
                             "-n", N, "--truncation-psi", "1.5")
    one_line(res, "--truncation-psi 1.5")
    res = gandiag_in_process("evaluate", tmp_path / "sampler.pkl", "--real", real_npz, "--trust-checkpoint",
                             "--generator-path", pkg, "-n", N)
    one_line(res, "Sampler is not a BigGAN-style module")


def test_truncated_normal_is_bounded_monotone_and_distributed_as_biggan_samples():
    from gandiag_stylegan import truncated_normal

    z = torch.linspace(-6, 6, 101)
    t = truncated_normal(z, 0.5)
    assert t.abs().max() <= 1.0 + 1e-6 and bool((t[1:] >= t[:-1]).all())
    assert float(truncated_normal(torch.zeros(1), 0.7)) == pytest.approx(0.0, abs=1e-7)
    draws = truncated_normal(torch.randn(200_000, generator=torch.Generator().manual_seed(0)), 1.0).double()
    assert float(draws.std()) == pytest.approx(0.8796, abs=0.01)  # the standard deviation of N(0,1) cut at ±2
