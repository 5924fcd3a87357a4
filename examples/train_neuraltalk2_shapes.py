"""Train the zoo's own image captioner on synthetic scenes and publish it as `neuraltalk2.shapes`.

The data are the 64x64 scenes of examples/shapes_scenes.py (one to three coloured shapes, template captions).
The model is the book's NeuralTalk2 FC decoder behind the small `scenes` encoder, trained from scratch with
teacher forcing and cross-entropy (END included, padding after it masked), Adam with a cosine schedule, fixed
seeds and two threads. It is scored on held-out scenes (none with a training scene's pixels): corpus BLEU-4
against all of a scene's captions, exact match, and the share of captions that name every shape with its
colour, for greedy decoding and for beam 2 (the book's "first to finish" rule, the model's default).

    python examples/train_neuraltalk2_shapes.py [--epochs N] [--no-publish] [--checkpoint ckpt.pt]
    python examples/train_neuraltalk2_shapes.py --from-checkpoint ckpt.pt   # evaluate and publish only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import shapes_scenes as scenes  # noqa: E402

from zoo.models.neuraltalk2 import NeuralTalk2  # noqa: E402

KWARGS = {
    "vocab": scenes.VOCAB,
    "backbone": "scenes",
    "width": 16,
    "feature_size": 256,
    "input_encoding_size": 128,
    "rnn_size": 128,
    "seq_length": scenes.SEQ_LENGTH,
    "drop_prob_lm": 0.0,
}
TRAIN_N = 20_000
HELDOUT_N = 1_000
EPOCHS = 16
# The budget is 15 minutes of CPU. A run past it stops with an error rather than publishing fewer epochs:
# the published weights must not depend on how busy the machine was.
MINUTES = 14.0
# What `zoo caption --weights shapes` feeds it: any picture resized to the 64x64 of the scenes, normalised.
TRANSFORMS = {"preset": "neuraltalk2", "size": scenes.SIZE}
BATCH = 32
LR = 2e-3
COMMAND = "python examples/train_neuraltalk2_shapes.py"


def training_data(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, set[str]]:
    """uint8 images (N, 3, 64, 64), caption tokens (N, K, T) 0-padded, captions per scene (N,), fingerprints."""
    drawn = scenes.scenes(n, scenes.TRAIN_SEED)
    images = scenes.to_tensor([im for im, _ in drawn])
    caps = [scenes.captions(shapes) for _, shapes in drawn]
    k = max(len(c) for c in caps)
    seqs = torch.zeros(n, k, scenes.SEQ_LENGTH, dtype=torch.long)
    for i, c in enumerate(caps):
        seqs[i, : len(c)] = scenes.tokens(c)
    counts = torch.tensor([len(c) for c in caps])
    return images, seqs, counts, {scenes.fingerprint(im) for im, _ in drawn}


def caption_loss(logprobs: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over each caption's words and its END; positions after the END do not count.

    `logprobs` (N, T + 1, V + 1) from teacher forcing on `seq` (N, T): position t predicts seq[:, t], T the END.
    """
    target = torch.cat([seq, seq.new_zeros(seq.size(0), 1)], 1)
    lengths = (seq > 0).sum(1, keepdim=True)
    mask = torch.arange(target.size(1)).unsqueeze(0) <= lengths  # the words, then one END
    picked = logprobs.gather(2, target.unsqueeze(2)).squeeze(2)
    return -(picked * mask).sum() / mask.sum()


