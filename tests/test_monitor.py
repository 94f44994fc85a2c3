"""gandiag.Monitor in a training loop written the PyTorch DCGAN tutorial's way: log, verdicts, alarms, stop."""

import json
import math

import pytest
import torch

import gandiag
from gandiag.monitor.capture import GradientCapture
from gandiag.training.trainlog import read_log

import monitor_dcgan_tutorial as tut
from conftest import gandiag_in_process


# -- gradients read in their own phase ---------------------------------------------------------------------------

def _tutorial_step(netG, netD, optG, optD, capture):
    """One tutorial iteration; returns D's gradient as optimizerD applied it and G's as optimizerG did."""
    crit = torch.nn.BCELoss()
    real = tut.digits_tensor()[:32]
    capture.armed = True
    netD.zero_grad()
    crit(netD(real).view(-1), torch.ones(32)).backward()
    fake = netG(torch.randn(32, tut.NZ, 1, 1))
    crit(netD(fake.detach()).view(-1), torch.zeros(32)).backward()
    d_applied = {n: p.grad.norm().item() for n, p in netD.named_parameters()}
    optD.step()
    netG.zero_grad()  # D's gradients are not zeroed: G's backward pass adds to them, as in the tutorial
    crit(netD(fake).view(-1), torch.ones(32)).backward()
    g_applied = {n: p.grad.norm().item() for n, p in netG.named_parameters()}
    optG.step()
    d_after = {n: p.grad.norm().item() for n, p in netD.named_parameters()}
    return d_applied, g_applied, d_after


@pytest.mark.parametrize("with_optimizers", [True, False])
def test_gradients_are_read_in_each_phase(with_optimizers):
    torch.manual_seed(0)
    netG, netD = tut.Generator(), tut.Discriminator()
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4)
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4)
    capture = GradientCapture(netG, netD, (optG, optD) if with_optimizers else ())
    assert capture.strategy == ("optimizer" if with_optimizers else "backward-pass")
    for _ in range(2):  # the second iteration starts from the first's leftover gradients
        d_applied, g_applied, d_after = _tutorial_step(netG, netD, optG, optD, capture)
        got = capture.collect()
        assert set(got) == {"G", "D"}
        for name, v in d_applied.items():
            assert got["D"][name] == pytest.approx(v, rel=1e-5), name
        for name, v in g_applied.items():
            assert got["G"][name] == pytest.approx(v, rel=1e-5), name
        # reading .grad at the end of the step would have been wrong: G's pass added to D's gradients
        assert any(abs(d_after[n] - d_applied[n]) > 1e-3 * d_applied[n] for n in d_applied)
    capture.close()


def test_unarmed_steps_record_nothing():
    netG, netD = tut.Generator(), tut.Discriminator()
    capture = GradientCapture(netG, netD)
    netD(tut.digits_tensor()[:8]).mean().backward()
    assert capture.collect() == {}
    capture.close()


# -- what one step records -----------------------------------------------------------------------------------------

def test_step_values_read_ds_outputs_as_said():
    from gandiag.monitor.record import d_outputs_of, step_values

    real, fake = torch.tensor([2.0, -1.0, 3.0]), torch.tensor([-2.0, 0.5, -3.0])
    logits = step_values({"d_loss": torch.tensor(1.5), "d_real": real, "d_fake": fake}, "logits", "ns")
    assert logits["d_real"] == pytest.approx(4 / 3) and logits["d_fake"] == pytest.approx(-1.5)
    assert logits["d_real_prob"] == pytest.approx(float(torch.sigmoid(real).mean()))
    assert logits["d_accuracy"] == pytest.approx(0.5 * (2 / 3 + 2 / 3))  # logit 0 is the 0.5 threshold
    probs = step_values({"d_real": real.sigmoid(), "d_fake": fake.sigmoid()}, "probabilities", "ns")
    assert "d_real" not in probs and probs["d_accuracy"] == pytest.approx(logits["d_accuracy"])
    critic = step_values({"d_real": real, "d_fake": fake, "gp": 0.1}, "logits", "wasserstein")
    assert critic["wasserstein"] == pytest.approx(4 / 3 + 1.5) and "d_accuracy" not in critic and critic["gp"] == 0.1
    means = step_values({"d_real": 0.7, "d_fake": 0.2}, "probabilities", "ns")
    assert means == {"d_real_prob": pytest.approx(0.7), "d_fake_prob": pytest.approx(0.2)}  # no accuracy from means
    assert d_outputs_of(tut.Discriminator(), None) == "probabilities"
    assert d_outputs_of(torch.nn.Sequential(torch.nn.Linear(2, 1)), None) == "logits"
    with pytest.raises(gandiag.GandiagError, match="d_loss"):
        step_values({"d_loss": "low"}, "logits", "ns")
    with pytest.raises(gandiag.GandiagError, match="shape"):
        step_values({"g_loss": torch.ones(3)}, "logits", "ns")


