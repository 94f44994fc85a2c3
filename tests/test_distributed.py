"""Under torchrun, sampling is sharded by seed blocks and features are gathered
back in sample order: two CPU processes (gloo) give the single-process numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CKPT = Path(__file__).parent / "fixtures" / "models" / "ring8_gan_pack4" / "checkpoint.pt"


def test_two_ranks_equal_one_process(tmp_path):
    args = ["evaluate", str(CKPT), "-n", "2600", "--no-diagnostics", "--no-progress", "--json"]
    single = subprocess.run([sys.executable, "-m", "gandiag.cli", *args, str(tmp_path / "s.json")],
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            "-m", "gandiag.cli", *args, str(tmp_path / "d.json")], capture_output=True, text=True, timeout=600)
    assert multi.returncode == 0, multi.stderr[-2000:]
    s, d = (json.loads((tmp_path / f).read_text()) for f in ("s.json", "d.json"))
    assert d["provenance"]["world_size"] == 2 and d["provenance"]["num_samples"] == 2600
    for name, m in s["metrics"].items():
        assert d["metrics"][name]["value"] == pytest.approx(m["value"], rel=1e-9, abs=1e-12), name
