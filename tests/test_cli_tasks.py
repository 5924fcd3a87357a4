"""`zoo classify / translate / generate / finetune` through zoo.cli.main: output, JSON, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import photo
from PIL import Image

from zoo.cli import main
from zoo.models import resnet18
from zoo.models.dcgan import DCGANGenerator


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "pics"
    (root / "sub").mkdir(parents=True)
    photo(500, 400).save(root / "a.jpg")
    photo(300, 300, seed=2).convert("L").save(root / "sub" / "b.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nope")
    (root / "readme.txt").write_text("skipped: not an image suffix")
    return root


def test_classify_prints_labels_and_reports_bad_files(capsys, favouring, folder, tmp_path):  # noqa: F811
    code, out, err = run(
        capsys,
        "classify",
        str(folder),
        str(tmp_path / "missing.jpg"),
        "--model",
        "resnet18",
        "--weights",
        favouring,
        "--topk",
        "2",
        "--device",
        "cpu",
    )
    assert code == 1
    assert out.splitlines()[:3] == [str(folder / "a.jpg"), "  golden retriever 95.05", "  goldfish 0.64"]
    assert str(folder / "sub" / "b.png") in out
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("zoo: error: ") for line in errors)
    assert any("missing.jpg: no such file" in e for e in errors) and any("broken.jpg" in e for e in errors)


def test_classify_json_schema(capsys, favouring, folder):  # noqa: F811
    code, out, _ = run(
        capsys,
        "classify",
        str(folder),
        "--model",
        "resnet18",
        "--weights",
        favouring,
        "--topk",
        "1",
        "--json",
        "--device",
        "cpu",
    )
    data = json.loads(out)
    assert code == 1 and set(data) == {"results", "errors"}
    assert [r["path"] for r in data["results"]] == [str(folder / "a.jpg"), str(folder / "sub" / "b.png")]
    assert data["results"][0]["predictions"][0]["label"] == "golden retriever"
    assert isinstance(data["results"][0]["predictions"][0]["percent"], float)
    assert len(data["errors"]) == 1 and "broken.jpg" in data["errors"][0]


def test_classify_precision_auto_is_accepted_and_labels_as_fp32_does(capsys, favouring, folder):  # noqa: F811
    outputs = []
    for precision in ("fp32", "auto"):
        args = ["classify", str(folder / "a.jpg"), "--weights", favouring, "--topk", "1", "--json"]
        code, out, _ = run(capsys, *args, "--device", "cpu", "--precision", precision)
        assert code == 0
        outputs.append(json.loads(out)["results"][0]["predictions"][0])
    assert outputs[0]["label"] == outputs[1]["label"] == "golden retriever"
    assert outputs[1]["percent"] == pytest.approx(outputs[0]["percent"], abs=2)
    with pytest.raises(SystemExit) as info:
        main(["classify", str(folder / "a.jpg"), "--precision", "fp8"])
    assert info.value.code == 2 and "invalid choice: 'fp8'" in capsys.readouterr().err


def test_json_stays_json_for_errors_before_any_image(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, _ = run(capsys, "classify", str(tmp_path / "empty"), "--json")
    assert code == 1 and json.loads(out) == {
        "results": [],
        "errors": [f"{tmp_path / 'empty'}: no images in this folder"],
    }
    photo(32, 32).save(tmp_path / "x.png")
    code, out, err = run(capsys, "classify", str(tmp_path / "x.png"), "--model", "nosuchnet", "--json")
    assert code == 1 and "unknown model 'nosuchnet'" in json.loads(out)["error"] and "Traceback" not in err


def test_translate_writes_images(capsys, tmp_path):
    photo(1500, 1220).save(tmp_path / "horse.jpg")
    code, out, _ = run(
        capsys,
        "translate",
        str(tmp_path / "horse.jpg"),
        "-o",
        str(tmp_path / "zebra.png"),
        "--weights",
        "none",
        "--device",
        "cpu",
    )
    assert code == 0 and "(316x256)" in out
    with Image.open(tmp_path / "zebra.png") as im:
        assert im.size == (316, 256)
    code, _, err = run(
        capsys,
        "translate",
        str(tmp_path / "horse.jpg"),
        str(tmp_path / "horse.jpg"),
        "-o",
        str(tmp_path / "one.png"),
        "--weights",
        "none",
    )
    assert code == 1 and "pass a folder" in err


def test_generate_same_seed_same_file(capsys, test_manifest, tmp_path):
    test_manifest({"dcgan.test": (DCGANGenerator().state_dict(), {})}, defaults={"dcgan": "dcgan.test"})
    for name in ("a.png", "b.png"):
        code, out, _ = run(
            capsys,
            "generate",
            "-n",
            "16",
            "--nrow",
            "4",
            "--seed",
            "7",
            "-o",
            str(tmp_path / name),
            "--device",
            "cpu",
        )
        assert code == 0 and out.strip() == f"wrote 16 images to {tmp_path / name}"
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    code, _, err = run(capsys, "generate", "-o", str(tmp_path / "grid.txt"))
    assert code == 1 and "image file name" in err


def test_finetune_json(capsys, tmp_path):
    for name, value in (("a", 20), ("b", 230)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (24, 24), (value, value, value - i)).save(tmp_path / "data" / name / f"{i}.png")
    torch.manual_seed(0)
    code, out, err = run(
        capsys,
        "finetune",
        str(tmp_path / "data"),
        "-o",
        str(tmp_path / "out"),
        "--weights",
        "none",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--workers",
        "0",
        "--json",
        "--device",
        "cpu",
    )
    assert code == 0 and json.loads(out)["categories"] == ["a", "b"] and "Epoch 1/1" in err
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_translate_into_a_folder_keeps_same_named_inputs_apart(capsys, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        photo(80, 60, seed=len(sub)).save(tmp_path / sub / "x.jpg")
    code, _, _ = run(
        capsys,
        "translate",
        str(tmp_path / "a" / "x.jpg"),
        str(tmp_path / "b" / "x.jpg"),
        "-o",
        str(tmp_path / "out"),
        "--weights",
        "none",
        "--size",
        "32",
        "--json",
    )
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x-2.png", "x.png"]


def test_bad_numbers_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["classify", "x.jpg", "--topk", "0"])
    assert info.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_translate_a_folder_into_one_file_is_refused(capsys, tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(2):
        photo(40, 30, seed=i).save(tmp_path / "in" / f"{i}.jpg")
    code, _, err = run(
        capsys, "translate", str(tmp_path / "in"), "-o", str(tmp_path / "out.png"), "--weights", "none"
    )
    assert code == 1 and "2 images were found; pass a folder" in err and not (tmp_path / "out.png").exists()


def card_file(tmp_path, name: str = "colors.safetensors"):
    """A 3-class resnet18 safetensors file whose card names it; its head always picks "teal"."""
    from safetensors.torch import save_file

    from zoo.weights import cards

    state = resnet18(weights=None, device="cpu", num_classes=3).state_dict()
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])
    state["fc.bias"] = torch.tensor([0.0, 10.0, 0.0])
    card = {"arch": "resnet18", "num_classes": 3, "categories": ["amber", "teal", "violet"]}
    save_file(
        {k: v.contiguous() for k, v in state.items()}, str(tmp_path / name), metadata=cards.metadata(card)
    )
    return tmp_path / name


def test_classify_with_only_a_weights_file_uses_its_card(capsys, folder, tmp_path):
    weights = card_file(tmp_path)
    code, out, _ = run(
        capsys, "classify", str(folder / "a.jpg"), "--weights", str(weights), "--topk", "1", "--device", "cpu"
    )
    assert code == 0 and out.splitlines()[1].startswith("  teal ")
    code, _, err = run(
        capsys, "classify", str(folder / "a.jpg"), "--weights", str(weights), "--model", "alexnet"
    )
    assert code == 1 and "holds weights for resnet18" in err and "Traceback" not in err


def test_classify_categories_file_names_the_classes(capsys, folder, tmp_path):
    weights = card_file(tmp_path)
    (tmp_path / "classes.txt").write_text("first\nsecond\nthird\n")
    argv = ["classify", str(folder / "a.jpg"), "--weights", str(weights), "--topk", "1", "--device", "cpu"]
    code, out, _ = run(capsys, *argv, "--categories", str(tmp_path / "classes.txt"), "--json")
    assert code == 0 and json.loads(out)["results"][0]["predictions"][0]["label"] == "second"
