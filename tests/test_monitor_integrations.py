"""The monitor's optional integrations: the Lightning callback and TensorBoard scalars."""

import math
import subprocess
import sys

import pytest
import torch

import gandiag
from gandiag.training.trainlog import read_log

import monitor_dcgan_tutorial as tut

L = pytest.importorskip("lightning", reason="the lightning extra (make test installs it)")


class TutorialGAN(L.LightningModule):
    """The tutorial's updates as a LightningModule with manual optimisation; ``nan_after`` breaks D's loss."""

    def __init__(self, nan_after=None):
        super().__init__()
        self.generator, self.discriminator = tut.Generator(), tut.Discriminator()
        self.automatic_optimization = False
        self.nan_after = nan_after
        self.crit = torch.nn.BCELoss()

    def configure_optimizers(self):
        return (torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)))

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        real = batch
        b = real.size(0)
        fake = self.generator(torch.randn(b, tut.NZ, 1, 1))
        out_real, out_fake = self.discriminator(real).view(-1), self.discriminator(fake.detach()).view(-1)
        d_loss = self.crit(out_real, torch.ones(b)) + self.crit(out_fake, torch.zeros(b))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        g_loss = self.crit(self.discriminator(fake).view(-1), torch.ones(b))
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        if self.nan_after is not None and batch_idx >= self.nan_after:
            d_loss = d_loss * math.nan
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_real": out_real.detach(),
                "d_fake": out_fake.detach()}

    def train_dataloader(self):
        return torch.utils.data.DataLoader(tut.digits_tensor(), batch_size=64, shuffle=True, drop_last=True)


def _trainer(callback, batches):
    return L.Trainer(max_epochs=1, limit_train_batches=batches, callbacks=[callback], logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     accelerator="cpu", devices=1)


def test_the_lightning_callback_logs_checks_and_reports(tmp_path):
    from gandiag.monitor.lightning import GandiagMonitor

    cb = GandiagMonitor(out=tmp_path, real=tut.digits_tensor(), log_every=5, check_every=20, check_samples=300,
                        feature_extractor="digits")
    _trainer(cb, 20).fit(TutorialGAN())
    log = read_log(tmp_path / "log.jsonl")
    assert log[-1]["step"] == 20 and {"G", "D"} == set(log[-1]["grad_norm"])
    assert cb.monitor.capture.strategy == "optimizer"  # Lightning's optimisers were found and hooked
    assert log[0]["d_real_prob"] > 0 and "d_accuracy" in log[0]
    assert cb.monitor.latest.diagnostics["mode_collapse"]["verdict"] in ("none", "partial", "severe")
    assert (tmp_path / "report.html").exists() and (tmp_path / "snapshots" / "step-0000020.pt2").exists()


def test_an_alarm_stops_a_lightning_run(tmp_path):
    from gandiag.monitor.lightning import GandiagMonitor

    cb = GandiagMonitor(out=tmp_path, real=tut.digits_tensor(), check_every=0, stop_on="severe", stream=sys.stdout)
    trainer = _trainer(cb, 25)
    trainer.fit(TutorialGAN(nan_after=3))
    assert cb.monitor.stop_requested.source == "diverged" and cb.monitor.steps == 4
    assert read_log(tmp_path / "log.jsonl")[-1]["event"] == "diverged"


DDP_SCRIPT = """
import sys
sys.path[:0] = [{tests!r}, {examples!r}]
import lightning as L
import monitor_dcgan_tutorial as tut
from test_monitor_integrations import TutorialGAN
from gandiag.monitor.lightning import GandiagMonitor

if __name__ == "__main__":
    cb = GandiagMonitor(out={out!r}, real=tut.digits_tensor(), log_every=5, check_every=10, check_samples=200,
                        feature_extractor="digits")
    t = L.Trainer(max_epochs=1, limit_train_batches=10, callbacks=[cb], logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=2,
                  strategy="ddp_find_unused_parameters_true")
    t.fit(TutorialGAN())
    print("rank", t.global_rank, "monitored", cb.monitor is not None)
"""


def test_under_ddp_rank_0_monitors_and_its_checks_wait_for_no_other_rank(tmp_path):
    from pathlib import Path

    here = Path(__file__).resolve().parent
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(here), examples=str(here.parent / "examples"), out=str(tmp_path / "run")))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "rank 0 monitored True" in res.stdout and "rank 1 monitored False" in res.stdout
    trend = (tmp_path / "run" / "trend.jsonl").read_text().splitlines()
    assert len(trend) == 1 and '"check": "error"' not in trend[0]  # before: a gloo collective waited for rank 1
    assert read_log(tmp_path / "run" / "log.jsonl")[-1]["step"] == 10


def test_tensorboard_holds_the_logs_numbers(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra (make test installs it)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    mon, _ = tut.train(tmp_path / "run", steps=30, log_every=10, check_every=0, tensorboard=True)
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    logged = {r["step"]: r for r in read_log(tmp_path / "run" / "log.jsonl")}
    board = {e.step: e.value for e in acc.Scalars("d_loss")}
    assert sorted(board) == sorted(logged) == [1, 10, 20, 30]
    for step, value in board.items():
        assert value == pytest.approx(logged[step]["d_loss"], rel=1e-6)
    assert "grad_norm_total/D" in acc.Tags()["scalars"]


def test_a_missing_extra_is_one_line(tmp_path):
    code = ("import sys; sys.modules['lightning'] = None\n"
            "import gandiag.monitor.lightning")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0 and "pip install 'gandiag[lightning]'" in res.stderr
    with pytest.raises(gandiag.GandiagError, match=r"gandiag\[tensorboard\]"):
        import gandiag.monitor.tensorboard as tb

        sys.modules["torch.utils.tensorboard"] = None
        try:
            tb.ScalarWriter(tmp_path)
        finally:
            del sys.modules["torch.utils.tensorboard"]
