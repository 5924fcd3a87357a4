"""weights.presets.build: any spec that is not a known preset with valid fields is one ManifestError, whatever its
source (a manifest, a weight file's card), never a KeyError/TypeError/ValueError from inside torchvision."""

from __future__ import annotations

import pytest
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

from zoo.errors import ManifestError
from zoo.weights import presets

IC = {"preset": "image_classification", "crop_size": 8}

HOSTILE = {
    "an unknown preset": ({"preset": "nope"}, "unknown preset 'nope'"),
    "a preset name that is not a string": ({"preset": ["image_classification"]}, "'preset' name"),
    "a spec that is a list": ([1, 2], "'preset' name"),
    "an unknown keyword": ({**IC, "bogus": 1}, "no field 'bogus'"),
    "a missing required field": ({"preset": "image_classification"}, "needs crop_size"),
    "an unknown interpolation": ({**IC, "interpolation": "zzz"}, "interpolation must be one of"),
    "an interpolation that is a number": ({**IC, "interpolation": 2}, "interpolation must be"),
    "a negative crop": ({**IC, "crop_size": -3}, "crop_size must be a whole number"),
    "a zero resize": ({**IC, "resize_size": 0}, "resize_size must be"),
    "a crop of gigabytes": ({**IC, "crop_size": 200_000}, "from 1 to 4096"),
    "a crop that is a float": ({**IC, "crop_size": 8.5}, "crop_size must be"),
    "a crop that is a bool": ({**IC, "crop_size": True}, "crop_size must be"),
    "a crop that is a string": ({**IC, "crop_size": "224"}, "crop_size must be"),
    "a std of zero": ({**IC, "std": [0.2, 0, 0.2]}, "std must be a list of 3 finite numbers above 0"),
    "a NaN mean": ({**IC, "mean": [float("nan"), 0.4, 0.4]}, "mean must be"),
    "a mean of 2 channels": ({**IC, "mean": [0.4, 0.4]}, "mean must be"),
    "antialias that is a string": ({**IC, "antialias": "yes"}, "antialias must be true or false"),
    "a cyclegan size of a million": ({"preset": "cyclegan", "size": 10**6}, "size must be"),
    "a cyclegan keyword it lacks": ({"preset": "cyclegan", "crop_size": 8}, "no field 'crop_size'"),
}


@pytest.mark.parametrize("spec, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_preset_spec_is_one_manifest_error_naming_its_source(spec, message):
    with pytest.raises(ManifestError, match=message) as caught:
        presets.build(spec, "model.safetensors: its card's transforms")
    assert str(caught.value).startswith("model.safetensors: its card's transforms: ")
    assert len(str(caught.value)) < 300  # one short line, even for a huge value


def test_a_huge_value_is_shortened_in_the_message():
    with pytest.raises(ManifestError) as caught:
        presets.build({"preset": "x" * 1_000_000})
    assert len(str(caught.value)) < 300


def test_valid_specs_still_build_with_every_field():
    t = presets.build(
        {
            **IC,
            "resize_size": 10,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "interpolation": "bicubic",
            "antialias": False,
        }
    )
    assert isinstance(t, ImageClassification) and t.crop_size == [8] and t.resize_size == [10]
    assert t.interpolation == InterpolationMode.BICUBIC and t.mean == [0.5, 0.5, 0.5] and not t.antialias
    assert presets.build({"preset": "cyclegan", "size": 64}) is not None
    assert presets.build(None) is None and presets.build({}) is None
