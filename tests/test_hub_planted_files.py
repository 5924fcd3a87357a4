"""Things planted at the names of the hub's own small files in the zoo home (the trusted list, a repo's ref
index) or a zoo home that is not a folder: one HubError or StorageError naming the path, exit 1 with one line
from the CLI, never a hang on a FIFO, never a traceback, and the planted thing left as it was."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import zoo
from zoo.cli import main
from zoo.errors import HubError, StorageError
from zoo.hub import snapshots, trust
from zoo.hub.specs import parse_spec

# A read that blocks on a FIFO never returns; this is how long a test waits before calling it a hang.
HANG = 10.0


def within(seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), run on a thread: its result or its exception, or a failure if it does not end."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 (re-raised below, in the test's thread)
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} blocked for {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture
def plant() -> Iterator[Callable[[Path, str], Callable[[], object]]]:
    """Plant a thing of a kind at a path; returns a function that describes it now (to see it unchanged).
    FIFOs are opened for writing at the end, so a reader a failing test left blocked on one gets EOF."""
    fifos: list[Path] = []

    def make(path: Path, kind: str) -> Callable[[], object]:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
            fifos.append(path)
        elif kind == "folder":
            path.mkdir()
            (path / "keep.txt").write_text("mine")
        elif kind == "not utf-8":
            path.write_bytes(b"\xff\xfe alice/nets\n")
        elif kind == "link":
            target = path.parent.parent / "elsewhere.txt"
            target.write_text("alice/nets\n")
            path.symlink_to(target)
        elif kind == "huge":
            with open(path, "wb") as f:
                f.truncate(trust.TRUST_FILE_MAX + 1)
        else:
            raise AssertionError(kind)

        def describe() -> object:
            st = path.lstat()
            inside = sorted(p.name for p in path.iterdir()) if kind == "folder" else None
            return st.st_mode, st.st_ino, st.st_size, inside

        return describe

    yield make
    for fifo in fifos:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO: nobody is reading it


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert within(HANG, main, argv) == 1
    out, err = capsys.readouterr()
    assert err.startswith("zoo: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    # with --json, scripts reading stdout get the same error as JSON
    assert out == (json.dumps({"error": err[len("zoo: error: ") : -1]}) + "\n" if "--json" in argv else "")
    return err


KINDS = ["fifo", "folder", "not utf-8", "link", "huge"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_planted_trusted_list_is_one_error_for_every_trust_command(capsys, plant, kind):
    path = trust.trust_file()
    describe = plant(path, kind)
    before = describe()
    for argv in (["trust", "--list"], ["trust", "--list", "--json"], ["trust", "alice/nets"]):
        err = one_line_error(capsys, argv)
        assert str(path) in err and "remove it" in err
    err = one_line_error(capsys, ["trust", "--remove", "alice/nets"])
    assert str(path) in err
    with pytest.raises(HubError, match="remove it"):
        within(HANG, trust.trusted)
    assert describe() == before


@pytest.mark.parametrize("kind", ["fifo", "folder", "not utf-8"])
def test_a_planted_trusted_list_stops_a_remote_load_before_any_request(forge, capsys, plant, kind):
    describe = plant(trust.trust_file(), kind)
    before = describe()
    with pytest.raises(HubError, match=f"^{trust.trust_file()} "):
        within(HANG, zoo.load, "alice/nets", "version", trust_repo=True)
    err = one_line_error(capsys, ["load", "alice/nets", "version", "--trust"])
    assert str(trust.trust_file()) in err
    assert forge.requests == [] and describe() == before


def test_the_trusted_list_still_reads_and_writes_as_a_plain_file(capsys):
    assert trust.trusted() == [] and not trust.remove("alice/nets")
    assert trust.add("alice/nets") and not trust.add("alice/nets")
    trust.trust_file().write_text("# a comment\n\nalice/nets\n  bob/tools  \n")
    assert trust.trusted() == ["alice/nets", "bob/tools"]
    assert trust.remove("bob/tools") and trust.trusted() == ["alice/nets"]


def test_a_trusted_list_that_cannot_be_written_is_one_storage_error(monkeypatch):
    trust.add("alice/nets")
    # A read-only folder does not refuse root (who runs these tests in CI): the write itself is made to fail.
    monkeypatch.setattr(trust, "write_text_atomic", _failing_write)
    with pytest.raises(StorageError, match=f"^cannot write the trusted-repo list {trust.trust_file()}: "):
        trust.add("bob/tools")
    with pytest.raises(StorageError, match="make it writable"):
        trust.remove("alice/nets")
    assert trust.trusted() == ["alice/nets"]


def _failing_write(path: object, text: str, **kwargs: object) -> None:
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


@pytest.mark.parametrize("home", ["file", "/dev/null"])
def test_a_zoo_home_that_is_not_a_folder_is_one_line_for_trust_and_load(
    forge, capsys, monkeypatch, tmp_path, home
):
    if home == "file":
        home = tmp_path / "home-file"
        home.write_text("mine")
    monkeypatch.setenv("ZOO_HOME", str(home))
    for argv in (
        ["trust", "alice/nets"],
        ["trust", "--list"],
        ["trust", "--remove", "alice/nets"],
        ["load", "alice/nets", "version", "--trust"],
    ):
        err = one_line_error(capsys, argv)
        assert str(home) in err and "Traceback" not in err
    assert forge.requests == []
    if home != "/dev/null":
        assert Path(home).read_text() == "mine"


def index_of(forge) -> Path:
    return snapshots.repo_dir(parse_spec("alice/nets")) / snapshots.INDEX


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_planted_ref_index_is_one_error_not_a_hang_or_a_traceback(forge, capsys, plant, kind):
    index = index_of(forge)
    describe = plant(index, kind)
    before = describe()
    for offline in (False, True):
        with pytest.raises(
            HubError, match=f"^{index} is a {kind.replace('fifo', 'FIFO')}, not a ref index .* remove it$"
        ):
            within(HANG, zoo.load, "alice/nets:dev", "version", trust_repo=True, offline=offline)
    err = one_line_error(capsys, ["load", "alice/nets:dev", "version", "--trust"])
    assert str(index) in err
    assert forge.archive_requests() == [] and describe() == before
    # once it is removed, the repo loads and the index is zoo's again
    if kind == "folder":
        (index / "keep.txt").unlink()
        index.rmdir()
    else:
        index.unlink()
    assert zoo.load("alice/nets:dev", "version", trust_repo=True) == "dev"
    assert snapshots.read_index(index.parent) == {"dev": forge.commits["dev"]}


@pytest.mark.parametrize(
    "text", [b"\xff\xfe", b"{not json", b'{"refs": 5}', b'{"refs": {"dev": 5}}', b"[" * 100_000]
)
def test_a_damaged_ref_index_is_refetched_and_rewritten(forge, text):
    index = index_of(forge)
    index.parent.mkdir(parents=True)
    index.write_bytes(text)
    assert snapshots.read_index(index.parent) == {}
    assert zoo.load("alice/nets:dev", "version", trust_repo=True) == "dev"
    assert snapshots.read_index(index.parent) == {"dev": forge.commits["dev"]}


def test_a_ref_index_that_cannot_be_written_is_one_storage_error(forge, monkeypatch):
    monkeypatch.setattr(snapshots, "write_text_atomic", _failing_write)
    with pytest.raises(
        StorageError, match=f"^cannot write the ref index {index_of(forge)}: Permission denied"
    ):
        zoo.load("alice/nets:dev", "version", trust_repo=True)
