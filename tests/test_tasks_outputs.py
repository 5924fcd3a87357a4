"""Outputs of translate, generate and finetune: never over an input or an existing file without --overwrite,
always atomic, and every bad output path is one line and exit 1."""

from __future__ import annotations

import json
import os

import pytest
from conftest import photo

from zoo.cli import main
from zoo.models.dcgan import DCGANGenerator
from zoo.tasks import generation, save_grid

TRANSLATE = ["--weights", "none", "--size", "32", "--device", "cpu"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def pics(tmp_path):
    root = tmp_path / "pics"
    root.mkdir()
    photo(60, 40).save(root / "x.png")
    photo(60, 40, seed=1).save(root / "y.jpg")
    return root


def test_translate_never_writes_over_its_input_file_or_into_its_input_folder(capsys, pics):
    before = snapshot(pics)
    for out in (pics / "x.png", pics):
        code, _, err = run(capsys, "translate", str(pics / "x.png"), str(pics), "-o", str(out), *TRANSLATE)
        assert code == 1 and "is one of the inputs" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "translate", str(pics / "x.png"), "-o", str(pics / "x.png"), *TRANSLATE)
    assert code == 1 and "is one of the inputs" in err
    code, _, err = run(
        capsys, "translate", str(pics / "x.png"), "-o", str(pics / "x.png"), *TRANSLATE, "--overwrite"
    )
    assert code == 1 and "is one of the inputs" in err
    assert snapshot(pics) == before


def test_an_output_that_would_land_on_an_input_in_a_subfolder_is_refused_for_that_image(capsys, pics):
    (pics / "out").mkdir()
    photo(30, 30, seed=5).save(pics / "out" / "z.png")
    before = snapshot(pics)
    code, out, _ = run(
        capsys, "translate", str(pics), "-o", str(pics / "out"), *TRANSLATE, "--overwrite", "--json"
    )
    data = json.loads(out)
    assert code == 1 and len(data["errors"]) == 1 and "would replace an input" in data["errors"][0]
    assert sorted(r["output"].rsplit("/", 1)[-1] for r in data["results"]) == ["x.png", "y.png"]
    assert snapshot(pics)["out/z.png"] == before["out/z.png"]


