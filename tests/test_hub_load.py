import json
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

import zoo
from zoo.errors import HubError, MissingDependenciesError, UnknownEntryPointError, UnknownNameError

MODEL_ENTRIES = sorted(zoo.list_models() + ["custom_model"])


def make_repo(root: Path, hubconf: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "hubconf.py").write_text(textwrap.dedent(hubconf))
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def torch_hub_module():
    # torch.hub.list/help take GitHub repos only; import the hubconf the way torch.hub.load does.
    return torch.hub._import_module("hubconf", str(REPO_ROOT / "hubconf.py"))


def test_this_repo_lists_exactly_the_models():
    assert zoo.list(REPO_ROOT) == MODEL_ENTRIES
    module = torch_hub_module()
    # torch.hub.list's own rule for what an entry point is
    assert zoo.list(str(REPO_ROOT)) == [
        f for f in dir(module) if callable(getattr(module, f)) and not f.startswith("_")
    ]


def test_torch_hub_and_zoo_load_this_repo():
    a = torch.hub.load(str(REPO_ROOT), "resnet18", source="local", pretrained=False)
    b = zoo.load(REPO_ROOT, "resnet18")
    assert type(a) is type(b) is type(zoo.get_model("resnet18", weights=None))
    assert zoo.load(REPO_ROOT, "mlp", hidden=5).hidden_layer_1.out_features == 5


def test_every_entry_has_a_docstring_returned_as_torch_hub_returns_it():
    module = torch_hub_module()
    for entry in MODEL_ENTRIES:
        doc = zoo.help(REPO_ROOT, entry)
        assert doc.strip() and doc == getattr(module, entry).__doc__, entry


def test_non_model_entries(tmp_path):
    repo = make_repo(
        tmp_path / "r",
        '''
        def answer(x=1):
            """Return a dict, as torch.hub allows."""
            return {"x": x}

        def _private():
            return 0

        CONSTANT = 3
        ''',
    )
    assert zoo.list(repo) == ["answer"]
    assert zoo.load(repo, "answer", x=5) == {"x": 5}
    assert zoo.help(repo, "answer") == "Return a dict, as torch.hub allows."


def test_unknown_entry_and_bad_dirs(tmp_path):
    repo = make_repo(tmp_path / "r", "def resnet(): return 1\n")
    with pytest.raises(
        UnknownEntryPointError, match=r"unknown entry point 'resnt' in .*hubconf.py; did you mean 'resnet'"
    ) as e:
        zoo.load(repo, "resnt")
    assert isinstance(e.value, UnknownNameError | HubError | RuntimeError)
    with pytest.raises(HubError, match="no hubconf.py"):
        zoo.list(tmp_path)
    with pytest.raises(HubError, match="is not a directory"):
        zoo.list(tmp_path / "nope")
    with pytest.raises(HubError, match="source='github' needs a spec string"):
        zoo.list(repo, source="github")


def test_missing_dependencies_are_named_together(tmp_path):
    repo = make_repo(
        tmp_path / "r",
        """
        dependencies = ["torch", "zoo_missing_one", "zoo_missing_two"]
        import zoo_missing_one

        def entry():
            return 1
        """,
    )
    with pytest.raises(MissingDependenciesError, match="zoo_missing_one, zoo_missing_two"):
        zoo.list(repo)


def test_undeclared_missing_import_is_one_clear_error(tmp_path):
    repo = make_repo(tmp_path / "r", "import zoo_not_there\n")
    with pytest.raises(
        HubError, match="failed to import: ModuleNotFoundError: No module named 'zoo_not_there'"
    ):
        zoo.list(repo)


def two_repos(tmp_path):
    hubconf = '''
    from models import VALUE

    def value():
        """The repo's own VALUE."""
        return VALUE

    def lazy():
        """Import from the repo's own package at call time."""
        from models.inner import tag
        return tag()
    '''
    a = make_repo(
        tmp_path / "a",
        hubconf,
        {"models/__init__.py": "VALUE = 'a'\n", "models/inner.py": "def tag(): return 'A'\n"},
    )
    b = make_repo(
        tmp_path / "b",
        hubconf,
        {"models/__init__.py": "VALUE = 'b'\n", "models/inner.py": "def tag(): return 'B'\n"},
    )
    return a, b


