"""Safetensors copies of verified torch weight files, so that warm loads skip torch's unpickler.

torch's weights-only unpickler is pure Python: resnet101's 626 tensors take about 41 ms to read from a
memory-mapped `.pth`, against 9 ms for the same tensors mapped from a safetensors file. So once a `.pth` of
the zoo cache has been verified, zoo keeps a safetensors copy of its state dict in `weights/safetensors/`,
and later loads map the copy instead.

- A copy is written once, by a process of its own started when the loading process exits (so the load that
  finds none is no slower), from a fresh reading of the source, into a temporary that is renamed into place only after every tensor read back from
  it equals the source's, bit for bit.
- Its record, `<copy>.json`, names the source file, the source's full sha256 and the copy's own; the copy's
  header names the source's sha256 too. A copy is used only when both name the digest its source was just
  verified to have, and the copy verifies against its own recorded sha256 (remembered by stamp, like every
  file of the cache). Anything else is loaded from the source as before, and the copy is written anew.
- `zoo cache rm/prune` remove a copy with its source; `ZOO_SAFETENSORS_COPIES=0` switches copies off.
- A state dict that safetensors cannot hold as it is (tensors sharing storage) gets a record saying so and
  no copy, so it is not tried again.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ZooError
from ..store import integrity, owners, paths, small_files
from ..store.download import lock_for

if TYPE_CHECKING:
    from .serialization import StateDict

SETTING = "ZOO_SAFETENSORS_COPIES"
FOLDER = "safetensors"
RECORD_MAX = 4096  # bytes: a record is about 300
# Torch files only: a safetensors source is fast already, and a pre-1.6 legacy file is rare and small.
SOURCE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")
_META_SOURCE = "zoo.source_sha256"
_META_VERSIONS = "zoo.module_versions"  # state_dict()._metadata: the per-module versions loaders read
# Records name full digests: a prefix (or "") would make every comparison with it true.
_DIGEST = re.compile(r"[0-9a-f]{64}")

_pending: dict[str, subprocess.Popen] = {}
_deferred: dict[str, tuple[Path, str, Path]] = {}  # source -> (source, its sha256, the zoo home of the load)
_pending_lock = threading.Lock()


def enabled() -> bool:
    """Whether copies are made and used: `ZOO_SAFETENSORS_COPIES` unset, or anything but 0/false/no/off."""
    return os.environ.get(SETTING, "").strip().lower() not in ("0", "false", "no", "off")


def folder() -> Path:
    """Where the copies live: `$ZOO_HOME/weights/safetensors/`."""
    return paths.weights_dir() / FOLDER


def copy_path(source: Path) -> Path:
    """The copy of the zoo-cache file `source`: `weights/safetensors/<file name>.safetensors`."""
    return folder() / f"{source.name}.safetensors"


def record_path(copy: Path) -> Path:
    """The record of `copy`: its source, the source's sha256 and the copy's own."""
    return copy.with_name(copy.name + ".json")


def eligible(source: Path) -> bool:
    """Whether `source` gets a copy: a torch file of the zoo cache itself, with copies switched on."""
    return enabled() and source.parent == paths.weights_dir() and source.suffix.lower() in SOURCE_SUFFIXES


def read_record(copy: Path) -> dict[str, Any] | None:
    """The record of `copy` if it is one zoo wrote (a small JSON object with the expected fields), else None."""
    try:
        data = small_files.read_small(record_path(copy), limit=RECORD_MAX, what="a safetensors copy record")
        record = json.loads(data) if data is not None else None
    except (ZooError, OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("source"), str):
        return None
    if not _is_digest(record.get("source_sha256")):
        return None
    if record.get("sha256") is not None and not _is_digest(record.get("sha256")):
        return None
    return record


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def _regular(path: Path) -> bool:
    """Whether `path` itself (not a link's target) is a regular file: a FIFO or a device planted in its
    place would block or never end the hashing."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def load(source: Path, source_sha256: str) -> StateDict | None:
    """The state dict from the copy of `source` (verified to have `source_sha256`), or None when there is no
    usable copy: none yet, made from another source, not matching its own recorded digest, or unreadable."""
    from safetensors import SafetensorError

    copy = copy_path(source)
    record = read_record(copy)
    if record is None or record["source"] != source.name or record["source_sha256"] != source_sha256:
        return None
    if record.get("sha256") is None:  # no copy can be made of this source (the record says why)
        return None
    if not _regular(copy):
        return None
    try:
        ok, _ = integrity.verify(copy, record["sha256"])
        if not ok:
            return None
        with _open(copy) as f:
            metadata = f.metadata() or {}
            if metadata.get(_META_SOURCE) != source_sha256:
                return None
            state_dict: Any = OrderedDict(_tensors(f))
    except (OSError, SafetensorError, RuntimeError, ValueError):
        return None
    versions = metadata.get(_META_VERSIONS)
    if versions:
        with contextlib.suppress(ValueError, TypeError):  # not JSON, or not an object: no versions
            state_dict._metadata = OrderedDict(json.loads(versions))
    return state_dict


# Up to this size a copy is read with pread instead of mapped: safetensors' mapping costs about 13 us a tensor
# in Python, which for small models with many tensors is most of the read (shufflenet_v2_x0_5, 5 MiB in 338
# tensors: 4.5 ms mapped, 2.4 ms read); past it, reading costs more than mapping (resnet18, 44 MiB: 31 ms
# read, 1.7 ms mapped), and a mapped file's pages are shared between processes.
PREAD_MAX = 16 << 20


def _open(copy: Path) -> Any:
    from safetensors import safe_open

    small = copy.stat().st_size <= PREAD_MAX
    try:
        return safe_open(str(copy), framework="pt", backend="pread" if small else "mmap")
    except TypeError:  # safetensors before 0.8 has no `backend`: it maps
        return safe_open(str(copy), framework="pt")


def _tensors(f: Any) -> Any:
    if hasattr(f, "get_tensors"):  # one call for all (safetensors 0.8): 20% less than one call per tensor
        return f.get_tensors().items()
    return ((k, f.get_tensor(k)) for k in f.keys())  # noqa: SIM118  (a safe_open is not iterable)


def wanted(source: Path, source_sha256: str) -> bool:
    """Whether to write a copy of `source` that `load` found no usable copy of: unless copies are off, or its
    record says that no copy can be made of this very file."""
    if not eligible(source) or not _writable(folder() if folder().is_dir() else source.parent):
        # A read-only cache (shared on a cluster) keeps using the copies it has, but gets no new ones: a
        # process started for each load would only find that it cannot write.
        return False
    record = read_record(copy_path(source))
    return not (
        record is not None
        and record["source"] == source.name
        and record["source_sha256"] == source_sha256
        and record.get("sha256") is None
    )


def _writable(where: Path) -> bool:
    return os.access(where, os.W_OK | os.X_OK)


def make_later(source: Path, source_sha256: str) -> None:
    """Have the copy of `source` written once this process is done with its work: at exit (or at `wait()`),
    by a process of its own (`python -m zoo.weights.copies`).

    Not now, and not on a thread: a thread reading the source held the GIL (torch's unpickler), and made the
    load that started it 2.3x slower (resnet101: 57 -> 133 ms); a process started at once took a core from
    the build that follows (shufflenet_v2_x0_5 on 2 busy cores: 34 -> 61 ms). At exit it costs the caller
    nothing: the child is started (0.3 ms) and outlives it, writes into the zoo home of the load, and reports
    a failure on stderr in one line."""
    with _pending_lock:
        _deferred[str(source)] = (source, source_sha256, paths.home())


def start_deferred() -> None:
    """Start the writers of the copies `make_later` queued (run at exit)."""
    with _pending_lock:
        queued = list(_deferred.values())
        _deferred.clear()
    for source, digest, home in queued:
        _start(source, digest, home)


def _start(source: Path, source_sha256: str, home: Path) -> None:
    key = str(source)
    with _pending_lock:
        running = _pending.get(key)
        if running is not None and running.poll() is None:
            return
        package_root = str(Path(__file__).resolve().parents[2])  # where `zoo` is imported from
        env = {
            **os.environ,
            "ZOO_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
            "OMP_NUM_THREADS": "1",  # it only reads, compares and writes
        }
        try:
            _pending[key] = subprocess.Popen(
                [sys.executable, "-m", "zoo.weights.copies", str(source), source_sha256],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C meant for the caller does not cut a copy short
            )
        except OSError as e:
            warnings.warn(
                f"zoo: no safetensors copy of {source.name} (cannot start a process: {e})", stacklevel=2
            )
            return
        # Lowest priority: whatever runs next on this machine matters more than a copy.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, _pending[key].pid, 19)


def wait(timeout: float | None = None) -> None:
    """Write the copies queued so far and wait for them (tests, benchmarks, `zoo fetch`), at most `timeout`
    seconds each."""
    start_deferred()
    with _pending_lock:
        running = list(_pending.values())
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)


