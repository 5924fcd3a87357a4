"""Captioning throughput: the book's per-image loop against zoo's Captioner (what `zoo caption` runs).

The book's model at the book's size: Caffe-style ResNet-101 and the FC decoder over 9487 words, random
weights standing in for fc-model.pth and resnet101.pth (no download here; the cost is the same). Photo-like
JPEGs at the horse photo's 1500x1220 are written once. The book's loop, written out plainly: PIL open, RGB,
`/255`, normalise, the encoder's fc features and a beam search of 2 on a batch of one, under no_grad (not
inference mode). zoo: images read on worker threads while the model runs, inference_mode, BatchNorms folded
into the convolutions and channels-last memory on CPU. Both use the same model and weights, and the
captions are compared. Captions per second and the ratio are printed.

    python bench/caption.py [--images 4] [--rounds 2] [--size 1500x1220]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.classify import photo  # noqa: E402
from zoo.tasks.captioning import Captioner  # noqa: E402
from zoo.weights.presets import NEURALTALK2_MEAN, NEURALTALK2_STD  # noqa: E402


def book_loop(model: torch.nn.Module, paths: list[Path]) -> list[str]:
    """The book's eval loop on one image at a time, as its code does it."""
    mean = torch.tensor(NEURALTALK2_MEAN).view(3, 1, 1)
    std = torch.tensor(NEURALTALK2_STD).view(3, 1, 1)
    captions = []
    with torch.no_grad():
        for path in paths:
            img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
            x = (torch.from_numpy(img).permute(2, 0, 1) - mean) / std
            fc = model.encoder.features(x.unsqueeze(0))
            tokens = model.decoder.decode(fc, beam_size=2)
            captions.append(model.sentence(tokens[0]))
    return captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side; the best is kept")
    parser.add_argument("--size", default="1500x1220")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    captioner = Captioner(weights=None, device=args.device)  # the book's sizes, random weights
    model = captioner.model
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.images):
            paths.append(Path(tmp) / f"photo{i}.jpg")
            photo(width, height, seed=i).save(paths[-1], quality=90)
        book_loop(model, paths[:1])  # warm-up: allocator, oneDNN kernels
        list(captioner.run(paths[:1]))
        book_s = zoo_s = float("inf")
        for _ in range(args.rounds):
            start = time.perf_counter()
            book = book_loop(model, paths)
            book_s = min(book_s, time.perf_counter() - start)
            start = time.perf_counter()
            ours = [c for _, c in captioner.run(paths)]
            zoo_s = min(zoo_s, time.perf_counter() - start)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"neuraltalk2 ({params:,} parameters, random weights), {args.images} images of {width}x{height}, "
        f"beam 2; torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}"
    )
    print(f"{'what':<38} {'captions/s':>10} {'ratio':>7}")
    print(f"{'book loop (batch of 1, no_grad)':<38} {args.images / book_s:>10.3f} {1.0:>6.2f}x")
    print(f"{'zoo Captioner (zoo caption)':<38} {args.images / zoo_s:>10.3f} {book_s / zoo_s:>6.2f}x")
    same = sum(a == b for a, b in zip(book, ours, strict=True))
    print(f"same captions: {same}/{len(book)}")


if __name__ == "__main__":
    main()
