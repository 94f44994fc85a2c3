"""The reference trainer: every variant runs, checkpoints load safely, resume is exact, the log is complete."""

import json

import pytest
import torch

from gandiag.errors import GandiagError
from gandiag.generator.checkpoint import build_network, read_checkpoint
from gandiag.training import VARIANTS, nets, read_log, train

FAST = dict(progress=False, log_every=5, eval_every=1000, ckpt_every=10)
TINY_IMAGES = dict(width=8, latent_dim=8, batch_size=8)


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains_a_few_steps(tmp_path, variant):
    data, extra = ("digits", TINY_IMAGES) if variant == "dcgan" else ("ring8", {"batch_size": 16})
    if VARIANTS[variant].sequences_only:  # tcn-gan, rnn-gan (more in tests/test_sequence_training.py)
        data, extra = "sines", {"batch_size": 8, "width": 8, "eval_samples": 64}
    path = train(variant, data, tmp_path, steps=6, seed=1, **FAST, **extra)
    ckpt = read_checkpoint(path)
    assert ckpt["step"] == 6 and ckpt["config"]["variant_name"] == variant
    G = build_network(ckpt["generator"]).eval()
    c = ckpt["contract"]
    z = torch.randn(4, c["latent_dim"])
    x = G(z, torch.arange(4) % c["num_classes"]) if c["num_classes"] else G(z)
    assert tuple(x.shape[1:]) == tuple(c["sample_shape"]) and torch.isfinite(x).all()
    assert len(read_log(tmp_path / "log.jsonl")) >= 2


def test_checkpoint_loads_with_weights_only_and_names_its_data(tmp_path):
    path = train("cgan", "digits", tmp_path, steps=3, **FAST, **TINY_IMAGES)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == "gandiag.checkpoint"
    assert raw["data"]["source"] == "digits"
    c = raw["contract"]
    assert (c["kind"], c["layout"], c["output_range"], c["latent_dist"]) == ("images", "NCHW", "-1,1", "normal")
    assert c["num_classes"] == 10 and c["sample_shape"] == [1, 8, 8]
    assert set(raw["optimizers"]) == {"G", "D"} and raw["rng"]["torch"].dtype == torch.uint8
    json.dumps(raw["config"])  # the full configuration is plain JSON
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file
    x = build_network(raw["generator"]).eval()(torch.randn(5, c["latent_dim"]), torch.arange(5))
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("variant,data,extra", [
    ("gan", "ring8", dict(pack=2, batch_size=16, ema=0.9, instance_noise=0.1, lr_schedule="cosine", label_smoothing=0.1)),
    ("wgan-gp", "digits", dict(TINY_IMAGES, n_critic=2, lr_schedule="step", lr_step_every=7)),
])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path, variant, data, extra):
    full = train(variant, data, tmp_path / "full", steps=30, seed=3, **FAST, **extra)
    # "kill" at step 25: the last checkpoint on disk is step 20
    killed = train(variant, data, tmp_path / "killed", steps=30, seed=3, stop_after=25, **FAST, **extra)
    assert read_checkpoint(killed)["step"] == 20
    resumed = train(variant, data, tmp_path / "killed", resume=True, progress=False)
    a, b = read_checkpoint(full), read_checkpoint(resumed)
    assert b["step"] == 30
    for key in ("generator", "discriminator"):
        _same_weights(a[key]["state_dict"], b[key]["state_dict"])
    if a["ema_generator"] is not None:
        _same_weights(a["ema_generator"], b["ema_generator"])
    steps = [r["step"] for r in read_log(tmp_path / "killed" / "log.jsonl")]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no duplicated lines after resume
    assert steps == [r["step"] for r in read_log(tmp_path / "full" / "log.jsonl")]


