"""The one plugin manager, and the registries filled through its hooks.

What a plugin registers is checked against the table of
:mod:`gandiag.hookspecs` (:data:`~gandiag.hookspecs.KINDS`); a bad
registration is a :class:`~gandiag.errors.PluginError`, one line naming the
plugin, so the CLI exits 2. The first registration of a name wins:
third-party plugins before the built-ins, which are ``trylast``.

Built-in plugins (``gandiag.default_plugins``) are registered here directly;
everything else, the loaders under ``plugins/`` included, comes through the
``gandiag`` entry-point group. ``GANDIAG_PLUGINS=a,b`` restricts entry-point
loading to those names; ``GANDIAG_PLUGINS=`` (empty) disables it.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Optional

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownNameError
from .hookspecs import COMMAND_HOOK, KINDS, MISSING, Kind, check_registration
from .safety.untrusted import shown

DEFAULT_PLUGINS = (
    "gandiag.default_plugins.sample_kinds",
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
    "gandiag.default_plugins.watch_command",
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
        _load_entry_points()
    else:
        for name in filter(None, (n.strip() for n in wanted.split(","))):
            _load_entry_points(name)
    _registries.clear()
    check_hook_names()
    return pm


def _load_entry_points(name: Optional[str] = None) -> None:
    """Load ``gandiag`` entry points; one that fails to import or to register is a PluginError naming it."""
    try:
        pm.load_setuptools_entrypoints("gandiag", name=name)
    except Exception as exc:
        import importlib.metadata

        # pluggy loads in this order and stops at the failure: the first entry point not registered is the culprit.
        failed = next((ep.name for dist in importlib.metadata.distributions() for ep in dist.entry_points
                       if ep.group == "gandiag" and (name is None or ep.name == name)
                       and pm.get_plugin(ep.name) is None and not pm.is_blocked(ep.name)), name or "?")
        why = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginError(f"plugin {failed!r} (entry point of the 'gandiag' group) could not be loaded: "
                          f"{type(exc).__name__}: {shown(why, 300)}") from exc


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

def _registrar(kind: Kind, reg: Registry, owner: str) -> Callable:
    """The ``register`` callback handed to one plugin's hook: it validates, then stores (first name wins)."""

    def register(*args):
        if len(args) != (2 if kind.pair else 1):
            raise PluginError(f"plugin {owner!r} called register() with {len(args)} argument(s) in {kind.hook}; "
                              f"it takes {kind.call}")
        if kind.pair:
            name, value = args
            fields = {"name": name, "builder": value}
            check_registration(kind, owner, lambda a: fields.get(a, MISSING), f"an {kind.kind}")
        else:
            value = args[0]
            name = getattr(value, "name", MISSING)
            if isinstance(value, type):
                raise PluginError(f"plugin {owner!r} registered the class {value.__name__} as a {kind.kind}; "
                                  f"register an instance: register({value.__name__}())")
            check_registration(kind, owner, lambda a: getattr(value, a, MISSING),
                               f"a {kind.kind} ({type(value).__name__})")
        if name not in reg.items:
            reg.items[name] = value
            reg.owner[name] = owner

    return register


def check_hook_names() -> None:
    """A hook implementation whose name is no gandiag hook (a typo: ``register_metric``) is an error, not a no-op."""
    known = {k.hook for k in KINDS.values()} | {COMMAND_HOOK}
    for name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, name)
        if name.startswith("_") or name in known or not hasattr(caller, "get_hookimpls"):
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                raise PluginError(f"plugin {impl.plugin_name!r} implements {name!r}, which is not a gandiag hook; "
                                  f"the hooks are: {', '.join(sorted(known))}")


def registry(kind: str) -> Registry:
    """The registry of one kind of plugin object, filled (and validated) on first use."""
    load_plugins()
    if kind in _registries:
        return _registries[kind]
    check_hook_names()
    spec = KINDS[kind]
    reg = Registry(kind)
    hook = getattr(pm.hook, spec.hook)
    for impl in reversed(hook.get_hookimpls()):  # pluggy's call order: third-party first, trylast built-ins last
        impl.function(**({"register": _registrar(spec, reg, impl.plugin_name)} if impl.argnames else {}))
    _registries[kind] = reg
    return reg


def reset() -> None:
    """Forget cached registries (tests register and unregister inline plugins)."""
    _registries.clear()


def describe() -> list[dict]:
    """What each loaded plugin provides, for ``gandiag plugins``."""
    load_plugins()
    provided: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
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
