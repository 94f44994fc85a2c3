"""Sequence GANs in the reference trainer: tcn-gan and rnn-gan (LSTM, GRU) on sines and on labelled sequences.

Tiny networks and a few dozen steps: the nets' contracts (causality, packing,
spectral norm), every trick through the one loop, exact resume, and the
checkpoint opened by ``gandiag evaluate`` and ``gandiag diagnose`` with no flag.
"""

import json

import numpy as np
import pytest
import torch

from gandiag.errors import GandiagError
from gandiag.generator.checkpoint import build_network, net_spec, read_checkpoint
from gandiag.training import nets, read_log, sequence_nets, train

FAST = dict(progress=False, log_every=5, eval_every=1000, ckpt_every=10, eval_samples=64)
TINY = dict(width=8, latent_dim=3, noise_dim=2, batch_size=8)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """60 labelled sequences of 12 steps x 3 channels, 3 classes (frequencies), amplitude 2: beyond [-1, 1]."""
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 3, 60)
    t = np.arange(12)
    x = np.stack([np.stack([2 * np.sin((0.3 + 0.4 * y) * t + rng.uniform(0, 6)) for _ in range(3)], 1)
                  for y in labels]).astype(np.float32)
    path = tmp_path_factory.mktemp("seq") / "labelled.npz"
    np.savez(path, sequences=x, labels=labels)
    return str(path)


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _step_noise(z: torch.Tensor, G, t: int) -> slice:
    return slice(G.global_dim + t * G.noise_dim, G.global_dim + (t + 1) * G.noise_dim)


@pytest.mark.parametrize("arch,extra", [("tcn-generator", {}), ("rnn-generator", {"cell": "lstm"}),
                                        ("rnn-generator", {"cell": "gru"})])
def test_generators_are_causal_in_their_per_step_noise(arch, extra):
    torch.manual_seed(0)
    G = sequence_nets.SEQUENCE_ARCHITECTURES[arch](latent_dim=5 + 20 * 2, steps=20, channels=3, noise_dim=2,
                                                   width=8, num_classes=4, **extra)
    z, y = torch.randn(6, G.latent_dim), torch.arange(6) % 4
    x = G(z, y)
    assert x.shape == (6, 20, 3)
    for t in (0, 7, 19):
        moved = z.clone()
        moved[:, _step_noise(z, G, t)] += 1.0
        x2 = G(moved, y)
        assert torch.equal(x[:, :t], x2[:, :t]), f"noise at step {t} changed an earlier output"
        assert not torch.allclose(x[:, t], x2[:, t])
    if arch == "tcn-generator":  # dilations 1, 2, 4: the receptive field covers the sequence
        assert sequence_nets.receptive_field(G.levels) >= 20 and [b.conv1.conv.dilation[0] for b in G.blocks] == [1, 2, 4]
        moved = z.clone()
        moved[:, _step_noise(z, G, 0)] += 1.0
        assert not torch.allclose(x[:, -1], G(moved, y)[:, -1])  # the last step sees the first step's noise
    assert not torch.allclose(x, G(z, (y + 1) % 4))  # labels reach the output


def test_discriminators_pack_condition_and_spectral_norm():
    x, y = torch.rand(6, 10, 3), torch.arange(6) % 3
    packed = nets.pack_groups(x, 2)
    assert packed.shape == (3, 10, 6) and torch.equal(packed[1, :, 3:], x[3])  # a group's sequences side by side
    for arch, extra in (("tcn-discriminator", {}), ("rnn-discriminator", {"cell": "gru", "layers": 2})):
        D = sequence_nets.SEQUENCE_ARCHITECTURES[arch](steps=10, channels=3, width=8, pack=2, num_classes=3,
                                                       spectral_norm=True, **extra)
        assert D(x, y).shape == (3,)
        want = "rnn.weight_hh_l1_orig" if arch.startswith("rnn") else "blocks.0.conv1.conv.weight_orig"
        assert want in D.state_dict() and "score.weight_orig" in D.state_dict()  # every layer normalised
        again = build_network(net_spec(arch, {"steps": 10, "channels": 3, "width": 8, "pack": 2, "num_classes": 3,
                                              "spectral_norm": True, **extra}, D))
        assert torch.equal(again.eval()(x, y), D.eval()(x, y))
    with pytest.raises(ValueError, match="groups of 2"):
        D(torch.rand(5, 10, 3), torch.arange(5) % 3)
    with pytest.raises(ValueError, match="smaller than steps"):
        sequence_nets.TCNGenerator(latent_dim=10, steps=24, noise_dim=4)