# -- the loop, healthy and broken --------------------------------------------------------------------------------

SETTINGS = dict(feature_extractor="digits", check_samples=500, log_every=25)


def test_healthy_tutorial_loop_gets_a_log_verdicts_and_a_report_and_no_alarm(tmp_path):
    out = tmp_path / "run"
    raised = []
    mon, done = tut.train(out, steps=800, check_every=400, warmup=400, stop_on="severe", on_alarm=raised.append,
                          **SETTINGS)
    assert done == 800 and mon.stop_requested is None
    assert [a for a in raised if a.level != "warning"] == [], [a.line() for a in raised]
    verdicts = {k: d["verdict"] for k, d in mon.latest.diagnostics.items()}
    assert verdicts["mode_collapse"] == "none" and verdicts["gradient_health"] in ("healthy", "warning")
    assert verdicts["memorization"] == "none"  # judged against the example's held-out fifth
    log = read_log(out / "log.jsonl")
    assert [r["step"] for r in log][:3] == [1, 25, 50] and log[-1]["step"] == 800
    assert {"d_loss", "g_loss", "d_real_prob", "d_fake_prob", "d_accuracy", "lr_g", "lr_d"} <= set(log[-1])
    assert set(log[-1]["grad_norm"]) == {"G", "D"} and log[-1]["grad_norm_total"]["G"] > 0
    assert "sigma_max" in log[-1]  # a check step
    assert 0 <= log[-1]["d_accuracy"] <= 1
    assert mon.latest.diagnostics["gradient_health"].get("log", {}).get("records", 0) >= 30  # the monitor's log read
    trend = [json.loads(ln) for ln in (out / "trend.jsonl").read_text().splitlines()]
    assert [t["step"] for t in trend] == [400, 800] and trend[0]["snapshot"].endswith("step-0000400.pt2")
    for name in ("report.html", "trend.html", "results.json", "real.npz"):
        assert (out / name).stat().st_size > 0, name


def test_checks_that_fail_are_said_so_at_the_close_and_feature_weights_reach_them(tmp_path):
    """A check whose extractor cannot be built is an error alarm; the closing line says the checks failed (not
    "pass real=", which was passed); feature_weights= reaches the extractor as --feature-weights does."""
    import io

    missing = tmp_path / "no-such-inception.pth"
    stream = io.StringIO()
    tut.train(tmp_path / "run", steps=40, check_every=20, warmup=0, feature_extractor="inception-v3",
              feature_weights=missing, check_samples=64, log_every=20, stream=stream)
    said = stream.getvalue()
    assert said.count("check error") >= 2 and str(missing) in said, said
    closing = said.strip().splitlines()[-1]
    assert closing.startswith("gandiag: monitored 40 steps: no evaluation: 2 checks failed"), closing  # steps 20, 40
    assert "pass real=" not in closing