def test_log_fields(tmp_path):
    train("wgan-gp", "ring8", tmp_path, steps=10, log_every=5, eval_every=10, progress=False, batch_size=16)
    log = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in log] == [1, 5, 10]
    for r in log:
        for key in ("g_loss", "d_loss", "d_real", "d_fake", "gp", "gp_grad_norm", "wasserstein", "lr_g", "lr_d",
                    "grad_norm", "grad_norm_total", "time"):
            assert key in r, key
        assert set(r["grad_norm"]) == {"G", "D"} and "net.0.weight" in r["grad_norm"]["D"]
    # spectral norms (an SVD per matrix) only at evaluation points, to keep tiny nets' steps cheap
    assert [r["step"] for r in log if "sigma_max" in r] == [10]
    assert all(v > 0 for v in log[-1]["sigma_max"]["G"].values())
    ev = log[-1]["eval"]
    # ten steps teach G nothing yet: no mode captured, (almost) no sample near one (0 of them on seeds 0, 1, 2)
    assert ev["modes_total"] == 8 and len(ev["counts"]) == 8
    assert ev["modes_captured"] == 0 and ev["high_quality_fraction"] < 0.05


def test_digits_periodic_eval_reports_fid_and_classes(tmp_path):
    train("dcgan", "digits", tmp_path, steps=2, eval_every=2, eval_samples=200, progress=False, **TINY_IMAGES)
    ev = read_log(tmp_path / "log.jsonl")[-1]["eval"]
    assert ev["fid"] > 0 and ev["fid_extractor"] == "digits" and len(ev["class_counts"]) == 10
    # classes counted as mode_collapse counts them (two steps of training cover few): one definition, one number
    assert ev["classes_total"] == 10 and ev["classes_covered"] == 10 - len(ev["missing_classes"])
    assert ev["classes_covered"] < 10 and sum(ev["class_counts"]) <= 200  # confident predictions only


def test_points_default_to_an_ema_generator_images_do_not(tmp_path):
    ring = read_checkpoint(train("gan", "ring8", tmp_path / "r", steps=2, progress=False, batch_size=8))
    assert ring["config"]["resolved"]["ema"] == 0.999 and ring["ema_generator"] is not None
    off = read_checkpoint(train("gan", "ring8", tmp_path / "o", steps=2, ema=0, progress=False, batch_size=8))
    assert off["ema_generator"] is None
    img = read_checkpoint(train("dcgan", "digits", tmp_path / "i", steps=2, progress=False, **TINY_IMAGES))
    assert img["config"]["resolved"]["ema"] == 0.0 and img["ema_generator"] is None


def test_data_keyed_defaults_grid25_trains_longer_ring8_and_digits_unchanged():
    from gandiag.training.data import TrainingData
    from gandiag.training.settings import resolve
    from gandiag.training.variants import Options, get_variant

    gan, dcgan = get_variant("gan"), get_variant("dcgan")
    ring = resolve(gan, Options(pack=4), TrainingData("ring8"))
    assert (ring.steps, ring.ema, ring.width, ring.batch_size, ring.d_input_scale) == (14000, 0.999, 128, 64, 10.0)
    assert (ring.lr_g, ring.lr_d, ring.lr_schedule) == (1e-3, 1e-3, "cosine")
    grid = resolve(gan, Options(pack=4), TrainingData("grid25"))
    assert (grid.steps, grid.ema, grid.width, grid.batch_size, grid.d_input_scale) == (30000, 0.9995, 128, 64, 0.25)
    assert grid.eval_every == 3000 and (grid.lr_g, grid.lr_d) == (2e-3, 2e-3)
    wgan_gp = resolve(get_variant("wgan-gp"), Options(), TrainingData("grid25"))  # keeps its published rate
    assert (wgan_gp.lr_g, wgan_gp.lr_d) == (1e-4, 1e-4)
    mine = resolve(gan, Options(pack=4, steps=500, ema=0.99, d_input_scale=2.0), TrainingData("grid25"))  # options win
    assert (mine.steps, mine.ema, mine.eval_every, mine.d_input_scale) == (500, 0.99, 50, 2.0)
    img = resolve(dcgan, Options(), TrainingData("digits"))
    assert (img.steps, img.ema, img.width, img.lr_schedule, img.d_input_scale) == (1500, 0.0, 32, "constant", 1.0)


