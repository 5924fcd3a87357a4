"""A server that trickles what the read timeout cannot see: the status line and headers, or a chunk-size line,
one byte at a time. Each byte restarts the read timeout and http.client accepts 64 KiB lines, so before, one
attempt could last days; the header phase now has its own limit and every read ends at the deadline."""

from __future__ import annotations

import time

import pytest

import zoo
from zoo.errors import DownloadError
from zoo.store import download

DATA = b"weights" * 1000


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setattr(download, "_sleep", lambda s: None)
    monkeypatch.setattr(download, "RETRIES", 1)


def _fails_within(seconds: float, *args, **kwargs) -> str:
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        zoo.download(*args, **kwargs)
    assert time.monotonic() - started < seconds
    return str(info.value)


def test_a_trickled_head_is_cut_at_the_header_limit_and_retried(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "HEADER_TIMEOUT", 0.3)
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("trickle_head", 0.05, 60)] * 2  # 4 s a head without the limit
    text = _fails_within(2.5, f"{server.url}/f.bin", tmp_path / "f.bin")
    assert "did not send its status line and headers within 0.3 s (gave up after 1 retries)" in text
    assert len(server.requests_for("/f.bin")) == 2
    assert not (tmp_path / "f.bin").exists()


def test_a_trickled_head_ends_at_the_download_deadline(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", "0.5")
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("trickle_head", 0.05, 60)] * 2
    text = _fails_within(2.5, f"{server.url}/f.bin", tmp_path / "f.bin")
    assert "not finished within 0.5 s (ZOO_DOWNLOAD_TIMEOUT)" in text


def test_a_head_cut_short_is_never_taken_for_a_whole_answer(server, tmp_path, monkeypatch):
    # After the cut, http.client reads the end of the stream as the end of the headers and of a body
    # without a length: an empty "file" that must not be kept.
    monkeypatch.setattr(download, "HEADER_TIMEOUT", 0.2)
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("trickle_head", 0.05, 60)] * 2
    _fails_within(2.5, f"{server.url}/f.bin", tmp_path / "f.bin")
    assert not (tmp_path / "f.bin").exists()


def test_a_trickled_chunk_size_line_ends_at_the_deadline_without_a_file(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", "0.5")
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("trickle_chunked", 0.05, 80)] * 2  # 4 s a chunk-size line
    text = _fails_within(2.5, f"{server.url}/f.bin", tmp_path / "f.bin")
    assert "not finished within 0.5 s" in text
    assert not (tmp_path / "f.bin").exists()


def test_a_head_that_arrives_in_time_is_not_cut(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "HEADER_TIMEOUT", 5)
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [("trickle_head", 0.01, 5)]
    assert zoo.download(f"{server.url}/f.bin", tmp_path / "f.bin").read_bytes() == DATA
