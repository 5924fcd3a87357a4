"""zoo.list/help/load as drop-ins for torch.hub's: the same parameters, the same results, errors of the same
types. The cases of PyTorch's own test/test_hub.py that have a counterpart in zoo, run against the local forge
(tests/forge.py) and local folders instead of github.com; then zoo's deliberate differences (docs/hub.md,
"Differences from torch.hub"), each asserted as zoo behaves."""

import inspect
import io
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from forge import git

import zoo
from zoo.errors import (
    HubconfNotFoundError,
    HubError,
    InvalidSpecError,
    MissingDependenciesError,
    UnknownEntryPointError,
    UnknownNameError,
    ZooError,
)
from zoo.hub import trust
from zoo.hub.specs import HEAD, parse_spec

ECHO_HUBCONF = '''
dependencies = ["torch"]


def echo(*args, **kwargs):
    """Return what it was called with.

    Indented as docstrings are.
    """
    return args, kwargs


def affine(x, scale=2, *rest, shift=0, **extra):
    """scale * x + shift, and whatever else it was given."""
    return scale * x + shift, rest, extra


def bare():
    return "no docstring"


def _helper():
    """Private: torch.hub's list leaves it out."""
    return "private"


CONSTANT = 3
'''


def make_repo(root: Path, hubconf: str = ECHO_HUBCONF) -> Path:
    root.mkdir(parents=True)
    (root / "hubconf.py").write_text(textwrap.dedent(hubconf))
    return root


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "echo")


class Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's answers typed in (torch's tests patch `input`)."""

    def isatty(self):
        return True


def asked(capsys) -> int:
    """How many times the trust prompt was shown since the last call."""
    return capsys.readouterr().err.count("Trust this repository")


# --- Signatures: torch.hub's parameters, order and kinds, plus zoo's keyword-only ones ---------------------


@pytest.mark.parametrize(
    ("name", "extra"),
    [("load", ["offline"]), ("list", ["source", "offline"]), ("help", ["source", "offline", "verbose"])],
)
def test_signatures_are_torch_hubs_plus_zoos_keyword_only_options(name, extra):
    ours = inspect.signature(getattr(zoo, name)).parameters
    theirs = inspect.signature(getattr(torch.hub, name)).parameters
    shared = [p for p in ours.values() if p.name in theirs]
    assert [(p.name, p.kind) for p in shared] == [(p.name, p.kind) for p in theirs.values()]
    assert [p.name for p in ours.values() if p.name not in theirs] == extra
    assert all(ours[n].kind is inspect.Parameter.KEYWORD_ONLY for n in extra)
    for p in shared:
        if p.name == "trust_repo":
            assert (p.default, theirs[p.name].default) == (None, "check")  # zoo's None means "check"
        elif p.name == "source":
            assert (p.default, theirs[p.name].default) == (None, "github")  # zoo's None: folder or remote
        else:
            assert p.default == theirs[p.name].default, p.name


def test_list_and_help_take_torch_hubs_positional_arguments(repo):
    # list(github, force_reload, skip_validation, trust_repo, verbose)
    assert zoo.list(str(repo), False, True, "check", False) == ["affine", "bare", "echo"]
    # help(github, model, force_reload, skip_validation, trust_repo)
    assert (
        zoo.help(str(repo), "affine", True, True, True)
        == "scale * x + shift, and whatever else it was given."
    )


def test_torch_hub_keyword_names_github_and_model_work(repo):
    assert zoo.list(github=repo) == ["affine", "bare", "echo"]
    assert zoo.help(github=repo, model="bare") is None
    assert zoo.load(repo_or_dir=repo, model="affine", x=3) == (6, (), {})


def test_zoos_earlier_names_repo_or_dir_and_entry_still_work(repo):
    assert zoo.list(repo_or_dir=repo) == ["affine", "bare", "echo"]
    assert zoo.help(repo_or_dir=repo, entry="bare") is None
    assert zoo.help(repo, entry="bare") is None
    assert zoo.load(repo, entry="affine", x=1) == (2, (), {})


def test_entry_is_the_entry_points_own_keyword_once_model_is_given(repo):
    # as in torch.hub.load, where every unknown keyword goes to the entry point
    assert zoo.load(repo, "echo", entry="x") == ((), {"entry": "x"})
    assert zoo.load(repo, model="echo", entry="x") == ((), {"entry": "x"})
    with pytest.raises(TypeError):
        zoo.help(repo, "echo", entry="bare")  # help has no **kwargs: a plain TypeError, as Python's


# --- PyTorch's test_hub.py, ported --------------------------------------------------------------------------


def test_load_from_github(forge):
    net = zoo.load("alice/nets", "net", source="github", pretrained=True, verbose=False, trust_repo=True)
    assert isinstance(net, torch.nn.Linear) and net.in_features == 4


def test_load_from_local_dir(forge, monkeypatch):
    local_dir = zoo.hub.resolve_repo("alice/nets", trust_repo=True)
    forge.reset()
    net = zoo.load(str(local_dir), "net", source="local", pretrained=True, verbose=False)
    monkeypatch.delitem(sys.modules, "models", raising=False)  # torch.hub does not isolate repos
    by_torch = torch.hub.load(str(local_dir), "net", source="local", pretrained=True, verbose=False)
    assert type(net) is type(by_torch) and net.weight.shape == by_torch.weight.shape
    assert forge.requests == []


def test_load_from_branch(forge):
    nets = forge.dirs["nets"]
    git(nets, "branch", "ci/test_slash", forge.commits["dev"])
    try:
        assert zoo.load("alice/nets:ci/test_slash", "version", trust_repo=True, verbose=False) == "dev"
        assert zoo.hub.resolve_repo("alice/nets:ci/test_slash").name == forge.commits["dev"]
    finally:
        git(nets, "branch", "-D", "ci/test_slash")


def test_get_set_dir_is_zoo_home(forge, tmp_path, monkeypatch):
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("ZOO_HOME", str(home))  # torch.hub.set_dir's counterpart
    assert zoo.load("alice/nets", "version", trust_repo=True, verbose=False) == "v2"
    assert zoo.hub.resolve_repo("alice/nets").is_relative_to(home / "hub")


def test_list_entrypoints(forge):
    assert "net" in zoo.list("alice/nets", trust_repo=True)


def test_hub_parse_repo_info():
    spec = parse_spec("a/b:c")
    assert (spec.path, spec.ref) == ("a/b", "c")
    # torch.hub asks GitHub's API whether the default branch is main or master; zoo asks for HEAD, which the
    # forge serves as its default branch, with no API call
    assert parse_spec("pytorch/vision").ref == HEAD


def test_trust_repo_false_emptystring(forge, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", Terminal("\n\n"))
    for _ in range(2):
        with pytest.raises(HubError, match="was not trusted"):
            zoo.load("alice/nets", "version", trust_repo=False)
        assert trust.trusted() == []
        assert asked(capsys) == 1
    assert forge.requests == []


def test_trust_repo_false_no(forge, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", Terminal("no\nno\n"))
    for _ in range(2):
        with pytest.raises(HubError, match="was not trusted"):
            zoo.load("alice/nets", "version", trust_repo=False)
        assert trust.trusted() == []
        assert asked(capsys) == 1


def test_trusted_repo_false_yes(forge, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", Terminal("y\ny\n"))
    assert zoo.load("alice/nets", "version", trust_repo=False) == "v2"
    assert trust.trusted() == [f"{forge.url}/alice/nets"]
    assert asked(capsys) == 1
    # a second time with "check": not asked
    assert zoo.load("alice/nets", "version", trust_repo="check") == "v2"
    assert asked(capsys) == 0
    # again with False: asked again
    assert zoo.load("alice/nets", "version", trust_repo=False) == "v2"
    assert asked(capsys) == 1


def test_trust_repo_check_no(forge, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", Terminal("no\nno\n"))
    for _ in range(2):
        with pytest.raises(HubError, match="was not trusted"):
            zoo.load("alice/nets", "version", trust_repo="check")
        assert trust.trusted() == []
        assert asked(capsys) == 1


def test_trust_repo_check_yes(forge, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert zoo.load("alice/nets", "version", trust_repo="check") == "v2"
    assert trust.trusted() == [f"{forge.url}/alice/nets"]
    assert asked(capsys) == 1
    assert zoo.load("alice/nets", "version", trust_repo="check") == "v2"
    assert asked(capsys) == 0


def test_trust_repo_true(forge):
    assert zoo.load("alice/nets", "version", trust_repo=True) == "v2"
    assert trust.trusted() == [f"{forge.url}/alice/nets"]


def test_trust_repo_builtin_trusted_owners(monkeypatch):
    monkeypatch.delenv("ZOO_GITHUB_URL", raising=False)  # github.com itself; nothing is fetched here
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    trust.check_trust(parse_spec("pytorch/vision"), "check")
    assert trust.trusted() == []


def test_load_with_force_reload_fetches_again(forge):
    assert zoo.load("alice/nets:dev", "version", trust_repo=True) == "dev"
    assert zoo.load("alice/nets:dev", "version") == "dev"
    assert len(forge.archive_requests()) == 1
    assert zoo.load("alice/nets:dev", "version", force_reload=True) == "dev"
    assert len(forge.archive_requests()) == 2


def test_a_model_with_args_and_kwargs(repo):
    expected = torch.hub.load(str(repo), "affine", 5, 3, "r1", "r2", source="local", shift=1, tag="t")
    assert expected == (16, ("r1", "r2"), {"tag": "t"})
    assert zoo.load(repo, "affine", 5, 3, "r1", "r2", shift=1, tag="t") == expected
    assert zoo.load(repo, "echo", 1, 2, k=3) == ((1, 2), {"k": 3})


def test_skip_validation_is_accepted_and_changes_nothing(forge):
    assert zoo.list("alice/nets:dev", skip_validation=True, trust_repo=True) == ["late", "net", "version"]
    assert zoo.load("alice/nets:v1.0", "version", skip_validation=False) == "v1"
    assert zoo.help("alice/nets:v1.0", "version", skip_validation=True) == "The VERSION of this checkout."
    # only the archives were fetched: no API call to validate, skipped or not
    assert len(forge.requests) == len(forge.archive_requests()) == 2


def test_verbose_false_prints_nothing(forge, capsys):
    assert zoo.load("alice/nets:dev", "version", trust_repo=True, verbose=False) == "dev"
    assert zoo.list("alice/nets:v1.0", verbose=False) == ["late", "net", "version"]
    assert capsys.readouterr() == ("", "")


def test_verbose_says_what_it_downloads_on_stderr(forge, capsys):
    assert zoo.load("alice/nets:dev", "version", trust_repo=True, verbose=True) == "dev"
    out, err = capsys.readouterr()
    assert out == "" and f"zoo: downloading alice/nets:dev from {forge.url}/alice/nets/archive/dev.zip" in err
    assert zoo.load("alice/nets:dev", "version", verbose=True) == "dev"
    assert capsys.readouterr() == ("", "")  # a cache hit is silent (torch.hub says "Using cache found in")


# --- Errors of torch.hub's types ---------------------------------------------------------------------------


def test_unknown_entry_is_a_runtime_error_as_in_torch_hub(repo, forge):
    with pytest.raises(RuntimeError, match="Cannot find callable nope in hubconf"):
        torch.hub.load(str(repo), "nope", source="local")
    for call in (lambda: zoo.load(repo, "nope"), lambda: zoo.help(repo, "CONSTANT")):
        with pytest.raises(RuntimeError, match="unknown entry point") as e:
            call()
        assert isinstance(e.value, UnknownEntryPointError | UnknownNameError | HubError | ZooError)
    with pytest.raises(RuntimeError, match="unknown entry point 'versoin'.*did you mean 'version'"):
        zoo.load("alice/nets:dev", "versoin", trust_repo=True)


def test_unknown_entry_is_one_line_and_exit_status_1_on_the_command_line(repo, capsys):
    from zoo.cli import main

    assert main(["load", str(repo), "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: unknown entry point 'nope'") and err.count("\n") == 1


def test_missing_dependencies_are_a_runtime_error_as_in_torch_hub(tmp_path, forge):
    needs = make_repo(
        tmp_path / "needs",
        "dependencies = ['torch', 'zoo_missing_x', 'zoo_missing_y']\n\ndef f():\n    return 1\n",
    )
    with pytest.raises(RuntimeError, match="Missing dependencies: zoo_missing_x, zoo_missing_y"):
        torch.hub.load(str(needs), "f", source="local")
    with pytest.raises(RuntimeError, match="zoo_missing_x, zoo_missing_y") as e:
        zoo.load(needs, "f")
    assert isinstance(e.value, MissingDependenciesError | ImportError | HubError)
    with pytest.raises(RuntimeError, match="zoo_forge_missing_a, zoo_forge_missing_b"):
        zoo.list("carol/needs", trust_repo=True)


def test_unknown_source_is_a_value_error_as_in_torch_hub(repo):
    with pytest.raises(ValueError, match='Unknown source: "svn"'):
        torch.hub.load(str(repo), "echo", source="svn")
    for call in (
        lambda: zoo.load(repo, "echo", source="svn"),
        lambda: zoo.list(str(repo), source="svn"),
        lambda: zoo.help(str(repo), "echo", source=3),
    ):
        with pytest.raises(ValueError, match="unknown source") as e:
            call()
        assert isinstance(e.value, InvalidSpecError | HubError)


def test_source_names_are_case_insensitive_as_in_torch_hub(repo, forge):
    assert torch.hub.load(str(repo), "affine", 1, source="LOCAL") == (2, (), {})
    assert zoo.load(str(repo), "affine", 1, source="LOCAL") == (2, (), {})
    assert zoo.load(repo, "affine", 1, source="Local") == (2, (), {})
    assert zoo.load("alice/nets:dev", "version", source="GitHub", trust_repo=True) == "dev"
    assert zoo.list("group/sub/nets:dev", source="GitLab", trust_repo=True) == ["late", "net", "version"]


def test_a_malformed_github_spec_is_a_value_error_as_in_torch_hub():
    with pytest.raises(ValueError):
        torch.hub._parse_repo_info("a/b/c")  # torch.hub's own reading fails with a ValueError
    with pytest.raises(ValueError, match="malformed hub spec 'a/b/c'") as e:
        zoo.load("a/b/c", "net", source="github")
    assert isinstance(e.value, HubError)


def test_a_model_name_that_is_not_a_string_is_a_value_error_as_in_torch_hub(repo):
    with pytest.raises(ValueError, match="model should be a string"):
        torch.hub.load(str(repo), 3, source="local")
    with pytest.raises(ValueError, match="must be the name of a function, not 3") as e:
        zoo.load(repo, 3)
    assert isinstance(e.value, ZooError)


def test_a_folder_without_hubconf_is_a_file_not_found_error_as_in_torch_hub(tmp_path):
    with pytest.raises(FileNotFoundError):
        torch.hub.load(str(tmp_path), "f", source="local")
    for folder, message in ((tmp_path, "no hubconf.py in"), (tmp_path / "none", "is not a directory")):
        with pytest.raises(FileNotFoundError, match=message) as e:
            zoo.load(folder, "f", source="local")
        assert isinstance(e.value, HubconfNotFoundError | HubError)


def test_help_returns_the_docstring_as_written_as_torch_hub_does(repo):
    module = torch.hub._import_module("hubconf", str(repo / "hubconf.py"))
    doc = zoo.help(repo, "echo")
    assert doc == module.echo.__doc__ and doc.endswith("\n    ")  # not dedented
    assert zoo.help(repo, "bare") is None  # torch.hub.help returns None too


# --- Deliberate differences (docs/hub.md, "Differences from torch.hub") -----------------------------------


def test_trust_repo_none_is_check_not_a_silent_trust(forge, monkeypatch):
    # torch.hub: None skips the prompt and adds the repo to its trusted list
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("alice/nets", "version", trust_repo=None)
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("alice/nets", "version")  # None is the default
    assert trust.trusted() == [] and forge.requests == []


def test_untrusted_repo_without_a_terminal_fails_at_once_instead_of_prompting(forge, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # torch.hub would call input() and read this
    with pytest.raises(HubError, match="zoo trust alice/nets"):
        zoo.load("alice/nets", "version", trust_repo="check")
    assert sys.stdin.read() == "y\n"


def test_an_unrecognized_prompt_answer_is_a_no(forge, monkeypatch):
    # torch.hub raises ValueError("Unrecognized response ...") for it
    monkeypatch.setattr(sys, "stdin", Terminal("maybe\n"))
    with pytest.raises(HubError, match="was not trusted"):
        zoo.load("alice/nets", "version")
    assert trust.trusted() == []


def test_a_cached_snapshot_does_not_make_a_repo_trusted(forge, monkeypatch):
    # torch.hub's "legacy" rule trusts any repo it has downloaded before, even off its list
    assert zoo.load("alice/nets", "version", trust_repo=True) == "v2"
    trust.trust_file().unlink()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("alice/nets", "version", trust_repo="check")


def test_owners_trusted_by_default_only_on_github_com(forge, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("pytorch/nets", "version")  # the forge is not github.com
    assert forge.requests == []


def test_default_source_reads_a_folder_or_a_remote_spec(repo, forge):
    # torch.hub.load's default source is "github": a folder needs source="local" there
    assert zoo.load(str(repo), "affine", 1) == (2, (), {})
    assert zoo.load("alice/nets:dev", "version", trust_repo=True) == "dev"
    assert zoo.load("gitlab:group/sub/nets:dev", "version", trust_repo=True) == "dev"


def test_list_and_help_read_folders_too(repo):
    # torch.hub.list/help take GitHub repos only
    assert zoo.list(repo) == ["affine", "bare", "echo"]
    assert zoo.help(repo, "affine", source="local").startswith("scale * x")


def test_a_branch_resolves_to_a_commit_and_stays_cached_until_force_reload(forge):
    nets = forge.dirs["nets"]
    git(nets, "branch", "compat-moving", forge.commits["v1"])
    try:
        assert zoo.load("alice/nets:compat-moving", "version", trust_repo=True) == "v1"
        assert zoo.hub.resolve_repo("alice/nets:compat-moving").name == forge.commits["v1"]
        git(nets, "branch", "-f", "compat-moving", forge.commits["dev"])
        assert zoo.load("alice/nets:compat-moving", "version") == "v1"  # the commit it meant when fetched
        assert zoo.load("alice/nets:compat-moving", "version", force_reload=True) == "dev"
    finally:
        git(nets, "branch", "-D", "compat-moving")


def test_offline_uses_only_the_cache(forge):
    assert zoo.load("alice/nets:dev", "version", trust_repo=True) == "dev"
    forge.reset()
    assert zoo.load("alice/nets:dev", "version", offline=True) == "dev"
    assert zoo.list("alice/nets:dev", offline=True) == ["late", "net", "version"]
    assert zoo.help("alice/nets:dev", "version", offline=True) == "The VERSION of this checkout."
    with pytest.raises(HubError, match="not in the zoo cache and offline mode is on"):
        zoo.load("alice/nets:v1.0", "version", offline=True)
    assert forge.requests == []


def test_private_entry_points_are_refused_though_torch_hub_loads_them(repo):
    assert torch.hub.load(str(repo), "_helper", source="local") == "private"
    with pytest.raises(UnknownEntryPointError, match="unknown entry point '_helper'"):
        zoo.load(repo, "_helper")
