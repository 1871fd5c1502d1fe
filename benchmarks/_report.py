"""The benchmarks' common ending: one JSON line on standard output, and the same in a file if asked."""

from __future__ import annotations

import json
from pathlib import Path


def emit_json(result: dict, json_out: str | None = None) -> None:
    """Print ``result`` as one JSON line; also write it to ``json_out`` when given."""
    line = json.dumps(result)
    print(line, flush=True)
    if json_out:
        Path(json_out).write_text(line + "\n")