def test_a_snapshot_evaluates_without_trust_and_finds_the_monitors_log(tmp_path):
    out = tmp_path / "run"
    tut.train(out, steps=60, check_every=60, **SETTINGS)
    snap = out / "snapshots" / "step-0000060.pt2"
    said = json.loads((out / "monitor.json").read_text())
    assert said["d_outputs"] == "probabilities" and said["loss"] == "ns" and said["gradients"] == "optimizer"
    res = gandiag_in_process("evaluate", snap, "--real", out / "real.npz", "-n", "300", "--feature-extractor", "digits",
                             "--json", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["diagnostics"]["gradient_health"]["log"]["last_step"] == 60


@pytest.mark.parametrize("broken", ["lr", "d_overpowers"])
def test_broken_tutorial_loops_raise_alarms_and_stop_when_asked(tmp_path, broken):
    out = tmp_path / broken
    raised = []
    mon, done = tut.train(out, steps=600, broken=broken, check_every=200, warmup=200, stop_on="severe",
                          on_alarm=raised.append, **SETTINGS)
    assert done == 400, "stopped at the first check after the warm-up"
    assert mon.stop_requested is not None and mon.stop_requested.level == "severe"
    assert any(a.source == "mode_collapse" and a.verdict == "severe" for a in raised)
    assert (out / "report.html").exists() and read_log(out / "log.jsonl")[-1]["step"] == 400


def test_a_diverged_loss_is_logged_and_stops_the_run(tmp_path):
    netG, netD = tut.Generator(), tut.Discriminator()
    with gandiag.Monitor(netG, netD, out=tmp_path, real=tut.digits_tensor(), stop_on="severe", check_every=0,
                         stream=open(tmp_path / "said.txt", "w")) as mon:
        for i in range(10):
            mon.step(d_loss=1.0 if i < 5 else math.nan, g_loss=0.5)
    assert mon.steps == 6 and mon.stop_requested.source == "diverged"
    log = read_log(tmp_path / "log.jsonl")
    assert log[-1]["event"] == "diverged" and log[-1]["step"] == 6 and "d_loss" in log[-1]["non_finite"]


def test_a_run_that_goes_on_after_diverging_is_said_to_have_diverged_once(tmp_path):
    raised = []
    mon = gandiag.Monitor(tut.Generator(), tut.Discriminator(), out=tmp_path, check_every=0, log_every=2,
                          on_alarm=raised.append, stream=open(tmp_path / "said.txt", "w"))
    for i in range(8):
        mon.step(d_loss=1.0 if i < 3 else math.nan, g_loss=0.5)
    mon.close(final_check=False)
    log = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in log if r.get("event") == "diverged"] == [4] and len(raised) == 1
    assert log[-1]["step"] == 8 and log[-1]["d_loss"] is None and "d_loss" in log[-1]["non_finite"]


def test_a_failing_check_is_an_error_alarm_and_training_goes_on(tmp_path):
    raised = []
    with gandiag.Monitor(tut.Generator(), tut.Discriminator(), out=tmp_path, real="ring8", check_every=2, warmup=0,
                         stop_on="warning", on_alarm=raised.append, stream=open(tmp_path / "said.txt", "w")) as mon:
        for _ in range(5):
            mon.step(d_loss=1.0, g_loss=1.0)
    assert mon.steps == 5 and mon.stop_requested is None  # an error alarm never stops a run
    assert [(a.source, a.level) for a in raised] == [("check", "error")] * 3  # steps 2, 4 and the final 5
    assert "ring8" in raised[0].message and "images" in raised[0].message
    trend = [json.loads(ln) for ln in (tmp_path / "trend.jsonl").read_text().splitlines()]
    assert [t["verdicts"] for t in trend] == [{"check": "error"}] * 3


def test_an_untraceable_generator_is_snapshotted_as_samples(tmp_path):
    class Branchy(tut.Generator):
        def forward(self, x):
            y = self.main(x)
            return y if float(y.mean()) < 10 else -y  # data-dependent Python control flow: torch.export refuses

    mon = gandiag.Monitor(Branchy(), tut.Discriminator(), out=tmp_path, real=tut.digits_tensor(), check_every=0,
                          **{k: v for k, v in SETTINGS.items() if k != "log_every"})
    mon.step(d_loss=1.0, g_loss=1.0)
    mon.check()
    mon.close(final_check=False)
    assert (tmp_path / "snapshots" / "step-0000001.npz").exists()
    assert mon.latest.metrics["fid"]["value"] > 0


class Copier(torch.nn.Module):
    """Returns training images: z's first coordinate, through the normal CDF, picks one (torch.export traces it)."""

    def __init__(self, bank):
        super().__init__()
        self.bank = torch.nn.Parameter(bank.clone(), requires_grad=False)
        self.nz = tut.NZ

    def forward(self, z):
        u = 0.5 * (1 + torch.erf(z.reshape(len(z), -1)[:, 0] / math.sqrt(2)))
        idx = (u * self.bank.shape[0]).long().clamp(0, self.bank.shape[0] - 1)
        return self.bank[idx]


