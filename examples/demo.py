"""The offline demo: list the zoo, load the tutorial MLP through the hub, generate digits, caption scenes, run
every entry.

Uses only what ships with the repository, no network: the project's own trained weights are bundled in
weights/ (the Torch Hub tutorial's MLP `mlp.blobs`, the digits DCGAN `dcgan.digits`, the scene captioner
`neuraltalk2.shapes`); the other entries are built with random weights (their pretrained files would be
downloaded).

    python examples/demo.py [--out out/]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

import zoo
from zoo.tasks import save_grid
from zoo.weights import manifest
from zoo.weights.presets import cyclegan_output

REPO = Path(__file__).resolve().parent.parent


def tutorial_accuracy() -> str:
    """The tutorial MLP, loaded through the hub with its bundled weights, on the tutorial's test split."""
    sys.path.insert(0, str(REPO / "examples"))
    from train_mlp import blobs  # the tutorial's make_blobs data and split

    model = zoo.load(str(REPO), "custom_model", pretrained=True, device="cpu", offline=True).eval()
    _, x_test, _, y_test = blobs()
    with torch.inference_mode():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return f"test accuracy {accuracy:.4f} on the tutorial's {len(y_test)} held-out blobs"


def caption_scenes(out: Path, n: int = 6) -> None:
    """Caption a few synthetic scenes with the bundled captioner through the CLI, and write its page."""
    sys.path.insert(0, str(REPO / "examples"))
    import shapes_scenes

    from zoo.cli import main as zoo_cli

    folder = out / "scenes"
    folder.mkdir(parents=True, exist_ok=True)
    held = shapes_scenes.heldout_scenes(n, train_n=0)
    for i, (image, _) in enumerate(held):
        image.save(folder / f"scene{i}.png")
    zoo_cli(["caption", str(folder), "--weights", "shapes", "--html", str(out / "captions"), "--overwrite"])
    for i, (_, shapes) in enumerate(held, 1):
        print(f"  reference {i}: {shapes_scenes.captions(shapes)[0]}")


def run_entry(entry: str, out: Path) -> str:
    """Build one hub entry with pretrained=False, run it on a suitable input, and describe what came out."""
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
        elif entry == "neuraltalk2":
            tokens = model(torch.rand(1, 3, 224, 224), beam_size=2)
            what = f"image (1, 3, 224, 224) -> {len(tokens[0])} tokens (random weights, placeholder words)"
        else:
            y = model(torch.rand(1, 3, 224, 224))
            what = f"image (1, 3, 224, 224) -> logits {tuple(y.shape)}"
    return f"{params:>11,}  {what}"


def sampled(entries: list[str]) -> list[str]:
    """The entries of zoo's own modules, and the smallest classifier of each family of the catalogue."""
    from zoo.models.torchvision_catalogue import ARCHITECTURES, BUILDERS

    smallest: dict[str, str] = {}
    for arch in sorted(BUILDERS, key=lambda a: zoo.get_weights(a).meta["num_params"]):
        smallest.setdefault(ARCHITECTURES[arch]["family"], arch)
    return [e for e in entries if e not in BUILDERS or e in smallest.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    defaults = manifest.load().defaults
    print("The zoo's models, their weight files and default weights:")
    for name in zoo.list_models():
        print(f"  {name:<18} {len(zoo.list_weights(name))} known, default {defaults.get(name, '-')}")
    print('\nzoo.load(".", "custom_model", pretrained=True), the Torch Hub tutorial\'s MLP:')
    print(f"  {tutorial_accuracy()}")
    grid = args.out / "digits.png"
    images = zoo.generate(64, model="dcgan", weights="digits", device="cpu", seed=0)
    save_grid(images, grid, nrow=8, overwrite=True)  # the demo redraws its own picture
    print(f"\n64 digits generated by dcgan.digits (the project's own DCGAN): {grid}")

    print(
        "\nneuraltalk2.shapes (the project's own captioner) on scenes of the held-out seed, `zoo caption --html`:"
    )
    caption_scenes(args.out)

    entries = zoo.list(REPO)
    print(
        f"\nEntry points of the local hub repo {REPO} (as torch.hub.load sees them):\n  {', '.join(entries)}"
    )
    print(
        "\nLoading and running through zoo.load (pretrained=False, no network) each seed entry and the smallest"
        " model of each other torchvision family (all of them would take minutes: see `zoo list`):"
    )
    for entry in sampled(entries):
        start = time.perf_counter()
        line = run_entry(entry, args.out)
        print(f"  {entry:<18} {(time.perf_counter() - start) * 1e3:7.0f} ms {line}")


if __name__ == "__main__":
    main()