atexit.register(start_deferred)
if hasattr(os, "register_at_fork"):  # a forked worker (a DataLoader's) leaves the queue to its parent
    os.register_at_fork(after_in_child=_deferred.clear)


def _main(argv: list[str]) -> int:
    """`python -m zoo.weights.copies SOURCE SHA256`: write the copy unless another process is writing it."""
    source, digest = Path(argv[0]), argv[1]
    try:
        make(source, digest, wait=False)
    except Exception as e:  # a copy is only a speed-up: loads go on from the source
        print(
            f"zoo: no safetensors copy of {source.name} ({' '.join(str(e).split())[:300]}); "
            "its loads keep torch.load's speed",
            file=sys.stderr,
        )
        return 1
    return 0


def make(source: Path, source_sha256: str, *, wait: bool = True) -> Path | None:
    """Write the copy of the verified zoo-cache file `source` (sha256 `source_sha256`) unless a good one exists;
    its path, or None when none can be made (a record then says why). `wait=False` gives up at once if
    another process holds the copy's lock (it is writing the same copy)."""
    copy = copy_path(source)
    paths.make_dirs(copy.parent)
    lock = lock_for(copy, show=False)
    try:
        lock.acquire(timeout=None if wait else 0)
    except ZooError:
        if wait:
            raise
        return None
    try:
        # Imported under the lock: of many processes (torchrun ranks) starting the same copy, those that find
        # it taken end in 0.1 s, without importing torch.
        from safetensors import safe_open
        from safetensors.torch import save_file

        from . import serialization

        if load(source, source_sha256) is not None:
            return copy
        sweep()
        before = source.stat()
        state_dict = serialization.load_state_dict(source, mmap=True)
        # The tensors read must be the verified file's: its stamp unchanged, and its digest the one verified
        # (remembered since the load verified it; hashed here otherwise).
        if _stamp(source.stat()) != _stamp(before) or integrity.digest(source) != source_sha256:
            return None
        reason = _unsupported(state_dict)
        if reason is not None:
            remove(source)
            _write_record(copy, source, source_sha256, None, reason=reason)
            return None
        metadata = {_META_SOURCE: source_sha256}
        versions = getattr(state_dict, "_metadata", None)
        if versions:
            metadata[_META_VERSIONS] = json.dumps(versions)
        # Tagged with its writer, so that a writer killed mid-copy leaves nothing for long (`_sweep`).
        fd, name = tempfile.mkstemp(
            prefix=f".{copy.name}.", suffix=f".{owners.new_tag()}.tmp", dir=copy.parent
        )
        os.close(fd)
        temporary = Path(name)
        try:
            # safetensors stores contiguous tensors only; those of a state dict already are (no copy then).
            save_file({k: v.contiguous() for k, v in state_dict.items()}, str(temporary), metadata=metadata)
            with safe_open(str(temporary), framework="pt") as f:
                if set(f.keys()) != set(state_dict) or not all(
                    _same_bits(f.get_tensor(k), v) for k, v in state_dict.items()
                ):
                    raise ZooError(f"the safetensors copy of {source.name} read back differently")
            digest = integrity.sha256_file(temporary)
            remove(source)  # an old copy and its record, if any
            os.replace(temporary, copy)
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        integrity.remember(copy, digest)
        _write_record(copy, source, source_sha256, digest)
        return copy
    except OSError as e:
        raise paths.cannot_write(copy, e) from None
    finally:
        lock.release()


