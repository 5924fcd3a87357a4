"""The synthetic scenes of `neuraltalk2.shapes` (examples/shapes_scenes.py): determinism, captions, splits, metrics."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import shapes_scenes as S  # noqa: E402

from zoo.models.neuraltalk2 import NeuralTalk2  # noqa: E402


def words(s: str) -> list[str]:
    return s.split()


def test_the_same_seed_gives_the_same_pixels_shapes_and_captions():
    (a, shapes_a), (b, shapes_b) = S.scene(7), S.scene(7)
    assert a.tobytes() == b.tobytes() and shapes_a == shapes_b
    assert S.captions(shapes_a) == S.captions(shapes_b)
    x1, c1 = S.dataset(6, 3)
    x2, c2 = S.dataset(6, 3)
    assert torch.equal(x1, x2) and c1 == c2
    x3, _ = S.dataset(6, 4)
    assert not torch.equal(x1, x3)


def test_images_are_64x64_rgb_normalised_with_the_imagenet_mean_and_std():
    x, _ = S.dataset(2, 0)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    image, _ = S.scene(0)  # the first scene of seed 0's stream, as dataset draws it
    assert torch.equal(x[0], S.normalise(S.to_tensor([image]))[0])
    w, h = image.size
    y, col = next((y, c) for y in range(h) for c in range(w) if image.getpixel((c, y)) == S.BACKGROUND)
    expected = [(S.BACKGROUND[c] / 255 - S.MEAN[c]) / S.STD[c] for c in range(3)]
    assert x[0, :, y, col].tolist() == pytest.approx(expected, abs=1e-6)


def test_scenes_hold_one_to_three_shapes_left_to_right_without_shared_columns():
    counts = Counter()
    for _, shapes in S.scenes(300, 1):
        counts[len(shapes)] += 1
        boxes = [(s.x - S.RADII[s.size], s.x + S.RADII[s.size]) for s in shapes]
        assert boxes == sorted(boxes)
        assert all(b[0] - a[1] > S.GAP for a, b in zip(boxes, boxes[1:], strict=False))
        assert all(lo >= 0 and hi < S.SIZE for lo, hi in boxes)
    assert set(counts) == {1, 2, 3}


def test_captions_fit_the_vocabulary_and_sixteen_tokens():
    assert S.VOCAB[-1] == "UNK" and len(set(S.VOCAB)) == len(S.VOCAB)
    longest = 0
    for _, shapes in S.scenes(300, 2):
        caps = S.captions(shapes)
        assert len(caps) >= 3 and len(set(caps)) == len(caps)
        for c in caps:
            ids = S.encode(c)
            assert all(1 <= t < len(S.VOCAB) for t in ids)  # every word known, none UNK
            assert S.decode_words(ids + [0, 5]) == c
            longest = max(longest, len(ids))
    assert longest == S.SEQ_LENGTH
    assert S.encode("a pink circle") == [1, len(S.VOCAB), S.VOCAB.index("circle") + 1]
    assert S.tokens(["a red circle"]).tolist() == [S.encode("a red circle") + [0] * 13]


def test_the_canonical_caption_names_the_shapes_left_to_right_with_size_and_colour():
    shapes = [S.Shape("circle", "red", "small", 10, 30), S.Shape("square", "blue", "large", 40, 20)]
    assert S.captions(shapes) == [
        "a small red circle left of a large blue square",
        "a large blue square right of a small red circle",
        "a red circle and a blue square",
        "two shapes a small red circle and a large blue square",
    ]
    assert S.captions(shapes[:1]) == ["a small red circle", "a red circle", "one shape a small red circle"]


def test_held_out_scenes_share_no_pixels_with_training_scenes():
    # One-shape scenes are few enough (about 120k) that the two seeds' streams do meet now and then.
    train = {S.fingerprint(im) for im, _ in S.scenes(2000, S.TRAIN_SEED)}
    held = S.heldout_scenes(300, 2000)
    assert len(held) == 300
    assert not train & {S.fingerprint(im) for im, _ in held}
    # The filter itself: drawn from the training stream, the first ten scenes are skipped.
    same = S.heldout_scenes(3, 10, train_seed=5, seed=5)
    assert [s for _, s in same] == [s for _, s in S.scenes(13, 5)[10:]]


def test_bleu4_is_one_for_a_caption_equal_to_a_reference():
    ref = words("a small red circle left of a large blue square")
    assert S.bleu4([ref, words("a red circle")], ref) == 1.0


def test_bleu4_of_one_wrong_colour_is_the_fourth_root_of_its_precisions():
    # 10 words, 'blue' -> 'green': 9/10 unigrams, 7/9 bigrams, 6/8 trigrams, 5/7 4-grams; same length.
    ref = words("a small red circle left of a large blue square")
    hyp = words("a small red circle left of a large green square")
    assert S.bleu4([ref], hyp) == pytest.approx((9 / 10 * 7 / 9 * 6 / 8 * 5 / 7) ** 0.25)
    assert S.bleu4([ref], hyp) == pytest.approx(0.375**0.25)


def test_bleu4_takes_the_brevity_penalty_from_the_closest_reference():
    long = words("a small red circle left of a large blue square")
    hyp = words("a small red circle")
    assert S.bleu4([long], hyp) == pytest.approx(math.exp(1 - 10 / 4))
    assert S.bleu4([long, words("a large red circle")], hyp) == 1.0  # 4 words: no penalty


def test_bleu4_is_zero_without_a_shared_four_gram():
    assert S.bleu4([words("a small red circle")], words("a small red square")) == 0.0
    assert S.bleu4([words("a small red circle")], words("red")) == 0.0
    assert S.bleu4([words("a small red circle")], []) == 0.0


def test_corpus_bleu4_sums_clipped_counts_over_the_corpus_before_the_mean():
    refs = [[words("a small red circle")], [words("a large blue diamond")]]
    hyps = [words("a small red circle"), words("a large blue square")]
    # Unigrams 7/8, bigrams 5/6, trigrams 3/4, 4-grams 1/2 (the second sentence alone would score 0).
    assert S.corpus_bleu4(refs, hyps) == pytest.approx((7 / 8 * 5 / 6 * 3 / 4 * 1 / 2) ** 0.25)
    # Repeated words count only as often as in one reference.
    assert S.bleu4([words("a red a circle")], words("a a a a red a circle")) == pytest.approx(
        (4 / 7 * 3 / 6 * 2 / 5 * 1 / 4) ** 0.25
    )


def test_the_colour_share_needs_every_shape_named_once_with_its_colour():
    scene = [S.Shape("circle", "red", "small", 10, 30), S.Shape("square", "blue", "large", 40, 20)]
    right = [
        "a small red circle left of a large blue square",
        "a large blue square right of a small red circle",
        "a blue square and a red circle",
        "two shapes a small red circle and a large blue square",
    ]
    wrong = [
        "a small red circle",  # one shape missing
        "a red circle and a green square",  # wrong colour
        "a red square and a blue circle",  # colours swapped between the shapes
        "a red circle and a blue square and a blue square",  # one too many
        "a circle and a blue square",  # a shape without its colour
        "a red and a blue square",  # a colour without its shape
    ]
    assert [S.colours_right(c, scene) for c in right] == [True] * 4
    assert [S.colours_right(c, scene) for c in wrong] == [False] * 6
    assert S.named_shapes("a small red circle left of a red circle") == Counter({("red", "circle"): 2})


def test_evaluate_scores_a_captioner_per_decoding():
    torch.manual_seed(0)
    model = NeuralTalk2(S.VOCAB, 16, 16, S.SEQ_LENGTH, 0.0, backbone="scenes", width=4, feature_size=8)
    held = S.heldout_scenes(4, 0)
    result = S.evaluate(model, held=held)
    assert set(result) == {"greedy", "beam2"}
    for r in result.values():
        assert set(r) == {"bleu4", "exact_match", "colour_share"}
        assert all(0.0 <= v <= 1.0 for v in r.values())
    assert model.training  # put back as it was
