"""`zoo classify` and `zoo finetune` against hostile input: a weight file whose card carries a preset that cannot
be built or labels with terminal escapes, a categories file that is a FIFO, a device, huge or not UTF-8, and an
output folder that holds the run's own starting weights."""

from __future__ import annotations

import json
import os
import threading

import pytest
import torch
from conftest import photo
from PIL import Image
from safetensors.torch import save_file

from zoo.cli import main
from zoo.errors import InvalidArgumentError, ManifestError
from zoo.models import resnet18
from zoo.tasks import classification, finetune

FAST = {"epochs": 1, "image_size": 32, "workers": 0, "device": "cpu", "log": lambda _: None}
CARD = {"arch": "resnet18", "num_classes": 2}
HOSTILE_LABEL = "\x1b[31mRED\x1b[0m\nzoo: error: fake line"


@pytest.fixture(scope="module")
def tensors():
    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=2)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def card_file(path, tensors, card):
    save_file(tensors, str(path), metadata={"zoo.card": json.dumps(card)})
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def image(tmp_path):
    photo(64, 64).save(tmp_path / "x.jpg")
    return tmp_path / "x.jpg"


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    for name, value in (("a", 40), ("b", 200)):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (24, 24), (value, value, value - i)).save(root / name / f"{i}.png")
    return root


BAD_TRANSFORMS = {
    "unknown preset": ({"preset": "nope"}, "unknown preset 'nope'"),
    "bad keyword": ({"preset": "image_classification", "crop_size": 8, "bogus": 1}, "no field 'bogus'"),
    "bad interpolation": (
        {"preset": "image_classification", "crop_size": 8, "interpolation": "zzz"},
        "interpolation must be one of",
    ),
    "negative crop": ({"preset": "image_classification", "crop_size": -3}, "crop_size must be"),
}