def train(
    epochs: int, train_n: int, all_captions: bool = False, minutes: float = MINUTES, seed: int = 0
) -> tuple[NeuralTalk2, set[str], int]:
    """The trained model (eval mode), the training scenes' fingerprints and the epochs done (fewer than
    `epochs` only if `minutes` ran out first)."""
    torch.manual_seed(seed)
    images, seqs, counts, prints = training_data(train_n)
    model = NeuralTalk2(**KWARGS)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    steps = epochs * (train_n // BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1)))
    )
    gen = torch.Generator().manual_seed(seed)
    model.train()
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(train_n, generator=gen)
        # The canonical caption, or one of each scene's captions per epoch, drawn uniformly.
        pick = (torch.rand(train_n, generator=gen) * counts).long() * all_captions
        total, batches = 0.0, 0
        for i in range(0, train_n - BATCH + 1, BATCH):
            idx = order[i : i + BATCH]
            x = scenes.normalise(images[idx])
            seq = seqs[idx, pick[idx]]
            loss = caption_loss(model.decoder(model.features(x), seq), seq)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, batches = total + loss.item(), batches + 1
        print(
            f"Epoch {epoch}/{epochs}: loss {total / batches:.4f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        if time.perf_counter() - started > minutes * 60 and epoch < epochs:
            sys.exit(
                f"stopped after {epoch} of {epochs} epochs: the {minutes} minutes are spent. Nothing is saved or "
                "published (fewer epochs would make the weights depend on this machine's speed); run on a "
                "quieter machine, or pass --minutes"
            )
    return model.eval(), prints, epochs


def metrics_of(model: NeuralTalk2, held: list) -> dict[str, float]:
    """Beam 2 (the model's default decoding) unsuffixed, greedy with a `_greedy` suffix; rounded."""
    r = scenes.evaluate(model, held=held)
    out = {k: round(v, 4) for k, v in r["beam2"].items()}
    out.update({f"{k}_greedy": round(v, 4) for k, v in r["greedy"].items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--train-scenes", type=int, default=TRAIN_N)
    parser.add_argument(
        "--minutes", type=float, default=MINUTES, help="stop after the epoch that passes this"
    )
    parser.add_argument(
        "--all-captions", action="store_true", help="train on all template captions, not the canonical one"
    )
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--checkpoint", type=Path, help="save the trained weights and metrics here")
    parser.add_argument("--from-checkpoint", type=Path, help="skip training: evaluate and publish these")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)  # denormal floats late in training slow a CPU step down many times
    if args.from_checkpoint:
        ckpt = torch.load(args.from_checkpoint, weights_only=True)
        model = NeuralTalk2(**KWARGS)
        model.load_state_dict(ckpt["state_dict"])
        model.eval()
        minutes, epochs, train_n = ckpt["training_minutes"], ckpt["epochs"], ckpt["train_scenes"]
        planned, all_captions = ckpt["planned_epochs"], ckpt["all_captions"]
        prints = {scenes.fingerprint(im) for im, _ in scenes.scenes(train_n, scenes.TRAIN_SEED)}
    else:
        planned, train_n, all_captions = args.epochs, args.train_scenes, args.all_captions
        started = time.perf_counter()
        model, prints, epochs = train(planned, train_n, all_captions, args.minutes)
        minutes = (time.perf_counter() - started) / 60
    held = scenes.heldout_scenes(HELDOUT_N, train_n, train_prints=prints)
    metrics = metrics_of(model, held)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"training_minutes": round(minutes, 1), "params": params, **metrics}, indent=2))
    for image, shapes in held[:5]:
        x = scenes.normalise(scenes.to_tensor([image]))
        print(f"  {model.sentence(model(x)[0])!r}  (reference {scenes.captions(shapes)[0]!r})")
    if args.checkpoint:
        torch.save(
            {
                "state_dict": model.state_dict(),
                "metrics": metrics,
                "training_minutes": minutes,
                "epochs": epochs,
                "planned_epochs": planned,
                "train_scenes": train_n,
                "all_captions": all_captions,
            },
            args.checkpoint,
        )
        print(f"checkpoint saved to {args.checkpoint}")
    if args.no_publish:
        return
    import tempfile

    from safetensors.torch import save_file

    from zoo.publish import publish

    # Published from a file whose card (a `<file>.json` sidecar) names the preset, so the entry records it.
    with tempfile.TemporaryDirectory(prefix="shapes-") as folder:
        tmp = Path(folder)
        save_file(model.state_dict(), str(tmp / "shapes.safetensors"))
        (tmp / "shapes.safetensors.json").write_text(json.dumps({"transforms": TRANSFORMS}))
        w = publish(
            tmp / "shapes.safetensors",
            name="shapes",
            arch="neuraltalk2",
            out_dir=ROOT / "zoo" / "weights" / "data",  # bundled: the package carries it
            manifest=ROOT / "weights_manifest.json",
            kwargs=KWARGS,
            default=False,
            meta={
                "docs": (
                    "The zoo's own NeuralTalk2 captioner (FC LSTM decoder, small 'scenes' encoder) trained from "
                    "scratch on synthetic 64x64 scenes of one to three coloured shapes; ImageNet-normalised "
                    "input, beam 2 with the book's first-finished rule by default"
                ),
                "dataset": (
                    "synthetic 64x64 scenes generated by examples/shapes_scenes.py, "
                    f"{train_n:,} train / {HELDOUT_N:,} held-out"
                ),
                "metrics": {"heldout_scenes": metrics},
                "training_minutes_cpu": round(minutes, 1),
                "license": "BSD-3-Clause",
                "source": "zoo project (examples/train_neuraltalk2_shapes.py)",
                "training_command": f"{COMMAND} --epochs {planned} --train-scenes {train_n}"
                + (" --all-captions" if all_captions else ""),
            },
        )
    print(f"published {w.key}: weights/{w.file_name} ({w.size} bytes)")


if __name__ == "__main__":
    main()
