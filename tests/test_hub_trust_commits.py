"""Default-owner trust (torch.hub's pytorch, facebookresearch, ...) never covers a spec pinned to a commit:
GitHub serves every fork's commits under the upstream repo's name. The forge stands in for github.com."""

import io
import sys

import pytest

import zoo
from zoo.cli import main
from zoo.errors import HubError
from zoo.hub import specs, trust


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def github(forge, monkeypatch):
    """The forge as github.com itself, with a `pytorch/nets` repo; no terminal on stdin."""
    monkeypatch.setattr(specs, "DEFAULT_GITHUB_URL", forge.url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    forge.github["pytorch/nets"] = "nets"
    yield forge
    del forge.github["pytorch/nets"]


def test_a_default_owner_branch_still_loads_without_asking(github):
    assert zoo.load("pytorch/nets", "version") == "v2"
    assert zoo.load("pytorch/nets:v1.0", "version") == "v1"
    assert trust.trusted() == []


@pytest.mark.parametrize("length", [40, 12, 7])
def test_a_default_owner_commit_pin_is_not_run_without_the_users_trust(github, length):
    commit = github.commits["dev"][:length]
    with pytest.raises(HubError) as e:
        zoo.load(f"pytorch/nets:{commit}", "version")
    assert str(e.value) == (
        f"pytorch/nets:{commit} pins a commit, and GitHub serves commits of every fork of pytorch/nets under "
        "its name, so the default trust in pytorch does not cover it and its hubconf.py was not run; if you "
        "trust pytorch/nets at any commit, run `zoo trust pytorch/nets` (or pass trust_repo=True, or --trust "
        "on the command line)"
    )
    assert github.archive_requests() == []  # not even downloaded


def test_the_cli_says_so_in_one_line_and_the_named_command_trusts_it(github, capsys):
    spec = f"pytorch/nets:{github.commits['dev']}"
    assert main(["list", spec]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "pins a commit" in err
    assert main(["trust", "pytorch/nets"]) == 0
    assert zoo.load(spec, "version") == "dev"


def test_trust_repo_true_trusts_the_pin_and_records_the_repo(github):
    spec = f"pytorch/nets:{github.commits['v1'][:10]}"
    assert zoo.load(spec, "version", trust_repo=True) == "v1"
    assert trust.trusted() == ["pytorch/nets"]
    assert zoo.load(f"pytorch/nets:{github.commits['dev']}", "version") == "dev"


def test_the_prompt_says_why_a_default_owner_is_asked(github, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    with pytest.raises(HubError, match="pytorch/nets was not trusted"):
        zoo.load(f"pytorch/nets:{github.commits['dev']}", "version")
    err = capsys.readouterr().err
    assert "pins a commit, which GitHub also serves from any fork of pytorch/nets" in err
    assert "Trust this repository" in err and trust.trusted() == []
