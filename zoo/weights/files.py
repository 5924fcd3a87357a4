"""A manifest entry to a verified local weight file, and that file to a state dict.

Order: the zoo cache; files bundled with the repo or package; torch's hub cache; `ZOO_WEIGHTS_MIRROR`
(`{mirror}/{file_name}`, an http(s) or file URL or a folder); then each URL of the entry. Every file is
checked against the entry's sha256 before it is used; a bad file in the zoo cache is deleted, one found
elsewhere is passed over. Only a fresh hash condemns a file: a remembered digest (a record in the zoo home,
which anyone who can write there can change) may clear a file, never get it deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from .._common import redact, show_url
from ..errors import DownloadError, IntegrityError, StorageError, WeightsNotFoundError, ZooError
from ..store import integrity, paths
from ..store.download import download, is_offline, is_remote, lock_for
from . import manifest
from .manifest import Weights

if TYPE_CHECKING:  # torch loads only when a state dict is read, not for `zoo cache ls`
    from .serialization import StateDict


def bundled_dir() -> Path:
    """The weight files that ship inside the package (`zoo/weights/data/`)."""
    return Path(str(resources.files(__package__) / "data"))


def candidates(w: Weights) -> list[Path]:
    """Every local place the file of `w` may already be, in the order they are tried."""
    dirs = [paths.weights_dir(), bundled_dir(), paths.torch_checkpoints_dir()]
    return [d / w.file_name for d in dirs]


def find_local(w: Weights) -> Path | None:
    """The first local copy of `w`'s file (not yet verified), or None."""
    return next((p for p in candidates(w) if p.is_file()), None)


def expected_sha256(w: Weights) -> str | None:
    """The hash `w`'s file must have: the manifest's, or the full one pinned by `zoo cache verify --pin`."""
    pinned = integrity.pins().get(w.key) if w.sha256_is_prefix else None
    if pinned and pinned.startswith(w.sha256.lower()):  # an empty sha256 (not known) takes any pin
        return pinned
    return w.sha256


def mirror_url(w: Weights) -> str | None:
    """`{ZOO_WEIGHTS_MIRROR}/{file_name}` when a mirror is set (a query on the mirror, such as an access
    token, stays after the path)."""
    mirror = os.environ.get("ZOO_WEIGHTS_MIRROR", "").strip()
    if not mirror:
        return None
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().absolute().as_uri()
    try:
        parts = urlsplit(mirror)
        parts.port  # noqa: B018  (a port of letters fails here, not later with the URL in requests' text)
    except ValueError:
        raise DownloadError(f"ZOO_WEIGHTS_MIRROR={show_url(mirror)} is not a valid URL or folder") from None
    # Quoted, so that a name's `?`, `#` or `%` stays part of the path on an http mirror and a file URL alike.
    path = f"{parts.path.rstrip('/')}/{quote(w.file_name, safe='')}"
    return urlunsplit(parts._replace(path=path, fragment=""))


def sources(w: Weights) -> list[str]:
    """The URLs `w`'s file may be fetched from, in order: the mirror, then the entry's own."""
    mirror = mirror_url(w)
    return [*([mirror] if mirror else []), *w.urls]


def verified_file(w: Weights, *, progress: bool | None = None, offline: bool | None = None) -> Path:
    """A verified local path to the file of `w`, fetching it into the zoo cache if needed (a file of
    `parts` is joined there from its parts, each verified first)."""
    expected = expected_sha256(w)
    tried: list[str] = []
    zoo_copy = paths.weights_dir() / w.file_name
    for path in candidates(w):
        if path.is_file() and _usable(path, expected, w.key, tried):
            return path
    if w.parts:
        pieces = [verified_file(p, progress=progress, offline=offline) for p in w.parts]
        return _join(w, pieces, expected)
    offline = is_offline(offline)
    skipped = []
    mismatch = bool(tried)
    for url in sources(w):
        if offline and is_remote(url):
            skipped.append(url)
            continue
        try:
            return download(
                url, zoo_copy, sha256=expected, progress=progress, size=w.size, offline=offline, label=w.key
            )
        except (DownloadError, IntegrityError) as e:
            tried.append(redact(str(e)))
            mismatch = mismatch or isinstance(e, IntegrityError)
        except StorageError as e:  # a read-only zoo home, a full disk: the next source cannot do better
            tried.append(redact(str(e)))
            break
        except OSError as e:
            tried.append(redact(str(paths.cannot_write(zoo_copy, e))))
            break
    message = _not_found(w, expected, tried, skipped)
    raise IntegrityError(message) if mismatch else WeightsNotFoundError(message)


