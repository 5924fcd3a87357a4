"""Paths that are not UTF-8 (bytes a POSIX file name may hold; Python keeps them as surrogate escapes): the
store hashes and names them by their bytes (os.fsencode), so no command ends in a UnicodeEncodeError."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

import zoo
from zoo.cli import main
from zoo.store import integrity, paths

DATA = b"weights" * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()
BAD = os.fsdecode(b"bad\xff")  # "bad\udcff": not encodable as UTF-8

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="file names there are UTF-16")


def _bad_cache_file() -> Path:
    path = paths.weights_dir() / f"{BAD}.pth"
    paths.make_dirs(path.parent)
    path.write_bytes(DATA)
    return path


# --json: its text is ASCII whatever the name. (Plain text output of such a name is the CLI's to print; the
# store's part is that listing, hashing and removing it work.)


def test_zoo_cache_ls_lists_a_file_whose_name_is_not_utf8(capsys):
    _bad_cache_file()
    assert main(["cache", "ls", "--json"]) == 0
    assert [f["file"] for f in json.loads(capsys.readouterr().out)] == [f"{BAD}.pth"]


def test_zoo_cache_verify_and_prune_handle_a_file_whose_name_is_not_utf8(capsys):
    path = _bad_cache_file()
    assert main(["cache", "verify", "--json"]) == 0
    capsys.readouterr()
    assert main(["cache", "prune", "--max-size", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [f"{BAD}.pth"]  # what it removed
    assert not path.exists()
    assert integrity.known_digest(path) is None
    assert not (paths.home() / "verified").exists() or not any((paths.home() / "verified").iterdir())


def test_download_to_a_destination_whose_name_is_not_utf8(server, tmp_path):
    server.files["/f.bin"] = DATA
    dst = tmp_path / f"{BAD}.bin"
    assert zoo.download(f"{server.url}/f.bin", dst, sha256=DIGEST).read_bytes() == DATA
    assert integrity.known_digest(dst) == DIGEST
    assert zoo.download(f"{server.url}/f.bin", dst, sha256=DIGEST) == dst  # verified, not fetched again
    assert len(server.requests_for("/f.bin")) == 1


def test_download_into_a_zoo_home_whose_path_is_not_utf8(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / f"{BAD}_home"))
    server.files["/m.pth"] = DATA
    path = zoo.download(f"{server.url}/m.pth", sha256=DIGEST)
    assert path == paths.weights_dir() / "m.pth" and path.read_bytes() == DATA
    assert main(["cache", "ls"]) == 0
