"""`zoo classify -o preds.jsonl`: one record per image, the same file from one process or many, resumable.

The sorted inputs are cut into batch-aligned units (unit u: images u*B .. u*B+B-1), dealt round-robin over
the ranks (no padding, no image twice, no collective per batch). Each process appends each finished unit as one
JSON line to a part file of its own in `<out>.parts/`; a torn last line (a crash mid-write) is ignored. A restart
skips the units already in any part (whatever the world size was), after checking that the inputs and
settings are the ones recorded in `<out>.parts/job.json`. When every unit is done, one process merges the parts
in unit order into the output with one atomic rename, so the file is the single-process one byte for byte
(percentages are rounded to 1e-4 so that no float noise of a batch layout shows).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ImageError, InvalidArgumentError, ZooError
from .images import show_path
from .outputs import check_output_dir, make_output_dir, write_atomic

FORMATS = (".jsonl", ".csv")
Record = dict[str, Any]


def output_format(out: Path) -> str:
    """ "jsonl" or "csv" from the output's suffix (InvalidArgumentError for another)."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidArgumentError(f"-o {show_path(out)}: give a file name ending in .jsonl or .csv")
    return suffix[1:]


class Job:
    """The units of one output file, the part files that hold the finished ones, and the merge."""

    def __init__(
        self, out: str | os.PathLike, paths: Sequence[Path], batch_size: int, settings: dict
    ) -> None:
        self.out = Path(out)
        self.format = output_format(self.out)
        self.paths = list(paths)
        self.batch_size = batch_size
        self.parts = self.out.with_name(self.out.name + ".parts")
        # NUL cannot be part of a file name: two different lists never give the same text.
        listing = "\0".join(os.fsdecode(p) for p in self.paths).encode("utf-8", "surrogateescape")
        self.identity = {
            "inputs": len(self.paths),
            "inputs_sha256": hashlib.sha256(listing).hexdigest(),
            "batch_size": batch_size,
            **settings,
        }

    @property
    def units(self) -> int:
        return -(-len(self.paths) // self.batch_size)

    def prepare(self, *, restart: bool, leader: bool) -> None:
        """Check or create `<out>.parts/job.json` (only `leader` writes); refuse a job of other inputs or
        settings unless `restart`, which drops its parts."""
        check_output_dir(self.out.parent)
        record = self.parts / "job.json"
        if self.parts.is_symlink() or (os.path.lexists(self.parts) and not self.parts.is_dir()):
            raise ZooError(
                f"{show_path(self.parts)} is not a folder of zoo's (a link or a file): remove it, it is not written "
                "through"
            )
        if self.parts.is_dir():
            # A folder without this job's record (another job's, or a half-removed one) is never resumed from.
            try:
                recorded = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                recorded = None
            if recorded != self.identity:
                if not restart:
                    raise ZooError(
                        f"{show_path(self.parts)} holds a run with other inputs or settings; pass --restart to "
                        "drop it and start over"
                    )
                if leader:
                    shutil.rmtree(self.parts, ignore_errors=True)
        if leader:
            make_output_dir(self.parts, "parts folder")
            if not record.is_file():
                write_atomic(
                    record,
                    lambda tmp: Path(tmp).write_text(json.dumps(self.identity), encoding="utf-8"),
                    overwrite=True,
                )

    def finished(self) -> dict[int, list[Record]]:
        """The units already done, from every part file (a torn or foreign line is skipped)."""
        done: dict[int, list[Record]] = {}
        if not self.parts.is_dir():
            return done
        for part in sorted(self.parts.glob("rank-*.jsonl")):
            try:
                lines = part.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    unit = json.loads(line)
                    number, records = unit["unit"], unit["records"]
                except (ValueError, TypeError, KeyError):
                    continue  # the line a crash cut short
                if isinstance(number, int) and 0 <= number < self.units and isinstance(records, list):
                    done[number] = records
        return done

    def mine(self, rank: int, world_size: int) -> list[int]:
        """The units of `rank`, round-robin, without those already finished."""
        done = self.finished()
        return [u for u in range(rank, self.units, world_size) if u not in done]

    def run(
        self,
        classify: Callable[[list[Path]], Iterator[tuple[Path, Any]]],
        rank: int,
        world_size: int,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Classify this rank's unfinished units, appending each to `rank-<rank>.jsonl`; the number done."""
        todo = self.mine(rank, world_size)
        part = self.parts / f"rank-{rank}.jsonl"
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # never through a link
        try:
            fd = os.open(part, flags, 0o666)
        except OSError as e:
            raise ZooError(f"cannot write {show_path(part)}: {e.strerror or e}") from None
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                f.write("\n")  # end the line a crash cut short, so the next unit starts a line of its own
            for n, unit in enumerate(todo, 1):
                first = unit * self.batch_size
                chunk = self.paths[first : first + self.batch_size]
                records = [
                    _record(first + i, path, outcome) for i, (path, outcome) in enumerate(classify(chunk))
                ]
                # One write and a flush per unit: a crash leaves whole units and at most one torn line.
                f.write(json.dumps({"unit": unit, "records": records}, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
                if progress is not None:
                    progress(n, len(todo))
        return len(todo)

    def merge(self, *, overwrite: bool = False) -> dict[str, int]:
        """Write the output from the parts (every unit must be done), then drop the parts; a summary. An
        existing output is replaced only with `overwrite`."""
        done = self.finished()
        missing = [u for u in range(self.units) if u not in done]
        if missing:
            raise ZooError(
                f"{len(missing)} of {self.units} units are not finished (first: {missing[0]}); run again"
            )
        records = [r for u in range(self.units) for r in done[u]]
        text = _jsonl(records) if self.format == "jsonl" else _csv(records)
        write_atomic(self.out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), overwrite=overwrite)
        shutil.rmtree(self.parts, ignore_errors=True)
        errors = sum("error" in r for r in records)
        return {"images": len(records), "errors": errors, "units": self.units}


def _record(index: int, path: Path, outcome: Any) -> Record:
    if isinstance(outcome, ImageError):
        return {"index": index, "path": show_path(path), "error": str(outcome)}
    return {
        "index": index,
        "path": show_path(path),
        # Labels come from whoever made the weights: shown escaped, as `zoo classify` prints them.
        "predictions": [
            {"label": show_path(label), "percent": round(percent, 4)} for label, percent in outcome
        ],
    }


def _jsonl(records: list[Record]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _csv(records: list[Record]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    top = max((len(r.get("predictions", [])) for r in records), default=0)
    writer.writerow(
        ["index", "path", *[f"{k}{i}" for i in range(1, top + 1) for k in ("label", "percent")], "error"]
    )
    for r in records:
        cells = [c for p in r.get("predictions", []) for c in (_cell(p["label"]), f"{p['percent']:.4f}")]
        cells += [""] * (2 * top - len(cells))
        writer.writerow([r["index"], _cell(r["path"]), *cells, _cell(r.get("error", ""))])
    return buffer.getvalue()


def _cell(text: str) -> str:
    # A cell a spreadsheet would run as a formula (a file named `=HYPERLINK(...)`) is kept as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
