"""The wheel must ship every package and plugin: pyproject lists them by hand
(plugins/ is mapped through package-dir), so a new subpackage must be added there."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gandiag").rglob("__init__.py")}
    on_disk |= {p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py")}
    assert on_disk <= listed, f"missing from [tool.setuptools] packages: {sorted(on_disk - listed)}"
    for name in listed:
        if not name.startswith("gandiag."):
            assert name in cfg["package-dir"], name


def test_every_entry_point_plugin_is_a_listed_package():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    eps = cfg["project"]["entry-points"]["gandiag"]
    assert set(eps.values()) <= set(cfg["tool"]["setuptools"]["packages"])
