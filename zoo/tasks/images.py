"""Reading images for the tasks: walk folders, decode fast, fix orientation and mode, fail one file at a time."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from ..errors import ImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)


def find_images(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[ImageError]]:
    """The image files named by `paths` (folders walked, sorted) and one error per path that gave none.

    A file named explicitly is taken whatever its suffix (a broken one fails when it is opened); in folders,
    only files with an image suffix are taken and hidden entries are skipped.
    """
    found: list[Path] = []
    errors: list[ImageError] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            inside = sorted(
                Path(root) / name
                for root, dirs, files in os.walk(path)
                for name in files
                if not name.startswith(".")
                and Path(name).suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in Path(root).relative_to(path).parts)
            )
            if not inside:
                errors.append(ImageError(f"{path}: no images in this folder"))
            found.extend(inside)
        else:
            errors.append(ImageError(f"{path}: no such file or folder"))
    return found, errors


def open_image(path: str | os.PathLike, *, min_side: int | None = None) -> Image.Image:
    """Decode `path` as an upright RGB image.

    With `min_side`, a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale whose shorter side is still at
    least `min_side` (libjpeg's draft mode): a 4000x3000 photo for a 256-pixel preset costs an eighth of a full
    decode. EXIF orientation is applied; grayscale, palette, CMYK and 16-bit images become RGB and
    transparency is flattened onto white.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            # Between Pillow's limit and twice it Pillow only warns; such files are refused all the same.
            # (Checked here rather than through warning filters, which are global and not thread-safe.)
            if Image.MAX_IMAGE_PIXELS and im.width * im.height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{im.width * im.height} pixels")
            if min_side and isinstance(im, JpegImagePlugin.JpegImageFile):  # MPO (phones) included
                scale = min_side / min(im.size)
                if scale < 1:
                    im.draft("RGB", (math.ceil(im.width * scale), math.ceil(im.height * scale)))
            im.load()
            return to_rgb(ImageOps.exif_transpose(im))
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{path}: larger than Pillow's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS} pixels)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        reason = "truncated or corrupt" if "truncated" in str(e) or isinstance(e, SyntaxError) else str(e)
        raise ImageError(f"{path}: cannot decode the image ({reason})") from None


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
