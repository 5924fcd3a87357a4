"""Synthetic 64x64 scenes with template captions: the data set of the zoo's own captioner `neuraltalk2.shapes`.

A scene is a plain light-grey canvas with one to three shapes (circle, square, triangle, diamond) in one of
five colours and two sizes. Their bounding boxes never share a column of pixels, so "left of" is never in
doubt. Every scene has several captions from fixed templates; the first (canonical) one names the shapes left
to right with size and colour:

    a small red circle left of a large blue square          (canonical)
    a large blue square right of a small red circle         (right to left)
    a red circle and a blue square                          (no sizes)
    two shapes a small red circle and a large blue square   (count first)

Everything is deterministic from a seed (Python's `random.Random` and Pillow's drawing), so `dataset(n, seed)`
gives the same pixels and captions everywhere. Also here: corpus BLEU-4 and `evaluate`, which scores a
captioner on held-out scenes (exact match, BLEU-4 and the share of captions naming every shape's colour).
Used by examples/train_neuraltalk2_shapes.py and tests/test_models_neuraltalk2_shapes.py.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from PIL import Image, ImageDraw

SIZE = 64  # pixels, square
SUPERSAMPLE = 4  # drawn at 4x and box-filtered down: smooth edges, still deterministic
BACKGROUND = (235, 235, 235)
COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 215),
    "yellow": (225, 195, 25),
    "purple": (140, 60, 180),
}
KINDS = ("circle", "square", "triangle", "diamond")
RADII = {"small": 5, "large": 9}  # half the side of the shape's bounding box, in pixels
GAP = 2  # least number of empty columns between two shapes' bounding boxes
COUNT_WORDS = ("one", "two", "three")
MAX_SHAPES = 3
SEQ_LENGTH = 16  # the longest caption: three shapes, canonical or right to left (4 + 2 + 4 + 2 + 4 words)

# Token t (1..V) is VOCAB[t - 1]; 0 is END. UNK must be last (the captioner's convention).
VOCAB = [
    "a",
    "and",
    "left",
    "right",
    "of",
    *COUNT_WORDS,
    "shape",
    "shapes",
    *RADII,
    *COLOURS,
    *KINDS,
    "UNK",
]

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

TRAIN_SEED = 14_000
HELDOUT_SEED = 14_001


class Shape(NamedTuple):
    kind: str
    colour: str
    size: str
    x: int  # centre, pixels
    y: int


# ---- scenes ---------------------------------------------------------------------------------------------------


def _layout(rng: random.Random, sizes: Sequence[str]) -> list[int]:
    """x centres (in the order of `sizes`) whose bounding boxes are at least GAP columns apart."""
    while True:
        xs = [rng.randint(RADII[s], SIZE - 1 - RADII[s]) for s in sizes]
        boxes = sorted((x - RADII[s], x + RADII[s]) for x, s in zip(xs, sizes, strict=True))
        if all(b[0] - a[1] > GAP for a, b in zip(boxes, boxes[1:], strict=False)):
            return xs


def describe(rng: random.Random) -> list[Shape]:
    """A random scene's shapes, left to right."""
    n = rng.randint(1, MAX_SHAPES)
    kinds = [rng.choice(KINDS) for _ in range(n)]
    colours = [rng.choice(list(COLOURS)) for _ in range(n)]
    sizes = [rng.choice(list(RADII)) for _ in range(n)]
    xs = _layout(rng, sizes)
    ys = [rng.randint(RADII[s], SIZE - 1 - RADII[s]) for s in sizes]
    shapes = [Shape(*t) for t in zip(kinds, colours, sizes, xs, ys, strict=True)]
    return sorted(shapes, key=lambda s: s.x)


def draw(shapes: Sequence[Shape]) -> Image.Image:
    """The 64x64 RGB image of `shapes`."""
    k = SUPERSAMPLE
    image = Image.new("RGB", (SIZE * k, SIZE * k), BACKGROUND)
    pen = ImageDraw.Draw(image)
    for s in shapes:
        r, fill = RADII[s.size], COLOURS[s.colour]
        # The shape covers the pixels x-r..x+r and y-r..y+r of the 64x64 image, edges included.
        left, top = (s.x - r) * k, (s.y - r) * k
        right, bottom = (s.x + r + 1) * k - 1, (s.y + r + 1) * k - 1
        cx, cy = (left + right) / 2, (top + bottom) / 2
        if s.kind == "circle":
            pen.ellipse((left, top, right, bottom), fill=fill)
        elif s.kind == "square":
            pen.rectangle((left, top, right, bottom), fill=fill)
        elif s.kind == "triangle":
            pen.polygon([(cx, top), (right, bottom), (left, bottom)], fill=fill)
        else:  # diamond
            pen.polygon([(cx, top), (right, cy), (cx, bottom), (left, cy)], fill=fill)
    return image.resize((SIZE, SIZE), Image.Resampling.BOX)


