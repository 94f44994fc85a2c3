"""The PyTorch loader plugin: every format it reads, and every file it must refuse."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import gandiag_in_process
from tiny_models import NaNGenerator, PointsGenerator, TinyImageGenerator, TinyNHWCGenerator, WrongShapeGenerator

import gandiag
from gandiag.errors import CheckpointError, GandiagError, GeneratorOutputError
from gandiag.generator.loading import LoadOptions, load_generator

sys.path.insert(0, str(Path(__file__).parent))


def _script(module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


def test_torchscript_with_latent_dim_flag(tmp_path):
    path = _script(TinyImageGenerator(), tmp_path / "g.pt")
    r = gandiag.evaluate(path, "digits", latent_dim=16, num_samples=200, device="cpu", diagnostics=False,
                         metrics=["fid", "is"])
    assert r.generator["format"] == "torchscript"
    assert r.contract["output_range"] == "-1,1" and r.contract["layout"] == "NCHW"
    assert set(r.contract["detected"]) >= {"kind", "layout", "output_range"}
    assert r.metrics["fid"]["label"] == "FID [digits]"


class _RawWeights(torch.nn.Module):
    """A generator with no layer gandiag knows (a raw matrix): nothing says its latent size."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(16, 64, generator=torch.Generator().manual_seed(0)))

    def forward(self, z):
        return torch.tanh(z @ self.w).view(-1, 1, 8, 8)


def test_torchscript_latent_size_read_from_its_first_layer(tmp_path):
    for scripted in (True, False):
        net = TinyImageGenerator().eval()
        path = tmp_path / f"g{scripted}.pt"
        saved = torch.jit.script(net) if scripted else torch.jit.trace(net, torch.randn(2, 16))
        torch.jit.save(saved, str(path))  # traced modules keep the weights but not in_features: read the weight
        gen = load_generator(path)
        assert gen.contract.latent_dim == 16 and gen.contract.decided["latent_dim"] == "module"


def test_torchscript_without_latent_dim_asks_for_it(tmp_path):
    path = _script(_RawWeights(), tmp_path / "g.pt")
    with pytest.raises(GandiagError, match="--latent-dim"):
        gandiag.evaluate(path, "digits", num_samples=50, device="cpu")


def test_torch_export_program_knows_its_latent_size(tmp_path):
    g = TinyNHWCGenerator().eval()
    batch = torch.export.Dim("batch", min=1)
    ep = torch.export.export(g, (torch.randn(4, 16),), dynamic_shapes={"z": {0: batch}})
    path = tmp_path / "g.pt2"
    torch.export.save(ep, str(path))
    r = gandiag.evaluate(str(path), "digits", num_samples=100, device="cpu", diagnostics=False, metrics=["fid"])
    assert r.generator["format"] == "torch.export"
    assert r.contract["latent_dim"] == 16
    assert r.contract["layout"] == "NHWC" and r.contract["output_range"] == "0,1"


@pytest.mark.parametrize("traced_batch", [1, 7])
def test_torch_export_program_of_a_fixed_batch_runs_in_chunks(tmp_path, traced_batch):
    """torch.export's default (no dynamic_shapes) fixes the batch: gandiag runs such a program in chunks of it,
    the last padded, and gets the metrics of the same network exported with a dynamic batch; export refuses it
    in one line (any graph made from it would keep that batch size)."""
    g = TinyNHWCGenerator().eval()
    fixed, dynamic = tmp_path / f"b{traced_batch}.pt2", tmp_path / "dyn.pt2"
    torch.export.save(torch.export.export(g, (torch.randn(traced_batch, 16),)), str(fixed))
    torch.export.save(torch.export.export(g, (torch.randn(4, 16),), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)),
                      str(dynamic))
    gen = load_generator(fixed)
    assert gen.meta["fixed_batch"] == traced_batch and "fixed_batch" not in load_generator(dynamic).meta
    z = torch.randn(10, 16)  # not a multiple of 7: a padded last chunk
    with torch.no_grad():
        assert torch.allclose(gen.forward(z), g(z), rtol=0, atol=1e-6)  # other batch sizes: other BLAS blocking
    kw = dict(num_samples=100, device="cpu", diagnostics=False, metrics=["fid", "precision"])
    one, other = gandiag.evaluate(str(fixed), "digits", **kw), gandiag.evaluate(str(dynamic), "digits", **kw)
    assert one.value("fid") == pytest.approx(other.value("fid"), rel=1e-5)
    assert one.value("precision") == pytest.approx(other.value("precision"), abs=0.011)  # a ball or so, at most
    res = gandiag_in_process("export", fixed, "--to", "onnx", "-o", tmp_path / "g.onnx")
    assert res.returncode == 2 and f"batch size of {traced_batch} only" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "g.onnx").exists()


def test_pickled_module_refused_without_trust(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(TinyImageGenerator(), path)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_generator(path)
    loaded = load_generator(path, LoadOptions(trust_checkpoint=True))
    assert loaded.format == "pickled-module" and loaded.contract.latent_dim == 16


def test_state_dict_needs_class_and_trust(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(TinyImageGenerator().state_dict(), path)
    with pytest.raises(CheckpointError, match="--generator-class"):
        load_generator(path)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_generator(path, LoadOptions(generator_class="tiny_models:TinyImageGenerator"))
    loaded = load_generator(path, LoadOptions(trust_checkpoint=True, generator_class="tiny_models:TinyImageGenerator"))
    assert loaded.format == "state_dict"


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"PK\x03\x04 truncated zip", "corrupt|truncated"),
    (b"\x80\x02 not really a pickle", "corrupt|truncated|pickled"),
])
def test_broken_files_get_one_clear_error(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_generator(path)


def test_truncated_torchscript(tmp_path):
    path = Path(_script(TinyImageGenerator(), tmp_path / "g.pt"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_generator(path)


def test_unknown_format_names_loaders_tried(tmp_path):
    path = tmp_path / "model.xyz"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="tried: .*torch"):
        load_generator(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_generator(tmp_path / "nope.pt")


def test_nan_output_is_refused(tmp_path):
    path = _script(NaNGenerator(), tmp_path / "nan.pt")
    with pytest.raises(GeneratorOutputError, match="NaN"):
        gandiag.evaluate(path, "digits", latent_dim=16, num_samples=50, device="cpu")


def test_wrong_output_shape_is_refused(tmp_path):
    path = _script(WrongShapeGenerator(), tmp_path / "w.pt")
    with pytest.raises(GeneratorOutputError, match="layout|channels"):
        gandiag.evaluate(path, "digits", latent_dim=16, num_samples=50, device="cpu")


def test_points_generator_against_ring8(tmp_path):
    path = _script(PointsGenerator(), tmp_path / "p.pt")
    r = gandiag.evaluate(path, "ring8", latent_dim=2, num_samples=500, device="cpu", diagnostics=False)
    assert r.contract["kind"] == "points"
    assert "is" not in r.metrics  # points have no class logits
    assert r.metrics["fid"]["features"] == "points"


def test_real_data_kind_must_match(tmp_path):
    path = _script(PointsGenerator(), tmp_path / "p.pt")
    with pytest.raises(GandiagError, match="points"):
        gandiag.evaluate(path, "digits", latent_dim=2, num_samples=50, device="cpu")
