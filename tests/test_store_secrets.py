"""No download failure shows a secret: not from the URL's query, its user:password, nor a token header.

Every failure mode of the store layer is provoked from a 127.0.0.1 server with PLANTED_SECRET planted in each
place a secret travels; the error and everything printed (retries on, as on a terminal) must be free of it.
"""

from __future__ import annotations

import hashlib
import socket

import pytest
from conftest import PLANTED_SECRET

import zoo
from zoo.errors import ZooError
from zoo.store import download

DATA = bytes(range(256)) * 1024
DIGEST = hashlib.sha256(DATA).hexdigest()
PLACES = ["query", "userinfo", "header"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _url(base: str, path: str, place: str) -> tuple[str, dict[str, str]]:
    if place == "query":
        return f"{base}{path}?private_token={PLANTED_SECRET}&sig={PLANTED_SECRET}", {}
    if place == "userinfo":
        return base.replace("http://", f"http://user:{PLANTED_SECRET}@") + path, {}
    return base + path, {"PRIVATE-TOKEN": PLANTED_SECRET, "Authorization": f"Bearer {PLANTED_SECRET}"}


def _fails_without_the_secret(capsys, url, tmp_path, headers, **kwargs) -> str:
    with pytest.raises(ZooError) as info:
        download.download(url, tmp_path / "out.bin", headers=headers, progress=True, **kwargs)
    out = capsys.readouterr()
    text = str(info.value)
    assert PLANTED_SECRET not in text + out.out + out.err
    assert "127.0.0.1" in text  # still says where
    return text


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 1)
    monkeypatch.setattr(download, "READ_TIMEOUT", 0.2)
    monkeypatch.setattr(download, "_sleep", lambda s: None)


@pytest.mark.parametrize("place", PLACES)
def test_a_404_names_the_url_without_its_secret(server, tmp_path, capsys, place):
    url, headers = _url(server.url, "/missing.bin", place)
    assert "HTTP 404" in _fails_without_the_secret(capsys, url, tmp_path, headers)


@pytest.mark.parametrize("place", PLACES)
def test_retries_used_up_on_5xx_show_no_secret(server, tmp_path, capsys, place):
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("status", 503)] * 5
    url, headers = _url(server.url, "/f.bin", place)
    assert "gave up after 1 retries" in _fails_without_the_secret(capsys, url, tmp_path, headers)


@pytest.mark.parametrize("place", PLACES)
def test_a_refused_connection_shows_no_secret(tmp_path, capsys, place):
    url, headers = _url(f"http://127.0.0.1:{_free_port()}", "/f.bin", place)
    assert "failed" in _fails_without_the_secret(capsys, url, tmp_path, headers)


@pytest.mark.parametrize("place", PLACES)
def test_a_read_timeout_shows_no_secret(server, tmp_path, capsys, place):
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("stall", 1), ("stall", 1)]
    url, headers = _url(server.url, "/f.bin", place)
    assert "read timed out" in _fails_without_the_secret(capsys, url, tmp_path, headers, sha256=DIGEST)


@pytest.mark.parametrize("place", PLACES)
def test_a_bad_hash_shows_no_secret(server, tmp_path, capsys, place):
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("corrupt",)]
    url, headers = _url(server.url, "/f.bin", place)
    assert f"expected {DIGEST}" in _fails_without_the_secret(capsys, url, tmp_path, headers, sha256=DIGEST)


@pytest.mark.parametrize("place", PLACES)
def test_a_wrong_length_shows_no_secret(server, tmp_path, capsys, place):
    server.files["/f.bin"] = DATA
    url, headers = _url(server.url, "/f.bin", place)
    assert "expected 12" in _fails_without_the_secret(capsys, url, tmp_path, headers, size=12)


@pytest.mark.parametrize("place", PLACES)
def test_a_redirect_loop_shows_no_secret(server, tmp_path, capsys, monkeypatch, place):
    monkeypatch.setattr(download, "MAX_REDIRECTS", 2)
    url, headers = _url(server.url, "/loop", place)
    server.faults["/loop"] = [("redirect", url)] * 5  # back to itself, secret and all
    assert "more than 2 redirects" in _fails_without_the_secret(capsys, url, tmp_path, headers)


def test_a_url_requests_cannot_parse_is_shown_without_its_secret(tmp_path, capsys):
    url = f"http://user:{PLANTED_SECRET}@127.0.0.1:99999/f.bin?sig={PLANTED_SECRET}"
    _fails_without_the_secret(capsys, url, tmp_path, {})


def test_a_missing_local_file_url_shows_no_query(tmp_path, capsys):
    url = (tmp_path / "nothing.bin").as_uri() + f"?sig={PLANTED_SECRET}"
    with pytest.raises(ZooError) as info:
        zoo.download(url, tmp_path / "out.bin")
    assert "nothing.bin: no such file" in str(info.value) and PLANTED_SECRET not in str(info.value)
