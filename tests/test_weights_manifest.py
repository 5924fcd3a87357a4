import functools
import importlib.util
import json

import pytest
from conftest import REPO_ROOT
from torchvision import models as tvm

import zoo
from zoo.weights import manifest
from zoo.weights.manifest import ManifestError


@functools.cache  # one module, so that its memory of torchvision's builders serves every test here
def load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate_manifest", REPO_ROOT / "scripts" / "generate_manifest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_the_manifest_changes_nothing():
    gen = load_generator()
    current = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    assert manifest.dumps(gen.generate(current)) == manifest.DEFAULT_MANIFEST.read_text()
    assert gen.main(["--check"]) == 0


def test_generator_check_detects_drift(tmp_path):
    gen = load_generator()
    data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    data["weights"]["resnet18.imagenet1k_v1"]["meta"]["metrics"]["ImageNet-1K"]["acc@1"] = 99.0
    path = tmp_path / "m.json"
    path.write_text(manifest.dumps(data))
    assert gen.main(["--check", "--path", str(path)]) == 1
    assert gen.main(["--path", str(path)]) == 0
    assert gen.main(["--check", "--path", str(path)]) == 0


def test_generator_keeps_published_entries():
    gen = load_generator()
    data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    data["weights"]["mlp.blobs"] = {
        "arch": "mlp",
        "file_name": "x.safetensors",
        "sha256": "0" * 64,
        "meta": {},
    }
    data["defaults"]["mlp"] = "mlp.blobs"
    fresh = gen.generate(data)
    assert fresh["weights"]["mlp.blobs"] == data["weights"]["mlp.blobs"]
    assert fresh["defaults"]["mlp"] == "mlp.blobs"


CLASSIFIERS = tvm.list_models(module=tvm)


def test_the_manifest_holds_every_torchvision_classification_weight():
    ours = [w for w in zoo.list_weights() if zoo.get_weights(w).meta.get("source") == "torchvision"]
    assert len(CLASSIFIERS) == 80 and len(ours) == 115
    assert sorted(ours) == sorted(
        f"{arch}.{member.name.lower()}" for arch in CLASSIFIERS for member in tvm.get_model_weights(arch)
    )


def test_full_digests_are_merged_with_their_source_and_the_rest_say_prefix():
    full = {
        w.file_name: w
        for k in zoo.list_weights()
        if (w := zoo.get_weights(k)).meta.get("source") == "torchvision" and not w.sha256_is_prefix
    }
    assert sorted(full) == sorted(load_generator().KNOWN_FILES)
    assert full["alexnet-owt-7be5be79.pth"].size == 244408911
    assert full["googlenet-1378be20.pth"].size is None
    for w in full.values():
        assert w.meta["sha256_source"] == "issue 13's table of published digests"
        assert w.sha256.startswith(w.file_name.rsplit("-", 1)[1].split(".")[0])
    vit = zoo.get_weights("vit_h_14.imagenet1k_swag_e2e_v1")
    assert vit.sha256_is_prefix and vit.meta["sha256_source"] == "file name (prefix only)"
    assert vit.kwargs == {"image_size": 518} and vit.meta["license"].startswith("https://")
    assert vit.meta["gflops"] > 1000 and vit.meta["file_size_mb"] > 2000


@pytest.mark.parametrize("arch", CLASSIFIERS)
def test_every_torchvision_weight_is_known(arch):
    enum = tvm.get_model_weights(arch)
    assert zoo.get_weights(arch).key == f"{arch}.{enum.DEFAULT.name.lower()}"
    for member in enum:
        w = zoo.get_weights(f"{arch}.{member.name.lower()}")
        assert w.urls == (member.url,)
        assert w.file_name == member.url.rsplit("/", 1)[1]
        assert w.file_name.split("-")[-1].startswith(w.sha256[:8])
        assert w.categories == member.meta["categories"]
        assert w.meta["num_params"] == member.meta["num_params"]
        measured = {d: {k: v for k, v in m.items() if v == v} for d, m in member.meta["_metrics"].items()}
        assert {
            d: {k: v for k, v in m.items() if v is not None} for d, m in w.meta["metrics"].items()
        } == measured
        assert (w.meta["gflops"], w.meta["file_size_mb"]) == (member.meta["_ops"], member.meta["_file_size"])
        assert w.meta["recipe"] == member.meta["recipe"]
        ours, theirs = w.transforms(), member.transforms()
        assert (ours.crop_size, ours.resize_size, ours.mean, ours.std) == (
            theirs.crop_size,
            theirs.resize_size,
            theirs.mean,
            theirs.std,
        )
        assert type(ours) is type(theirs)


def test_stated_entries():
    r18 = zoo.get_weights("resnet18")
    assert r18.sha256 == "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"
    assert not r18.sha256_is_prefix and r18.size == 46_830_571
    h2z = zoo.get_weights("cyclegan")
    assert h2z.key == "cyclegan.horse2zebra" and h2z.size == 45_519_250
    assert h2z.urls[0].endswith("dlwpt-code/master/data/p1ch2/horse2zebra_0.4.0.pth")
    assert h2z.sha256 == "043afb9bdb059f8423ba772f9b01b5d72dc63f8221989e7750807df6c55d56b4"
    assert h2z.meta["num_params"] == 11_378_179
    assert h2z.transforms() is not None
    gz = zoo.get_weights("dcgan")
    assert gz.urls[0].endswith("/gan_zoo/DCGAN_fashionGen-1d67302.pth") and len(gz.urls) == 1
    assert gz.sha256 == "1d67302" and gz.sha256_is_prefix and gz.transforms() is None


def test_schema_version_is_checked(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"schema_version": 99, "weights": {}, "defaults": {}}))
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    with pytest.raises(ManifestError, match="schema_version 99"):
        zoo.list_weights()
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        manifest.read_raw(path)


def test_write_raw_is_atomic_and_reloads(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    manifest.write_raw(data, path)
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    before = len(zoo.list_weights())
    data["weights"]["mlp.x"] = {"arch": "mlp", "file_name": "x.pth", "sha256": "ab" * 32}
    manifest.write_raw(data, path)
    assert len(zoo.list_weights()) == before + 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_preset_interpolation_is_restored_from_json():
    import torch
    from torchvision.transforms import InterpolationMode

    from zoo.weights import presets

    t = presets.build(
        {"preset": "image_classification", "crop_size": 8, "resize_size": 10, "interpolation": "bicubic"}
    )
    assert t.interpolation == InterpolationMode.BICUBIC
    assert t(torch.rand(3, 20, 30)).shape == (3, 8, 8)
