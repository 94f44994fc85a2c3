"""The hooks a gandiag plugin can implement.

Every hook but ``register_commands`` hands the plugin a ``register`` callback:
the host, not the plugin, decides what a valid registration is: each one is
checked against :data:`gandiag.plugins.KINDS` (required attributes and their
types) and a bad one is a :class:`gandiag.PluginError` naming the plugin. The
first registration of a name wins. Built-in plugins are marked ``trylast``, so a
third-party plugin registering the same name replaces the built-in one.
Implementations may take fewer arguments than the spec (pluggy allows it), so
specs can grow without breaking plugins.
"""

from __future__ import annotations

import pluggy

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
    :class:`gandiag.RunView`), optionally ``order`` and ``scope``.
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