def test_two_repos_with_the_same_package_names_do_not_leak(tmp_path, monkeypatch):
    # Another test's hub repo may have left its `models` package (and submodules) imported.
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
        monkeypatch.delitem(sys.modules, name)
    a, b = two_repos(tmp_path)
    path_before = list(sys.path)
    assert zoo.load(a, "value") == "a"
    assert zoo.load(b, "value") == "b"
    assert zoo.load(a, "lazy") == "A"
    assert zoo.load(b, "lazy") == "B"
    assert zoo.load(a, "value") == "a"
    assert sys.path == path_before
    # the first repo keeps its modules imported, as torch.hub would; the second never displaced them
    assert sys.modules["models"].VALUE == "a"


def test_a_module_already_imported_is_restored(tmp_path, monkeypatch):
    a, _ = two_repos(tmp_path)
    mine = types.ModuleType("models")
    monkeypatch.setitem(sys.modules, "models", mine)
    assert zoo.load(a, "value") == "a"
    assert zoo.load(a, "lazy") == "A"
    assert sys.modules["models"] is mine


def test_repeated_loads_share_classes_and_late_imports_work(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "pkg", raising=False)
    repo = make_repo(
        tmp_path / "r",
        """
        from __future__ import annotations
        import dataclasses
        from pkg import Net

        @dataclasses.dataclass
        class Config:
            width: int = 3

        def net():
            \"\"\"A module whose forward imports more of the repo.\"\"\"
            return Net(Config().width)
        """,
        {
            "pkg/__init__.py": """
            import torch

            class Net(torch.nn.Module):
                def __init__(self, width):
                    super().__init__()
                    self.width = width

                def forward(self, x):
                    from pkg.late import scale
                    return x * scale * self.width
            """,
            "pkg/late.py": "scale = 2\n",
        },
    )
    first, second = zoo.load(repo, "net"), zoo.load(repo, "net")
    assert type(first) is type(second)
    assert first(torch.ones(1)).item() == 6.0  # imported after load returned
    (repo / "hubconf.py").write_text((repo / "hubconf.py").read_text() + "\nCHANGED = 1\n")
    assert zoo.load(repo, "net", force_reload=True).width == 3


@pytest.mark.parametrize(
    ("hubconf", "message"),
    [
        ("def f(:\n", "syntax error"),
        ("from torch import nothing_here\n", "failed to import: ImportError"),
        ("raise RuntimeError('boom')\n", "failed to import: RuntimeError: boom"),
        ('dependencies = "torch"\n', "`dependencies` must be a list of module names, not 'torch'"),
        (
            "dependencies = ['torch'] + [3]\n",
            "`dependencies` must be a list of module names, not \\['torch', 3\\]",
        ),
    ],
)
def test_broken_hubconf_is_one_clear_error(tmp_path, hubconf, message):
    repo = make_repo(tmp_path / "r", hubconf)
    with pytest.raises(HubError, match=message):
        zoo.list(repo)


def test_annotated_dependencies_are_checked(tmp_path):
    repo = make_repo(
        tmp_path / "r", "dependencies: list = ['zoo_missing_a', 'zoo_missing_b']\nimport zoo_missing_a\n"
    )
    with pytest.raises(MissingDependenciesError, match="zoo_missing_a, zoo_missing_b"):
        zoo.list(repo)


@pytest.mark.parametrize(
    "declaration",
    [
        "dependencies = ['torch'] + ['zoo_missing_a', 'zoo_missing_b']",
        "dependencies = ['torch']\ndependencies += ['zoo_missing_a', 'zoo_missing_b']",
        "import os\nif os.sep:\n    dependencies = ['zoo_missing_a', 'zoo_missing_b']",
        "dependencies, other = ['zoo_missing_a', 'zoo_missing_b'], 1",
        "from deps import dependencies",
    ],
)
def test_dependencies_that_are_not_a_literal_are_read_from_the_module(tmp_path, declaration):
    ran = tmp_path / "ran"
    repo = make_repo(
        tmp_path / "r",
        f"{declaration}\n\ndef entry():\n    open({str(ran)!r}, 'w').close()\n",
        {"deps.py": "dependencies = ['zoo_missing_a', 'zoo_missing_b']\n"},
    )
    with pytest.raises(MissingDependenciesError, match="zoo_missing_a, zoo_missing_b"):
        zoo.load(repo, "entry")
    assert not ran.exists()  # checked before any entry point runs
    with pytest.raises(MissingDependenciesError):  # and again: a failed check is not cached as a success
        zoo.list(repo)
    with pytest.raises(HubError, match="not a literal list"):
        zoo.hub.hubconf.declared_dependencies(repo)  # what `zoo check` reads, to tell the publisher


