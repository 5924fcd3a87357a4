"""Hostile snapshots and secret-carrying specs: one HubError (one line from the CLI), never a traceback, and
never a secret in a message, the trusted list or the prompt."""

import io
import json
import re
import socket
import sys
import zipfile

import pytest
from conftest import PLANTED_SECRET

import zoo
from zoo.cli import main
from zoo.errors import HubError
from zoo.hub import trust


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


HOSTILE = {
    "syntax": ({"r/hubconf.py": b"def broken(:\n"}, r"hubconf.py:1: syntax error"),
    "folder": ({"r/hubconf.py/x.py": b""}, "no hubconf.py at its top level"),
    "latin-1": ({"r/hubconf.py": b"NAME = '\xe9t\xe9'\n"}, "syntax error: .*utf-8"),
    "deps-str": (
        {"r/hubconf.py": b"dependencies = 'torch'\n"},
        "`dependencies` must be a list of module names",
    ),
    "deps-dict": ({"r/hubconf.py": b"dependencies = {'a': 1}\n"}, "must be a list of module names"),
    "deps-expr": ({"r/hubconf.py": b"dependencies = 5 + 0\n"}, "must be a list of module names, not 5"),
    "deps-newline": ({"r/hubconf.py": b"dependencies = ['a\\nb']\n"}, "must be a list of module names"),
    "exit": ({"r/hubconf.py": b"import sys\nsys.exit(0)\n"}, "failed to import: SystemExit: 0"),
    "base": (
        {"r/hubconf.py": b"class Odd(BaseException):\n    pass\n\nraise Odd('odd')\n"},
        "failed to import: Odd: odd",
    ),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_snapshot_is_one_hub_error(server, capsys, kind):
    files, message = HOSTILE[kind]
    server.files[f"/{kind}.zip"] = zip_of(files)
    url = f"{server.url}/{kind}.zip"
    with pytest.raises(HubError, match=message):
        zoo.list(url, trust_repo=True)
    with pytest.raises(HubError, match=message):
        zoo.load(url, "anything", trust_repo=True)
    capsys.readouterr()
    assert main(["list", url, "--trust"]) == 1  # a sys.exit(0) in the hubconf does not end zoo with 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("zoo: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("kind", [k for k in HOSTILE if k != "folder"])
def test_zoo_check_reports_a_hostile_hubconf(tmp_path, capsys, kind):
    files, message = HOSTILE[kind]
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_bytes(files["r/hubconf.py"])
    assert main(["check", str(repo), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    # zoo check reads `dependencies` without running the file: an expression is reported as such
    message = f"{message}|is not a literal list of module names"
    assert problems and any(re.search(message, p) for p in problems), problems


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failing_urls(server):
    server.files["/page.zip"] = b"<html>not an archive</html>"
    query = f"?private_token={PLANTED_SECRET}"
    return {
        "404": f"{server.url}/missing.zip{query}",
        "refused": f"http://127.0.0.1:{closed_port()}/a.zip{query}",
        "bad archive": f"{server.url}/page.zip{query}",
        "password": f"http://user:{PLANTED_SECRET}@127.0.0.1:{closed_port()}/a.zip",
    }


@pytest.mark.parametrize("case", ["404", "refused", "bad archive", "password"])
def test_a_secret_in_a_failing_archive_url_is_never_shown(server, capsys, case):
    url = failing_urls(server)[case]
    with pytest.raises(HubError) as e:
        zoo.load(url, "version", trust_repo=True)
    assert PLANTED_SECRET not in str(e.value) + capsys.readouterr().err
    assert main(["load", url, "version", "--trust"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("zoo: error: ") and PLANTED_SECRET not in out + err
    assert not [
        p
        for p in zoo.store.paths.home().rglob("*")
        if p.is_file() and PLANTED_SECRET.encode() in p.read_bytes()
    ]


def test_the_trusted_list_and_the_prompt_never_hold_the_secret(server, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    url = f"{server.url}/missing.zip?private_token={PLANTED_SECRET}"
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    with pytest.raises(HubError, match="HTTP 404") as e:
        zoo.load(url, "version")
    assert PLANTED_SECRET not in str(e.value) + capsys.readouterr().err
    assert trust.trusted() == [f"{server.url}/missing.zip"]
    assert main(["trust", "--list"]) == 0 and PLANTED_SECRET not in capsys.readouterr().out
