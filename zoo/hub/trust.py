"""Which remote hub repos may run their `hubconf.py`: the trusted list in the zoo home, and the prompt.

`trust_repo` keeps torch.hub's meanings for True (trust the repo and record it), "check" (the default, as in
torch.hub: use the trusted list, ask when the repo is not on it) and False (always ask). None differs on
purpose: torch.hub (2.14) skips the prompt for None and silently adds the repo to its trusted list, which
would run any repo's code unasked; zoo treats None like "check". Nothing ever waits for an answer without a
terminal on stdin: an untrusted repo then fails at once with the command that trusts it.

Default trust (torch.hub's owners, on github.com) never covers a spec pinned to a commit: GitHub serves the
commits of every fork under the upstream repo's name too, so `pytorch/vision:<sha>` may be a stranger's
code. Such a spec needs the user's own trust (the list, `zoo trust`, trust_repo=True). Showing that the
commit is on one of the repo's branches would need GitHub's API (rate-limited, which zoo avoids, and
absent from mirrors and the archive layout), so zoo does not try.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from .._common import show_url, write_text_atomic
from ..errors import HubError
from ..store import paths
from ..store.locks import file_lock
from ..store.small_files import read_small_text
from .specs import HubSpec

# The owners torch.hub trusts without asking; only on github.com itself, never on another server that
# ZOO_GITHUB_URL names (anyone can create a `pytorch` user on a mirror).
DEFAULT_OWNERS = ("pytorch", "facebookresearch", "facebookincubator", "fairinternal")
TRUST_VALUES = (True, False, "check", None)
# The trusted list is one repo a line (about 40 bytes); 1 MiB is some 25,000 repos, far more than anyone
# trusts, and bounds what a file planted in its place makes zoo read.
TRUST_FILE_MAX = 1 << 20


def trust_file() -> Path:
    """The trusted list: one HubSpec.trust_key a line (`owner/repo`, `gitlab:group/repo`, with the server for
    one other than github.com or gitlab.com, or an archive URL without its query)."""
    return paths.home() / "hub" / "trusted_repos.txt"


def trusted() -> list[str]:
    """The repos on the trusted list, in the order they were added.

    Anything but a plain UTF-8 file at the list's name (a FIFO, a folder, a link, a zoo home that is not a
    folder) is one HubError naming it, never a hang or a traceback.
    """
    text = read_small_text(trust_file(), limit=TRUST_FILE_MAX, what="the trusted-repo list", error=HubError)
    lines = (text or "").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def trusted_by_default(key: str) -> bool:
    """Whether `key` is a github.com repo of an owner torch.hub trusts by default."""
    # Keys of other servers carry their URL (`https://ghe.example/pytorch/vision`), so they never match.
    parts = key.split("/")
    return not key.startswith("gitlab:") and ":" not in key and len(parts) == 2 and parts[0] in DEFAULT_OWNERS


def is_trusted(key: str) -> bool:
    """Whether the repo `key` (a HubSpec.trust_key) may run without asking, at a branch or tag."""
    return trusted_by_default(key) or key in trusted()


# A ref that may be a commit id, full or abbreviated (git accepts 4+ hex digits; GitHub resolves 7+, but a
# shorter one costs nothing to distrust). A branch or tag spelled in hex is distrusted with it.
_MAYBE_COMMIT = re.compile(r"^[0-9a-fA-F]{4,64}$")


def pins_commit(spec: HubSpec) -> bool:
    """Whether `spec`'s ref may name a bare commit (which GitHub also serves from any fork of the repo)."""
    return spec.kind in ("github", "gitlab") and bool(_MAYBE_COMMIT.match(spec.ref))


def _known(spec: HubSpec) -> bool:
    key = spec.trust_key
    if key in trusted():
        return True
    return trusted_by_default(key) and not pins_commit(spec)


def _write(keys: list[str]) -> None:
    path = trust_file()
    try:
        write_text_atomic(path, "".join(k + "\n" for k in keys))
    except OSError as e:
        raise paths.cannot_write(path, e, doing="write the trusted-repo list") from None


def add(key: str) -> bool:
    """Put `key` on the trusted list; False if it was already there."""
    paths.make_dirs(trust_file().parent)  # refuses a link planted on the way (StorageError)
    with file_lock(str(trust_file()) + ".lock", what="the trusted-repo list"):
        keys = trusted()
        if key in keys:
            return False
        _write([*keys, key])
    return True


