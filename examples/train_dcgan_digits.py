"""Train the zoo's `dcgan` generator on scikit-learn's 8x8 digits and publish it as `dcgan.digits`.

The 1,797 digits that ship inside scikit-learn are upscaled to 32x32 and scaled to [-1, 1]. The generator is
the zoo's DCGAN architecture at a smaller width (latent 32, ngf 32, depth 2, one channel: 32x32 output);
the discriminator mirrors it. Seeds are fixed. Quality is measured honestly: a classifier trained on the
real digits labels 1,000 generated samples (shrunk back to 8x8); we report the share it labels with
confidence >= 0.9 and how evenly the ten classes appear.

    python examples/train_dcgan_digits.py [--epochs 200] [--no-publish]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zoo.models.dcgan import DCGANGenerator  # noqa: E402

KWARGS = {"latent_dim": 32, "ngf": 32, "depth": 2, "out_channels": 1}
COMMAND = "python examples/train_dcgan_digits.py"


def real_digits() -> torch.Tensor:
    """The 1,797 digits as (N, 1, 32, 32) in [-1, 1]."""
    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    x = nn.functional.interpolate(x, size=32, mode="bilinear", align_corners=False)
    return x * 2 - 1


def discriminator(ndf: int = 32) -> nn.Module:
    """The DCGAN discriminator for 32x32 single-channel images (a logit per image)."""
    return nn.Sequential(
        nn.Conv2d(1, ndf, 4, 2, 1),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0),
        nn.Flatten(),
    )


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def train(epochs: int, seed: int = 0) -> DCGANGenerator:
    """Adversarial training with the DCGAN recipe (Adam 2e-4, betas 0.5/0.999, one-sided label smoothing)."""
    torch.manual_seed(seed)
    data = real_digits()
    gen, disc = DCGANGenerator(**KWARGS), discriminator()
    gen.apply(_init)
    disc.apply(_init)
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    batch = 64
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(data))
        for i in range(0, len(data) - batch + 1, batch):
            real = data[order[i : i + batch]]
            fake = gen(torch.randn(batch, KWARGS["latent_dim"]))
            opt_d.zero_grad()
            loss_d = bce(disc(real), torch.full((batch, 1), 0.9)) + bce(
                disc(fake.detach()), torch.zeros(batch, 1)
            )
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            loss_g = bce(disc(fake), torch.ones(batch, 1))
            loss_g.backward()
            opt_g.step()
        if epoch % 10 == 0 or epoch == epochs:
            print(
                f"Epoch {epoch}/{epochs}: loss D {loss_d.item():.3f}, loss G {loss_g.item():.3f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    return gen.eval()


def quality(gen: DCGANGenerator, n: int = 1000, seed: int = 1) -> dict[str, float]:
    """Share of samples a real-digit classifier labels with confidence >= 0.9, and class evenness."""
    digits = load_digits()
    clf = LogisticRegression(max_iter=5000).fit(digits.data, digits.target)
    with torch.no_grad():
        noise = torch.randn(n, KWARGS["latent_dim"], generator=torch.Generator().manual_seed(seed))
        images = (gen(noise) + 1) / 2  # [0, 1]
        small = nn.functional.adaptive_avg_pool2d(images, 8)[:, 0] * 16  # back to the 8x8, 0..16 scale
    probs = clf.predict_proba(small.reshape(n, -1).numpy())
    confident = probs.max(1) >= 0.9
    counts = np.bincount(probs.argmax(1), minlength=10)
    share = counts / counts.sum()
    entropy = float(-(share[share > 0] * np.log(share[share > 0])).sum() / np.log(10))
    return {
        "confident_share": float(confident.mean()),
        "class_evenness": entropy,  # 1.0: all ten classes equally often
        "min_class_share": float(share.min()),
        "max_class_share": float(share.max()),
        "real_digits_confident_share": float((clf.predict_proba(digits.data).max(1) >= 0.9).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    gen = train(args.epochs)
    minutes = (time.perf_counter() - started) / 60
    metrics = quality(gen)
    print(json.dumps({"training_minutes": round(minutes, 1), **metrics}, indent=2))
    if args.no_publish:
        return
    from zoo.publish import publish

    w = publish(
        gen,
        name="digits",
        arch="dcgan",
        out_dir=ROOT / "zoo" / "weights" / "data",  # bundled: the package carries it
        manifest=ROOT / "weights_manifest.json",
        kwargs=KWARGS,
        meta={
            "docs": "DCGAN generator trained by the zoo on scikit-learn's 8x8 digits, upscaled to 32x32, 1 channel",
            "dataset": "sklearn.datasets.load_digits (1,797 images)",
            "metrics": {"digits_quality": {k: round(v, 4) for k, v in metrics.items()}},
            "training_minutes_cpu": round(minutes, 1),
            "license": "BSD-3-Clause",
            "source": "zoo project (examples/train_dcgan_digits.py)",
            "training_command": f"{COMMAND} --epochs {args.epochs}",
        },
    )
    print(f"published {w.key}: weights/{w.file_name} ({w.size} bytes)")


if __name__ == "__main__":
    main()
