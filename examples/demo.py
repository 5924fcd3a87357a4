"""The offline demo: list the zoo, then load and run every model through the local hub.

Uses only what ships with the repository: no network, no downloaded weights (models are built with
random weights until the project's own trained weights are bundled).

    python examples/demo.py [--out out/]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

import zoo
from zoo import manifest
from zoo.presets import cyclegan_output

REPO = Path(__file__).resolve().parent.parent


def run_entry(entry: str, out: Path) -> str:
    model = zoo.load(REPO, entry, pretrained=False).eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.inference_mode():
        if entry in ("mlp", "custom_model"):
            y = model(torch.randn(16, 4))
            what = f"16 blobs -> logits {tuple(y.shape)}, predicted classes {y.argmax(1)[:6].tolist()}..."
        elif entry == "cyclegan":
            x = torch.linspace(0, 1, 128 * 96).reshape(1, 1, 128, 96).expand(1, 3, -1, -1)
            y = cyclegan_output(model(x))
            save_image(y, out / "cyclegan.png")
            what = f"image {tuple(x.shape)} -> {tuple(y.shape)} in [{y.min():.2f}, {y.max():.2f}], {out / 'cyclegan.png'}"
        elif entry == "dcgan":
            noise, _ = model.buildNoiseData(16, generator=torch.Generator().manual_seed(0))
            images = model.test(noise)
            save_image((images + 1) / 2, out / "dcgan_grid.png", nrow=4)
            what = (
                f"noise {tuple(noise.shape)} -> images {tuple(images.shape)}, grid {out / 'dcgan_grid.png'}"
            )
        else:
            y = model(torch.rand(1, 3, 224, 224))
            what = f"image (1, 3, 224, 224) -> logits {tuple(y.shape)}"
    return f"{params:>11,}  {what}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    defaults = manifest.load().defaults
    print("The zoo's models, their weight files and default weights:")
    for name in zoo.list_models():
        print(f"  {name:<10} {len(zoo.list_weights(name))} known, default {defaults.get(name, '-')}")
    entries = zoo.list(REPO)
    print(
        f"\nEntry points of the local hub repo {REPO} (as torch.hub.load sees them):\n  {', '.join(entries)}"
    )
    print("\nLoading and running each entry through zoo.load (random weights, no network):")
    for entry in entries:
        start = time.perf_counter()
        line = run_entry(entry, args.out)
        print(f"  {entry:<12} {(time.perf_counter() - start) * 1e3:7.0f} ms {line}")


if __name__ == "__main__":
    main()
