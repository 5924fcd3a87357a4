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
import inspect
import json
import math
import re
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Any

import torch.nn as nn
from torchvision import models as tvm
from torchvision.models import _utils as tv_utils
from torchvision.models._api import WeightsEnum

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zoo.models._builder import meta_build, torchvision_model  # noqa: E402
from zoo.weights import manifest  # noqa: E402

# Every classifier of torchvision's own registry (80 in torchvision 0.29.1), with every weight it has.
TORCHVISION = {name: tvm.get_model_weights(name) for name in tvm.list_models(module=tvm)}

CATALOGUE = ROOT / "zoo" / "models" / "torchvision_catalogue.json"

# Full digests and byte sizes published for files whose names carry only 8 hex digits of their sha256
# (source: the table of issue 13, "Full hashes"; each was found quoted for the same file name by several
# unrelated public projects that hashed their download). A full digest makes the entry strict; a size makes a
# wrong Content-Length fail before the body. Every other torchvision entry stays prefix-only and says so.
KNOWN_FILES = {
    "alexnet-owt-7be5be79.pth": (
        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        244408911,
    ),
    "resnet18-f37072fd.pth": ("f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", 46830571),
    "resnet34-b627a593.pth": ("b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f", 87319819),
    "resnet50-0676ba61.pth": ("0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a", 102530333),
    "resnet50-11ad3fa6.pth": ("11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca", 102540417),
    "resnet101-63fe2227.pth": ("63fe2227b86e8f1f2063f43a75c84d195911b6a0eace650907dd3dc62dd49a0a", None),
    "resnet101-cd907fc2.pth": ("cd907fc2a0de2292b2ba2b27d2216bc672d84632d1cf20058d01c0c03b5e020e", None),
    "resnet152-394f9c45.pth": ("394f9c45966e3651a89bbb78a48410a6755854ce4a5ab64927cf1c7247f85e58", None),
    "googlenet-1378be20.pth": ("1378be20a8e875cf1568b8a71654e704449655e34711a959a38b04fb34905cef", None),
}
KNOWN_FILES_SOURCE = "issue 13's table of published digests"

BOOK_CAPTIONER = "https://raw.githubusercontent.com/deep-learning-with-pytorch/ImageCaptioning.pytorch/master"

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
    # The book's captioner (ch. 2.3) as its fork of ImageCaptioning.pytorch ships it: the decoder, the
    # vocabulary and the encoder in two chunks. Their hashes and exact sizes could not be read from here (no
    # download is possible): sha256 is empty, so each file is used with a warning until `zoo cache verify
    # --pin` records the hash of the copy you have.
    "neuraltalk2.fc_coco": {
        "arch": "neuraltalk2",
        "file_name": "fc-model.pth",
        "urls": [f"{BOOK_CAPTIONER}/data/FC/fc-model.pth"],
        "sha256": "",
        "size": None,
        "transforms": {"preset": "neuraltalk2"},
        "files": {
            "infos": {
                "file_name": "fc-infos.pkl",
                "urls": [f"{BOOK_CAPTIONER}/data/FC/fc-infos.pkl"],
                "sha256": "",
                "size": None,
            },
            "encoder": {
                "file_name": "resnet101.pth",
                "sha256": "",
                "size": None,
                "parts": [
                    {
                        "file_name": f"resnet101{c}.pth",
                        "urls": [f"{BOOK_CAPTIONER}/data/imagenet_weights/resnet101{c}.pth"],
                        "sha256": "",
                        "size": None,
                    }
                    for c in "ab"
                ],
            },
        },
        "meta": {
            # 13,400,848 in fc-model.pth + 44,549,160 in the ResNet-101 (its unused fc included).
            "num_params": 57950008,
            "dataset": "MS COCO captions (Karpathy split)",
            "source": "Deep Learning with PyTorch, ch. 2.3 (deep-learning-with-pytorch/ImageCaptioning.pytorch)",
            "license": "see source",
            "docs": "The book's NeuralTalk2 (FC model): Caffe-style ResNet-101 features, LSTM decoder, beam search "
            "of 2 returning the first caption to finish. Hashes and sizes are not known: the files are used "
            "with a warning until `zoo cache verify --pin` records them.",
        },
    },
}
STATED_DEFAULTS = {
    "cyclegan": "cyclegan.horse2zebra",
    "dcgan": "dcgan.fashiongen",
    "neuraltalk2": "neuraltalk2.fc_coco",
}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


class _Stop(Exception):
    """Raised where torchvision's builder would fetch the weights: everything it decides is decided by then."""


def torchvision_kwargs(arch: str, member: Any) -> dict[str, Any]:
    """The constructor arguments torchvision's builder sets for `member` (ViT's image size, Inception's input
    transform and auxiliary head, ...) beyond those it sets without weights, read by watching its
    `_ovewrite_named_param`; the class count is left out (zoo reads it from the file)."""
    always = _overwritten(arch, None)
    return {k: v for k, v in _overwritten(arch, member).items() if k not in always or always[k] != v}


