import pytest

from zoo.cli import main
from zoo.cli.hub import RESERVED_KWARGS


@pytest.mark.parametrize("name", RESERVED_KWARGS)
def test_load_options_are_not_entry_point_kwargs(forge, capsys, name):
    assert main(["load", "alice/nets:dev", "version", "--trust", "-k", f"{name}=True"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"zoo: error: --kwarg '{name}=True': {name} is an option of zoo load itself, not of the entry point "
        "(use --offline, --force-reload or --trust)\n"
    )
    assert forge.requests == []  # refused before anything is fetched


@pytest.mark.parametrize(("name", "which"), [("repo_or_dir", "REPO"), ("model", "ENTRY")])
def test_load_positional_names_are_not_entry_point_kwargs(forge, capsys, name, which):
    assert main(["load", "alice/nets:dev", "version", "--trust", "-k", f"{name}=x"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"zoo: error: --kwarg '{name}=x': {name} is zoo.load's own {which} argument, so no entry point can "
        "receive it (as with torch.hub.load)\n"
    )
    assert forge.requests == []


def test_help_shows_the_docstring_dedented_while_zoo_help_returns_it_as_written(tmp_path, capsys):
    import json

    import zoo

    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "hubconf.py").write_text(
        'def net():\n    """A net.\n\n    Args:\n        none.\n    """\n\n\ndef bare():\n    pass\n'
    )
    assert zoo.help(repo, "net") == "A net.\n\n    Args:\n        none.\n    "
    assert main(["help", str(repo), "net"]) == 0
    assert capsys.readouterr().out == "A net.\n\nArgs:\n    none.\n"
    assert main(["help", str(repo), "net", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["doc"] == "A net.\n\nArgs:\n    none."
    assert zoo.help(repo, "bare") is None
    assert main(["help", str(repo), "bare"]) == 0
    assert capsys.readouterr().out == "bare has no docstring\n"


# --- hardening (issue 12): secrets in the echoed spec, --kwarg the entry point does not take ---


def test_load_and_help_never_echo_an_archive_urls_secret(forge, capsys):
    import json

    from conftest import PLANTED_SECRET

    plain = f"{forge.url}/alice/nets/archive/dev.zip"
    url = f"{plain}?private_token={PLANTED_SECRET}#frag"
    assert main(["load", url, "net", "--trust", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["repo"] == plain
    assert main(["load", url, "net", "--trust"]) == 0
    assert PLANTED_SECRET not in "".join(capsys.readouterr())
    assert main(["help", url, "net", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repo"] == plain
    assert main(["help", url, "net"]) == 0
    assert main(["list", url]) == 0
    assert PLANTED_SECRET not in "".join(capsys.readouterr())
    assert forge.requests[0].path.endswith(f"?private_token={PLANTED_SECRET}")  # the server still gets it


def test_trust_echoes_no_secret_of_a_line_or_a_spec(capsys):
    from conftest import PLANTED_SECRET

    from zoo.hub import trust

    line = f"http://127.0.0.1:9/x.zip?sig={PLANTED_SECRET}"  # a hand-edited line of the list
    trust.trust_file().parent.mkdir(parents=True)
    trust.trust_file().write_text(line + "\n")
    assert main(["trust", "--remove", line, "--json"]) == 0
    assert capsys.readouterr().out == '{\n  "repo": "http://127.0.0.1:9/x.zip",\n  "trusted": false\n}\n'
    assert main(["trust", f"http://user:{PLANTED_SECRET}@127.0.0.1:9/x.zip"]) == 1
    assert main(["trust", f"http://127.0.0.1:9/x.zip?token={PLANTED_SECRET}", "--json"]) == 0
    assert PLANTED_SECRET not in "".join(capsys.readouterr())
    assert trust.trusted() == ["http://127.0.0.1:9/x.zip"]


TYPED = '''
import torch


def net(pretrained=False, width=4):
    """Fixed keyword arguments."""
    return torch.nn.Linear(width, 2)


def passes_on(pretrained=False, **kwargs):
    """Hands its keyword arguments to torch.nn.Linear, as zoo's resnet18 hands them to torchvision."""
    return torch.nn.Linear(2, 2, **kwargs)


def own_type_error(pretrained=False):
    """A bug of the entry point itself."""
    raise TypeError("a bug of the repo")
'''


@pytest.fixture
def typed_repo(tmp_path):
    repo = tmp_path / "typed"
    repo.mkdir()
    (repo / "hubconf.py").write_text(TYPED)
    return repo


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["net", "-k", "bogus=1"], "entry point net does not take bogus (takes: pretrained, width)"),
        (["net", "-k", "bogus=1", "-k", "other=2"], "entry point net does not take bogus, other (takes: "),
        (["net", "-k", "width=2", "-k", "pretrained=1", "-k", "x=1"], "entry point net does not take x"),
        (["passes_on", "-k", "bogus=1"], "entry point passes_on rejects --kwarg bogus: "),
        (["passes_on", "-k", "dtype=5"], "entry point passes_on rejects --kwarg dtype: "),
    ],
)
def test_a_kwarg_the_entry_point_does_not_take_is_one_line(typed_repo, capsys, argv, message):
    assert main(["load", str(typed_repo), *argv]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"zoo: error: {message}") and err.count("\n") == 1


def test_the_python_api_still_raises_the_entry_points_own_type_error(typed_repo, capsys):
    import zoo
    from zoo.errors import ZooError

    # as torch.hub.load: a keyword the entry point lacks is the TypeError of the call itself
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'") as e:
        zoo.load(typed_repo, "net", bogus=1)
    assert not isinstance(e.value, ZooError)
    with pytest.raises(TypeError, match="^a bug of the repo$"):
        zoo.load(typed_repo, "own_type_error")
    # and the CLI does not dress a bug of the repo as the user's mistake: no --kwarg was given
    with pytest.raises(TypeError, match="^a bug of the repo$"):
        main(["load", str(typed_repo), "own_type_error"])
    assert main(["load", str(typed_repo), "net", "-k", "width=3", "--json"]) == 0
    assert '"num_params": 8' in capsys.readouterr().out


@pytest.mark.parametrize(
    "text",
    ["-" * 60_000 + "1", "~" * 3_000 + "1", "(" * 5_000, "[" * 999, "1" * 5_000, "not " * 250 + "1"],
)
def test_a_hostile_kwarg_value_is_a_string_not_a_crash(text):
    from zoo.cli.hub import parse_kwarg

    name, value = parse_kwarg(f"x={text}")
    assert name == "x" and value == text


def test_kwarg_values_are_still_python_literals():
    from zoo.cli.hub import parse_kwarg

    assert [
        parse_kwarg(f"x={t}")[1] for t in ("3", "-1", "True", "'a'", "[1, 2]", "{'a': (1, 2)}", "cpu")
    ] == [
        3,
        -1,
        True,
        "a",
        [1, 2],
        {"a": (1, 2)},
        "cpu",
    ]
