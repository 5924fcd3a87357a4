"""Train the Torch Hub tutorial's MLP on its blobs and publish it as `mlp.blobs` (bundled in weights/).

As in the tutorial: scikit-learn's make_blobs(n_samples=1000, n_features=4, centers=3, cluster_std=2.5,
random_state=95), 15 % held out for testing (random_state=95), SGD with lr 1e-2, batches of 64, 10 epochs.

    python examples/train_mlp.py [--no-publish]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from sklearn.datasets import make_blobs
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zoo.models.mlp import make_mlp  # noqa: E402

COMMAND = "python examples/train_mlp.py"


def blobs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tutorial's data: (x_train, x_test, y_train, y_test) as tensors."""
    x, y = make_blobs(n_samples=1000, n_features=4, centers=3, cluster_std=2.5, random_state=95)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.15, random_state=95)
    as_x, as_y = (
        (lambda a: torch.tensor(a, dtype=torch.float32)),
        (lambda a: torch.tensor(a, dtype=torch.long)),
    )
    return as_x(x_train), as_x(x_test), as_y(y_train), as_y(y_test)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(loss, accuracy) of `model` on `x`, `y`."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
        return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train(epochs: int = 10, seed: int = 95) -> tuple[nn.Module, dict[str, float]]:
    """The tutorial's training loop; returns the model and its final train/test loss and accuracy."""
    torch.manual_seed(seed)
    x_train, x_test, y_train, y_test = blobs()
    model = make_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    loader = DataLoader(
        TensorDataset(x_train, y_train),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    for epoch in range(1, epochs + 1):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        train_loss, train_acc = evaluate(model, x_train, y_train)
        test_loss, test_acc = evaluate(model, x_test, y_test)
        print(
            f"Epoch {epoch}/{epochs}: train loss {train_loss:.4f}, train acc {train_acc:.4f}, "
            f"test loss {test_loss:.4f}, test acc {test_acc:.4f}"
        )
    return model, {
        "train_loss": train_loss,
        "train_acc": train_acc,
        "test_loss": test_loss,
        "test_acc": test_acc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args()
    model, metrics = train()
    if metrics["test_acc"] <= 0.95:
        sys.exit(f"test accuracy {metrics['test_acc']:.4f} is not above 0.95: not publishing")
    if args.no_publish:
        return
    from zoo.publish import publish

    w = publish(
        model,
        name="blobs",
        arch="mlp",
        out_dir=ROOT / "zoo" / "weights" / "data",  # bundled: the package carries it
        manifest=ROOT / "weights_manifest.json",
        categories=["blob 0", "blob 1", "blob 2"],
        default=True,
        meta={
            "docs": "The Torch Hub tutorial's MLP trained on its make_blobs data (3 classes, 4 features)",
            "dataset": "make_blobs(n_samples=1000, n_features=4, centers=3, cluster_std=2.5, random_state=95)",
            "metrics": {"blobs_test": {"acc": metrics["test_acc"], "loss": metrics["test_loss"]}},
            "license": "BSD-3-Clause",
            "source": "zoo project (examples/train_mlp.py)",
            "training_command": COMMAND,
        },
    )
    print(f"published {w.key}: weights/{w.file_name}")


if __name__ == "__main__":
    main()
