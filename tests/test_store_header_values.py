"""Header values zoo cannot send, and answers no wait can mend: one DownloadError at once, never a retry, and
never the value itself (a token) in any message.

Before, a token with a line break (GITHUB_TOKEN=$'...\\n') made requests raise InvalidHeader with the token
in its text, retried five times (31 s) and printed in every retry line; a character outside Latin-1 was
reported as "redirects to an invalid URL"; an answer with too many headers or a line over 64 KiB was retried.
"""

from __future__ import annotations

import time

import pytest
from conftest import PLANTED_SECRET

import zoo
from zoo.errors import DownloadError
from zoo.store import download

DATA = b"weights" * 1000

BAD_VALUES = {
    "a trailing newline": f"{PLANTED_SECRET}\n",
    "a CR LF and a second header": f"Bearer {PLANTED_SECRET}\r\nX-Evil: 1",
    "a character outside Latin-1": f"Bearer {PLANTED_SECRET}\u2026",
    "a NUL": f"Bearer {PLANTED_SECRET}\0",
    "leading white space": f" Bearer {PLANTED_SECRET}",
}


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(download, "_sleep", sleeps.append)
    return sleeps


@pytest.mark.parametrize("why", BAD_VALUES)
def test_a_header_value_that_cannot_be_sent_is_refused_at_once_without_showing_it(
    server, tmp_path, capsys, why, _no_waiting
):
    server.files["/f.bin"] = DATA
    with pytest.raises(DownloadError) as info:
        zoo.download(
            f"{server.url}/f.bin",
            tmp_path / "f.bin",
            headers={"Authorization": BAD_VALUES[why]},
            progress=True,
        )
    text = str(info.value)
    assert "the Authorization header cannot be sent" in text and "value not shown" in text
    assert "redirects" not in text
    assert PLANTED_SECRET not in text + "".join(capsys.readouterr())
    assert server.connections == 0 and _no_waiting == []  # nothing sent, nothing retried
    assert not (tmp_path / "f.bin").exists()


@pytest.mark.parametrize("headers", [{"X-Token": 12345}, {"X-Token": None}])
def test_a_header_value_that_is_not_text_is_one_download_error(server, tmp_path, headers):
    with pytest.raises(DownloadError, match="the X-Token header cannot be sent: its value is a"):
        zoo.download(f"{server.url}/f.bin", tmp_path / "f.bin", headers=headers)
    assert server.connections == 0


@pytest.mark.parametrize("name", [f"Authorization: Bearer {PLANTED_SECRET}", "X-Token\n", "", "Töken"])
def test_a_header_name_that_is_not_a_token_is_refused_without_showing_it(server, tmp_path, name):
    with pytest.raises(DownloadError, match="header 1 has a name that is not a valid HTTP header name"):
        zoo.download(f"{server.url}/f.bin", tmp_path / "f.bin", headers={name: "x"})
    assert server.connections == 0


def test_a_latin1_header_value_and_bytes_are_sent_as_they_are(server, tmp_path):
    server.files["/f.bin"] = DATA
    headers = {"X-Name": "caf\u00e9\tau lait", "X-Raw": b"raw-bytes"}
    zoo.download(f"{server.url}/f.bin", tmp_path / "f.bin", headers=headers)
    sent = server.requests_for("/f.bin")[0]
    assert sent["X-Raw"] == "raw-bytes" and sent["X-Name"] == "caf\u00e9\tau lait"


def test_a_token_with_a_newline_from_the_environment_is_refused_without_retries(
    server, tmp_path, monkeypatch, capsys, _no_waiting
):
    # The way the review met it: GITHUB_TOKEN read from a file with its trailing newline.
    from zoo.hub.fetch import auth_headers

    monkeypatch.setenv("GITHUB_TOKEN", f"{PLANTED_SECRET}\n")
    monkeypatch.setenv("ZOO_GITHUB_URL", server.url)
    url = f"{server.url}/owner/repo/archive/main.zip"
    started = time.monotonic()
    with pytest.raises(DownloadError, match="the Authorization header cannot be sent") as info:
        zoo.download(url, tmp_path / "main.zip", headers=auth_headers(url), progress=True)
    assert PLANTED_SECRET not in str(info.value) + "".join(capsys.readouterr())
    assert _no_waiting == [] and time.monotonic() - started < 2 and server.connections == 0


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (("many_headers", 150), "got more than 100 headers"),
        (("long_header", 70_000), "got more than 65536 bytes"),
    ],
)
def test_an_answer_http_client_cannot_read_is_not_retried(server, tmp_path, fault, says, _no_waiting):
    server.files["/f.bin"] = DATA
    server.faults["/f.bin"] = [fault] * (download.RETRIES + 1)
    with pytest.raises(DownloadError, match=f"the server's answer cannot be read \\({says}"):
        zoo.download(f"{server.url}/f.bin", tmp_path / "f.bin")
    assert len(server.requests_for("/f.bin")) == 1 and _no_waiting == []


def test_a_folded_etag_is_not_sent_back_in_if_range(server, tmp_path, monkeypatch):
    # A validator zoo cannot send back is dropped, not made fatal for the resume.
    class Resp:
        headers = {"ETag": '"abc"\r\n x', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}

    assert download._validator(Resp()) == {"last_modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
