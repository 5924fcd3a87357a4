"""Hub trust: the trusted list, the prompt (only on a terminal), trust tied to the server a repo comes
from, and archive URL secrets kept out of messages and the list."""

import io
import json
import sys

import pytest

import zoo
from zoo.cli import main
from zoo.errors import HubError
from zoo.hub import trust
from zoo.hub.specs import parse_spec


class Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's answer typed in."""

    def isatty(self):
        return True


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_untrusted_repo_without_terminal_fails_with_the_command(forge, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal: never read
    with pytest.raises(HubError) as e:
        zoo.load("alice/nets", "version")
    # the forge is not github.com: the key and the command name it
    assert str(e.value) == (
        f"{forge.url}/alice/nets is not a trusted repository, so its hubconf.py was not run; if you trust it, "
        f"run `ZOO_GITHUB_URL={forge.url} zoo trust alice/nets` (or pass trust_repo=True, or --trust on the "
        "command line)"
    )
    assert forge.requests == []  # nothing was even downloaded
    assert sys.stdin.read() == "y\n"


def test_trusting_by_command_then_loading(forge, capsys, monkeypatch):
    key = f"{forge.url}/alice/nets"
    assert run(capsys, "trust", "alice/nets:dev") == (0, f"trusted {key}\n", "")
    assert zoo.load("alice/nets:dev", "version") == "dev"
    assert zoo.load("alice/nets:v1.0", "version", trust_repo="check") == "v1"
    code, out, _ = run(capsys, "trust", "--list", "--json")
    assert json.loads(out) == {"trusted": [key], "default_owners": list(trust.DEFAULT_OWNERS)}
    assert run(capsys, "trust", "--remove", "alice/nets") == (0, f"removed {key} from the trusted list\n", "")
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("alice/nets:dev", "version")
    code, _, err = run(capsys, "trust", "--remove", "pytorch/vision")
    assert code == 1 and err == f"zoo: error: {forge.url}/pytorch/vision is not on the trusted list\n"
    monkeypatch.delenv("ZOO_GITHUB_URL")  # github.com, where pytorch is trusted by default
    code, _, err = run(capsys, "trust", "--remove", "pytorch/vision")
    assert code == 1 and "not on the trusted list (its owner is trusted by default)" in err


def test_trust_repo_true_records_the_repo(forge):
    assert zoo.load("gitlab:group/sub/nets", "version", trust_repo=True) == "v2"
    assert trust.trusted() == [f"gitlab:{forge.url}/group/sub/nets"]
    assert zoo.load("gitlab:group/sub/nets:dev", "version") == "dev"


@pytest.mark.parametrize(("answer", "ok"), [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)])
def test_prompt_on_a_terminal(forge, monkeypatch, capsys, answer, ok):
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    if ok:
        assert zoo.load("alice/nets", "version") == "v2"
        assert trust.trusted() == [f"{forge.url}/alice/nets"]
    else:
        with pytest.raises(HubError, match="alice/nets was not trusted"):
            zoo.load("alice/nets", "version")
        assert trust.trusted() == []
    assert "Trust this repository" in capsys.readouterr().err


def test_trust_repo_false_asks_even_a_trusted_repo(forge, monkeypatch):
    trust.add(f"{forge.url}/alice/nets")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    with pytest.raises(HubError, match="was not trusted"):
        zoo.load("alice/nets", "version", trust_repo=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert zoo.load("alice/nets", "version", trust_repo=False) == "v2"  # nobody to ask; already trusted


def test_default_owners_and_local_dirs_need_no_trust(tmp_path):
    assert trust.is_trusted("pytorch/vision") and trust.is_trusted("facebookresearch/dino")
    assert not trust.is_trusted("gitlab:pytorch/vision") and not trust.is_trusted("pytorchx/vision")
    trust.check_trust(parse_spec("pytorch/vision:v0.10.0"))
    trust.check_trust(parse_spec(tmp_path), trust_repo=False)
    with pytest.raises(HubError, match="trust_repo must be True, False, 'check' or None"):
        trust.check_trust(parse_spec("pytorch/vision"), trust_repo="yes")
    assert trust.trust_command(parse_spec("https://h.invalid/a b.zip".replace(" ", "%20"))) == (
        "zoo trust https://h.invalid/a%20b.zip"
    )
    url = "https://h.invalid/a.zip?x=1&y=2"
    assert (
        trust.trust_command(parse_spec(url)) == "zoo trust https://h.invalid/a.zip"
    )  # the query may be a secret


def test_trust_cli_errors(capsys, tmp_path):
    code, _, err = run(capsys, "trust")
    assert code == 1 and "name a repo" in err
    code, _, err = run(capsys, "trust", str(tmp_path))
    assert code == 1 and "local repos are always trusted" in err
    code, _, err = run(capsys, "trust", "not a spec")
    assert code == 1 and err.startswith("zoo: error: malformed hub spec 'not a spec'")
    with pytest.raises(SystemExit) as e:
        main(["trust", "--list", "--remove", "a/b"])
    assert e.value.code == 2


def test_cli_without_terminal_exits_1_with_one_line(forge, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert run(capsys, "list", "bob/tools") == (
        1,
        "",
        f"zoo: error: {forge.url}/bob/tools is not a trusted repository, so its hubconf.py was not run; if you "
        f"trust it, run `ZOO_GITHUB_URL={forge.url} zoo trust bob/tools` (or pass trust_repo=True, or --trust on "
        "the command line)\n",
    )
    assert run(capsys, "list", "bob/tools", "--trust")[:2] == (0, "version\n")


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
    home = zoo.store.paths.home()
    assert not [p for p in home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


def test_trust_repo_none_is_check_not_torch_hubs_silent_trust(forge, no_terminal):
    # torch.hub 2.14 would add the repo to its list without asking; zoo asks, or fails without a terminal
    with pytest.raises(HubError, match="not a trusted repository"):
        zoo.load("alice/nets", "version", trust_repo=None)
    assert trust.trusted() == [] and forge.requests == []


def test_under_torchrun_only_rank_0_asks_and_the_others_follow_its_answer(forge, monkeypatch, capsys):
    import threading

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))  # a terminal, yet rank 1 must not ask
    timer = threading.Timer(0.5, trust.add, args=(f"{forge.url}/alice/nets",))  # rank 0 says yes
    timer.start()
    try:
        assert zoo.load("alice/nets", "version") == "v2"
    finally:
        timer.cancel()
    err = capsys.readouterr().err
    assert "waiting for rank 0's answer" in err and "Trust this repository" not in err


def test_a_rank_whose_rank_0_never_trusts_fails_in_time_with_the_command(forge, monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("ZOO_TRUST_WAIT", "0.3")
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    with pytest.raises(HubError, match="rank 0 did not trust it within 0.3 s.*zoo trust"):
        zoo.load("alice/nets", "version")
    assert trust.trusted() == []