def test_ema_warms_up_so_short_runs_are_not_their_initial_weights(tmp_path):
    from gandiag.training.settings import ema_decay

    assert ema_decay(0.999, 1) == 0.1 and ema_decay(0.999, 100) == pytest.approx(100 / 109)
    assert ema_decay(0.999, 9000) == 0.999 and ema_decay(0.9995, 30000) == 0.9995
    run = lambda steps: read_checkpoint(train("gan", "ring8", tmp_path / str(steps), steps=steps, seed=2,  # noqa: E731
                                              progress=False, batch_size=16, ema=0.999))
    start, end = run(1)["generator"]["state_dict"], run(30)  # after one step G is still ≈ its initial weights
    g, ema = end["generator"]["state_dict"], end["ema_generator"]
    dist = lambda a, b: sum(float((a[k] - b[k]).norm()) for k in a)  # noqa: E731
    # without the warm-up the average would still be ~97% the initial weights (0.999 ** 30)
    assert 0 < dist(ema, g) < 0.5 * dist(start, g)


def test_wgan_clips_critic_weights(tmp_path):
    path = train("wgan", "ring8", tmp_path, steps=3, progress=False, batch_size=16)
    for t in read_checkpoint(path)["discriminator"]["state_dict"].values():
        assert t.abs().max() <= 0.01 + 1e-7


def test_exclude_classes_is_recorded_and_applied(tmp_path):
    from gandiag.training.data import TrainingData

    d = TrainingData("digits", exclude_classes=[7, 8, 9])
    assert not set(d.labels.tolist()) & {7, 8, 9} and d.num_classes == 10
    path = train("dcgan", "digits", tmp_path, steps=2, exclude_classes=[7, 8, 9], progress=False, **TINY_IMAGES)
    data = read_checkpoint(path)["data"]
    assert data["source"] == "digits" and data["excluded_classes"] == [7, 8, 9]


def test_packing_shapes():
    D = nets.MLPDiscriminator(in_dim=2, hidden=8, pack=4)
    assert D(torch.randn(16, 2)).shape == (4,)
    C = nets.DCGANDiscriminator(channels=3, size=16, width=4, pack=2, num_classes=5)
    assert C(torch.randn(6, 3, 16, 16), torch.arange(6) % 5).shape == (3,)
    assert C.features[0].in_channels == 2 * (3 + 5)
    assert nets.pack_groups(torch.arange(8.0).reshape(4, 2), 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="groups of 4"):
        D(torch.randn(10, 2))
    G = nets.DCGANGenerator(latent_dim=4, channels=3, size=64, width=4)
    assert G(torch.randn(2, 4)).shape == (2, 3, 64, 64)


def test_user_errors(tmp_path):
    train("gan", "ring8", tmp_path, steps=2, progress=False, batch_size=8)
    with pytest.raises(GandiagError, match="--resume"):
        train("gan", "ring8", tmp_path, steps=2, progress=False)
    with pytest.raises(GandiagError, match="images"):
        train("dcgan", "ring8", tmp_path / "x", steps=2, progress=False)
    with pytest.raises(GandiagError, match="unknown training variant"):
        train("nope", "ring8", tmp_path / "y", steps=2, progress=False)
    with pytest.raises(GandiagError, match="--pack"):
        train("gan", "ring8", tmp_path / "z", steps=2, pack=0, progress=False)


