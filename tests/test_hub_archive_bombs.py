"""Hostile hub archives served from 127.0.0.1: every size is bounded before it is read into memory, odd
members are one UnsafeArchiveError, and nothing of a refused archive stays in the hub cache."""

import io
import stat
import struct
import tarfile
import tracemalloc
import zipfile
import zlib

import pytest
from conftest import PLANTED_SECRET

import zoo
from zoo.cli import main
from zoo.errors import UnsafeArchiveError
from zoo.hub import archives, snapshots
from zoo.hub.specs import parse_spec

HUBCONF = b"def version():\n    return 'ok'\n"
MB = 1024 * 1024


def zip_bytes(members):
    """members: (name, bytes, mode or None); mode S_IFLNK makes a symlink whose target is the bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def lie_about_size(data, name, size):
    """Patch the central directory so that member `name` declares `size` uncompressed bytes."""
    data = bytearray(data)
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46 : pos + 46 + name_len]) == name.encode():
            struct.pack_into("<I", data, pos + 24, size)
        pos = data.find(b"PK\x01\x02", pos + 4)
    return bytes(data)


def serve(server, name, data):
    server.files[f"/{name}"] = data
    return f"{server.url}/{name}"


def assert_cache_left_clean(url):
    folder = snapshots.repo_dir(parse_spec(url))
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # no snapshot, staging or archive


def peak_while(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_zip_symlink_that_inflates_to_50_mb_is_refused_before_it_is_read(server):
    bomb = zip_bytes([("r/hubconf.py", HUBCONF, None), ("r/link", b"a" * (50 * MB), stat.S_IFLNK | 0o777)])
    assert len(bomb) < 100 * 1024  # deflate shrinks it about 1000 times
    url = serve(server, "bomb.zip", bomb)

    def load():
        with pytest.raises(UnsafeArchiveError, match="link of 52428800 bytes, over the 4096 cap"):
            zoo.load(url, "version", trust_repo=True)

    assert peak_while(load) < 8 * MB  # `.read()` of the target held 50 MB
    assert_cache_left_clean(url)


def test_a_zip_symlink_that_lies_about_its_size_is_read_no_further_than_the_cap(server):
    bomb = zip_bytes([("r/hubconf.py", HUBCONF, None), ("r/link", b"a" * (50 * MB), stat.S_IFLNK | 0o777)])
    url = serve(server, "liar.zip", lie_about_size(bomb, "r/link", 10))

    def load():
        with pytest.raises(UnsafeArchiveError, match="cannot be (read|extracted): Bad CRC-32"):
            zoo.load(url, "version", trust_repo=True)

    assert peak_while(load) < 8 * MB
    assert_cache_left_clean(url)


def test_a_zip_file_member_that_lies_about_its_size_never_inflates_past_it(server, tmp_path):
    bomb = zip_bytes([("r/hubconf.py", HUBCONF, None), ("r/data.bin", b"\0" * (50 * MB), None)])
    url = serve(server, "liar-file.zip", lie_about_size(bomb, "r/data.bin", 100))
    with pytest.raises(UnsafeArchiveError, match="Bad CRC-32"):
        zoo.load(url, "version", trust_repo=True)
    assert_cache_left_clean(url)
    # nothing the size of the bomb was written anywhere under the homes
    written = [p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()]
    assert max(written) < MB


def test_a_pax_header_declaring_a_huge_path_is_refused_before_it_is_read(tmp_path, server):
    # tarfile refuses to write such a header, so it is written raw: a 50 MB `path` record, gzipped.
    record = b" path=" + b"a" * (50 * MB) + b"\n"
    record = str(len(record) + len(str(len(record) + 8))).encode() + record
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(record)
    raw = header.tobuf(tarfile.USTAR_FORMAT)
    raw += record + b"\0" * (-len(record) % 512)
    member = tarfile.TarInfo("r/hubconf.py")
    member.size = len(HUBCONF)
    raw += member.tobuf(tarfile.USTAR_FORMAT) + HUBCONF + b"\0" * (-len(HUBCONF) % 512) + b"\0" * 1024
    url = serve(server, "pax.tar.gz", _gzip(raw))

    def load():
        with pytest.raises(UnsafeArchiveError, match="extended header of .* bytes, over the 65536 cap"):
            zoo.load(url, "version", trust_repo=True)

    assert peak_while(load) < 8 * MB
    assert_cache_left_clean(url)


def _gzip(raw):
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    return out.compress(raw) + out.flush()


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            info.size = len(data) if data is not None else 0
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tinfo(name, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        # long enough for a pax record, where a NUL survives (a ustar field ends at it)
        ((tinfo("r/s", tarfile.SYMTYPE, "hubconf.py\0" + "/x" * 80), None), "NUL in its link target"),
        ((tinfo("r/x\0" + "y" * 120), b"x"), "NUL in its name"),
        ((tinfo("r/h", tarfile.LNKTYPE, "/etc/passwd"), None), "absolute path"),
        ((tinfo("r/h", tarfile.LNKTYPE, "r/missing.py"), None), "not a file in the archive"),
        ((tinfo("r/dev", tarfile.BLKTYPE), None), "device or pipe"),
        ((tinfo("r/fifo", tarfile.FIFOTYPE), None), "device or pipe"),
        ((tinfo("../evil.py"), b"x"), r"outside the archive \('\.\.'\)"),
    ],
)
def test_odd_tar_members_are_one_clear_error_and_leave_nothing(server, member, message):
    url = serve(server, "odd.tar.gz", tar_bytes([(tinfo("r/hubconf.py"), HUBCONF), member]))
    with pytest.raises(UnsafeArchiveError, match=message):
        zoo.load(url, "version", trust_repo=True)
    assert_cache_left_clean(url)


def test_a_bzip2_zip_member_is_refused_since_its_inflation_is_not_bounded_per_read(server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("r/hubconf.py", HUBCONF)
    url = serve(server, "bz.zip", buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="compression method 12"):
        zoo.load(url, "version", trust_repo=True)
    assert_cache_left_clean(url)


def test_member_count_and_total_size_caps_can_be_set(server, monkeypatch):
    files = [("r/hubconf.py", HUBCONF, None)] + [(f"r/m{i}.py", b"x = 1\n" * 100, None) for i in range(20)]
    url = serve(server, "many.zip", zip_bytes(files))
    monkeypatch.setattr(archives, "MAX_MEMBERS", 10)
    with pytest.raises(UnsafeArchiveError, match="more than 10 members"):
        zoo.load(url, "version", trust_repo=True)
    assert_cache_left_clean(url)
    monkeypatch.setattr(archives, "MAX_MEMBERS", 100)
    monkeypatch.setattr(archives, "MAX_EXTRACTED_BYTES", 5000)
    with pytest.raises(UnsafeArchiveError, match="would extract to 12031 bytes, over the 5000 cap"):
        zoo.load(url, "version", trust_repo=True)
    assert_cache_left_clean(url)
    monkeypatch.setattr(archives, "MAX_EXTRACTED_BYTES", 20000)
    assert zoo.load(url, "version", trust_repo=True) == "ok"


def test_the_bytes_written_are_counted_even_when_a_reader_gives_more_than_declared(tmp_path, monkeypatch):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes([("r/hubconf.py", HUBCONF, None), ("r/big.bin", b"x" * 3000, None)]))
    real = archives._zip_members

    def overflowing(zf):
        # a reader that does not stop at the declared size (zipfile's does, then fails its CRC check)
        for m in real(zf):
            if m.name.endswith(".bin"):
                m.open = lambda size=m.size: io.BytesIO(b"x" * (size + 5000))
            yield m

    monkeypatch.setattr(archives, "_zip_members", overflowing)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="'r/big.bin' inflates beyond its declared 3000 bytes"):
        archives.extract_archive(archive, dest)
    assert (dest / "big.bin").stat().st_size == 0


def test_a_bad_archive_url_with_a_secret_is_one_line_without_it(server, capsys):
    url = serve(server, "odd.zip", zip_bytes([("r/hubconf.py", HUBCONF, None), ("/abs.py", b"x", None)]))
    assert main(["list", f"{url}?private_token={PLANTED_SECRET}", "--trust"]) == 1
    err = capsys.readouterr().err
    assert err == "zoo: error: archive member '/abs.py' has an absolute path\n"
    assert PLANTED_SECRET not in err