def test_computed_dependencies_that_are_there_load(tmp_path):
    repo = make_repo(tmp_path / "r", "dependencies = ['torch'] + []\n\ndef entry():\n    return 7\n")
    assert zoo.load(repo, "entry") == 7


def test_force_reload_reruns_the_repos_own_modules(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "helpers", raising=False)
    repo = make_repo(
        tmp_path / "r",
        """
        def value():
            "The helper's value."
            from helpers.numbers import VALUE
            return VALUE
        """,
        {"helpers/__init__.py": "", "helpers/numbers.py": "VALUE = 1\n"},
    )
    assert zoo.load(repo, "value") == 1
    (repo / "helpers" / "numbers.py").write_text("VALUE = 22\n")  # another size: .pyc checks mtime and size
    assert zoo.load(repo, "value", force_reload=True) == 22


def test_reloading_this_repo_keeps_the_running_zoo():
    import zoo.errors

    before = zoo.errors.ZooError
    zoo.load(REPO_ROOT, "mlp", force_reload=True)
    assert sys.modules["zoo.errors"].ZooError is before


def test_entry_points_may_extend_sys_path(tmp_path):
    extra = str(tmp_path / "plugins")
    repo = make_repo(tmp_path / "r", f"import sys\n\ndef add():\n    sys.path.append({extra!r})\n")
    try:
        zoo.load(repo, "add")
        assert extra in sys.path and str(repo) not in sys.path
    finally:
        sys.path.remove(extra)


def test_two_refs_of_one_remote_repo_in_one_process(forge, monkeypatch):
    monkeypatch.delitem(sys.modules, "models", raising=False)
    path_before = list(sys.path)
    v1 = zoo.load("alice/nets:v1.0", "version", trust_repo=True)
    dev = zoo.load("alice/nets:dev", "version", trust_repo=True)
    assert (v1, dev) == ("v1", "dev")
    # code that imports more of its repo after load gets its own ref's modules
    assert zoo.load("alice/nets:dev", "late") == "dev-extra"
    assert zoo.load("alice/nets:v1.0", "late") == "v1-extra"
    assert zoo.load("bob/tools", "version", trust_repo=True) == "tools"
    assert zoo.load("alice/nets:v1.0", "version") == "v1"
    assert sys.path == path_before
    names = {m.__name__ for m in sys.modules.values() if m.__name__.startswith("zoo_hubconf_")}
    v1_dir = zoo.hub.resolve_repo("alice/nets:v1.0")
    dev_dir = zoo.hub.resolve_repo("alice/nets:dev")
    assert zoo.hub.hubconf.import_hubconf(v1_dir).__name__ != zoo.hub.hubconf.import_hubconf(dev_dir).__name__
    assert {
        zoo.hub.hubconf.import_hubconf(v1_dir).__name__,
        zoo.hub.hubconf.import_hubconf(dev_dir).__name__,
    } <= names


def test_torch_hub_style_arguments_and_entries(forge, monkeypatch):
    net = zoo.load(
        "alice/nets:dev",
        "net",
        pretrained=False,
        width=3,
        trust_repo=True,
        skip_validation=True,
        verbose=False,
    )
    assert isinstance(net, torch.nn.Linear) and net.in_features == 3
    assert zoo.list("alice/nets:dev", skip_validation=True) == ["late", "net", "version"]
    assert (
        zoo.help("alice/nets:dev", "net")
        == "A small network; `pretrained` is accepted as torch.hub repos do."
    )
    # the snapshot is a plain hub repo: torch.hub loads it too (with no other `models` imported: it does
    # not isolate repos)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    snapshot = zoo.hub.resolve_repo("alice/nets:dev")
    assert torch.hub.load(str(snapshot), "version", source="local") == "dev"