def remove(key: str) -> bool:
    """Take `key` off the trusted list; False if it was not on it."""
    if key not in trusted():  # also the HubError for a FIFO, folder or link at the list's name
        return False
    with file_lock(str(trust_file()) + ".lock", what="the trusted-repo list"):
        keys = trusted()
        if key not in keys:
            return False
        _write([k for k in keys if k != key])
    return True


def trust_command(spec: HubSpec) -> str:
    """The shell command that trusts `spec`'s repo (naming the server when it is not github.com/gitlab.com)."""
    if spec.kind not in ("github", "gitlab") or spec.on_default_host:
        return f"zoo trust {shlex.quote(spec.trust_key)}"
    # `zoo trust owner/repo` records the key of the server the environment names: say which one.
    var = "ZOO_GITHUB_URL" if spec.kind == "github" else "ZOO_GITLAB_URL"
    name = spec.path if spec.kind == "github" else f"gitlab:{spec.path}"
    return f"{var}={shlex.quote(show_url(spec.base))} zoo trust {shlex.quote(name)}"


def _ask(key: str, source: str, pinned: str | None = None) -> bool:
    why = (
        f"zoo: {pinned} pins a commit, which GitHub also serves from any fork of {key}, so the default trust "
        "in its owner does not cover it.\n"
        if pinned
        else ""
    )
    print(
        f"{why}zoo: {key} is not on your trusted list; loading it runs its hubconf.py from {source}.\n"
        "Trust this repository and add it to the list? [y/N] ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _interactive() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or detached stdin
        return False


TRUST_WAIT = 600.0  # seconds a rank other than 0 waits for rank 0's answer (ZOO_TRUST_WAIT)


def _another_rank() -> bool:
    """Whether this process is a rank other than 0 of a torchrun (or SLURM) job."""
    rank = os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or "0"
    return rank.strip() not in ("", "0")


def _wait_for_rank_zero(spec: HubSpec) -> None:
    """Wait until rank 0's answer puts `spec`'s repo on the trusted list; HubError if it does not in time."""
    raw = os.environ.get("ZOO_TRUST_WAIT", "").strip()
    try:
        limit = float(raw) if raw else TRUST_WAIT
    except ValueError:
        raise HubError(f"ZOO_TRUST_WAIT={raw!r} is not a number of seconds") from None
    print(f"zoo: waiting for rank 0's answer on trusting {spec.trust_key}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if _known(spec):
            return
        time.sleep(0.2)
    raise HubError(
        f"{spec.trust_key} is not a trusted repository and rank 0 did not trust it within {limit:g} s, so its "
        f"hubconf.py was not run; run `{trust_command(spec)}` before the job (or pass trust_repo=True)"
    )


def check_trust(spec: HubSpec, trust_repo: Any = None) -> None:
    """Raise HubError unless `spec`'s code may run, asking on a terminal when torch.hub would ask."""
    if trust_repo not in TRUST_VALUES or (isinstance(trust_repo, int) and not isinstance(trust_repo, bool)):
        raise HubError(f"trust_repo must be True, False, 'check' or None, not {trust_repo!r}")
    if not spec.is_remote:
        return
    key = spec.trust_key
    known = _known(spec)
    if trust_repo is True:
        if not known:
            add(key)
        return
    if known and trust_repo is not False:
        return
    fork = not known and trusted_by_default(key)
    if not _interactive():
        if known:  # trust_repo=False asks only where someone can answer; the repo is trusted already
            return
        if fork:
            raise HubError(
                f"{spec.display} pins a commit, and GitHub serves commits of every fork of {key} under its "
                f"name, so the default trust in {key.split('/')[0]} does not cover it and its hubconf.py was "
                f"not run; if you trust {key} at any commit, run `{trust_command(spec)}` (or pass "
                "trust_repo=True, or --trust on the command line)"
            )
        raise HubError(
            f"{key} is not a trusted repository, so its hubconf.py was not run; if you trust it, run "
            f"`{trust_command(spec)}` (or pass trust_repo=True, or --trust on the command line)"
        )
    if _another_rank():
        _wait_for_rank_zero(spec)  # one prompt per job: rank 0 asks, the others follow its answer
        return
    if not _ask(key, show_url(spec.archive_url), spec.display if fork else None):
        raise HubError(f"{key} was not trusted, so its hubconf.py was not run")
    if not known:
        add(key)
