"""The hooks a gandiag plugin can implement.

Every hook but ``register_commands`` hands the plugin a ``register`` callback:
the host, not the plugin, decides what a valid registration is, and the first
registration of a name wins. Built-in plugins are marked ``trylast``, so a
third-party plugin registering the same name replaces the built-in one.
Implementations may take fewer arguments than the spec (pluggy allows it), so
specs can grow without breaking plugins.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("gandiag")
hookimpl = pluggy.HookimplMarker("gandiag")


@hookspec
def register_loaders(register):
    """Register checkpoint loaders: ``register(loader)``.

    A loader has ``name``, ``description``, ``sniff(path) -> bool`` (cheap: may
    it read this file?) and ``load(path, options) -> LoadedGenerator``. See
    :mod:`gandiag.generator.loading`.
    """


@hookspec
def register_real_sources(register):
    """Register real-data sources: ``register(source)``.

    A source has ``name``, ``description``, ``matches(spec) -> bool`` and
    ``load(spec, n, seed) -> Samples``. See :mod:`gandiag.data.sources`.
    """


@hookspec
def register_feature_extractors(register):
    """Register feature extractors: ``register(extractor_factory)``.

    See :class:`gandiag.features.FeatureExtractor`.
    """


@hookspec
def register_metrics(register):
    """Register metrics computed from shared features: ``register(metric)``.

    See :class:`gandiag.metrics.Metric`.
    """


@hookspec
def register_diagnostics(register):
    """Register diagnostics (mode collapse, gradient health...): ``register(diagnostic)``."""


@hookspec
def register_report_sections(register):
    """Register HTML report sections: ``register(section)``."""


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