def test_cli_train_and_error_exit(tmp_path):
    from click.testing import CliRunner

    from gandiag.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(cli, ["train", "gan", "--data", "ring8", "--out", str(out), "--steps", "3", "--pack", "2",
                            "--batch-size", "8", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (out / "checkpoint.pt").exists() and (out / "log.jsonl").exists()
    r = runner.invoke(cli, ["train", "gan", "--data", "ring8", "--out", str(out), "--steps", "3", "--no-progress"])
    assert r.exit_code == 2 and "--resume" in r.output and "--overwrite" in r.output
    # --resume keeps the recorded configuration: a flag that would change it is refused, not silently dropped
    r = runner.invoke(cli, ["train", "gan", "--data", "ring8", "--out", str(out), "--steps", "5", "--resume",
                            "--lr", "0.5", "--pack", "8", "--no-progress"])
    assert r.exit_code == 2 and "--pack, --lr would change it" in r.output, r.output
    assert read_checkpoint(out / "checkpoint.pt")["step"] == 3
    r = runner.invoke(cli, ["train", "gan", "--data", "ring8", "--out", str(out), "--steps", "5", "--resume", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert read_checkpoint(out / "checkpoint.pt")["step"] == 5


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "models"


@pytest.mark.skipif(not (FIXTURES / "fixtures.json").exists(), reason="fixtures not made (scripts/make_fixtures.py)")
def test_fixture_models_load_safely_and_sample():
    index = json.loads((FIXTURES / "fixtures.json").read_text())
    assert {r["name"] for r in index} >= {"ring8_gan_pack4", "ring8_gan_collapsed", "digits_dcgan"}
    for r in index:
        raw = torch.load(FIXTURES / r["name"] / "checkpoint.pt", map_location="cpu", weights_only=True)
        assert (FIXTURES / r["name"] / "log.jsonl").exists()
        c = raw["contract"]
        G = build_network(raw["generator"]).eval()
        z = torch.randn(4, c["latent_dim"])
        with torch.no_grad():
            x = G(z, torch.arange(4) % c["num_classes"]) if c["num_classes"] else G(z)
        assert tuple(x.shape[1:]) == tuple(c["sample_shape"])


# Every checkpoint the trainer writes evaluates and diagnoses with no other flag (the "done means").
# (Sequence variants: tests/test_sequence_training.py.)
EVERY_CHECKPOINT = [(v, "digits" if v == "dcgan" else "ring8") for v in sorted(VARIANTS)
                    if not VARIANTS[v].sequences_only] + [
    ("cgan", "digits"), ("wgan-gp", "digits"), ("gan", "grid25")]


@pytest.fixture(scope="module")
def gandiag_cli():
    from gandiag import cli

    cli._add_plugin_commands()
    return cli.cli


@pytest.mark.parametrize("variant,data", EVERY_CHECKPOINT)
def test_evaluate_and_diagnose_work_on_every_checkpoint_the_trainer_writes(tmp_path, gandiag_cli, variant, data):
    from click.testing import CliRunner

    extra = TINY_IMAGES if data == "digits" else {"batch_size": 16}
    ckpt = train(variant, data, tmp_path / "run", steps=6, seed=1, **FAST, **extra)
    n = ["-n", "400"] if data == "digits" else []
    runner = CliRunner()
    res = runner.invoke(gandiag_cli, ["evaluate", str(ckpt), *n, "--device", "cpu", "--no-cache",
                                      "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "r.json").read_text())
    assert data in json.dumps(r["real"])  # the checkpoint named its own training data
    assert {"fid", "precision", "recall", "density", "coverage"} <= set(r["metrics"])
    # Six steps teach G nothing: its samples are a blob that lands on (almost) no mode or class, which the
    # mode-collapse diagnostic must call severe. Nothing has diverged either, so gradient health is healthy,
    # except WGAN-GP's 6-step conv critic on digits: its gradient norm on interpolates is still ~0.13, not
    # the ≈ 1 the penalty drives it to, a warning of the adversarial check. (The same on training seeds
    # 1, 2 and 3; at most one of grid25's 25 modes captured.)
    mc, gh = r["diagnostics"]["mode_collapse"], r["diagnostics"]["gradient_health"]
    assert mc["verdict"] == "severe", mc["reasons"]
    assert mc["modes_total"] == {"ring8": 8, "grid25": 25, "digits": 10}[data] and mc["modes_captured"] <= 1
    health = "warning" if (variant, data) == ("wgan-gp", "digits") else "healthy"
    assert gh["verdict"] == health, gh["reasons"]
    if health == "warning":
        assert [(x["signal"], x["level"]) for x in gh["reasons"]] == [("adversarial", "warning")], gh["reasons"]
        assert "interpolates" in gh["reasons"][0]["message"]
    assert "adversarial" in gh and not gh["adversarial"].get("skipped")  # D was found in the checkpoint and used
    res = runner.invoke(gandiag_cli, ["diagnose", str(ckpt), *n, "--device", "cpu", "--no-cache"])
    assert res.exit_code == 0, res.output
    assert "mode_collapse: severe" in res.output and f"gradient_health: {health}" in res.output
