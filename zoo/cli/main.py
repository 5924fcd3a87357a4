"""The `zoo` command line. Exit status: 0 ok, 1 user error (one line on stderr), 2 usage.

Each command group lives in a module of its own with a `register(sub)` that adds its commands through
`command.add_command`. Commands import torch and torchvision only when they run, so `zoo --help` and the
cache and trust commands start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import ZooError
from . import cache, hub, models, publish, tasks
from .command import printable


def build_parser() -> argparse.ArgumentParser:
    """The `zoo` parser with every command."""
    parser = argparse.ArgumentParser(
        prog="zoo", description="A pretrained-model zoo and hub registry for PyTorch."
    )
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (models, hub, cache, tasks, publish):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; expected errors become one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZooError as e:
        print(f"zoo: error: {one_line(e)}", file=sys.stderr)
        if getattr(args, "json", False):  # scripts reading stdout still get JSON
            print(json.dumps({"error": str(e)}))
        return 1
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # only a command that ran distributed can have opened a group
            from .. import distributed

            distributed.close_for_command()


def one_line(error: BaseException) -> str:
    """An error's text as one printable line: its lines joined with "; ", and bytes of file names that are
    not UTF-8 (surrogate escapes) shown as \\xNN-style escapes instead of failing the print."""
    return printable("; ".join(line.strip() for line in str(error).splitlines() if line.strip()))


if __name__ == "__main__":
    sys.exit(main())
