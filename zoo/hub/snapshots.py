"""Remote hub repos cached by commit: `<zoo home>/hub/<host>/<owner>/<repo>/<commit>/`.

Each repo folder also holds `refs.json`, the ref → commit index (`HEAD`, branches, tags, short SHAs, as they
were when fetched), so a repeated load makes no network call. A snapshot appears in one rename once it is
complete, and fetching happens under a file lock per repo, so concurrent loads (threads or processes)
download and extract once and all see the same intact folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .._common import COMMIT, write_text_atomic
from ..errors import HubError
from ..store import download, integrity, owners, paths
from ..store.locks import file_lock
from ..store.small_files import read_small
from .archives import archive_commit, extract_archive
from .fetch import fetch
from .specs import HubSpec

INDEX = "refs.json"
# An index holds one line of about 60 bytes a ref: 4 MiB is some 70,000 refs, more than any repo's
# branches and tags, and bounds what a file planted in its place makes zoo read.
INDEX_MAX = 4 << 20
_SHORT_SHA = re.compile(
    r"^[0-9a-fA-F]{7,63}$"
)  # GitHub's shortest displayed SHA, to avoid hex-named branches


def repo_dir(spec: HubSpec) -> Path:
    """The cache folder of a remote repo (or archive URL), holding its snapshots and ref index."""
    root = paths.home() / "hub" / spec.host
    if spec.kind == "url":
        return root / "archives" / hashlib.sha256(spec.base.encode()).hexdigest()[:20]
    return root.joinpath(*spec.path.split("/"))


def _ref_key(spec: HubSpec) -> str:
    return "archive" if spec.kind == "url" else spec.ref


def read_index(folder: Path) -> dict[str, str]:
    """The ref → commit index of a repo cache folder: empty if there is none, if its text is not an index
    (a crash mid-write, a hand edit: the next fetch rewrites it), or if it is a link someone planted (zoo
    writes it as a plain file, and replaces such a link). Anything else at its name (a FIFO, which would
    block a plain read forever; a folder, which no rename can replace) is one HubError saying to remove it.
    """
    index = folder / INDEX
    if index.is_symlink():
        return {}
    data = read_small(index, limit=INDEX_MAX, what="a ref index", error=HubError)
    try:
        parsed = json.loads(data) if data is not None else {}
    except (ValueError, RecursionError):
        return {}
    refs = parsed.get("refs", {}) if isinstance(parsed, dict) else {}
    if not isinstance(refs, dict):
        return {}
    return {k: v for k, v in refs.items() if isinstance(k, str) and isinstance(v, str) and COMMIT.match(v)}


def _write_index(folder: Path, refs: dict[str, str]) -> None:
    index = folder / INDEX
    try:
        write_text_atomic(index, json.dumps({"version": 1, "refs": dict(sorted(refs.items()))}, indent=1))
    except OSError as e:
        raise paths.cannot_write(index, e, doing="write the ref index") from None


def commits(folder: Path) -> list[str]:
    """The commits of a repo that have a snapshot in its cache folder."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if COMMIT.match(p.name) and _real_dir(p))


def _real_dir(path: Path) -> bool:
    # A snapshot is a folder zoo made; a link planted in its place (to code elsewhere) is not one.
    return path.is_dir() and not path.is_symlink()


def cached(spec: HubSpec) -> Path | None:
    """The snapshot `spec` resolves to without the network, if there is one.

    The ref index comes first (a branch means what it meant when fetched); then a full commit id names its
    folder, and an abbreviated one (7+ hex digits) the single cached commit it starts.
    """
    folder = repo_dir(spec)
    commit = read_index(folder).get(_ref_key(spec))
    if commit and _real_dir(folder / commit):
        return folder / commit
    if spec.kind == "url" or not _SHORT_SHA.match(spec.ref):
        return None
    ref = spec.ref.lower()
    matches = [c for c in commits(folder) if c.startswith(ref)]
    if len(matches) > 1:
        raise HubError(f"{spec.display}: {ref} is ambiguous among cached commits {', '.join(matches)}")
    return folder / matches[0] if matches else None


def _offline_error(spec: HubSpec) -> HubError:
    refs = sorted(read_index(repo_dir(spec)))
    have = f"; cached: {', '.join(refs)}" if refs and spec.kind != "url" else ""
    return HubError(
        f"{spec.display} is not in the zoo cache and offline mode is on (offline=True or ZOO_OFFLINE=1); "
        f"load it once with the network{have}"
    )