@pytest.mark.parametrize("transforms, message", BAD_TRANSFORMS.values(), ids=BAD_TRANSFORMS.keys())
def test_a_card_preset_that_cannot_be_built_is_one_line_from_classify(
    capsys, tmp_path, tensors, image, transforms, message
):
    weights = card_file(tmp_path / "w.safetensors", tensors, {**CARD, "transforms": transforms})
    code, out, err = run(capsys, "classify", str(image), "--weights", str(weights), "--device", "cpu")
    assert code == 1 and out == ""
    assert err.startswith(f"zoo: error: {weights}: its card's transforms: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_card_preset_that_cannot_be_built_stops_finetune_before_any_write(tmp_path, tensors, data):
    weights = card_file(tmp_path / "w.safetensors", tensors, {**CARD, "transforms": {"preset": "nope"}})
    with pytest.raises(ManifestError, match="its card's transforms: unknown preset"):
        finetune(data, tmp_path / "out", weights=weights, **FAST)
    assert not (tmp_path / "out").exists()


def test_a_categories_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "names.txt"
    os.mkfifo(fifo)
    outcome: list[BaseException | list[str]] = []

    def read() -> None:
        try:
            outcome.append(classification.read_categories(fifo))
        except BaseException as e:
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader so the test run can end, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO as a categories file waited for a writer")
    assert isinstance(outcome[0], InvalidArgumentError) and "not a regular file" in str(outcome[0])


@pytest.mark.parametrize("special", ["/dev/null", "folder"])
def test_a_categories_file_that_is_a_device_or_a_folder_is_refused(tmp_path, special):
    # /dev/null stands for /dev/zero: the same check refuses both, and a regression here must not read
    # /dev/zero until the test machine runs out of memory.
    path = tmp_path if special == "folder" else special
    with pytest.raises(InvalidArgumentError, match="categories file"):
        classification.read_categories(path)


def test_a_categories_file_over_the_limit_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    monkeypatch.setattr(classification, "CATEGORIES_MAX", 1000)
    big = tmp_path / "names.txt"
    big.write_text("cat\n" * 1000)
    with pytest.raises(InvalidArgumentError, match="larger than"):
        classification.read_categories(big)
    big.write_text("cat\n" * 250)  # exactly at the limit: fine
    assert len(classification.read_categories(big)) == 250


def test_a_latin1_categories_file_is_one_line_from_the_cli(capsys, tmp_path, tensors, image):
    weights = card_file(tmp_path / "w.safetensors", tensors, CARD)
    names = tmp_path / "names.txt"
    names.write_bytes("caf\xe9\nth\xe9\n".encode("latin-1"))
    code, out, err = run(
        capsys,
        "classify",
        str(image),
        "--weights",
        str(weights),
        "--categories",
        str(names),
        "--device",
        "cpu",
    )
    assert code == 1 and out == ""
    assert err == f"zoo: error: categories file {names} is not UTF-8 text (byte 3); save it as UTF-8\n"


def test_labels_from_a_card_cannot_drive_the_terminal(capsys, tmp_path, tensors, image):
    weights = card_file(
        tmp_path / "w.safetensors", tensors, {**CARD, "categories": [HOSTILE_LABEL, "b\u202eb"]}
    )
    code, out, _ = run(capsys, "classify", str(image), "--weights", str(weights), "--device", "cpu")
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out
    assert not any(line.startswith("zoo:") for line in out.splitlines()) and len(out.splitlines()) == 3
    assert "\\x1b[31mRED\\x1b[0m\\nzoo: error: fake line" in out and "b\\u202eb" in out
    # JSON keeps the real names (json.dumps escapes them itself).
    code, out, _ = run(capsys, "classify", str(image), "--weights", str(weights), "--device", "cpu", "--json")
    labels = {p["label"] for p in json.loads(out)["results"][0]["predictions"]}
    assert code == 0 and labels == {HOSTILE_LABEL, "b\u202eb"}


def test_finetune_logs_cannot_drive_the_terminal(capsys, data):
    evil = data / "\x1b[2Jclass"
    evil.mkdir()
    Image.new("RGB", (24, 24)).save(evil / "ok.png")
    (evil / "bad\x1b[31m.png").write_bytes(b"not an image")
    out_dir = data.parent / "out"
    code, out, err = run(
        capsys, "finetune", str(data), "-o", str(out_dir), "--weights", "none", "--epochs", "1",
        "--image-size", "32", "--workers", "0", "--val-fraction", "0",
    )  # fmt: skip
    assert code == 0, err
    assert "skipping 1 file(s)" in out and "\\x1b[2Jclass" in out and "\x1b" not in out
    assert "\x1b[2Jclass" in json.loads((out_dir / "model.json").read_text())["categories"]


def test_finetune_never_replaces_its_own_starting_weights_even_with_overwrite(
    capsys, tmp_path, tensors, data
):
    run1 = tmp_path / "run1"
    run1.mkdir()
    start = card_file(run1 / "model.safetensors", tensors, CARD)
    (run1 / "model.json").write_text(json.dumps(CARD))
    before = {p.name: p.read_bytes() for p in run1.iterdir()}
    code, out, err = run(
        capsys, "finetune", str(data), "-o", str(run1), "--weights", str(start), "--overwrite",
        "--epochs", "1", "--image-size", "32", "--workers", "0",
    )  # fmt: skip
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "is the starting weights (--weights)" in err
    assert {p.name: p.read_bytes() for p in run1.iterdir()} == before
    # The same file under another name (a hard link), and a .pth whose sidecar is the output's model.json.
    os.link(start, tmp_path / "alias.safetensors")
    with pytest.raises(InvalidArgumentError, match="starting weights"):
        finetune(data, run1, weights=tmp_path / "alias.safetensors", overwrite=True, **FAST)
    torch.save(tensors, run1 / "model.pth")
    with pytest.raises(InvalidArgumentError, match="or their card"):
        finetune(data, run1, weights=run1 / "model.pth", overwrite=True, **FAST)
    assert {p.name: p.read_bytes() for p in run1.iterdir() if p.name != "model.pth"} == before


def test_finetune_never_replaces_an_image_of_its_data_folder(tmp_path, data):
    out = tmp_path / "out"
    out.mkdir()
    os.link(data / "a" / "0.png", out / "model.json")
    before = (data / "a" / "0.png").read_bytes()
    with pytest.raises(InvalidArgumentError, match="is an image of the data folder"):
        finetune(data, out, weights=None, overwrite=True, **FAST)
    assert (data / "a" / "0.png").read_bytes() == before and os.path.samefile(
        out / "model.json", data / "a" / "0.png"
    )
