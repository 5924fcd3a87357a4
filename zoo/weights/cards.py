"""A weight file's card: what it is (architecture, class names, preprocessing, metrics), kept with the file.

`zoo finetune` and `zoo publish` write the card into the safetensors file's own header metadata, as JSON under
one key (`zoo.card`), so any copy of the file keeps it. Files from before, and `.pth` files, may have a JSON
sidecar instead: `model.json` beside `model.safetensors` (what `zoo finetune` writes), or `<file>.json`.
A sidecar's fields win over the embedded card's (it is the one a user can edit).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

CARD_KEY = "zoo.card"
SIDECAR_MAX = 16 << 20  # bytes; a card with 10,000 class names is about 200 KB


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
            # Regular files only (a FIFO planted there would block the read forever), and small ones.
            if not stat.S_ISREG(candidate.stat().st_mode) or candidate.stat().st_size > SIDECAR_MAX:
                continue
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# What the known fields must hold; a card is advice written by whoever made the file, so a field of the
# wrong type (a hostile or hand-edited card) is left out rather than handed to the tasks.
_FIELDS: dict[str, Any] = {
    "arch": lambda v: isinstance(v, str) and bool(v),
    "key": lambda v: isinstance(v, str),
    "categories": _is_strings,
    "num_classes": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
    "transforms": lambda v: isinstance(v, dict) and isinstance(v.get("preset"), str),
    "kwargs": lambda v: isinstance(v, dict),
    "metrics": lambda v: isinstance(v, dict),
}


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """Everything known about a local weight file: its embedded card, updated by its JSON sidecar (known
    fields of the wrong type are dropped)."""
    card = {**embedded(path), **sidecar(path)}
    return {k: v for k, v in card.items() if k not in _FIELDS or _FIELDS[k](v)}
