"""The results of an evaluation and their versioned JSON form.

The JSON schema is documented in docs/results-schema.md; ``schema_version``
changes whenever a field changes meaning or disappears (adding fields does
not). Reports, gates and comparisons read only this JSON, so a saved result
can be re-reported or re-gated without re-running anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .atomic import write_text
from .errors import DataError

SCHEMA = "gandiag.results"
SCHEMA_VERSION = 1
METRIC_ORDER = ("fid", "kid", "is", "precision", "recall", "density", "coverage")
HUMAN_FEATURES = "inception-v3"  # metrics on other features are labelled, e.g. "FID [digits]"


@dataclass
class Results:
    metrics: dict  # name -> {"value", "label", "features", "std"?, "ci95"?, ...}
    generator: dict
    contract: Optional[dict]
    real: Optional[dict]
    provenance: dict
    diagnostics: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    # Not serialised: a few samples and the feature sets, for reports and diagnostics in-process.
    extras: dict = field(default_factory=dict, repr=False)
    gates: Optional[list] = None  # [{name, passed, message, value}] when quality gates were checked

    def value(self, name: str) -> float:
        return self.metrics[name]["value"]

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "metrics": self.metrics,
            "generator": self.generator,
            "contract": self.contract,
            "real": self.real,
            "diagnostics": self.diagnostics,
            "warnings": self.warnings,
            **({"gates": self.gates} if self.gates is not None else {}),
            "provenance": self.provenance,
        }

    def save(self, path) -> None:
        write_text(Path(path), json.dumps(_json_safe(self.to_json()), indent=2, allow_nan=False) + "\n")

    @classmethod
    def from_json(cls, d: dict) -> "Results":
        if d.get("schema") != SCHEMA:
            raise DataError("not a gandiag results file (missing \"schema\": \"gandiag.results\")")
        if not isinstance(d.get("schema_version"), int) or d["schema_version"] > SCHEMA_VERSION:
            raise DataError(f"results schema version {d.get('schema_version')!r} is newer than this gandiag reads ({SCHEMA_VERSION})")
        return cls(d.get("metrics", {}), d.get("generator", {}), d.get("contract"), d.get("real"),
                   d.get("provenance", {}), d.get("diagnostics", {}), d.get("warnings", []), gates=d.get("gates"))

    @classmethod
    def load(cls, path) -> "Results":
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_json(d)

    def summary(self) -> str:
        """A few lines for a terminal or a CI log."""
        lines = []
        g = self.generator
        lines.append(f"gandiag: {g.get('path', '?')} ({g.get('format', '?')})"
                     + (f" vs {self.real['source']}" if self.real else ""))
        p = self.provenance
        lines.append(f"  {p.get('num_samples')} samples, seed {p.get('seed')}, device {p.get('device')}, "
                     f"features {p.get('extractor', {}).get('name')}")
        for name in sorted(self.metrics, key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else 99, k)):
            m = self.metrics[name]
            text = f"{m['value']:.6g}"
            if "std" in m:
                text += f" ± {m['std']:.3g}"
            if "ci95" in m:
                text += f"  (95% CI {m['ci95'][0]:.4g}–{m['ci95'][1]:.4g})"
            lines.append(f"  {m.get('label', name):<24} {text}")
        for name, diag in self.diagnostics.items():
            if isinstance(diag, dict) and "verdict" in diag:
                fired = [r for r in diag.get("reasons", []) if not (isinstance(r, dict) and r.get("level") == "info")]
                reasons = "; ".join(r if isinstance(r, str) else r.get("message", str(r)) for r in fired[:3])
                facts = ""
                if diag.get("modes_total"):
                    facts = f" ({diag.get('modes_captured')}/{diag['modes_total']} modes"
                    if diag.get("high_quality_fraction") is not None:
                        facts += f", {diag['high_quality_fraction']:.1%} high quality"
                    facts += ")"
                lines.append(f"  {name:<24} {diag['verdict']}{facts}" + (f" — {reasons}" if reasons else ""))
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


def metric_label(label: str, extractor: str) -> str:
    return label if extractor == HUMAN_FEATURES else f"{label} [{extractor}]"


def _json_safe(obj: Any) -> Any:
    """Numbers that JSON cannot hold (NaN, Inf) become null: a reader sees 'no value', never a fake one."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _json_safe(obj.item())
    return obj
