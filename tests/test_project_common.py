"""zoo._common: the helpers that used to be written several ways (origins, URL display, atomic writes)."""

from __future__ import annotations

import os
import stat

import pytest

from zoo._common import COMMIT, origin, same_origin, show_url, write_text_atomic


def test_same_origin_compares_scheme_host_and_port_only():
    assert same_origin("https://h.example/a", "https://H.EXAMPLE:443/b?x=1")
    assert same_origin("https://user:pw@h.example/a", "https://h.example/b")
    assert not same_origin("https://h.example/a", "http://h.example/a")  # a token never goes to http
    assert not same_origin("https://h.example/a", "https://h.example:8443/a")
    assert not same_origin("https://h.example/a", "https://h.example.evil/a")
    assert origin("http://127.0.0.1:8080/x") == ("http", "127.0.0.1", 8080)
    assert origin("https://h.example:notaport/") != origin("https://h.example/")


def test_show_url_drops_credentials_and_query():
    shown = show_url("https://me:s3cret@h.example/a/b.zip?private_token=t0k&sig=abc#frag")
    assert shown == "https://h.example/a/b.zip"
    assert "s3cret" not in shown and "t0k" not in shown


def test_write_text_atomic_replaces_whole_files_with_the_usual_mode(tmp_path):
    target = tmp_path / "f.json"
    target.write_text("old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_write_text_atomic_leaves_the_old_file_and_no_temporary_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "half \udc80 written")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_commit_ids_are_full_lower_case_sha1_or_sha256():
    assert COMMIT.match("a" * 40) and COMMIT.match("0" * 64)
    assert not COMMIT.match("A" * 40) and not COMMIT.match("a" * 39) and not COMMIT.match("main")
