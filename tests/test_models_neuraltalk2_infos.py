"""Reading the book's fc-infos.pkl (a Python 2 protocol-0 pickle) safely: the five globals only, nothing runs."""

from __future__ import annotations

import argparse
import os
import pickle
import struct
from pathlib import Path

import pytest

from zoo.errors import UnsafeCheckpointError, ZooError
from zoo.models.neuraltalk2 import infos_vocab, read_infos


class Namespace(dict):
    """Written as Python 2's cPickle writes an argparse.Namespace at protocol 0."""


class Float64(float):
    """Written as Python 2's numpy writes a float64 scalar at protocol 0."""


def p0(obj: object) -> bytes:
    """Protocol-0 opcodes as Python 2 writes them (str as STRING, globals under their Python 2 names)."""
    if isinstance(obj, Namespace):
        return (
            b"ccopy_reg\n_reconstructor\n(cargparse\nNamespace\nc__builtin__\nobject\nNtR"
            + p0(dict(obj))
            + b"b"
        )
    if isinstance(obj, Float64):
        dtype = b"cnumpy\ndtype\n(S'f8'\nI0\nI1\ntR(I3\nS'<'\nNNNI-1\nI-1\nI0\ntb"
        return b"cnumpy.core.multiarray\nscalar\n(" + dtype + p0(struct.pack("<d", obj)) + b"tR"
    if isinstance(obj, dict):
        return b"(d" + b"".join(p0(k) + p0(v) + b"s" for k, v in obj.items())
    if isinstance(obj, list):
        return b"(l" + b"".join(p0(v) + b"a" for v in obj)
    if isinstance(obj, tuple):
        return b"(" + b"".join(p0(v) for v in obj) + b"t"
    if isinstance(obj, (str, bytes)):
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        return b"S'" + b"".join(b"\\x%02x" % c for c in raw) + b"'\n"
    if isinstance(obj, bool):
        return b"I01\n" if obj else b"I00\n"
    if isinstance(obj, int):
        return b"I%d\n" % obj
    if isinstance(obj, float):
        return b"F" + repr(obj).encode() + b"\n"
    if obj is None:
        return b"N"
    raise TypeError(type(obj))


OPT = {
    "caption_model": "fc",
    "vocab_size": 3,
    "input_encoding_size": 8,
    "rnn_size": 6,
    "num_layers": 1,
    "rnn_type": "lstm",
    "drop_prob_lm": 0.5,
    "seq_length": 16,
    "fc_feat_size": 2048,
    "batch_size": 10,
    "beam_size": 1,
    "start_from": None,
    "language_eval": 1,
}
INFOS = {
    "opt": Namespace(OPT),
    "vocab": {"1": "a", "2": "horse", "3": "UNK"},
    "best_val_score": Float64(0.9375123),
    "iter": 399000,
    "epoch": 35,
    "iterators": {"train": 5, "val": 0},
    "split_ix": {"test": [1, 2]},
}


def write(tmp_path: Path, data: bytes, name: str = "fc-infos.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_synthetic_python2_infos_pickle_reads_completely(tmp_path):
    infos = read_infos(write(tmp_path, p0(INFOS) + b"."))
    assert infos["opt"] == OPT
    assert infos["vocab"] == {"1": "a", "2": "horse", "3": "UNK"}
    assert infos["best_val_score"] == 0.9375123 and type(infos["best_val_score"]) is float
    assert (infos["iter"], infos["epoch"]) == (399000, 35)
    assert infos["split_ix"] == {"test": [1, 2]}
    assert infos_vocab(infos) == ["a", "horse", "UNK"]


def test_python3s_own_protocol_0_namespace_reads_too(tmp_path):
    data = pickle.dumps({"opt": argparse.Namespace(**OPT), "vocab": {"1": "a"}}, protocol=0)
    assert b"copy_reg\n_reconstructor" in data  # the same globals as Python 2 writes them
    assert read_infos(write(tmp_path, data))["opt"] == OPT


HOSTILE = {
    "os.system": b"cos\nsystem\n(S'touch {marker}'\ntR.",
    "posix.system": b"cposix\nsystem\n(S'touch {marker}'\ntR.",
    "builtins.eval": b'c__builtin__\neval\n(S\'open("{marker}", "w")\'\ntR.',
    "builtins.getattr": b"c__builtin__\ngetattr\n(c__builtin__\nobject\nS'__subclasses__'\ntR.",
    "inst opcode": b"(S'touch {marker}'\nios\nsystem\n.",
    "Namespace called directly": b"cargparse\nNamespace\n(tR.",
    "reconstructor of another class": b"ccopy_reg\n_reconstructor\n(c__builtin__\nobject\nc__builtin__\nobject\nNtR.",
    "reconstructor with a state": b"ccopy_reg\n_reconstructor\n(cargparse\nNamespace\nc__builtin__\nobject\nS'x'\ntR.",
    "object dtype": b"cnumpy\ndtype\n(S'O'\nI0\nI1\ntR.",
    "scalar without a dtype": b"cnumpy.core.multiarray\nscalar\n(NS'12345678'\ntR.",
    "a bare class left in the data": b"(dS'opt'\ncargparse\nNamespace\ns.",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_infos_pickle_is_refused_and_nothing_runs(tmp_path, case):
    marker = tmp_path / "ran"
    path = write(tmp_path, HOSTILE[case].replace(b"{marker}", str(marker).encode()))
    with pytest.raises(UnsafeCheckpointError, match="refusing"):
        read_infos(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "data", [b"", b"not a pickle", p0(INFOS)[:200], b"(l.", p0({"opt": 3, "vocab": {}}) + b"."]
)
def test_junk_is_one_clear_error(tmp_path, data):
    with pytest.raises(ZooError, match="infos"):
        read_infos(write(tmp_path, data))


def test_a_missing_file_and_a_fifo_are_clear_errors_and_nothing_waits(tmp_path):
    with pytest.raises(ZooError, match="not found"):
        read_infos(tmp_path / "nowhere.pkl")
    fifo = tmp_path / "fifo.pkl"
    os.mkfifo(fifo)
    with pytest.raises(ZooError, match="FIFO"):
        read_infos(fifo)


def test_a_vocab_with_gaps_in_its_numbers_is_refused(tmp_path):
    infos = read_infos(write(tmp_path, p0({**INFOS, "vocab": {"1": "a", "3": "UNK"}}) + b"."))
    with pytest.raises(ZooError, match="1..V"):
        infos_vocab(infos)
