"""`zoo classify -o` and `zoo generate`: one record per image, resumable, and the same output from one process or two under torchrun."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, image_folder, kill_tree, photo

from zoo.cli import main
from zoo.tasks.predictions import Job


@pytest.fixture
def pics(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(5):
        photo(40 + i, 30, seed=i).save(folder / f"p{i}.png")
    (folder / "p5.png").write_bytes(b"not an image")
    return folder


CLASSIFY = ["--weights", "resnet18.test", "--batch-size", "2", "--topk", "2"]


def classify(pics, out, *extra):
    return main(["classify", str(pics), *CLASSIFY, "-o", str(out), *extra])


def torchrun_zoo(*argv: str) -> list[str]:
    """The command line of `torchrun --standalone --nproc_per_node=2 -m zoo ARGV` (run with environment())."""
    torchrun = Path(sys.executable).with_name("torchrun")
    return [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "zoo", *argv]


def environment() -> dict[str, str]:
    """This test's environment (its zoo home and manifest), with the checkout importable."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}


def run_torchrun(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run(torchrun_zoo(*argv), env=environment(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_image_gets_one_record_in_order_and_an_unreadable_one_is_a_record(
    favouring, pics, tmp_path, capsys
):
    out = tmp_path / "preds.jsonl"
    assert classify(pics, out) == 0
    got = records(out)
    assert [r["index"] for r in got] == list(range(6))
    assert [Path(r["path"]).name for r in got] == [f"p{i}.png" for i in range(6)]
    assert all(r["predictions"][0]["label"] == "golden retriever" for r in got[:5])
    assert "p5.png" in got[5]["error"] and "predictions" not in got[5]
    assert "wrote 6 records" in capsys.readouterr().out
    assert not (tmp_path / "preds.jsonl.parts").exists()  # merged, then dropped
    assert classify(pics, tmp_path / "again.jsonl", "--fail-on-error") == 1


def test_csv_has_a_column_pair_per_rank_of_the_topk(favouring, pics, tmp_path):
    out = tmp_path / "preds.csv"
    assert classify(pics, out) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["index", "path", "label1", "percent1", "label2", "percent2", "error"]
    assert rows[1][2] == "golden retriever" and rows[6][2] == "" and "p5.png" in rows[6][6]


def test_a_restart_skips_finished_units_and_ignores_a_torn_line(favouring, pics, tmp_path):
    out = tmp_path / "preds.jsonl"
    assert classify(pics, tmp_path / "whole.jsonl") == 0
    whole = records(tmp_path / "whole.jsonl")
    # As a crash would leave it: unit 1 done (marked so it can be told from a recomputed one), a torn line.
    paths = sorted(pics.iterdir())
    settings = {"model": None, "weights": "resnet18.test", "topk": 2, "precision": "fp32", "categories": None}
    job = Job(out, paths, 2, settings)
    job.prepare(restart=False, leader=True)
    marked = [{**r, "path": r["path"] + " (from the part)"} for r in whole[2:4]]
    part = job.parts / "rank-0.jsonl"
    part.write_text(json.dumps({"unit": 1, "records": marked}) + "\n" + '{"unit": 2, "records": [{"ind')
    assert classify(pics, out) == 0
    got = records(out)
    assert got[2:4] == marked  # skipped, taken from the part
    assert got[:2] == whole[:2] and got[4:] == whole[4:]  # the torn unit was done again


def test_a_run_of_other_settings_is_refused_unless_restart(favouring, pics, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    job = Job(out, sorted(pics.iterdir()), 2, {"topk": 9})
    job.prepare(restart=False, leader=True)
    assert classify(pics, out) == 1
    assert "pass --restart" in capsys.readouterr().err
    assert classify(pics, out, "--restart") == 0 and len(records(out)) == 6


def test_a_bad_output_suffix_is_refused_before_any_work(pics, tmp_path, capsys):
    assert main(["classify", str(pics), "-o", str(tmp_path / "preds.txt")]) == 1
    assert ".jsonl or .csv" in capsys.readouterr().err


def test_two_ranks_under_torchrun_write_the_single_process_file(favouring, pics, tmp_path):
    assert classify(pics, tmp_path / "one.jsonl") == 0
    done = run_torchrun("classify", str(pics), *CLASSIFY, "-o", str(tmp_path / "two.jsonl"))
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert done.stdout.count("wrote 6 records") == 1  # rank 0 only


def test_two_ranks_generate_the_single_process_grid(tmp_path):
    grid = ["generate", "-n", "40", "--weights", "digits", "--seed", "7", "-o"]
    assert main([*grid, str(tmp_path / "one.png")]) == 0
    run_torchrun(*grid, str(tmp_path / "two.png"))
    assert (tmp_path / "two.png").read_bytes() == (tmp_path / "one.png").read_bytes()


def test_two_ranks_translate_a_folder_as_one_process_does_and_skip_existing_resumes(tmp_path, capsys):
    import torch

    import zoo

    torch.save(zoo.get_model("cyclegan", weights=None).state_dict(), tmp_path / "g.pth")
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(3):
        photo(40, 30 + i, seed=i).save(pics / f"h{i}.png")
    common = ["--weights", str(tmp_path / "g.pth"), "--size", "32"]
    assert main(["translate", str(pics), "-o", str(tmp_path / "one"), *common]) == 0
    run_torchrun("translate", str(pics), "-o", str(tmp_path / "two"), *common)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(names) == 3
    for name in names:
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    # One input to one output file under torchrun: rank 0 writes it, the other rank has nothing to do.
    run_torchrun("translate", str(pics / "h0.png"), "-o", str(tmp_path / "single.png"), *common)
    assert (tmp_path / "single.png").read_bytes() == (tmp_path / "one" / "h0.png").read_bytes()
    (tmp_path / "two" / names[1]).unlink()  # as a run cut short leaves it
    capsys.readouterr()
    assert main(["translate", str(pics), "-o", str(tmp_path / "two"), *common, "--skip-existing"]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 images" in out and names[1] in out
    assert (tmp_path / "two" / names[1]).read_bytes() == (tmp_path / "one" / names[1]).read_bytes()


def test_ddp_finetune_on_two_ranks_matches_one_process(tmp_path):
    from safetensors.torch import load_file

    data = image_folder(tmp_path / "data", ["cats", "dogs"], 8)
    common = ["finetune", str(data), "--model", "resnet18", "--weights", "none", "--freeze-backbone"]
    common += ["--epochs", "2", "--batch-size", "4", "--val-fraction", "0.25", "--image-size", "32"]
    common += ["--workers", "0", "--device", "cpu"]
    assert main([*common, "-o", str(tmp_path / "one")]) == 0
    done = run_torchrun(*common, "-o", str(tmp_path / "two"))
    assert done.stdout.count("Epoch 2/2") == 1  # rank 0 speaks for both
    one, two = (
        load_file(tmp_path / "one" / "model.safetensors"),
        load_file(tmp_path / "two" / "model.safetensors"),
    )
    assert one.keys() == two.keys()
    for key in ("fc.weight", "fc.bias"):
        assert (one[key] - two[key]).abs().max().item() < 1e-5, key
    assert not (one["fc.weight"] == 0).all()
    cards = [json.loads((tmp_path / d / "model.json").read_text())["metrics"] for d in ("one", "two")]
    assert cards[0]["val_acc"] == cards[1]["val_acc"]
    assert abs(cards[0]["train_loss"] - cards[1]["train_loss"]) < 1e-5


def test_a_torchrun_killed_mid_run_and_started_again_writes_the_single_process_file(favouring, tmp_path):
    import time

    pics = tmp_path / "big"
    pics.mkdir()
    for i in range(24):
        photo(1600, 1200, seed=i).save(pics / f"b{i:02d}.png")  # slow to decode: time to kill mid-run
    assert classify(pics, tmp_path / "one.jsonl") == 0
    command = torchrun_zoo("classify", str(pics), *CLASSIFY, "-o", str(tmp_path / "two.jsonl"))
    first = subprocess.Popen(
        command,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    parts = tmp_path / "two.jsonl.parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        done_units = (
            sum(len(p.read_text().splitlines()) for p in parts.glob("rank-*.jsonl")) if parts.is_dir() else 0
        )
        if done_units >= 2:
            break
        time.sleep(0.02)
    kill_tree(first.pid)  # torchrun and both ranks, with no chance to clean up
    first.wait()
    assert not (tmp_path / "two.jsonl").exists() and 2 <= done_units < 12  # cut short mid-run
    run_torchrun(*command[5:])  # the same command: torchrun -m zoo ARGV
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


def test_an_existing_output_file_is_kept_unless_overwrite(favouring, pics, tmp_path, capsys):
    out = tmp_path / "notes.csv"
    out.write_text("precious")
    assert classify(pics, out) == 1
    assert "already exists" in capsys.readouterr().err and out.read_text() == "precious"
    assert not (tmp_path / "notes.csv.parts").exists()
    assert classify(pics, out, "--overwrite") == 0 and out.read_text().startswith("index,path")


def test_a_parts_folder_that_is_a_link_or_has_no_job_record_is_never_resumed_from(
    favouring, pics, tmp_path, capsys
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "p.jsonl.parts").symlink_to(elsewhere)
    assert classify(pics, tmp_path / "p.jsonl") == 1
    assert "not a folder of zoo's" in capsys.readouterr().err and list(elsewhere.iterdir()) == []
    planted = tmp_path / "q.jsonl.parts"
    planted.mkdir()
    fake = [{"index": i, "path": "planted", "predictions": []} for i in range(2)]
    (planted / "rank-0.jsonl").write_text(json.dumps({"unit": 0, "records": fake}) + "\n")
    assert classify(pics, tmp_path / "q.jsonl") == 1  # no job.json: another job's, refused
    assert classify(pics, tmp_path / "q.jsonl", "--restart") == 0
    assert all(r["path"] != "planted" for r in records(tmp_path / "q.jsonl"))


def test_csv_cells_that_would_run_as_formulas_are_kept_as_text(favouring, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pics = Path("=HYPERLINK(1)")  # a relative folder name a spreadsheet would run
    pics.mkdir()
    photo(40, 30).save(pics / "x.png")
    assert classify(pics, tmp_path / "p.csv") == 0
    row = list(csv.reader((tmp_path / "p.csv").open()))[1]
    assert row[1] == "'=HYPERLINK(1)/x.png"
