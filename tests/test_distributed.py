"""zoo.distributed under a real torchrun (2 processes, gloo on 127.0.0.1): one download per cache."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

import zoo
from zoo.distributed import World, world
from zoo.errors import ZooError
from zoo.weights import manifest

TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.fixture
def job(tmp_path, server, monkeypatch):
    """A manifest entry served by the test server, and a way to run the job script under torchrun."""
    state = zoo.get_model("mlp", weights=None).state_dict()
    torch.save(state, tmp_path / "mlp-dist.pth")
    data = (tmp_path / "mlp-dist.pth").read_bytes()
    server.files["/mlp-dist.pth"] = data
    raw = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    raw["weights"]["mlp.dist"] = {
        "arch": "mlp",
        "file_name": "mlp-dist.pth",
        "urls": [f"{server.url}/mlp-dist.pth"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "meta": {},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "manifest.json"))

    def run(**env: str) -> list[dict]:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        out.mkdir()
        command = [
            str(TORCHRUN),
            "--standalone",
            "--nproc_per_node=2",
            str(REPO_ROOT / "tests" / "distributed_job.py"),
        ]
        environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **env}
        done = subprocess.run(
            [*command, "mlp.dist", str(out)], env=environ, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]

    return server, run


def test_ranks_sharing_a_cache_download_once_and_both_have_the_file(job):
    server, run = job
    reports = run()
    assert [r["result"] for r in reports] == ["ok", "ok"]
    assert [r["leader"] for r in reports] == [0, 0]  # one home: rank 0 leads both
    assert len(server.requests_for("/mlp-dist.pth")) == 1


def test_two_nodes_with_local_caches_download_once_each(job, tmp_path):
    server, _ = job
    # Two torchrun invocations, as on two machines (--nnodes=2 on 127.0.0.1), each with a zoo home of its own
    # and two ranks.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "nodes"
    out.mkdir()
    nodes = []
    for node in range(2):
        command = [str(TORCHRUN), "--nnodes=2", f"--node_rank={node}", "--nproc_per_node=2"]
        command += ["--master_addr=127.0.0.1", f"--master_port={port}"]
        command += [str(REPO_ROOT / "tests" / "distributed_job.py"), "mlp.dist", str(out)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
        env["ZOO_HOME"] = str(tmp_path / f"home{node}")
        nodes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for p in nodes:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(4)]
    assert [r["result"] for r in reports] == ["ok"] * 4
    assert [r["leader"] for r in reports] == [0, 0, 2, 2]  # the lowest rank of each node's home
    assert len(server.requests_for("/mlp-dist.pth")) == 2


def test_a_failing_download_is_the_same_error_on_every_rank_within_seconds(job):
    server, run = job
    server.files.pop("/mlp-dist.pth")  # 404: not retried
    reports = run()
    leader, other = reports
    assert leader["result"].startswith("error: ") and "HTTP 404" in leader["result"]
    assert other["result"].startswith("error: rank 0 (the leader of this cache) failed: ")
    assert leader["result"][len("error: ") :] in other["result"]
    assert other["s"] < 30


def test_world_reads_torchrun_and_slurm_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert world() == World()
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4(x2)")
    assert world() == World(rank=5, world_size=8, local_rank=1, local_world_size=4)
    monkeypatch.setenv("RANK", "2")  # torchrun's names win
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert world().rank == 2 and world().world_size == 4 and world().is_distributed


@pytest.mark.parametrize(("name", "value"), [("RANK", "x"), ("RANK", "9")])
def test_a_bad_job_description_is_one_clear_error(monkeypatch, name, value):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv(name, value)
    with pytest.raises(ZooError, match="RANK='x' is not a whole number|inconsistent job"):
        world()


def test_one_process_runs_the_body_and_prefetch_needs_no_process_group(job, monkeypatch):
    server, _ = job
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    ran = []
    with zoo.distributed.leader_first():
        ran.append(True)
    zoo.distributed.prefetch("mlp.dist")
    assert ran == [True] and len(server.requests_for("/mlp-dist.pth")) == 1


def test_zoos_own_commands_start_under_slurm_variables_alone(tmp_path):
    # As `srun --ntasks=2` starts them: no RANK or WORLD_SIZE, only SLURM's variables and a rendezvous address.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = (
        "import torch.distributed as dist, zoo.distributed as d; assert d.init_for_command(); "
        "print(dist.get_rank(), dist.get_world_size()); dist.destroy_process_group()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(REPO_ROOT), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), SLURM_NTASKS="2")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**env, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r), "SLURM_NTASKS_PER_NODE": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert sorted(o.strip() for o, _ in outs) == ["0 2", "1 2"]


def test_a_read_only_zoo_home_makes_each_rank_its_own_leader_and_nothing_hangs(job, tmp_path):
    server, run = job
    home = tmp_path / "ro_home"
    home.mkdir()
    (home / "probes").write_text("a file where the probes folder would be: nothing can be written there")
    reports = run(ZOO_HOME=str(home))
    assert [r["leader"] for r in reports] == [0, 1] and [r["result"] for r in reports] == ["ok", "ok"]
