"""Downloads stay correct when file locks do not work (NFS `nolock`, GPFS, Lustre without flock)."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import random
import socket
import time
from pathlib import Path

import pytest
from filelock import FileLock

import zoo
from zoo.store import download, integrity, locks, owners

DATA = random.Random(3).randbytes(2 * 1024 * 1024 + 5)
DIGEST = hashlib.sha256(DATA).hexdigest()


class _NoLock:
    """A lock that takes nothing, as on a file system whose locks are not coherent across machines."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def acquire(self, *args, **kwargs) -> None:
        return None

    def release(self, *args, **kwargs) -> None:
        return None


@pytest.fixture
def published(server):
    server.files["/w/model.pth"] = DATA
    return server, f"{server.url}/w/model.pth"


def _download_without_locks(url: str, dst: str, queue) -> None:
    locks.FileLock = _NoLock  # this child only: forked after the server started
    try:
        download.download(url, dst, sha256=DIGEST)
        queue.put("ok")
    except Exception as e:  # reported to the test, which fails on it
        queue.put(f"{type(e).__name__}: {e}")


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_many_processes_without_locks_install_only_the_verified_file(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("slow", 1.0), ("drop", 300_000), ("slow", 0.5), ("drop", 900_000)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    target = tmp_path / "m.pth"
    procs = [ctx.Process(target=_download_without_locks, args=(url, str(target), queue)) for _ in range(6)]
    try:
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
    finally:
        for p in procs:
            p.kill()
    assert results == ["ok"] * 6
    assert target.read_bytes() == DATA
    assert len(server.requests_for("/w/model.pth")) >= 2  # no lock kept them from downloading side by side
    assert _parts(tmp_path) == []  # every writer's part was installed or taken over, none left half-written
    assert integrity.verify(target, DIGEST)[0]


def _name(target: Path, host: str, pid: int) -> Path:
    return target.with_name(f"{target.name}.{host}.{pid}.abcdef.part")


def _dead_pid() -> int:
    child = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    child.start()
    child.join()
    return child.pid


def test_the_part_of_a_dead_writer_on_this_host_is_taken_over_and_resumed(published, tmp_path):
    server, url = published
    target = tmp_path / "m.pth"
    host = owners.host()
    _name(target, host, _dead_pid()).write_bytes(DATA[:700_000])
    assert zoo.download(url, target, sha256=DIGEST).read_bytes() == DATA
    assert server.requests_for("/w/model.pth")[0]["Range"] == "bytes=700000-"
    assert _parts(tmp_path) == []


def test_the_part_of_a_live_writer_is_left_alone(published, tmp_path):
    server, url = published
    target = tmp_path / "m.pth"
    alive = _name(target, owners.host(), os.getppid())  # pytest's parent: alive, and not us
    alive.write_bytes(b"another writer's bytes")
    assert zoo.download(url, target, sha256=DIGEST).read_bytes() == DATA
    assert "Range" not in server.requests_for("/w/model.pth")[0]
    assert alive.read_bytes() == b"another writer's bytes"


@pytest.mark.parametrize("stale", [False, True], ids=["recent", "quiet-past-ZOO_PART_STALE"])
def test_another_hosts_part_is_taken_over_only_once_it_has_been_quiet(
    published, tmp_path, monkeypatch, stale
):
    server, url = published
    monkeypatch.setenv("ZOO_PART_STALE", "600")
    target = tmp_path / "m.pth"
    other = _name(target, "elsewhere" if socket.gethostname() != "elsewhere" else "yonder", 4242)
    other.write_bytes(DATA[:500_000])
    if stale:
        old = time.time() - 601
        os.utime(other, (old, old))
    zoo.download(url, target, sha256=DIGEST)
    first = server.requests_for("/w/model.pth")[0]
    assert first.get("Range") == ("bytes=500000-" if stale else None)
    assert other.exists() is not stale


def test_a_bad_zoo_part_stale_is_one_clear_error(published, tmp_path, monkeypatch):
    _, url = published
    monkeypatch.setenv("ZOO_PART_STALE", "soon")
    with pytest.raises(zoo.ZooError, match="ZOO_PART_STALE='soon' is not a number of seconds"):
        zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)


def test_a_file_system_without_locks_is_detected_and_the_download_goes_on(published, tmp_path, monkeypatch):
    _, url = published

    def unsupported(self, *args, **kwargs):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(FileLock, "acquire", unsupported)
    monkeypatch.setattr(locks, "_warned_folders", set())
    with pytest.warns(UserWarning, match="does not support locks"):
        path = zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    assert path.read_bytes() == DATA


def test_a_long_wait_for_a_lock_says_who_holds_it_and_for_how_long(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(locks, "STILL_WAITING", 0.2)
    holder = locks.file_lock(tmp_path / "x.lock", what="x")
    holder.acquire()
    try:
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_wait_briefly, args=(str(tmp_path / "x.lock"),))
        child.start()
        child.join(30)
        assert child.exitcode == 0
    finally:
        holder.release()


def _wait_briefly(path: str) -> None:
    import contextlib
    import io
    import sys

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            locks.file_lock(path, what="x", timeout=0.7, show=True).acquire()
        except zoo.ZooError as e:
            text = err.getvalue()
            ok = "still waiting for x, held by pid" in text and "timed out after 0.7 s" in str(e)
            sys.exit(0 if ok else 1)
    sys.exit(2)
