"""``gandiag watch RUNDIR``: each new settled snapshot evaluated once, a trend kept, exit 1 when asked on an alarm."""

import json
import shutil
from pathlib import Path

import pytest

from gandiag.monitor.watch import Watcher, candidates, step_of
from gandiag.options import EvalOptions

import monitor_dcgan_tutorial as tut
from conftest import gandiag_in_process

FIXTURES = Path(__file__).parent / "fixtures" / "models"
QUICK = ("-n", "300", "--settle", "0", "--once")


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("watch") / "run"
    tut.train(out, steps=60, check_every=30, feature_extractor="digits", check_samples=300)
    return out


@pytest.fixture
def gates(tmp_path):
    path = tmp_path / "gates.toml"
    path.write_text('[gates]\nfid = { max = 40.0 }\nrecall = { min = 0.5 }\nmode_collapse = { allow = ["none"] }\n')
    return path


def _trend(folder):
    return [json.loads(ln) for ln in (folder / "trend.jsonl").read_text().splitlines()]


def test_watch_evaluates_each_snapshot_once_and_keeps_a_trend(monitored_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(monitored_run, run)
    res = gandiag_in_process("watch", run, *QUICK)  # features from the run's monitor.json
    assert res.returncode == 0, res.stderr
    lines = _trend(run / "watch")
    assert json.loads((run / "watch" / "results.json").read_text())["provenance"]["extractor"]["name"] == "digits"
    assert [ln["step"] for ln in lines] == [30, 60]  # the monitor's snapshots, oldest first, against its real.npz
    assert all(ln["metrics"]["fid"] > 0 and ln["verdicts"]["mode_collapse"] for ln in lines)
    assert all(ln["verdicts"]["memorization"] in ("none", "partial", "severe") for ln in lines)  # held_out.npz read
    for name in ("trend.html", "results.json", "report.html"):
        assert (run / "watch" / name).stat().st_size > 0
    again = gandiag_in_process("watch", run, *QUICK, "--feature-extractor", "digits")
    assert again.returncode == 0 and "0 snapshot(s) evaluated" in again.stdout
    assert len(_trend(run / "watch")) == 2


def test_a_file_still_being_written_is_not_read_until_it_settles(monitored_run, tmp_path):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    shutil.copy(monitored_run / "real.npz", run / "real.npz")
    src = (monitored_run / "snapshots" / "step-0000060.pt2").read_bytes()
    snap = run / "snapshots" / "step-0000090.pt2"
    snap.write_bytes(src[: len(src) // 2])  # a trainer writing in place with torch.save, half way
    (run / "snapshots" / ".step-0000100.pt2.tmp").write_bytes(src)  # an atomic writer's staging file
    evaluated = []
    w = Watcher(run, run / "watch", EvalOptions(num_samples=300, feature_extractor=["digits"]), settle=5.0,
                echo=evaluated.append)
    assert [p.name for p in candidates(run, run / "watch")] == ["step-0000090.pt2"]
    assert w.poll(now=0.0) and w.poll(now=3.0) and w.outcome.evaluated == 0
    snap.write_bytes(src)  # the write finishes: a new fingerprint starts the settling again
    assert w.poll(now=4.0) and w.outcome.evaluated == 0
    assert w.poll(now=8.0) and w.outcome.evaluated == 0
    assert w.poll(now=9.5) and w.outcome.evaluated == 1
    assert _trend(run / "watch")[0]["step"] == 90 and "error" not in _trend(run / "watch")[0]["verdicts"].values()


def test_a_collapsed_snapshot_fails_the_watch_when_asked(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "ring8_gan_collapsed" / "checkpoint.pt", run / "checkpoint.pt")
    res = gandiag_in_process("watch", run, *QUICK, "--fail-on", "severe")
    assert res.returncode == 1, res.stderr
    assert "SEVERE mode_collapse severe" in res.stderr and "failing:" in res.stderr
    assert gandiag_in_process("watch", tmp_path / "run", "--out", tmp_path / "w2", *QUICK).returncode == 0


def test_a_gate_fails_the_watch(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "ring8_gan_pack4" / "checkpoint.pt", run / "checkpoint.pt")
    (tmp_path / "gates.toml").write_text("[gates]\nprecision = { min = 1.01 }\n")
    res = gandiag_in_process("watch", run, *QUICK, "--gate", tmp_path / "gates.toml")
    assert res.returncode == 1 and "gate precision min: " in res.stderr and "< min 1.01" in res.stderr


def test_an_unreadable_snapshot_is_an_error_alarm_that_fails_closed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "iter_5.pt").write_bytes(b"\x80\x02not a checkpoint at all")
    res = gandiag_in_process("watch", run, *QUICK)
    assert res.returncode == 0 and "ERROR snapshot error" in res.stderr
    assert _trend(run / "watch")[0]["verdicts"] == {"snapshot": "error"} and _trend(run / "watch")[0]["step"] == 5
    res = gandiag_in_process("watch", run, "--out", tmp_path / "w2", *QUICK, "--fail-on", "severe")
    assert res.returncode == 1


def test_an_overwritten_checkpoint_is_a_new_snapshot(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "ring8_gan_pack4" / "checkpoint.pt", run / "checkpoint.pt")
    assert gandiag_in_process("watch", run, *QUICK).returncode == 0
    shutil.copy(FIXTURES / "ring8_gan_collapsed" / "checkpoint.pt", run / "checkpoint.pt")
    assert gandiag_in_process("watch", run, *QUICK).returncode == 0
    lines = _trend(run / "watch")
    assert len(lines) == 2 and [ln["verdicts"]["mode_collapse"] for ln in lines] == ["none", "severe"]
    assert all(isinstance(ln["step"], int) and ln["step"] > 0 for ln in lines)  # read from the checkpoints


@pytest.mark.parametrize("args, message", [
    (("--interval", "-1"), "--interval"), (("--settle", "nan"), "--settle"), (("--fail-on", "bad"), "fail-on"),
])
def test_bad_watch_options_are_exit_2(tmp_path, args, message):
    res = gandiag_in_process("watch", tmp_path, "--once", *args)
    assert res.returncode == 2 and message in res.stderr


def test_steps_are_read_from_common_snapshot_names():
    assert [step_of(Path(n)) for n in ("step-0000400.pt2", "network-snapshot-000120.pkl", "iter_5.pt",
                                       "epoch3.ckpt", "checkpoint.pt")] == [400, 120, 5, 3, None]


def test_a_hostile_trend_file_is_drawn_without_running_anything(tmp_path):
    run = tmp_path / "run"
    (run / "watch").mkdir(parents=True)
    shutil.copy(FIXTURES / "ring8_gan_pack4" / "checkpoint.pt", run / "checkpoint.pt")
    line = {"step": 1, "snapshot": "<script>x</script>", "metrics": {"$\\frac{$": 1.0, "fid": None},
            "labels": {"$\\frac{$": "$\\frac{$\x1b[31m", "fid": "<u>"}, "verdicts": {"<b>": "</td>"}, "alarms": [{"message": "<i>"}]}
    (run / "watch" / "trend.jsonl").write_text(json.dumps(line) + "\n")
    res = gandiag_in_process("watch", run, *QUICK)
    assert res.returncode == 0, res.stderr
    page = (run / "watch" / "trend.html").read_text()
    assert "<script>x" not in page and "<b>" not in page and "<i>" not in page
    (run / "watch" / "trend.jsonl").write_text(json.dumps({**line, "labels": {"fid": 5}}) + "\n")
    res = gandiag_in_process("watch", run, *QUICK)
    assert res.returncode == 2 and "not a trend line" in res.stderr


def test_a_symlink_loop_or_a_dangling_symlink_is_skipped_with_a_warning(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "loop.pt").symlink_to("loop.pt")
    (run / "gone.pt").symlink_to("nothing-here.pt")
    res = gandiag_in_process("watch", run, *QUICK)  # was exit 3: RuntimeError: Symlink loop
    assert res.returncode == 0, res.stderr
    assert "loop.pt: cannot be read" in res.stderr and "gone.pt: a symlink to nothing; skipped" in res.stderr
    assert "0 snapshot(s) evaluated" in res.stdout


def test_a_file_name_that_is_not_utf8_is_shown_escaped_and_recorded_once_evaluated(tmp_path):
    import os

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "ring8_gan_pack4" / "checkpoint.pt", os.fsdecode(bytes(run) + b"/ck\xff.pt"))
    res = gandiag_in_process("watch", run, "-n", "100", "--settle", "0", "--once")  # was exit 3 (UnicodeEncodeError)
    assert res.returncode == 0, res.stderr
    assert "ck\\xff.pt (step " in res.stderr and "1 snapshot(s) evaluated" in res.stdout
    assert "ck\\xff.pt" in (run / "watch" / "trend.html").read_text()
    page = (run / "watch" / "report.html").read_text()  # valid UTF-8, the name escaped
    assert "ck\\xff.pt" in page
    assert _trend(run / "watch")[0]["snapshot"] == os.fsdecode(bytes(run) + b"/ck\xff.pt")
    again = gandiag_in_process("watch", run, "-n", "100", "--settle", "0", "--once")
    assert again.returncode == 0 and "0 snapshot(s) evaluated" in again.stdout


def test_a_snapshot_is_recorded_as_done_only_once_its_outputs_are_written(tmp_path):
    run = tmp_path / "run"
    (run / "watch" / "results.artifacts.npz").mkdir(parents=True)  # an output that cannot be written
    shutil.copy(FIXTURES / "ring8_gan_pack4" / "checkpoint.pt", run / "checkpoint.pt")
    res = gandiag_in_process("watch", run, "-n", "100", "--settle", "0", "--once")
    assert res.returncode == 2 and "results.artifacts.npz" in res.stderr
    assert not (run / "watch" / "trend.jsonl").exists() or _trend(run / "watch") == []
    (run / "watch" / "results.artifacts.npz").rmdir()
    res = gandiag_in_process("watch", run, "-n", "100", "--settle", "0", "--once")  # tried again, not skipped
    assert res.returncode == 0 and "1 snapshot(s) evaluated" in res.stdout, res.stderr
    assert len(_trend(run / "watch")) == 1


def test_a_gate_fails_closed_on_a_snapshot_that_cannot_be_evaluated_or_on_none_at_all(tmp_path, gates):
    run = tmp_path / "run"
    run.mkdir()
    res = gandiag_in_process("watch", run, *QUICK, "--gate", gates)  # nothing there: nothing passed the gates
    assert res.returncode == 1 and "no snapshot in " in res.stderr and "fails closed" in res.stderr
    assert "0 snapshot(s) evaluated" in res.stdout
    res = gandiag_in_process("watch", run, "--idle-exit", "0.05", "--interval", "0.01", "--settle", "0", "--gate", gates)
    assert res.returncode == 1 and "no snapshot in " in res.stderr
    assert gandiag_in_process("watch", run, *QUICK).returncode == 0  # without gates: done, nothing to judge
    (run / "checkpoint.pt").write_bytes(b"")
    (run / "iter_5.pt").write_bytes(b"\x80\x02not a checkpoint at all")
    res = gandiag_in_process("watch", run, *QUICK, "--gate", gates)
    assert res.returncode == 1 and "ERROR snapshot error" in res.stderr
    assert "the gates could not be checked: fails closed" in res.stderr
    assert "0 snapshot(s) evaluated, 1 could not be evaluated" in res.stdout


def test_a_restarted_gated_watch_counts_the_outcomes_it_recorded(tmp_path, gates):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "ring8_gan_collapsed" / "checkpoint.pt", run / "checkpoint.pt")
    quick = ("-n", "100", "--settle", "0", "--once")
    assert gandiag_in_process("watch", run, *quick, "--gate", gates).returncode == 1
    res = gandiag_in_process("watch", run, *quick, "--gate", gates)  # a CI retry: it was green (exit 0)
    assert res.returncode == 1 and "0 snapshot(s) evaluated" in res.stdout
    assert "records checkpoint.pt (step 800): it failed the gates (gate " in res.stderr
    res = gandiag_in_process("watch", run, *quick, "--fail-on", "severe")  # the same for an alarm
    assert res.returncode == 1 and "a severe alarm (mode_collapse severe)" in res.stderr
    assert gandiag_in_process("watch", run, *quick).returncode == 0  # neither asked for: the trend is kept

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "iter_5.pt").write_bytes(b"\x80\x02not a checkpoint at all")
    assert gandiag_in_process("watch", broken, *quick).returncode == 0  # an error recorded without the gates
    res = gandiag_in_process("watch", broken, *quick, "--gate", gates)
    assert res.returncode == 1 and "records iter_5.pt (step 5): it could not be evaluated" in res.stderr

    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(FIXTURES / "ring8_gan_pack4" / "checkpoint.pt", good / "checkpoint.pt")
    assert gandiag_in_process("watch", good, *quick, "--gate", gates).returncode == 0
    res = gandiag_in_process("watch", good, *quick, "--gate", gates)  # recorded as passing these gates
    assert res.returncode == 0 and "0 snapshot(s) evaluated" in res.stdout, res.stderr
    other = tmp_path / "other.toml"
    other.write_text("[gates]\nfid = { max = 30.0 }\n")
    res = gandiag_in_process("watch", good, *quick, "--gate", other)  # judged by other gates: not shown to pass
    assert res.returncode == 1 and "not shown to pass these" in res.stderr