def test_a_monitored_copier_is_memorization_not_mode_collapse(tmp_path):
    data = tut.digits_tensor()
    train, held = data[:1438], data[1438:]
    mon = gandiag.Monitor(Copier(train), out=tmp_path, real=train, held_out=held, check_every=0,
                          feature_extractor="digits", check_samples=1000, warmup=0)
    mon.step(d_loss=1.0, g_loss=1.0)
    found = mon.check()
    mon.close(final_check=False)
    verdicts = {k: d["verdict"] for k, d in mon.latest.diagnostics.items()}
    assert verdicts["memorization"] == "severe" and verdicts["mode_collapse"] == "none", verdicts
    assert [a.source for a in found if a.level == "severe"] == ["memorization"]


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": "bce"}, "loss="), ({"log_every": 0}, "log_every="), ({"stop_on": "sometimes"}, "stop_on="),
    ({"d_outputs": "scores"}, "d_outputs="), ({"check_samples": 1.5}, "check_samples="),
])
def test_bad_settings_are_one_clear_error(tmp_path, kwargs, message):
    with pytest.raises(gandiag.GandiagError, match=message):
        gandiag.Monitor(tut.Generator(), tut.Discriminator(), out=tmp_path, **kwargs)


def test_real_data_the_generator_cannot_be_compared_with_is_refused_up_front(tmp_path):
    nhwc = tut.digits_tensor().permute(0, 2, 3, 1)
    with pytest.raises(gandiag.GandiagError, match=r"shape \(8, 8, 1\), the generator's \(1, 8, 8\)"):
        gandiag.Monitor(tut.Generator(), out=tmp_path / "a", real=nhwc)
    dicts = [{"pixel_values": tut.digits_tensor()[:8]}]
    with pytest.raises(gandiag.GandiagError, match="tensors or \\(x, y\\) pairs, got dict"):
        gandiag.Monitor(tut.Generator(), out=tmp_path / "b", real=dicts)


def test_an_nhwc_generator_takes_its_real_samples_in_its_own_layout(tmp_path):
    class NHWC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.g = tut.Generator()

        def forward(self, z):
            return self.g(z).permute(0, 2, 3, 1)

    mon = gandiag.Monitor(NHWC(), out=tmp_path, real=tut.digits_tensor().permute(0, 2, 3, 1), check_every=0,
                          feature_extractor="digits", check_samples=200)
    assert mon.contract.layout == "NHWC"
    mon.step(d_loss=1.0, g_loss=1.0)
    assert mon.check() is not None and mon.latest.metrics["fid"]["value"] > 0
    mon.close(final_check=False)


def test_a_compiled_generator_is_snapshotted_as_its_plain_network(tmp_path):
    netG, netD = tut.Generator(), tut.Discriminator()
    opt_g = torch.optim.Adam(netG.parameters())
    mon = gandiag.Monitor(torch.compile(netG), netD, out=tmp_path, optimizers=(opt_g,), check_every=0)
    assert mon.G is netG and mon.optimizers == {"G": opt_g}
    mon.step(d_loss=1.0, g_loss=1.0)
    mon.check()
    mon.close(final_check=False)
    assert (tmp_path / "snapshots" / "step-0000001.pt2").exists()


def test_a_monitored_run_is_never_clobbered(tmp_path):
    mon = gandiag.Monitor(tut.Generator(), tut.Discriminator(), out=tmp_path, check_every=0)
    mon.close(final_check=False)
    with pytest.raises(gandiag.GandiagError, match="closed"):
        mon.step(d_loss=1.0)
    with pytest.raises(gandiag.GandiagError, match="overwrite=True"):
        gandiag.Monitor(tut.Generator(), tut.Discriminator(), out=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(gandiag.GandiagError, match="not a folder"):
        gandiag.Monitor(tut.Generator(), out=tmp_path / "file")


def test_a_generator_without_a_readable_latent_size_names_the_argument(tmp_path):
    class Opaque(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, z):
            return torch.tanh(z.reshape(len(z), 1, 8, 8) * self.w)

    with pytest.raises(gandiag.GandiagError, match="latent_shape="):
        gandiag.Monitor(Opaque(), out=tmp_path)
    gandiag.Monitor(Opaque(), out=tmp_path / "ok", latent_shape=(64,), check_every=0).close(final_check=False)