def verified_files(
    w: Weights, *, progress: bool | None = None, offline: bool | None = None
) -> dict[str, Path]:
    """Verified local paths of `w`'s file ("weights") and of each other file it needs, by role."""
    found = {"weights": verified_file(w, progress=progress, offline=offline)}
    for role, other in w.files.items():
        found[role] = verified_file(other, progress=progress, offline=offline)
    return found


def _join(w: Weights, pieces: list[Path], expected: str | None) -> Path:
    """Join the verified `pieces` into `w`'s file in the zoo cache, check it, and drop the cached pieces.

    Under the file's lock, written beside it under a hidden name and renamed into place, so no reader sees a
    half-joined file; a join that does not have the expected hash is deleted, never used.
    """
    target = paths.weights_dir() / w.file_name
    paths.make_dirs(target.parent)
    with lock_for(target):
        tried: list[str] = []
        if target.is_file() and _usable(target, expected, w.key, tried, locked=True):
            return target  # another process joined it meanwhile
        digest = hashlib.sha256()
        temporary = None
        try:
            # mkstemp creates with O_EXCL: a link planted at the name is never written through.
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".join", dir=target.parent)
            temporary = Path(name)
            with os.fdopen(fd, "wb") as out:
                for piece in pieces:
                    with open(piece, "rb") as f:
                        while chunk := f.read(1 << 20):
                            digest.update(chunk)
                            out.write(chunk)
            actual = digest.hexdigest()
            if not integrity.matches(expected, actual):
                raise IntegrityError(
                    f"weights {w.key}: joining {' + '.join(p.file_name for p in w.parts)} gave sha256 "
                    f"{actual}, expected {expected}"
                )
            os.replace(temporary, target)
        except OSError as e:
            raise paths.cannot_write(target, e) from None
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    temporary.unlink()
        integrity.remember(target, actual)
        integrity.warn_if_partial(w.key, expected)
        # The pieces are only a way to the joined file: the zoo cache keeps one copy (resnet101: 170 MB). A
        # piece that is also a file of its own for some entry (a main file, another's companion) stays.
        owned = {f.file_name for e in manifest.load().weights.values() for f in (e, *e.files.values())}
        for piece in pieces:
            if piece.parent == paths.weights_dir() and piece.name not in owned:
                with contextlib.suppress(OSError), lock_for(piece):
                    integrity.forget(piece)
                    piece.unlink()
    return target


@contextlib.contextmanager
def _hashing(path: Path, locked: bool) -> Iterator[None]:
    """Hold the lock of a zoo-cache file whose digest is not remembered while it is hashed: of many processes
    (torchrun ranks) that find it so, one hashes it and the others then find the record. A lock that cannot
    be taken (a read-only cache) only costs the others a hash of their own."""
    lock = None
    if not locked and path.parent == paths.weights_dir() and integrity.known_digest(path) is None:
        lock = lock_for(path)
        try:
            lock.acquire()
        except (OSError, ZooError):
            lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _usable(path: Path, expected: str | None, what: str, tried: list[str], *, locked: bool = False) -> bool:
    """Whether the local file `path` has the `expected` sha256 (then marked used); a bad zoo-cache copy is
    deleted. `locked`: the caller holds the file's lock already."""
    try:
        with _hashing(path, locked):
            integrity.check(path, expected, what=what)
            touch(path)
        return True
    except IntegrityError as e:
        reason = redact(_after_colon(e))
    except OSError as e:  # unreadable (permissions, a dangling mount): passed over, never deleted
        tried.append(f"{path}: cannot read it ({e.strerror or e})")
        return False
    # The check may have gone by a remembered digest: judge by a fresh hash before deleting or passing over.
    own = path.parent == paths.weights_dir()
    fresh = _rehash_or_discard(path, expected, delete=own, locked=locked)
    if fresh is not None and integrity.matches(expected, fresh):
        integrity.warn_if_partial(what, expected)
        touch(path)
        return True
    tried.append(reason)
    return False


def discard_if_bad(path: Path, expected: str | None) -> bool:
    """Delete `path` if a fresh hash shows it does not have the `expected` sha256; True if it was deleted.

    Hashed again under the file's lock, since another process may have just put a good copy there, and
    never by a remembered digest, which is no evidence against a file. A read-only cache keeps the file.
    """
    if not path.is_file():
        return False
    return _rehash_or_discard(path, expected, delete=True) is None and not path.is_file()