@pytest.mark.parametrize("variant,data,extra", [
    ("tcn-gan", "sines", {}),
    ("rnn-gan", "sines", {"cell": "lstm", "ema": 0}),
    ("rnn-gan", "labelled", {"cell": "gru", "loss": "hinge", "spectral_norm": True}),
    ("tcn-gan", "labelled", {"conditional": False, "pack": 2, "label_smoothing": 0.1}),
    ("wgan-gp", "labelled", {"arch": "rnn", "n_critic": 2}),
    ("hinge-sn", "sines", {"arch": "tcn"}),
])
def test_sequence_variants_train_and_checkpoints_rebuild(tmp_path, labelled, variant, data, extra):
    spec = labelled if data == "labelled" else data
    path = train(variant, spec, tmp_path, steps=6, seed=1, **FAST, **TINY, **extra)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    c, cfg = raw["contract"], raw["config"]
    steps, channels = (24, 5) if data == "sines" else (12, 3)
    assert (c["kind"], c["layout"], c["sample_shape"]) == ("sequences", "NTC", [steps, channels])
    # sines lie in [0, 1]: sigmoid; the labelled set has amplitude 2: a linear output and no range
    assert (cfg["resolved"]["output"], c["output_range"]) == (("sigmoid", "0,1") if data == "sines" else ("linear", None))
    # unbounded data: G and D work in standard units, the data's per-channel statistics in both nets' kwargs
    stats = [raw[k]["kwargs"].get("data_std") for k in ("generator", "discriminator")]
    assert stats == ([None, None] if data == "sines" else [stats[0]] * 2) and (data == "sines" or len(stats[0]) == 3)
    conditional = data == "labelled" and variant != "wgan-gp" and extra.get("conditional") is not False
    assert cfg["variant"]["conditional"] == conditional and c["num_classes"] == (3 if conditional else 0)
    arch = extra.get("arch") or variant.split("-")[0]
    assert raw["generator"]["arch"] == f"{arch}-generator" and raw["discriminator"]["arch"] == f"{arch}-discriminator"
    assert cfg["variant"]["spectral_norm"] == (variant == "hinge-sn" or bool(extra.get("spectral_norm")))
    if arch == "rnn":
        assert raw["generator"]["kwargs"]["cell"] == extra.get("cell", "lstm")
    assert c["latent_dim"] == 3 + steps * 2 == raw["generator"]["kwargs"]["latent_dim"]
    G = build_network(raw["generator"]).eval()
    z = torch.randn(4, c["latent_dim"])
    x = G(z, torch.arange(4) % 3) if conditional else G(z)
    assert x.shape == (4, steps, channels) and torch.isfinite(x).all()
    build_network(raw["discriminator"])
    json.dumps(cfg)
    ev = read_log(tmp_path / "log.jsonl")[-1]["eval"]
    assert ("fd" in ev and ev["fd"] >= 0) or "skipped" in ev  # FD on sequence features, or why not


@pytest.mark.parametrize("variant,extra", [
    ("tcn-gan", dict(pack=2, ema=0.9, instance_noise=0.1, label_smoothing=0.1)),
    # WGAN-GP: the gradient penalty on (N, T, C) interpolates, through a GRU critic, conditional by the option
    ("wgan-gp", dict(arch="rnn", cell="gru", conditional=True, n_critic=2, lr_schedule="step", lr_step_every=7)),
])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path, labelled, variant, extra):
    kw = dict(steps=30, seed=3, **FAST, **TINY, **extra)
    full = train(variant, labelled, tmp_path / "full", **kw)
    # "kill" at step 25: the last checkpoint on disk is step 20
    killed = train(variant, labelled, tmp_path / "killed", stop_after=25, **kw)
    assert read_checkpoint(killed)["step"] == 20
    resumed = train(variant, labelled, tmp_path / "killed", resume=True, progress=False)
    a, b = read_checkpoint(full), read_checkpoint(resumed)
    assert b["step"] == 30 and a["config"]["variant"]["conditional"] and b["config"]["variant"]["conditional"]
    for key in ("generator", "discriminator"):
        _same_weights(a[key]["state_dict"], b[key]["state_dict"])
    if a["ema_generator"] is not None:
        _same_weights(a["ema_generator"], b["ema_generator"])
    log = read_log(tmp_path / "full" / "log.jsonl")
    if variant == "wgan-gp":
        assert all("gp" in r and "gp_grad_norm" in r for r in log if "d_loss" in r)
    assert [r["step"] for r in read_log(tmp_path / "killed" / "log.jsonl")] == [r["step"] for r in log]


