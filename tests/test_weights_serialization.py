"""Safe loading: pickles that would run code are refused; the GAN zoo's format loads as plain data."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import zoo
from zoo.models.dcgan import DCGANGenerator
from zoo.weights.serialization import GanZooConfig, UnsafeCheckpointError, load_state_dict, read_checkpoint


class OpensAFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "extra": OpensAFile(marker)}, f)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load .*evil.pth"):
        load_state_dict(f)
    assert not marker.exists()


@pytest.fixture
def gan_zoo_module() -> Iterator[type]:
    """A stand-in for the GAN zoo's `models.utils.config.BaseConfig`, importable only while saving."""
    names = ["models", "models.utils", "models.utils.config"]
    saved = {n: sys.modules.get(n) for n in names}
    config = types.ModuleType("models.utils.config")

    class BaseConfig:
        pass

    BaseConfig.__module__ = "models.utils.config"
    BaseConfig.__qualname__ = "BaseConfig"
    config.BaseConfig = BaseConfig
    sys.modules.update(
        {"models": types.ModuleType("models"), "models.utils": types.ModuleType("models.utils")}
    )
    sys.modules["models.utils.config"] = config
    try:
        yield BaseConfig
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def gan_zoo_checkpoint(base_config: type, path: Path, generator: DCGANGenerator, **extra: object) -> Path:
    config = base_config()
    config.dimLatentVector = generator.latent_dim
    config.lossMode = "DCGAN"
    config.nested = base_config()
    config.nested.depth = 3
    vars(config).update(extra)
    averaged = DCGANGenerator()  # a different generator: the file's netG must be the one loaded
    torch.save(
        {
            "config": config,
            "netG": generator.state_dict(),
            "netD": {"w": torch.ones(3)},
            "avgG": averaged.state_dict(),
        },
        path,
    )
    for name in ("models.utils.config", "models.utils", "models"):  # loading must not find the class
        sys.modules.pop(name, None)
    return path


def test_gan_zoo_checkpoint_loads_into_dcgan_as_plain_data(gan_zoo_module, tmp_path):
    generator = DCGANGenerator()
    f = gan_zoo_checkpoint(gan_zoo_module, tmp_path / "DCGAN_fashionGen.pth", generator)
    checkpoint = read_checkpoint(f)
    assert isinstance(checkpoint["config"], GanZooConfig)
    assert checkpoint["config"].as_dict() == {
        "dimLatentVector": 64,
        "lossMode": "DCGAN",
        "nested": {"depth": 3},
    }
    assert "models.utils.config" not in sys.modules  # the class was never imported
    model = zoo.get_model("dcgan", weights=f, device="cpu")
    for name, tensor in generator.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    noise, _ = model.buildNoiseData(2)
    assert model.test(noise).shape == (2, 3, 64, 64)


def test_gan_zoo_checkpoint_through_the_manifest(gan_zoo_module, tmp_path, test_manifest):
    generator = DCGANGenerator()
    f = gan_zoo_checkpoint(gan_zoo_module, tmp_path / "DCGAN_test.pth", generator)
    test_manifest({"dcgan.test": (f, {"file_name": "DCGAN_test.pth"})}, defaults={"dcgan": "dcgan.test"})
    model = zoo.load(str(Path(__file__).resolve().parent.parent), "dcgan", pretrained=True, device="cpu")
    assert torch.equal(model.formatLayer.weight, generator.formatLayer.weight)


def test_code_hidden_in_a_gan_zoo_config_is_refused(gan_zoo_module, tmp_path):
    marker = tmp_path / "pwned"
    f = gan_zoo_checkpoint(gan_zoo_module, tmp_path / "evil.pth", DCGANGenerator(), hook=OpensAFile(marker))
    with pytest.raises(UnsafeCheckpointError):
        load_state_dict(f)
    assert not marker.exists()


def test_gan_zoo_config_attributes_stay_data(gan_zoo_module, tmp_path):
    f = gan_zoo_checkpoint(gan_zoo_module, tmp_path / "g.pth", DCGANGenerator(), as_dict="shadow")
    config = read_checkpoint(f)["config"]
    assert config.dimLatentVector == 64 and config.as_dict()["as_dict"] == "shadow"


def test_a_config_that_contains_itself(gan_zoo_module, tmp_path):
    config = gan_zoo_module()
    config.me = config
    torch.save({"config": config, "netG": DCGANGenerator().state_dict()}, tmp_path / "c.pth")
    sys.modules.pop("models.utils.config", None)
    assert read_checkpoint(tmp_path / "c.pth")["config"].as_dict() == {"me": None}


def test_a_config_built_with_arguments_is_refused_cleanly(gan_zoo_module, tmp_path):
    class WithArgs(gan_zoo_module):
        def __reduce__(self):
            return (gan_zoo_module, (1, 2))

    torch.save({"config": WithArgs()}, tmp_path / "a.pth")
    sys.modules.pop("models.utils.config", None)
    with pytest.raises(zoo.ZooError):
        read_checkpoint(tmp_path / "a.pth")
