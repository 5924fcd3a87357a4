"""Regenerate weights_manifest.json from torchvision's own weight metadata.

Entries of the torchvision-backed models come from torchvision's weight enums (urls, categories,
metrics, transforms); the book's CycleGAN and the GAN zoo's DCGAN are stated below as published facts.
Entries added by `zoo publish` are kept as they are.

    python scripts/generate_manifest.py           # rewrite the manifest
    python scripts/generate_manifest.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import copy
import functools
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from torchvision import models as tvm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zoo.weights import manifest  # noqa: E402

TORCHVISION = {
    "alexnet": tvm.AlexNet_Weights,
    "googlenet": tvm.GoogLeNet_Weights,
    "resnet18": tvm.ResNet18_Weights,
    "resnet34": tvm.ResNet34_Weights,
    "resnet50": tvm.ResNet50_Weights,
    "resnet101": tvm.ResNet101_Weights,
    "resnet152": tvm.ResNet152_Weights,
}

# Full digests and byte sizes known for files whose names carry only a hash prefix.
KNOWN_FILES = {
    "resnet18-f37072fd.pth": ("f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", 46830571),
}

STATED = {
    "cyclegan.horse2zebra": {
        "arch": "cyclegan",
        "file_name": "horse2zebra_0.4.0.pth",
        "urls": [
            "https://raw.githubusercontent.com/deep-learning-with-pytorch/dlwpt-code/master/data/p1ch2/horse2zebra_0.4.0.pth"
        ],
        "sha256": "043afb9bdb059f8423ba772f9b01b5d72dc63f8221989e7750807df6c55d56b4",
        "size": 45519250,
        "transforms": {"preset": "cyclegan", "size": 256},
        "kwargs": {"input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 9},
        "meta": {
            "num_params": 11378179,
            "dataset": "horse2zebra",
            "source": "Deep Learning with PyTorch (dlwpt-code, p1ch2)",
            "license": "see source",
            "docs": "CycleGAN generator that turns photos of horses into zebras.",
        },
    },
    "dcgan.fashiongen": {
        "arch": "dcgan",
        "file_name": "DCGAN_fashionGen-1d67302.pth",
        "urls": ["https://dl.fbaipublicfiles.com/gan_zoo/DCGAN_fashionGen-1d67302.pth"],
        "sha256": "1d67302",
        "size": None,
        "meta": {
            "dataset": "FashionGen",
            "source": "facebookresearch/pytorch_GAN_zoo",
            "license": "BSD-3-Clause",
            "format": "gan_zoo",
            "docs": "DCGAN trained on FashionGen, 64x64 images, as published through Torch Hub.",
        },
    },
}
STATED_DEFAULTS = {"cyclegan": "cyclegan.horse2zebra", "dcgan": "dcgan.fashiongen"}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def torchvision_entry(arch: str, member: Any) -> dict[str, Any]:
    """The manifest entry of one torchvision weights enum member."""
    file_name = member.url.rsplit("/", 1)[1]
    prefix = re.search(r"-([a-f0-9]+)\.", file_name).group(1)
    sha256, size = KNOWN_FILES.get(file_name, (prefix, None))
    meta = member.meta
    preset = member.transforms
    assert isinstance(preset, functools.partial)
    return {
        "arch": arch,
        "file_name": file_name,
        "urls": [member.url],
        "sha256": sha256,
        "size": size,
        "categories": "imagenet1k",
        "transforms": {
            "preset": "image_classification",
            **{k: _plain(v) for k, v in preset.keywords.items()},
        },
        "meta": {
            "num_params": meta["num_params"],
            "min_size": list(meta["min_size"]),
            "metrics": meta["_metrics"],
            "gflops": meta["_ops"],
            "file_size_mb": meta["_file_size"],
            "recipe": meta["recipe"],
            "docs": " ".join(meta["_docs"].split()),
            "dataset": "ImageNet-1K",
            "source": "torchvision",
            "license": "BSD-3-Clause",
        },
    }


def generate(current: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest as it should be, keeping entries (and defaults) this script does not own."""
    data = copy.deepcopy(current) if current else {}
    data["schema_version"] = manifest.SCHEMA_VERSION
    weights = data.setdefault("weights", {})
    defaults = data.setdefault("defaults", {})
    categories = data.setdefault("categories", {})
    for arch, enum in TORCHVISION.items():
        for key in [
            k
            for k, e in weights.items()
            if e.get("arch") == arch and e["meta"].get("source") == "torchvision"
        ]:
            del weights[key]
        for member in enum:
            weights[f"{arch}.{member.name.lower()}"] = torchvision_entry(arch, member)
        defaults[arch] = f"{arch}.{enum.DEFAULT.name.lower()}"
        categories["imagenet1k"] = list(enum.DEFAULT.meta["categories"])
    weights.update(copy.deepcopy(STATED))
    for arch, key in STATED_DEFAULTS.items():
        defaults.setdefault(arch, key)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the manifest is out of date")
    parser.add_argument("--path", type=Path, default=manifest.DEFAULT_MANIFEST)
    args = parser.parse_args(argv)
    current = manifest.read_raw(args.path) if args.path.exists() else None
    fresh = generate(current)
    if args.check:
        if current is None or manifest.dumps(fresh) != manifest.dumps(current):
            print(f"{args.path} is out of date: run python scripts/generate_manifest.py", file=sys.stderr)
            return 1
        return 0
    manifest.write_raw(fresh, args.path)
    print(f"wrote {len(fresh['weights'])} entries to {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
