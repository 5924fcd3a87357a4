"""Weights that span several files (the book's NeuralTalk2): each file resolved and verified, chunks joined."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import sha256_of
from test_models_neuraltalk2_files import book_files

import zoo
from zoo.cli import main
from zoo.errors import IntegrityError, ManifestError, WeightsNotFoundError
from zoo.store import integrity, paths
from zoo.weights import files as weight_files
from zoo.weights import housekeeping, manifest

KEY = "neuraltalk2.book_test"


def entry(server, staged: dict[str, Path], *, hashes: bool = True) -> dict:
    """A manifest entry naming the decoder, the infos and the encoder in two chunks, all on the server."""

    def spec(name: str) -> dict:
        server.files[f"/book/{name}"] = staged[name].read_bytes()
        return {
            "file_name": name,
            "urls": [f"{server.url}/book/{name}"],
            "sha256": sha256_of(staged[name]) if hashes else "",
            "size": staged[name].stat().st_size if hashes else None,
        }

    return {
        "arch": "neuraltalk2",
        **spec("fc-model.pth"),
        "files": {
            "infos": spec("fc-infos.pkl"),
            "encoder": {
                "file_name": "resnet101.pth",
                "sha256": sha256_of(staged["resnet101.pth"]) if hashes else "",
                "size": None,
                "parts": [spec("resnet101a.pth"), spec("resnet101b.pth")],
            },
        },
        "meta": {"source": "test"},
    }


@pytest.fixture
def book(tmp_path, server, monkeypatch):
    """The book's files, small, with resnet101.pth cut in two chunks; a manifest entry naming them."""
    staging = tmp_path / "staging"
    staging.mkdir()
    model, made = book_files(staging)
    data = made["encoder"].read_bytes()
    (staging / "resnet101a.pth").write_bytes(data[: len(data) // 3])
    (staging / "resnet101b.pth").write_bytes(data[len(data) // 3 :])
    staged = {p.name: p for p in staging.iterdir()}

    def install(**options) -> dict:
        raw = manifest.read_raw(manifest.DEFAULT_MANIFEST)
        # The packaged book entry names the same files: left out, so each file here has one entry.
        del raw["weights"]["neuraltalk2.fc_coco"], raw["defaults"]["neuraltalk2"]
        raw["weights"][KEY] = entry(server, staged, **options)
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(raw))
        monkeypatch.setenv("ZOO_MANIFEST", str(path))
        return raw["weights"][KEY]

    install()
    return model, staged, install


def test_an_entry_names_its_other_files_and_the_parts_they_are_joined_from(book):
    w = zoo.get_weights(KEY)
    assert set(w.files) == {"infos", "encoder"}
    encoder = w.files["encoder"]
    assert [p.file_name for p in encoder.parts] == ["resnet101a.pth", "resnet101b.pth"]
    assert encoder.key == f"{KEY}:encoder" and encoder.parts[0].key == f"{KEY}:encoder[1]"
    assert [f.file_name for f in w.every_file()] == [
        "fc-model.pth",
        "fc-infos.pkl",
        "resnet101.pth",
        "resnet101a.pth",
        "resnet101b.pth",
    ]


def test_the_model_loads_from_the_entry_with_every_file_fetched_verified_and_the_encoder_joined(book, server):
    original, staged, _ = book
    model = zoo.get_model("neuraltalk2", weights=KEY)
    assert model.vocab == original.vocab
    for k, v in original.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, msg=k)
    cache = paths.weights_dir()
    joined = cache / "resnet101.pth"
    assert joined.read_bytes() == staged["resnet101.pth"].read_bytes()
    # The chunks were only the way to the joined file: the cache keeps one copy, and nothing half-made.
    assert sorted(p.name for p in cache.iterdir() if p.is_file() and not p.name.endswith(".lock")) == [
        "fc-infos.pkl",
        "fc-model.pth",
        "resnet101.pth",
    ]
    # A second build finds every file in the cache: no request at all.
    before = len(server.log)
    zoo.get_model("neuraltalk2", weights=KEY)
    assert len(server.log) == before


def test_a_corrupt_chunk_is_refused_and_no_joined_file_is_left(book, server):
    server.faults["/book/resnet101b.pth"] = [("corrupt",)] * 10
    with pytest.raises(IntegrityError, match="resnet101b.pth"):
        zoo.get_model("neuraltalk2", weights=KEY)
    assert not (paths.weights_dir() / "resnet101.pth").exists()
    assert not any(p.name.endswith(".join") for p in paths.weights_dir().iterdir())


def test_chunks_that_join_to_the_wrong_hash_leave_nothing_behind(book, tmp_path):
    _, _, install = book
    raw = manifest.read_raw()
    raw["weights"][KEY]["files"]["encoder"]["sha256"] = "0" * 64
    Path(manifest.manifest_path()).write_text(json.dumps(raw))
    with pytest.raises(IntegrityError, match="joining resnet101a.pth \\+ resnet101b.pth gave sha256"):
        zoo.get_model("neuraltalk2", weights=KEY)
    left = sorted(p.name for p in paths.weights_dir().iterdir() if not p.name.endswith(".lock"))
    assert "resnet101.pth" not in left and not any(name.endswith(".join") for name in left)


def test_files_without_a_known_hash_are_used_with_a_warning_and_pinning_then_holds_them(book, server):
    original, staged, install = book
    install(hashes=False)
    with pytest.warns(UserWarning, match="no sha256 is known"):
        zoo.get_model("neuraltalk2", weights=KEY)
    assert main(["cache", "verify", "--pin"]) == 0
    pins = integrity.pins()
    assert pins[f"{KEY}:infos"] == sha256_of(staged["fc-infos.pkl"])
    assert pins[f"{KEY}:encoder"] == sha256_of(staged["resnet101.pth"])
    # Pinned: a changed copy of the vocabulary is no longer accepted, and the cache's bad copy is dropped.
    infos = paths.weights_dir() / "fc-infos.pkl"
    infos.write_bytes(infos.read_bytes() + b"changed")
    server.files["/book/fc-infos.pkl"] = infos.read_bytes()
    with pytest.raises(IntegrityError, match="fc-infos.pkl"):
        zoo.get_model("neuraltalk2", weights=KEY)
    assert not infos.exists()


def test_offline_the_missing_files_are_named_and_nothing_is_fetched(book, server, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="fc-infos.pkl"):
        zoo.get_model("neuraltalk2", weights=KEY)
    assert server.connections == 0


def test_zoo_fetch_gets_every_file_and_the_cache_listing_knows_them(book, capsys):
    assert main(["fetch", KEY, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fetched = out["fetched"][0]
    assert fetched["key"] == KEY and Path(fetched["path"]).name == "fc-model.pth"
    assert {k: Path(v).name for k, v in fetched["files"].items()} == {
        "infos": "fc-infos.pkl",
        "encoder": "resnet101.pth",
    }
    listed = {f.path.name: f.keys for f in housekeeping.scan()}
    assert listed == {
        "fc-model.pth": [KEY],
        "fc-infos.pkl": [f"{KEY}:infos"],
        "resnet101.pth": [f"{KEY}:encoder"],
    }
    assert all(f.state(rehash=True) == "ok" for f in housekeeping.scan())


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "'files' must be an object"),
        ({"Bad Role": {"file_name": "x.pth"}}, "roles must be lower-case names"),
        ({"infos": {"file_name": "x.pkl", "sha256": "", "run": "rm -rf /"}}, "must be an object of"),
        ({"infos": {"file_name": "../x.pkl", "sha256": ""}}, "not a plain file name"),
        ({"infos": {"file_name": "x.pkl", "sha256": "zz"}}, "'sha256' must be hex digits"),
        (
            {"enc": {"file_name": "r.pth", "sha256": "", "parts": [{"file_name": "a", "sha256": ""}]}},
            "two or more",
        ),
        ({"enc": {"file_name": "r.pth", "sha256": "", "parts": ["a", "b"]}}, "part 1: must be an object"),
        (
            {"enc": {"file_name": "r.pth", "sha256": "", "parts": [{"file_name": "/a", "sha256": ""}] * 2}},
            "not a plain file name",
        ),
    ],
)
def test_a_malformed_files_table_is_one_manifest_error_naming_the_entry(files, message):
    raw = {"arch": "neuraltalk2", "file_name": "fc.pth", "urls": [], "sha256": "", "files": files}
    with pytest.raises(ManifestError, match=message) as caught:
        manifest.entry_to_weights(KEY, raw, {})
    assert KEY in str(caught.value)


def test_the_packaged_manifest_names_the_books_files_with_the_book_repositorys_urls():
    w = zoo.get_weights("neuraltalk2")
    assert w.key == "neuraltalk2.fc_coco" and w.file_name == "fc-model.pth"
    assert w.sha256 == "" and w.sha256_is_prefix  # not known: said so, and pinned on first use
    assert w.files["infos"].file_name == "fc-infos.pkl"
    assert [p.file_name for p in w.files["encoder"].parts] == ["resnet101a.pth", "resnet101b.pth"]
    for f in w.every_file():
        assert all(
            u.startswith("https://raw.githubusercontent.com/deep-learning-with-pytorch/") for u in f.urls
        )


def test_the_join_never_writes_through_a_link_planted_in_the_cache(book, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    cache = paths.weights_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "resnet101.pth").symlink_to(outside)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo.get_model("neuraltalk2", weights=KEY)
    assert outside.read_text() == "keep"
    assert not (cache / "resnet101.pth").is_symlink()
    assert weight_files.verified_file(zoo.get_weights(KEY).files["encoder"]) == cache / "resnet101.pth"


def test_a_missing_other_file_says_its_hash_is_not_known_and_how_to_fetch_its_entry(book, monkeypatch):
    _, _, install = book
    install(hashes=False)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as caught:
        zoo.get_model("neuraltalk2", weights=KEY)
    text = str(caught.value)
    assert "sha256 not known" in text and f"`zoo fetch {KEY}`" in text, text


def test_a_bad_joined_file_in_the_cache_is_replaced_by_a_fresh_join_without_waiting_for_itself(
    book, monkeypatch
):
    _, staged, _ = book
    # A join that waited for the lock it holds itself would give up after ZOO_LOCK_TIMEOUT (else hang).
    monkeypatch.setenv("ZOO_LOCK_TIMEOUT", "5")
    joined = paths.weights_dir() / "resnet101.pth"
    encoder = zoo.get_weights(KEY).files["encoder"]
    pieces = [weight_files.verified_file(p) for p in encoder.parts]
    joined.write_bytes(b"not the encoder")  # found by the join itself, under the lock it holds
    started = time.monotonic()
    assert weight_files._join(encoder, pieces, encoder.sha256) == joined
    assert time.monotonic() - started < 4
    assert joined.read_bytes() == staged["resnet101.pth"].read_bytes()
