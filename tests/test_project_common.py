"""zoo._common: the helpers that used to be written several ways (origins, URL display, atomic writes)."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import PLANTED_SECRET

from zoo._common import COMMIT, origin, redact, same_origin, show_url, write_text_atomic


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


def test_show_url_survives_a_url_it_cannot_parse():
    shown = show_url(f"http://u:{PLANTED_SECRET}@[::1/x?sig={PLANTED_SECRET}")
    assert PLANTED_SECRET not in shown and "/x" in shown


def test_redact_shows_every_url_in_a_text_without_its_secrets():
    text = (
        f"HTTPConnectionPool(host='h', port=80): Max retries exceeded with url: /f.bin?token={PLANTED_SECRET} "
        f"(Caused by redirect to https://me:{PLANTED_SECRET}@h.example/a?sig={PLANTED_SECRET}#{PLANTED_SECRET}, "
        f"'http://h/b?x={PLANTED_SECRET}')"
    )
    shown = redact(text)
    assert PLANTED_SECRET not in shown
    assert "with url: /f.bin " in shown and "https://h.example/a," in shown and "'http://h/b'" in shown


def test_redact_leaves_text_without_urls_alone():
    assert redact("read timed out (after 60 s)") == "read timed out (after 60 s)"


def test_write_text_atomic_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    link = tmp_path / "record.json"
    link.symlink_to(victim)
    write_text_atomic(link, "zoo's")
    assert victim.read_text() == "mine" and not link.is_symlink() and link.read_text() == "zoo's"


def test_write_text_atomic_writes_a_name_at_the_file_system_limit(tmp_path):
    target = tmp_path / ("m" * 250 + ".json")  # 255 bytes: a temporary name built from it would not fit
    write_text_atomic(target, "{}")
    assert target.read_text() == "{}" and sorted(p.name for p in tmp_path.iterdir()) == [target.name]