def remove(source: Path) -> int:
    """Delete the copy of `source` and its record (the caller holds the copy's lock, or the source's); the
    bytes freed."""
    copy = copy_path(source)
    freed = 0
    for path in (copy, record_path(copy)):
        with contextlib.suppress(OSError):
            freed += path.stat().st_size
            path.unlink()
    integrity.forget(copy)
    return freed


def check(source: Path) -> str | None:
    """The state of the copy of `source` by a fresh hash: "ok", "bad" (not its recorded digest, or its
    record unreadable), or None when there is no copy."""
    copy = copy_path(source)
    if not os.path.lexists(copy):
        return None
    record = read_record(copy)
    if not _regular(copy) or record is None or record.get("sha256") is None:
        return "bad"
    try:
        ok = integrity.digest(copy, rehash=True) == record["sha256"]
    except OSError:
        return "bad"
    return "ok" if ok else "bad"


def size_of(source: Path) -> int:
    """Bytes the copy of `source` (and its record) take, 0 when there is none."""
    copy = copy_path(source)
    total = 0
    for path in (copy, record_path(copy)):
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def orphans() -> list[Path]:
    """The sources, gone from the zoo cache, of copies (or records) still in `folder()`."""
    where = folder()
    if not where.is_dir():
        return []
    gone = set()
    for path in where.iterdir():
        name = path.name
        if name.startswith(".") or name.endswith(".lock"):
            continue
        if not name.endswith((".safetensors", ".safetensors.json")):
            continue
        source = name.removesuffix(".json").removesuffix(".safetensors")
        if not (paths.weights_dir() / source).is_file():
            gone.add(paths.weights_dir() / source)
    return sorted(gone)


