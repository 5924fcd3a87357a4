"""Hostile image files: pipes, devices, links, decoder bombs and oddities are one ImageError each, never a hang,
a traceback or a lost batch."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import pytest
from conftest import photo
from PIL import Image, ImageOps

import zoo
from zoo.cli import main
from zoo.errors import ImageError
from zoo.tasks import Translator
from zoo.tasks.images import find_images, open_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def hostile_folder(root):
    """A folder of one good photo and every kind of file a decoder or a reader may choke on."""
    root.mkdir()
    photo(64, 48).save(root / "good.jpg")
    Image.new("RGB", (1, 30000)).save(root / "tall.png")
    Image.new("RGB", (30000, 1)).save(root / "wide.png")
    buf = io.BytesIO()
    photo(32, 32).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[data.find(b"IDAT") + 6] ^= 0xFF  # a broken chunk
    (root / "badchunk.png").write_bytes(bytes(data))
    huge = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)  # declares 3.6 billion pixels
    (root / "huge.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", huge) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
    )
    os.symlink(root / "nowhere.png", root / "broken.png")
    os.symlink("/dev/zero", root / "device.jpg")
    os.mkfifo(root / "pipe.jpg")
    return root


HOSTILE = ["badchunk.png", "broken.png", "device.jpg", "huge.png", "pipe.jpg", "tall.png", "wide.png"]


def test_a_named_pipe_among_the_images_does_not_hang_zoo_classify(tmp_path):
    folder = hostile_folder(tmp_path / "pics")
    started = time.monotonic()
    # A subprocess, so that a regression (a read blocked on the pipe) fails on the timeout instead of hanging.
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "classify", str(folder), "--model", "resnet18", "--weights", "none"]
        + ["--device", "cpu", "--json", "--topk", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert time.monotonic() - started < 120
    data = json.loads(done.stdout)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert [r["path"] for r in data["results"]] == [str(folder / "good.jpg")]
    assert sorted(e.split(":")[0].rsplit("/", 1)[-1] for e in data["errors"]) == HOSTILE


def test_each_hostile_file_is_one_image_error_and_the_good_one_is_still_classified(tmp_path, capsys):
    folder = hostile_folder(tmp_path / "pics")
    code = main(["classify", str(folder), "--model", "resnet18", "--weights", "none", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 1 and out.splitlines()[0] == str(folder / "good.jpg")
    lines = err.strip().splitlines()
    assert len(lines) == len(HOSTILE) and all(line.startswith("zoo: error: ") for line in lines)
    assert "named pipe" in err and "character device" in err and "broken symbolic link" in err
    assert "too elongated" in err and "decompression-bomb" in err and "Traceback" not in err


def test_extreme_aspect_ratios_are_refused_at_once_instead_of_resized_to_gigabytes(tmp_path):
    Image.new("RGB", (1, 30000)).save(tmp_path / "tall.png")
    started = time.monotonic()
    with pytest.raises(ImageError, match="too elongated"):
        open_image(tmp_path / "tall.png", min_side=256)
    with pytest.raises(ImageError, match="too elongated"):
        zoo.classify(Image.new("RGB", (30000, 1)), model="resnet18", weights=None, device="cpu")
    assert time.monotonic() - started < 5  # the resize it replaces took 24 s and 5.9 GB


def test_zoo_classify_on_a_mix_raises_the_image_error_of_the_bad_file(tmp_path):
    folder = hostile_folder(tmp_path / "pics")
    with pytest.raises(ImageError, match=r"pipe\.jpg: a named pipe"):
        zoo.classify([folder / "good.jpg", folder / "pipe.jpg"], model="resnet18", weights=None, device="cpu")
    with pytest.raises(ImageError, match="a folder, not an image file"):
        zoo.classify(folder, model="resnet18", weights=None, device="cpu")


def test_a_folder_named_like_an_image_and_special_files_are_never_opened(tmp_path):
    (tmp_path / "dir.jpg").mkdir()
    os.mkfifo(tmp_path / "p.png")
    for name, reason in (("dir.jpg", "a folder"), ("p.png", "a named pipe")):
        with pytest.raises(ImageError, match=reason):
            open_image(tmp_path / name)
    found, errors = find_images([tmp_path / "p.png", "/dev/null"])
    assert found == [] and [str(e).split(": ", 1)[1] for e in errors] == [
        "a named pipe, not an image file",
        "a character device, not an image file",
    ]


def test_a_decoder_bug_after_decoding_is_an_image_error_for_that_file(tmp_path, monkeypatch):
    photo(40, 30).save(tmp_path / "a.jpg")

    def broken(image):
        raise struct.error("unpack requires a buffer of 4 bytes")  # as Pillow's EXIF reader can

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    with pytest.raises(ImageError, match=r"a\.jpg: cannot decode the image \(error: unpack requires"):
        open_image(tmp_path / "a.jpg")


def test_a_transform_failure_is_an_image_error_and_the_batch_goes_on(tmp_path):
    for i in range(3):
        photo(40, 30, seed=i).save(tmp_path / f"{i}.png")
    classifier = zoo.tasks.Classifier("resnet18", None, device="cpu")
    real = classifier.transform

    def flaky(image):
        if image.size == (40, 30) and flaky.calls == 1:
            flaky.calls += 1
            raise RuntimeError("odd palette")
        flaky.calls += 1
        return real(image)

    flaky.calls = 0
    classifier.transform = flaky
    classifier.transform.resize_size = real.resize_size
    outcomes = [o for _, o in classifier.run(sorted(tmp_path.glob("*.png")), batch_size=2)]
    assert [type(o).__name__ for o in outcomes].count("ImageError") == 1 and len(outcomes) == 3
    assert "cannot prepare the image (RuntimeError: odd palette)" in str(
        next(o for o in outcomes if isinstance(o, ImageError))
    )


def test_a_file_name_that_is_not_utf8_prints_instead_of_crashing(tmp_path, capsys):
    raw = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name: a lone surrogate in Python
    photo(40, 30).save(tmp_path / raw)
    code = main(["classify", str(tmp_path), "--model", "resnet18", "--weights", "none", "--device", "cpu"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.splitlines()[0].endswith("caf\\xe9.png")
    out.encode("utf-8")  # printable as it is


def test_translate_refuses_a_huge_size_and_elongated_images(tmp_path):
    with pytest.raises(zoo.ZooError, match="size must be at most 2048"):
        Translator(weights=None, device="cpu", size=100_000)
    Image.new("RGB", (1, 8000)).save(tmp_path / "thin.png")
    with pytest.raises(ImageError, match="too elongated"):
        Translator(weights=None, device="cpu", size=64)(tmp_path / "thin.png")
