"""zoo.generate: deterministic grids from a seed."""

from __future__ import annotations

import pytest
from PIL import Image

import zoo
from zoo.models.dcgan import DCGANGenerator
from zoo.tasks import save_grid


@pytest.fixture
def dcgan_weights(test_manifest):
    test_manifest({"dcgan.test": (DCGANGenerator().state_dict(), {})}, defaults={"dcgan": "dcgan.test"})


def test_same_seed_same_images(dcgan_weights):
    a = zoo.generate(6, seed=3, device="cpu")
    b = zoo.generate(6, seed=3, device="cpu")
    c = zoo.generate(6, seed=4, device="cpu")
    assert a.shape == (6, 3, 64, 64) and a.min() >= 0 and a.max() <= 1
    assert a.equal(b) and not a.equal(c)


def test_grid_file(dcgan_weights, tmp_path):
    save_grid(zoo.generate(10, seed=1, device="cpu"), tmp_path / "grid.png", nrow=4)
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size == (4 * 66 + 2, 3 * 66 + 2)  # 64 px tiles, 2 px padding, 3 rows for 10 images


def test_n_must_be_positive(dcgan_weights):
    with pytest.raises(ValueError, match="at least 1"):
        zoo.generate(0)
