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