@functools.cache  # a regeneration builds each of the 115 twice on meta: 12 s, paid once per process
def _overwritten(arch: str, member: Any) -> dict[str, Any]:
    # Built on the meta device and stopped where the weights would be fetched.
    seen: dict[str, Any] = {}

    def spy(kwargs: dict[str, Any], param: str, new_value: Any) -> None:
        original(kwargs, param, new_value)
        seen[param] = new_value

    original = tv_utils._ovewrite_named_param
    modules = [m for n, m in sys.modules.items() if n.startswith("torchvision.models") and m is not None]
    patched = [m for m in modules if getattr(m, "_ovewrite_named_param", None) is original]
    saved_get = WeightsEnum.get_state_dict

    def stop(*args: Any, **kwargs: Any) -> Any:
        raise _Stop

    try:
        for m in patched:
            m._ovewrite_named_param = spy
        WeightsEnum.get_state_dict = stop
        with meta_build(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # GoogLeNet's and Inception's init notice
            torchvision_model(arch)(weights=member)
    except _Stop:
        pass
    finally:
        for m in patched:
            m._ovewrite_named_param = original
        WeightsEnum.get_state_dict = saved_get
    seen.pop("num_classes", None)
    return dict(sorted(seen.items()))


def torchvision_entry(arch: str, member: Any) -> dict[str, Any]:
    """The manifest entry of one torchvision weights enum member."""
    file_name = member.url.rsplit("/", 1)[1]
    prefix = re.search(r"-([a-f0-9]+)\.", file_name).group(1)
    sha256, size = KNOWN_FILES.get(file_name, (prefix, None))
    assert sha256.startswith(prefix), f"{file_name}: the known digest does not start with {prefix}"
    meta = member.meta
    preset = member.transforms
    assert isinstance(preset, functools.partial)
    entry = {
        "arch": arch,
        "file_name": file_name,
        "urls": [member.url],
        "sha256": sha256,
        "size": size,
        # VGG-16's IMAGENET1K_FEATURES has no categories: only its feature extractor is trained.
        "categories": "imagenet1k" if meta["categories"] else None,
        "transforms": {
            "preset": "image_classification",
            **{k: _plain(v) for k, v in preset.keywords.items()},
        },
        "meta": {
            "family": family_of(arch),
            "num_params": meta["num_params"],
            "min_size": list(meta["min_size"]),
            "metrics": _no_nan(meta["_metrics"]),
            "gflops": meta["_ops"],
            "file_size_mb": meta["_file_size"],
            "recipe": meta["recipe"],
            "docs": " ".join(meta["_docs"].split()),
            "dataset": "ImageNet-1K",
            "source": "torchvision",
            "sha256_source": KNOWN_FILES_SOURCE if file_name in KNOWN_FILES else "file name (prefix only)",
            "license": meta.get("license", "BSD-3-Clause"),
        },
    }
    kwargs = torchvision_kwargs(arch, member)
    if kwargs:
        entry["kwargs"] = kwargs
    return entry


def _no_nan(metrics: dict[str, Any]) -> dict[str, Any]:
    # torchvision marks metrics it has not measured with NaN, which JSON cannot carry: null instead.
    return {
        dataset: {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}
        for dataset, values in metrics.items()
    }


def family_of(arch: str) -> str:
    """The torchvision module that defines `arch` (resnet, regnet, vision_transformer, ...)."""
    return tvm.get_model_builder(arch).__module__.rsplit(".", 1)[1]


def _summary(arch: str) -> str:
    """The first paragraph of torchvision's builder docstring, its reStructuredText links made plain."""
    doc = inspect.getdoc(tvm.get_model_builder(arch)) or arch
    first = " ".join(doc.split("\n\n")[0].split())
    first = re.sub(r"`([^`<]+?)\s*<([^>]+)>`__?", r'"\1" (\2)', first)
    return first.replace("``", "`").replace(":class:", "").replace(":func:", "")


@functools.cache
def _heads(arch: str) -> list[str]:
    """Dotted paths of the layers that output the classes: the classifier first, then auxiliary heads."""
    kwargs = torchvision_kwargs(arch, TORCHVISION[arch].DEFAULT)
    with meta_build():
        model = torchvision_model(arch)(**kwargs)
    heads = [
        name
        for name, m in model.named_modules()
        if (isinstance(m, nn.Linear) and m.out_features == 1000)
        or (isinstance(m, nn.Conv2d) and m.out_channels == 1000)
    ]
    aux = [h for h in heads if "aux" in h.lower()]
    main = [h for h in heads if h not in aux]
    assert len(main) == 1, f"{arch}: one classifier head expected, found {main}"
    return main + aux


def catalogue() -> dict[str, Any]:
    """torchvision_catalogue.json: per architecture, its family, summary and classifier heads."""
    return {
        arch: {"family": family_of(arch), "summary": _summary(arch), "heads": _heads(arch)}
        for arch in TORCHVISION
    }


def catalogue_text() -> str:
    return json.dumps(catalogue(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


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
    table = catalogue_text()
    if args.check:
        stale = [
            str(path)
            for path, ok in (
                (args.path, current is not None and manifest.dumps(fresh) == manifest.dumps(current)),
                (CATALOGUE, CATALOGUE.is_file() and CATALOGUE.read_text(encoding="utf-8") == table),
            )
            if not ok
        ]
        if stale:
            print(f"{', '.join(stale)} out of date: run python scripts/generate_manifest.py", file=sys.stderr)
            return 1
        return 0
    manifest.write_raw(fresh, args.path)
    CATALOGUE.write_text(table, encoding="utf-8")
    print(f"wrote {len(fresh['weights'])} entries to {args.path} and {len(TORCHVISION)} to {CATALOGUE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
