"""The package's layout: public names that must keep importing, dependencies that point down only, and
commands that start without torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

import zoo

PACKAGE = REPO_ROOT / "zoo"

# Floors, bottom first: a module may import its own part and anything on a lower floor, never higher.
FLOORS = [
    ["zoo._version", "zoo._common", "zoo.errors"],
    ["zoo.store"],
    ["zoo.weights"],
    ["zoo.registry", "zoo.models", "zoo.devices"],
    ["zoo.hub"],
    ["zoo.tasks", "zoo.publish", "zoo.distributed"],
    ["zoo.cli", "zoo.__main__"],
]

# Imports between parts of one floor that are part of the design: builders register themselves and the
# registry imports the families on first use (as timm's does); builders pick their device.
SIDEWAYS = {
    ("zoo.models", "zoo.registry"),
    ("zoo.registry", "zoo.models"),
    ("zoo.models", "zoo.devices"),
    ("zoo.__main__", "zoo.cli"),
}


def part_of(module: str) -> str:
    return next(p for floor in FLOORS for p in floor if module == p or module.startswith(p + "."))


def floor_of(module: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if part_of(module) in floor)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def zoo_imports(path: Path) -> set[str]:
    """Every zoo module `path` imports, at module level or inside functions (TYPE_CHECKING ones too)."""
    return imports_in(module_name(path), path.read_text(), is_package=path.name == "__init__.py")


def imports_in(name: str, source: str, *, is_package: bool = False) -> set[str]:
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "zoo")
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "zoo":
                continue
            # `from . import snapshots` imports a submodule: count the submodule, not the package.
            subs = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
            found.update(subs or [target])
    return found


def test_every_public_name_still_imports():
    for name in zoo.__all__:
        assert getattr(zoo, name) is not None, name
    for family in ("alexnet", "resnet", "googlenet", "cyclegan", "dcgan", "mlp"):
        module = __import__(f"zoo.models.{family}", fromlist=["_"])
        assert module.__name__ == f"zoo.models.{family}"
    from zoo.cli import main
    from zoo.models import custom_model, resnet101
    from zoo.publish import load_published

    assert callable(main) and callable(load_published) and callable(resnet101) and callable(custom_model)
    assert set(dir(zoo)) >= set(zoo.__all__)


def test_zoo_publish_stays_the_function_after_the_module_is_imported():
    code = "import zoo.publish, zoo; from zoo.publish import load_published; print(callable(zoo.publish) and zoo.publish.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "zoo.publish"


def test_dependencies_point_down_only():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name == "zoo":
            continue  # the public facade names everything, lazily
        for target in zoo_imports(path):
            if target == "zoo":
                upward.append(f"{name} imports the zoo facade")
            elif floor_of(target) > floor_of(name):
                upward.append(f"{name} -> {target}")
            elif (
                floor_of(target) == floor_of(name)
                and part_of(target) != part_of(name)
                and (part_of(name), part_of(target)) not in SIDEWAYS
            ):
                upward.append(f"{name} -> {target} (same floor)")
    assert upward == []


def test_the_layering_check_resolves_relative_imports_and_sees_upward_ones():
    found = imports_in(
        "zoo.store.paths", "def f():\n    from ..hub import api\n    from .. import registry\n"
    )
    assert found == {"zoo.hub.api", "zoo.registry"}
    assert all(floor_of(t) > floor_of("zoo.store.paths") for t in found)
    assert imports_in("zoo.weights", "from . import files", is_package=True) == {"zoo.weights.files"}


PROBE = """
import contextlib, io, json, sys
from zoo.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(json.loads(sys.argv[1]))
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in ("torch", "torchvision") if m in sys.modules)))
"""


def loaded_by(argv: list[str], home: Path) -> list[str]:
    env = {"ZOO_HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["classify", "--help"],
        ["cache", "--help"],
        ["cache", "dir"],
        ["cache", "ls"],
        ["trust", "--list"],
    ],
)
def test_light_commands_start_without_torch(argv, tmp_path):
    assert loaded_by(argv, tmp_path) == []


def test_zoo_list_needs_torch_but_not_torchvision(tmp_path):
    assert loaded_by(["list"], tmp_path) == ["torch"]
    assert loaded_by(["list", "vit*", "--sort", "acc1", "--json", "--exclude", "*_h_*"], tmp_path) == [
        "torch"
    ]
