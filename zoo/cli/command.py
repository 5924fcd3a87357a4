"""The one way to add a `zoo` command, and the output helpers every command shares."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from .._common import show_text

Command = Callable[[argparse.Namespace], int]
Subcommands = argparse._SubParsersAction


def add_command(
    sub: Subcommands, name: str, fn: Command, help: str, *, device: bool = False
) -> argparse.ArgumentParser:
    """Add command `name` running `fn(args)`; every command takes --json, tasks also --device.

    The command's --help shows `help` and each option's default.
    """
    p = sub.add_parser(
        name, help=help, description=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    if device:
        p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.set_defaults(func=fn)
    return p


def add_group(sub: Subcommands, name: str, help: str) -> Subcommands:
    """A command with actions of its own (`zoo cache ls`); add them with add_command."""
    p = sub.add_parser(name, help=help, description=help)
    return p.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print `data` as JSON with --json, else `text` (file names that are not UTF-8 shown escaped)."""
    print(json.dumps(data, indent=2) if args.json else printable(text))


def printable(text: str) -> str:
    """`text`, line by line, as a terminal may show it: bytes of file names that are not UTF-8 as `\\xNN`
    (print would fail on them), control and format characters from names zoo did not choose (ESC sequences,
    a carriage return, a line that imitates zoo's own) escaped; the line breaks of the text itself kept."""
    return "\n".join(show_text(line) for line in text.split("\n"))


def table(rows: list[list[str]], header: list[str]) -> str:
    """Rows as left-aligned columns under a header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)
