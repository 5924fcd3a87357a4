"""Smoke test of the installed package, run by `make test-wheel` from a folder outside the repository.

    python scripts/smoke_installed.py REPO_DIR

It checks that `zoo` is imported from the environment (not from a checkout), that the data the wheel carries
is found (manifest, bundled `mlp.blobs`, `dcgan.digits` and `neuraltalk2.shapes`), and that the console script, `python -m zoo` and
a hub snapshot of this repository work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"smoke: {' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    repo = Path(sys.argv[1]).resolve()
    here = Path.cwd().resolve()
    assert not here.is_relative_to(repo), f"run me outside the repository, not in {here}"
    import zoo
    from zoo.weights import files, manifest

    package = Path(zoo.__file__).resolve().parent
    assert not package.is_relative_to(repo), f"zoo was imported from the checkout: {package}"
    assert Path(sys.prefix).resolve() in package.parents, f"zoo is not the installed one: {package}"
    assert manifest.manifest_path().is_relative_to(package), manifest.manifest_path()
    print(f"smoke: zoo {zoo.__version__} from {package}")
    # the wheel's metadata: the distribution name, and every run-time requirement installed
    from importlib import metadata

    from packaging.requirements import Requirement

    assert metadata.version("zoo-hub") == zoo.__version__
    for text in metadata.requires("zoo-hub") or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra (test, examples)
        assert not any(s.operator in ("<", "<=", "==") for s in req.specifier), f"upper pin: {text}"
        have = metadata.version(req.name)
        assert req.specifier.contains(have, prereleases=True), f"{req.name} {have} does not satisfy {text}"

    scripts = Path(sys.executable).parent
    out = run(str(scripts / "zoo"), "list")
    assert "resnet101" in out and "mlp" in out, out
    out = run(str(scripts / "zoo"), "info", "resnet101")
    assert "resnet101.imagenet1k_v1" in out, out
    assert "usage: zoo" in run(sys.executable, "-m", "zoo", "--help")
    assert run(str(scripts / "zoo"), "--version").strip() == f"zoo {zoo.__version__}"

    model = zoo.get_model("mlp", pretrained=True)
    bundled = files.find_local(zoo.get_weights("mlp.blobs"))
    assert bundled is not None and bundled.is_relative_to(package), bundled
    assert next(model.parameters()).device.type == "cpu"
    print(f"smoke: mlp.blobs from {bundled}")

    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "digits.png"
        run(
            str(scripts / "zoo"),
            "generate",
            "-n",
            "16",
            "-o",
            str(grid),
            "--weights",
            "digits",
            "--seed",
            "0",
        )
        assert grid.stat().st_size > 1000, grid.stat().st_size

        # The bundled scene captioner, from the wheel: a red circle left of a blue square, drawn here.
        from PIL import Image, ImageDraw

        scene = Image.new("RGB", (64, 64), (235, 235, 235))
        draw = ImageDraw.Draw(scene)
        draw.ellipse((6, 24, 24, 42), fill=(220, 40, 40))
        draw.rectangle((38, 24, 56, 42), fill=(40, 70, 220))
        scene.save(Path(tmp) / "scene.png")
        out = run(
            str(scripts / "zoo"),
            "caption",
            str(Path(tmp) / "scene.png"),
            "--weights",
            "shapes",
            "--html",
            str(Path(tmp) / "vis"),
        )
        assert out.startswith("image 1: ") and (Path(tmp) / "vis" / "index.html").is_file(), out
        print(f"smoke: zoo caption --weights shapes: {out.splitlines()[0]}")

        snapshot = Path(tmp) / "snapshot"
        snapshot.mkdir()
        archive = Path(tmp) / "repo.tar"
        with open(archive, "wb") as f:
            subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", "HEAD"], stdout=f, check=True)
        with tarfile.open(archive) as tf:
            tf.extractall(snapshot, filter="data")
        net = zoo.load(str(snapshot), "resnet18", weights=None)
        assert type(net).__name__ == "ResNet" and sum(p.numel() for p in net.parameters()) == 11_689_512
    print(
        "smoke: zoo list, zoo info, python -m zoo, bundled weights, zoo generate, zoo caption, hub snapshot: ok"
    )


if __name__ == "__main__":
    os.environ.setdefault("ZOO_OFFLINE", "1")  # nothing here needs the network
    main()
