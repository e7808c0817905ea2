"""JSON Lines files, written whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Write to a temporary file, fsync, then rename: a crash never leaves half a file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