def scene(seed_or_rng: int | random.Random) -> tuple[Image.Image, list[Shape]]:
    """A scene from a seed (or a `random.Random` to draw from): its image and its shapes, left to right."""
    rng = seed_or_rng if isinstance(seed_or_rng, random.Random) else random.Random(seed_or_rng)
    shapes = describe(rng)
    return draw(shapes), shapes


# ---- captions -------------------------------------------------------------------------------------------------


def captions(shapes: Sequence[Shape]) -> list[str]:
    """The scene's captions, canonical (left to right, sizes, "left of") first; no two the same."""
    full = [f"a {s.size} {s.colour} {s.kind}" for s in shapes]
    plain = [f"a {s.colour} {s.kind}" for s in shapes]
    count = COUNT_WORDS[len(shapes) - 1] + (" shape" if len(shapes) == 1 else " shapes")
    listed = full[0] if len(shapes) == 1 else f"{' '.join(full[:-1])} and {full[-1]}"
    out = [
        " left of ".join(full),
        " right of ".join(reversed(full)),
        " and ".join(plain),
        f"{count} {listed}",
    ]
    return list(dict.fromkeys(out))


def encode(caption: str) -> list[int]:
    """Token ids (1..V) of a caption's words; words not in VOCAB become UNK."""
    index = {w: i + 1 for i, w in enumerate(VOCAB)}
    return [index.get(w, len(VOCAB)) for w in caption.split()]


def decode_words(tokens: Sequence[int]) -> str:
    """The words of token ids, up to the first END (0)."""
    words = []
    for t in tokens:
        if t == 0:
            break
        words.append(VOCAB[t - 1])
    return " ".join(words)


# ---- data sets ------------------------------------------------------------------------------------------------


def scenes(n: int, seed: int) -> list[tuple[Image.Image, list[Shape]]]:
    """`n` scenes drawn one after another from `random.Random(seed)`."""
    rng = random.Random(seed)
    return [scene(rng) for _ in range(n)]


def fingerprint(image: Image.Image) -> str:
    """A hash of a scene's pixels: equal scenes, equal fingerprints."""
    return hashlib.sha256(image.tobytes()).hexdigest()


def to_tensor(images: Sequence[Image.Image]) -> Any:
    """uint8 (N, 3, 64, 64) tensor of the images."""
    import torch

    data = b"".join(im.tobytes() for im in images)
    x = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return x.view(len(images), SIZE, SIZE, 3).permute(0, 3, 1, 2).contiguous()


def normalise(x: Any) -> Any:
    """uint8 (N, 3, H, W) -> float32: /255, then ImageNet mean and std (what the captioner is fed)."""
    import torch

    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x.float() / 255 - mean) / std


def tokens(caption_list: Sequence[str], seq_length: int = SEQ_LENGTH) -> Any:
    """Long tensor (N, seq_length) of the captions' token ids, 0-padded (0 is also END)."""
    import torch

    out = torch.zeros(len(caption_list), seq_length, dtype=torch.long)
    for i, c in enumerate(caption_list):
        ids = encode(c)
        if len(ids) > seq_length:
            raise ValueError(f"caption longer than {seq_length} words: {c!r}")
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def dataset(n: int, seed: int) -> tuple[Any, list[list[str]]]:
    """`n` scenes from `seed`: normalised float32 images (N, 3, 64, 64) and each scene's captions."""
    drawn = scenes(n, seed)
    return normalise(to_tensor([im for im, _ in drawn])), [captions(shapes) for _, shapes in drawn]


def heldout_scenes(
    n: int,
    train_n: int,
    train_seed: int = TRAIN_SEED,
    seed: int = HELDOUT_SEED,
    train_prints: set[str] | None = None,
):
    """`n` held-out scenes from `seed`, none with the pixels of one of the `train_n` training scenes (whose
    fingerprints may be given as `train_prints`, to spare drawing them again)."""
    train = (
        train_prints
        if train_prints is not None
        else {fingerprint(im) for im, _ in scenes(train_n, train_seed)}
    )
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        image, shapes = scene(rng)
        if fingerprint(image) not in train:
            out.append((image, shapes))
    return out


