"""A weight file's card: what it is (architecture, class names, preprocessing, metrics), kept with the file.

`zoo finetune` and `zoo publish` write the card into the safetensors file's own header metadata, as JSON under
one key (`zoo.card`), so any copy of the file keeps it. Files from before, and `.pth` files, may have a JSON
sidecar instead: `model.json` beside `model.safetensors` (what `zoo finetune` writes), or `<file>.json`.
A sidecar's fields win over the embedded card's (it is the one a user can edit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CARD_KEY = "zoo.card"


def metadata(card: dict[str, Any]) -> dict[str, str]:
    """The safetensors `metadata=` that carries `card` (one key, so the header bytes are deterministic)."""
    return {CARD_KEY: json.dumps(card, sort_keys=True, allow_nan=False, separators=(",", ":"))}


def embedded(path: str | os.PathLike) -> dict[str, Any]:
    """The card stored in a safetensors file's header, or {} (other formats, no card, unreadable file)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        card = json.loads(meta.get(CARD_KEY, "{}"))
    except Exception:  # not a safetensors file after all, or a foreign card: no card
        return {}
    return card if isinstance(card, dict) else {}


def sidecar_paths(path: str | os.PathLike) -> list[Path]:
    """Where a JSON sidecar of `path` may be: `model.json` for `model.safetensors`, then
    `model.safetensors.json`."""
    path = Path(path)
    return [path.with_suffix(".json"), path.with_name(path.name + ".json")]


def sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The first readable JSON sidecar of `path` that holds an object, or {}."""
    for candidate in sidecar_paths(path):
        try:
            data = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """Everything known about a local weight file: its embedded card, updated by its JSON sidecar."""
    return {**embedded(path), **sidecar(path)}
