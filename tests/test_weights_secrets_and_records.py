"""Weight resolution under attack: secrets in mirror and entry URLs, remembered digests that lie, a read-only
zoo home, and what a failed default download tells the user to do."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from conftest import PLANTED_SECRET

import zoo
from zoo.cli import main
from zoo.errors import WeightsNotFoundError, ZooError
from zoo.models.mlp import make_mlp
from zoo.store import integrity, paths
from zoo.weights import files

FILE = "mlp-secret.pth"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def private_entry(test_manifest, server, monkeypatch):
    """An mlp entry, not cached, whose URL carries a private token and whose mirror carries a password and a
    signature; the server has neither file (404)."""
    test_manifest(
        {
            "mlp.private": (
                make_mlp().state_dict(),
                {"file_name": FILE, "urls": [f"{server.url}/files/{FILE}?private_token={PLANTED_SECRET}"]},
            )
        },
        defaults={"mlp": "mlp.private"},
    )
    (paths.weights_dir() / FILE).unlink()
    port = server.server_address[1]
    monkeypatch.setenv(
        "ZOO_WEIGHTS_MIRROR", f"http://user:{PLANTED_SECRET}@127.0.0.1:{port}/?sig={PLANTED_SECRET}"
    )
    return zoo.get_weights("mlp.private")


@pytest.mark.parametrize("offline", [True, False])
def test_no_url_secret_reaches_a_not_found_message(private_entry, server, capsys, offline):
    with pytest.raises(WeightsNotFoundError) as info:
        zoo.get_model("mlp", offline=offline)
    message = str(info.value)
    assert PLANTED_SECRET not in message
    assert f"127.0.0.1:{server.server_address[1]}/{FILE}" in message  # the mirror is still named, bare
    assert f"{server.url}/files/{FILE}" in message
    assert server.connections == (0 if offline else 2)
    code, out, err = run(capsys, "fetch", "mlp.private")
    assert PLANTED_SECRET not in out + err


def test_the_mirror_query_is_sent_but_never_shown(private_entry, server):
    server.files[f"/{FILE}"] = b"not the weights"  # the mirror answers, with the wrong bytes
    with pytest.raises(ZooError) as info:
        files.verified_file(private_entry)
    assert PLANTED_SECRET not in str(info.value)
    sent = server.log[0]
    assert sent[1] == f"/{FILE}"  # the file name went into the path, the signature stayed the query


@pytest.mark.parametrize(
    "mirror", [f"http://u:{PLANTED_SECRET}@[::1/w?sig={PLANTED_SECRET}", "http://h:port/w"]
)
def test_a_mirror_that_is_not_a_url_is_one_error(private_entry, monkeypatch, capsys, mirror):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", mirror)
    code, _, err = run(capsys, "fetch", "mlp.private")
    assert code == 1 and err.count("\n") == 1 and "ZOO_WEIGHTS_MIRROR" in err and "not a valid URL" in err


def test_zoo_info_shows_entry_urls_without_their_secrets(private_entry, capsys):
    code, out, err = run(capsys, "info", "mlp", "--json")
    assert code == 0 and PLANTED_SECRET not in out + err
    urls = [u for w in json.loads(out)["weights"] for u in w["urls"]]
    assert any(u.endswith(f"/files/{FILE}") for u in urls)


@pytest.mark.parametrize("offline", [True, False])
def test_a_failed_default_says_what_works_offline(server, monkeypatch, offline):
    # The zoo's own dcgan default (fashiongen) is not cached; dcgan.digits ships inside the package.
    from zoo.weights import manifest

    data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    data["weights"]["dcgan.fashiongen"]["urls"] = [f"{server.url}/gone/fashiongen.pth"]
    path = paths.home().parent / "manifest.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    with pytest.raises(WeightsNotFoundError) as info:
        zoo.get_model("dcgan", offline=offline)
    message = str(info.value)
    assert "weights='dcgan.digits' (bundled" in message
    assert "ZOO_WEIGHTS_MIRROR" in message and "zoo fetch dcgan.fashiongen" in message
    assert str(paths.weights_dir()) in message and "pretrained=False" in message
    assert zoo.get_model("dcgan", weights="dcgan.digits", offline=True) is not None  # and it does work


@pytest.fixture
def cached(test_manifest):
    """A good mlp file in the zoo cache, loaded once so that its digest is remembered on disk."""
    reference = make_mlp()
    cache = test_manifest({"mlp.kept": (reference.state_dict(), {})}, defaults={"mlp": "mlp.kept"})
    zoo.get_model("mlp")
    records = list((paths.home() / "verified").glob("*.json"))
    assert records
    return cache / "mlp-kept.pth", records, reference


def corrupt_records(records) -> None:
    for record in records:
        data = json.loads(record.read_text())
        data["sha256"] = "f" * 64  # still well-formed, and the file's stamp still matches
        record.write_text(json.dumps(data))
    integrity._memo.clear()  # as a new process would start


def test_a_lying_record_never_gets_a_good_file_deleted(cached, monkeypatch):
    path, records, reference = cached
    corrupt_records(records)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    model = zoo.get_model("mlp")
    assert torch.equal(model.output_layer.weight, reference.output_layer.weight)
    assert path.is_file()
    corrupt_records(records)
    assert files.discard_if_bad(path, zoo.get_weights("mlp.kept").sha256) is False and path.is_file()


def test_cache_commands_do_not_believe_a_lying_record(cached, capsys):
    path, records, _ = cached
    corrupt_records(records)
    code, out, _ = run(capsys, "cache", "ls", "--json")
    assert code == 0 and [d["verified"] for d in json.loads(out)] != ["bad"]
    corrupt_records(records)
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0 and "ok" in out and "deleted" not in out and path.is_file()


def test_a_truly_bad_file_is_still_deleted(cached, capsys):
    path, _, _ = cached
    with open(path, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        tail = f.read(4)
        f.seek(-4, os.SEEK_END)
        f.write(bytes(b ^ 0xFF for b in tail))
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1 and "(deleted)" in out and not path.exists()


@pytest.fixture
def read_only_home(cached):
    """The zoo home, its cache and its records made read-only (restored after the test)."""
    if os.geteuid() == 0:
        pytest.skip("root writes whatever the mode; chmod does not bind")
    home = paths.home()
    folders = [p for p in [home, *home.rglob("*")] if p.is_dir()]
    for p in home.rglob("*"):
        if p.is_file():
            p.chmod(0o444)
    for d in folders:
        d.chmod(0o555)
    yield cached
    for d in folders:
        d.chmod(0o755)
    for p in home.rglob("*"):
        if p.is_file():
            p.chmod(0o644)


def test_a_read_only_home_still_serves_verified_files(read_only_home):
    path, _, reference = read_only_home
    integrity._memo.clear()
    model = zoo.get_model("mlp", offline=True)
    assert torch.equal(model.output_layer.weight, reference.output_layer.weight)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


@pytest.mark.parametrize("argv", [["cache", "rm", "mlp"], ["cache", "prune", "--max-size", "0"]])
def test_removing_from_a_read_only_home_is_one_error(read_only_home, capsys, argv):
    path, _, _ = read_only_home
    code, _, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and str(path) in lines[0] and "Traceback" not in err
    assert path.is_file()
