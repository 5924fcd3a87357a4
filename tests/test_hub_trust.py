"""Trust is tied to the server a repo comes from, and archive URL secrets never reach messages or the list."""

import io
import sys

import pytest

import zoo
from zoo import trust
from zoo.cli import main
from zoo.errors import HubError
from zoo.hub_specs import parse_spec

pytest_plugins = ["forge"]


@pytest.fixture
def no_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def test_default_owners_are_trusted_on_github_only(monkeypatch, no_terminal):
    assert trust.is_trusted(parse_spec("pytorch/vision").trust_key)
    monkeypatch.setenv("ZOO_GITHUB_URL", "http://127.0.0.1:9")
    spec = parse_spec("pytorch/vision")
    assert not trust.is_trusted(spec.trust_key)
    with pytest.raises(HubError, match=r"^http://127\.0\.0\.1:9/pytorch/vision is not a trusted repository"):
        trust.check_trust(spec)


def test_default_owners_on_a_mirror_are_not_run(forge, no_terminal):
    forge.github["pytorch/nets"] = "nets"
    try:
        with pytest.raises(HubError, match="not a trusted repository"):
            zoo.load("pytorch/nets", "version")
        assert forge.requests == []
    finally:
        del forge.github["pytorch/nets"]


def test_trusting_a_repo_on_github_does_not_trust_it_on_a_mirror(forge, monkeypatch, capsys, no_terminal):
    monkeypatch.delenv("ZOO_GITHUB_URL")
    assert main(["trust", "alice/nets"]) == 0
    assert capsys.readouterr().out == "trusted alice/nets\n"
    assert trust.trusted() == ["alice/nets"]
    monkeypatch.setenv("ZOO_GITHUB_URL", forge.url)
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("alice/nets", "version")
    # the command the message names trusts the mirror's repo, and only that
    assert main(["trust", "alice/nets"]) == 0
    assert trust.trusted() == ["alice/nets", f"{forge.url}/alice/nets"]
    assert zoo.load("alice/nets", "version") == "v2"
    capsys.readouterr()
    # a line of the list can be removed as it is shown, whatever ZOO_GITHUB_URL says now
    monkeypatch.delenv("ZOO_GITHUB_URL")
    assert main(["trust", "--remove", f"{forge.url}/alice/nets"]) == 0
    assert trust.trusted() == ["alice/nets"]


def test_gitlab_keys_name_a_server_other_than_gitlab_com(forge, no_terminal):
    with pytest.raises(HubError) as e:
        zoo.load("gitlab:group/sub/nets", "version")
    assert f"run `ZOO_GITLAB_URL={forge.url} zoo trust gitlab:group/sub/nets`" in str(e.value)


SECRET = "SECRET-in-the-query"


def test_archive_url_secrets_stay_out_of_messages_and_the_trusted_list(forge, capsys, no_terminal):
    url = f"{forge.url}/alice/nets/archive/dev.zip?private_token={SECRET}"
    plain = f"{forge.url}/alice/nets/archive/dev.zip"
    with pytest.raises(HubError) as e:
        zoo.load(url, "version")
    assert SECRET not in str(e.value) and str(e.value).startswith(f"{plain} is not a trusted repository")
    assert f"`zoo trust {plain}`" in str(e.value)
    assert zoo.load(url, "version", trust_repo=True, verbose=True) == "dev"
    assert forge.requests[-1].path.endswith(f"?private_token={SECRET}")  # the server still gets it
    err = capsys.readouterr().err
    assert f"downloading {plain} from {plain}\n" in err and SECRET not in err
    assert trust.trusted() == [plain]
    # an error about the same URL
    missing = f"{forge.url}/alice/nets/archive/nope.zip?private_token={SECRET}"
    with pytest.raises(HubError, match="HTTP 404") as e:
        zoo.load(missing, "version", trust_repo=True)
    assert SECRET not in str(e.value)
    with pytest.raises(HubError, match="offline mode is on") as e:
        zoo.load(missing, "version", trust_repo=True, offline=True)
    assert SECRET not in str(e.value)
    # nor anything the zoo wrote
    home = zoo.cache.home()
    assert not [p for p in home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


def test_trust_repo_none_is_check_not_torch_hubs_silent_trust(forge, no_terminal):
    # torch.hub 2.14 would add the repo to its list without asking; zoo asks, or fails without a terminal
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("alice/nets", "version", trust_repo=None)
    assert trust.trusted() == [] and forge.requests == []
