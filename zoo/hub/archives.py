"""Hub archives (.zip, .tar.gz): the commit id they record, and extraction that cannot escape its folder."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .._common import COMMIT
from ..errors import HubError, UnsafeArchiveError

# Far above any code repo, far below a disk-filling bomb; callers may pass their own cap. All caps are read
# when an archive is opened, so they can be set (tests set them tiny).
MAX_EXTRACTED_BYTES = 2 * 1024**3
# torchvision's tree has about 3,000 files, the Linux kernel's about 90,000.
MAX_MEMBERS = 200_000
# A link target longer than PATH_MAX (4096 on Linux) cannot be made anyway.
MAX_LINK_BYTES = 4096
# A pax or GNU long-name header before a member, which tarfile reads whole into memory: git's global header
# (the commit id) is 52 bytes; names and link targets are bounded by PATH_MAX.
MAX_HEADER_BYTES = 64 * 1024
# Methods whose decompression is bounded per read (zipfile asks zlib for at most n bytes); bzip2 and lzma
# members are inflated a whole compressed chunk at a time, and git archive writes neither.
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


@dataclass
class _Member:
    name: str  # as stored in the archive
    kind: str  # "dir", "file", "symlink" or "hardlink"
    size: int
    executable: bool
    link: str = ""
    open: Callable[[], IO[bytes]] | None = None


def _read_link(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    # Bounded before anything is inflated: a 300 KB member can declare or inflate to 400 MB, and `.read()`
    # would hold all of it. zipfile stops at the declared size, so a member that lies fails its CRC check.
    if info.file_size > MAX_LINK_BYTES:
        raise UnsafeArchiveError(
            f"archive member {info.filename!r} is a link of {info.file_size} bytes, over the {MAX_LINK_BYTES} cap"
        )
    with zf.open(info) as f:
        data = f.read(MAX_LINK_BYTES + 1)
    if len(data) > MAX_LINK_BYTES:
        raise UnsafeArchiveError(f"archive member {info.filename!r} is a link over the {MAX_LINK_BYTES} cap")
    return data.decode("utf-8", "surrogateescape")


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        if info.compress_type not in _ZIP_METHODS:
            raise UnsafeArchiveError(
                f"archive member {info.filename!r} uses compression method {info.compress_type}; "
                "only stored and deflated members are extracted"
            )
        # The high 16 bits hold the Unix mode when the archive was made on Unix (git archive sets them).
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        if stat.S_ISLNK(mode):
            yield _Member(info.filename, "symlink", 0, False, _read_link(zf, info))
        elif info.is_dir():
            yield _Member(info.filename, "dir", 0, False)
        elif stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise UnsafeArchiveError(f"archive member {info.filename!r} is not a file, folder or link")
        else:
            yield _Member(
                info.filename, "file", info.file_size, bool(mode & 0o111), open=lambda i=info: zf.open(i)
            )


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo whose pax and GNU long-name headers are size-checked before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        # tarfile reads such a header's whole declared size in one read(): a pax header declaring a 400 MB
        # `path` would be held in memory before any member is seen. GNU sparse files are refused outright.
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise UnsafeArchiveError(f"archive member {self.name!r} is a sparse file")
        if self.type in _LONG_HEADERS and self.size > MAX_HEADER_BYTES:
            raise UnsafeArchiveError(
                f"archive has an extended header of {self.size} bytes, over the {MAX_HEADER_BYTES} cap"
            )
        return super()._proc_member(tarfile_)


_LONG_HEADERS = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for info in tf:
        if info.isdir():
            yield _Member(info.name, "dir", 0, False)
        elif info.isreg():
            yield _Member(
                info.name, "file", info.size, bool(info.mode & 0o111), open=lambda i=info: tf.extractfile(i)
            )
        elif info.issym():
            yield _Member(info.name, "symlink", 0, False, info.linkname)
        elif info.islnk():
            yield _Member(info.name, "hardlink", 0, False, info.linkname)
        else:
            raise UnsafeArchiveError(f"archive member {info.name!r} is a device or pipe")


@contextmanager
def _members(archive: Path, label: str) -> Iterator[tuple[Iterator[_Member], Callable[[], str | None]]]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            yield _zip_members(zf), lambda: zf.comment.decode("ascii", "replace").strip()
        return
    try:
        tf = tarfile.open(archive, mode="r:*", tarinfo=_BoundedTarInfo)  # noqa: SIM115 (closed by the `with` below, once it opened)
    except tarfile.TarError:
        raise HubError(f"{label} is neither a zip nor a tar archive") from None
    with tf:
        # git archive writes the commit id as the pax global header's `comment`.
        yield _tar_members(tf), lambda: tf.pax_headers.get("comment", "").strip()


def archive_commit(archive: Path, *, label: str | None = None) -> str | None:
    """The commit id `git archive` recorded in the archive (zip comment or pax header), if there is one."""
    label = label or archive.name
    try:
        with _members(archive, label) as (members, comment):
            for _ in members:  # the tar's global header is read as the members are
                pass
            found = comment()
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as e:
        raise UnsafeArchiveError(f"{label} cannot be read: {_reason(e)}") from None
    return found if found and COMMIT.match(found) else None


def _parts(name: str) -> list[str]:
    if "\x00" in name or "\\" in name:
        raise UnsafeArchiveError(f"archive member {name!r} has a backslash or NUL in its name")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} points outside the archive ('..')")
    return parts


def _common_top(members: list[_Member]) -> str | None:
    # Forges wrap everything in one folder (`repo-main/`); strip it if that is all there is.
    tops = {_parts(m.name)[0] for m in members if _parts(m.name)}
    if len(tops) != 1:
        return None
    (top,) = tops
    only_dir = all(len(_parts(m.name)) > 1 or m.kind == "dir" for m in members)
    return top if only_dir else None


def extract_archive(
    archive: Path, dest: Path, *, max_bytes: int | None = None, label: str | None = None
) -> None:
    """Extract `archive` into the empty folder `dest`, stripping its single top-level folder.

    Members with absolute paths or `..`, links that resolve outside `dest`, devices, duplicate members,
    NUL bytes in names or link targets, zip members compressed other than stored or deflated, links or
    extended tar headers over their caps, more than MAX_MEMBERS members, and archives over `max_bytes`
    (MAX_EXTRACTED_BYTES by default; declared sizes checked before anything is written, actual bytes counted
    while writing) raise UnsafeArchiveError. Nothing is ever created outside `dest`: every folder, file and link is made only
    where its parent resolves, on disk, inside `dest`. On error, `dest` may hold a partial tree: extract
    into a temporary folder and rename it into place. `label` names the archive in messages.
    """
    label = label or archive.name
    try:
        _extract(archive, dest, MAX_EXTRACTED_BYTES if max_bytes is None else max_bytes, label)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as e:
        # A duplicate member, a truncated or corrupt archive: one clear error, not a traceback.
        raise UnsafeArchiveError(f"{label} cannot be extracted: {_reason(e)}") from None


def _reason(e: BaseException) -> str:
    if isinstance(e, FileExistsError):
        return f"{Path(e.filename or '').name!r} appears twice in it"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _extract(archive: Path, dest: Path, max_bytes: int, label: str) -> None:
    with _members(archive, label) as (found, _):
        members = []
        for m in found:
            members.append(m)
            if len(members) > MAX_MEMBERS:
                raise UnsafeArchiveError(f"{label} has more than {MAX_MEMBERS} members")
        for m in members:
            _parts(m.name)
            if "\x00" in m.link:
                raise UnsafeArchiveError(f"archive member {m.name!r} has a NUL in its link target")
        total = sum(m.size for m in members)
        if total > max_bytes:
            raise UnsafeArchiveError(f"{label} would extract to {total} bytes, over the {max_bytes} cap")
        top = _common_top(members)
        root = os.path.realpath(dest)

        def place(name: str) -> Path | None:
            parts = _parts(name)
            if top is not None:
                parts = parts[1:]
            return dest.joinpath(*parts) if parts else None

        links = []
        written = 0
        for m in members:
            path = place(m.name)
            if path is None:
                continue
            if m.kind == "dir":
                _make_dirs(path, root, m.name)
            elif m.kind == "file":
                _make_dirs(path.parent, root, m.name)
                with m.open() as src, open(path, "xb") as out:
                    written = _copy(src, out, m, written, max_bytes)
                path.chmod(0o755 if m.executable else 0o644)
            else:
                links.append((m, path))
        # Hard links (copies) next, then symbolic links, so that nothing is written or copied through a link.
        links.sort(key=lambda ml: ml[0].kind != "hardlink")
        for m, path in links:
            _place_link(m, path, place, root)
        # Checked again once all exist, so chains of links and `..` after a link resolve as the OS would;
        # each link was checked before it was made, so this can only find a link that points out, never
        # anything created outside.
        for m, path in links:
            if not _inside(os.path.realpath(path), root):
                raise UnsafeArchiveError(f"archive member {m.name!r} links outside the archive ({m.link!r})")


def _copy(src: IO[bytes], out: IO[bytes], m: _Member, written: int, max_bytes: int) -> int:
    # The declared sizes were checked; these are the bytes that arrive. zipfile stops at a member's declared
    # size (and then fails its CRC), so this only catches a reader that does not: defence in depth, 1 MiB at
    # a time in memory.
    size = 0
    while chunk := src.read(1 << 20):
        size += len(chunk)
        if size > m.size:
            raise UnsafeArchiveError(f"archive member {m.name!r} inflates beyond its declared {m.size} bytes")
        if written + size > max_bytes:
            raise UnsafeArchiveError(f"archive would extract to more than the {max_bytes} byte cap")
        out.write(chunk)
    return written + size


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _make_dirs(path: Path, root: str, name: str) -> None:
    # One level at a time, each checked on disk, so that a folder is never made through a link that
    # leads out (mkdir(parents=True) would follow it). Every path here is `root` or below it.
    if not _inside(os.path.realpath(path), root):
        raise UnsafeArchiveError(
            f"archive member {name!r} would be written through a link out of the archive"
        )
    if path.is_dir():
        return
    _make_dirs(path.parent, root, name)
    path.mkdir()  # a file or a dangling link already there: FileExistsError, reported as a duplicate


def _place_link(m: _Member, path: Path, place: Callable[[str], Path | None], root: str) -> None:
    _make_dirs(path.parent, root, m.name)
    if os.path.lexists(path):
        raise UnsafeArchiveError(f"archive member {m.name!r} is a link over another member")
    if m.kind == "hardlink":
        # A tar hard link names another member; copy it, after checking it is one of ours.
        target = place(m.link)
        if (
            target is None
            or not target.is_file()
            or target.is_symlink()
            or not _inside(os.path.realpath(target), root)
        ):
            raise UnsafeArchiveError(
                f"archive member {m.name!r} links to {m.link!r}, not a file in the archive"
            )
        shutil.copyfile(target, path)
        return
    if m.link.startswith("/") or not m.link:
        raise UnsafeArchiveError(f"archive member {m.name!r} is a link to the absolute path {m.link!r}")
    # Where the link leads, read both as written and through the links already on disk.
    parent = os.path.realpath(path.parent)
    joined = os.path.join(parent, m.link)
    if not (_inside(os.path.normpath(joined), root) and _inside(os.path.realpath(joined), root)):
        raise UnsafeArchiveError(f"archive member {m.name!r} links outside the archive ({m.link!r})")
    os.symlink(m.link, path)
