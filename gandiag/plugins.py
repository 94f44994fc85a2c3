"""The one plugin manager, and the registries filled through its hooks.

What a plugin registers is checked against one table, :data:`KINDS` (per kind:
the hook, the required and optional attributes, their types, how gandiag calls
each method); a bad registration is a :class:`~gandiag.errors.PluginError`,
one line naming the plugin, so the CLI exits 2. docs/plugins.md shows the same
table (:func:`requirements_markdown`). The first registration of a name wins:
third-party plugins before the built-ins, which are ``trylast``.

Built-in plugins (``gandiag.default_plugins``) are registered here directly;
everything else, the loaders under ``plugins/`` included, comes through the
``gandiag`` entry-point group. ``GANDIAG_PLUGINS=a,b`` restricts entry-point
loading to those names; ``GANDIAG_PLUGINS=`` (empty) disables it.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownNameError
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

MISSING = object()
NAME_RULE = "non-empty text without spaces, commas or control characters"
_BAD_NAME = re.compile(r"[\s,\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Attr:
    """One attribute a registered object must (or may) have."""

    name: str
    what: str  # "a bool: ...": said in the error a plugin author sees, and in docs/plugins.md
    check: Callable[[Any], bool]
    required: bool = True
    call: Optional[str] = None  # for methods: how gandiag calls it, e.g. "compute(ctx)"; its arguments are checked


@dataclass(frozen=True)
class Kind:
    """One kind of registration: the hook that fills it and what each registered object must have."""

    kind: str  # the registry's name, e.g. "metric"
    hook: str  # e.g. "register_metrics"
    call: str  # how a plugin calls the callback, e.g. "register(metric)"
    summary: str
    attrs: tuple

    @property
    def pair(self) -> bool:
        """Architectures register ``(name, builder)``; everything else one object with a ``name``."""
        return "," in self.call


def _is_name(v) -> bool:
    return isinstance(v, str) and bool(v) and not _BAD_NAME.search(v)


def _is_text(v) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_bool(v) -> bool:
    return isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_kinds(v) -> bool:
    """Names of registered sample kinds (gandiag.data.kinds): what an extractor says it takes."""
    known = registry("sample kind").names()
    return isinstance(v, (tuple, list, set, frozenset)) and bool(v) and all(k in known for k in v)


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _is_ndims(v) -> bool:
    return isinstance(v, (tuple, list)) and bool(v) and all(_is_count(d) for d in v)


def _is_names(v) -> bool:
    return isinstance(v, (tuple, list, set, frozenset)) and all(_is_name(k) for k in v)


def _name(**kw) -> Attr:
    return Attr("name", NAME_RULE, _is_name, **kw)


def _text(name: str, what: str, **kw) -> Attr:
    return Attr(name, f"a str: {what}", _is_text, **kw)


def _method(call: str, what: str, **kw) -> Attr:
    return Attr(call.split("(")[0], f"a method {call}{what}", callable, call=call, **kw)


# The one table of what each kind of registration needs: the validator below reads it, and so do
# docs/plugins.md (generated by requirements_markdown(); a test keeps the page in sync).
KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("sample kind", "register_sample_kinds", "register(kind)",
         "kinds of samples (images, points, a plugin's): their canonical batch, layouts and readers", (
        _name(),
        _text("description", "what the samples are and their canonical batch"),
        Attr("output_ndim", "an int > 0: the dimensions of a generator's output batch", _is_count),
        Attr("array_ndims", "a tuple of ints: the dimensions of the arrays read from files", _is_ndims),
        Attr("layouts", "a tuple of layout names, the canonical one first (what --layout takes)", _is_names),
        Attr("default_n", "an int > 0: samples an evaluation draws when -n is not given", _is_count),
        Attr("keep", "an int > 0 or None: generated samples kept for reports (None: all)",
             lambda v: v is None or _is_count(v)),
        _method("detect(contract, probe)", " -> the contract with this kind's fields filled from a probe batch"),
        _method("canonical(batch, contract)", " -> a generator's output batch in this kind's canonical form"),
        _method("from_array(arr, description, layout)", " -> a file's array as a canonical batch of samples"),
    )),
    Kind("loader", "register_loaders", "register(loader)",
         "checkpoint loaders: the first whose `sniff` says yes loads the file", (
        _name(),
        _text("description", "what files it reads, shown when no loader can read a file"),
        _method("sniff(path)", " -> bool: cheap, may this loader read `path` (a `pathlib.Path`)?"),
        _method("load(path, options)", " -> `LoadedGenerator`; `options` is a `LoadOptions`"),
    )),
    Kind("real source", "register_real_sources", "register(source)", "real-data sources, chosen by `--real SPEC`", (
        _name(),
        _text("description", "what data it gives"),
        _method("matches(spec)", " -> bool: does this source take `--real spec`?"),
        _method("load(spec, n, seed)", " -> `SampleSet`; `n` may be None (all, or a default)"),
        Attr("default_extractor", "a feature extractor's name, or None: the one used on this data when none is named",
             lambda v: v is None or _is_name(v), required=False),
    )),
    Kind("feature extractor", "register_feature_extractors", "register(spec)",
         "feature extractors: an `ExtractorSpec`, or any object with the same attributes", (
        _name(),
        _text("description", "what network and which features"),
        Attr("kinds", "a tuple of the sample kinds it takes (registered names: 'images', 'points'...)", _is_kinds),
        _method("build(weights_path, device)", " -> a `FeatureExtractor` (see `gandiag.FeatureExtractor`)"),
    )),
    Kind("metric", "register_metrics", "register(metric)", "metrics computed from the shared features", (
        _name(),
        _text("label", "the name people read, e.g. 'FID'"),
        _text("role", "the feature role it reads, 'pool' or 'logits'"),
        Attr("needs_real", "a bool: whether it compares with real data", _is_bool),
        Attr("higher_is_better", "a bool: which way is better", _is_bool),
        _method("compute(ctx)", " -> {'value': float, ...}; `ctx` is a `MetricContext`"),
        _text("description", "one line on what it measures", required=False),
    )),
    Kind("diagnostic", "register_diagnostics", "register(diagnostic)",
         "diagnostics that give a verdict and its reasons", (
        _name(),
        _method("applies(ctx)", " -> bool: can it judge these samples? `ctx` is an `EvalContext`"),
        _method("run(ctx)", " -> {'verdict': str, 'reasons': [reason(...), ...], ...}"),
        _text("description", "one line on what it checks", required=False),
        Attr("levels", "a tuple of its verdict words, best first, worst last: how the report colours them",
             lambda v: isinstance(v, (tuple, list)) and bool(v) and all(_is_text(x) for x in v), required=False),
    )),
    Kind("report section", "register_report_sections", "register(section)", "sections of the HTML report", (
        _name(),
        _text("title", "the section's heading"),
        _method("render(view)", " -> an HTML fragment (str) or None; `view` is a `RunView` (or a `ComparisonView`)"),
        Attr("order", "a number: sections are sorted by it (built-ins 5 to 100; default 500)", _is_number,
             required=False),
        Attr("scope", "'run' (once per run, the default) or 'comparison' (once, when several runs are compared)",
             lambda v: v in ("run", "comparison"), required=False),
    )),
    Kind("architecture", "register_architectures", "register(name, builder)",
         "networks that gandiag checkpoints name instead of pickling them", (
        _name(),
        Attr("builder", "a callable builder(**kwargs) -> torch.nn.Module: a class or a function", callable),
    )),
)}
COMMAND_HOOK = "register_commands"  # register_commands(cli): click commands, nothing registered in a registry


def hook_kind(hook: str) -> str:
    """The kind of registration a hook fills: ``hook_kind("register_metrics") == "metric"``."""
    return next(k.kind for k in KINDS.values() if k.hook == hook)


def _shown_value(v) -> str:
    if isinstance(v, type):
        return f"the class {v.__name__}"
    if callable(v):
        return f"{getattr(v, '__name__', type(v).__name__)}{_signature(v)}"
    t = type(v).__name__
    return f"{shown(repr(v), 60)} ({'an' if t[0] in 'aeiouAEIOU' else 'a'} {t})"


def _signature(fn) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _accepts(fn, call: str) -> bool:
    """Can ``fn`` be called the way gandiag calls it (``call``, e.g. "load(spec, n, seed)")?"""
    args = [a for a in call[call.index("(") + 1:-1].split(",") if a.strip()]
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and C callables: nothing to check
        return True
    try:
        sig.bind(*args)
    except TypeError:
        return False
    return True


def check_registration(kind: Kind, owner: str, get: Callable[[str], Any], what: str) -> None:
    """Raise a one-line PluginError naming ``owner`` and the first thing wrong with one registration.

    ``get(attr)`` reads an attribute of what was registered (MISSING when absent); ``what``
    says what it is when it has no valid name yet, e.g. "a metric (MeanNorm)".
    """
    name = get("name")
    subject = f"{kind.kind} {name!r}" if _is_name(name) else what
    for attr in kind.attrs:
        value = get(attr.name)
        if value is MISSING:
            if attr.required:
                raise PluginError(f"plugin {owner!r} registered {subject} without {attr.name!r} ({attr.what})")
            continue
        if not attr.check(value):
            raise PluginError(f"plugin {owner!r} registered {subject} whose {attr.name!r} is {_shown_value(value)}; "
                              f"it must be {attr.what}")
        if attr.call and not _accepts(value, attr.call):
            raise PluginError(f"plugin {owner!r} registered {subject} whose {attr.name!r} cannot be called as "
                              f"{attr.call}: it takes {_signature(value)}")


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


def requirements_markdown() -> str:
    """The hooks-and-attributes reference of docs/plugins.md, generated from :data:`KINDS`."""
    out = []
    for k in KINDS.values():
        out += [f"### `{k.hook}(register)`", "", f"{k.summary[0].upper()}{k.summary[1:]}. Call `{k.call}`"
                + ("." if k.pair else f", where the {k.call[9:-1]} has:"), "",
                "| attribute | required | must be |", "| --- | --- | --- |"]
        for a in k.attrs:
            out.append(f"| `{a.call or a.name}` | {'yes' if a.required else 'no'} | {a.what.replace('|', '&#124;')} |")
        out.append("")
    return "\n".join(out)


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
