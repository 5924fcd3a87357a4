"""zoo.publish / zoo publish: hashed files, manifest entries, hub entry points that torch.hub loads too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.errors import WeightsMismatchError
from zoo.models.mlp import make_mlp
from zoo.publish import publish
from zoo.store import paths
from zoo.weights import manifest


@pytest.fixture
def target(tmp_path, monkeypatch):
    """An empty manifest in use, and the zoo cache as the output folder (so resolution finds the files)."""
    path = tmp_path / "manifest.json"
    manifest.write_raw({"schema_version": manifest.SCHEMA_VERSION, "weights": {}, "defaults": {}}, path)
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    return path, paths.weights_dir()


def test_publish_writes_a_hashed_file_and_an_entry(target):
    path, out = target
    torch.manual_seed(0)
    model = make_mlp()
    w = publish(model, name="t", arch="custom_model", out_dir=out, manifest=path, meta={"license": "MIT"})
    assert w.key == "mlp.t" and w.file_name == f"mlp-t-{w.sha256[:8]}.safetensors"
    entry = json.loads(path.read_text())["weights"]["mlp.t"]
    assert entry["sha256"] == zoo.store.integrity.sha256_file(out / w.file_name) and entry["size"] == w.size
    assert entry["meta"]["license"] == "MIT" and entry["meta"]["num_params"] == 67
    assert json.loads(path.read_text())["defaults"]["mlp"] == "mlp.t"
    loaded = zoo.get_model("mlp", weights="mlp.t", device="cpu")
    assert torch.equal(loaded.output_layer.weight, model.output_layer.weight)


def test_republishing_is_a_no_op_and_changes_get_new_names(target):
    path, out = target
    model = make_mlp()
    first = publish(model, name="t", arch="mlp", out_dir=out, manifest=path)
    stamp = path.stat().st_mtime_ns, path.read_bytes()
    assert publish(model.state_dict(), name="t", arch="mlp", out_dir=out, manifest=path) == first
    assert (path.stat().st_mtime_ns, path.read_bytes()) == stamp
    with torch.no_grad():
        model.output_layer.bias += 1
    second = publish(model, name="t", arch="mlp", out_dir=out, manifest=path)
    assert second.file_name != first.file_name
    assert (out / first.file_name).is_file() and (out / second.file_name).is_file()  # nothing overwritten


def test_weights_that_do_not_fit_publish_nothing(target):
    path, out = target
    before = path.read_bytes()
    with pytest.raises(WeightsMismatchError):
        publish(make_mlp().state_dict(), name="bad", arch="resnet18", out_dir=out, manifest=path)
    assert path.read_bytes() == before and not any(out.glob("*.safetensors"))


def test_repo_entry_loads_with_zoo_and_torch_hub(target, tmp_path):
    path, out = target
    model = make_mlp()
    w = publish(
        model,
        name="t",
        arch="mlp",
        out_dir=out,
        manifest=path,
        repo=tmp_path / "repo",
        categories=["a", "b", "c"],
        meta={"docs": "A test MLP"},
    )
    repo = tmp_path / "repo"
    assert (repo / "weights" / w.file_name).is_file()
    assert zoo.list(str(repo)) == ["mlp_t"] and zoo.help(str(repo), "mlp_t").startswith("A test MLP.")
    x = torch.randn(5, 4)
    by_zoo = zoo.load(str(repo), "mlp_t", device="cpu")
    by_torch = torch.hub.load(str(repo), "mlp_t", source="local", device="cpu")
    assert torch.equal(by_zoo(x), model(x)) and torch.equal(by_torch(x), model(x))
    assert by_zoo.categories == ["a", "b", "c"]
    assert zoo.check_repo(repo) == []
    publish(
        model, name="t", arch="mlp", out_dir=out, manifest=path, repo=repo
    )  # re-publishing keeps one entry
    assert (repo / "hubconf.py").read_text().count("def mlp_t(") == 1


def test_finetune_folder_carries_its_card(target, tmp_path):
    path, out = target
    folder = tmp_path / "ft"
    folder.mkdir()
    from safetensors.torch import save_file

    net = zoo.get_model("resnet18", weights=None, num_classes=2, device="cpu")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    card = {
        "arch": "resnet18",
        "categories": ["cat", "dog"],
        "metrics": {"val_acc": 0.9},
        "transforms": {"preset": "image_classification", "crop_size": 64, "resize_size": 73},
    }
    (folder / "model.json").write_text(json.dumps(card))
    w = publish(folder, name="pets", out_dir=out, manifest=path)
    assert w.arch == "resnet18" and w.categories == ["cat", "dog"]
    assert w.meta["metrics"] == {"validation": {"val_acc": 0.9}} and w.transforms().crop_size == [64]


def test_cli_publish(target, tmp_path, capsys):
    path, out = target
    torch.save(make_mlp().state_dict(), tmp_path / "ckpt.pth")
    code = main(
        [
            "publish",
            str(tmp_path / "ckpt.pth"),
            "--arch",
            "mlp",
            "--name",
            "cli",
            "--out-dir",
            str(out),
            "--manifest",
            str(path),
            "--metric",
            "acc=0.97",
            "--license",
            "MIT",
            "--json",
        ]
    )
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["key"] == "mlp.cli" and (out / info["file"]).is_file()
    assert zoo.get_weights("mlp.cli").meta["metrics"] == {"acc": 0.97}
    code = main(
        ["publish", str(tmp_path / "missing.pth"), "--arch", "mlp", "--name", "x", "--manifest", str(path)]
    )
    assert code == 1 and "no such checkpoint" in capsys.readouterr().err


def test_zoo_repo_mlp_is_the_bundled_tutorial_model():
    root = Path(__file__).resolve().parent.parent
    w = zoo.get_weights("mlp")
    assert w.key == "mlp.blobs" and (root / "zoo" / "weights" / "data" / w.file_name).is_file()
    assert w.meta["metrics"]["blobs_test"]["acc"] > 0.95


def test_an_existing_file_with_other_bytes_is_never_trusted_or_overwritten(target, tmp_path):
    path, out = target
    model = make_mlp()
    w = publish(model, name="t", arch="mlp", out_dir=tmp_path / "a", manifest=path)
    (out / w.file_name).parent.mkdir(parents=True, exist_ok=True)
    (out / w.file_name).write_bytes(b"something else")
    with pytest.raises(zoo.ZooError, match="exists with other content"):
        publish(model, name="t", arch="mlp", out_dir=out, manifest=path)
    assert (out / w.file_name).read_bytes() == b"something else"


def test_docs_with_quotes_and_backslashes_stay_valid_python(target, tmp_path):
    path, out = target
    docs = 'Says """hi""" and C:\\\\new\\x41.'
    publish(
        make_mlp(), name="t", arch="mlp", out_dir=out, manifest=path, repo=tmp_path / "r", meta={"docs": docs}
    )
    assert zoo.help(str(tmp_path / "r"), "mlp_t").splitlines()[0] == docs


def test_entry_points_do_not_clash(target, tmp_path):
    path, out = target
    repo = tmp_path / "r"
    publish(make_mlp(), name="a_b", arch="mlp", out_dir=out, manifest=path, repo=repo)
    with pytest.raises(zoo.ZooError, match="entry point mlp_a_b already serves mlp.a_b"):
        publish(make_mlp(), name="a-b", arch="mlp", out_dir=out, manifest=path, repo=repo)
    other = tmp_path / "other"
    other.mkdir()
    (other / "hubconf.py").write_text(
        'dependencies = ["torch"]\n\n\ndef thing(pretrained=False):\n    """x"""\n'
    )
    with pytest.raises(zoo.ZooError, match='add "zoo" to its `dependencies`'):
        publish(make_mlp(), name="t", arch="mlp", out_dir=out, manifest=path, repo=other)


def test_a_finetune_folder_keeps_its_head_size_without_weights(target, tmp_path):
    path, out = target
    folder = tmp_path / "ft"
    folder.mkdir()
    from safetensors.torch import save_file

    net = zoo.get_model("mlp", weights=None, num_classes=5, device="cpu")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "model.json").write_text(json.dumps({"arch": "mlp", "num_classes": 5}))
    w = publish(folder, name="five", out_dir=out, manifest=path, repo=tmp_path / "r")
    assert w.kwargs == {"num_classes": 5}
    assert zoo.load(str(tmp_path / "r"), "mlp_five", pretrained=False).output_layer.out_features == 5


# The block `zoo publish --repo` wrote in release 0.1.0, verbatim but for the values: published repos keep
# calling `zoo.publish.load_published` with these positional arguments for as long as they are online.
RELEASED_BLOCK = '''"""Hub entry points published with `zoo publish`; they load with torch.hub.load and zoo.load."""

dependencies = ["torch", "zoo"]


# --- zoo publish: mlp_old (mlp.old) ---
def mlp_old(pretrained: bool = True, **kwargs):
    """mlp with the published weights mlp.old.

    Args:
        pretrained: load the published weights (file weights/{file_name}, sha256 {sha256}).
        **kwargs: passed to zoo.get_model("mlp", ...), e.g. device="cpu".
    """
    from zoo.publish import load_published

    return load_published(
        __file__, "weights/{file_name}", "mlp", "{sha256}", pretrained,
        {{}}, ['x', 'y', 'z'], **kwargs
    )
# --- end: mlp_old ---
'''


def test_a_hubconf_written_by_the_first_release_still_loads(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(3)
    model = make_mlp()
    repo = tmp_path / "old-repo"
    (repo / "weights").mkdir(parents=True)
    file_name = "mlp-old-00000000.safetensors"
    save_file(dict(model.state_dict()), str(repo / "weights" / file_name))
    sha256 = zoo.store.integrity.sha256_file(repo / "weights" / file_name)
    (repo / "hubconf.py").write_text(RELEASED_BLOCK.format(file_name=file_name, sha256=sha256))
    loaded = zoo.load(str(repo), "mlp_old")
    assert torch.equal(loaded.output_layer.weight, model.output_layer.weight)
    assert loaded.categories == ["x", "y", "z"]
    assert zoo.load(str(repo), "mlp_old", pretrained=False).output_layer.weight.shape == (3, 8)
    (repo / "weights" / file_name).write_bytes(b"tampered")
    with pytest.raises(zoo.ZooError, match="sha256"):
        zoo.load(str(repo), "mlp_old", force_reload=True)


def test_name_custom_model_gives_the_tutorials_entry_point_named_custom_model(target, tmp_path, capsys):
    path, out = target
    torch.manual_seed(1)
    model = make_mlp()
    torch.save(model.state_dict(), tmp_path / "ckpt.pth")
    repo = tmp_path / "repo"
    argv = ["publish", str(tmp_path / "ckpt.pth"), "--arch", "mlp", "--name", "custom_model"]
    code = main([*argv, "--repo", str(repo), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["key"] == "mlp.custom_model" and info["entry"] == "custom_model"
    assert zoo.list(str(repo)) == ["custom_model"]
    by_torch = torch.hub.load(str(repo), "custom_model", source="local", device="cpu")
    x = torch.randn(2, 4)
    assert torch.equal(by_torch(x), model(x))


def test_entry_names_the_entry_point_and_bad_names_write_nothing(target, tmp_path, capsys):
    path, out = target
    repo = tmp_path / "repo"
    w = publish(make_mlp(), name="blobs2", arch="mlp", out_dir=out, manifest=path, repo=repo, entry="blobs")
    assert w.key == "mlp.blobs2" and zoo.list(str(repo)) == ["blobs"]
    publish(make_mlp(), name="plain", arch="mlp", out_dir=out, manifest=path, repo=repo)
    assert zoo.list(str(repo)) == ["blobs", "mlp_plain"]  # other names keep the <arch>_<name> rule
    for bad in ("2fast", "class", "_private", "dependencies"):
        with pytest.raises(zoo.ZooError, match="invalid entry point name"):
            publish(make_mlp(), name="x", arch="mlp", out_dir=out, manifest=path, repo=repo, entry=bad)
    assert "mlp.x" not in json.loads(path.read_text())["weights"]
    torch.save(make_mlp().state_dict(), tmp_path / "ckpt.pth")
    code = main(
        [
            "publish",
            str(tmp_path / "ckpt.pth"),
            "--arch",
            "mlp",
            "--name",
            "y",
            "--repo",
            str(tmp_path / "r2"),
        ]
        + ["--entry", "b c"]
    )
    assert code == 1 and "invalid entry point name 'b c'" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_without_arch_the_error_says_arch_is_required_and_lists_the_choices(target, tmp_path, capsys):
    path, _ = target
    torch.save(make_mlp().state_dict(), tmp_path / "ckpt.pth")
    code = main(["publish", str(tmp_path / "ckpt.pth"), "--name", "custom_model", "--manifest", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("zoo: error: --arch is required")
    assert all(name in err for name in zoo.list_models()) and len(err.strip().splitlines()) == 1


def test_a_published_file_carries_its_card_and_republishes_without_arch(target, tmp_path):
    from zoo.weights import cards

    path, out = target
    w = publish(
        make_mlp(),
        name="t",
        arch="custom_model",
        out_dir=out,
        manifest=path,
        categories=["a", "b", "c"],
        meta={"license": "MIT", "metrics": {"acc": 0.9}},
    )
    card = cards.embedded(out / w.file_name)
    assert card["arch"] == "mlp" and card["key"] == "mlp.t" and card["categories"] == ["a", "b", "c"]
    assert card["num_classes"] == 3 and card["license"] == "MIT" and card["metrics"] == {"acc": 0.9}
    again = publish(out / w.file_name, name="copy", out_dir=tmp_path / "b", manifest=path)
    assert again.arch == "mlp" and again.categories == ["a", "b", "c"]
    with pytest.raises(zoo.ZooError, match="records the architecture mlp, not resnet18"):
        publish(out / w.file_name, name="r", arch="resnet18", out_dir=tmp_path / "c", manifest=path)


def test_a_torch_hub_user_without_zoo_is_told_which_package_to_install(target, tmp_path, monkeypatch):
    import importlib.util

    path, out = target
    publish(make_mlp(), name="t", arch="mlp", out_dir=out, manifest=path, repo=tmp_path / "repo")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "zoo" else real(name, *a)
    )
    with pytest.raises(RuntimeError, match="pip install zoo-hub"):
        torch.hub.load(str(tmp_path / "repo"), "mlp_t", source="local", trust_repo=True)
