"""zoo.download against a fault-injecting server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import time
import warnings
from pathlib import Path

import pytest
from conftest import PLANTED_SECRET

import zoo
from zoo.errors import DownloadError, IntegrityError, StorageError
from zoo.store import download, integrity, locks

DATA = random.Random(0).randbytes(3 * 1024 * 1024 + 17)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def published(server):
    server.files["/w/model.pth"] = DATA
    return server, f"{server.url}/w/model.pth"


def part_of(folder: Path, name: str = "m.pth") -> Path:
    """The one part file a download of `name` left in `folder` (each writer has its own)."""
    (part,) = [p for p in folder.glob(f"{name}.*.part") if not p.name.endswith(".resume.part")]
    return part


def leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if not p.name.endswith(".lock") and not p.name.endswith("_home")
    )


def test_download_verifies_and_places_the_file(published, tmp_path):
    server, url = published
    path = zoo.download(url, tmp_path / "out", sha256=DIGEST)
    assert path == tmp_path / "out" and path.read_bytes() == DATA
    assert integrity.known_digest(path) == DIGEST  # hashed while streaming, not read again
    assert server.requests_for("/w/model.pth")[0]["User-Agent"].startswith("zoo/")


def test_default_destination_is_the_weight_cache_named_after_the_url(published):
    _, url = published
    path = zoo.download(url, sha256=DIGEST)
    assert path == Path(os.environ["ZOO_HOME"]) / "weights" / "model.pth"


def test_a_verified_target_is_not_downloaded_again(published, tmp_path):
    server, url = published
    zoo.download(url, tmp_path / "a.pth", sha256=DIGEST)
    zoo.download(url, tmp_path / "a.pth", sha256=DIGEST)
    assert len(server.requests_for("/w/model.pth")) == 1


def test_dropped_connection_resumes_with_range(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("drop", 1_000_000)]
    path = zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    assert path.read_bytes() == DATA
    first, second = server.requests_for("/w/model.pth")
    assert "Range" not in first
    assert second["Range"] == "bytes=1000000-"  # every byte received is kept


def test_5xx_answers_are_retried_with_exponential_backoff(published, tmp_path, monkeypatch):
    server, url = published
    server.faults["/w/model.pth"] = [("status", 500), ("status", 503), ("status", 502)]
    sleeps: list[float] = []
    monkeypatch.setattr(download, "BACKOFF", 0.5)
    monkeypatch.setattr(download, "_sleep", sleeps.append)
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(server.requests_for("/w/model.pth")) == 4


def test_retries_give_up_with_a_clear_error_and_no_file(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("status", 503)] * (download.RETRIES + 1)
    with pytest.raises(DownloadError, match=r"HTTP 503 .*gave up after 5 retries"):
        zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [404, 403])
def test_client_errors_are_not_retried(published, tmp_path, status):
    server, url = published
    server.faults["/w/model.pth"] = [("status", status)]
    with pytest.raises(DownloadError, match=f"HTTP {status}"):
        zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    assert len(server.requests_for("/w/model.pth")) == 1
    assert leftovers(tmp_path) == []


def test_too_long_content_length_is_caught_and_resumed(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("length", 100)]
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA
    # The resume finds the file complete (416 for bytes=N-) and finishes without fetching it again.
    assert [h.get("Range") for h in server.requests_for("/w/model.pth")] == [None, f"bytes={len(DATA)}-"]


def test_a_lying_content_length_never_leaves_a_file(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("length", -100)]
    with pytest.raises(IntegrityError, match=f"expected {DIGEST}"):
        zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    assert leftovers(tmp_path) == []


def test_announced_size_must_match_the_expected_size(published, tmp_path):
    _, url = published
    with pytest.raises(DownloadError, match=f"announces {len(DATA)} bytes, expected 12"):
        zoo.download(url, tmp_path / "m.pth", sha256=DIGEST, size=12)
    assert leftovers(tmp_path) == []


def test_wrong_bytes_fail_verification_and_are_deleted(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("corrupt",)]
    with pytest.raises(IntegrityError) as info:
        zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    bad = hashlib.sha256(bytes(b ^ 0xFF for b in DATA[:64]) + DATA[64:]).hexdigest()
    assert f"sha256 {bad}, expected {DIGEST}" in str(info.value) and url in str(info.value)
    assert leftovers(tmp_path) == []


def test_a_stalled_transfer_times_out_and_resumes(published, tmp_path, monkeypatch):
    server, url = published
    monkeypatch.setattr(download, "READ_TIMEOUT", 0.3)
    server.faults["/w/model.pth"] = [("stall", 3)]
    started = time.monotonic()
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA
    assert time.monotonic() - started < 2.5
    assert server.requests_for("/w/model.pth")[1]["Range"] == "bytes=10-"


def test_a_server_that_ignores_range_restarts_cleanly(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("drop", 5000), ("ignore_range",)]
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA


def test_unhashed_download_and_prefix_warning(published, tmp_path):
    _, url = published
    assert zoo.download(url, tmp_path / "a.pth").read_bytes() == DATA
    with pytest.warns(UserWarning, match="verification is partial"):
        zoo.download(url, tmp_path / "b.pth", sha256=DIGEST[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per file and process
        zoo.download(url, tmp_path / "b.pth", sha256=DIGEST[:8])


def test_headers_go_to_the_first_host_only(server, tmp_path):
    from faulty_server import FaultyServer

    other = FaultyServer().start()
    try:
        other.files["/f.bin"] = DATA
        server.faults["/f.bin"] = [("redirect", f"{other.url}/f.bin")]
        zoo_headers = {"Authorization": "Bearer secret-token"}
        path = download.download(
            f"{server.url}/f.bin", tmp_path / "f.bin", sha256=DIGEST, headers=zoo_headers
        )
        assert path.read_bytes() == DATA
        assert server.requests_for("/f.bin")[0]["Authorization"] == "Bearer secret-token"
        assert "Authorization" not in other.requests_for("/f.bin")[0]
    finally:
        other.stop()


def test_file_urls_are_copied_and_verified(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(DATA)
    assert zoo.download(src.as_uri(), tmp_path / "dst.bin", sha256=DIGEST).read_bytes() == DATA
    with pytest.raises(DownloadError, match="missing.bin: no such file"):
        zoo.download((tmp_path / "missing.bin").as_uri(), tmp_path / "x.bin")


def test_offline_makes_no_connection(published, tmp_path, monkeypatch):
    server, url = published
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline"):
        zoo.download(url, tmp_path / "m.pth")
    assert server.connections == 0


def _download_in_child(url: str, dst: str) -> None:
    download.download(url, dst, sha256=DIGEST)


def test_concurrent_processes_download_once(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("slow", 1.0)]
    ctx = multiprocessing.get_context("fork")  # the children need only the already imported zoo
    procs = [ctx.Process(target=_download_in_child, args=(url, str(tmp_path / "m.pth"))) for _ in range(8)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
    finally:
        for p in procs:
            p.kill()
    assert [p.exitcode for p in procs] == [0] * 8
    assert len(server.requests_for("/w/model.pth")) == 1
    assert (tmp_path / "m.pth").read_bytes() == DATA


def test_a_killed_download_is_resumed_by_the_next_process(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("slow", 30)]
    child = multiprocessing.get_context("fork").Process(
        target=_download_in_child, args=(url, str(tmp_path / "m.pth"))
    )
    child.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        parts = [p for p in tmp_path.glob("m.pth.*.part") if not p.name.endswith(".resume.part")]
        if parts and parts[0].stat().st_size > 0:
            break
        time.sleep(0.05)
    child.kill()  # SIGKILL: no cleanup, its lock is released by the kernel
    child.join()
    part = part_of(tmp_path)
    assert f".{child.pid}." in part.name  # its own part, named with its pid: taken over as it is gone
    kept = part.stat().st_size
    assert 0 < kept < len(DATA)
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA
    assert server.requests_for("/w/model.pth")[-1]["Range"] == f"bytes={kept}-"
    assert leftovers(tmp_path) == ["m.pth"]


def test_a_complete_part_file_is_finished_without_a_transfer(published, tmp_path):
    server, url = published
    (tmp_path / "m.pth.part").write_bytes(DATA)  # killed between the last byte and the rename
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA
    assert [h.get("Range") for h in server.requests_for("/w/model.pth")] == [f"bytes={len(DATA)}-"]


def test_retries_count_attempts_in_a_row_without_progress(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("drop", 200_000)] * (download.RETRIES + 3)
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA


def test_headers_are_dropped_when_a_redirect_changes_host(server, tmp_path):
    server.files["/f.bin"] = DATA
    port = server.server_address[1]
    server.faults["/start"] = [("redirect", f"http://localhost:{port}/f.bin")]
    download.download(f"{server.url}/start", tmp_path / "f.bin", headers={"PRIVATE-TOKEN": "t0k3n"})
    start, final = server.log[0][2], server.log[1][2]
    assert start["PRIVATE-TOKEN"] == "t0k3n" and "PRIVATE-TOKEN" not in final


@pytest.mark.parametrize("name", ["..%2F..%2Fevil.pth", "%2E%2E", "a%5Cb.pth"])
def test_url_file_names_cannot_leave_the_folder(published, tmp_path, name):
    server, _ = published
    with pytest.raises(DownloadError, match="cannot tell a safe file name"):
        zoo.download(f"{server.url}/w/{name}", tmp_path)
    assert server.connections == 0


def test_a_read_only_zoo_home_still_verifies(published, tmp_path):
    _, url = published
    verified = Path(os.environ["ZOO_HOME"]) / "verified"
    verified.parent.mkdir(parents=True, exist_ok=True)
    verified.write_text("a file where the records folder would be")  # writing records fails
    path = zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    assert integrity.known_digest(path) == DIGEST  # remembered in memory all the same


# --- resume only continues the same file (If-Range and the first answer's validator) ---


def test_a_resume_sends_if_range_with_the_first_answers_etag(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("drop", 500_000)]
    zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    first, second = server.requests_for("/w/model.pth")
    assert second["Range"] == "bytes=500000-" and second["If-Range"].startswith('"')


@pytest.mark.parametrize("hashed", [True, False], ids=["with-sha256", "without-sha256"])
def test_a_file_changed_on_the_server_between_attempts_is_never_spliced(published, tmp_path, hashed):
    server, url = published
    new = random.Random(1).randbytes(len(DATA))
    # Drop mid-file and fail for good, keeping the part; then change the file (and so its ETag) on the server.
    server.faults["/w/model.pth"] = [("drop", 1_000_000)] + [("status", 503)] * (download.RETRIES + 1)
    with pytest.raises(DownloadError):
        download.download(url, tmp_path / "m.pth")
    server.faults.clear()
    assert part_of(tmp_path).stat().st_size == 1_000_000
    server.files["/w/model.pth"] = new
    got = download.download(
        url, tmp_path / "m.pth", sha256=hashlib.sha256(new).hexdigest() if hashed else None
    )
    assert got.read_bytes() == new  # the new file whole, never old bytes followed by new ones
    assert server.requests_for("/w/model.pth")[-1].get("If-Range")  # it asked, and the server said no


def test_a_part_without_validator_or_hash_is_started_over(published, tmp_path):
    server, url = published
    server.no_validators.add("/w/model.pth")
    (tmp_path / "m.pth.part").write_bytes(b"bytes of some other file")
    assert zoo.download(url, tmp_path / "m.pth").read_bytes() == DATA
    assert "Range" not in server.requests_for("/w/model.pth")[0]


# --- what is never kept as the file ---


def test_a_gzip_encoded_answer_is_refused_and_never_kept(published, tmp_path):
    server, url = published
    server.faults["/w/model.pth"] = [("encoding", "gzip")]
    with pytest.raises(DownloadError, match="gzip-encoded"):
        zoo.download(url, tmp_path / "m.pth")
    assert leftovers(tmp_path) == []
    assert server.requests_for("/w/model.pth")[0]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308, 304])
def test_a_3xx_without_location_is_an_error_never_the_file(published, tmp_path, status):
    server, url = published
    server.faults["/w/model.pth"] = [("bare_redirect", status)]
    with pytest.raises(DownloadError, match=f"HTTP {status}"):
        zoo.download(url, tmp_path / "m.pth")
    assert leftovers(tmp_path) == []


def test_a_redirect_to_a_local_file_is_refused(published, tmp_path):
    server, url = published
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("local")
    server.faults["/w/model.pth"] = [("redirect", secret_file.as_uri())]
    with pytest.raises(DownloadError, match="not http"):
        zoo.download(url, tmp_path / "m.pth")
    assert not (tmp_path / "m.pth").exists()


# --- no hang, no silent wait ---


def test_a_trickling_server_is_ended_by_the_stall_rule(published, tmp_path, monkeypatch):
    server, url = published
    monkeypatch.setattr(download, "STALL_WINDOW", 0.2)
    monkeypatch.setattr(download, "STALL_BYTES", 1000)
    monkeypatch.setattr(download, "RETRIES", 2)
    server.faults["/w/model.pth"] = [("trickle", 0.01)] * 10
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"stalled.*gave up after 2 retries"):
        zoo.download(url, tmp_path / "m.pth")
    assert time.monotonic() - started < 3
    assert len(server.requests_for("/w/model.pth")) == 3


def test_the_overall_deadline_ends_a_download_that_trickles_above_the_stall_rule(
    published, tmp_path, monkeypatch
):
    server, url = published
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", "0.5")
    server.faults["/w/model.pth"] = [("trickle", 0.001)] * 10
    started = time.monotonic()
    with pytest.raises(
        DownloadError, match=r"not finished within 0.5 s \(ZOO_DOWNLOAD_TIMEOUT\).*bytes kept"
    ):
        zoo.download(url, tmp_path / "m.pth")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("value", ["0", "-3", "later"])
def test_a_bad_download_timeout_setting_is_one_clear_error(published, tmp_path, monkeypatch, value):
    _, url = published
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(DownloadError, match="ZOO_DOWNLOAD_TIMEOUT"):
        zoo.download(url, tmp_path / "m.pth")


def test_a_refused_connection_fails_at_once_without_retries(tmp_path, monkeypatch):
    import socket

    sleeps: list[float] = []
    monkeypatch.setattr(download, "_sleep", sleeps.append)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DownloadError, match=f"connection to 127.0.0.1:{port} failed: Connection refused"):
        zoo.download(f"http://127.0.0.1:{port}/m.pth", tmp_path / "m.pth")
    assert sleeps == [] and time.monotonic() - started < 2


def test_a_host_that_does_not_resolve_fails_at_once(tmp_path, monkeypatch):
    import socket

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    sleeps: list[float] = []
    monkeypatch.setattr(download, "_sleep", sleeps.append)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # no lookup ever leaves the machine
    with pytest.raises(DownloadError, match="cannot resolve the host nowhere.invalid"):
        zoo.download("http://nowhere.invalid/m.pth", tmp_path / "m.pth")
    assert sleeps == []


def test_retries_say_so_on_a_terminal(published, tmp_path, capsys):
    server, url = published
    server.faults["/w/model.pth"] = [("status", 503)]
    zoo.download(url, tmp_path / "m.pth", sha256=DIGEST, progress=True)
    assert "zoo: retrying m.pth in 0.001 s: HTTP 503" in capsys.readouterr().err


# --- a disk that cannot take the file ---


def test_a_full_disk_is_one_clear_error_and_keeps_the_part_for_resume(published, tmp_path, monkeypatch):
    import errno

    server, url = published
    written = []

    def fill(fd, data):
        if sum(written) >= 2_000_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(os.write(fd, data))
        return written[-1]

    monkeypatch.setattr(download, "_write", fill)
    with pytest.raises(
        StorageError, match=r"m\.pth\.[\w.-]+\.part: No space left on device \(free some space.*kept there"
    ):
        zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)
    assert not (tmp_path / "m.pth").exists()  # no half file renamed into place
    kept = part_of(tmp_path).stat().st_size
    assert kept == sum(written)
    monkeypatch.setattr(download, "_write", os.write)
    assert zoo.download(url, tmp_path / "m.pth", sha256=DIGEST).read_bytes() == DATA
    assert server.requests_for("/w/model.pth")[-1]["Range"] == f"bytes={kept}-"


def test_a_folder_that_cannot_be_created_is_one_clear_error(published, tmp_path, monkeypatch):
    _, url = published
    (tmp_path / "home_file").write_text("a file where the zoo home should be")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home_file" / "zoo"))
    with pytest.raises(
        StorageError, match=r"cannot create the folder .*home_file.*set ZOO_HOME to a writable"
    ):
        zoo.download(url)


def test_a_read_only_cache_still_serves_a_verified_file(published, tmp_path, monkeypatch):
    server, url = published
    path = zoo.download(url, tmp_path / "m.pth", sha256=DIGEST)

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(locks.FileLock, "acquire", read_only)
    assert zoo.download(url, path, sha256=DIGEST) == path
    assert len(server.requests_for("/w/model.pth")) == 1


@pytest.mark.parametrize(
    "location", ["http://[::1/x", "http://127.0.0.1:port/x", f"http://u:{PLANTED_SECRET}@[x"]
)
def test_a_redirect_to_an_unreadable_url_is_one_download_error(published, tmp_path, location):
    server, url = published
    server.faults["/w/model.pth"] = [("redirect", location)]
    with pytest.raises(DownloadError, match="redirects to (an invalid URL|.* is not a valid URL)"):
        zoo.download(url, tmp_path / "m.pth")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("url", ["http://[::1/m.pth", "http://127.0.0.1:port/m.pth"])
def test_an_unreadable_url_is_one_download_error(tmp_path, url):
    with pytest.raises(DownloadError, match="is not a valid URL"):
        zoo.download(url, tmp_path / "m.pth")
