"""NeuralTalk2, the image captioner of "Deep Learning with PyTorch" ch. 2.3 (ImageCaptioning.pytorch's FC model).

Key-compatible with the book's files: `.encoder` is a Caffe-style ResNet-101 with torchvision's key names
(`resnet101.pth`), `.decoder` holds exactly the 9 tensors of `fc-model.pth`. Decoding follows the book's code,
including which beam it returns (the first to finish, see `FCDecoder.decode`). Facts: shared/specs/neuraltalk2.md.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InvalidArgumentError, UnsafeCheckpointError, WeightsMismatchError, ZooError
from ..registry import register_model
from ..store.small_files import read_small
from ..weights.files import load_state_dict, verified_file
from ..weights.manifest import Weights
from ..weights.selection import select_weights
from ._builder import build, pretrained_weights, tensor_shape

RULES = ("first", "best")
BOOK_VOCAB_SIZE = 9487  # words of fc-infos.pkl, UNK included
# Added to UNK's log-prob at every beam step, as the book's beam search does (greedy decoding does not).
UNK_PENALTY = 1000.0
# The score a finished beam is given so that it is not extended any further (the book's value).
FINISHED = -1000.0


class _Bottleneck(nn.Module):
    """ResNet v1 bottleneck as Caffe has it: the stride is on the first 1x1 convolution, not the 3x3."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class CaffeResNet(nn.Module):
    """The Caffe-converted ResNet v1 the book's captioner encodes with (ResNet-101 by default).

    Same module and key names and shapes as torchvision's ResNet (a torchvision state dict loads strictly),
    but two structural differences that change the features by up to ~0.1 with the same weights: the stride 2
    of layer2/3/4's first block is on `conv1` (1x1), and the stem max-pool has no padding and rounds up.
    `avgpool`/`fc` exist for the keys only; `features` averages layer4 itself.
    """

    def __init__(
        self, layers: Sequence[int] = (3, 4, 23, 3), width: int = 64, num_classes: int = 1000
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise InvalidArgumentError(f"layers must be four block counts >= 1, not {tuple(layers)!r}")
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes = width * 2**i
            stride = 1 if i == 0 else 2
            stage = [_Bottleneck(inplanes, planes, stride)]
            inplanes = planes * _Bottleneck.expansion
            stage += [_Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        self.feature_size = inplanes

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 -> bn1 -> relu -> maxpool -> layer1..layer4: (N, 3, H, W) -> (N, feature_size, h, w)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The captioner's fc features: layer4 averaged over both spatial dimensions, (N, feature_size)."""
        # Width first, then height, as the book's code does: the float sums then match it exactly.
        return self.feature_map(x).mean(3).mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits, as a torchvision ResNet gives them (the captioner does not use them)."""
        return self.fc(torch.flatten(self.avgpool(self.feature_map(x)), 1))


class SceneEncoder(nn.Module):
    """A small encoder for the synthetic 64x64 scenes of `neuraltalk2.shapes` (the zoo's own captioner).

    Four conv stages (3x3 conv, BatchNorm, ReLU, 2x2 max-pool) bring a 64x64 image to a 4x4 map, which is
    flattened and projected to `feature_size` features. Unlike the ResNet's global average, the flattening
    keeps where things are, which captions such as "a red circle left of a blue square" need.
    """

    def __init__(self, width: int = 16, feature_size: int = 256, grid: int = 4) -> None:
        super().__init__()
        if width < 1 or feature_size < 1 or grid < 1:
            raise InvalidArgumentError(
                f"width, feature_size and grid must be >= 1, not {width}, {feature_size}, {grid}"
            )
        stages: list[nn.Module] = []
        channels = [3, width, width * 2, width * 4, width * 4]
        for cin, cout in zip(channels, channels[1:], strict=False):
            stages += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.body = nn.Sequential(*stages)
        # Other sizes than 64x64 still give a grid x grid map (a 64x64 scene is already 4x4: a no-op).
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Linear(channels[-1] * grid * grid, feature_size)
        self.feature_size = feature_size

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> (N, feature_size) features (ReLU'd, as the ResNet's are >= 0)."""
        return F.relu(self.proj(torch.flatten(self.pool(self.body(x)), 1)))


BACKBONES = ("caffe_resnet", "scenes")


class _LSTMCore(nn.Module):
    """The book's LSTM cell: five chunks (i, f, o and two candidates joined by an elementwise max, no tanh)."""

    def __init__(self, input_size: int, rnn_size: int, drop_prob: float) -> None:
        super().__init__()
        self.rnn_size = rnn_size
        self.i2h = nn.Linear(input_size, 5 * rnn_size)
        self.h2h = nn.Linear(rnn_size, 5 * rnn_size)
        self.dropout = nn.Dropout(drop_prob)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = state
        r = self.rnn_size
        s = self.i2h(x) + self.h2h(h)
        gates = torch.sigmoid(s[:, : 3 * r])
        i, f, o = gates[:, :r], gates[:, r : 2 * r], gates[:, 2 * r :]
        g = torch.maximum(s[:, 3 * r : 4 * r], s[:, 4 * r :])
        c = f * c + i * g
        h = o * torch.tanh(c)
        return self.dropout(h), (h, c)


class FCDecoder(nn.Module):
    """The FC caption decoder: exactly the 9 tensors of the book's `fc-model.pth`.

    Token 0 is END and also the first (BOS) input; tokens 1..V are words, V (the last) being UNK.
    """

    def __init__(
        self,
        vocab_size: int,
        input_encoding_size: int = 512,
        rnn_size: int = 512,
        fc_feat_size: int = 2048,
        seq_length: int = 16,
        drop_prob_lm: float = 0.5,
    ) -> None:
        super().__init__()
        if vocab_size < 1 or seq_length < 1:
            raise InvalidArgumentError(
                f"vocab_size and seq_length must be >= 1, not {vocab_size}, {seq_length}"
            )
        self.vocab_size = vocab_size
        self.seq_length = seq_length
        self.rnn_size = rnn_size
        self.img_embed = nn.Linear(fc_feat_size, input_encoding_size)
        self.core = _LSTMCore(input_encoding_size, rnn_size, drop_prob_lm)
        self.embed = nn.Embedding(vocab_size + 1, input_encoding_size)
        self.logit = nn.Linear(rnn_size, vocab_size + 1)

    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One LSTM step on embedded inputs (B, E): log-probs (B, V + 1) of the next token, and the new state."""
        out, state = self.core(x, state)
        return F.log_softmax(self.logit(out), dim=1), state

    def start(self, fc_feats: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Feed the image (output discarded), then BOS: the log-probs of the first word, and the state."""
        zeros = fc_feats.new_zeros(fc_feats.size(0), self.rnn_size)
        _, state = self.step(self.img_embed(fc_feats), (zeros, zeros))
        bos = torch.zeros(fc_feats.size(0), dtype=torch.long, device=fc_feats.device)
        return self.step(self.embed(bos), state)

    def forward(self, fc_feats: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """Teacher forcing, for training: log-probs (N, T + 1, V + 1); position t predicts `seq[:, t]`
        (N, T; 0-padded), position T the END after a full-length caption."""
        logprobs, state = self.start(fc_feats)
        out = [logprobs]
        for t in range(seq.size(1)):
            logprobs, state = self.step(self.embed(seq[:, t]), state)
            out.append(logprobs)
        return torch.stack(out, 1)

    @torch.no_grad()
    def decode(self, fc_feats: torch.Tensor, beam_size: int = 2, rule: str = "first") -> list[list[int]]:
        """Token ids per image, without END: greedy for `beam_size=1`, else a beam search per image.

        `rule="first"` returns what the book's code returns under torch >= 0.4: the hypothesis that finished
        first (the best-scoring among those finishing at that step); `rule="best"` the best-scoring one.
        """
        if (
            isinstance(beam_size, bool)
            or not isinstance(beam_size, int)
            or not 1 <= beam_size <= self.vocab_size + 1
        ):
            raise InvalidArgumentError(
                f"beam_size must be a whole number from 1 to {self.vocab_size + 1}, not {beam_size!r}"
            )
        if rule not in RULES:
            raise InvalidArgumentError(f"rule must be one of {', '.join(RULES)}, not {rule!r}")
        if beam_size == 1:
            return self._greedy(fc_feats)
        return [self._beam(fc_feats[i : i + 1], beam_size, rule) for i in range(fc_feats.size(0))]

    def _greedy(self, fc_feats: torch.Tensor) -> list[list[int]]:
        logprobs, state = self.start(fc_feats)
        live = torch.ones(fc_feats.size(0), dtype=torch.bool, device=fc_feats.device)
        tokens = []
        for t in range(self.seq_length):
            # argmax keeps the first index on ties; finished rows emit 0 (END), as the book's loop does.
            it = logprobs.argmax(1) * live
            live &= it > 0
            tokens.append(it)
            if not live.any() or t == self.seq_length - 1:
                break
            logprobs, state = self.step(self.embed(it), state)
        return [_until_end(row) for row in torch.stack(tokens, 1).tolist()]

    def _beam(self, fc_feat: torch.Tensor, k: int, rule: str) -> list[int]:
        logprobs, (h, c) = self.start(fc_feat.expand(k, -1))
        seqs = torch.zeros(k, self.seq_length, dtype=torch.long)
        sums = torch.zeros(k)  # float32, as the book's running sums
        done: list[tuple[int, float, list[int]]] = []  # (step, score, tokens) in the order they finish
        for t in range(self.seq_length):
            lp = logprobs.float().cpu()
            lp[:, -1] -= UNK_PENALTY
            ys, ix = lp.sort(dim=1, descending=True, stable=True)
            rows = 1 if t == 0 else k  # at the first step every beam is the same: only beam 0 is expanded
            scores = sums[:rows, None] + ys[:rows, :k]  # float32 sums, as the book ranks them
            # Candidates in the book's order, word rank first, then beam; a stable sort keeps it on ties.
            flat = scores.t().reshape(-1).tolist()
            chosen = sorted(range(len(flat)), key=lambda n: -flat[n])[:k]
            parents = torch.tensor([n % rows for n in chosen])
            words = torch.tensor([ix[n % rows, n // rows].item() for n in chosen])
            seqs = seqs[parents]
            seqs[:, t] = words
            sums = scores.t().reshape(-1)[torch.tensor(chosen)].clone()
            h, c = h[parents.to(h.device)], c[parents.to(c.device)]
            for v in range(k):
                if words[v] == 0 or t == self.seq_length - 1:
                    done.append((t, sums[v].item(), seqs[v].tolist()))
                    sums[v] = FINISHED
            if t == self.seq_length - 1:
                break
            logprobs, (h, c) = self.step(self.embed(words.to(fc_feat.device)), (h, c))
        if rule == "first":
            done = [d for d in done if d[0] == done[0][0]]
        # max keeps the first of equal scores: the order they finished in, then beam order.
        return _until_end(max(done, key=lambda d: d[1])[2])


def _until_end(tokens: list[int]) -> list[int]:
    return tokens[: tokens.index(0)] if 0 in tokens else tokens


class NeuralTalk2(nn.Module):
    """The book's captioner: `.encoder` (Caffe-style ResNet) + `.decoder` (FC LSTM) + `.vocab` (words 1..V).

    `backbone="scenes"` swaps the encoder for the small `SceneEncoder` (width, feature_size) of the zoo's own
    `neuraltalk2.shapes`; the decoder and its decoding are the same.
    """

    def __init__(
        self,
        vocab: Sequence[str],
        input_encoding_size: int = 512,
        rnn_size: int = 512,
        seq_length: int = 16,
        drop_prob_lm: float = 0.5,
        layers: Sequence[int] = (3, 4, 23, 3),
        width: int = 64,
        backbone: str = "caffe_resnet",
        feature_size: int = 256,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise InvalidArgumentError(f"backbone must be one of {', '.join(BACKBONES)}, not {backbone!r}")
        if isinstance(vocab, str) or not vocab or not all(isinstance(w, str) for w in vocab):
            raise InvalidArgumentError("vocab must be a non-empty list of words (token 1 first, UNK last)")
        self.vocab = list(vocab)
        self.encoder: CaffeResNet | SceneEncoder = (
            CaffeResNet(layers, width) if backbone == "caffe_resnet" else SceneEncoder(width, feature_size)
        )
        self.decoder = FCDecoder(
            len(self.vocab),
            input_encoding_size,
            rnn_size,
            self.encoder.feature_size,
            seq_length,
            drop_prob_lm,
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W), any size, -> fc features (N, 2048 for ResNet-101)."""
        return self.encoder.features(x)

    def decode(self, fc_feats: torch.Tensor, beam_size: int = 2, rule: str = "first") -> list[list[int]]:
        """Token ids per image, without END (see `FCDecoder.decode`)."""
        return self.decoder.decode(fc_feats, beam_size, rule)

    def sentence(self, tokens: Sequence[int]) -> str:
        """Words of `tokens` up to the first END, joined by spaces, as the book prints them."""
        return " ".join(self.vocab[t - 1] for t in _until_end(list(tokens)))

    def forward(self, x: torch.Tensor, beam_size: int = 2, rule: str = "first") -> list[list[int]]:
        """Normalised images -> token ids per image (features, then decode)."""
        return self.decode(self.features(x), beam_size, rule)


# ---- fc-infos.pkl: a Python 2 protocol-0 pickle, read with inert stand-ins for its five globals -------------

INFOS_LIMIT = 64 << 20  # bytes; the book's file is 1.27 MB


class _Refused(pickle.UnpicklingError):
    """A global, or a use of an allowed one, that fc-infos.pkl never has: the file is not read further."""


class _Name:
    """What a pickled class name (argparse.Namespace, object) stands for: a marker that is never called."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise _Refused(f"it calls {self.name}")


_NAMESPACE, _OBJECT = _Name("argparse.Namespace"), _Name("object")


class _Options:
    """Stand-in for the pickled argparse.Namespace: it only takes a dict of named values."""

    def __init__(self) -> None:
        self.fields: dict[str, object] | None = None

    def __setstate__(self, state: object) -> None:
        if (
            self.fields is not None
            or not isinstance(state, dict)
            or not all(isinstance(k, str) for k in state)
        ):
            raise _Refused("its options are not a dict of named values")
        self.fields = dict(state)


def _reconstructor(cls: object, base: object, state: object) -> _Options:
    # copy_reg._reconstructor(argparse.Namespace, object, None) is the one call the file makes with it.
    if cls is not _NAMESPACE or base is not _OBJECT or state is not None:
        raise _Refused("it calls copy_reg._reconstructor with something other than argparse.Namespace")
    return _Options()


class _Float64:
    """Stand-in for numpy.dtype('f8', 0, 1), little-endian (BUILD state (3, '<', None, ...)): nothing else."""

    STATE = (3, "<", None, None, None, -1, -1, 0)

    def __init__(self, spec: object, align: object, copy: object) -> None:
        if spec != "f8" or align not in (0, False) or copy not in (1, True):
            raise _Refused(f"it asks for numpy.dtype({spec!r}, {align!r}, {copy!r}), not float64")
        self.built = False

    def __setstate__(self, state: object) -> None:
        if self.built or state != self.STATE:
            raise _Refused(f"its numpy.dtype state is {state!r}, not little-endian float64")
        self.built = True


def _scalar(dtype: object, data: object) -> float:
    # numpy.core.multiarray.scalar(dtype, raw bytes): best_val_score as a float64. Python 2's str arrives
    # decoded as latin-1 (encoding="latin1"), so it is turned back into the bytes it was.
    if not isinstance(dtype, _Float64) or not dtype.built:
        raise _Refused("it calls numpy.core.multiarray.scalar without a float64 dtype")
    raw = data.encode("latin-1") if isinstance(data, str) else data
    if not isinstance(raw, bytes) or len(raw) != 8:
        raise _Refused("its numpy scalar is not 8 bytes")
    return struct.unpack("<d", raw)[0]


# The five globals fc-infos.pkl references, under their Python 3 names, and the stand-ins they become.
_INFOS_GLOBALS: dict[tuple[str, str], object] = {
    ("copyreg", "_reconstructor"): _reconstructor,
    ("argparse", "Namespace"): _NAMESPACE,
    ("builtins", "object"): _OBJECT,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy", "dtype"): _Float64,
}
_PY2_MODULES = {"copy_reg": "copyreg", "__builtin__": "builtins"}


class _InfosUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        # An overridden find_class gets the names as written: Python 2's module names are mapped here.
        found = _INFOS_GLOBALS.get((_PY2_MODULES.get(module, module), name))
        if found is None:
            raise _Refused(f"it references {module}.{name}")
        return found

    def persistent_load(self, pid: object) -> object:
        raise _Refused("it holds a persistent id")


def read_infos(path: str | os.PathLike) -> dict[str, Any]:
    """Read the book's `fc-infos.pkl` without running anything from it.

    Only the five globals the file uses are known, each as an inert stand-in that checks its arguments; any
    other global is an UnsafeCheckpointError. Returns the file's dict with `opt` as a plain dict (the
    argparse.Namespace's fields), `vocab` ({"1": word, ...}), `best_val_score` as a float, and the rest as is.
    """
    path = Path(path)
    try:
        # Resolved first: a user's file may be reached by a link; read_small refuses FIFOs and huge files.
        data = read_small(path.resolve(), limit=INFOS_LIMIT, what="an infos file", error=ZooError)
    except OSError as e:
        raise ZooError(f"cannot read infos file {path}: {e.strerror or e}") from None
    if data is None:
        raise ZooError(f"infos file not found: {path}")
    try:
        obj = _InfosUnpickler(io.BytesIO(data), encoding="latin1").load()
        infos = _plain(obj, 0)
    except _Refused as e:
        raise UnsafeCheckpointError(
            f"refusing to read {path}: {e}, which fc-infos.pkl never does, and loading it could run code"
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as e:
        raise ZooError(f"{path} is not a readable infos pickle: {e}") from None
    except (RecursionError, MemoryError, OverflowError):
        raise ZooError(f"{path} is not a readable infos pickle: nested or sized beyond reason") from None
    if not isinstance(infos, dict) or not isinstance(infos.get("opt"), dict):
        raise ZooError(f"{path} is not an infos file: no `opt` options in it")
    vocab = infos.get("vocab")
    if not isinstance(vocab, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in vocab.items()
    ):
        raise ZooError(f"{path} is not an infos file: its `vocab` is not a dict of words")
    return infos


_PLAIN = (str, bytes, int, float, bool, type(None))
_MAX_DEPTH = 100


def _plain(obj: object, depth: int) -> Any:
    """The unpickled value with every options stand-in turned into a dict; other stand-ins are refused."""
    if depth > _MAX_DEPTH:
        raise RecursionError
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, _Options):
        if obj.fields is None:
            raise _Refused("it makes an argparse.Namespace without options")
        return _plain(obj.fields, depth + 1)
    if isinstance(obj, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v, depth + 1) for v in obj)
    raise _Refused(f"it leaves a {type(obj).__name__} where fc-infos.pkl has plain values")


def infos_vocab(infos: dict[str, Any]) -> list[str]:
    """The words of tokens 1..V from `read_infos`'s vocab ({"1": word, ...}), which must number them 1..V."""
    vocab = infos["vocab"]
    if set(vocab) != {str(i) for i in range(1, len(vocab) + 1)}:
        raise ZooError("the infos file's vocab does not number its words 1..V")
    return [vocab[str(i)] for i in range(1, len(vocab) + 1)]


def _file(value: Any, what: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(f"{what} must be a path to a local file, not {type(value).__name__}")
    path = Path(value)
    if not path.is_file():
        raise ZooError(f"{what} file not found: {path}")
    return path


def _prefixed(prefix: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Files saved from nn.DataParallel prefix every key with "module."; each of the two files may be.
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    return {prefix + k: v for k, v in state_dict.items()}


def _loader(encoder: Path | None) -> Any:
    """Reads the selected weights, and the encoder's file if there is one, into one state dict of the model's
    keys: the book's fc-model.pth holds the decoder only, a file the zoo saved holds both."""

    def load(selected: Any, progress: bool) -> dict[str, torch.Tensor]:
        weights = load_state_dict(selected, progress=progress)
        if encoder is None:
            if not any(k.startswith(("encoder.", "module.encoder.")) for k in weights):
                raise InvalidArgumentError(
                    "these neuraltalk2 weights hold the decoder only (fc-model.pth): give the encoder's file "
                    "too, encoder='resnet101.pth'"
                )
            return weights
        return {**_prefixed("decoder.", weights), **_prefixed("encoder.", load_state_dict(encoder))}

    return load


def _infer(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    # Sizes from the files: E and V from the word embedding, R from h2h, the encoder's kind, width and depth
    # from its first layers. Checked against each other so a wrong pair of files is named here.
    embed = tensor_shape(state_dict, "decoder.embed.weight", 2)
    h2h = tensor_shape(state_dict, "decoder.core.h2h.weight", 2)
    img = tensor_shape(state_dict, "decoder.img_embed.weight", 2)
    if embed is None or h2h is None or img is None:
        return {}
    sizes = {"input_encoding_size": embed[1], "rnn_size": h2h[1], "vocab_size": embed[0] - 1}
    proj = tensor_shape(state_dict, "encoder.proj.weight", 2)
    first = tensor_shape(state_dict, "encoder.body.0.weight", 4)
    if proj is not None and first is not None:  # the small SceneEncoder of neuraltalk2.shapes
        encoder = {"backbone": "scenes", "width": first[0], "feature_size": proj[0]}
        gives = proj[0]
    else:
        stem = tensor_shape(state_dict, "encoder.conv1.weight", 4)
        if stem is None:
            return {}
        layers = []
        for i in range(1, 5):
            n = 0
            while f"encoder.layer{i}.{n}.conv1.weight" in state_dict:
                n += 1
            layers.append(max(n, 1))
        encoder = {"layers": tuple(layers), "width": stem[0]}
        gives = stem[0] * 32
    if img[1] != gives:
        raise WeightsMismatchError(
            f"the decoder takes {img[1]} features (img_embed.weight), the encoder gives {gives}"
        )
    return {**sizes, **encoder}


def _options(infos: dict[str, Any]) -> dict[str, Any]:
    """The model's kwargs from fc-infos.pkl's opt (the FC model only); beam_size and start_from are not used."""
    opt = infos["opt"]
    model, rnn, layers = opt.get("caption_model", "fc"), opt.get("rnn_type", "lstm"), opt.get("num_layers", 1)
    if (model, rnn, layers) != ("fc", "lstm", 1):
        raise ZooError(
            f"the infos file is for a {model!r} model ({rnn}, {layers} layers); only the FC model is known"
        )
    out: dict[str, Any] = {}
    for key in ("input_encoding_size", "rnn_size", "seq_length", "drop_prob_lm"):
        if key in opt:
            out[key] = opt[key]
    return out


@register_model()
def neuraltalk2(
    pretrained: bool = False,
    *,
    weights: Any = None,
    vocab: Sequence[str] | None = None,
    infos: str | os.PathLike | None = None,
    encoder: str | os.PathLike | None = None,
    progress: bool = True,
    device: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """The book's image captioner (ch. 2.3): Caffe-style ResNet-101 encoder + FC LSTM decoder, in eval mode.

    The book's files: `neuraltalk2(weights="fc-model.pth", infos="fc-infos.pkl", encoder="resnet101.pth")`;
    the zoo's own captioner of synthetic scenes: `neuraltalk2(weights="shapes")`.

    Args:
        pretrained: load the default weights (the book's three files, fetched and verified).
        weights: None (random init), a manifest key or tag, or the decoder's file (fc-model.pth), or a file
            holding the whole model.
        vocab: the words of tokens 1..V (the last is UNK); its length sets the decoder's size. Without it and
            without infos, the book's 9487 tokens as placeholders ("word1", ..., "UNK").
        infos: the book's fc-infos.pkl (vocabulary and options), read safely.
        encoder: the encoder's file (resnet101.pth, the two chunks joined), for a decoder-only weights file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto"; None keeps the model on the CPU.
        **kwargs: input_encoding_size (512), rnn_size (512), seq_length (16), drop_prob_lm (0.5),
            layers ((3, 4, 23, 3)), width (64); backbone ("caffe_resnet", or "scenes" for the small
            encoder of `neuraltalk2.shapes`, with width and feature_size).
    """
    if pretrained and weights is None:
        weights = pretrained_weights("neuraltalk2")
    selected = select_weights("neuraltalk2", weights)
    if isinstance(selected, Weights):
        # A manifest entry names its other files (the book's vocabulary and encoder): each is fetched and
        # verified like the main one; a file given by path wins.
        found = {
            role: verified_file(w, progress=None if progress else False) for role, w in selected.files.items()
        }
        infos = found.get("infos") if infos is None else infos
        encoder = found.get("encoder") if encoder is None else encoder
        if vocab is None and infos is None:
            vocab = selected.kwargs.get("vocab")
    options: dict[str, Any] = {}
    if infos is not None:
        read = read_infos(_file(infos, "infos"))
        options = _options(read)
        vocab = infos_vocab(read) if vocab is None else vocab
        size = read["opt"].get("vocab_size", len(vocab))
        if size != len(vocab):
            raise ZooError(
                f"the infos file's opt.vocab_size is {size!r} but its vocab has {len(vocab)} words"
            )
    if vocab is None:
        if selected is not None:
            raise InvalidArgumentError(
                "neuraltalk2 weights need their vocabulary: infos='fc-infos.pkl' or vocab=[...]"
            )
        # The book's size with placeholder words: `neuraltalk2()` builds the book's architecture, as
        # torchvision's `resnet101()` does, for inspection or a hub check; real words come with the weights.
        vocab = [f"word{i}" for i in range(1, BOOK_VOCAB_SIZE)] + ["UNK"]
    if isinstance(vocab, str) or not isinstance(vocab, Sequence):
        raise InvalidArgumentError("vocab must be a list of words (token 1 first, UNK last)")
    words = list(vocab)
    load = None if selected is None else _loader(None if encoder is None else _file(encoder, "encoder"))

    def make(vocab_size: int | None = None, vocab: Any = None, **sizes: Any) -> NeuralTalk2:
        # `vocab` from a manifest entry's kwargs was taken above; the file's own size is checked against it.
        if vocab_size is not None and vocab_size != len(words):
            raise WeightsMismatchError(
                f"the weights are for {vocab_size} words, the vocabulary has {len(words)}"
            )
        return NeuralTalk2(words, **sizes)

    model = build(
        "neuraltalk2",
        make,
        weights=selected,
        pretrained=False,
        progress=progress,
        device=device,
        kwargs={**options, **kwargs},
        infer_kwargs=_infer,
        load=load,
    )
    # A captioner is used for inference: BatchNorm's running stats and no dropout, as the book's eval.py sets.
    return model.eval()
