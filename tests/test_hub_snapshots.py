import json
import os
import subprocess
import sys
import threading

import pytest

import zoo
from zoo.errors import HubError
from zoo.hub import snapshots
from zoo.hub.specs import parse_spec


def load_version(spec, **kw):
    return zoo.load(spec, "version", trust_repo=True, **kw)


def test_head_branch_tag_and_commits_resolve_to_their_code(forge):
    c = forge.commits
    assert load_version("alice/nets") == "v2"
    assert load_version("alice/nets:main") == "v2"
    assert load_version(f"alice/nets:{c['dev'][:9]}") == "dev"
    assert load_version("alice/nets:dev") == "dev"
    assert load_version("alice/nets:v1.0") == "v1"
    assert load_version(f"alice/nets:{c['v1']}") == "v1"
    assert load_version(f"alice/nets:{c['v2'][:8]}") == "v2"
    assert [r.path for r in forge.archive_requests()] == [
        "/alice/nets/archive/HEAD.zip",
        "/alice/nets/archive/main.zip",
        f"/alice/nets/archive/{c['dev'][:9]}.zip",
        "/alice/nets/archive/dev.zip",
        "/alice/nets/archive/v1.0.zip",
    ]
    # a commit already cached (the tag's, HEAD's) is found by its full or short SHA without a request
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    assert snapshots.commits(folder) == sorted([c["v1"], c["dev"], c["v2"]])
    refs = snapshots.read_index(folder)
    assert refs["HEAD"] == refs["main"] == c["v2"] and refs["v1.0"] == c["v1"]
    assert refs[c["dev"][:9]] == c["dev"]
    assert json.loads((folder / "refs.json").read_text())["version"] == 1


def test_cached_spec_makes_no_request(forge):
    load_version("alice/nets:dev")
    forge.reset()
    assert load_version("alice/nets:dev") == "dev"
    assert zoo.list("alice/nets:dev") == ["late", "net", "version"]
    assert forge.requests == []


def test_commit_pinned_and_short_sha_need_no_network_once_cached(forge, monkeypatch):
    c = forge.commits
    load_version(f"alice/nets:{c['v1']}")
    forge.reset()
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    assert load_version(f"alice/nets:{c['v1']}") == "v1"
    assert load_version(f"alice/nets:{c['v1'][:7]}") == "v1"  # resolved against the cached commits
    assert forge.requests == []


def test_force_reload_fetches_again(forge):
    load_version("alice/nets:dev")
    forge.reset()
    assert load_version("alice/nets:dev", force_reload=True) == "dev"
    assert len(forge.archive_requests()) == 1


def test_offline_uses_the_cache_or_says_what_is_missing(forge):
    with pytest.raises(HubError, match=r"alice/nets:dev is not in the zoo cache and offline mode is on"):
        load_version("alice/nets:dev", offline=True)
    load_version("alice/nets")
    with pytest.raises(HubError, match="cached: HEAD"):
        load_version("alice/nets:dev", offline=True)
    with pytest.raises(HubError, match="force_reload needs the network"):
        load_version("alice/nets", offline=True, force_reload=True)
    assert load_version("alice/nets", offline=True) == "v2"
    assert [r.path for r in forge.archive_requests()] == ["/alice/nets/archive/HEAD.zip"]


def test_unknown_ref_and_repo_are_clear_errors(forge):
    with pytest.raises(
        HubError, match=r"^alice/nets:nope: http://127\.0\.0\.1:\d+/alice/nets/archive/nope\.zip: HTTP 404"
    ):
        load_version("alice/nets:nope")
    with pytest.raises(
        HubError, match="no such repo or ref, or a private repo: set GITHUB_TOKEN or GITLAB_TOKEN"
    ):
        load_version("alice/gone")
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    assert [p.name for p in folder.iterdir()] == [".lock"]  # no partial download or snapshot


def test_gitlab_nested_groups(forge):
    assert load_version("gitlab:group/sub/nets:dev") == "dev"
    assert load_version("gitlab:group/sub/nets") == "v2"
    (first, second) = forge.archive_requests()
    assert first.path == "/api/v4/projects/group%2Fsub%2Fnets/repository/archive.zip?sha=dev"
    assert second.path == "/api/v4/projects/group%2Fsub%2Fnets/repository/archive.zip"
    host = snapshots.repo_dir(parse_spec("gitlab:group/sub/nets")).relative_to(zoo.store.paths.home() / "hub")
    assert host.parts[1:] == ("group", "sub", "nets")


def test_archive_url_is_cached_by_its_commit(forge):
    url = f"{forge.url}/alice/nets/archive/dev.zip"
    assert load_version(url) == "dev"
    forge.reset()
    assert load_version(url) == "dev"
    assert forge.requests == []
    assert snapshots.cached(parse_spec(url)).name == forge.commits["dev"]


