"""A read-only zoo home (a cache copied onto a read-only mount, a shared cache one may only read): verified files
are still served, and whatever would have to write is one clear error that names the path.

The home is made truly read-only, for root too (chmod does not bind root), by a read-only bind mount in a user
and mount namespace (`unshare -rm`); the scenario runs in that child and reports back as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT

import zoo
from zoo.models.mlp import make_mlp
from zoo.store import paths

UNSHARE = shutil.which("unshare")

SCENARIO = r"""
import contextlib, io, json, os, sys
import torch, zoo
from zoo.cli import main

def cli(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return {"code": code, "err": err.getvalue()}

home = os.environ["ZOO_HOME"]
report = {"writable": os.access(home, os.W_OK)}
model = zoo.get_model("mlp", weights="mlp.ro", offline=True)
report["loaded"] = float(model.output_layer.weight.sum())
report["rm"] = cli("cache", "rm", "mlp.ro")
report["prune"] = cli("cache", "prune", "--max-size", "0")
report["fetch"] = cli("fetch", "mlp.remote")
print(json.dumps(report))
"""


def namespaces_work() -> bool:
    if UNSHARE is None:
        return False
    probe = subprocess.run([UNSHARE, "-rm", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(
    not namespaces_work(), reason="needs unprivileged user and mount namespaces (unshare -rm)"
)
def test_a_read_only_home_serves_verified_files_and_refuses_writes_in_one_line(test_manifest, server):
    reference = make_mlp()
    cache = test_manifest(
        {
            "mlp.ro": (reference.state_dict(), {}),
            "mlp.remote": (make_mlp().state_dict(), {"file_name": "remote.pth"}),
        }
    )
    server.files["/remote.pth"] = (cache / "remote.pth").read_bytes()
    entry = zoo.get_weights("mlp.remote")
    manifest = json.loads(zoo.weights.manifest.manifest_path().read_text())
    manifest["weights"]["mlp.remote"]["urls"] = [f"{server.url}/remote.pth"]
    zoo.weights.manifest.manifest_path().write_text(json.dumps(manifest))
    (cache / entry.file_name).unlink()  # only the server has it
    home = paths.home()
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    mount = f"mount --bind {home} {home} && mount -o remount,ro,bind {home} {home}"
    child = subprocess.run(
        [UNSHARE, "-rm", "sh", "-c", f'{mount} && exec "$0" -c "$1"', sys.executable, SCENARIO],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.splitlines()[-1])
    assert report["writable"] is False  # the mount held
    assert report["loaded"] == pytest.approx(float(reference.output_layer.weight.detach().sum()))
    ro_file = cache / zoo.get_weights("mlp.ro").file_name
    for command in ("rm", "prune", "fetch"):
        result = report[command]
        lines = result["err"].strip().splitlines()
        assert result["code"] == 1 and len(lines) == 1, (command, result)
        assert "Traceback" not in result["err"] and "read-only" in lines[0].lower(), (command, lines)
    assert str(ro_file) in report["rm"]["err"]
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before  # nothing changed
    assert torch.equal(
        torch.load(ro_file, weights_only=True)["output_layer.weight"], reference.output_layer.weight
    )
