"""Safetensors copies of verified `.pth` files: made once in the background, used only when they match the
source's digest and their own, removed with their source, and switched off by a setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import OrderedDict

import pytest
import torch
from conftest import REPO_ROOT
from safetensors.torch import save_file

import zoo
from zoo.cli import main
from zoo.errors import StorageError
from zoo.models.mlp import make_mlp
from zoo.store import integrity, owners
from zoo.weights import copies, housekeeping, serialization


@pytest.fixture(autouse=True)
def copies_on(monkeypatch):
    monkeypatch.delenv("ZOO_SAFETENSORS_COPIES")  # the suite's default is off (conftest)


@pytest.fixture
def cached(test_manifest):
    """An mlp `.pth` in the zoo cache, the default of its model."""
    torch.manual_seed(0)
    cache = test_manifest({"mlp.net": (make_mlp().state_dict(), {})}, defaults={"mlp": "mlp.net"})
    return cache / "mlp-net.pth"


def torch_loads(monkeypatch) -> list[str]:
    """The files read through torch.load from now on."""
    seen: list[str] = []
    original = serialization._torch_load_file
    monkeypatch.setattr(
        serialization, "_torch_load_file", lambda path, mmap: seen.append(path.name) or original(path, mmap)
    )
    return seen


def load_twice(source):
    """The model from the `.pth`, then (once its copy is written) from the copy."""
    first = zoo.get_model("mlp")
    copies.wait()
    integrity._memo.clear()  # what a new process knows: the records on disk
    return first, zoo.get_model("mlp")


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def change_last_value(path, raw: bytes = b"\0\0\0\1") -> None:
    """Overwrite the last 4 bytes of `path` (the copy's last float32) in place."""
    with open(path, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(raw)


def dead_writer_tag() -> str:
    """An owner tag of this host whose process has exited."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return f"{owners.host()}.{int(dead.stdout)}.abcdef"


def test_the_first_load_writes_a_copy_with_both_digests_and_the_next_loads_map_it(cached, monkeypatch):
    seen = torch_loads(monkeypatch)
    first, second = load_twice(cached)
    copy = copies.copy_path(cached)
    record = json.loads(copies.record_path(copy).read_text())
    assert record == {
        "source": "mlp-net.pth",
        "source_sha256": integrity.sha256_file(cached),
        "sha256": integrity.sha256_file(copy),
    }
    # The load that found no copy read the .pth (the writer is a process of its own); the next one did not.
    assert seen == ["mlp-net.pth"]
    assert same(first.state_dict(), second.state_dict())
    assert not [p for p in copy.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_copy_recorded_for_another_source_digest_is_never_used_and_is_made_again(cached, monkeypatch):
    load_twice(cached)
    copy = copies.copy_path(cached)
    record = json.loads(copies.record_path(copy).read_text())
    copies.record_path(copy).write_text(json.dumps({**record, "source_sha256": "0" * 64}))
    seen = torch_loads(monkeypatch)
    zoo.get_model("mlp")
    copies.wait()
    assert seen[0] == "mlp-net.pth"
    assert json.loads(copies.record_path(copy).read_text())["source_sha256"] == record["source_sha256"]


def test_a_copy_whose_bytes_changed_is_never_used(cached, monkeypatch):
    reference, _ = load_twice(cached)
    copy = copies.copy_path(cached)
    # Same tensors' names and shapes, other values: a planted or corrupted copy.
    tampered = {k: torch.full_like(v, 7.0) for k, v in reference.state_dict().items()}
    save_file(tampered, str(copy), metadata={"zoo.source_sha256": integrity.sha256_file(cached)})
    integrity._memo.clear()
    seen = torch_loads(monkeypatch)
    model = zoo.get_model("mlp")
    assert seen[:1] == ["mlp-net.pth"] and same(model.state_dict(), reference.state_dict())
    copies.wait()
    assert copies.check(cached) == "ok"  # written anew from the source


def test_a_copy_made_from_another_source_is_refused_by_its_header(cached, monkeypatch):
    load_twice(cached)
    copy = copies.copy_path(cached)
    other = {k: torch.zeros(2) for k in ("a", "b")}
    save_file(other, str(copy), metadata={"zoo.source_sha256": "f" * 64})
    record = json.loads(copies.record_path(copy).read_text())
    # The record is right about the copy's bytes; only the header says it came from another source.
    copies.record_path(copy).write_text(json.dumps({**record, "sha256": integrity.sha256_file(copy)}))
    integrity._memo.clear()
    assert copies.load(cached, integrity.sha256_file(cached)) is None


def test_the_setting_switches_copies_off_both_ways(cached, monkeypatch):
    monkeypatch.setenv("ZOO_SAFETENSORS_COPIES", "0")
    zoo.get_model("mlp")
    copies.wait()
    assert not copies.copy_path(cached).exists()
    monkeypatch.delenv("ZOO_SAFETENSORS_COPIES")
    load_twice(cached)
    assert copies.copy_path(cached).is_file()
    monkeypatch.setenv("ZOO_SAFETENSORS_COPIES", "off")
    seen = torch_loads(monkeypatch)
    zoo.get_model("mlp")
    assert seen == ["mlp-net.pth"]  # an existing copy is not used either


def test_a_users_own_file_gets_no_copy(tmp_path):
    f = tmp_path / "mine.pth"
    torch.save(make_mlp().state_dict(), f)
    zoo.get_model("mlp", weights=f)
    copies.wait()
    assert not copies.folder().exists()


def test_module_versions_survive_the_copy(cached):
    state_dict = serialization.load_state_dict(cached)
    versions = getattr(state_dict, "_metadata", None)
    assert versions  # torch.save keeps them for every module
    copies.make(cached, integrity.sha256_file(cached))
    loaded = copies.load(cached, integrity.sha256_file(cached))
    assert loaded._metadata == versions and same(loaded, state_dict)


def test_a_state_dict_with_shared_tensors_gets_a_record_and_no_copy(test_manifest, monkeypatch):
    weight = torch.randn(4, 4)
    tied = OrderedDict([("a.weight", weight), ("b.weight", weight)])
    cache = test_manifest({"mlp.tied": (tied, {})})
    source = cache / "mlp-tied.pth"
    digest = integrity.sha256_file(source)
    assert copies.make(source, digest) is None
    record = json.loads(copies.record_path(copies.copy_path(source)).read_text())
    assert record["sha256"] is None and "shares its storage" in record["reason"]
    assert not copies.copy_path(source).exists() and not copies.wanted(source, digest)


def test_cache_rm_and_prune_remove_the_copy_with_its_source(cached, capsys):
    load_twice(cached)
    copy = copies.copy_path(cached)
    listed = json.loads((main(["cache", "ls", "--json"]), capsys.readouterr().out)[1])
    assert listed[0]["copy_size"] == copy.stat().st_size + copies.record_path(copy).stat().st_size
    assert main(["cache", "rm", "mlp.net"]) == 0
    assert not cached.exists() and not copy.exists() and not copies.record_path(copy).exists()


def test_prune_counts_the_copy_and_removes_copies_whose_source_is_gone(cached, capsys):
    load_twice(cached)
    f = housekeeping.scan()[0]
    assert f.total == f.size + f.copy_size and f.copy_size > 0
    # Just enough room for the .pth alone: with its copy it is over, so both go.
    assert main(["cache", "prune", "--max-size", str(f.size)]) == 0
    assert not cached.exists() and not copies.copy_path(cached).exists()
    orphan = copies.copy_path(cached.with_name("gone.pth"))
    orphan.write_bytes(b"left by hand")
    assert main(["cache", "prune", "--max-size", "1G"]) == 0
    assert not orphan.exists()


def test_cache_verify_deletes_a_bad_copy_and_keeps_the_good_source(cached, capsys):
    load_twice(cached)
    copy = copies.copy_path(cached)
    change_last_value(copy)
    assert main(["cache", "verify", "mlp.net"]) == 0
    out = capsys.readouterr().out
    assert "safetensors copy was bad" in out and cached.exists() and not copy.exists()


def test_zoo_fetch_writes_the_copy_before_it_returns(cached, capsys):
    assert main(["fetch", "mlp.net"]) == 0
    assert copies.check(cached) == "ok"


def test_a_writer_that_died_mid_copy_leaves_nothing_the_next_one_keeps(cached):
    copies.folder().mkdir(parents=True)
    tag = dead_writer_tag()
    left = copies.folder() / f".{copies.copy_path(cached).name}.k2j4x9q1.{tag}.tmp"
    left.write_bytes(b"half a copy")
    writing = f"{owners.host()}.{os.getppid()}.fedcba"  # a process that still runs
    live = copies.folder() / f".{copies.copy_path(cached).name}.p3n8v0d2.{writing}.tmp"
    live.write_bytes(b"a copy being written")
    copies.make(cached, integrity.sha256_file(cached))
    assert not left.exists() and live.exists() and copies.check(cached) == "ok"


def test_the_background_copy_stays_in_the_home_of_the_load(cached, tmp_path, monkeypatch):
    digest = integrity.sha256_file(cached)
    home = os.environ["ZOO_HOME"]
    copies.make_later(cached, digest)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "another_home"))  # as a test or a script might, meanwhile
    copies.wait()
    monkeypatch.setenv("ZOO_HOME", home)
    assert copies.check(cached) == "ok" and not (tmp_path / "another_home").exists()


def test_a_copy_that_cannot_be_written_is_one_line_on_stderr_and_the_load_goes_on(cached, capfd):
    copies.folder().write_text("a file where zoo keeps its copies")  # so nothing can be written there
    reference = serialization.load_state_dict(cached)
    model = zoo.get_model("mlp")
    copies.wait()
    err = capfd.readouterr().err
    assert same(model.state_dict(), reference)
    assert err.count("zoo: no safetensors copy of mlp-net.pth") == 1 and "Traceback" not in err


def test_the_copy_loads_in_a_new_process_without_torch_load(cached):
    load_twice(cached)
    code = (
        "import zoo; from zoo.weights import serialization as s\n"
        "s._torch_load_file = lambda *a: (_ for _ in ()).throw(AssertionError('torch.load'))\n"
        "zoo.get_model('mlp')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_script_that_loads_and_exits_leaves_the_copy_to_a_writer_that_outlives_it(cached):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    script = (
        "import zoo; from zoo.weights import copies\n"
        "zoo.get_model('mlp')\n"
        "assert not copies.folder().exists(), 'written while the script ran'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    while copies.check(cached) != "ok" and time.monotonic() - started < 60:
        time.sleep(0.1)
    assert copies.check(cached) == "ok"


def test_a_state_dict_with_a_transposed_tensor_is_copied_with_its_values(test_manifest):
    weight = torch.randn(3, 5)
    cache = test_manifest({"mlp.t": ({"w": weight.t(), "b": torch.arange(4.0)}, {})})
    source = cache / "mlp-t.pth"
    digest = integrity.sha256_file(source)
    assert copies.make(source, digest) is not None
    loaded = copies.load(source, digest)
    assert torch.equal(loaded["w"], weight.t()) and torch.equal(loaded["b"], torch.arange(4.0))


def test_a_fifo_or_link_in_place_of_the_copy_is_never_read(cached, tmp_path):
    load_twice(cached)
    copy = copies.copy_path(cached)
    digest = integrity.sha256_file(cached)
    copy.unlink()
    os.mkfifo(copy)  # opening it to hash it would wait forever for a writer
    integrity._memo.clear()
    assert copies.load(cached, digest) is None and copies.check(cached) == "bad"
    copy.unlink()
    copy.symlink_to("/dev/zero")  # would never end
    assert copies.load(cached, digest) is None and copies.check(cached) == "bad"
    model = zoo.get_model("mlp")  # from the .pth
    assert same(model.state_dict(), serialization.load_state_dict(cached))


def test_a_record_without_full_digests_is_not_a_record(cached):
    load_twice(cached)
    copy = copies.copy_path(cached)
    record = json.loads(copies.record_path(copy).read_text())
    change_last_value(copy, b"\0\0\x80\x7f")  # the copy's last value is now +inf ...
    for sha in ("", record["sha256"][:8], record["sha256"].upper()):  # ... and a record that would match it
        copies.record_path(copy).write_text(json.dumps({**record, "sha256": sha}))
        integrity._memo.clear()
        assert copies.read_record(copy) is None
        assert copies.load(cached, record["source_sha256"]) is None and copies.check(cached) == "bad"
    copies.record_path(copy).write_text(json.dumps({**record, "source_sha256": ""}))
    assert copies.read_record(copy) is None


def test_cache_verify_on_a_cache_it_cannot_change_keeps_a_bad_copy_and_checks_the_rest(
    cached, capsys, monkeypatch
):
    load_twice(cached)
    change_last_value(copies.copy_path(cached))

    def read_only(source):
        raise StorageError(f"cannot create the lock file {source}.lock: Read-only file system")

    monkeypatch.setattr(housekeeping, "remove_copy", read_only)
    assert main(["cache", "verify", "mlp.net"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "safetensors copy is bad, kept: cannot delete it here" in out
    assert "1 files checked, 0 bad" in out


def test_cache_rm_and_prune_remove_what_a_killed_writer_left(cached, capsys):
    load_twice(cached)
    tag = dead_writer_tag()
    for name in ("mlp-net.pth", "gone.pth"):
        (copies.folder() / f".{name}.safetensors.k2j4x9q1.{tag}.tmp").write_bytes(b"half a copy")
    assert main(["cache", "rm", "mlp.net"]) == 0
    assert not [p for p in copies.folder().iterdir() if p.name.endswith(".tmp")]
    (copies.folder() / f".gone.pth.safetensors.k2j4x9q1.{tag}.tmp").write_bytes(b"half a copy")
    assert main(["cache", "prune", "--max-size", "1G"]) == 0
    assert not [p for p in copies.folder().iterdir() if p.name.endswith(".tmp")]


def test_a_dtype_safetensors_cannot_store_gets_a_record_and_is_not_tried_again(test_manifest):
    cache = test_manifest({"mlp.complex": ({"w": torch.randn(3, dtype=torch.complex128)}, {})})
    source = cache / "mlp-complex.pth"
    digest = integrity.sha256_file(source)
    assert copies.make(source, digest) is None
    record = json.loads(copies.record_path(copies.copy_path(source)).read_text())
    assert record["sha256"] is None and "complex128" in record["reason"]
    assert not copies.wanted(source, digest)


def test_module_versions_that_are_not_an_object_are_left_out(cached):
    digest = integrity.sha256_file(cached)
    state_dict = serialization.load_state_dict(cached)
    copy = copies.copy_path(cached)
    copies.folder().mkdir(parents=True)
    for versions in ("5", "[1, 2]", "not json"):
        metadata = {"zoo.source_sha256": digest, "zoo.module_versions": versions}
        save_file(dict(state_dict), str(copy), metadata=metadata)
        record = {"source": cached.name, "source_sha256": digest, "sha256": integrity.sha256_file(copy)}
        copies.record_path(copy).write_text(json.dumps(record))
        integrity._memo.clear()
        loaded = copies.load(cached, digest)
        assert same(loaded, state_dict) and not getattr(loaded, "_metadata", None)
