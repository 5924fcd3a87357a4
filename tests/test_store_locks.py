"""store.locks: a wait says who holds the lock, ends after ZOO_LOCK_TIMEOUT, and a lock that cannot be made is
one clear error."""

from __future__ import annotations

import errno
import os
import socket
import threading

import pytest

import zoo
from zoo.errors import LockError, ZooError
from zoo.store import download, locks, paths


@pytest.fixture
def holder(tmp_path):
    """A lock on tmp_path/cache/m.pth.lock held by another thread until `release` is set."""
    path = tmp_path / "cache" / "m.pth.lock"
    taken, release = threading.Event(), threading.Event()

    def hold():
        with locks.file_lock(path, what="m.pth"):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(5)
    yield path, release
    release.set()
    thread.join(5)


@pytest.fixture
def held(holder):
    return holder[0]


def test_a_wait_that_times_out_names_the_holder_pid_and_host(held, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_LOCK_TIMEOUT", "0.2")
    with pytest.raises(LockError) as info, locks.file_lock(held, what="m.pth", show=True):
        pass
    who = f"held by pid {os.getpid()} on host {socket.gethostname()}"
    assert "timed out after 0.2 s waiting for m.pth" in str(info.value) and who in str(info.value)
    assert f"zoo: waiting for m.pth, {who} (up to 0.2 s)" in capsys.readouterr().err


def test_a_download_waiting_on_a_held_lock_ends_after_the_timeout(monkeypatch, server, tmp_path):
    target = tmp_path / "cache" / "m.pth"
    monkeypatch.setenv("ZOO_LOCK_TIMEOUT", "0.1")
    server.files["/m.pth"] = b"x"
    with locks.lock_for(target), pytest.raises(LockError, match="held by pid"):  # another holder of its lock
        zoo.download(f"{server.url}/m.pth", target)
    assert server.connections == 0


def test_an_endless_wait_says_so_on_a_terminal_and_ends_when_the_holder_does(holder, capsys):
    path, release = holder
    waiter = locks.file_lock(path, what="m.pth", show=True)  # no ZOO_LOCK_TIMEOUT: wait as long as it takes
    thread = threading.Thread(target=waiter.acquire, daemon=True)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()
    err = capsys.readouterr().err
    assert "zoo: waiting for m.pth, held by pid" in err and "as long as it takes; set ZOO_LOCK_TIMEOUT" in err
    release.set()
    thread.join(5)
    assert waiter.is_locked
    waiter.release()


def test_the_owner_sidecar_is_written_while_held_and_removed_after(tmp_path):
    path = tmp_path / "a.lock"
    with locks.file_lock(path, what="a"):
        assert locks.read_owner(path) == (os.getpid(), socket.gethostname())
    assert locks.read_owner(path) is None and not locks.owner_path(path).exists()


def test_locks_are_reentrant_per_object(tmp_path):
    lock = locks.file_lock(tmp_path / "a.lock", what="a", timeout=0.1)
    with lock, lock:
        assert lock.is_locked
    assert not lock.is_locked


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_lock_timeout_setting_is_one_clear_error_when_a_wait_needs_it(held, monkeypatch, value):
    monkeypatch.setenv("ZOO_LOCK_TIMEOUT", value)
    with pytest.raises(LockError, match=f"ZOO_LOCK_TIMEOUT={value!r} is not a number"):
        locks.file_lock(held, what="m.pth").acquire()


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_a_lock_that_cannot_be_created_is_one_error_naming_the_path(tmp_path, monkeypatch, code):
    def refuse(self, *args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(locks.FileLock, "acquire", refuse)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    path = paths.weights_dir() / "m.pth"
    with pytest.raises(LockError) as info:
        download.download("http://127.0.0.1:9/m.pth", path)
    assert str(path) + ".lock" in str(info.value) and os.strerror(code) in str(info.value)
    assert "ZOO_HOME" in str(info.value)


def test_a_lock_in_a_folder_that_cannot_be_created_is_one_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with (
        pytest.raises(ZooError, match=f"cannot create the folder {blocker}"),
        locks.file_lock(blocker / "sub" / "x.lock", what="x"),
    ):
        pass
