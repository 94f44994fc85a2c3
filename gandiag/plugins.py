"""The one plugin manager, and the registries filled through its hooks.

Built-in plugins (``gandiag.default_plugins``) are registered here directly;
everything else, the loaders under ``plugins/`` included, comes through the
``gandiag`` entry-point group. ``GANDIAG_PLUGINS=a,b`` restricts entry-point
loading to those names; ``GANDIAG_PLUGINS=`` (empty) disables it.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pluggy

from . import hookspecs
from .errors import UnknownNameError

DEFAULT_PLUGINS = (
    "gandiag.default_plugins.real_sources",
    "gandiag.default_plugins.extractors",
    "gandiag.default_plugins.metrics",
    "gandiag.default_plugins.architectures",
    "gandiag.default_plugins.diagnostics",
    "gandiag.default_plugins.report_sections",
    "gandiag.default_plugins.report_commands",
    "gandiag.default_plugins.train_command",
    "gandiag.default_plugins.diagnose_command",
    "gandiag.default_plugins.export_command",
)

pm = pluggy.PluginManager("gandiag")
pm.add_hookspecs(hookspecs)
_loaded = False


def load_plugins() -> pluggy.PluginManager:
    """Register default and entry-point plugins once; safe to call repeatedly."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name.rsplit(".", 1)[-1])
    wanted = os.environ.get("GANDIAG_PLUGINS")
    if wanted is None:
        pm.load_setuptools_entrypoints("gandiag")
    else:
        for name in filter(None, (n.strip() for n in wanted.split(","))):
            pm.load_setuptools_entrypoints("gandiag", name=name)
    _registries.clear()
    return pm


class Registry:
    """Name → object, first registration wins (third-party before built-in)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.items: dict[str, Any] = {}
        self.owner: dict[str, str] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def __getitem__(self, name: str) -> Any:
        try:
            return self.items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self.items)) from None

    def names(self) -> list[str]:
        return list(self.items)

    def values(self) -> list[Any]:
        return list(self.items.values())


_registries: dict[str, Registry] = {}

_HOOKS = {
    "loader": "register_loaders",
    "real source": "register_real_sources",
    "feature extractor": "register_feature_extractors",
    "metric": "register_metrics",
    "diagnostic": "register_diagnostics",
    "report section": "register_report_sections",
    "architecture": "register_architectures",
}


def registry(kind: str) -> Registry:
    """The registry of one kind of plugin object, filled on first use."""
    load_plugins()
    if kind in _registries:
        return _registries[kind]
    reg = Registry(kind)
    hook = getattr(pm.hook, _HOOKS[kind])
    for impl in reversed(hook.get_hookimpls()):  # pluggy's call order
        owner = impl.plugin_name

        def register(obj, builder=None, _owner=owner):
            # Architectures register (name, builder); everything else an object with .name.
            name, value = (obj, builder) if builder is not None else (obj.name, obj)
            if name not in reg.items:
                reg.items[name] = value
                reg.owner[name] = _owner

        impl.function(register=register)
    _registries[kind] = reg
    return reg


def reset() -> None:
    """Forget cached registries (tests register and unregister inline plugins)."""
    _registries.clear()


def describe() -> list[dict]:
    """What each loaded plugin provides, for ``gandiag plugins``."""
    load_plugins()
    provided: dict[str, dict[str, list[str]]] = {}
    for kind in _HOOKS:
        reg = registry(kind)
        for name, owner in reg.owner.items():
            provided.setdefault(owner, {}).setdefault(kind, []).append(name)
    dists = {pm.get_name(p): d for p, d in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(name)
        out.append({
            "name": name,
            "builtin": dist is None,
            "package": dist.project_name if dist else "gandiag",
            "version": dist.version if dist else _own_version(),
            "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
            "provides": provided.get(name, {}),
        })
    return sorted(out, key=lambda d: (not d["builtin"], d["name"]))


def plugin_versions() -> dict[str, str]:
    return {d["name"]: d["version"] for d in describe()}


def _own_version() -> str:
    from . import __version__

    return __version__