def test_symlinks_planted_in_the_run_folder_are_never_written_through_nor_read(tmp_path):
    run = tmp_path / "run"
    (run / "watch").mkdir(parents=True)
    shutil.copy(FIXTURES / "ring8_gan_pack4" / "checkpoint.pt", run / "checkpoint.pt")
    precious = tmp_path / "precious.conf"
    precious.write_text("PRECIOUS\n")
    quick = ("-n", "100", "--settle", "0", "--once")
    for name in ("report.html", "results.json", "trend.jsonl", "trend.html", "results.artifacts.npz"):
        (run / "watch" / name).symlink_to(precious)
        res = gandiag_in_process("watch", run, *quick)  # was: the file replaced (or appended to), exit 0
        assert res.returncode == 2 and f"{name} is a symlink" in res.stderr, (name, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and precious.read_text() == "PRECIOUS\n"
        (run / "watch" / name).unlink()
    (run / "watch").rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "watch").symlink_to(elsewhere)  # the default output folder itself
    res = gandiag_in_process("watch", run, *quick)
    assert res.returncode == 2 and "watch is a symlink" in res.stderr and list(elsewhere.iterdir()) == []
    (run / "watch").unlink()
    (run / "real.npz").symlink_to(precious)  # the run's real data is read only from the run folder
    res = gandiag_in_process("watch", run, *quick)
    assert res.returncode == 2 and "real.npz is a symlink" in res.stderr
    (run / "real.npz").unlink()

    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(FIXTURES / "ring8_gan_collapsed" / "checkpoint.pt", outside / "other.pt")
    (run / "other.pt").symlink_to(outside / "other.pt")  # a snapshot that leads out of the run: not read
    (run / "latest.pt").symlink_to("checkpoint.pt")  # one that stays in it is
    res = gandiag_in_process("watch", run, *quick, "--out", elsewhere)  # a folder the command line names
    assert res.returncode == 0, res.stderr
    assert "other.pt: a symlink that leads out of the run folder; skipped" in res.stderr
    assert sorted(Path(ln["snapshot"]).name for ln in _trend(elsewhere)) == ["checkpoint.pt", "latest.pt"]
    (tmp_path / "out-link").symlink_to(elsewhere)  # --out may be a symlink the user made
    assert gandiag_in_process("watch", run, *quick, "--out", tmp_path / "out-link").returncode == 0