def test_concurrent_threads_fetch_once(forge):
    forge.delay = 0.3  # so that every thread asks while the first download is still running
    results, errors = [], []

    def work():
        try:
            results.append(load_version("alice/nets:dev"))
        except Exception as e:  # reported below, with the thread's error
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == ["dev"] * 6
    assert len(forge.archive_requests()) == 1
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    assert sorted(p.name for p in folder.iterdir()) == [".lock", forge.commits["dev"], "refs.json"]


def test_concurrent_processes_fetch_once(forge, tmp_path):
    forge.delay = 0.3
    # Each child imports zoo (and torch) first, then waits for the word, so that all ask at once.
    code = (
        "import sys, zoo; print('ready', flush=True); sys.stdin.readline(); "
        "print(zoo.load('alice/nets:v1.0', 'version', trust_repo=True, verbose=False))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(1)
    ]
    for p in procs:
        assert p.stdout.readline() == "ready\n"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    here = load_version("alice/nets:v1.0")
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0], [err[-500:] for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["v1"] and here == "v1"
    assert len(forge.archive_requests()) == 1
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    assert sorted(p.name for p in folder.iterdir()) == [".lock", forge.commits["v1"], "refs.json"]


def test_leftovers_of_a_killed_loader_are_cleaned(forge):
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    (folder / ".tmp-extract-dead").mkdir(parents=True)
    (folder / ".tmp-archive").write_bytes(b"partial")
    assert load_version("alice/nets:dev") == "dev"
    assert not any(p.name.startswith(".tmp-") for p in folder.iterdir())


def test_ambiguous_short_sha(forge, monkeypatch):
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    for name in ("abcdef1" + "0" * 33, "abcdef1" + "1" * 33):
        (folder / name).mkdir(parents=True)
    with pytest.raises(HubError, match="abcdef1 is ambiguous"):
        snapshots.cached(parse_spec("alice/nets:abcdef1"))


def test_a_second_ref_to_a_cached_commit_keeps_its_snapshot(forge):
    load_version("alice/nets")
    snapshot = snapshots.cached(parse_spec("alice/nets"))
    (snapshot / "marker").write_text("still here")
    assert load_version("alice/nets:main") == "v2"  # fetched (a ref not seen yet), same commit
    assert snapshots.cached(parse_spec("alice/nets:main")) == snapshot and (snapshot / "marker").exists()
    load_version("alice/nets:main", force_reload=True)  # a fresh copy replaces it
    assert not (snapshot / "marker").exists() and (snapshot / "hubconf.py").is_file()
    assert len(forge.archive_requests()) == 3


def test_a_pinned_commit_served_as_another_is_refused(forge):
    c = forge.commits
    forge.serve_instead[c["v1"]] = "dev"
    with pytest.raises(HubError, match=f"sent an archive of commit {c['dev']}, not the commit asked for"):
        load_version(f"alice/nets:{c['v1']}")
    folder = snapshots.repo_dir(parse_spec("alice/nets"))
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # neither snapshot nor index entry
    forge.serve_instead.clear()
    assert load_version(f"alice/nets:{c['v1']}") == "v1"


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_a_branch_that_moved_is_seen_after_force_reload(forge):
    c, nets = forge.commits, forge.dirs["nets"]
    git(nets, "branch", "moving", c["v1"])
    try:
        assert load_version("alice/nets:moving") == "v1"
        git(nets, "branch", "-f", "moving", c["dev"])
        assert load_version("alice/nets:moving") == "v1"  # the cache keeps what the branch meant
        assert load_version("alice/nets:moving", force_reload=True) == "dev"
        assert len(forge.archive_requests()) == 2
        folder = snapshots.repo_dir(parse_spec("alice/nets"))
        assert snapshots.read_index(folder)["moving"] == c["dev"]
        assert snapshots.commits(folder) == sorted([c["v1"], c["dev"]])
        # the old commit's snapshot is still there, and loads by its SHA without the network
        assert load_version(f"alice/nets:{c['v1']}", offline=True) == "v1"
        assert load_version("alice/nets:moving", offline=True) == "dev"
    finally:
        git(nets, "branch", "-D", "moving")


def test_only_temporaries_whose_writer_is_gone_are_cleaned(tmp_path, monkeypatch):
    import multiprocessing
    import os
    import time

    from zoo.hub.snapshots import _clean_leftovers
    from zoo.store import owners

    dead = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    dead.start()
    dead.join()
    here = owners.host()
    folder = tmp_path / "repo"
    folder.mkdir()
    names = {
        "live": f".tmp-{here}.{os.getppid()}.aaaaaa-archive",
        "dead": f".tmp-{here}.{dead.pid}.bbbbbb-archive",
        "far_recent": ".tmp-farhost.77.cccccc-extract-x",
        "far_quiet": ".tmp-farhost.78.dddddd-extract-y",
        "legacy": ".tmp-archive",
    }
    for name in names.values():
        (folder / name).write_bytes(b"x")
    old = time.time() - 7200
    os.utime(folder / names["far_quiet"], (old, old))
    _clean_leftovers(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([names["live"], names["far_recent"]])
