"""bench/gpu.py without a GPU: the dry run goes through every stage, a run without CUDA stops with one line, and
the budget stops a run and still prints its summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "bench" / "gpu.py"
VARIANTS = ["fp32 eager", "bf16 channels-last", "bf16 + compile"]
NUMBER = r"(\d+(?:\.\d+)?)"


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The script in a fresh process, with its own homes, no GPU and no way out to the network."""
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "ZOO_HOME": str(tmp_path / "zoo_home"),
        "TORCH_HOME": str(tmp_path / "torch_home"),
        "ZOO_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",  # the same test on a machine with a GPU
        # Anything that tried the network would meet a closed port.
        **{name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "",
        "no_proxy": "",
    }
    for name in ("ZOO_MANIFEST", "ZOO_WEIGHTS_MIRROR", "ZOO_GITHUB_URL", "ZOO_GITLAB_URL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def positive(match: re.Match | None, what: str, out: str) -> list[float]:
    assert match is not None, f"no row for {what}:\n{out}"
    values = [float(v) for v in match.groups()]
    assert all(v > 0 for v in values), f"{what}: {match.group(0)}"
    return values


def test_dry_run_on_the_cpu_prints_every_row(tmp_path):
    # resnet18 rather than the default resnet50: the same code paths in half the time on 2 cores.
    proc = run_bench(tmp_path, "--device", "cpu", "--dry-run", "--model", "resnet18")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "dry run" in out

    # Time to first output: torchvision, zoo, and zoo with a plain copy instead of its pinned one (CUDA only).
    for what in (
        r"torchvision resnet18\(weights=DEFAULT\)\.to\(device\)",
        r'zoo\.get_model\("resnet18", device=device\)',
    ):
        positive(re.search(rf"^  {what} +{NUMBER} +{NUMBER}x +n/a$", out, re.M), what, out)
    assert re.search(
        r'^  zoo\.get_model\("resnet18"\)\.to\(device\), plain copy +n/a \(needs CUDA\)$', out, re.M
    )

    # Throughput: the book's loop, then every variant on files and on the decoded cache at both batch sizes.
    positive(
        re.search(rf"^  files +book loop \(fp32\) +1 +{NUMBER} +{NUMBER}x +n/a$", out, re.M), "book", out
    )
    for inputs in ("files", "decoded"):
        for variant in VARIANTS:
            for batch in (1, 2):
                what = f"{inputs} {variant} batch {batch}"
                row = rf"^  {inputs} +{re.escape(variant)} +{batch} +{NUMBER} +{NUMBER}x +{NUMBER}x +n/a$"
                img_s, vs_fp32, _ = positive(re.search(row, out, re.M), what, out)
                if variant == "fp32 eager":
                    assert vs_fp32 == 1.0

    # Memory: no GPU, so the process's peak resident set instead.
    positive(
        re.search(
            rf"^peak GPU memory: n/a on cpu; peak resident set size of the process {NUMBER} MiB$", out, re.M
        ),
        "memory",
        out,
    )

    # The summary: compile times, ratios of every variant against eager fp32 and the book's loop, the goal.
    summary = out[out.index("\nsummary:") :]
    positive(
        re.search(rf"compilation included \(in no row\): batch 1 {NUMBER} s, batch 2 {NUMBER} s", summary),
        "compile",
        out,
    )
    for inputs in ("files", "decoded"):
        for variant in VARIANTS:
            line = rf"^  {inputs} +{re.escape(variant)} +vs fp32 {NUMBER}x \(batch 1\), {NUMBER}x \(batch 2\); vs book {NUMBER}x \(batch 1\), {NUMBER}x \(batch 2\)$"
            positive(re.search(line, summary, re.M), f"summary {inputs} {variant}", out)
        best = rf"^  {inputs} +best: .+, batch \d, {NUMBER} img/s = {NUMBER}x the book's loop \((?:met|not met)\); {NUMBER}x zoo's eager fp32 at that batch"
        positive(re.search(best, summary, re.M), f"goal {inputs}", out)
    assert "goal (issue 16): >= 10x the eager fp32 throughput" in summary


def test_without_cuda_a_real_run_stops_with_one_line(tmp_path):
    proc = run_bench(tmp_path)  # --device cuda is the default
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "CUDA is not available" in lines[0] and "--device cpu --dry-run" in lines[0]


def test_the_budget_stops_the_run_and_prints_what_it_has(tmp_path):
    proc = run_bench(tmp_path, "--device", "cpu", "--dry-run", "--model", "resnet18", "--budget", "1.5")
    out = proc.stdout
    assert proc.returncode == 3, out + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert re.search(r"^stopped: the budget of 1\.5 s ran out during .+$", out, re.M), out
    assert "\nsummary:" in out and "peak GPU memory: n/a on cpu" in out
