"""The command line as a user meets it: exit codes, one-line errors, JSON output.

Commands run in-process through click's CliRunner (the same group the console entry calls, a fraction of a
second instead of ~2 s of interpreter start-up each). Subprocesses remain where the process is the point:
the real console entry's exit code and stderr (test_real_console_entry_exit_2_one_line), and an isolated
environment (TORCH_HOME, GANDIAG_OFFLINE) for the offline Inception weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import gandiag_in_process

from gandiag.data.mixtures import MIXTURES

GANDIAG = [sys.executable, "-m", "gandiag.cli"]


def run(*args, cwd=None):
    """The CLI in-process (conftest.gandiag_in_process): returncode, stdout and stderr, like subprocess.run's."""
    return gandiag_in_process(*args, cwd=cwd)


def run_subprocess(*args, cwd=None, env=None):
    return subprocess.run(GANDIAG + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def ring_npz(tmp_path_factory):
    p = tmp_path_factory.mktemp("pts") / "ring.npz"
    pts, _ = MIXTURES["ring8"].sample(600, 3)
    np.savez(p, points=pts)
    return p


def _one_line_error(res, match):
    assert res.returncode == 2, res.stderr
    lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert match in lines[0], lines[0]


def test_evaluate_writes_versioned_json(tmp_path, ring_npz):
    out = tmp_path / "r.json"
    # every metric and diagnostic by default; 10 KID subsets instead of 100 (KID's 100 take seconds on a CPU)
    res = run("evaluate", ring_npz, "--real", "ring8", "--json", out, "--kid-subsets", "10", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "FID [points]" in res.stdout
    d = json.loads(out.read_text())
    assert d["schema"] == "gandiag.results" and d["schema_version"] == 1
    assert set(d["metrics"]) >= {"fid", "kid", "precision", "recall", "density", "coverage"}
    assert d["metrics"]["kid"]["std"] >= 0
    prov = d["provenance"]
    for key in ("gandiag_version", "torch_version", "plugins", "device", "seed", "num_samples", "extractor", "timings_s"):
        assert key in prov
    assert prov["plugins"]["torch"]


def _without_timings(doc):
    """A results document less what measures the run rather than the samples ("seconds" of each part)."""
    if isinstance(doc, dict):
        return {k: _without_timings(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [_without_timings(v) for v in doc]
    return doc


def test_same_seed_same_numbers(tmp_path, ring_npz):
    """Two runs with the same seed give the same numbers, bit for bit; another seed draws other KID subsets."""
    outs = [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "seed7.json"]
    for out, seed, diag in zip(outs, ("2020", "2020", "7"), ("--diagnostics", "--diagnostics", "--no-diagnostics")):
        res = run("evaluate", ring_npz, "--real", "ring8", "--json", out, "--metrics", "fid,kid", "--seed", seed,
                  "--kid-subsets", "20", diag, "--no-progress")
        assert res.returncode == 0, res.stderr
    a, b, other = (_without_timings(json.loads(p.read_text())) for p in outs)
    assert set(a["metrics"]) == {"fid", "kid"} and set(a["diagnostics"]) >= {"mode_collapse"}
    assert isinstance(a["metrics"]["kid"]["value"], float) and isinstance(a["metrics"]["fid"]["value"], float)
    # every number of both metrics (values, KID's std) and of the diagnostics, exactly
    assert a["metrics"] == b["metrics"] and a["diagnostics"] == b["diagnostics"]
    # the seed reaches the numbers (ring8's real sample, KID's subsets), so the check above can fail
    assert other["metrics"]["kid"]["value"] != a["metrics"]["kid"]["value"]
    assert other["metrics"]["fid"]["value"] != a["metrics"]["fid"]["value"]


@pytest.mark.parametrize("args, match", [
    (["evaluate", "missing.pt"], "no such file"),
    (["evaluate", "RING", "--real", "nowhere"], "valid: basicmotions, digits, digits-inverted:a|b, digits-thick:a|b, grid25, gunpoint, ring8, ring8-rotated:a|b, "
     "sines, an image folder, a .npz or a .npy file"),
    (["evaluate", "RING", "--real", "ring8", "--metrics", "fid,bogus"], "unknown metric 'bogus'"),
    (["evaluate", "RING", "--real", "ring8", "--metrics", "is"], "needs 'logits' features"),
    (["evaluate", "RING", "--real", "ring8", "--num-samples", "3"], "too few"),
    (["evaluate", "RING", "--real", "ring8", "--feature-extractor", "inception-v3"], "takes images"),
    (["evaluate", "RING", "--real", "digits"], "holds images but the generator produces points"),
    # click's own usage errors: one line too, saying where the options are listed
    (["evaluate", "RING", "--compute-precision", "bf61"], "'bf61' is not one of 'strict', 'tf32', 'bf16'"),
    (["evaluate", "RING", "--recursiv"], "No such option '--recursiv'"),
    (["evaluate", "RING", "--junit", "x.xml"], "--junit needs --gate ('gandiag evaluate --help' lists the options)"),
    (["evaluate"], "Missing argument 'TARGET'"),
    (["train", "gan", "--loss", "hinj"], "'gandiag train --help' lists the options"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
    # flags that would be silently ignored are refused
    (["evaluate", "RING", "--real", "ring8", "--feature-weights", "/nonexist"], "model-free and take no weights"),
])
def test_bad_input_one_line_exit_2_no_result_file(tmp_path, ring_npz, args, match):
    out = tmp_path / "never.json"
    args = [str(ring_npz) if a == "RING" else a for a in args]
    res = run(*args, "--json", out, cwd=tmp_path)
    _one_line_error(res, match)
    assert not out.exists()


def test_empty_checkpoint(tmp_path):
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    _one_line_error(run("evaluate", p), "empty")


def test_real_console_entry_exit_2_one_line(tmp_path):
    """The console entry (python -m gandiag.cli, i.e. main()) as a shell sees it: exit 2, one line on stderr."""
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    res = run_subprocess("evaluate", p)
    _one_line_error(res, "empty")
    assert res.stdout == ""


def test_mixed_size_folder(tmp_path):
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "imgs" / "a.png")
    Image.new("L", (16, 16)).save(tmp_path / "imgs" / "b.png")
    _one_line_error(run("evaluate", tmp_path / "imgs", "--real", "digits"), "differ in size")


def test_inception_weights_missing_offline_is_one_line(tmp_path):
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i in range(12):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(tmp_path / "imgs" / f"{i}.png")
    env_home = tmp_path / "torchhome"
    # a subprocess: the point is an environment of its own (no cached weights under TORCH_HOME, offline)
    res = run_subprocess("evaluate", tmp_path / "imgs", "--real", tmp_path / "imgs", "--feature-extractor",
                         "inception-v3", env={"TORCH_HOME": str(env_home), "GANDIAG_OFFLINE": "1"})
    _one_line_error(res, "--feature-weights")
    assert str(env_home) in res.stderr


def test_unusable_output_range_flag(tmp_path, ring_npz):
    _one_line_error(run("evaluate", ring_npz, "--real", "ring8", "--output-range", "0-7"), "output range")


def test_plugins_lists_json():
    res = run("plugins")
    assert res.returncode == 0, res.stderr
    names = {p["name"]: p for p in json.loads(res.stdout)}
    assert names["torch"]["builtin"] is False and names["torch"]["provides"]["loader"] == ["torch"]
    assert "fid" in names["metrics"]["provides"]["metric"]


def test_help_documents_exit_codes():
    res = run("--help")
    assert res.returncode == 0
    assert "Exit codes: 0 ok, 1 quality gate failed, 2 bad usage or input, 3 internal error" in " ".join(res.stdout.split())


def test_failed_gate_exits_1_and_shows_in_json_and_report(tmp_path, ring_npz):
    (tmp_path / "gates.toml").write_text("[gates]\nfid = { max = -1.0 }\nrecall = { min = 0.1 }\n")
    res = run("evaluate", ring_npz, "--real", "ring8", "--gate", "gates.toml", "--junit", "junit.xml",
              "--json", "r.json", "--report", "--metrics", "fid,recall", "--no-diagnostics", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    gates = {g["name"]: g["passed"] for g in json.loads((tmp_path / "r.json").read_text())["gates"]}
    assert gates == {"fid max": False, "recall min": True}
    reports = list((tmp_path / "reports").glob("*.html"))  # --report alone: reports/<name>.html
    assert len(reports) == 1 and "Quality gates" in reports[0].read_text()
    assert "<testcase" in (tmp_path / "junit.xml").read_text()


def test_an_empty_or_folder_like_output_path_is_refused_not_ignored(tmp_path, ring_npz):
    """--json "" once ran and wrote nothing (exit 0); out.json/ wrote out.json: both are exit 2 before any work."""
    for flag, value, said in (("--json", "", "--json: empty path"), ("--report", "r.html/", "ends with '/'"),
                              ("--json", "out.json/", "ends with '/'")):
        res = run("evaluate", ring_npz, flag, value, cwd=tmp_path)
        _one_line_error(res, said)
    assert list(tmp_path.iterdir()) == []


def test_more_samples_asked_than_a_file_holds_is_said(tmp_path, ring_npz):
    out = tmp_path / "r.json"
    res = run("evaluate", ring_npz, "--real", "ring8", "-n", "5000", "--no-diagnostics", "--json", out)
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert any("-n 5,000 asked for more samples than" in w and "all 600" in w for w in doc["warnings"])


def test_default_report_names_keep_two_runs_apart():
    from gandiag.report import report_path_for

    assert report_path_for("runs/dcgan/checkpoint.pt").name == "dcgan-checkpoint.html"
    assert report_path_for("runs/wgan/checkpoint.pt").name == "wgan-checkpoint.html"
    assert report_path_for("exports/netG.onnx").name == "exports-netg.html"
    assert report_path_for("my_generator_v3.pt2").name == "my-generator-v3.html"  # a name of its own stays
    assert report_path_for("checkpoint.pt").name == "checkpoint.html"


def test_a_translators_flags_on_a_generator_of_latents_are_refused(tmp_path):
    ring = Path(__file__).parent / "fixtures" / "models" / "ring8_gan_pack4" / "checkpoint.pt"
    for flags in (["--paired"], ["--inverse", str(ring)]):
        _one_line_error(run("evaluate", ring, "-n", "100", *flags, cwd=tmp_path), "is a generator of latents")
    # an unconditional gandiag checkpoint's contract says it takes no labels: --num-classes cannot make it take some
    _one_line_error(run("evaluate", ring, "-n", "100", "--num-classes", "5", cwd=tmp_path), "takes no class labels")
