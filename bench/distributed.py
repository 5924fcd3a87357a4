"""zoo under torchrun: throughput of `zoo classify -o` for 1, 2, ... ranks, and the costs of sharding itself.

What a 2-core machine can show honestly: more ranks cannot make it faster (the ranks share the same two cores),
so the img/s rows show the overhead of sharding at equal compute, not scaling; a bigger machine draws the
scaling curve with `--ranks 1 2 4 8`. Also measured: start-up to the first record (process group, model build,
one unit), a run killed halfway and started again against an uninterrupted one, and the resume scan and merge per
million records (the part files a run of a million images leaves).
A random resnet18 weight file stands in for real weights (no download here; the cost is the same).

    python bench/distributed.py [--images 64] [--ranks 1 2] [--records 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.classify import make_folder  # noqa: E402
from zoo.tasks.predictions import Job  # noqa: E402

TORCHRUN = Path(sys.executable).with_name("torchrun")


def classify_command(
    ranks: int, folder: Path, weights: Path, out: Path, batch: int
) -> tuple[list[str], dict]:
    """`torchrun --nproc_per_node=ranks -m zoo classify folder -o out`, and its environment."""
    command = [str(TORCHRUN), "--standalone", f"--nproc_per_node={ranks}", "-m", "zoo", "classify"]
    command += [str(folder), "--model", "resnet18", "--weights", str(weights), "-o", str(out)]
    command += ["--batch-size", str(batch), "--device", "cpu"]
    # Each rank gets its share of the cores, as torchrun users set it.
    threads = str(max(1, (os.cpu_count() or 1) // ranks))
    return command, {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads}


def classify_run(ranks: int, folder: Path, weights: Path, out: Path, batch: int) -> float:
    """Seconds for the classify command of `ranks` ranks (a fresh run: --restart)."""
    command, env = classify_command(ranks, folder, weights, out, batch)
    start = time.perf_counter()
    done = subprocess.run([*command, "--restart"], env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"torchrun failed:\n{done.stderr[-2000:]}")
    return took


def killed_and_restarted(ranks: int, folder: Path, weights: Path, out: Path, batch: int, whole: float) -> str:
    """Kill a run (the whole torchrun group) once half its units are in the parts, start it again, and
    compare: seconds and units done twice against the uninterrupted run."""
    import signal

    command, env = classify_command(ranks, folder, weights, out, batch)
    units = -(-len(list(folder.iterdir())) // batch)
    parts = out.with_name(out.name + ".parts")
    start = time.perf_counter()
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    done = 0
    while first.poll() is None and done < units // 2:
        done = (
            sum(len(p.read_text().splitlines()) for p in parts.glob("rank-*.jsonl")) if parts.is_dir() else 0
        )
        time.sleep(0.01)
    # torchrun's workers run in sessions of their own: killed one by one, then torchrun.
    for entry in os.listdir("/proc"):
        try:
            if int(Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[1]) == first.pid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = time.perf_counter() - start
    kept = len(Job(out, sorted(folder.iterdir()), batch, {}).finished())
    start = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=True)
    again = time.perf_counter() - start
    return (
        f"killed after {killed_at:.2f} s with {kept}/{units} units kept; the restart took {again:.2f} s: "
        f"{killed_at + again - whole:.2f} s more than one uninterrupted run ({whole:.2f} s), of which the "
        f"second start-up is most; units done twice: at most the {ranks} in progress"
    )


def scan_and_merge(records: int, unit: int, folder: Path) -> tuple[float, float]:
    """Seconds to scan and to merge the part files of `records` records (two ranks' parts, whole units)."""
    paths = [Path(f"/data/img{i:07d}.jpg") for i in range(records)]
    job = Job(folder / "preds.jsonl", paths, unit, {"topk": 5})
    job.prepare(restart=True, leader=True)
    labels = [{"label": f"class {k}", "percent": 12.3456} for k in range(5)]
    for rank in range(2):
        with open(job.parts / f"rank-{rank}.jsonl", "w") as f:
            for u in range(rank, job.units, 2):
                rows = [
                    {"index": i, "path": str(paths[i]), "predictions": labels}
                    for i in range(u * unit, min((u + 1) * unit, records))
                ]
                f.write(json.dumps({"unit": u, "records": rows}) + "\n")
    start = time.perf_counter()
    finished = job.finished()
    scan = time.perf_counter() - start
    assert len(finished) == job.units
    start = time.perf_counter()
    job.merge()
    return scan, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    flags = [
        f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in Path("/proc/cpuinfo").read_text()
    ]
    print(f"{os.cpu_count()} cores ({', '.join(flags) or 'no AVX2'}), torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "images"
        folder.mkdir()
        make_folder(folder, args.images)
        weights = tmp / "resnet18.pth"
        import zoo

        torch.save(zoo.get_model("resnet18", weights=None).state_dict(), weights)
        start_up = classify_run(
            1, make_folder_of_one(tmp, folder), weights, tmp / "one.jsonl", args.batch_size
        )
        print(f"start-up to the first record (1 rank, 1 image): {start_up:.2f} s")
        print(f"{'ranks':>5} {'seconds':>8} {'img/s':>7} {'ratio':>6}")
        base = None
        outputs = []
        for ranks in args.ranks:
            out = tmp / f"r{ranks}.jsonl"
            took = classify_run(ranks, folder, weights, out, args.batch_size)
            base = base or took
            outputs.append(out.read_bytes())
            print(f"{ranks:>5} {took:>8.2f} {args.images / took:>7.2f} {base / took:>5.2f}x")
        print(f"same file from every world size: {all(o == outputs[0] for o in outputs)}")
        print(
            killed_and_restarted(args.ranks[-1], folder, weights, tmp / "killed.jsonl", args.batch_size, took)
        )
        scan, merge = scan_and_merge(args.records, args.batch_size * 4, tmp / "merge")
        per_million = 1_000_000 / args.records
        print(
            f"{args.records:,} records: resume scan {scan * per_million:.2f} s, merge {merge * per_million:.2f} s "
            "per million"
        )


def make_folder_of_one(tmp: Path, folder: Path) -> Path:
    one = tmp / "one"
    one.mkdir()
    first = sorted(folder.iterdir())[0]
    (one / first.name).write_bytes(first.read_bytes())
    return one


if __name__ == "__main__":
    main()
