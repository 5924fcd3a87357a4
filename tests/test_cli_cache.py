"""`zoo fetch` and `zoo cache ...`, run in-process through zoo.cli.main."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from zoo.cli import main
from zoo.models.mlp import make_mlp
from zoo.store import integrity
from zoo.weights import housekeeping


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_cached(test_manifest):
    """Two mlp weights in the cache: `mlp.a` used an hour ago, `mlp.b` used a day ago."""
    zoo_cache = test_manifest(
        {"mlp.a": (make_mlp(hidden=64).state_dict(), {}), "mlp.b": (make_mlp(hidden=32).state_dict(), {})},
        defaults={"mlp": "mlp.a"},
    )
    now = int(time.time())
    for name, age in (("mlp-a.pth", 3600), ("mlp-b.pth", 86400)):
        st = (zoo_cache / name).stat()
        os.utime(zoo_cache / name, ns=((now - age) * 10**9, st.st_mtime_ns))
    return zoo_cache


def test_cache_dir_is_zoo_home(capsys):
    code, out, _ = run(capsys, "cache", "dir")
    assert code == 0 and out.strip() == os.environ["ZOO_HOME"]


def test_ls_lists_keys_sizes_and_verification(capsys, two_cached):
    code, out, _ = run(capsys, "cache", "ls", "--json")
    data = json.loads(out)
    assert code == 0 and [d["keys"] for d in data] == [["mlp.a"], ["mlp.b"]]  # most recently used first
    assert data[0]["size"] == (two_cached / "mlp-a.pth").stat().st_size
    assert {d["verified"] for d in data} == {"unchecked"}
    run(capsys, "fetch", "mlp")  # verifies mlp.a (found in the cache) and marks it used
    data = json.loads(run(capsys, "cache", "ls", "--json")[1])
    assert [(d["keys"], d["verified"]) for d in data] == [(["mlp.a"], "ok"), (["mlp.b"], "unchecked")]
    code, out, _ = run(capsys, "cache", "ls")
    assert "mlp.a" in out and "2 files" in out


def test_fetch_downloads_named_weights(capsys, test_manifest, server, monkeypatch):
    cache = test_manifest({"mlp.net": (make_mlp().state_dict(), {})})
    data = (cache / "mlp-net.pth").read_bytes()
    (cache / "mlp-net.pth").unlink()
    server.files["/mlp-net.pth"] = data
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", server.url)
    code, out, _ = run(capsys, "fetch", "mlp.net")
    assert code == 0 and out.split() == ["mlp.net", str(cache / "mlp-net.pth")]
    assert (cache / "mlp-net.pth").read_bytes() == data


def test_fetch_of_unknown_names_is_one_error(capsys):
    code, out, err = run(capsys, "fetch", "resnet9000")
    assert code == 1 and err.startswith("zoo: error: unknown model 'resnet9000'") and "Traceback" not in err


def test_verify_deletes_bad_files_and_fails(capsys, two_cached):
    (two_cached / "mlp-b.pth").write_bytes(b"bit rot")
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1 and "bad" in out and "mlp-b.pth (deleted)" in out
    assert not (two_cached / "mlp-b.pth").exists() and (two_cached / "mlp-a.pth").exists()
    assert run(capsys, "cache", "verify")[0] == 0


def test_verify_pin_records_full_hashes_of_prefix_entries(capsys, test_manifest):
    cache = test_manifest({"mlp.p": (make_mlp().state_dict(), {})})
    full = integrity.sha256_file(cache / "mlp-p.pth")
    manifest_path = Path(os.environ["ZOO_MANIFEST"])
    raw = json.loads(manifest_path.read_text())
    raw["weights"]["mlp.p"]["sha256"] = full[:8]
    manifest_path.write_text(json.dumps(raw))
    code, out, _ = run(capsys, "cache", "verify", "mlp.p")
    assert code == 0 and "partial" in out
    code, out, _ = run(capsys, "cache", "verify", "--pin", "mlp.p")
    assert code == 0 and "ok (pinned)" in out and integrity.pins() == {"mlp.p": full}
    assert json.loads(run(capsys, "cache", "ls", "--json")[1])[0]["verified"] == "ok"


def test_rm_removes_by_key_model_or_file(capsys, two_cached):
    assert run(capsys, "cache", "rm", "mlp.b")[0] == 0 and not (two_cached / "mlp-b.pth").exists()
    code, _, err = run(capsys, "cache", "rm", "mlp.b")
    assert code == 1 and "nothing cached for 'mlp.b'" in err
    assert run(capsys, "cache", "rm", "mlp")[0] == 0 and not (two_cached / "mlp-a.pth").exists()


def test_prune_removes_least_recently_used_first(capsys, two_cached):
    size_a = (two_cached / "mlp-a.pth").stat().st_size
    code, out, _ = run(capsys, "cache", "prune", "--max-size", str(size_a), "--dry-run")
    assert code == 0 and "would remove mlp-b.pth" in out and (two_cached / "mlp-b.pth").exists()
    code, out, _ = run(capsys, "cache", "prune", "--max-size", str(size_a))
    assert code == 0 and not (two_cached / "mlp-b.pth").exists() and (two_cached / "mlp-a.pth").exists()
    run(capsys, "cache", "prune", "--max-size", "0")
    assert housekeeping.scan() == []


@pytest.mark.parametrize(
    ("text", "size"), [("0", 0), ("500M", 500 * 2**20), ("1.5GB", int(1.5 * 2**30)), ("10 kib", 10240)]
)
def test_parse_size(text, size):
    assert housekeeping.parse_size(text) == size


def test_bad_size_is_a_user_error(capsys):
    code, _, err = run(capsys, "cache", "prune", "--max-size", "lots")
    assert code == 1 and "not a size: 'lots'" in err


def test_fetch_tries_every_name_and_reports_each_failure(capsys, test_manifest, monkeypatch):
    cache = test_manifest(
        {"mlp.a": (make_mlp().state_dict(), {}), "mlp.gone": (make_mlp(hidden=16).state_dict(), {})}
    )
    (cache / "mlp-gone.pth").unlink()  # not cached, and offline: cannot be fetched
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    code, out, err = run(capsys, "fetch", "resnet9000", "mlp.a", "mlp.gone")
    assert code == 1 and out.split() == ["mlp.a", str(cache / "mlp-a.pth")]
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("zoo: error: ") for line in errors)
    assert "unknown model 'resnet9000'" in errors[0] and "mlp.gone" in errors[1]
    code, out, _ = run(capsys, "fetch", "resnet9000", "mlp.a", "mlp.gone", "--json")
    data = json.loads(out)
    assert code == 1 and [d["key"] for d in data["fetched"]] == ["mlp.a"]
    assert [d["name"] for d in data["failed"]] == ["resnet9000", "mlp.gone"]
    assert all(d["error"] for d in data["failed"])
    assert run(capsys, "fetch", "mlp.a", "--json")[0] == 0


def test_plain_text_output_shows_a_file_name_that_is_not_utf8_escaped(capsys):
    import os

    from zoo.store import paths

    name = os.fsdecode(b"bad\xff.pth")  # a surrogate escape: unprintable as UTF-8
    paths.make_dirs(paths.weights_dir())
    (paths.weights_dir() / name).write_bytes(b"weights")
    for argv in (["cache", "ls"], ["cache", "verify"]):
        assert main(argv) in (0, 1)
        assert "bad\\xff.pth" in capsys.readouterr().out
