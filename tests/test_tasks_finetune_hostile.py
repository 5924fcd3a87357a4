"""zoo finetune on hostile datasets: empty or unreadable classes, one class, non-UTF-8 names, its own output."""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest
from PIL import Image

import zoo
from zoo.cli import main
from zoo.errors import InvalidArgumentError
from zoo.tasks import finetune

FAST = {"weights": None, "epochs": 1, "image_size": 32, "workers": 0, "device": "cpu", "log": lambda _: None}


def dataset(root, classes):
    for name, value in classes:
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (24, 24), (value, value, value - i)).save(root / name / f"{i}.png")
    return root


def test_classes_left_without_a_readable_image_are_named_before_training(tmp_path):
    data = dataset(tmp_path / "data", [("ok", 50), ("fine", 200)])
    (data / "empty").mkdir()
    (data / "junk").mkdir()
    (data / "junk" / "a.jpg").write_text("not an image")
    os.mkfifo(data / "junk" / "p.png")
    with pytest.raises(InvalidArgumentError, match=r"no readable image in the class folder\(s\) empty, junk"):
        finetune(data, tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()


def test_one_class_is_a_clear_error(tmp_path, capsys):
    data = dataset(tmp_path / "data", [("only", 50)])
    (data / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    code = main(["finetune", str(data), "-o", str(tmp_path / "out"), "--weights", "none"])
    err = capsys.readouterr().err
    assert code == 1 and "found 1 class folder(s) (only)" in err and len(err.strip().splitlines()) == 1


def test_non_utf8_class_names_finetune_and_publish(tmp_path):
    latin1 = os.fsdecode(b"caf\xe9")
    data = dataset(tmp_path / "data", [(latin1, 50), ("thé", 200)])
    card = finetune(data, tmp_path / "out", **FAST)
    assert card["categories"] == ["caf\\xe9", "thé"]
    w = zoo.publish(tmp_path / "out", name="drinks", out_dir=tmp_path / "pub", manifest=tmp_path / "m.json")
    assert list(w.categories) == ["caf\\xe9", "thé"]


def test_an_earlier_run_is_kept_unless_overwrite_and_the_output_may_not_be_inside_the_data(tmp_path):
    data = dataset(tmp_path / "data", [("a", 50), ("b", 200)])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.json").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="already exists; pass --overwrite"):
        finetune(data, tmp_path / "out", **FAST)
    assert (tmp_path / "out" / "model.json").read_text() == "mine"
    assert not (tmp_path / "out" / "model.safetensors").exists()
    finetune(data, tmp_path / "out", overwrite=True, **FAST)
    assert (tmp_path / "out" / "model.json").read_text().startswith("{")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "checkpoint.pt",
        "model.json",
        "model.safetensors",
    ]
    with pytest.raises(InvalidArgumentError, match="inside the data folder"):
        finetune(data, data / "out", **FAST)
    assert not (data / "out").exists()


def test_links_to_parent_folders_are_walked_once_not_forever(tmp_path):
    from zoo.tasks.finetuning import _image_folder

    data = dataset(tmp_path / "data", [("cat", 50), ("dog", 200)])
    elsewhere = dataset(tmp_path / "elsewhere", [("more", 120)])
    for folder in ("cat", "dog"):
        for name in ("a", "b"):  # two links to the root per level: exponential for os.walk(followlinks=True)
            (data / folder / name).symlink_to(data, target_is_directory=True)
    (data / "dog" / "linked").symlink_to(elsewhere / "more", target_is_directory=True)  # still followed
    found: list = []
    walker = threading.Thread(target=lambda: found.append(_image_folder(data)), daemon=True)
    walker.start()
    walker.join(timeout=30)
    assert found, "walking the data folder did not finish in 30 s"
    counts = Counter(label for _, label in found[0].samples)
    # Each real folder once per class: its own 3 images, through the link to the root the other class's 3, and
    # dog/linked's 3 (reached by cat through the root too); the walk never re-enters a folder it has seen.
    assert counts == {0: 9, 1: 9}
    card = finetune(data, tmp_path / "out", **FAST)
    assert card["categories"] == ["cat", "dog"]
