"""What an installed zoo promises: hubconf dependencies that match the package's, CPU models unless a device
is asked for, torchvision's meaning of pretrained=True, and the data found where the package keeps it."""

from __future__ import annotations

import ast
import re

import pytest
import tomllib
import torch
from conftest import REPO_ROOT

import zoo
from zoo import devices
from zoo.models._builder import pretrained_weights
from zoo.weights import files, manifest

# distribution name on the package index -> the module it installs, where they differ
MODULE_OF = {"pillow": "PIL"}


def test_hubconf_dependencies_are_the_packages_dependencies():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]]
    wanted = {MODULE_OF.get(n, n.replace("-", "_")) for n in names}
    tree = ast.parse((REPO_ROOT / "hubconf.py").read_text())
    declared = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "dependencies"
    )
    assert set(declared) == wanted
    assert not [d for d in project["dependencies"] if "<" in d or "==" in d]  # no upper pins
    assert project["name"] == "zoo-hub"


@pytest.fixture
def cuda_reported(monkeypatch):
    """A machine where CUDA is reported available: nothing may be moved there unless asked."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    moved = []
    real_to = torch.nn.Module.to

    def to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if (
            target is not None and torch.device(target).type == "cuda"
            if isinstance(target, (str, torch.device))
            else False
        ):
            moved.append(target)
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    return moved


def test_builders_return_cpu_models_when_cuda_is_available(cuda_reported):
    model = zoo.models.resnet101(weights=None)
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    zoo.get_model("mlp", pretrained=True)
    zoo.load(str(REPO_ROOT), "custom_model", pretrained=True)
    zoo.models.dcgan(weights=None, useGPU=False)
    assert cuda_reported == []
    zoo.models.mlp(weights=None, device="cuda")  # asked for: honoured
    assert [torch.device(t).type for t in cuda_reported] == ["cuda"]
    assert devices.resolve_device(None).type == "cuda" and devices.resolve_device("auto").type == "cuda"


def test_pretrained_true_means_torchvision_legacy_weights_and_default_the_best():
    assert pretrained_weights("resnet50") == "resnet50.imagenet1k_v1"
    assert pretrained_weights("resnet101") == "resnet101.imagenet1k_v1"
    assert (
        manifest.load().weights["resnet101.imagenet1k_v1"].file_name == "resnet101-63fe2227.pth"
    )  # the book's
    assert zoo.get_weights("resnet50").key == "resnet50.imagenet1k_v2"
    assert pretrained_weights("mlp") == "DEFAULT"


def test_pretrained_true_loads_the_v1_file_and_default_the_v2_file(test_manifest):
    torch.manual_seed(0)
    v1 = zoo.models.resnet50(weights=None).state_dict()
    v2 = {k: v.clone() for k, v in v1.items()}
    v2["fc.bias"] = v2["fc.bias"] + 1
    test_manifest({"resnet50.imagenet1k_v1": (v1, {}), "resnet50.imagenet1k_v2": (v2, {})})
    assert torch.equal(zoo.models.resnet50(pretrained=True).fc.bias, v1["fc.bias"])
    assert torch.equal(zoo.get_model("resnet50", pretrained=True).fc.bias, v1["fc.bias"])
    assert torch.equal(zoo.get_model("resnet50").fc.bias, v2["fc.bias"])
    assert torch.equal(zoo.models.resnet50(weights="DEFAULT").fc.bias, v2["fc.bias"])


def test_bundled_files_and_the_manifest_are_found_through_the_package():
    assert files.bundled_dir() == REPO_ROOT / "zoo" / "weights" / "data"
    assert files.find_local(zoo.get_weights("mlp.blobs")).parent == files.bundled_dir()
    # in a checkout the manifest is the repository's; a wheel carries it as zoo/weights/data/
    assert manifest.packaged_manifest() == REPO_ROOT / "weights_manifest.json"


def test_the_install_hint_for_a_missing_zoo_names_the_distribution(tmp_path, monkeypatch):
    from zoo.errors import MissingDependenciesError
    from zoo.hub import hubconf

    monkeypatch.setattr(hubconf, "_importable", lambda name: name == "torch")  # zoo and pillow not installed
    (tmp_path / "hubconf.py").write_text('dependencies = ["torch", "zoo", "PIL"]\n')
    with pytest.raises(MissingDependenciesError) as e:
        hubconf.import_hubconf(tmp_path)
    assert str(e.value).endswith(": zoo, PIL (pip install zoo-hub pillow)")
