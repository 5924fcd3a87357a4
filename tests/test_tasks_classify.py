"""zoo.classify: labels from the weights' categories, top-k order, batching, draft decoding, precision."""

from __future__ import annotations

import contextlib
import math
import warnings

import pytest
import torch
from conftest import photo, photo_jpegs

import zoo
from zoo import devices
from zoo.tasks import Classifier, classification
from zoo.tasks.images import ImageError, open_image


@pytest.fixture
def images(tmp_path):
    return photo_jpegs(tmp_path)


def test_labels_come_from_the_weights_categories(favouring, images):
    (top,) = zoo.classify(images[0], model="resnet18", weights=favouring, topk=3, device="cpu")
    labels = [label for label, _ in top]
    assert labels[0] == "golden retriever" and labels[1] == "goldfish"
    expected = 100 * math.exp(10) / (math.exp(10) + math.exp(5) + 998)
    assert top[0][1] == pytest.approx(expected, abs=0.5)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True) and len(top) == 3


def test_batching_gives_the_same_numbers_as_one_by_one(favouring, images):
    classifier = Classifier("resnet18", favouring, device="cpu")
    batched = [p for _, p in classifier.run(images, topk=5, batch_size=4)]
    single = [p for _, p in classifier.run(images, topk=5, batch_size=1)]
    for a, b in zip(batched, single, strict=True):
        assert [x for x, _ in a] == [x for x, _ in b]
        assert [y for _, y in a] == pytest.approx([y for _, y in b], abs=1e-3)


def test_draft_decoding_changes_probabilities_only_slightly(tmp_path, monkeypatch):
    big = tmp_path / "big.jpg"
    photo(3200, 2400, seed=7).save(big, quality=92)
    torch.manual_seed(0)
    classifier = Classifier("resnet18", None, device="cpu")  # random weights: outputs depend on the image
    drafted = classifier.prepare(big)
    monkeypatch.setattr(classification, "open_image", lambda p, min_side=None: open_image(p))
    full = classifier.prepare(big)
    assert drafted.shape == full.shape == (3, 224, 224)
    assert 0 < (drafted - full).abs().mean() < 0.05  # the draft is used, and looks nearly the same
    with torch.inference_mode():
        logits_draft, logits_full = classifier.model(drafted[None]), classifier.model(full[None])
    assert (logits_draft - logits_full).abs().max() < 0.1 * logits_full.std()
    assert (torch.softmax(logits_draft, 1) - torch.softmax(logits_full, 1)).abs().max() < 0.005


def test_a_bad_file_names_itself(favouring, images, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ImageError, match="bad.jpg"):
        zoo.classify([images[0], tmp_path / "bad.jpg"], model="resnet18", weights=favouring, device="cpu")
    outcomes = list(
        Classifier("resnet18", favouring, device="cpu").run([images[0], tmp_path / "bad.jpg", images[1]])
    )
    assert [type(o).__name__ for _, o in outcomes] == ["list", "ImageError", "list"]


def test_bf16_agrees_with_fp32(favouring, images):
    fp32 = zoo.classify(images[:2], model="resnet18", weights=favouring, device="cpu", topk=1)
    emulated = not devices.native_bf16(torch.device("cpu"))
    with pytest.warns(UserWarning, match="emulated") if emulated else contextlib.nullcontext():
        bf16 = zoo.classify(
            images[:2], model="resnet18", weights=favouring, device="cpu", topk=1, precision="bf16"
        )
    assert [r[0][0] for r in bf16] == [r[0][0] for r in fp32]
    assert [r[0][1] for r in bf16] == pytest.approx([r[0][1] for r in fp32], abs=2)


def test_unknown_precision_is_refused(favouring):
    with pytest.raises(zoo.ZooError, match="unknown precision 'int3'; use one of fp32, bf16, fp16 or auto"):
        Classifier("resnet18", favouring, device="cpu", precision="int3")


def flags(*present: str) -> dict[str, bool]:
    return {flag: flag in present for flag in devices.CPU_FLAGS}