def test_sequence_variants_refuse_other_data_and_options(tmp_path, labelled):
    with pytest.raises(GandiagError, match="trains on sequences"):
        train("tcn-gan", "ring8", tmp_path / "a", steps=2, progress=False)
    with pytest.raises(GandiagError, match="--arch is for sequence data"):
        train("gan", "ring8", tmp_path / "b", steps=2, arch="rnn", progress=False)
    with pytest.raises(GandiagError, match="images"):
        train("dcgan", labelled, tmp_path / "c", steps=2, progress=False)
    with pytest.raises(GandiagError, match="contradicts"):
        train("tcn-gan", labelled, tmp_path / "d", steps=2, arch="rnn", progress=False)
    with pytest.raises(GandiagError, match="--cell"):
        train("rnn-gan", labelled, tmp_path / "e", steps=2, cell="transformer", progress=False)
    with pytest.raises(GandiagError, match="no class labels"):
        train("tcn-gan", "sines", tmp_path / "f", steps=2, conditional=True, progress=False)


@pytest.fixture(scope="module")
def gandiag_cli():
    from gandiag import cli

    cli._add_plugin_commands()
    return cli.cli


def test_cli_trains_and_evaluate_and_diagnose_need_no_flag(tmp_path, gandiag_cli):
    from click.testing import CliRunner

    runner = CliRunner()
    out = tmp_path / "tcn"
    r = runner.invoke(gandiag_cli, ["train", "tcn-gan", "--data", "sines", "--out", str(out), "--steps", "8",
                                    "--width", "8", "--batch-size", "16", "--eval-samples", "64", "--sn",
                                    "--no-progress"])
    assert r.exit_code == 0, r.output
    ckpt = out / "checkpoint.pt"
    assert read_checkpoint(ckpt)["config"]["variant"]["spectral_norm"] is True
    res = runner.invoke(gandiag_cli, ["evaluate", str(ckpt), "-n", "200", "--device", "cpu", "--no-cache",
                                      "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "r.json").read_text())
    assert "sines" in json.dumps(result["real"])  # the checkpoint named its own training data
    gh = result["diagnostics"]["gradient_health"]
    assert gh["verdict"] in ("healthy", "warning"), gh["reasons"]
    assert "adversarial" in gh and not gh["adversarial"].get("skipped")  # G and D rebuilt, a real batch drawn
    assert gh["adversarial"]["grad_norm_total"]["D"] > 0 and "blocks.0.conv1.conv.weight_orig" in gh["adversarial"]["grad_norm"]["D"]
    assert gh["output"]["real_saturation"] < 0.5  # real sines compared in their own range, not as pixels
    res = runner.invoke(gandiag_cli, ["diagnose", str(ckpt), "-n", "200", "--device", "cpu", "--no-cache"])
    assert res.exit_code == 0, res.output
    assert "gradient_health: " in res.output


def test_periodic_evaluation_skips_with_a_reason_instead_of_stopping_training(tmp_path, labelled):
    # the sines feature net takes 24 x 5 sequences only (when registered): the labelled set is 12 x 3
    for name in ("sines", "inception-v3"):
        path = train("tcn-gan", labelled, tmp_path / name, steps=2, eval_extractor=name, **FAST, **TINY)
        ev = read_log(path.parent / "log.jsonl")[-1]["eval"]
        assert set(ev) == {"skipped"} and name in ev["skipped"], ev


def test_sequence_defaults_and_the_basicmotions_configuration(labelled):
    from gandiag.training.data import TrainingData
    from gandiag.training.settings import SEQUENCE_DATA_DEFAULTS, resolve
    from gandiag.training.variants import Options, get_variant

    tcn = get_variant("tcn-gan")
    r = resolve(tcn, Options(), TrainingData(labelled))
    assert (r.steps, r.width, r.batch_size, r.ema, r.lr_g, r.lr_schedule) == (2000, 64, 64, 0.999, 1e-3, "cosine")
    assert (r.arch, r.global_dim, r.noise_dim, r.latent_dim, r.output) == ("tcn", 16, 4, 16 + 12 * 4, "linear")
    assert SEQUENCE_DATA_DEFAULTS["basicmotions"] == {"steps": 2000, "width": 32}
    wgan_gp = resolve(get_variant("wgan-gp"), Options(arch="rnn"), TrainingData(labelled))  # keeps its published rate
    assert (wgan_gp.lr_g, wgan_gp.arch, wgan_gp.cell) == (1e-4, "rnn", "lstm")
