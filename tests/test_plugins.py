"""Plugins: a third-party package found through the ``gandiag`` entry point,
inline plugins registered from code, and built-ins being overridable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gandiag import plugins
from gandiag.hookspecs import hookimpl

HERE = Path(__file__).parent


@pytest.fixture
def installed_fake_plugin(tmp_path):
    """A site dir holding a dist-info with entry_points.txt: what pip install would leave."""
    dist = tmp_path / "fake_gandiag_plugin-0.3.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-gandiag-plugin\nVersion: 0.3.1\n")
    (dist / "entry_points.txt").write_text("[gandiag]\nringfile = fake_gandiag_plugin\n")
    (tmp_path / "fake_gandiag_plugin.py").write_text((HERE / "plugins" / "fake_gandiag_plugin.py").read_text())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path, env


def _gandiag(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "gandiag.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_entry_point_plugin_is_listed_and_used(installed_fake_plugin):
    tmp, env = installed_fake_plugin
    listing = {p["name"]: p for p in json.loads(_gandiag(["plugins"], env, tmp).stdout)}
    fake = listing["ringfile"]
    assert fake["builtin"] is False and fake["version"] == "0.3.1" and fake["package"] == "fake-gandiag-plugin"
    assert fake["provides"] == {"loader": ["ringfile"], "metric": ["mean_norm"]}

    (tmp / "model.ring").write_text("1.0")
    res = _gandiag(["evaluate", "model.ring", "-n", "400", "--json", "r.json", "--no-progress"], env, tmp)
    assert res.returncode == 0, res.stderr
    d = json.loads((tmp / "r.json").read_text())
    assert d["generator"]["loader"] == "ringfile" and d["real"]["source"] == "ring8"
    assert d["metrics"]["mean_norm"]["value"] == pytest.approx(1.0, abs=0.05)
    assert d["metrics"]["precision"]["value"] > 0.9


def test_autoload_can_be_restricted(installed_fake_plugin):
    tmp, env = installed_fake_plugin
    listing = json.loads(_gandiag(["plugins"], dict(env, GANDIAG_PLUGINS="torch"), tmp).stdout)
    assert "ringfile" not in {p["name"] for p in listing} and "torch" in {p["name"] for p in listing}


class _OverrideFID:
    name, label, role, needs_real, higher_is_better = "fid", "FID (override)", "pool", True, False

    def compute(self, ctx):
        return {"value": -1.0}


class _InlinePlugin:
    @hookimpl
    def register_metrics(self, register):
        register(_OverrideFID())


def test_inline_plugin_overrides_builtin():
    plugins.load_plugins()
    plugin = _InlinePlugin()
    plugins.pm.register(plugin, name="inline-test")
    plugins.reset()
    try:
        reg = plugins.registry("metric")
        assert reg["fid"].label == "FID (override)" and reg.owner["fid"] == "inline-test"
        assert "kid" in reg  # the rest of the built-ins stay
    finally:
        plugins.pm.unregister(plugin)
        plugins.reset()
    assert plugins.registry("metric")["fid"].label == "FID"


def test_every_hook_is_documented_and_the_example_is_the_tested_plugin():
    import re

    from gandiag import hookspecs

    doc = (HERE.parent / "docs" / "plugins.md").read_text()
    hooks = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert len(hooks) == 8
    for name in hooks:
        assert f"`{name}(" in doc, f"{name} is not documented in docs/plugins.md"
    example = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    assert example == (HERE / "plugins" / "fake_gandiag_plugin.py").read_text()