def pretend_cpu(monkeypatch, *present: str, machine: str = "x86_64") -> None:
    """Make zoo.devices see an x86 CPU (by default) with only the flags `present`."""
    monkeypatch.setattr(devices, "cpu_flags", lambda: flags(*present))
    monkeypatch.setattr(devices.platform, "machine", lambda: machine)


@pytest.mark.parametrize(
    ("present", "machine", "expected"),
    [
        (("avx2", "avx512f", "avx512_bf16"), "x86_64", "bf16"),  # AMD Zen 4, Intel Cooper Lake
        (("avx2", "avx512f", "amx_bf16"), "x86_64", "bf16"),  # Intel Sapphire Rapids
        (("avx2", "avx512f"), "x86_64", "fp32"),  # Skylake-X: oneDNN would emulate bf16 with AVX-512
        (("avx2",), "x86_64", "fp32"),
        ((), "x86_64", "fp32"),
    ],
)
def test_auto_precision_is_bf16_only_where_the_cpu_computes_bf16_natively(
    monkeypatch, present, machine, expected
):
    pretend_cpu(monkeypatch, *present, machine=machine)
    assert devices.resolve_precision(torch.device("cpu"), "auto") == expected
    assert devices.resolve_precision(torch.device("cpu"), "fp32") == "fp32"
    assert devices.resolve_precision(torch.device("cpu"), "bf16") == "bf16"  # asked for: kept, and warned


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_a_gpu_is_bf16_only_where_the_gpu_has_it_without_emulation(
    monkeypatch, native, expected
):
    # A GPU before Ampere reports bf16 "supported" only counting emulation.
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: native or including_emulation
    )
    assert devices.resolve_precision(torch.device("cuda"), "auto") == expected


def test_a_classifier_with_auto_precision_says_what_it_chose_and_warns_of_nothing(favouring, monkeypatch):
    pretend_cpu(monkeypatch, "avx2", "avx512f")
    classifier = Classifier("resnet18", favouring, device="cpu", precision="auto")
    assert classifier.precision == "fp32"
    pretend_cpu(monkeypatch, "avx2", "avx512f", "avx512_bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "emulated" warning where bf16 is native
        classifier = Classifier("resnet18", favouring, device="cpu", precision="auto")
    assert classifier.precision == "bf16" and not classifier.fused


def test_asking_for_bf16_on_a_cpu_without_it_warns_that_it_is_emulated(favouring, monkeypatch):
    pretend_cpu(monkeypatch, "avx2", "avx512f")
    with pytest.warns(UserWarning, match="AVX-512 yes, AVX-512-BF16 no, AMX no.*emulated"):
        Classifier("resnet18", favouring, device="cpu", precision="bf16")


def test_cpu_flags_come_from_torchs_checks_where_there_is_no_proc_cpuinfo(monkeypatch):
    monkeypatch.setattr(devices, "_proc_cpuinfo_flags", lambda: [])
    for name, value in [
        ("_is_avx2_supported", True),
        ("_is_avx512_supported", True),
        ("_is_avx512_bf16_supported", True),
        ("_is_amx_tile_supported", False),
    ]:
        monkeypatch.setattr(torch.cpu, name, lambda value=value: value, raising=False)
    assert devices.cpu_flags() == flags("avx2", "avx512f", "avx512_bf16")
    monkeypatch.setattr(devices.platform, "machine", lambda: "AMD64")
    assert devices.resolve_precision(torch.device("cpu"), "auto") == "bf16"


def test_cpu_flags_are_described_in_one_line():
    line = devices.describe_cpu_flags(flags("avx2", "avx512f", "avx512_bf16"))
    assert line == "AVX2 yes, AVX-512 yes, AVX-512-BF16 yes, AMX no"
    assert set(devices.cpu_flags()) == set(devices.CPU_FLAGS)


def golden_state(num_classes: int = 1000, favourite: int = 207) -> dict[str, torch.Tensor]:
    """resnet18 tensors whose head favours class `favourite` whatever the image."""
    torch.manual_seed(0)
    state = zoo.models.resnet18(weights=None, device="cpu", num_classes=num_classes).state_dict()
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])
    state["fc.bias"] = torch.zeros(num_classes)
    state["fc.bias"][favourite] = 10.0
    return state


