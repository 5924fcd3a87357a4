"""`zoo list` and `zoo info`: the zoo's models and their weights."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import registry
from .._common import show_url
from ..errors import ZooError
from ..hub.specs import looks_like_spec
from ..weights import charts, files, manifest
from ..weights.manifest import Weights
from . import hub
from .command import Subcommands, add_command, emit, table


def _weights_info(w: Weights, default: str | None) -> dict[str, Any]:
    local = files.find_local(w)
    return {
        "key": w.key,
        "default": w.key == default,
        "file_name": w.file_name,
        "urls": [show_url(u) for u in w.urls],  # a signed or private URL's query and user part stay hidden
        "sha256": w.sha256,
        "sha256_is_prefix": w.sha256_is_prefix,
        "size": w.size,
        "num_params": w.meta.get("num_params"),
        "metrics": w.meta.get("metrics", {}),
        "num_categories": len(w.categories) if w.categories else None,
        "cached": str(local) if local else None,
    }


def cmd_list(args: argparse.Namespace) -> int:
    if args.pattern and looks_like_spec(args.pattern):
        return hub.cmd_list_repo(args)
    m = manifest.load()
    names = registry.list_models(args.pattern, pretrained=args.pretrained, exclude_filters=args.exclude)
    if (args.pattern or args.exclude or args.pretrained) and not names:
        what = f" {args.pattern!r}" if args.pattern else ""
        raise ZooError(f"no model matches{what}; `zoo list` shows them all")
    data = []
    for n in names:
        default = m.defaults.get(n)
        figures = [charts.facts(w) for w in m.for_arch(n)]
        data.append(
            {
                "name": n,
                "aliases": registry.aliases_of(n),
                "default_weights": default,
                "weights": [f["key"] for f in figures],
                "weights_meta": figures,
                # The default weights' figures stand for the model in the table and when sorting.
                "default_meta": next((f for f in figures if f["key"] == default), None),
            }
        )
    if args.sort != "name":
        data.sort(key=lambda d: charts.sort_value(d["default_meta"] or {"key": d["name"]}, args.sort))
    if args.plot:
        out = charts.plot_accuracy([w for n in names for w in m.for_arch(n)], args.plot, against=args.against)
        print(f"wrote {out}", file=sys.stderr)
    rows = []
    for d in data:
        f = d["default_meta"] or {}
        rows.append(
            [
                d["name"],
                d["default_weights"] or "-",
                str(len(d["weights"])),
                _fmt(f.get("acc@1"), "{:.2f}"),
                _fmt(f.get("num_params"), "{:.1f}", 1e-6),
                _fmt(f.get("gflops"), "{:.2f}"),
                _fmt(f.get("file_size_mib"), "{:.1f}"),
                ", ".join(d["aliases"]),
            ]
        )
    header = ["model", "default weights", "weights", "acc@1", "params (M)", "GFLOPS", "MiB", "aliases"]
    emit(args, data, table(rows, header))
    return 0


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else spec.format(value * scale)


def cmd_info(args: argparse.Namespace) -> int:
    name = registry.canonical_name(args.model)
    m = manifest.load()
    default = m.defaults.get(name)
    builder = registry.get_builder(name)
    doc = (builder.__doc__ or "").strip().splitlines()
    data = {
        "name": name,
        "aliases": registry.aliases_of(name),
        "summary": doc[0] if doc else "",
        "default_weights": default,
        "weights": [_weights_info(w, default) for w in m.for_arch(name)],
    }
    lines = [f"{name}: {data['summary']}"]
    if data["aliases"]:
        lines.append(f"aliases: {', '.join(data['aliases'])}")
    rows = []
    for w in data["weights"]:
        top1 = next((v.get("acc@1") for v in w["metrics"].values()), None)
        top1 = top1 if isinstance(top1, (int, float)) and not isinstance(top1, bool) else None
        rows.append(
            [
                w["key"] + (" *" if w["default"] else ""),
                w["file_name"],
                f"{w['size'] / 1e6:.1f} MB" if w["size"] is not None else "?",
                f"{top1:.2f}" if top1 is not None else "-",
                "yes" if w["cached"] else "no",
            ]
        )
    lines.append(
        table(rows, ["weights (* default)", "file", "size", "acc@1", "cached"])
        if rows
        else "no pretrained weights"
    )
    emit(args, data, "\n".join(lines))
    return 0


def register(sub: Subcommands) -> None:
    """Add `list` and `info`."""
    p = add_command(
        sub,
        "list",
        cmd_list,
        "list the zoo's models (optionally filtered, like 'resnet*'), or a hub repo's entry points",
    )
    p.add_argument("pattern", nargs="?", help="a pattern like 'resnet*', or a hub repo")
    p.add_argument("--pretrained", action="store_true", help="only models with known weights")
    p.add_argument(
        "--exclude", action="append", metavar="PATTERN", help="leave out the models matching (repeatable)"
    )
    p.add_argument(
        "--sort",
        choices=sorted(charts.SORT_KEYS),
        default="name",
        help="order by the default weights' figure, best first (acc1, acc5, params, gflops, size) or by name",
    )
    p.add_argument("--plot", metavar="OUT.png", help="also draw acc@1 against GFLOPS (needs matplotlib)")
    p.add_argument(
        "--against",
        choices=["gflops", "num_params"],
        default="gflops",
        help="what --plot puts on the x axis (default gflops)",
    )
    hub.add_remote_options(p)
    p = add_command(sub, "info", cmd_info, "show a model's weights, metrics and cache state")
    p.add_argument("model")
