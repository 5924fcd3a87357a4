"""End to end on the bundled captioner `neuraltalk2.shapes`: held-out scenes through zoo.caption and `zoo caption`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import shapes_scenes as S  # noqa: E402

import zoo  # noqa: E402
from zoo.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def held():
    """Held-out scenes (a seed of their own, none with a training scene's pixels)."""
    return S.heldout_scenes(40, train_n=0, seed=S.HELDOUT_SEED + 7)


def test_the_bundled_captioner_loads_offline_with_its_vocabulary_and_preset(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    model = zoo.get_model("neuraltalk2", weights="shapes")
    assert model.vocab == S.VOCAB and model.encoder.feature_size == 256 and not model.training
    w = zoo.get_weights("neuraltalk2.shapes")
    assert w.transforms_spec == {"preset": "neuraltalk2", "size": 64} and w.size < 5 * 2**20
    assert w.meta["metrics"]["heldout_scenes"]["bleu4"] >= 0.8


def test_zoo_caption_describes_held_out_scenes_as_their_references_do(held):
    got = zoo.caption([im for im, _ in held], weights="shapes")
    refs = [S.captions(shapes) for _, shapes in held]
    exact = sum(c in r for c, r in zip(got, refs, strict=True)) / len(held)
    bleu = S.corpus_bleu4([[r.split() for r in rs] for rs in refs], [c.split() for c in got])
    assert exact >= 0.75 and bleu >= 0.8, (exact, bleu)
    # The task's preprocessing is the training's: the same captions as the model on the training tensors.
    model = zoo.get_model("neuraltalk2", weights="shapes")
    with torch.no_grad():
        x = S.normalise(S.to_tensor([im for im, _ in held]))
        assert got == [model.sentence(t) for t in model.decode(model.features(x))]


def test_a_larger_picture_of_a_scene_is_resized_to_the_scenes_size_first(held):
    image, shapes = held[0]
    big = image.resize((256, 256))
    assert zoo.caption(big, weights="shapes", beam_size=1) == zoo.caption(
        big.resize((64, 64)), weights="shapes", beam_size=1
    )


def test_zoo_caption_on_a_folder_of_scenes_prints_the_book_lines_and_writes_the_page(held, tmp_path, capsys):
    folder = tmp_path / "scenes"
    folder.mkdir()
    for i, (im, _) in enumerate(held[:4]):
        im.save(folder / f"scene{i}.png")
    code = main(["caption", str(folder), "--weights", "shapes", "--html", str(tmp_path / "vis"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    expected = zoo.caption([folder / f"scene{i}.png" for i in range(4)], weights="shapes")
    assert [r["caption"] for r in out["results"]] == expected
    assert Path(out["page"]) == tmp_path / "vis" / "index.html"
    page = (tmp_path / "vis" / "index.html").read_text()
    assert all(f"image {i}: {c}" in page for i, c in enumerate(expected, 1))
    assert sorted(p.name for p in (tmp_path / "vis" / "imgs").iterdir()) == [f"{i}.png" for i in range(1, 5)]
