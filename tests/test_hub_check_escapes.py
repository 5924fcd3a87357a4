"""zoo check against hubconfs that try every way out to a 127.0.0.1 listener the test opens: the listener
receives nothing, and each attempt is a reported problem (exit 1, valid --json)."""

import json
import socket

import pytest

from zoo.cli import main
from zoo.hub import check

HOSTILE = '''
"""Every way out."""
dependencies = ["torch"]

import _socket
import os
import socket
import subprocess
import sys

import torch

TCP, UDP = {tcp}, {udp}


def _net():
    return torch.nn.Linear(1, 1)


def via_socket(pretrained=False):
    """socket.create_connection."""
    try:
        socket.create_connection(("127.0.0.1", TCP), timeout=1)
    except Exception:
        pass
    return _net()


def via_low_level(pretrained=False):
    """_socket, connect_ex."""
    try:
        s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        s.connect_ex(("127.0.0.1", TCP))
    except Exception:
        pass
    return _net()


def via_udp(pretrained=False):
    """UDP sendto."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", UDP))
    except Exception:
        pass
    return _net()


def via_dns(pretrained=False):
    """getaddrinfo."""
    try:
        socket.getaddrinfo("localhost", TCP)
    except Exception:
        pass
    return _net()


def via_curl(pretrained=False):
    """subprocess running curl."""
    try:
        subprocess.run(["curl", "-s", "-m", "1", f"http://127.0.0.1:{{TCP}}/curl"])
    except Exception:
        pass
    return _net()


def via_system(pretrained=False):
    """os.system running curl."""
    try:
        os.system(f"curl -s -m 1 http://127.0.0.1:{{TCP}}/system")
    except Exception:
        pass
    return _net()


def via_exit(pretrained=False):
    """sys.exit."""
    sys.exit(3)


class _Odd(BaseException):
    pass


def via_base(pretrained=False):
    """A BaseException that is not an Exception."""
    raise _Odd("odd")
'''

EXPECTED = {
    "via_socket": "tries to reach the network (socket.getaddrinfo",
    "via_low_level": "tries to reach the network (socket.__new__",
    "via_udp": "tries to reach the network (socket.__new__",
    "via_dns": "tries to reach the network (socket.getaddrinfo ('localhost'",
    "via_curl": "starts a process (subprocess.Popen ['curl'",
    "via_system": "starts a process (os.system",
    "via_exit": "fails: SystemExit: 3",
    "via_base": "fails: _Odd: odd",
}


@pytest.fixture
def listeners():
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    yield tcp, udp
    tcp.close()
    udp.close()


def received_nothing(tcp, udp):
    with pytest.raises(BlockingIOError):
        tcp.accept()
    with pytest.raises(BlockingIOError):
        udp.recvfrom(10)
    return True


def hostile_repo(tmp_path, tcp, udp, extra=""):
    repo = tmp_path / "repo"
    repo.mkdir()
    text = HOSTILE.format(tcp=tcp.getsockname()[1], udp=udp.getsockname()[1]) + extra
    (repo / "hubconf.py").write_text(text)
    return repo


def assert_every_way_out_reported(problems):
    for entry, expected in EXPECTED.items():
        assert any(
            p.startswith(f"hubconf.py: {entry}(pretrained=False) ") and expected in p for p in problems
        ), (
            entry,
            problems,
        )
    assert len(problems) == len(EXPECTED)


def test_every_way_out_is_refused_and_reported_in_process(tmp_path, listeners):
    tcp, udp = listeners
    repo = hostile_repo(tmp_path, tcp, udp)
    assert_every_way_out_reported(check.check_repo(repo, in_process=True))
    assert received_nothing(tcp, udp)


def test_zoo_check_json_lists_every_attempt_from_its_child_process(tmp_path, listeners, capsys):
    tcp, udp = listeners
    repo = hostile_repo(tmp_path, tcp, udp)
    assert main(["check", str(repo), "--json"]) == 1
    assert_every_way_out_reported(json.loads(capsys.readouterr().out)["problems"])
    assert received_nothing(tcp, udp)


@pytest.mark.skipif(not check.namespace_command(), reason="no unprivileged network namespace here")
def test_native_code_cannot_reach_the_listener_from_the_namespace(tmp_path, listeners):
    # libc's system() starts curl without any Python audit event: only the namespace stops it.
    tcp, udp = listeners
    repo = tmp_path / "native"
    repo.mkdir()
    (repo / "hubconf.py").write_text(
        "dependencies = []\nimport ctypes\nctypes.CDLL(None).system("
        f'b"curl -s -m 2 http://127.0.0.1:{tcp.getsockname()[1]}/native")\n'
    )
    assert check.check_repo(repo) == [
        "hubconf.py: no `dependencies = [...]` list (torch.hub users read it to install)"
    ]
    assert received_nothing(tcp, udp)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os\nos._exit(7)\n", "hubconf.py: the check ended (exit status 7) before reporting"),
        ("import sys\nsys.exit(0)\n", "failed to import: SystemExit: 0"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "the check ended (signal 9)"),
    ],
)
def test_a_hubconf_that_ends_the_process_is_a_problem_not_a_pass(tmp_path, code, expected):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text("dependencies = []\n" + code)
    problems = check.check_repo(repo)
    assert any(expected in p for p in problems), problems


def test_a_hubconf_that_hangs_is_stopped_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "CHECK_TIMEOUT", 2.0)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text("dependencies = []\nwhile True:\n    pass\n")
    assert check.check_repo(repo)[-1] == (
        "hubconf.py: importing it and building its entry points did not finish within 2 s"
    )
