"""Under torchrun, sampling is sharded by seed blocks and features are gathered
back in sample order: two CPU processes (gloo) give the single-process numbers,
every rank returns the same Results, and only rank 0 writes and prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CKPT = Path(__file__).parent / "fixtures" / "models" / "ring8_gan_pack4" / "checkpoint.pt"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
pytestmark = pytest.mark.slow  # two torchrun processes per test: 6-11 s each on 2 CPU cores

PER_RANK = """
import json, sys
import gandiag
from gandiag.default_plugins.diagnose_command import format_diagnosis
r = gandiag.evaluate(sys.argv[1], num_samples=2600, seed=7)
def timeless(x):  # wall times differ between processes; everything else must not
    if isinstance(x, dict):
        return {k: timeless(v) for k, v in x.items() if k not in ("seconds", "timings_s", "created")}
    return [timeless(v) for v in x] if isinstance(x, list) else x
d = timeless(r.to_json())
import os
with open(f"{sys.argv[2]}/rank{os.environ['RANK']}.json", "w") as f:
    json.dump({"results": d, "diagnosis": format_diagnosis(r)}, f, sort_keys=True)
"""


def _run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


def test_two_ranks_equal_one_process(tmp_path):
    (tmp_path / "gates.toml").write_text('[gates]\nfid = { max = 1.0 }\nmode_collapse = { allow = ["none"] }\n')
    args = ["evaluate", str(CKPT), "-n", "2600", "--no-progress", "--gate", str(tmp_path / "gates.toml"), "--json"]
    single = _run([sys.executable, "-m", "gandiag.cli", *args, str(tmp_path / "s.json")])
    assert single.returncode == 0, single.stderr
    multi = _run([*TORCHRUN, "-m", "gandiag.cli", *args, str(tmp_path / "d.json")])
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert multi.stdout.count("gates: PASSED") == 1  # rank 0 alone prints
    s, d = (json.loads((tmp_path / f).read_text()) for f in ("s.json", "d.json"))
    assert d["provenance"]["world_size"] == 2 and d["provenance"]["num_samples"] == 2600
    for name, m in s["metrics"].items():
        assert d["metrics"][name]["value"] == pytest.approx(m["value"], rel=1e-9, abs=1e-12), name
    for name, diag in s["diagnostics"].items():
        assert d["diagnostics"][name]["verdict"] == diag["verdict"], name


def test_every_rank_returns_the_same_results(tmp_path):
    script = tmp_path / "per_rank.py"
    script.write_text(PER_RANK)
    res = _run([*TORCHRUN, str(script), str(CKPT), str(tmp_path)])
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["results"]["diagnostics"]["mode_collapse"]["verdict"] == "none"
    assert r0 == r1


def test_diagnose_under_torchrun_prints_once_and_exits_0(tmp_path):
    res = _run([*TORCHRUN, "-m", "gandiag.cli", "diagnose", str(CKPT), "-n", "2600", "--no-progress",
                "--json", str(tmp_path / "d.json")])
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("gandiag diagnose:") == 1
    assert json.loads((tmp_path / "d.json").read_text())["diagnostics"]["gradient_health"]["verdict"] == "healthy"


def test_a_conditional_image_generator_gathers_features_labels_and_kept_samples(tmp_path):
    """Images (only rank 0's first samples are kept for the report) with class labels, gathered as tensors:
    three seed blocks and a bit (rank 0 holds blocks 0 and 2, rank 1 block 1: the order matters) and unequal
    counts, so the buffers are padded."""
    cgan = Path(__file__).parent / "fixtures" / "models" / "digits_cgan" / "checkpoint.pt"
    args = ["evaluate", str(cgan), "-n", "2601", "--batch-size", "100", "--no-progress", "--json"]
    single = _run([sys.executable, "-m", "gandiag.cli", *args, str(tmp_path / "s.json")])
    assert single.returncode == 0, single.stderr
    multi = _run([*TORCHRUN, "-m", "gandiag.cli", *args, str(tmp_path / "d.json")])
    assert multi.returncode == 0, multi.stderr[-3000:]
    s, d = (json.loads((tmp_path / f).read_text()) for f in ("s.json", "d.json"))
    for name, m in s["metrics"].items():
        assert d["metrics"][name]["value"] == pytest.approx(m["value"], rel=1e-9, abs=1e-12), name
    for name, diag in s["diagnostics"].items():  # mode_collapse reads the labels: per-class calls agree
        assert d["diagnostics"][name]["verdict"] == diag["verdict"], name
    cond = lambda r: r["diagnostics"]["mode_collapse"]["signals"]["classes"]["conditional"]["per_class"]  # noqa
    for c, e in cond(s).items():  # per-class agreement of each label with the classifier: labels in sample order
        assert (cond(d)[c]["n"], cond(d)[c]["agreement"]) == (e["n"], e["agreement"]), c
        assert cond(d)[c]["diversity"] == pytest.approx(e["diversity"], rel=1e-9), c


SHARDED = """
import json, os, sys
import torch
from gandiag import distributed
from gandiag.metrics.prdc import ball_metrics
distributed.setup("cpu")
g = torch.Generator().manual_seed(5)
x = torch.randn(1003, 16, generator=g, dtype=torch.float64)
y = torch.randn(997, 16, generator=g, dtype=torch.float64) * 1.1 + 0.05
out = ball_metrics(x, y, 3, 5, shard=distributed.row_shard())
with open(f"{sys.argv[1]}/rank{os.environ['RANK']}.json", "w") as f:
    json.dump(out, f)
distributed.leave()
"""


def test_each_rank_computes_its_rows_of_the_distance_work(tmp_path, monkeypatch):
    """Ball metrics under torchrun: each rank its own span of rows, per-row results gathered and per-column
    ones reduced; both ranks end with exactly the single process's four numbers."""
    import torch

    from gandiag import distributed
    from gandiag.metrics.prdc import ball_metrics

    script = tmp_path / "sharded.py"
    script.write_text(SHARDED)
    res = _run([*TORCHRUN, str(script), str(tmp_path)])
    assert res.returncode == 0, res.stderr[-3000:]
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1003, 16, generator=g, dtype=torch.float64)
    y = torch.randn(997, 16, generator=g, dtype=torch.float64) * 1.1 + 0.05
    single = ball_metrics(x, y, 3, 5)
    for r in (0, 1):
        assert json.loads((tmp_path / f"rank{r}.json").read_text()) == single
    spans = [distributed.RowShard(r, 3).span(1003) for r in range(3)]
    assert spans == [(0, 334), (334, 668), (668, 1003)]  # contiguous, covering, as gather puts them back
