"""Typed errors whose message is written for the person who will read it.

The CLI maps :class:`GandiagError` to one line on stderr and exit code 2; any
other exception is a bug in gandiag (or a plugin) and maps to exit code 3.
Library users catch :class:`GandiagError` to tell bad input from bugs.
"""

from __future__ import annotations


class GandiagError(Exception):
    """Bad usage or bad input: the message says what is wrong and what to do."""


class CheckpointError(GandiagError):
    """A checkpoint is missing, empty, corrupt, untrusted or of an unknown format."""


class GeneratorOutputError(GandiagError):
    """The generator produced something gandiag cannot evaluate (NaN, wrong shape...)."""


class NonFiniteOutput(GeneratorOutputError):
    """The generator's samples (or their features) hold NaN or Inf: a diverged model, which ``gandiag diagnose``
    reports as such; other output errors (a wrong shape, a flag that does not fit) are bad usage."""


class AmbiguousOutput(GeneratorOutputError):
    """A probe batch cannot decide a contract field (the output range, say): probe more, then ask for a flag."""


class DataError(GandiagError):
    """Real data or pre-generated samples cannot be read or are unusable."""


class FeatureExtractorError(GandiagError):
    """A feature extractor cannot be built, e.g. its weights are not on this machine."""


class PluginError(GandiagError):
    """A plugin registered something gandiag cannot use; the message names the plugin and what is wrong."""


class UnknownNameError(GandiagError):
    """A name (metric, real source, extractor...) that no plugin provides."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid) or '(none installed)'}")


# Documented exit codes (README, `gandiag --help`).
EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
