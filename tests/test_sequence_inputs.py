"""Sequences in (issue 13, items 1 and 2): the motion datasets from sktime's wheel, the user's own .npz/.npy
sequences (samples and --real), the rule that never reads sequences as images or images as sequences, and
sequence generators through every loader and ``gandiag export``, with equal numbers across formats."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch
from conftest import gandiag_in_process, require_extra
from torch import nn

import gandiag
from gandiag.data import kinds
from gandiag.data.samples import from_array, open_samples
from gandiag.data.sequences import sines_data
from gandiag.data.sources import load_real
from gandiag.errors import DataError, GandiagError
from gandiag.generator.signature import TensorInfo, read_signature

SEQ = dict(num_samples=200, seed=3, batch_size=100, device="cpu", diagnostics=False, use_cache=False,
           feature_extractor=["sequence-stats"], metrics=["fid", "kid"], kid_subset_size=100, kid_subsets=10)


class ConvSeqGen(nn.Module):
    """(N, 8) -> (N, 5, 24): a Conv1d stack, channels first (NCT)."""

    def __init__(self, latent_dim=8, channels=5, steps=24):
        super().__init__()
        self.project = nn.Linear(latent_dim, 16 * (steps // 2))
        self.half = steps // 2
        self.up = nn.ConvTranspose1d(16, 16, 4, stride=2, padding=1)
        self.out = nn.Conv1d(16, channels, 3, padding=1)

    def forward(self, z):
        x = torch.relu(self.project(z)).view(z.shape[0], 16, self.half)
        return torch.sigmoid(self.out(torch.relu(self.up(x))))


class GRUSeqGen(nn.Module):
    """(N, 8) -> (N, 24, 5): a GRU, batch_first (NTC)."""

    def __init__(self, latent_dim=8, channels=5, steps=24, hidden=16):
        super().__init__()
        self.project = nn.Linear(latent_dim, hidden)
        self.steps = steps
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, channels)

    def forward(self, z):
        h = torch.tanh(self.project(z))
        y, _ = self.rnn(h[:, None, :].expand(-1, self.steps, -1).contiguous())
        return torch.sigmoid(self.out(y))


# ----------------------------------------------------------------------------------------- motion datasets
def test_motion_sources_from_sktimes_wheel():
    require_extra("sktime")
    bm = load_real("basicmotions")
    assert (bm.kind, tuple(bm.data.shape), bm.data.dtype) == ("sequences", (80, 100, 6), torch.float32)
    assert np.bincount(bm.labels).tolist() == [20, 20, 20, 20]
    assert bm.meta["splits"] == {"train": 40, "test": 40}
    assert bm.meta["classes"] == ["badminton", "running", "standing", "walking"]
    from sktime.datasets import load_basic_motions

    x, y = load_basic_motions(split="train", return_X_y=True, return_type="numpy3D")  # (N, C, T)
    assert np.array_equal(bm.data[:40].numpy(), x.transpose(0, 2, 1).astype(np.float32))  # train first, as recorded
    assert bm.labels[:40].tolist() == [["badminton", "running", "standing", "walking"].index(v) for v in y]
    gp = load_real("gunpoint")
    assert (tuple(gp.data.shape), np.bincount(gp.labels).tolist()) == ((200, 150, 1), [100, 100])
    from gandiag.plugins import registry

    reg = registry("real source")
    assert reg["basicmotions"].default_extractor == "motion" and "japanesevowels" not in reg.names()


def test_motion_sources_feed_class_conditional_training():
    require_extra("sktime")
    from gandiag.training.data import TrainingData

    d = TrainingData("basicmotions")
    x, y = d.batch(16, 0, 0, torch.Generator().manual_seed(0))
    assert (d.kind, d.sample_shape, d.num_classes, d.classes) == ("sequences", (100, 6), 4, [0, 1, 2, 3])
    assert x.shape == (16, 100, 6) and y.shape == (16,) and d.checkpoint_data()["source"] == "basicmotions"


def test_missing_motion_extra_is_one_line(tmp_path, monkeypatch):
    np.savez(tmp_path / "fake.npz", sequences=np.zeros((40, 100, 6), np.float32))
    monkeypatch.setitem(sys.modules, "sktime", None)  # import sktime raises ImportError
    monkeypatch.setitem(sys.modules, "sktime.datasets", None)
    res = gandiag_in_process("evaluate", tmp_path / "fake.npz", "--real", "basicmotions", "--device", "cpu")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "pip install 'gandiag[motion]'" in res.stderr


# ------------------------------------------------------------------------------ arrays: never guessed
def test_three_d_arrays_are_never_silently_images_or_sequences():
    rng = np.random.default_rng(0)
    signed = rng.normal(size=(30, 24, 5)).astype(np.float32)  # was rejected as "pixel values"
    with pytest.raises(DataError, match="--kind sequences") as e:
        from_array(signed, "x.npy")
    assert "outside pixel ranges" in str(e.value) and "grey images" not in str(e.value)
    with pytest.raises(DataError, match="--kind sequences or --kind images"):
        from_array(sines_data(30).astype(np.float32), "x.npy")  # [0, 1] floats: were read as 24x5 grey images
    with pytest.raises(DataError, match="--kind sequences"):
        from_array(rng.random((30, 28, 28)).astype(np.float32), "x.npy")  # floats of 28x28: either
    with pytest.raises(DataError, match="--kind sequences"):
        from_array(rng.integers(0, 255, (30, 24, 5), dtype=np.uint8), "x.npy")  # uint8 but 5 wide: not an image
    grey = from_array(rng.integers(0, 255, (30, 8, 8), dtype=np.uint8), "x.npy")
    assert (grey.kind, grey.sample_shape) == ("images", (1, 8, 8))  # uint8 of at least 8x8: grey images, as before
    s = from_array(signed, "x.npy", kind="sequences")
    assert (s.kind, s.sample_shape) == ("sequences", (24, 5)) and torch.equal(s.data, torch.from_numpy(signed))
    nct = from_array(signed.transpose(0, 2, 1), "x.npy", kind="sequences", layout="NCT")
    assert torch.equal(nct.data, s.data)
    assert from_array(signed, "x.npz", key="sequences").kind == "sequences"
    assert from_array(signed, "real.npy", hint="sequences").kind == "sequences"  # a --real array: the target's kind
    with pytest.raises(DataError, match="--layout NHWC is not a layout of sequences"):
        from_array(signed, "x.npz", key="sequences", layout="NHWC")
    assert kinds.for_array(signed, None, "images", "x").name == "images"  # --kind decides; the images kind checks


def test_npy_files_are_checked_before_reading(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="plain numbers"):
        open_samples(str(tmp_path / "obj.npy"), kind="sequences")
    data = np.zeros((10, 24, 5), np.float32)
    np.save(tmp_path / "ok.npy", data)
    raw = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(raw[:-8])
    with pytest.raises(DataError, match="corrupt"):
        open_samples(str(tmp_path / "short.npy"), kind="sequences")
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(DataError, match="not a .npy file"):
        open_samples(str(tmp_path / "text.npy"), kind="sequences")
    assert open_samples(str(tmp_path / "ok.npy"), kind="sequences").sample_shape == (24, 5)


def test_users_sequences_as_samples_and_as_real(tmp_path):
    """.npz with sequences + labels, and .npy (NTC and NCT), on both sides: the same arrays, the same numbers."""
    fake, real = sines_data(200, seed=1).astype(np.float32), sines_data(300, seed=2).astype(np.float32)
    fake[:, :, 0] *= 0.5  # something to measure
    labels = np.arange(200) % 3
    np.savez(tmp_path / "fake.npz", sequences=fake, labels=labels)
    np.savez(tmp_path / "real.npz", sequences=real)
    np.save(tmp_path / "fake.npy", fake)
    np.save(tmp_path / "real_nct.npy", real.transpose(0, 2, 1))
    a = gandiag.evaluate(tmp_path / "fake.npz", str(tmp_path / "real.npz"), **SEQ)
    b = gandiag.evaluate(tmp_path / "fake.npy", str(tmp_path / "real_nct.npy"), kind="sequences", real_layout="NCT",
                         **SEQ)
    assert a.value("fid") > 0.01 and a.value("fid") == pytest.approx(b.value("fid"), rel=1e-9)
    assert a.value("kid") == pytest.approx(b.value("kid"), rel=1e-9, abs=1e-12)
    with pytest.raises(DataError, match="--real-layout NCT: .* 'sines' is a bundled source"):
        gandiag.evaluate(tmp_path / "fake.npz", "sines", real_layout="NCT", **SEQ)
    res = gandiag_in_process("evaluate", tmp_path / "fake.npy", "--real", tmp_path / "real.npz", "--device", "cpu")
    assert res.returncode == 2 and "--kind sequences" in res.stderr and res.stderr.count("\n") == 1
    res = gandiag_in_process("evaluate", tmp_path / "fake.npz", "--real", tmp_path / "real_nct.npy", "-n", 200,
                             "--feature-extractor", "sequence-stats", "--metrics", "fid", "--no-diagnostics",
                             "--device", "cpu", "--no-cache")  # read as NTC: 5 steps of 24 channels, not comparable
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr


# ---------------------------------------------------------------------------- signatures of rank 3
def test_rank_three_signatures():
    z = TensorInfo("z", (None, 8), "float")
    sig = read_signature("g", [z], [TensorInfo("out", (None, 1, 150), "float")], None)
    assert (sig.contract.kind, sig.contract.layout) == ("sequences", "NCT")  # one axis of a single channel
    sig = read_signature("g", [z], [TensorInfo("out", (None, 24, 5), "float")], None)
    assert (sig.contract.kind, sig.contract.layout) == ("sequences", None)  # ONNX: the probe, else --layout
    sig = read_signature("g", [z], [TensorInfo("out", (None, 24, 5), "float")], "NHWC", "NTC")
    assert sig.contract.layout == "NTC"  # SavedModel: Keras' (batch, timesteps, features)
    sig = read_signature("g", [TensorInfo("z", (None, None), "float")], [TensorInfo("o", (None, 30, 1), "float")],
                         None)
    assert sig.contract is None and sig.known == {"kind": ("sequences", "file"), "layout": ("NTC", "file")}
    assert read_signature("g", [z], [TensorInfo("o", (None, 24, 5), "float")], None, "NTC").contract.decided["layout"] \
        == "default"  # the convention, not the shape
    with pytest.raises(GandiagError, match=r"sequences \(N,T,C\)"):
        read_signature("g", [z], [TensorInfo("out", (None, 2, 3, 4, 5), "float")], None)


# ------------------------------------------------------------- sequence generators in every format
def _save_formats(net, name, d):
    """The files people have: a pickled module, a .pt2, TorchScript and an ONNX graph, none with a contract."""
    z = torch.randn(3, 8)
    dyn = ({0: torch.export.Dim.DYNAMIC},)
    torch.save(net, d / f"{name}.pkl")
    with warnings.catch_warnings():  # a GRU's flat weights: "assigned during export"
        warnings.simplefilter("ignore")
        program = torch.export.export(net, (z,), dynamic_shapes=dyn)
        torch.export.save(program, d / f"{name}.pt2")
        torch.jit.save(torch.jit.trace(net, (z,)), d / f"{name}.jit")
    files = [d / f"{name}.pkl", d / f"{name}.pt2", d / f"{name}.jit"]
    require_extra("onnxruntime")
    require_extra("onnxscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(program, (z,), str(d / f"{name}.onnx"), input_names=["z"], output_names=["out"],
                          dynamo=True, external_data=False, report=False, verbose=False)  # from the program: faster
    return files + [d / f"{name}.onnx"]


@pytest.mark.parametrize("net,layout", [(ConvSeqGen, "NCT"), (GRUSeqGen, "NTC")], ids=["conv1d", "gru"])
def test_sequence_generators_in_every_format_give_equal_numbers(tmp_path, net, layout):
    torch.manual_seed(0)
    g = net().eval()
    files = _save_formats(g, net.__name__, tmp_path)
    values = {}
    for f in files:
        r = gandiag.evaluate(f, "sines", layout=layout, trust_checkpoint=f.suffix == ".pkl", **SEQ)
        assert (r.contract["kind"], r.contract["layout"], r.contract["sample_shape"]) == ("sequences", layout, [24, 5])
        values[f.suffix] = (r.value("fid"), r.value("kid"))
    with pytest.raises(GandiagError, match="--layout NTC or NCT"):  # 24 x 5 or 5 x 24: asked, never guessed
        gandiag.evaluate(files[1], "sines", **SEQ)
    first = values[".pkl"]
    for suffix, (fid, kid) in values.items():
        assert fid == pytest.approx(first[0], rel=1e-5) and kid == pytest.approx(first[1], rel=1e-4, abs=1e-7), suffix


def test_export_of_a_sequence_generator_stores_its_contract(tmp_path):
    """gandiag export of a pickled Conv1d generator (NCT): each export loads with no flag and gives the same
    numbers; SavedModel is refused in one line."""
    from gandiag.export.exporters import SUFFIX, export_checkpoint
    from gandiag.options import EvalOptions

    torch.manual_seed(1)
    torch.save(ConvSeqGen().eval(), tmp_path / "g.pkl")
    opts = EvalOptions().with_overrides(trust_checkpoint=True, layout="NCT")
    want = gandiag.evaluate(tmp_path / "g.pkl", "sines", trust_checkpoint=True, layout="NCT", **SEQ).value("fid")
    require_extra("onnxruntime")
    require_extra("onnxscript")
    for to in ("export", "torchscript", "onnx"):
        out = export_checkpoint(tmp_path / "g.pkl", to, tmp_path / f"g{SUFFIX[to]}", options=opts)
        r = gandiag.evaluate(out, "sines", **SEQ)  # no --layout: the stored contract says NCT
        assert r.contract["layout"] == "NCT" and r.contract["decided"]["layout"] == "file", to
        assert r.value("fid") == pytest.approx(want, rel=1e-5), to
    res = gandiag_in_process("export", tmp_path / "g.pkl", "--to", "savedmodel", "-o", tmp_path / "sm",
                             "--trust-checkpoint", "--layout", "NCT")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "not sequence generators" in res.stderr
    assert not (tmp_path / "sm").exists()
    assert json.loads(json.dumps(r.contract))["sample_shape"] == [24, 5]