def test_the_output_folder_replaces_names_and_never_follows_a_link_planted_after_its_checks(tmp_path, monkeypatch):
    from gandiag.atomic import OutputError
    from gandiag.monitor.output_folder import OutputFolder

    precious = tmp_path / "precious.json"
    precious.write_text('{"p": 1}\n')
    out = OutputFolder(tmp_path / "watch", named=False)
    (tmp_path / "watch" / "results.json").symlink_to(precious)
    with pytest.raises(OutputError, match="is a symlink"):
        out.write({"results.json": b"{}"})
    with pytest.raises(OutputError, match="is a symlink"):
        out.append("results.json", "{}\n")
    monkeypatch.setattr(OutputFolder, "_check", lambda self, fd, name: None)  # a link planted after the checks
    out.write({"results.json": b"{}"})  # replaces the name, not the file it pointed to
    assert precious.read_text() == '{"p": 1}\n' and not (tmp_path / "watch" / "results.json").is_symlink()
    (tmp_path / "watch" / "trend.jsonl").symlink_to(precious)
    with pytest.raises(OutputError, match="is a symlink"):
        out.append("trend.jsonl", "{}\n")
    (tmp_path / "watch" / "trend.jsonl").unlink()
    (tmp_path / "watch" / "trend.jsonl").hardlink_to(precious)
    with pytest.raises(OutputError, match="2 names"):
        out.append("trend.jsonl", "{}\n")
    assert precious.read_text() == '{"p": 1}\n'
    assert [p.name for p in (tmp_path / "watch").iterdir() if p.name.startswith(".")] == []  # no staging left
