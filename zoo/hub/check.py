"""`zoo check DIR`: review a hub repo as a maintainer would, before others load it.

The repo's code (the hubconf import and each entry point's build) runs in a child process, so that
`sys.exit`, `os._exit`, a crash or a hang is a reported problem and not the end of `zoo check`; the child
runs in a network namespace of its own (`unshare -rn`, no interface but a downed loopback) where the machine
allows it. In the child, or in this process with `in_process=True`, an audit hook (PEP 578, raised by the C
socket module itself, so `_socket` is covered) refuses and records every way out: socket creation other than
AF_UNIX, connect/connect_ex, sendto/sendmsg, bind, name lookups, and starting a process (subprocess,
os.system, exec, spawn, fork). Without a namespace, native code (ctypes, extension modules calling libc)
can still reach the network: `network_isolation()` says which protection is in force, and check_repo warns.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from .._common import redact
from ..errors import ZooError
from ..store import integrity
from ..store.download import offline_mode
from ..weights import manifest
from . import hubconf

_NETWORK_USED = "network access refused by zoo check"
# How long the repo's code may run (import and every build together) before it counts as hanging; a
# check of this repo (every zoo model, pretrained=False, built on the meta device) takes about 10 s.
CHECK_TIMEOUT = 300.0

# Audit events (https://docs.python.org/3/library/audit_events.html) that leave the process.
_NETWORK_EVENTS = (
    "socket.__new__",
    "socket.connect",  # connect and connect_ex
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
)
_PROCESS_EVENTS = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
)
_WATCHED = {
    **dict.fromkeys(_NETWORK_EVENTS, "tries to reach the network"),
    **dict.fromkeys(_PROCESS_EVENTS, "starts a process"),
}


class _NetworkUsed(OSError):
    pass


class _Guard:
    """The process-wide audit hook: installed once (hooks cannot be removed), active only inside `guarded`."""

    def __init__(self) -> None:
        self.active = False
        self.attempts: list[str] = []
        self.installed = False
        self.lock = threading.Lock()

    def hook(self, event: str, args: tuple) -> None:
        if not self.active or event not in _WATCHED:
            return
        if event == "socket.__new__" and len(args) > 1 and args[1] == getattr(socket, "AF_UNIX", None):
            return  # a local pipe between threads or processes, not a way out
        detail = redact(_describe(event, args))[:160]
        self.attempts.append(f"{_WATCHED[event]} ({event} {detail})")
        raise _NetworkUsed(f"{_NETWORK_USED}: {event}")


_GUARD = _Guard()


def _describe(event: str, args: tuple) -> str:
    # What was tried, for the message: an address, a host name, a command (redacted: it may carry a token).
    if event in ("socket.connect", "socket.bind", "socket.sendto") and len(args) > 1:
        return repr(args[1])
    if event == "socket.__new__":
        return "family " + str(args[1] if len(args) > 1 else "?")
    if event.startswith("socket.") and event != "socket.sendmsg":
        return repr(args[:2])
    if event == "subprocess.Popen" and len(args) > 1:
        return repr(args[1])
    return repr(args[:2])


@contextlib.contextmanager
def guarded() -> Iterator[list[str]]:
    """Within the block, every attempt to reach the network or start a process fails, and is listed in
    the yielded list (a `try/except` in the repo's code cannot hide it)."""
    with _GUARD.lock:
        if not _GUARD.installed:
            sys.addaudithook(_GUARD.hook)
            _GUARD.installed = True
    attempts: list[str] = []
    _GUARD.attempts, _GUARD.active = attempts, True
    try:
        yield attempts
    finally:
        _GUARD.active = False


no_network = guarded  # the earlier name


_NAMESPACE: list[str] | None = None


def namespace_command() -> list[str]:
    """The command prefix that runs a program without network (`unshare -rn`), or [] where the machine
    does not allow it unprivileged (no `unshare`, user namespaces off, macOS). Probed once."""
    global _NAMESPACE
    if _NAMESPACE is None:
        found: list[str] = []
        if sys.platform.startswith("linux") and (unshare := shutil.which("unshare")):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                probe = subprocess.run(
                    [unshare, "-rn", "true"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL
                )
                if probe.returncode == 0:
                    found = [unshare, "-rn"]
        _NAMESPACE = found
    return _NAMESPACE


def network_isolation() -> str:
    """Which protection keeps a checked repo's code off the network, in words."""
    if namespace_command():
        return "network namespace (unshare -rn) and audit hooks"
    return (
        "audit hooks only (no unprivileged network namespace here): native code that calls the C library "
        "directly, as through ctypes, is not blocked"
    )


def check_repo(repo: str | Path, *, strict: bool = False, in_process: bool = False) -> list[str]:
    """Problems found in the hub repo at `repo`, one line each (empty when it passes).

    Entries that are downloaded from their URL may carry only the hash prefix their upstream publishes
    (torchvision's file names); they pass unless `strict`. Bundled files always need a full hash and size.
    The repo's code runs in a child process without network (see the module's doc); `in_process=True`
    runs it here instead, guarded by the audit hook alone (faster, for tests; an `os._exit` ends the caller).
    """
    repo = Path(repo).resolve()
    if not (repo / hubconf.HUBCONF).is_file():
        return [f"{repo}: no {hubconf.HUBCONF}"]
    problems: list[str] = []
    try:
        deps = hubconf.declared_dependencies(repo)
    except ZooError as e:
        return [str(e)]
    if not deps:
        problems.append(
            f"{hubconf.HUBCONF}: no `dependencies = [...]` list (torch.hub users read it to install)"
        )
    try:
        hubconf.check_dependencies(repo)
    except ZooError as e:
        problems.append(str(e))
        return problems
    if in_process:
        problems.extend(run_code(repo))
    else:
        if not namespace_command():
            warnings.warn(f"zoo check: network blocked by {network_isolation()}", UserWarning, stacklevel=2)
        problems.extend(_run_in_child(repo))
    problems.extend(_check_manifest(repo, strict))
    return problems


def run_code(repo: Path) -> list[str]:
    """Import the repo's hubconf and build each entry point (pretrained=False) in this process, guarded;
    the problems found, one line each."""
    try:
        with guarded() as attempts, offline_mode(True):
            module = hubconf.import_hubconf(repo, force_reload=True)
    except ZooError as e:
        attempts = attempts or []
        reason = _attempted(attempts) if attempts else str(e)
        return [f"{hubconf.HUBCONF} does not import without network: {reason}"]
    if attempts:
        return [f"{hubconf.HUBCONF} does not import without network: {_attempted(attempts)}"]
    problems = []
    for name in hubconf.entry_points(module):
        problems.extend(_check_entry(repo, name, getattr(module, name)))
    return problems


def _attempted(attempts: list[str]) -> str:
    more = f" (and {len(attempts) - 1} more attempts)" if len(attempts) > 1 else ""
    return f"it {attempts[0]}{more}"


def _run_in_child(repo: Path) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as tmp:
        result, log = Path(tmp) / "result.json", Path(tmp) / "output.log"
        code = "import sys; from zoo.hub.check import _child; _child(sys.argv[1], sys.argv[2])"
        # The zoo that runs the check runs the child too, whatever the child's working folder.
        package_root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "ZOO_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*namespace_command(), sys.executable, "-P", "-c", code, str(repo), str(result)],
                stdin=subprocess.DEVNULL,
                stdout=out,  # the repo's prints stay out of `zoo check --json`
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # so that a timeout ends whatever it started, too
            )
            try:
                status = proc.wait(timeout=CHECK_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return [
                    f"{hubconf.HUBCONF}: importing it and building its entry points did not finish within "
                    f"{CHECK_TIMEOUT:g} s"
                ]
            finally:
                _kill_group(proc)  # anything it left running
        try:
            found = json.loads(result.read_text())
            if isinstance(found, list) and all(isinstance(p, str) for p in found):
                return found
        except (OSError, ValueError):
            pass
        how = f"signal {-status}" if status < 0 else f"exit status {status}"
        last = _last_line(log)
        return [
            f"{hubconf.HUBCONF}: the check ended ({how}) before reporting: the repo's code exits the "
            f"process (os._exit) or crashes{f'; last output: {last}' if last else ''}"
        ]


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _last_line(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            lines = [line for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return redact(lines[-1].strip())[:200] if lines else ""


def _child(repo: str, result: str) -> None:
    """The child process's side: run the repo's code, write the problems to `result`, and leave at once
    (threads and atexit handlers the repo left behind neither run nor hold the process)."""
    del sys.argv[1:]
    # Imported before the guard: torch's own import starts `ldconfig -p` (ctypes.util.find_library), which
    # is not the repo's doing. Nothing of the repo is importable yet (-P keeps the working folder off sys.path).
    with contextlib.suppress(ImportError):
        import torch  # noqa: F401
    try:
        problems = run_code(Path(repo))
    except BaseException as e:  # noqa: BLE001 (a hostile repo may raise anything out of a hook)
        problems = [f"{hubconf.HUBCONF}: the check failed: {type(e).__name__}: {redact(str(e))}"]
    with open(result, "w", encoding="utf-8") as f:
        json.dump(problems, f)
    sys.stdout.flush()
    os._exit(0)


def _check_entry(repo: Path, name: str, fn: object) -> list[str]:
    where = f"{hubconf.HUBCONF}: {name}"
    if inspect.isclass(fn) or getattr(fn, "__module__", "").split(".")[0] in (
        "typing",
        "builtins",
        "pathlib",
    ):
        return [
            f"{where} is a public helper, not an entry point: import it inside a function or name it _{name}"
        ]
    problems = []
    if not (inspect.getdoc(fn) or "").strip():
        problems.append(f"{where} has no docstring (it is what `zoo help` and torch.hub.help show)")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_pretrained = "pretrained" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    if not takes_pretrained:
        return [*problems, f"{where} does not take `pretrained` (torch.hub entry points do)"]
    try:
        with guarded() as attempts, offline_mode(True), hubconf.isolated(repo):
            built = _build(fn)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit and the rest: a problem of the entry, not the end of the check
        if attempts:
            return [*problems, f"{where}(pretrained=False) {_attempted(attempts)[3:]}"]
        return [*problems, f"{where}(pretrained=False) fails: {type(e).__name__}: {redact(str(e))}"]
    if attempts:  # caught inside the entry point, but tried
        return [*problems, f"{where}(pretrained=False) {_attempted(attempts)[3:]}"]
    import torch  # here: the parent of a child check never needs it

    if not isinstance(built, torch.nn.Module):
        problems.append(
            f"{where}(pretrained=False) returns {type(built).__name__}, not a model: a public helper? name it _{name}"
        )
    return problems


def _build(fn: Callable[..., object]) -> object:
    """`fn(pretrained=False)`, on the meta device first: construction is what is checked, and random init of
    83 models on 2 cores took 69 s of this repo's check (ViT-H/14 alone is 632 M parameters). An entry point
    that needs real tensors while it builds (reading a buffer's values, calling numpy) is built again for real."""
    from ..models._builder import meta_build

    try:
        with meta_build():
            return fn(pretrained=False)
    except Exception:
        return fn(pretrained=False)


# Where a repo's bundled files are: `weights/` (what `zoo publish --repo` writes), or the package data of
# a repo that ships zoo itself.
BUNDLED_DIRS = ("weights", "zoo/weights/data")


def _bundled(repo: Path, file_name: str) -> Path:
    places = [repo / d / file_name for d in BUNDLED_DIRS]
    return next((p for p in places if p.is_file()), places[0])


def _check_manifest(repo: Path, strict: bool) -> list[str]:
    path = repo / "weights_manifest.json"
    if not path.is_file():
        return []
    try:
        raw = manifest.read_raw(path)
    except ZooError as e:
        return [str(e)]
    problems = []
    categories = raw.get("categories", {})
    checked: set[str] = set()
    for key, entry in sorted(raw["weights"].items()):
        where = f"weights_manifest.json: {key}"
        try:
            # Every field checked (an entry that is not an object, a file_name with a folder or `..` in
            # it) before any is used: the file name below must not lead out of the repo.
            weights = manifest.entry_to_weights(key, entry, categories, checked=checked)
        except ZooError as e:
            problems.append(f"weights_manifest.json: {e}")
            continue
        sha, size = weights.sha256, weights.size
        bundled = _bundled(repo, weights.file_name)
        # A file published upstream is as its publisher names it: a hash prefix (torchvision's), or none at all
        # (the book's captioner). Only --strict asks for full hashes and sizes there.
        upstream = weights.urls and not bundled.is_file()
        if upstream and not strict:
            continue
        if not sha or len(sha) != 64:
            problems.append(f"{where} has no full sha256")
        if not isinstance(size, int):
            problems.append(f"{where} has no size")
        if not bundled.is_file():
            if not weights.urls:
                problems.append(f"{where}: weights/{weights.file_name} is missing and the entry has no URL")
            continue
        if not bundled.resolve().is_relative_to(repo):
            # A link out of the repo: publishing would copy what it points to, and the check must not read it.
            problems.append(f"{where}: {bundled.relative_to(repo)} is a link to a file outside the repo")
            continue
        actual = bundled.stat().st_size
        if isinstance(size, int) and actual != size:
            problems.append(f"{where}: {bundled.relative_to(repo)} is {actual} bytes, the entry says {size}")
        elif sha and not integrity.matches(sha, integrity.digest(bundled, rehash=True)):
            problems.append(f"{where}: {bundled.relative_to(repo)} does not match its sha256")
    return problems
