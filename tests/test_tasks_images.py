"""Image discovery and decoding: draft mode, orientation, modes, and one clear error per bad file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import photo
from PIL import Image

from zoo.tasks.images import ImageError, find_images, open_image


def test_find_images_walks_folders_and_reports_what_gave_nothing(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("a/2.jpg", "a/sub/1.PNG", "a/notes.txt", "a/.x.jpg", "a/.hidden/3.jpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "explicit.dat").write_bytes(b"")
    found, errors = find_images(
        [tmp_path / "a", tmp_path / "explicit.dat", tmp_path / "empty", tmp_path / "nope"]
    )
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/2.jpg", "a/sub/1.PNG", "explicit.dat"]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'empty'}: no images in this folder",
        f"{tmp_path / 'nope'}: no such file or folder",
    ]


def test_jpeg_draft_decodes_at_a_reduced_scale_that_still_covers_the_preset(tmp_path):
    photo(2000, 1500).save(tmp_path / "big.jpg", quality=90)
    assert open_image(tmp_path / "big.jpg").size == (2000, 1500)
    assert open_image(tmp_path / "big.jpg", min_side=256).size == (500, 375)  # 1/4; 1/8 would be < 256
    assert open_image(tmp_path / "big.jpg", min_side=2000).size == (2000, 1500)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo(64, 32).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert open_image(tmp_path / "rotated.jpg").size == (32, 64)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "1"])
def test_modes_become_rgb(tmp_path, mode):
    image = (
        photo(40, 30).convert(mode)
        if mode != "I;16"
        else Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16))
    )
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    image.save(path)
    out = open_image(path)
    assert out.mode == "RGB" and out.size == (40, 30)
    if mode == "I;16":  # 16-bit values scaled down, not clipped to white
        assert np.asarray(out)[0, 0, 0] == 0 and 100 < np.asarray(out)[-1, -1, 0] <= 255


def test_transparency_is_flattened_onto_white(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "t.png")
    out = np.asarray(open_image(tmp_path / "t.png"))
    assert tuple(out[0, 0]) == (0, 0, 255) and tuple(out[4, 4]) == (255, 255, 255)


def test_bad_files_give_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "text.jpg").write_text("not an image")
    buf = io.BytesIO()
    photo(300, 200).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    photo(100, 100).save(tmp_path / "bomb.png")
    with pytest.raises(ImageError, match=r"text\.jpg: not an image"):
        open_image(tmp_path / "text.jpg")
    with pytest.raises(ImageError, match=r"cut\.jpg: cannot decode the image \(truncated or corrupt\)"):
        open_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageError, match=r"missing\.jpg: no such file"):
        open_image(tmp_path / "missing.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # 10,000 pixels: Pillow only warns, zoo refuses
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageError, match=r"bomb\.png: larger than Pillow's decompression-bomb limit"),
    ):
        open_image(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # over twice the limit: Pillow's own error
    with pytest.raises(ImageError, match="decompression-bomb"):
        open_image(tmp_path / "bomb.png")


def test_multi_picture_jpegs_use_draft_mode_too(tmp_path):
    photo(2000, 1500).save(
        tmp_path / "phone.mpo", format="MPO", save_all=True, append_images=[photo(200, 150)]
    )
    with Image.open(tmp_path / "phone.mpo") as im:
        assert im.format == "MPO"
    assert open_image(tmp_path / "phone.mpo", min_side=256).size == (500, 375)
