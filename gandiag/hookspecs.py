"""The hooks a gandiag plugin can implement, and what each hook's registrations must have.

Every hook but ``register_commands`` hands the plugin a ``register`` callback:
the host, not the plugin, decides what a valid registration is: each one is
checked against :data:`KINDS` (per kind: the hook, the required and optional
attributes, their types, how gandiag calls each method) and a bad one is a
:class:`gandiag.PluginError` naming the plugin. docs/plugins.md shows the same
table (:func:`requirements_markdown`; a test keeps the page in sync). The
first registration of a name wins. Built-in plugins are marked ``trylast``, so a
third-party plugin registering the same name replaces the built-in one.
Implementations may take fewer arguments than the spec (pluggy allows it), so
specs can grow without breaking plugins.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pluggy

from .errors import PluginError
from .safety.untrusted import shown

hookspec = pluggy.HookspecMarker("gandiag")
hookimpl = pluggy.HookimplMarker("gandiag")


@hookspec
def register_sample_kinds(register):
    """Register kinds of samples: ``register(kind)``.

    A kind (see :mod:`gandiag.data.kinds`) has ``name``, ``description``,
    ``output_ndim``, ``array_ndims``, ``layouts`` (canonical first),
    ``default_n``, ``keep``, ``detect(contract, probe)``,
    ``canonical(batch, contract)`` and ``from_array(arr, description, layout)``.
    Extractors name the kinds they take; a new kind of sample is added here.
    """


@hookspec
def register_loaders(register):
    """Register checkpoint loaders: ``register(loader)``.

    A loader has ``name``, ``description``, ``sniff(path) -> bool`` (cheap: may
    it read this file?) and ``load(path, options) -> gandiag.LoadedGenerator``
    (``options``: a :class:`gandiag.LoadOptions`).
    """


@hookspec
def register_real_sources(register):
    """Register real-data sources: ``register(source)``.

    A source has ``name``, ``description``, ``matches(spec) -> bool`` and
    ``load(spec, n, seed) -> gandiag.SampleSet``; optionally ``default_extractor``.
    """


@hookspec
def register_feature_extractors(register):
    """Register feature extractors: ``register(spec)``, a :class:`gandiag.ExtractorSpec`.

    ``spec.build(weights_path, device)`` returns a :class:`gandiag.FeatureExtractor`.
    """


@hookspec
def register_metrics(register):
    """Register metrics computed from shared features: ``register(metric)``.

    A metric has ``name``, ``label``, ``role``, ``needs_real``, ``higher_is_better``
    and ``compute(ctx)`` (``ctx``: a :class:`gandiag.MetricContext`); see
    :class:`gandiag.Metric`.
    """


@hookspec
def register_diagnostics(register):
    """Register diagnostics (mode collapse, gradient health...): ``register(diagnostic)``.

    A diagnostic has ``name``, ``applies(ctx) -> bool`` and ``run(ctx) -> dict``
    with a ``verdict`` and ``reasons`` (built with :func:`gandiag.reason`).
    """


@hookspec
def register_report_sections(register):
    """Register HTML report sections: ``register(section)``.

    A section has ``name``, ``title`` and ``render(view)`` (``view``: a
    :class:`gandiag.RunView`), optionally ``order``, ``scope`` and ``kinds``.
    """


@hookspec
def register_architectures(register):
    """Register generator/discriminator architectures: ``register(name, builder)``.

    gandiag checkpoints name their architecture instead of pickling code, so a
    checkpoint loads with ``weights_only=True``; ``builder(**kwargs)`` returns
    an ``nn.Module`` whose state dict the checkpoint holds.
    """


@hookspec
def register_commands(cli):
    """Add click commands to the ``gandiag`` CLI group."""


# ----------------------------------------------------------------------------- what each hook's registrations need

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
    from .plugins import registry

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
        Attr("metric_labels", "a dict of text to text: the labels people should read for metrics on these features "
             "(`{'FID': 'FD'}`)", lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str)
                                                                          for k, x in v.items()), required=False),
        Attr("takes_weights", "a bool (default True); False for a model-free extractor: `--feature-weights` for it "
             "is refused, not ignored", _is_bool, required=False),
    )),
    Kind("metric", "register_metrics", "register(metric)", "metrics computed from the shared features", (
        _name(),
        _text("label", "the name people read, e.g. 'FID'"),
        _text("role", "the feature role it reads, 'pool' or 'logits'"),
        Attr("needs_real", "a bool: whether it compares with real data", _is_bool),
        Attr("higher_is_better", "a bool: which way is better", _is_bool),
        _method("compute(ctx)", " -> {'value': float, ...}; `ctx` is a `MetricContext`"),
        _text("description", "one line on what it measures", required=False),
        Attr("real_statistics_suffice", "a bool: the real data's mean and covariance are all it reads (FID), so it "
             "runs against published statistics (`--real stats.npz`); default False: recorded as not applicable there",
             _is_bool, required=False),
    )),
    Kind("diagnostic", "register_diagnostics", "register(diagnostic)",
         "diagnostics that give a verdict and its reasons", (
        _name(),
        _method("applies(ctx)", " -> bool: can it judge these samples? `ctx` is an `EvalContext`"),
        _method("run(ctx)", " -> {'verdict': str, 'reasons': [reason(...), ...], ...}"),
        _text("description", "one line on what it checks", required=False),
        Attr("levels", "a tuple of its verdict words, best first, worst last: how the report colours them, and "
             "what gates accept (an allow/deny word outside them is refused; a verdict outside them fails the gate)",
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
        Attr("kinds", "a tuple of the sample kinds it applies to (default: every kind); for other runs it does not "
             "appear", lambda v: v is None or (isinstance(v, (tuple, list)) and all(_is_text(x) for x in v)),
             required=False),
        _method("applies(view)", " -> bool: does this run have the section at all (default: yes); asked after "
                "`kinds`", required=False),
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