# ---- metrics --------------------------------------------------------------------------------------------------


def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def corpus_bleu4(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002), unsmoothed.

    `references[i]` are the reference word lists of hypothesis `hypotheses[i]`. n-gram counts (n = 1..4) are
    clipped by their largest count in any one reference and summed over the corpus; BLEU is the geometric mean
    of the four precisions times the brevity penalty exp(1 - r/c) when c < r (c: the hypotheses' words, r: the
    sum of each hypothesis's closest reference length, the shorter on a tie). 0 if any precision is 0.
    """
    if len(references) != len(hypotheses):
        raise ValueError("one list of references per hypothesis")
    matched, total = [0] * 4, [0] * 4
    c = r = 0
    for refs, hyp in zip(references, hypotheses, strict=True):
        c += len(hyp)
        r += min((abs(len(ref) - len(hyp)), len(ref)) for ref in refs)[1]
        for n in range(1, 5):
            counts = _ngrams(hyp, n)
            most: Counter = Counter()
            for ref in refs:
                most |= _ngrams(ref, n)
            matched[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            total[n - 1] += sum(counts.values())
    if c == 0 or min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total, strict=True)) / 4
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    return brevity * math.exp(log_precision)


def bleu4(references: Sequence[Sequence[str]], hypothesis: Sequence[str]) -> float:
    """BLEU-4 of one hypothesis against its references (a corpus of one)."""
    return corpus_bleu4([references], [hypothesis])


def named_shapes(caption: str) -> Counter:
    """(colour, kind) pairs a caption names: each shape word with the closest colour word before it in the
    same phrase ("a", "and", "of", a count word or "shapes" start a new phrase; a shape word without a colour
    gives (None, kind))."""
    out: Counter = Counter()
    colour = None
    for w in caption.split():
        if w in COLOURS:
            colour = w
        elif w in KINDS:
            out[(colour, w)] += 1
            colour = None
        elif w in ("a", "and", "of", "left", "right", "shape", "shapes", *COUNT_WORDS):
            colour = None
    return out


def colours_right(caption: str, shapes: Sequence[Shape]) -> bool:
    """True when the caption names exactly the scene's shapes, each with its colour: the multiset of its
    (colour, kind) pairs equals the scene's (sizes and positions are not checked here; BLEU sees those)."""
    return named_shapes(caption) == Counter((s.colour, s.kind) for s in shapes)


def evaluate(
    model: Any,
    n_heldout: int = 1000,
    *,
    train_n: int = 0,
    seed: int = HELDOUT_SEED,
    batch: int = 250,
    decodings: Sequence[tuple[str, int]] = (("greedy", 1), ("beam2", 2)),
    held: Sequence[tuple[Image.Image, list[Shape]]] | None = None,
) -> dict[str, dict[str, float]]:
    """Score a `NeuralTalk2` (with VOCAB) on held-out scenes, per decoding (beam search with rule "first").

    Returns {decoding: {"bleu4", "exact_match", "colour_share"}}: corpus BLEU-4 against all of a scene's
    captions; the share of captions equal to one of them; the share for which `colours_right` holds.
    `train_n`: leave out scenes whose pixels are among the first `train_n` training scenes.
    """
    import torch

    held = list(held) if held is not None else heldout_scenes(n_heldout, train_n, seed=seed)
    was_training = model.training
    model.eval()
    results: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        feats = torch.cat(
            [
                model.features(normalise(to_tensor([im for im, _ in held[i : i + batch]])))
                for i in range(0, len(held), batch)
            ]
        )
        for name, beam in decodings:
            hyps = [model.sentence(t) for t in model.decode(feats, beam_size=beam, rule="first")]
            refs = [captions(shapes) for _, shapes in held]
            results[name] = {
                "bleu4": corpus_bleu4([[r.split() for r in rs] for rs in refs], [h.split() for h in hyps]),
                "exact_match": sum(h in rs for h, rs in zip(hyps, refs, strict=True)) / len(held),
                "colour_share": sum(
                    colours_right(h, shapes) for h, (_, shapes) in zip(hyps, held, strict=True)
                )
                / len(held),
            }
    model.train(was_training)
    return results
