import json
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, photo

from zoo.cli import main
from zoo.cli import models as models_cli
from zoo.errors import ZooError
from zoo.models.mlp import make_mlp


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_table_and_json(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.splitlines()[0].split()[:2] == ["model", "default"]
    assert any(
        line.startswith("resnet101 ") and "resnet101.imagenet1k_v2" in line for line in out.splitlines()
    )
    code, out, _ = run(capsys, "list", "resnet*", "--json")
    data = json.loads(out)
    assert [d["name"] for d in data] == ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert data[-1]["weights"] == ["resnet50.imagenet1k_v1", "resnet50.imagenet1k_v2"]
    code, out, _ = run(capsys, "list", "mlp", "--json")
    assert json.loads(out)[0]["aliases"] == ["custom_model"]


def test_list_no_match_is_a_user_error(capsys):
    code, out, err = run(capsys, "list", "nosuch*")
    assert code == 1 and out == ""
    assert err == "zoo: error: no model matches 'nosuch*'; `zoo list` shows them all\n"


def test_info_shows_weights_metrics_and_cache_state(capsys, test_manifest):
    code, out, _ = run(capsys, "info", "resnet50")
    assert code == 0
    assert "resnet50.imagenet1k_v2 *" in out and "80.86" in out and "76.13" in out
    code, out, _ = run(capsys, "info", "resnet18", "--json")
    data = json.loads(out)
    (w,) = data["weights"]
    assert w["key"] == "resnet18.imagenet1k_v1" and w["default"] and w["cached"] is None
    assert w["metrics"]["ImageNet-1K"]["acc@1"] == 69.758 and w["num_categories"] == 1000
    cache = test_manifest({"mlp.blobs": (make_mlp().state_dict(), {})}, defaults={"mlp": "mlp.blobs"})
    code, out, _ = run(capsys, "info", "custom_model", "--json")
    data = json.loads(out)
    assert data["name"] == "mlp" and data["aliases"] == ["custom_model"]
    assert data["weights"][0]["cached"] == str(cache / "mlp-blobs.pth")


def test_info_unknown_model(capsys):
    code, out, err = run(capsys, "info", "resnet105")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "unknown model 'resnet105'; did you mean" in err


def test_help_prints_the_docstring(capsys):
    code, out, _ = run(capsys, "help", str(REPO_ROOT), "dcgan")
    assert code == 0 and "buildNoiseData" in out
    code, out, _ = run(capsys, "help", str(REPO_ROOT), "cyclegan", "--json")
    assert json.loads(out)["doc"].startswith("CycleGAN ResNet generator")
    code, out, err = run(capsys, "help", str(REPO_ROOT), "resnet")
    assert code == 1 and "unknown entry point 'resnet'" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["info"])
    assert e.value.code == 2


def test_module_entry_point_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", "help", "/nonexistent/dir", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("zoo: error: '/nonexistent/dir' is not a directory")


def test_a_multi_line_error_is_one_line_on_the_command_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    photo(64, 48).save(tmp_path / "dog.jpg")
    code = main(["classify", str(tmp_path / "dog.jpg"), "--model", "resnet18"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("zoo: error: weights resnet18.") and err.count("\n") == 1
    assert "looked in:" in err and "pretrained=False" in err  # the later lines are kept, joined


def test_an_error_naming_a_file_that_is_not_utf8_prints_escaped(capsys, monkeypatch):
    name = os.fsdecode(b"caf\xe9")  # a Latin-1 name: a lone surrogate in Python, unprintable as UTF-8

    def fails(args):
        raise ZooError(f"{name}: not a model")

    monkeypatch.setattr(models_cli, "cmd_info", fails)
    code = main(["info", "x"])
    err = capsys.readouterr().err
    assert code == 1 and err == "zoo: error: caf\\xe9: not a model\n"


def test_control_characters_in_an_error_cannot_drive_the_terminal(capsys, monkeypatch):
    def fails(args):
        raise ZooError("class \x1b[31mred\x1b[0m\rzoo: all good")

    monkeypatch.setattr(models_cli, "cmd_info", fails)
    assert main(["info", "x"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and "\\x1b[31mred" in err and err.count("\n") == 1


def test_list_sorts_by_accuracy_and_shows_the_figures_in_json(capsys):
    code, out, _ = run(capsys, "list", "--sort", "acc1", "--json", "--pretrained")
    data = json.loads(out)
    assert code == 0 and data[0]["name"] == "vit_h_14"
    acc = [d["default_meta"]["acc@1"] for d in data if d["default_meta"] and d["default_meta"]["acc@1"]]
    assert acc == sorted(acc, reverse=True) and len(acc) == 80
    vit = data[0]["default_meta"]
    assert vit["gflops"] > 1000 and vit["num_params"] == 633470440 and vit["file_size_mib"] > 2000
    assert vit["license"].startswith("https://") and vit["sha256"] == "prefix"
    code, out, _ = run(capsys, "list", "resnet*", "--exclude", "resnet1??", "--sort", "params")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["model", "default", "weights", "weights"]
    assert [line.split()[0] for line in lines[1:]] == ["resnet50", "resnet34", "resnet18"]


def test_list_plot_draws_a_png_and_says_when_matplotlib_is_missing(capsys, tmp_path, monkeypatch):
    code, _, err = run(capsys, "list", "efficientnet*", "--plot", str(tmp_path / "out.png"))
    assert code == 0 and f"wrote {tmp_path / 'out.png'}" in err
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(capsys, "list", "--plot", str(tmp_path / "again.png"))
    assert code == 1 and "plotting needs matplotlib: pip install 'zoo-hub[examples]'" in err
    assert not (tmp_path / "again.png").exists()
