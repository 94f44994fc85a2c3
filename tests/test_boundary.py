"""The boundary with the outside world, tried as a hostile or careless user would.

Each test builds its hostile input inside the test and checks the promise of
docs/security.md: one line and exit 2 (never a traceback, never exit 3),
nothing replaced that is not a regular file, all of a run's outputs or none,
budgets refused before the allocation, a cache or a verdict that fails closed.
Loader-specific attacks (pickles, graphs, archives) are in test_loader_safety.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gandiag.data.mixtures import MIXTURES

FIXTURES = Path(__file__).parent / "fixtures" / "models"
RING_CKPT = FIXTURES / "ring8_gan_pack4" / "checkpoint.pt"
GANDIAG = [sys.executable, "-m", "gandiag.cli"]


def cli(*args, env=None):
    """The CLI in-process: (exit code, stdout, stderr)."""
    from gandiag.cli import _add_plugin_commands
    from gandiag.cli import cli as group

    _add_plugin_commands()
    res = CliRunner().invoke(group, [str(a) for a in args], env=env)
    return res.exit_code, res.stdout, res.stderr


def subprocess_cli(*args, timeout=120, env=None, cwd=None):
    return subprocess.run(GANDIAG + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def assert_one_line(code, err, match, expected=2):
    assert code == expected, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]
    assert "\x1b" not in err


@pytest.fixture(scope="module")
def ring_npz(tmp_path_factory):
    p = tmp_path_factory.mktemp("pts") / "ring.npz"
    np.savez(p, points=MIXTURES["ring8"].sample(300, 3)[0])
    return p


EVAL = ["--real", "ring8", "--metrics", "fid,kid", "--no-diagnostics", "--no-progress"]


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("flag", ["--json", "--report"])
def test_output_over_a_device_or_fifo_is_refused_and_left_alone(tmp_path, ring_npz, flag):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    link.symlink_to("/dev/null")
    for target in ("/dev/null", fifo, link):
        code, _, err = cli("evaluate", ring_npz, *EVAL, flag, target)
        assert_one_line(code, err, "gandiag replaces only regular files")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    assert list(tmp_path.glob("*.npz")) == [] and list(tmp_path.glob(".*")) == []


def test_symlink_to_a_regular_file_replaces_the_target_and_keeps_the_link(tmp_path, ring_npz):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "out.json"
    link.symlink_to(real)
    code, _, err = cli("evaluate", ring_npz, *EVAL, "--json", link)
    assert code == 0, err
    assert link.is_symlink() and json.loads(real.read_text())["schema"] == "gandiag.results"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere" / "x.json")
    code, _, err = cli("evaluate", ring_npz, *EVAL, "--json", dangling)
    assert_one_line(code, err, "symlink to nothing")


def test_outputs_get_ordinary_permissions(tmp_path, ring_npz):
    old = os.umask(0o022)
    try:
        code, _, err = cli("evaluate", ring_npz, *EVAL, "--json", tmp_path / "r.json", "--report", tmp_path / "r.html")
        assert code == 0, err
        for name in ("r.json", "r.html", "r.artifacts.npz"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
        os.chmod(tmp_path / "r.json", 0o640)  # a replaced file keeps its mode
        assert cli("evaluate", ring_npz, *EVAL, "--json", tmp_path / "r.json")[0] == 0
        assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o640
    finally:
        os.umask(old)


def test_unwritable_output_is_refused_before_the_evaluation(tmp_path, monkeypatch):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    import gandiag.pipeline

    def never(*a, **k):
        raise AssertionError("the evaluation ran before the output paths were checked")

    monkeypatch.setattr(gandiag.pipeline, "evaluate", never)
    code, _, err = cli("evaluate", RING_CKPT, "--json", blocker / "out.json")
    assert_one_line(code, err, "is not a folder")
    code, _, err = cli("evaluate", RING_CKPT, "--json", tmp_path / "a.json", "--report", tmp_path / "a.json")
    assert_one_line(code, err, "same file")


def test_no_output_replaces_a_file_the_run_reads(tmp_path, monkeypatch):
    """--json/--report/--junit/-o over the checkpoint, --real, the gates, their baseline or a results file read
    (by another spelling, a symlink or a hard link too) are refused before any work; nothing is replaced."""
    import gandiag.pipeline

    def never(*a, **k):
        raise AssertionError("the evaluation ran before the output paths were checked")

    ckpt, real, gates = tmp_path / "c.pt", tmp_path / "real.npz", tmp_path / "g.toml"
    ckpt.write_bytes(RING_CKPT.read_bytes())
    np.savez(real, points=np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    import gandiag
    from gandiag.outputs import finish

    base = tmp_path / "base.json"
    finish(gandiag.evaluate(str(ckpt), num_samples=200, diagnostics=False, metrics=["fid"]), json=base)
    gates.write_text(f'baseline = "{base.name}"\n[gates]\nfid = {{ max = 1000.0 }}\n')
    os.symlink(ckpt, tmp_path / "link.pt")
    os.link(real, tmp_path / "hard.npz")
    before = {p: p.read_bytes() for p in (ckpt, real, gates, base)}
    monkeypatch.setattr(gandiag.pipeline, "evaluate", never)
    monkeypatch.chdir(tmp_path)
    for args, said in [(["--json", "c.pt"], "--json c.pt is the target"),
                       (["--json", "link.pt"], "is the target"),
                       (["--real", "real.npz", "--report", "hard.npz"], "is --real"),
                       (["--json", "./real.npz", "--real", "real.npz"], "is --real"),
                       (["--gate", "g.toml", "--junit", "g.toml"], "is --gate"),
                       (["--gate", "g.toml", "--json", "base.json"], "is the baseline")]:
        code, _, err = cli("evaluate", "c.pt", *args)
        assert_one_line(code, err, said)
    saved = tmp_path / "r.json"
    saved.write_bytes(base.read_bytes())
    for args, said in [(["gate", "r.json", "--gate", "g.toml", "--junit", "r.json"], "is the results"),
                       (["gate", "r.json", "--gate", "g.toml", "--junit", "g.toml"], "is --gate"),
                       (["report", "r.json", "-o", "r.json"], "is a results file"),
                       (["diagnose", "c.pt", "--json", "c.pt"], "is the target"),
                       (["export", "c.pt", "--to", "export", "-o", "link.pt", "--force"], "is the checkpoint")]:
        code, _, err = cli(*args)
        assert_one_line(code, err, said)
    assert {p: p.read_bytes() for p in before} == before and saved.read_bytes() == base.read_bytes()


def test_a_failed_output_leaves_none_of_the_others(tmp_path, ring_npz, monkeypatch):
    (tmp_path / "g.toml").write_text("[gates]\nfid = { max = 1000.0 }\n")
    (tmp_path / "r.json").write_text("previous")
    import gandiag.report

    def broken(*a, **k):
        raise gandiag.errors.GandiagError("report cannot be made")

    monkeypatch.setattr(gandiag.report, "render_html", broken)
    code, _, err = cli("evaluate", ring_npz, *EVAL, "--json", tmp_path / "r.json", "--report", tmp_path / "r.html",
                       "--gate", tmp_path / "g.toml", "--junit", tmp_path / "j.xml")
    assert_one_line(code, err, "report cannot be made")
    assert (tmp_path / "r.json").read_text() == "previous"
    assert not (tmp_path / "j.xml").exists() and not (tmp_path / "r.artifacts.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.toml", "r.json"]


def test_a_rename_failing_midway_rolls_back_what_was_replaced(tmp_path):
    from gandiag.atomic import OutputError, OutputSet

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    out = OutputSet()
    out.add(a, "a")
    out.add(b, "b")
    out.put(a, b"new a")
    out.put(b, b"new b")
    real_replace = os.replace

    def failing(src, dst):
        if str(dst).endswith("b.txt"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    os.replace = failing
    try:
        with pytest.raises(OutputError, match="No space left"):
            out.commit()
    finally:
        os.replace = real_replace
    assert a.read_text() == "old a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_train_and_export_refuse_special_outputs(tmp_path):
    code, _, err = cli("train", "gan", "--data", "ring8", "--out", "/dev/null", "--steps", "2")
    assert_one_line(code, err, "not a folder")
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").symlink_to("/dev/null")
    code, _, err = cli("train", "gan", "--data", "ring8", "--out", run, "--steps", "2")
    assert_one_line(code, err, "gandiag replaces only regular files")
    code, _, err = cli("export", RING_CKPT, "--to", "export", "-o", "/dev/null", "--force")
    assert_one_line(code, err, "gandiag replaces only regular files")
    code, _, err = cli("export", RING_CKPT, "--to", "savedmodel", "-o", "/dev/null", "--force")
    assert_one_line(code, err, "is not one")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# ----------------------------------------------------------------------------- a file never picks local files


def _checkpoint_with(tmp_path, **changes) -> Path:
    ckpt = torch.load(RING_CKPT, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        ckpt[key] = value
    path = tmp_path / "ckpt" / "checkpoint.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(ckpt, path)
    return path


def test_checkpoint_naming_a_local_folder_is_not_read_without_real(tmp_path, ring_npz):
    secret = tmp_path / "secret.npz"
    np.savez(secret, points=MIXTURES["ring8"].sample(200, 9)[0])
    ckpt = torch.load(RING_CKPT, map_location="cpu", weights_only=True)
    ckpt["data"] = {**ckpt["data"], "source": str(secret)}
    ckpt["config"] = {**ckpt["config"], "data": str(secret)}
    path = _checkpoint_with(tmp_path, data=ckpt["data"], config=ckpt["config"])
    code, _, err = cli("evaluate", path, "-n", "200", "--json", tmp_path / "r.json")
    assert_one_line(code, err, f"pass --real {secret}")
    assert not (tmp_path / "r.json").exists()
    # Named on the command line, it is read; gradient health reads it too, since the user named it.
    code, _, err = cli("evaluate", path, "-n", "200", "--real", secret, "--json", tmp_path / "r.json")
    assert code == 0, err
    health = json.loads((tmp_path / "r.json").read_text())["diagnostics"]["gradient_health"]
    assert "skipped" not in health["adversarial"]
    # Named by another --real: the adversarial checks do not read the checkpoint's path.
    code, _, err = cli("evaluate", path, "-n", "200", "--real", "ring8", "--json", tmp_path / "r2.json")
    assert code == 0, err
    health = json.loads((tmp_path / "r2.json").read_text())["diagnostics"]["gradient_health"]
    assert health["adversarial"]["skipped"] and health["verdict"] != "error"


# ----------------------------------------------------------------------------- budgets


def test_decompression_bomb_images_are_refused_from_their_headers(tmp_path):
    from PIL import Image

    folder = tmp_path / "bomb"
    folder.mkdir()
    Image.new("L", (9000, 9000)).save(folder / "0.png")  # 81 M pixels in ~80 KB
    for i in range(1, 16):
        os.link(folder / "0.png", folder / f"{i}.png")
    t0 = time.perf_counter()
    code, _, err = cli("evaluate", folder, "--real", "digits")
    assert_one_line(code, err, "GANDIAG_MAX_IMAGE_PIXELS")
    assert time.perf_counter() - t0 < 20


def _npz_declaring(path: Path, shape, member="images.npy"):
    """A zip bomb: a deflated .npy whose header declares ``shape`` of uint8 zeros, truncated to 1 MB of data."""
    import io
    import zipfile

    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, hdr.getvalue() + b"\0" * (1 << 20))
    return path


def test_npz_bombs_and_oversized_flags_are_refused_before_allocating(tmp_path, ring_npz):
    bomb = _npz_declaring(tmp_path / "bomb.npz", (1, 1, 65535, 65535))
    code, _, err = cli("evaluate", bomb, "--real", "digits")
    assert_one_line(code, err, "GANDIAG_MAX_IMAGE_PIXELS")
    code, _, err = cli("evaluate", ring_npz, "--real", bomb)
    assert_one_line(code, err, "GANDIAG_MAX_IMAGE_PIXELS")
    big = _npz_declaring(tmp_path / "big.npz", (200_000, 3, 128, 128))
    code, _, err = cli("evaluate", big, "--real", "digits", env={"GANDIAG_MAX_ARRAY_BYTES": "1G"})
    assert_one_line(code, err, "GANDIAG_MAX_ARRAY_BYTES")
    lying = _npz_declaring(tmp_path / "lying.npz", (10, 1, 8, 8))  # declares 640 bytes, holds 1 MB
    code, _, err = cli("evaluate", lying, "--real", "digits")
    assert_one_line(code, err, "file is corrupt")
    wide = tmp_path / "wide.npz"
    np.savez(wide, points=np.zeros((20, 100_000), np.float32))
    code, _, err = cli("evaluate", wide, "--real", "ring8")
    assert_one_line(code, err, "GANDIAG_MAX_FEATURE_DIM")
    for flag, value, var in (("-n", "1000000000000", "GANDIAG_MAX_SAMPLES"),
                             ("--latent-dim", "1000000000", "GANDIAG_MAX_LATENT_SIZE"),
                             ("--batch-size", "100000000", "GANDIAG_MAX_BATCH_SIZE")):
        code, _, err = cli("evaluate", RING_CKPT, flag, value)
        assert_one_line(code, err, var)
    code, _, err = cli("evaluate", "tests/fixtures/models/digits_dcgan/checkpoint.pt", "-n", "2000",
                       env={"GANDIAG_MAX_MEMORY": "1M"})
    assert_one_line(code, err, "GANDIAG_MAX_MEMORY")
    code, _, err = cli("evaluate", RING_CKPT, "-n", "100", env={"GANDIAG_MAX_MEMORY": "lots"})
    assert_one_line(code, err, "GANDIAG_MAX_MEMORY='lots' is not a number")


@pytest.mark.slow  # six subprocesses: ~14 s
def test_special_files_as_inputs_never_block(tmp_path, ring_npz):
    fifo = tmp_path / "in.npz"
    os.mkfifo(fifo)
    gates = tmp_path / "gates.toml"
    os.mkfifo(gates)
    results = tmp_path / "r.json"
    os.mkfifo(results)
    for args, match in ((["evaluate", fifo], "a FIFO"), (["evaluate", "/dev/zero"], "a character device"),
                        (["evaluate", ring_npz, "--real", fifo], "a FIFO"),
                        (["evaluate", ring_npz, "--real", "ring8", "--gate", gates], "a FIFO"),
                        (["gate", results, "--gate", gates], "a FIFO"),
                        (["evaluate", FIXTURES / "digits_dcgan" / "checkpoint.pt", "-n", "20", "--feature-weights",
                          fifo], "a FIFO")):
        res = subprocess_cli(*args, timeout=60)  # a blocking open would hit the timeout
        assert_one_line(res.returncode, res.stderr, match)


def test_bad_device_and_pathological_json_and_toml_are_exit_2(tmp_path, ring_npz):
    code, _, err = cli("evaluate", ring_npz, "--real", "ring8", "--device", "tpu:9")
    assert_one_line(code, err, "--device 'tpu:9'")
    (tmp_path / "g.toml").write_text("[gates]\nfid = { max = 1.0 }\n")
    for name, text in (("list.json", "[1, 2]"), ("deep.json", "[" * 100_000 + "]" * 100_000),
                       ("types.json", json.dumps({"schema": "gandiag.results", "schema_version": 1, "metrics": [1]})),
                       ("value.json", json.dumps({"schema": "gandiag.results", "schema_version": 1,
                                                  "metrics": {"fid": {"value": "low"}}}))):
        (tmp_path / name).write_text(text)
        code, _, err = cli("gate", tmp_path / name, "--gate", tmp_path / "g.toml")
        assert_one_line(code, err, name)
        (tmp_path / "b.toml").write_text(f'baseline = "{name}"\n[gates]\nfid = {{ max_increase = 0.1 }}\n')
        code, _, err = cli("evaluate", ring_npz, *EVAL, "--gate", tmp_path / "b.toml")
        assert_one_line(code, err, "baseline")
    (tmp_path / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, err = cli("gate", tmp_path / "list.json", "--gate", tmp_path / "deep.toml")
    assert_one_line(code, err, "nested more than")


def test_bad_npz_messages(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    code, _, err = cli("evaluate", tmp_path / "text.npz", "--real", "ring8")
    assert_one_line(code, err, "not a .npz file")
    assert "allow_pickle" not in err
    np.savez(tmp_path / "complex.npz", points=np.ones((40, 2), np.complex64))
    code, _, err = cli("evaluate", tmp_path / "complex.npz", "--real", "ring8")
    assert_one_line(code, err, "complex numbers")
    np.savez(tmp_path / "obj.npz", points=np.array([{"a": 1}] * 20, dtype=object), allow_pickle=True)
    code, _, err = cli("evaluate", tmp_path / "obj.npz", "--real", "ring8")
    assert_one_line(code, err, "plain numbers")


# ----------------------------------------------------------------------------- cache


def _cache_entry() -> Path:
    entries = list(Path(os.environ["GANDIAG_CACHE_DIR"], "features").glob("*.npz"))
    assert len(entries) == 1, entries
    return entries[0]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANDIAG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """200 real digits as 'generated' images: the digits extractor has weights, so its real features are cached."""
    from sklearn.datasets import load_digits

    p = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(p, images=np.rint(load_digits().images[:200] * 255 / 16).astype(np.uint8))
    return p


def _rewrite_entry(path: Path, change) -> None:
    from gandiag.features.cache import _checksum

    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    arrays.pop("checksum")
    arrays["checksum"] = np.array(_checksum(arrays))  # consistent checksum: only the content checks can catch it
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage, message", [
    (lambda a: a["features_pool"].__setitem__((0, 0), np.nan), "NaN"),
    (lambda a: a.__setitem__("features_pool", a["features_pool"][:, :1].copy()), "float32"),
    (lambda a: a.__setitem__("sum_pool", a["sum_pool"] * 3), "disagree"),
    (lambda a: a.__setitem__("outer_pool", a["outer_pool"] + 1.0), "disagree"),
    (None, "invalid"),
])
def test_damaged_cache_entry_is_recomputed_with_a_warning(fresh_cache, digits_npz, damage, message):
    from gandiag.pipeline import evaluate

    args = dict(metrics=["fid", "kid", "precision"], diagnostics=False)
    clean = evaluate(digits_npz, "digits", **args)
    entry = _cache_entry()
    if damage is None:
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    else:
        _rewrite_entry(entry, damage)
    again = evaluate(digits_npz, "digits", **args)
    assert any("cache entry" in w and message in w for w in again.warnings), again.warnings
    for name, m in clean.metrics.items():
        assert again.metrics[name]["value"] == pytest.approx(m["value"], rel=1e-9), name
    third = evaluate(digits_npz, "digits", **args)  # the rewritten entry is good again
    assert not any("cache" in w for w in third.warnings) and third.provenance["timings_s"]["real_features_cached"]


def test_unusable_cache_folder_is_a_warning(tmp_path, digits_npz, monkeypatch):
    (tmp_path / "cachefile").write_text("not a folder")
    monkeypatch.setenv("GANDIAG_CACHE_DIR", str(tmp_path / "cachefile"))
    code, out, err = cli("evaluate", digits_npz, "--real", "digits", "--metrics", "fid", "--no-diagnostics")
    assert code == 0, err
    assert "warning: feature cache not written" in out


# ----------------------------------------------------------------------------- gates


def _results_json(tmp_path, name, **prov_changes):
    from gandiag.pipeline import evaluate

    r = evaluate(tmp_path / "pts.npz", "ring8", metrics=["fid"], diagnostics=False)
    r.provenance.update(prov_changes)
    r.save(tmp_path / name)
    return tmp_path / name


def test_baseline_must_be_comparable(tmp_path):
    np.savez(tmp_path / "pts.npz", points=MIXTURES["ring8"].sample(300, 4)[0])
    current = _results_json(tmp_path, "cur.json")
    _results_json(tmp_path, "other.json", num_samples=10,
                          extractor={"name": "inception-v3", "weights_sha256": "ab" * 32})
    gates = tmp_path / "g.toml"
    gates.write_text('baseline = "other.json"\n[gates]\nfid = { max_increase = 0.1 }\n')
    code, _, err = cli("gate", current, "--gate", gates)
    assert_one_line(code, err, "not comparable")
    assert "feature extractor: this run points, the baseline inception-v3" in err
    assert "number of generated samples N: this run 300, the baseline 10" in err
    old = json.loads(current.read_text())
    del old["provenance"]["metric_options"], old["real"]["content_sha256"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    gates.write_text('baseline = "old.json"\n[gates]\nfid = { max_increase = 0.1 }\n')
    code, _, err = cli("gate", current, "--gate", gates)
    assert_one_line(code, err, "re-run the baseline evaluation with this version")
    gates.write_text('baseline = "cur.json"\n[gates]\nfid = { max_increase = 0.1 }\n')
    assert cli("gate", current, "--gate", gates)[0] == 0


def test_control_characters_never_reach_the_terminal_or_the_xml(tmp_path):
    np.savez(tmp_path / "pts.npz", points=MIXTURES["ring8"].sample(300, 4)[0])
    path = _results_json(tmp_path, "r.json")
    d = json.loads(path.read_text())
    evil = "\x1b[2J\x1b[H\x00gates: PASSED\r\n\u202e"
    d["generator"]["path"] = evil
    d["diagnostics"] = {"mode_collapse": {"verdict": "severe", "reasons": [{"message": evil}]}}
    path.write_text(json.dumps(d))
    (tmp_path / "g.toml").write_text('[gates]\nmode_collapse = { allow = ["none"] }\n')
    code, out, err = cli("gate", path, "--gate", tmp_path / "g.toml", "--junit", tmp_path / "j.xml")
    assert code == 1, err
    assert not any(c in out + err for c in "\x1b\x00\r\u202e") and "\\x1b[2J" in out
    assert [ln for ln in out.splitlines() if "PASSED" in ln and not ln.startswith("  ")] == []
    ET.parse(tmp_path / "j.xml")  # valid XML


# ----------------------------------------------------------------------------- diagnostics fail closed


def test_a_crashing_signal_makes_the_verdict_error_and_the_gate_fail(tmp_path, ring_npz, monkeypatch):
    from gandiag.diagnostics import mixture_modes

    def crash(ctx):
        raise RuntimeError("signal exploded")

    monkeypatch.setattr(mixture_modes, "compute", crash)
    (tmp_path / "g.toml").write_text('[gates]\nmode_collapse = { allow = ["none", "partial", "severe"] }\n')
    code, out, err = cli("evaluate", RING_CKPT, "-n", "300", "--metrics", "fid", "--gate", tmp_path / "g.toml",
                         "--json", tmp_path / "r.json")
    assert code == 1, err
    mc = json.loads((tmp_path / "r.json").read_text())["diagnostics"]["mode_collapse"]
    assert mc["verdict"] == "error" and "signal exploded" in mc["reasons"][0]["message"]
    assert "FAIL mode_collapse allow" in out
    (tmp_path / "g2.toml").write_text('[gates]\nmode_collapse = { allow = ["none", "error"] }\n')
    code, _, err = cli("gate", tmp_path / "r.json", "--gate", tmp_path / "g2.toml")
    assert_one_line(code, err, "a gate never passes it")


def test_a_diagnostic_that_raises_as_a_whole_is_error_not_a_crash(tmp_path, ring_npz, monkeypatch):
    from gandiag.diagnostics.gradient_health import GradientHealth

    def boom(self, ctx):
        raise ValueError("whole diagnostic broke")

    monkeypatch.setattr(GradientHealth, "run", boom)
    code, out, err = cli("evaluate", RING_CKPT, "-n", "300", "--metrics", "fid", "--json", tmp_path / "r.json")
    assert code == 0, err
    gh = json.loads((tmp_path / "r.json").read_text())["diagnostics"]["gradient_health"]
    assert gh["verdict"] == "error" and "whole diagnostic broke" in gh["reasons"][0]["message"]


@pytest.mark.parametrize("args", [["train", "dcgan", "--data", "digits", "--steps", "2"],
                                  ["train", "cyclegan", "--data", "digits-inverted", "--steps", "2"],
                                  ["watch", ".", "--once"]])
@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_output_folder_that_cannot_be_made_is_exit_2(tmp_path, args, where):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run" if where == "under a file" else "/proc/gandiag-cannot-be-here"
    from conftest import gandiag_in_process

    res = gandiag_in_process(*args, "--out", out, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr


def test_lone_surrogates_are_shown_as_escapes_not_a_crash(tmp_path, monkeypatch):
    """A non-UTF-8 file name (decoded with surrogateescape) and a '\\ud800' in a results file reach the summary,
    the report and JUnit as escapes: exit 0/1 as the results say, never exit 3 after the work is done."""
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"ck\xff.pt")
    Path(name).write_bytes(RING_CKPT.read_bytes())
    code, out, err = cli("evaluate", name, "-n", "100", "--json", "r.json", "--report", "r.html", "--no-diagnostics")
    assert code == 0, err
    assert "ck\\xff.pt" in Path("r.html").read_text(encoding="utf-8")  # the byte, as the name has it
    doc = json.loads(Path("r.json").read_text())
    doc["metrics"]["fid"]["error"] = "\ud800 boom"
    Path("se.json").write_text(json.dumps(doc))
    Path("g.toml").write_text("[gates]\nfid = { max = 40.0 }\n")
    code, out, err = cli("gate", "se.json", "--gate", "g.toml", "--junit", "j.xml")
    assert code == 1 and "\\ud800 boom" in out, (out, err)
    ET.parse("j.xml")
    code, out, err = cli("report", "se.json", "-o", "se.html")
    assert code == 0 and "\\ud800" in Path("se.html").read_text(encoding="utf-8")


def test_a_results_file_of_a_million_empty_objects_is_refused_before_parsing(tmp_path):
    """Each list or object costs Python ~70 bytes parsed: 20 MB of '[{},{},...]' took ~0.5 GB before; now the
    bracket scan that bounds nesting counts them too, and more than any results file holds is exit 2."""
    big = tmp_path / "big.json"
    big.write_text('{"schema": "gandiag.results", "pad": [' + "{}," * 1_100_000 + "{}]}")
    (tmp_path / "g.toml").write_text("[gates]\nfid = { max = 1.0 }\n")
    code, _, err = cli("gate", big, "--gate", tmp_path / "g.toml")
    assert_one_line(code, err, "lists and objects, more than")