def test_existing_outputs_are_kept_unless_overwrite(capsys, pics, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.png").write_bytes(b"mine")
    code, text, _ = run(capsys, "translate", str(pics), "-o", str(out), *TRANSLATE, "--json")
    data = json.loads(text)
    assert code == 1 and (out / "x.png").read_bytes() == b"mine" and "pass --overwrite" in data["errors"][0]
    assert [r["output"] for r in data["results"]] == [str(out / "y.png")]
    code, _, err = run(capsys, "translate", str(pics / "x.png"), "-o", str(out / "x.png"), *TRANSLATE)
    assert code == 1 and "already exists" in err and (out / "x.png").read_bytes() == b"mine"
    code, _, _ = run(capsys, "translate", str(pics), "-o", str(out), *TRANSLATE, "--overwrite")
    assert code == 0 and (out / "x.png").read_bytes().startswith(b"\x89PNG")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_bad_output_paths_are_one_line_and_write_nothing(capsys, pics, tmp_path):
    (tmp_path / "file").write_text("a file")
    cases = [
        ("translate", str(pics / "x.png"), "-o", str(tmp_path / "file" / "z.png"), *TRANSLATE),
        ("translate", str(pics), "-o", str(tmp_path / "file" / "sub"), *TRANSLATE),
        ("generate", "-n", "2", "-o", str(tmp_path / "file" / "g.png"), "--weights", "none"),
        ("generate", "-n", "2", "-o", str(pics), "--weights", "none"),
        ("finetune", str(pics), "-o", str(tmp_path / "file"), "--weights", "none"),
    ]
    for argv in cases:
        code, _, err = run(capsys, *argv)
        assert code == 1 and len(err.strip().splitlines()) == 1 and err.startswith("zoo: error: "), argv
        assert "Traceback" not in err
    assert (tmp_path / "file").read_text() == "a file"


def test_a_missing_parent_of_the_output_is_created(capsys, pics, tmp_path):
    code, _, _ = run(
        capsys, "translate", str(pics / "x.png"), "-o", str(tmp_path / "a" / "b" / "z.png"), *TRANSLATE
    )
    assert code == 0 and (tmp_path / "a" / "b" / "z.png").is_file()


@pytest.fixture
def dcgan(test_manifest):
    test_manifest({"dcgan.test": (DCGANGenerator().state_dict(), {})}, defaults={"dcgan": "dcgan.test"})


def test_generate_keeps_an_existing_file_unless_overwrite(capsys, dcgan, tmp_path):
    (tmp_path / "grid.png").write_bytes(b"mine")
    argv = ["generate", "-n", "4", "--seed", "1", "-o", str(tmp_path / "grid.png"), "--device", "cpu"]
    code, _, err = run(capsys, *argv)
    assert code == 1 and "already exists" in err and (tmp_path / "grid.png").read_bytes() == b"mine"
    code, _, _ = run(capsys, *argv, "--overwrite")
    assert code == 0 and (tmp_path / "grid.png").read_bytes().startswith(b"\x89PNG")


def test_a_crash_while_writing_leaves_neither_a_half_image_nor_a_temporary(dcgan, tmp_path, monkeypatch):
    def crash(images, fp, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(generation, "save_image", crash)
    (tmp_path / "out").mkdir()
    with pytest.raises(KeyboardInterrupt):
        save_grid(generation.generate(2, device="cpu"), tmp_path / "out" / "g.png")
    assert os.listdir(tmp_path / "out") == []


def test_huge_and_negative_numbers_are_clear_errors(capsys, dcgan, tmp_path):
    code, _, err = run(
        capsys, "generate", "-n", "100000000", "-o", str(tmp_path / "g.png"), "--device", "cpu"
    )
    assert code == 1 and "at most 10000" in err
    code, _, err = run(capsys, "generate", "-n", "2", "--seed", str(2**80), "-o", str(tmp_path / "g.png"))
    assert code == 1 and "64 bits" in err and not (tmp_path / "g.png").exists()
    for argv in (
        ["finetune", str(tmp_path), "-o", str(tmp_path / "o"), "--workers", "-1"],
        ["finetune", str(tmp_path), "-o", str(tmp_path / "o"), "--lr", "nan"],
        ["classify", "x.jpg", "--batch-size", "0"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_an_output_name_at_the_file_name_limit_is_written(tmp_path):
    from zoo.tasks.outputs import write_atomic

    target = tmp_path / ("n" * 251 + ".png")  # 255 bytes: the longest name a Linux file system takes
    write_atomic(target, lambda tmp: open(tmp, "wb").write(b"png"))  # noqa: SIM115
    assert target.read_bytes() == b"png" and os.listdir(tmp_path) == [target.name]


def test_a_rerun_names_the_output_each_input_would_really_write(capsys, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        photo(60, 40, seed=len(sub)).save(tmp_path / sub / "x.jpg")
    argv = [
        "translate",
        str(tmp_path / "a" / "x.jpg"),
        str(tmp_path / "b" / "x.jpg"),
        "-o",
        str(tmp_path / "out"),
    ]
    assert run(capsys, *argv, *TRANSLATE)[0] == 0
    before = snapshot(tmp_path / "out")
    code, out, err = run(capsys, *argv, *TRANSLATE)
    assert code == 1 and out == "" and snapshot(tmp_path / "out") == before
    assert err.splitlines() == [
        f"zoo: error: {tmp_path / 'a' / 'x.jpg'}: its output {tmp_path / 'out' / 'x.png'} already exists; "
        "pass --overwrite to replace it",
        f"zoo: error: {tmp_path / 'b' / 'x.jpg'}: its output {tmp_path / 'out' / 'x-2.png'} already exists; "
        "pass --overwrite to replace it",
    ]