def test_a_local_1000_class_file_is_named_with_the_default_weights_categories(images, tmp_path):
    torch.save(golden_state(), tmp_path / "my_resnet18.pth")
    (top,) = zoo.classify(
        images[0], model="resnet18", weights=tmp_path / "my_resnet18.pth", topk=1, device="cpu"
    )
    assert top[0][0] == "golden retriever"
    classifier = Classifier("resnet18", str(tmp_path / "my_resnet18.pth"), device="cpu")
    assert classifier.transform.crop_size == [224] and classifier.transform.resize_size == [256]


def test_a_local_file_with_another_head_size_keeps_numbered_classes(images, tmp_path):
    torch.save(golden_state(num_classes=3, favourite=2), tmp_path / "three.pth")
    (top,) = zoo.classify(images[0], model="resnet18", weights=tmp_path / "three.pth", topk=1, device="cpu")
    assert top[0][0] == "class 2"


def test_categories_can_be_a_list_or_a_text_file_with_one_name_per_line(images, tmp_path):
    torch.save(golden_state(num_classes=3, favourite=2), tmp_path / "three.pth")
    (tmp_path / "classes.txt").write_text("red\ngreen\nsea blue\n\n")
    for categories in (["red", "green", "sea blue"], tmp_path / "classes.txt", str(tmp_path / "classes.txt")):
        (top,) = zoo.classify(
            images[0],
            model="resnet18",
            weights=tmp_path / "three.pth",
            categories=categories,
            topk=1,
            device="cpu",
        )
        assert top[0][0] == "sea blue"


def test_categories_of_the_wrong_length_or_a_missing_file_are_one_clear_error(images, tmp_path):
    torch.save(golden_state(num_classes=3, favourite=0), tmp_path / "three.pth")
    with pytest.raises(zoo.ZooError, match="2 names given for a 3-class model"):
        zoo.classify(images[0], model="resnet18", weights=tmp_path / "three.pth", categories=["a", "b"])
    with pytest.raises(zoo.ZooError, match="categories file"):
        zoo.classify(
            images[0], model="resnet18", weights=tmp_path / "three.pth", categories=tmp_path / "none.txt"
        )


def test_a_safetensors_file_with_a_card_needs_no_model(images, tmp_path):
    from safetensors.torch import save_file

    from zoo.weights import cards

    card = {
        "arch": "resnet18",
        "num_classes": 3,
        "categories": ["amber", "teal", "violet"],
        "transforms": {"preset": "image_classification", "crop_size": 64, "resize_size": 72},
    }
    state = {k: v.contiguous() for k, v in golden_state(num_classes=3, favourite=1).items()}
    save_file(state, str(tmp_path / "colors.safetensors"), metadata=cards.metadata(card))
    (top,) = zoo.classify(images[0], weights=tmp_path / "colors.safetensors", topk=1, device="cpu")
    assert top[0][0] == "teal"
    classifier = Classifier(weights=str(tmp_path / "colors.safetensors"), device="cpu")
    assert classifier.arch == "resnet18" and classifier.transform.crop_size == [64]


def test_a_model_that_disagrees_with_the_files_card_is_one_clear_error(images, tmp_path):
    from safetensors.torch import save_file

    from zoo.weights import cards

    state = {k: v.contiguous() for k, v in golden_state().items()}
    save_file(state, str(tmp_path / "r18.safetensors"), metadata=cards.metadata({"arch": "resnet18"}))
    with pytest.raises(zoo.ZooError, match="holds weights for resnet18 .*not resnet50"):
        zoo.classify(images[0], model="resnet50", weights=tmp_path / "r18.safetensors", device="cpu")


def test_a_weights_key_alone_picks_its_architecture(favouring, images):
    (top,) = zoo.classify(images[0], weights=favouring, topk=1, device="cpu")
    assert top[0][0] == "golden retriever"
