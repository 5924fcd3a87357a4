"""Weight files that do not fit, or are built to hurt: every one is a single clear ZooError naming the problem,
never an IndexError, KeyError or a C++ stack, through `zoo.get_model` and the CLI."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.cli import main
from zoo.errors import UnsafeCheckpointError, WeightsMismatchError, ZooError
from zoo.models.cyclegan import ResNetGenerator
from zoo.models.dcgan import DCGANGenerator
from zoo.models.mlp import make_mlp
from zoo.weights import serialization


def mlp_state(**changes: torch.Tensor | None) -> dict[str, torch.Tensor]:
    state = {k: v.clone() for k, v in make_mlp().state_dict().items()}
    for k, v in changes.items():
        if v is None:
            del state[k]
        else:
            state[k] = v
    return state


def save(tmp_path: Path, state: dict[str, torch.Tensor], name: str = "w.pth") -> Path:
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


MLP_CASES = {
    "a scalar first layer": ({"hidden_layer_1.weight": torch.tensor(1.0)}, "hidden_layer_1.weight"),
    "a 1-d first layer": ({"hidden_layer_1.weight": torch.zeros(8)}, "hidden_layer_1.weight"),
    "a 3-d output layer": ({"output_layer.weight": torch.zeros(3, 8, 1)}, "output_layer.weight"),
    "a zero-wide hidden layer": (
        {"hidden_layer_1.weight": torch.zeros(0, 4), "hidden_layer_1.bias": torch.zeros(0)},
        "hidden_layer_1.weight",
    ),
    "integer weights": (
        {"hidden_layer_1.weight": torch.zeros(8, 4, dtype=torch.int64)},
        "hidden_layer_1.weight",
    ),
    "a bool bias": ({"output_layer.bias": torch.zeros(3, dtype=torch.bool)}, "output_layer.bias"),
    "a complex bias": ({"output_layer.bias": torch.zeros(3, dtype=torch.complex64)}, "output_layer.bias"),
    "layers that disagree": ({"output_layer.weight": torch.zeros(3, 5)}, "output_layer.weight"),
    "a missing bias": ({"output_layer.bias": None}, "output_layer.bias"),
    "a missing first layer": ({"hidden_layer_1.weight": None}, "hidden_layer_1.weight"),
}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("case", list(MLP_CASES))
def test_an_mlp_file_that_does_not_fit_names_the_key(tmp_path, case, suffix):
    changes, key = MLP_CASES[case]
    path = save(tmp_path, mlp_state(**changes), "w" + suffix)
    with pytest.raises(WeightsMismatchError, match=key.replace(".", r"\.")):
        zoo.get_model("mlp", weights=path)


def dcgan_state(**changes: torch.Tensor) -> dict[str, torch.Tensor]:
    state = {k: v.clone() for k, v in DCGANGenerator(latent_dim=4, ngf=2, depth=2).state_dict().items()}
    state.update(changes)
    return state


DCGAN_CASES = {
    "a 2-d formatLayer": ({"formatLayer.weight": torch.zeros(4, 8)}, "formatLayer.weight"),
    "a 1-d outlayer": ({"main.outlayer.weight": torch.zeros(2)}, "main.outlayer.weight"),
    "a zero-sized latent": ({"formatLayer.weight": torch.zeros(0, 8, 4, 4)}, "formatLayer.weight"),
    "widths that disagree with the depth": (
        {"formatLayer.weight": torch.zeros(4, 6, 4, 4)},
        "formatLayer.weight",
    ),
    "sixty tiny levels": (
        {f"main.convTranspose{i}.weight": torch.zeros(1, 1, 1, 1) for i in range(1, 61)},
        "formatLayer.weight",
    ),
    "integer noise layer": (
        {"formatLayer.weight": torch.zeros(4, 8, 4, 4, dtype=torch.int32)},
        "formatLayer.weight",
    ),
}


@pytest.mark.parametrize("case", list(DCGAN_CASES))
def test_a_dcgan_file_whose_sizes_cannot_be_read_names_the_key(tmp_path, case):
    changes, key = DCGAN_CASES[case]
    path = save(tmp_path, dcgan_state(**changes), "g.safetensors")
    with pytest.raises(WeightsMismatchError, match=key.replace(".", r"\.")):
        zoo.get_model("dcgan", weights=path)


def test_a_consistent_small_dcgan_file_still_builds(tmp_path):
    path = save(tmp_path, dcgan_state(), "g.safetensors")
    model = zoo.get_model("dcgan", weights=path)
    assert model.test(model.buildNoiseData(2)[0]).shape == (2, 3, 32, 32)


@pytest.mark.parametrize(
    ("key", "tensor"),
    [("model.1.weight", torch.zeros(64, 3)), ("model.26.weight", torch.zeros(0, 64, 7, 7))],
)
def test_a_cyclegan_file_with_a_bad_stem_or_output_names_the_key(tmp_path, key, tensor):
    state = {k: v.clone() for k, v in ResNetGenerator(ngf=4, n_blocks=9).state_dict().items()}
    state[key] = tensor
    with pytest.raises(WeightsMismatchError, match=key.replace(".", r"\.")):
        zoo.get_model("cyclegan", weights=save(tmp_path, state))


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    return zoo.get_model("resnet18", weights=None).state_dict()


@pytest.mark.parametrize(
    "fc", [torch.tensor(1.0), torch.zeros(512), torch.zeros(0, 512), torch.zeros(10, 512, dtype=torch.int8)]
)
def test_a_classifier_head_that_gives_no_class_count_names_the_key(tmp_path, resnet18_state, fc):
    state = {**resnet18_state, "fc.weight": fc}
    with pytest.raises(WeightsMismatchError, match=r"fc\.weight"):
        zoo.get_model("resnet18", weights=save(tmp_path, state))


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_a_head_size_that_is_not_a_count_is_refused(bad):
    with pytest.raises(ZooError, match="num_classes"):
        zoo.get_model("resnet18", weights=None, num_classes=bad)


@pytest.mark.filterwarnings("ignore:Validating sparse tensor invariants")
def test_keys_that_are_not_names_are_not_a_state_dict(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({1: torch.zeros(1), "x": torch.zeros(1)}, path)
    with pytest.raises(ZooError, match="does not hold a state dict"):
        zoo.get_model("mlp", weights=path)
    torch.save({"hidden_layer_1.weight": torch.zeros(8, 4).to_sparse()}, path)
    with pytest.raises(ZooError, match="does not hold a state dict"):
        zoo.get_model("mlp", weights=path)


def raw_safetensors(path: Path, header: bytes, data: bytes = b"", length: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


def header(**tensors: dict) -> bytes:
    return json.dumps(tensors).encode()


HOSTILE_HEADERS = {
    "a header length of 2**62": (b"{}", b"", 2**62),
    "a header length past the end": (b"{}", b"", 10_000),
    "a header that is not JSON": (b"this is no json", b"", None),
    "a header that is a list": (b"[1, 2, 3]", b"", None),
    "offsets beyond the file": (
        header(w={"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}),
        b"\0" * 4,
        None,
    ),
    "an unknown dtype": (header(w={"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}), b"\0" * 4, None),
    "a shape that overflows": (
        header(w={"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}),
        b"\0" * 4,
        None,
    ),
    "a header that is not UTF-8": (b"\xff\xfe{}", b"", None),
}


@pytest.mark.parametrize("case", list(HOSTILE_HEADERS))
def test_a_hostile_safetensors_header_is_one_unsafe_checkpoint_error(tmp_path, case):
    head, data, length = HOSTILE_HEADERS[case]
    path = raw_safetensors(tmp_path / "evil.safetensors", head, data, length)
    with pytest.raises(UnsafeCheckpointError, match="not valid safetensors"):
        zoo.get_model("mlp", weights=path)


def test_an_unsigned_safetensors_tensor_is_a_dtype_mismatch(tmp_path):
    path = raw_safetensors(
        tmp_path / "u16.safetensors",
        header(**{"output_layer.bias": {"dtype": "U16", "shape": [3], "data_offsets": [0, 6]}}),
        b"\0" * 6,
    )
    state = {k: v for k, v in mlp_state().items() if k != "output_layer.bias"}
    merged = {**state, **serialization.load_state_dict(path)}
    with pytest.raises(WeightsMismatchError, match=r"output_layer\.bias \(uint16"):
        zoo.get_model("mlp", weights=save(tmp_path, merged))


def test_a_deflated_pth_that_would_inflate_a_thousandfold_is_refused(tmp_path, monkeypatch):
    # 4 MiB of zeros deflate to about 4 KB; torch.load would inflate them whole into memory. The floor is
    # lowered so the test stays small; the real one is 64 MiB.
    monkeypatch.setattr(serialization, "INFLATION_FLOOR", 1 << 20)
    plain = save(tmp_path, {"w": torch.zeros(1 << 20)}, "plain.pth")
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UnsafeCheckpointError, match="zip bomb"):
        serialization.read_checkpoint(bomb)
    assert torch.equal(serialization.load_state_dict(plain)["w"], torch.zeros(1 << 20))  # stored: fine


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04" + b"\0" * 60, b"PK\x05\x06" + b"\0" * 18, bytes(range(256)) * 4],
    ids=["a broken zip", "an empty zip", "random bytes"],
)
def test_a_pth_that_is_no_zip_or_a_broken_one_is_one_clear_error(tmp_path, content):
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(ZooError, match="not a readable weight file|not a weight file|does not hold"):
        zoo.get_model("mlp", weights=path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_reports_a_dcgan_file_that_does_not_fit_in_one_line(tmp_path, capsys):
    path = save(tmp_path, dcgan_state(**{"formatLayer.weight": torch.zeros(4, 6, 4, 4)}), "g.safetensors")
    out = tmp_path / "grid.png"
    code, _, err = run(
        capsys, "generate", "--model", "dcgan", "--weights", str(path), "-n", "2", "-o", str(out)
    )
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "formatLayer.weight" in lines[0] and "Traceback" not in err
    assert not out.exists()


def test_the_cli_reports_a_hostile_classifier_file_in_one_line(tmp_path, capsys):
    from conftest import photo

    image = tmp_path / "x.png"
    photo(64, 64).save(image)
    path = raw_safetensors(tmp_path / "evil.safetensors", b"{}", b"", 2**62)
    code, _, err = run(capsys, "classify", "--model", "resnet18", "--weights", str(path), str(image))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "not valid safetensors" in lines[0] and "Traceback" not in err