_TEMPORARY = re.compile(r"\.tmp-(?P<tag>[A-Za-z0-9_-]{1,16}\.[0-9]{1,10}\.[0-9a-f]{6})-")


def _clean_leftovers(folder: Path) -> None:
    # Called under the repo's lock, which on a file system without coherent locks may not keep out a loader
    # on another machine: only temporaries whose writer is gone go (owners.gone), and those of a zoo before
    # owner tags (`.tmp-archive`, `.tmp-extract-*`), which wrote them under this lock.
    for p in folder.glob(".tmp-*"):
        tagged = _TEMPORARY.match(p.name)
        tag = tagged["tag"] if tagged else ""
        if owners.parse(tag) is not None:
            try:
                if not owners.gone(tag, p.lstat().st_mtime):
                    continue
            except OSError:
                continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def snapshot(
    spec: HubSpec,
    *,
    force_reload: bool = False,
    offline: bool | None = None,
    verbose: bool = False,
    max_bytes: int | None = None,
) -> Path:
    """The local folder of a remote spec's snapshot, fetched and extracted first if it is not cached."""
    if not spec.is_remote:
        raise HubError(f"{spec.display} is a local folder; it has no snapshot")
    offline = download.is_offline(offline)
    if offline and force_reload:
        raise HubError("force_reload needs the network, but offline mode is on")
    if not force_reload and (found := cached(spec)):
        return found
    if offline:
        raise _offline_error(spec)
    folder = repo_dir(spec)
    # One level at a time below the zoo home, refusing a link planted on the way (StorageError):
    # snapshots, the index and the lock would otherwise be written wherever it points.
    paths.make_dirs(folder)
    lock = folder / ".lock"
    if lock.is_symlink():  # a planted link; zoo's locks refuse links, and this folder is zoo's own
        lock.unlink(missing_ok=True)
    with file_lock(lock, what=f"the snapshot of {spec.display}"):
        # Another thread or process may have fetched it while this one waited.
        if not force_reload and (found := cached(spec)):
            return found
        _clean_leftovers(folder)
        return _fetch_and_extract(
            spec, folder, force_reload=force_reload, verbose=verbose, max_bytes=max_bytes
        )


def _fetch_and_extract(
    spec: HubSpec, folder: Path, *, force_reload: bool, verbose: bool, max_bytes: int | None
) -> Path:
    # Named for this writer (`.tmp-<host>.<pid>.<random>-...`): no two loaders share a temporary, and a later
    # one can tell an abandoned temporary from one still being written.
    tag = owners.new_tag()
    archive = folder / f".tmp-{tag}-archive"
    staging = None
    try:
        fetch(spec.archive_url, archive, what=spec.display, verbose=verbose)
        commit = archive_commit(archive, label=spec.display)
        pinned = spec.ref.lower() if spec.kind != "url" and COMMIT.match(spec.ref.lower()) else None
        if commit is not None and pinned is not None and commit != pinned:
            # Recording it under the pin would make the pin mean other code, for good (it is never refetched).
            raise HubError(
                f"{spec.display}: the server sent an archive of commit {commit}, not the commit asked for; "
                "nothing was cached"
            )
        if commit is None:
            # No commit recorded (a hand-made archive): a full SHA asked for names itself, else the content does.
            full = spec.kind != "url" and COMMIT.match(spec.ref.lower())
            commit = spec.ref.lower() if full else integrity.sha256_file(archive)
        target = folder / commit
        # Another ref may already have brought this commit: a commit's tree never changes, so keep it,
        # unless force_reload asks for a fresh copy.
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()  # planted in the snapshot's place: replaced by the real one below
        if force_reload or not target.is_dir():
            staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".tmp-{tag}-extract-"))
            extract_archive(archive, staging, max_bytes=max_bytes, label=spec.display)
            if not (staging / "hubconf.py").is_file():
                raise HubError(f"{spec.display}: the archive has no hubconf.py at its top level")
            if target.exists():
                # Swap the fresh copy in, then drop the old one.
                old = folder / f".tmp-{tag}-old-{commit}"
                os.rename(target, old)
                os.rename(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(staging, target)
            staging = None
        refs = read_index(folder)
        refs[_ref_key(spec)] = commit
        _write_index(folder, refs)
        return target
    finally:
        # The archive, and what zoo.store.download keeps beside it (.part, .lock, its digest record).
        integrity.forget(archive)
        for p in folder.glob(f"{archive.name}*"):
            p.unlink(missing_ok=True)
        if staging is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(staging)