def _rehash_or_discard(path: Path, expected: str | None, *, delete: bool, locked: bool = False) -> str | None:
    """The fresh sha256 of `path`, or None when the file is gone (deleted here for being bad, or vanished).

    Deleted only under the file's lock: taken here, or already held by the caller (`locked`; taking it
    again through another lock object would wait for itself)."""
    lock = lock_for(path) if delete and not locked else None
    if lock is not None:
        try:
            lock.acquire()
        except (OSError, ZooError):  # a read-only cache (or a lock held too long): judged, but kept
            lock = None
    may_delete = lock is not None or (delete and locked)
    try:
        if not path.is_file():
            return None
        try:
            actual = integrity.digest(path, rehash=True)
        except OSError:
            return None
        if may_delete and not integrity.matches(expected, actual):
            integrity.forget(path)
            with contextlib.suppress(OSError):  # cannot delete (read-only): it is still never used
                path.unlink()
                return None
        return actual
    finally:
        if lock is not None:
            lock.release()


def touch(path: Path) -> None:
    """Mark a zoo-cache file as used now (its atime), for `zoo cache ls` and least-recently-used pruning."""
    if path.parent != paths.weights_dir():
        return
    # mark_used keeps the remembered digest valid across the utime (which moves the ctime) and leaves a
    # read-only cache as it is.
    integrity.mark_used(path)


def _after_colon(e: Exception) -> str:
    text = str(e)
    return text.split(": ", 1)[1] if ": " in text else text


def _offline_choices(w: Weights) -> str:
    """What would give a model of `w.arch` without this download: one line of choices."""
    bundled = [
        b.key
        for b in manifest.load().for_arch(w.arch)
        if b.key != w.key and (bundled_dir() / b.file_name).is_file()
    ]
    choices = [f"weights={k!r} (bundled with zoo, needs no network)" for k in bundled]
    choices += [
        f"ZOO_WEIGHTS_MIRROR set to a folder or URL holding {w.file_name}",
        # One of an entry's other files (`key:role`, `key:role[i]`) is fetched with its entry.
        f"`zoo fetch {w.key.split(':')[0]}` on a machine with network, then copy its {paths.weights_dir()} here",
        "pretrained=False / weights=None (random weights)",
    ]
    return "what works offline: " + "; or ".join(choices)


def _not_found(w: Weights, expected: str | None, tried: list[str], skipped: list[str]) -> str:
    looked = [str(p) for p in candidates(w)]
    lines = [f"weights {w.key}: no verified copy of {w.file_name} (sha256 {expected or 'not known'})"]
    lines.append("looked in: " + ", ".join(looked))
    if tried:
        lines.append("tried: " + "; ".join(tried))
    if skipped:
        lines.append(f"offline, so not downloaded from: {', '.join(show_url(u) for u in skipped)}")
    elif not sources(w):
        lines.append(f"the entry has no URL: put {w.file_name} into {paths.weights_dir()}")
    lines.append(_offline_choices(w))
    return "\n".join(lines)


def prepare_copy(path: Path) -> None:
    """Write the safetensors copy of the verified zoo-cache file `path` now (`zoo fetch`), if it gets one; a
    copy that cannot be written is a warning, never an error (loads then read the file itself)."""
    from . import copies

    if _from_copy(path) is None:
        copies.wait()  # for the writer _from_copy queued, if any


def _from_copy(path: Path) -> StateDict | None:
    """The state dict from the safetensors copy of the verified zoo-cache file `path`, or None when it has no
    usable copy; a writer of one is then queued (`copies.make_later`) unless copies are off for it."""
    from . import copies

    digest = integrity.known_digest(path) if copies.eligible(path) else None
    if digest is None:
        return None
    state_dict = copies.load(path, digest)
    if state_dict is None and copies.wanted(path, digest):
        copies.make_later(path, digest)
    return state_dict


def load_state_dict(selected: Weights | Path, *, progress: bool = True) -> StateDict:
    """The state dict of manifest weights (verified first) or of a local file, loaded without running code.

    Files of the zoo's caches are memory-mapped (they are only ever replaced by renaming); a user's own file
    is read into memory, so saving a checkpoint over it later cannot pull the weights from under the model.
    A verified `.pth` of the zoo cache is read from its safetensors copy once there is one (`copies`).
    """
    from . import serialization

    if isinstance(selected, Weights):
        # progress=True (torchvision's default) still shows a bar only on a terminal, never in logs.
        path = verified_file(selected, progress=None if progress else False)
        state_dict = _from_copy(path)
        return state_dict if state_dict is not None else serialization.load_state_dict(path, mmap=True)
    return serialization.load_state_dict(selected)
