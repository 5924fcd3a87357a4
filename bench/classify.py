"""Classification throughput: the book's per-image loop against zoo's Classifier (what `zoo classify` runs).

A folder of photo-like JPEGs of mixed camera and web sizes (up to 4000x3000) is written once; a random
resnet50 state dict stands in for the real weights (no download here; the cost is the same). Both sides
use that file. The book's loop: PIL open, Resize(256), CenterCrop(224), ToTensor, Normalize, the model on a
batch of one (under no_grad). zoo: draft-mode JPEG decoding, the weights' preset, batches of 32 prepared
on worker threads while the model runs, inference_mode, and optionally bf16 autocast with channels-last.
Each side runs over the whole folder; the model is built before timing. Images per second and ratios are
printed, and how far bf16 probabilities are from fp32 ones.

    python bench/classify.py [--images 64] [--precisions fp32 bf16] [--device cpu]
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
from torchvision import models as tvm
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo.tasks import Classifier  # noqa: E402

SIZES = [
    (4000, 3000),
    (3024, 4032),
    (1920, 1080),
    (1280, 960),
    (2048, 1536),
    (800, 600),
    (640, 480),
    (1600, 1200),
]


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like image: smooth colour fields, edges and fine texture (JPEG-compresses like a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    texture = rng.normal(0, 12, (height // 4, width // 4, 1))
    texture = np.asarray(Image.fromarray(texture[..., 0].astype(np.float32)).resize((width, height)))[
        ..., None
    ]
    return Image.fromarray(np.clip(np.asarray(base, np.float32) + texture, 0, 255).astype(np.uint8))


def make_folder(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}.jpg"
        photo(*SIZES[i % len(SIZES)], seed=i).save(path, quality=90)
        paths.append(path)
    return paths


def book_loop(model: torch.nn.Module, paths: list[Path]) -> list[torch.Tensor]:
    preprocess = T.Compose(
        [
            T.Resize(256),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    model.eval()
    out = []
    with torch.no_grad():
        for path in paths:
            img = Image.open(path)
            batch_t = torch.unsqueeze(preprocess(img), 0)
            out.append(torch.nn.functional.softmax(model(batch_t), dim=1)[0] * 100)
    return out


def zoo_run(classifier: Classifier, paths: list[Path]) -> list[list[tuple[str, float]]]:
    return [p for _, p in classifier.run(paths, topk=1000, batch_size=32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        paths = make_folder(tmp_path, args.images)
        print(
            f"{len(paths)} JPEGs written in {time.perf_counter() - started:.0f} s; sizes {sorted(set(SIZES))}"
        )
        weights = tmp_path / "resnet50.pth"
        torch.manual_seed(0)
        torch.save(tvm.resnet50().state_dict(), weights)

        anchor = tvm.resnet50()
        anchor.load_state_dict(torch.load(weights, weights_only=True))
        book_loop(anchor, paths[:2])  # warm-up
        start = time.perf_counter()
        reference = book_loop(anchor, paths)
        book_s = time.perf_counter() - start
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
        print(f"{'what':<34} {'img/s':>7} {'ratio':>7}")
        print(f"{'book loop (fp32, batch of 1)':<34} {len(paths) / book_s:>7.2f} {1.0:>6.2f}x")

        fp32_probs = None
        for precision in args.precisions:
            classifier = Classifier("resnet50", weights, device=args.device, precision=precision)
            zoo_run(classifier, paths[:2])  # warm-up
            start = time.perf_counter()
            results = zoo_run(classifier, paths)
            zoo_s = time.perf_counter() - start
            label = f"zoo {precision} (batch 32)"
            print(f"{label:<34} {len(paths) / zoo_s:>7.2f} {book_s / zoo_s:>6.2f}x")
            probs = torch.stack(
                [torch.tensor([p for _, p in sorted(r, key=lambda x: x[0])]) for r in results]
            )
            if precision == "fp32":
                fp32_probs = probs
                ref = torch.stack([r for r in reference])
                ref = ref[:, sorted(range(1000), key=lambda i: classifier.categories[i])]
                agree = (probs.argmax(1) == ref.argmax(1)).float().mean()
                print(
                    f"  zoo fp32 vs book: max |diff| {(probs - ref).abs().max():.4f} percentage points, "
                    f"top-1 agreement {agree:.0%} (draft decoding, folded BatchNorm)"
                )
            elif fp32_probs is not None:
                diff = (probs - fp32_probs).abs()
                same_top1 = (probs.argmax(1) == fp32_probs.argmax(1)).float().mean()
                print(
                    f"  {precision} vs fp32: max |diff| {diff.max():.4f} points, top-1 agreement {same_top1:.0%}"
                )


if __name__ == "__main__":
    main()
