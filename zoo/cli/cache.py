"""`zoo fetch` and `zoo cache {dir,ls,verify,rm,prune}`: the weight cache from the command line."""

from __future__ import annotations

import argparse
import sys
import time

from .. import registry
from ..errors import ZooError
from ..store import integrity, paths
from ..weights import copies, housekeeping, manifest
from ..weights import files as weight_files
from ..weights.housekeeping import human_size
from ..weights.manifest import Weights
from .command import Subcommands, add_command, add_group, emit, table


def _wanted(name: str, every: bool) -> list[Weights]:
    """The weights one `zoo fetch` argument names: a key, or a model's default (every one with --all)."""
    m = manifest.load()
    if name in m.weights or "." in name:
        return [registry.get_weights(name)]
    arch = registry.canonical_name(name)
    if every:
        return m.for_arch(arch)
    if (default := m.default_for(arch)) is not None:
        return [default]
    raise ZooError(f"{arch} has no default weights; `zoo info {arch}` lists them")


def _failure(name: str, error: ZooError) -> dict[str, str]:
    # One line per failure, so that each name's outcome reads (and greps) on its own.
    message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return {"name": name, "error": message if name in message else f"{name}: {message}"}


def register(sub: Subcommands) -> None:
    """Add `fetch` and `cache` to the CLI's subcommands."""

    def fetch(args: argparse.Namespace) -> int:
        # Every name is tried: one failure (a typo, a dead URL) neither hides the others nor stops them.
        done: list[dict[str, str]] = []
        failed: list[dict[str, str]] = []
        for name in args.names:
            try:
                wanted = _wanted(name, args.all)
            except ZooError as e:
                failed.append(_failure(name, e))
                if not args.json:
                    print(f"zoo: error: {failed[-1]['error']}", file=sys.stderr)
                continue
            for w in wanted:
                if any(d["key"] == w.key for d in done):
                    continue
                try:
                    # Every file the weights need (the book's NeuralTalk2: decoder, vocabulary, encoder).
                    found = weight_files.verified_files(w, progress=None)
                except ZooError as e:
                    failed.append(_failure(w.key, e))
                    if not args.json:
                        print(f"zoo: error: {failed[-1]['error']}", file=sys.stderr)
                    continue
                path = found.pop("weights")
                weight_files.prepare_copy(path)  # so the first load maps safetensors too
                done.append(
                    {
                        "key": w.key,
                        "path": str(path),
                        **({"files": {k: str(p) for k, p in found.items()}} if found else {}),
                    }
                )
                if not args.json:
                    print(f"{w.key}  {path}")
                    for role, other in found.items():
                        print(f"{w.key}:{role}  {other}")
        if args.json:
            emit(args, {"fetched": done, "failed": failed}, "")
        return 1 if failed else 0

    def cache_dir(args: argparse.Namespace) -> int:
        emit(args, {"home": str(paths.home()), "weights": str(paths.weights_dir())}, str(paths.home()))
        return 0

    def cache_ls(args: argparse.Namespace) -> int:
        files = housekeeping.scan()
        data = [
            {
                "file": f.path.name,
                "keys": f.keys,
                "size": f.size,
                "copy_size": f.copy_size,
                "verified": f.state(),
                "last_used": time.strftime("%Y-%m-%d %H:%M", time.localtime(f.last_used)),
            }
            for f in files
        ]
        rows = [
            [
                ", ".join(d["keys"]) or "-",
                d["file"],
                human_size(d["size"]),
                human_size(d["copy_size"]) if d["copy_size"] else "-",
                d["verified"],
                d["last_used"],
            ]
            for d in data
        ]
        total = f"{len(files)} files, {human_size(sum(f.total for f in files))} in {paths.weights_dir()}"
        heads = ["key", "file", "size", "safetensors copy", "verified", "last used"]
        text = table(rows, heads) + "\n" + total if rows else total
        emit(args, data, text)
        return 0

    def cache_verify(args: argparse.Namespace) -> int:
        files = (
            [f for name in args.names for f in housekeeping.find(name)] if args.names else housekeeping.scan()
        )
        if args.names and not files:
            raise ZooError(f"nothing cached for {', '.join(args.names)}; `zoo cache ls` shows the cache")
        results, bad = [], 0
        for f in files:
            state = f.state(rehash=True)
            deleted = None
            if state == "bad":
                bad += 1
                # Hashed afresh again under the lock before it goes; a read-only cache keeps it (it is still
                # never used: every load verifies first).
                deleted = weight_files.discard_if_bad(f.path, f.expected())
            pinned = state == "partial" and args.pin
            if pinned:
                for w in f.entries:
                    try:
                        integrity.pin(w.key, integrity.digest(f.path))
                    except OSError as e:
                        raise paths.cannot_write(
                            paths.home() / "pins.json", e, doing="record a pin in"
                        ) from None
                state = "ok (pinned)"
            copy = copies.check(f.path)
            if copy == "bad" or deleted:  # a copy is only ever rewritten from a good source
                try:
                    housekeeping.remove_copy(f.path)
                except ZooError:  # a read-only cache: kept, and never used (every load verifies it)
                    copy = "bad, kept" if copy == "bad" else copy
            results.append(
                {"file": f.path.name, "keys": f.keys, "state": state, "deleted": deleted, "copy": copy}
            )
        lines = [
            f"{r['state']:<12} {r['file']}"
            + {True: " (deleted)", False: " (kept: cannot delete it here)", None: ""}[r["deleted"]]
            + {
                "bad": " (its safetensors copy was bad: deleted, made again on the next load)",
                "bad, kept": " (its safetensors copy is bad, kept: cannot delete it here; it is never used)",
            }.get(r["copy"], "")
            for r in results
        ]
        lines.append(f"{len(results)} files checked, {bad} bad")
        emit(args, results, "\n".join(lines))
        return 1 if bad else 0

    def cache_rm(args: argparse.Namespace) -> int:
        removed = []
        for name in args.names:
            found = housekeeping.find(name)
            if not found:
                raise ZooError(f"nothing cached for {name!r}; `zoo cache ls` shows the cache")
            for f in found:
                housekeeping.remove(f)
                removed.append(f.path.name)
        emit(args, removed, "\n".join(f"removed {n}" for n in removed))
        return 0

    def cache_prune(args: argparse.Namespace) -> int:
        try:
            limit = housekeeping.parse_size(args.max_size)
        except ValueError as e:
            raise ZooError(str(e)) from None
        removed = housekeeping.prune(limit, dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        lines = [f"{verb} {f.path.name} ({human_size(f.total)})" for f in removed]
        lines.append(f"{verb} {len(removed)} files, {human_size(sum(f.total for f in removed))}")
        emit(args, [f.path.name for f in removed], "\n".join(lines))
        return 0

    p = add_command(
        sub, "fetch", fetch, "download weights ahead of time (a model's default, or weights keys)"
    )
    p.add_argument("names", nargs="+", metavar="MODEL|KEY")
    p.add_argument(
        "--all", action="store_true", help="every weights of the named models, not only the default"
    )

    csub = add_group(sub, "cache", "inspect and trim the weight cache")
    add_command(csub, "dir", cache_dir, "print the zoo home (ZOO_HOME, else the user cache dir)")
    add_command(csub, "ls", cache_ls, "list cached weight files: key, size, verified, last used")
    p = add_command(csub, "verify", cache_verify, "re-hash cached files; delete those that fail")
    p.add_argument("names", nargs="*", metavar="MODEL|KEY|FILE")
    p.add_argument(
        "--pin", action="store_true", help="record full hashes of files whose entry knows a prefix"
    )
    p = add_command(csub, "rm", cache_rm, "remove cached files")
    p.add_argument("names", nargs="+", metavar="MODEL|KEY|FILE")
    p = add_command(csub, "prune", cache_prune, "remove least recently used files down to a size")
    p.add_argument("--max-size", required=True, help="e.g. 500M, 2G, 0")
    p.add_argument("--dry-run", action="store_true", help="only show what would be removed")
