"""Where a benchmark's results go: ``benchmarks/results/STEM.json`` (the rows as data) and ``STEM.md`` (the table the
README and docs quote), written together; and the table printed, so a run shows what it wrote."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(folder, stem: str, payload: dict, markdown: str) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n")
    (folder / f"{stem}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    print(markdown)
    return folder / f"{stem}.md"
