"""`zoo publish` and `zoo check`: share a trained model as a hub repo entry, and review a hub repo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import ZooError
from .command import Subcommands, add_command, emit


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for field in ("license", "dataset", "source", "docs"):
        if getattr(args, field):
            meta[field] = getattr(args, field)
    if args.command_line:
        meta["training_command"] = args.command_line
    for item in args.metric or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ZooError(f"--metric {item!r}: use NAME=VALUE")
        try:
            meta.setdefault("metrics", {})[name] = float(value)
        except ValueError:
            raise ZooError(f"--metric {item!r}: {value!r} is not a number") from None
    return meta


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish a checkpoint: hashed safetensors file, manifest entry and, with --repo, a hub entry point."""
    from ..publish import hub_entry, publish  # torch and safetensors: only for this command

    # With --repo, the file and the manifest entry go into the repo unless told otherwise.
    in_repo = Path(args.repo) if args.repo else None
    out_dir = args.out_dir or (in_repo / "weights" if in_repo else Path("weights"))
    manifest = args.manifest or (
        in_repo / "weights_manifest.json" if in_repo else Path("weights_manifest.json")
    )

    w = publish(
        args.checkpoint,
        name=args.name,
        arch=args.arch,
        out_dir=out_dir,
        manifest=manifest,
        meta=_meta(args),
        base_url=args.base_url,
        default=True if args.default else None,
        repo=args.repo,
        entry=args.entry,
    )
    entry = hub_entry(w.key, args.name, args.entry) if args.repo else None
    info = {
        "key": w.key,
        "file": w.file_name,
        "sha256": w.sha256,
        "size": w.size,
        "repo": args.repo,
        "entry": entry,
    }
    text = f"published {w.key}: {out_dir}/{w.file_name} ({w.size} bytes, sha256 {w.sha256})"
    if args.repo:
        text += f"\nhub entry point {entry} in {args.repo}/hubconf.py"
    emit(args, info, text)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Review a hub repo: one line per problem on stderr, exit 1 if any."""
    from ..hub.check import check_repo  # imports torch

    problems = check_repo(args.repo, strict=args.strict)
    if args.json:
        emit(args, {"repo": args.repo, "problems": problems}, "")
    else:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{args.repo}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def register(sub: Subcommands) -> None:
    """Add `publish` and `check` to the CLI's subcommands."""
    p = add_command(sub, "publish", cmd_publish, "publish trained weights (and a hub entry point)")
    p.add_argument("checkpoint", help="a .pth/.safetensors state dict, or a `zoo finetune` output folder")
    p.add_argument(
        "--name",
        required=True,
        help="weights name, e.g. blobs (key <arch>.blobs); the arch's name or an alias of it, such as "
        "custom_model for mlp, also names the hub entry point",
    )
    p.add_argument(
        "--arch",
        help="the zoo architecture; when left out, the one the checkpoint's card or finetune folder records",
    )
    p.add_argument(
        "--entry",
        help="hub entry point name with --repo; when left out, --name if it names the arch "
        "(e.g. custom_model), else ARCH_NAME",
    )
    p.add_argument(
        "--out-dir", help="folder for the hashed file (default: REPO/weights with --repo, else weights)"
    )
    p.add_argument(
        "--manifest",
        help="manifest to add the entry to (default: REPO/weights_manifest.json, else weights_manifest.json)",
    )
    p.add_argument("--repo", help="also make this folder a hub repo with an entry point for the weights")
    p.add_argument("--default", action="store_true", help="make these the arch's default weights")
    p.add_argument("--base-url", help="where the file will be downloadable from (URL of its folder)")
    p.add_argument("--license")
    p.add_argument("--dataset")
    p.add_argument("--source")
    p.add_argument("--docs", help="one-line description (the entry point's docstring)")
    p.add_argument("--command", dest="command_line", help="the training command, for the model card")
    p.add_argument("--metric", action="append", metavar="NAME=VALUE")

    p = add_command(
        sub, "check", cmd_check, "review a hub repo (imports, dependencies, entry points, weights)"
    )
    p.add_argument("repo", help="a folder holding hubconf.py")
    p.add_argument(
        "--strict", action="store_true", help="also require full hashes and sizes of downloaded files"
    )
