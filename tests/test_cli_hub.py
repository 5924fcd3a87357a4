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
