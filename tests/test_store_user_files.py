"""What zoo.download does to files of the user's: a `dst` that does not match is kept until a verified file
replaces it, no lock is left beside it, and a bad ZOO_LOCK_TIMEOUT is said at once."""

from __future__ import annotations

import hashlib
import os

import pytest

import zoo
from zoo.errors import DownloadError, IntegrityError, LockError
from zoo.store import download, locks, paths

DATA = b"new weights" * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()
MINE = b"the user's own file"


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setattr(download, "_sleep", lambda s: None)
    monkeypatch.setattr(download, "RETRIES", 1)


def test_a_file_that_does_not_match_survives_a_failed_download(server, tmp_path):
    mine = tmp_path / "out.bin"
    mine.write_bytes(MINE)
    with pytest.raises(DownloadError, match="HTTP 404"):
        zoo.download(f"{server.url}/missing.bin", mine, sha256=DIGEST)
    assert mine.read_bytes() == MINE


def test_a_file_that_does_not_match_survives_a_download_of_the_wrong_file(server, tmp_path):
    mine = tmp_path / "out.bin"
    mine.write_bytes(MINE)
    server.files["/f.bin"] = DATA + b"changed"
    with pytest.raises(IntegrityError):
        zoo.download(f"{server.url}/f.bin", mine, sha256=DIGEST)
    assert mine.read_bytes() == MINE and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "zoo_home"]


def test_a_file_url_that_is_dst_itself_is_never_deleted(tmp_path):
    mine = tmp_path / "out.bin"
    mine.write_bytes(MINE)
    with pytest.raises(IntegrityError):
        zoo.download(mine.as_uri(), mine, sha256=DIGEST)
    assert mine.read_bytes() == MINE


def test_a_file_that_does_not_match_is_replaced_by_a_verified_download(server, tmp_path):
    mine = tmp_path / "out.bin"
    mine.write_bytes(MINE)
    server.files["/f.bin"] = DATA
    assert zoo.download(f"{server.url}/f.bin", mine, sha256=DIGEST).read_bytes() == DATA


def test_no_lock_is_left_beside_a_file_outside_the_zoo_home(server, tmp_path):
    server.files["/f.bin"] = DATA
    out = tmp_path / "d1"
    out.mkdir()
    zoo.download(f"{server.url}/f.bin", out / "out.bin", sha256=DIGEST)
    assert sorted(p.name for p in out.iterdir()) == ["out.bin"]
    assert [p.suffix for p in (paths.home() / "locks").iterdir()] == [".lock"]


def test_a_file_in_the_zoo_cache_keeps_its_lock_beside_it(tmp_path):
    target = paths.weights_dir() / "m.pth"
    assert locks.lock_for(target).path == paths.weights_dir() / "m.pth.lock"


def test_every_spelling_of_a_folder_outside_the_home_shares_one_lock(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    one = locks.lock_for(tmp_path / "real" / "out.bin").path
    assert one.parent == paths.home() / "locks"
    assert locks.lock_for(tmp_path / "link" / "out.bin").path == one
    assert locks.lock_for(tmp_path / "real" / ".." / "real" / "out.bin").path == one
    assert locks.lock_for(tmp_path / "real" / "other.bin").path != one


def test_a_zoo_home_reached_through_a_link_still_keeps_locks_beside_cache_files(tmp_path, monkeypatch):
    (tmp_path / "disk").mkdir()
    (tmp_path / "home_link").symlink_to(tmp_path / "disk")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home_link"))
    target = tmp_path / "disk" / "weights" / "m.pth"
    assert locks.lock_for(target).path == target.with_name("m.pth.lock")


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_lock_timeout_is_said_at_once_without_contention(server, tmp_path, monkeypatch, value):
    monkeypatch.setenv("ZOO_LOCK_TIMEOUT", value)
    server.files["/f.bin"] = DATA
    with pytest.raises(LockError, match=f"ZOO_LOCK_TIMEOUT={value!r} is not a number"):
        zoo.download(f"{server.url}/f.bin", tmp_path / "out.bin")
    assert server.connections == 0 and not os.path.exists(tmp_path / "out.bin")
    with pytest.raises(LockError, match="is not a number"):
        locks.file_lock(tmp_path / "x.lock", what="x")
