"""Per-weight figures (accuracy, parameters, GFLOPS, file size) and the accuracy plots drawn from them.

`zoo list --sort/--json/--plot` and `scripts/generate_model_cards.py` (the plots that open docs/models.md)
share these. matplotlib is an optional extra (`pip install zoo-hub[examples]`), imported only to plot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ZooError
from .manifest import Weights

SORT_KEYS = {"name": "name", "acc1": "acc@1", "acc5": "acc@5", "params": "num_params", "gflops": "gflops"}
SORT_KEYS["size"] = "file_size_mib"


def facts(w: Weights) -> dict[str, Any]:
    """The figures of one weight file that people compare models by (None where unknown)."""
    metrics = next(iter(w.meta.get("metrics", {}).values()), {})
    metrics = metrics if isinstance(metrics, dict) else {}
    size = w.size / 2**20 if w.size else w.meta.get("file_size_mb")
    return {
        "key": w.key,
        "family": w.meta.get("family", w.arch),
        "acc@1": _number(metrics.get("acc@1")),
        "acc@5": _number(metrics.get("acc@5")),
        "num_params": _number(w.meta.get("num_params")),
        "gflops": _number(w.meta.get("gflops")),
        "file_size_mib": round(size, 1) if isinstance(size, (int, float)) else None,
        "license": w.meta.get("license"),
        "recipe": w.meta.get("recipe"),
        "sha256": "prefix" if w.sha256_is_prefix else "full",
    }


def _number(value: Any) -> float | int | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def sort_value(fact: dict[str, Any], key: str) -> tuple[int, Any]:
    """A sort key putting the best first: names ascending, figures descending, unknown figures last."""
    if key == "name":
        return (0, fact["key"])
    value = fact.get(SORT_KEYS[key])
    return (1, 0) if value is None else (0, -value)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indexes of the points no other point beats (lower cost and higher accuracy), cheapest first."""
    best, front = -math.inf, []
    for i in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if points[i][1] > best:
            best = points[i][1]
            front.append(i)
    return front


def plot_accuracy(weights: Iterable[Weights], path: str | os.PathLike, *, against: str = "gflops") -> Path:
    """Draw ImageNet acc@1 against `against` ("gflops" or "num_params"), one point per weight file,
    families coloured, the Pareto front marked; write it to `path` (PNG or SVG by its suffix)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ZooError(
            "plotting needs matplotlib: pip install 'zoo-hub[examples]' (or pip install matplotlib)"
        ) from None
    rows = [f for f in map(facts, weights) if f["acc@1"] is not None and f[against] is not None]
    if not rows:
        raise ZooError("none of these weights has both an ImageNet acc@1 and a figure to plot it against")
    fig, ax = plt.subplots(figsize=(9, 6), dpi=100)
    families = sorted({f["family"] for f in rows})
    colours = plt.get_cmap("tab20")
    for i, family in enumerate(families):
        mine = [f for f in rows if f["family"] == family]
        ax.scatter(
            [f[against] for f in mine],
            [f["acc@1"] for f in mine],
            s=22,
            color=colours((2 * i) % 20 + (2 * i) // 20 % 2),
            label=family,
        )
    points = [(f[against], f["acc@1"]) for f in rows]
    front = pareto(points)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "k--", lw=1, label="Pareto front")
    for i in front:
        ax.annotate(rows[i]["key"], points[i], fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPS per image (log scale)" if against == "gflops" else "parameters (log scale)")
    ax.set_ylabel("ImageNet-1K acc@1 (%)")
    ax.set_title(f"{len(rows)} weight files: accuracy against {'compute' if against == 'gflops' else 'size'}")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    # Fixed metadata, so that regenerating the same figure writes the same bytes (the sync test compares).
    fig.savefig(out, metadata={"Software": None} if out.suffix == ".png" else {"Date": None})
    plt.close(fig)
    return out
