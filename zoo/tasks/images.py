"""Reading images for the tasks: walk folders, decode fast, fix orientation and mode, fail one file at a time."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from .._common import show_path, show_text  # noqa: F401  (the tasks' names for them)
from ..errors import ImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(path: Path) -> ImageError | None:
    """An ImageError when `path` (followed through symbolic links) is not a regular file, else None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return ImageError(f"{show_path(path)}: a broken symbolic link")
        return ImageError(f"{show_path(path)}: no such file")
    except OSError as e:  # a symlink loop, a name too long, a folder we may not enter
        return ImageError(f"{show_path(path)}: cannot read ({e.strerror or e})")
    if stat.S_ISREG(mode):
        return None
    return ImageError(f"{show_path(path)}: {_kind(mode)}, not an image file")


def find_images(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[ImageError]]:
    """The image files named by `paths` (folders walked, sorted) and one error per path that gave none.

    A file named explicitly is taken whatever its suffix (a broken one fails when it is opened); in folders,
    only files with an image suffix are taken and hidden entries are skipped. Only regular files (or
    symbolic links to them) are taken: a named pipe, socket, device or broken link with an image suffix is
    one error each, never opened (reading a pipe would wait forever).
    """
    found: list[Path] = []
    errors: list[ImageError] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            inside = sorted(
                Path(root) / name
                for root, dirs, files in os.walk(path)
                for name in files
                if not name.startswith(".")
                and Path(name).suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in Path(root).relative_to(path).parts)
            )
            if not inside:
                errors.append(ImageError(f"{show_path(path)}: no images in this folder"))
            for candidate in inside:
                problem = _not_regular(candidate)
                if problem is None:
                    found.append(candidate)
                else:
                    errors.append(problem)
        elif not os.path.lexists(path):
            errors.append(ImageError(f"{show_path(path)}: no such file or folder"))
        else:
            problem = _not_regular(path)
            if problem is None:
                found.append(path)
            else:
                errors.append(problem)
    return found, errors


# The most pixels an image may have once resized so that its shorter side is the preset's size: 2**24 is
# 64 times a 512x512 image. Without it a 1x30000 PNG (90 kB) became a 256x7,680,000 image: 5.9 GB and 24 s
# of resizing (measured) before the 224 crop threw nearly all of it away.
MAX_RESIZED_PIXELS = 1 << 24


def check_resizable(
    size: tuple[int, int], min_side: int, name: str, *, max_pixels: int = MAX_RESIZED_PIXELS
) -> None:
    """Refuse (ImageError naming `name`) an image of `size` that has an empty side, or that would exceed
    `max_pixels` once resized as torchvision's Resize(min_side) does (an extreme aspect ratio, or a
    `min_side` far above its size)."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{name}: an empty image ({width}x{height} pixels)")
    short, long = min(width, height), max(width, height)
    resized_long = int(min_side * long / short)  # torchvision's rounding
    if resized_long * min_side > max_pixels:
        raise ImageError(
            f"{name}: a {width}x{height} image would be {min_side}x{resized_long} pixels once its shorter "
            f"side is {min_side}, over the limit of {max_pixels}: too elongated (or too small) to use"
        )


def open_image(
    path: str | os.PathLike,
    *,
    min_side: int | None = None,
    max_pixels: int = MAX_RESIZED_PIXELS,
    full_size: bool = False,
) -> Image.Image:
    """Decode `path` as an upright RGB image.

    With `min_side`, a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale whose shorter side is still at
    least `min_side` (libjpeg's draft mode): a 4000x3000 photo for a 256-pixel preset costs an eighth of a full
    decode; and an image that would exceed `max_pixels` once resized to `min_side` is refused before it is
    decoded (see check_resizable). With `full_size` (the image is used as it is, no resize: the captioner), an
    image of more than `max_pixels` is refused before it is decoded. EXIF orientation is applied; grayscale, palette, CMYK and 16-bit images
    become RGB and transparency is flattened onto white. Only a regular file is opened (a named pipe would
    block forever); whatever goes wrong is one ImageError naming the file.
    """
    path = Path(path)
    name = show_path(path)
    problem = _not_regular(path)
    if problem is not None:
        raise problem
    try:
        # O_NONBLOCK: should the file be swapped for a pipe after the check, opening it still returns at once.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except OSError as e:
        raise ImageError(f"{name}: cannot read ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ImageError(f"{name}: {_kind(os.fstat(f.fileno()).st_mode)}, not an image file")
        return _decode(f, name, min_side, max_pixels, max_pixels if full_size else None)


def check_pixels(size: tuple[int, int], max_pixels: int, name: str) -> None:
    """Refuse (ImageError naming `name`) an image of `size` that is empty or has more than `max_pixels`."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{name}: an empty image ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: a {width}x{height} image has more than the {max_pixels} pixels it may have at full size"
        )


def _decode(f: Any, name: str, min_side: int | None, max_pixels: int, full: int | None) -> Image.Image:
    try:
        with Image.open(f) as im:
            # Between Pillow's limit and twice it Pillow only warns; such files are refused all the same.
            # (Checked here rather than through warning filters, which are global and not thread-safe.)
            if Image.MAX_IMAGE_PIXELS and im.width * im.height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{im.width * im.height} pixels")
            if full is not None:
                check_pixels(im.size, full, name)
            if min_side:
                check_resizable(im.size, min_side, name, max_pixels=max_pixels)
                if isinstance(im, JpegImagePlugin.JpegImageFile):  # MPO (phones) included
                    scale = min_side / min(im.size)
                    if scale < 1:
                        im.draft("RGB", (math.ceil(im.width * scale), math.ceil(im.height * scale)))
            im.load()
            return to_rgb(ImageOps.exif_transpose(im))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{name}: larger than Pillow's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS} pixels)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        reason = "truncated or corrupt" if "truncated" in str(e) or isinstance(e, SyntaxError) else str(e)
        raise ImageError(f"{name}: cannot decode the image ({show_path(reason)})") from None
    except Exception as e:  # a decoder's own bug on hostile bytes (struct.error, IndexError, ...)
        raise ImageError(
            f"{name}: cannot decode the image ({type(e).__name__}: {show_path(str(e))})"
        ) from None


def prepare_error(image: Any, error: Exception) -> ImageError:
    """The ImageError for an image whose preprocessing (resize, crop, to tensor) failed after decoding."""
    name = show_path(image) if isinstance(image, (str, os.PathLike)) else "the image"
    return ImageError(f"{name}: cannot prepare the image ({type(error).__name__}: {show_path(str(error))})")


def to_rgb(im: Image.Image) -> Image.Image:
    """`im` as an RGB image: alpha flattened onto white, 16-bit and float grayscale scaled to 8 bits."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np  # only 16-bit images need it

        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")