def test_remote_missing_dependencies_are_named_together(forge):
    with pytest.raises(MissingDependenciesError, match="zoo_forge_missing_a, zoo_forge_missing_b"):
        zoo.list("carol/needs", trust_repo=True)


def test_cli_list_help_load_on_a_remote_repo(forge, capsys):
    from zoo.cli import main

    assert main(["list", "alice/nets:dev", "--trust"]) == 0
    assert capsys.readouterr().out == "late\nnet\nversion\n"
    forge.reset()
    assert main(["list", "alice/nets:dev", "--offline", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["late", "net", "version"]
    assert main(["help", "alice/nets:dev", "version", "--offline"]) == 0
    assert capsys.readouterr().out == "The VERSION of this checkout.\n"
    assert (
        main(["load", "alice/nets:dev", "net", "-k", "width=5", "--kwarg", "pretrained=True", "--offline"])
        == 0
    )
    assert capsys.readouterr().out == "torch.nn.modules.linear.Linear: 12 parameters (12 trainable)\n"
    assert forge.requests == []
    assert main(["load", "alice/nets:dev", "version", "--json", "--force-reload"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "repo": "alice/nets:dev",
        "entry": "version",
        "type": "builtins.str",
        "repr": "'dev'",
    }
    assert len(forge.requests) == 1
    assert main(["list", "alice/nets:v1.0", "--offline"]) == 1
    assert "not in the zoo cache and offline mode is on" in capsys.readouterr().err
    assert main(["load", "alice/nets:dev", "net", "-k", "width"]) == 1
    assert "--kwarg 'width': expected NAME=VALUE" in capsys.readouterr().err
    assert main(["list", "resnet1*"]) == 0  # a pattern still lists the zoo's models
    assert "resnet18" in capsys.readouterr().out
    assert main(["list", str(REPO_ROOT / "docs")]) == 1  # a path is a repo, even one without a hubconf
    assert capsys.readouterr().err == f"zoo: error: no hubconf.py in {REPO_ROOT / 'docs'}\n"


def test_entry_points_of_two_repos_in_threads_see_their_own_modules(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "models", raising=False)
    # Both entry points meet twice: once inside their blocks before importing more of their repo, once
    # after. Run together, each would find the other's `models` in place; run one at a time, the barrier
    # breaks (timeout) and each just goes on.
    rendezvous = types.ModuleType("zoo_test_rendezvous")
    rendezvous.barrier = threading.Barrier(2, timeout=0.5)
    monkeypatch.setitem(sys.modules, "zoo_test_rendezvous", rendezvous)
    hubconf = '''
    import threading
    from models import VALUE

    def meet():
        """Import more of the repo while the other thread is in its entry point too."""
        import zoo_test_rendezvous
        try:
            zoo_test_rendezvous.barrier.wait()
        except threading.BrokenBarrierError:
            pass
        from models.inner import tag
        seen = (VALUE, tag())
        try:
            zoo_test_rendezvous.barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return seen
    '''
    repos = {
        name: make_repo(
            tmp_path / name,
            hubconf,
            {
                "models/__init__.py": f"VALUE = {name!r}\n",
                "models/inner.py": f"def tag(): return {name.upper()!r}\n",
            },
        )
        for name in ("a", "b")
    }
    for repo in repos.values():
        zoo.list(repo)  # imported first, so that only the entry points overlap
    results = {}

    def run(name):
        results[name] = zoo.load(repos[name], "meet")

    threads = [threading.Thread(target=run, args=(name,)) for name in repos]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {"a": ("a", "A"), "b": ("b", "B")}


def test_an_entry_point_may_load_another_hub_repo(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "models", raising=False)
    a, b = two_repos(tmp_path)
    outer = make_repo(
        tmp_path / "outer",
        f"""
        import zoo
        from models import VALUE

        def both():
            "Its own VALUE, and another repo's, loaded from inside this entry point."
            return VALUE, zoo.load({str(b)!r}, "lazy")
        """,
        {"models/__init__.py": "VALUE = 'outer'\n"},
    )
    result = []
    thread = threading.Thread(target=lambda: result.append(zoo.load(outer, "both")))
    thread.start()
    thread.join(timeout=30)
    assert result == [("outer", "B")]  # the lock is re-entrant: no deadlock
