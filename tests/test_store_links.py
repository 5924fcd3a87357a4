"""Links planted in the cache are never followed for writing: the victim a link points at stays as it was."""

from __future__ import annotations

import hashlib
import os

import pytest

import zoo
from zoo.errors import LockError, StorageError
from zoo.store import integrity, locks, paths

DATA = bytes(range(256)) * 4096
DIGEST = hashlib.sha256(DATA).hexdigest()
VICTIM_TEXT = b"the user's own file, which zoo must never touch\n"


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_bytes(VICTIM_TEXT)
    return path


@pytest.fixture
def url(server):
    server.files["/w/m.pth"] = DATA
    return f"{server.url}/w/m.pth"


def _plant(link, victim):
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(victim, link)


def test_a_planted_part_symlink_is_never_written_through(url, victim):
    target = paths.weights_dir() / "m.pth"
    _plant(target.with_name("m.pth.part"), victim)
    assert zoo.download(url, sha256=DIGEST).read_bytes() == DATA
    assert victim.read_bytes() == VICTIM_TEXT
    assert not target.with_name("m.pth.part").exists()


def test_a_planted_part_symlink_to_a_file_ending_like_the_download_is_not_resumed_from(url, victim):
    victim.write_bytes(DATA[:1000])  # looks like a good beginning: still not ours to append to
    _plant(paths.weights_dir() / "m.pth.part", victim)
    assert zoo.download(url, sha256=DIGEST).read_bytes() == DATA
    assert victim.read_bytes() == DATA[:1000]


def test_a_planted_resume_record_symlink_is_replaced_not_followed(url, victim, server):
    _plant(paths.weights_dir() / "m.pth.resume.part", victim)
    server.faults["/w/m.pth"] = [("drop", 100_000)]
    assert zoo.download(url, sha256=DIGEST).read_bytes() == DATA
    assert victim.read_bytes() == VICTIM_TEXT


def test_a_planted_lock_symlink_is_refused_and_the_victim_kept(url, victim):
    _plant(paths.weights_dir() / "m.pth.lock", victim)
    with pytest.raises(LockError, match=r"m\.pth\.lock is a symbolic link.*remove it"):
        zoo.download(url, sha256=DIGEST)
    assert victim.read_bytes() == VICTIM_TEXT
    assert not (paths.weights_dir() / "m.pth").exists()


def test_a_planted_lock_owner_symlink_is_refused_and_the_victim_kept(tmp_path, victim):
    lock_path = tmp_path / "cache" / "x.lock"
    _plant(locks.owner_path(lock_path), victim)
    with pytest.raises(LockError, match="symbolic link"), locks.file_lock(lock_path, what="x"):
        pass
    assert victim.read_bytes() == VICTIM_TEXT


def test_a_planted_integrity_record_symlink_is_replaced_not_written_through(url, victim):
    target = paths.weights_dir() / "m.pth"
    record = integrity._record_path(target.absolute())
    _plant(record, victim)
    zoo.download(url, sha256=DIGEST)
    assert victim.read_bytes() == VICTIM_TEXT
    assert not record.is_symlink() and DIGEST in record.read_text()


def test_a_planted_records_folder_symlink_sends_no_record_outside_the_home(url, tmp_path):
    outside = tmp_path / "outside_records"
    outside.mkdir()
    _plant(paths.home() / "verified", outside)
    path = zoo.download(url, sha256=DIGEST)
    assert list(outside.iterdir()) == []
    assert integrity.known_digest(path) == DIGEST  # remembered in memory all the same


def test_a_planted_pins_symlink_is_replaced_not_written_through(victim):
    _plant(paths.home() / "pins.json", victim)
    integrity.pin("mlp.blobs", "a" * 64)
    assert victim.read_bytes() == VICTIM_TEXT
    assert integrity.pins() == {"mlp.blobs": "a" * 64}


def test_a_link_at_the_target_itself_is_replaced_by_the_download(url, victim, tmp_path):
    dst = tmp_path / "dst" / "m.pth"
    _plant(dst, victim)
    assert zoo.download(url, dst).read_bytes() == DATA
    assert not dst.is_symlink() and victim.read_bytes() == VICTIM_TEXT


@pytest.mark.parametrize("planted", ["weights", "verified", "locks", "hub"])
def test_a_folder_link_planted_in_the_zoo_home_is_never_written_through(server, tmp_path, planted):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = paths.home()
    home.mkdir(parents=True, exist_ok=True)
    (home / planted).symlink_to(elsewhere, target_is_directory=True)
    server.files["/h.bin"] = b"hello"
    if planted == "weights":
        with pytest.raises(StorageError, match="symbolic link"):
            zoo.download(f"{server.url}/h.bin")
    else:
        zoo.download(f"{server.url}/h.bin")  # records are skipped; the file itself is not under the link
        with pytest.raises(StorageError, match="symbolic link"):
            paths.make_dirs(home / planted / "x")
    assert list(elsewhere.iterdir()) == []


def test_the_zoo_home_itself_may_be_a_link(server, tmp_path, monkeypatch):
    real = tmp_path / "disk" / "zoo"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "link"))
    server.files["/h.bin"] = b"hello"
    path = zoo.download(f"{server.url}/h.bin")
    assert (real / "weights" / "h.bin").read_bytes() == b"hello" and path.read_bytes() == b"hello"
