from pathlib import Path

import pytest
import torch
from torchvision import models as tvm
from torchvision.models import ResNet50_Weights

import zoo
from zoo.errors import UnknownNameError
from zoo.weights import manifest
from zoo.weights.selection import select_weights

SEEDS = [
    "alexnet",
    "cyclegan",
    "dcgan",
    "googlenet",
    "mlp",
    "neuraltalk2",
    "resnet101",
    "resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
]


def test_list_models_is_sorted_and_complete():
    catalogue = tvm.list_models(module=tvm)
    assert len(catalogue) == 80
    assert zoo.list_models() == sorted({*SEEDS, *catalogue})


def test_list_models_wildcards():
    assert zoo.list_models("resnet*") == ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert zoo.list_models("*net") == ["alexnet", "googlenet"]
    assert zoo.list_models("resnet1?") == ["resnet18"]
    assert zoo.list_models("vit*") == ["vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32"]
    assert zoo.list_models("nosuch*") == []


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match=r"unknown model 'resnet105'.*did you mean.*'resnet101'"):
        zoo.get_model("resnet105", weights=None)


def test_alias_builds_the_same_model():
    a = zoo.get_model("custom_model", weights=None)
    b = zoo.get_model("mlp", weights=None)
    assert type(a) is type(b)
    assert a.state_dict().keys() == b.state_dict().keys()


def test_get_weights_by_model_key_and_tag():
    assert zoo.get_weights("resnet101").key == "resnet101.imagenet1k_v2"
    w = zoo.get_weights("resnet101.imagenet1k_v1")
    assert (w.arch, w.file_name) == ("resnet101", "resnet101-63fe2227.pth")
    assert zoo.get_weights("resnet101.IMAGENET1K_V1") == w
    assert w.sha256.startswith("63fe2227") and not w.sha256_is_prefix  # issue 13's table
    assert (
        zoo.get_weights("resnet101.imagenet1k_v2").sha256
        == "cd907fc2a0de2292b2ba2b27d2216bc672d84632d1cf20058d01c0c03b5e020e"
    )
    assert zoo.get_weights("vgg16.imagenet1k_features").sha256_is_prefix
    assert len(w.categories) == 1000 and w.categories[207] == "golden retriever"


def test_get_weights_unknown():
    with pytest.raises(UnknownNameError, match="imagenet1k_v1"):
        zoo.get_weights("resnet101.imagenet1k_v9")
    with pytest.raises(UnknownNameError, match="unknown weights 'nosuch.x'"):
        zoo.get_weights("nosuch.x")


def test_list_weights():
    assert zoo.list_weights("resnet50") == ["resnet50.imagenet1k_v1", "resnet50.imagenet1k_v2"]
    assert "cyclegan.horse2zebra" in zoo.list_weights()
    assert zoo.list_weights() == sorted(zoo.list_weights())


def test_resolve_weights_forms(tmp_path: Path):
    assert select_weights("resnet50", None) is None
    assert select_weights("resnet50", "DEFAULT").key == "resnet50.imagenet1k_v2"
    assert select_weights("resnet50", "imagenet1k_v1").key == "resnet50.imagenet1k_v1"
    assert select_weights("resnet50", "IMAGENET1K_V1").key == "resnet50.imagenet1k_v1"
    assert select_weights("resnet50", "resnet50.IMAGENET1K_V1").key == "resnet50.imagenet1k_v1"
    assert select_weights("resnet50", ResNet50_Weights.IMAGENET1K_V1).key == "resnet50.imagenet1k_v1"
    w = zoo.get_weights("resnet50")
    assert select_weights("resnet50", w) is w
    f = tmp_path / "mine.pth"
    torch.save({}, f)
    assert select_weights("resnet50", str(f)) == f
    assert select_weights("resnet50", f) == f


def test_resolve_weights_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(UnknownNameError, match="are for 'resnet18', not 'resnet50'"):
        select_weights("resnet50", "resnet18.imagenet1k_v1")
    with pytest.raises(UnknownNameError, match="weight file not found"):
        select_weights("resnet50", str(tmp_path / "missing.pth"))
    data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    data["weights"] = {k: v for k, v in data["weights"].items() if v["arch"] != "mlp"}
    data["defaults"].pop("mlp", None)
    manifest.write_raw(data, tmp_path / "no_mlp.json")
    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "no_mlp.json"))
    with pytest.raises(UnknownNameError, match="no pretrained weights are known for 'mlp'"):
        select_weights("mlp", "DEFAULT")
    with pytest.raises(UnknownNameError, match="unknown weights for resnet50 'imagenet22k'"):
        select_weights("resnet50", "imagenet22k")
    with pytest.raises(TypeError):
        select_weights("resnet50", 3)


def test_a_name_or_alias_is_registered_once():
    from zoo import registry
    from zoo.errors import DuplicateNameError

    zoo.list_models()  # the families are registered

    def resnet18():  # noqa: ANN202  (a second builder under a taken name)
        return torch.nn.Identity()

    def my_net():
        return torch.nn.Identity()

    before = (dict(registry._MODELS), dict(registry._ALIASES))
    with pytest.raises(DuplicateNameError, match="'resnet18'"):
        registry.register_model()(resnet18)
    with pytest.raises(DuplicateNameError, match="'custom_model'"):
        registry.register_model("custom_model")(my_net)  # mlp's alias
    with pytest.raises(DuplicateNameError, match="'twice'"):
        registry.register_model("twice", "twice")(my_net)
    assert before == (registry._MODELS, registry._ALIASES)  # a refused registration leaves nothing behind
    assert issubclass(DuplicateNameError, ValueError)


def test_list_models_takes_timms_arguments(tmp_path, monkeypatch):
    assert zoo.list_models("vit_*", pretrained=True, exclude_filters=["*_h_*", "*_l_*"]) == [
        "vit_b_16",
        "vit_b_32",
    ]
    assert zoo.list_models(filter=["vgg1?", "alex*"], exclude_filters="*_bn") == [
        "alexnet",
        "vgg11",
        "vgg13",
        "vgg16",
        "vgg19",
    ]
    assert zoo.list_models(pretrained=True) == zoo.list_models()  # every model has weights
    data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    data["weights"] = {k: v for k, v in data["weights"].items() if v["arch"] not in ("vit_b_32", "mlp")}
    data["defaults"] = {k: v for k, v in data["defaults"].items() if v in data["weights"]}
    manifest.write_raw(data, tmp_path / "fewer.json")
    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "fewer.json"))
    assert zoo.list_models("vit_b*", pretrained=True) == ["vit_b_16"]
    assert "mlp" not in zoo.list_models(pretrained=True) and "mlp" in zoo.list_models()
