"""The `zoo` command line (console script `zoo.cli:main`)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