def sweep() -> int:
    """Delete the temporaries of copy writers that are gone (killed mid-copy; a live writer's carries its
    live pid); the bytes freed."""
    where = folder()
    freed = 0
    if not where.is_dir():
        return 0
    for path in where.glob(".*.tmp"):
        tag = ".".join(path.name.removesuffix(".tmp").rsplit(".", 3)[1:])
        with contextlib.suppress(OSError):
            st = path.lstat()
            if owners.parse(tag) is not None and owners.gone(tag, st.st_mtime):
                path.unlink()
                freed += st.st_size
    return freed


def _write_record(copy: Path, source: Path, source_sha256: str, digest: str | None, **extra: str) -> None:
    from .._common import write_text_atomic

    record = {"source": source.name, "source_sha256": source_sha256, "sha256": digest, **extra}
    write_text_atomic(record_path(copy), json.dumps(record))


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def _unsupported(state_dict: StateDict) -> str | None:
    """Why safetensors cannot hold `state_dict` as it is, or None."""
    from safetensors import torch as safetensors_torch

    # The dtypes it writes (not complex128, complex32, int4, uint1: save_file raises KeyError on them).
    names = getattr(safetensors_torch, "_TYPES", None)
    stored = set(names.values()) if isinstance(names, dict) else None
    seen: dict[int, str] = {}
    for k, v in state_dict.items():
        if stored is not None and v.dtype not in stored:
            return f"{k} is {v.dtype}, which safetensors does not store"
        if v.numel() == 0:
            continue
        where = v.untyped_storage().data_ptr()
        if where in seen:
            return f"{k} shares its storage with {seen[where]}"
        seen[where] = k
    return None


def _same_bits(a: Any, b: Any) -> bool:
    import torch

    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    # As bytes, so that NaNs equal themselves and -0.0 differs from 0.0.
    a, b = a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8)
    return bool(torch.equal(a, b))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
