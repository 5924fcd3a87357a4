"""The neuraltalk2 family: the book's key names and shapes, its encoder's structure, its LSTM and decoding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torchvision.models.resnet import Bottleneck, ResNet, resnet101

import zoo
from zoo.errors import InvalidArgumentError
from zoo.models._builder import meta_build
from zoo.models.neuraltalk2 import CaffeResNet, FCDecoder, NeuralTalk2

DECODER_KEYS = {
    "img_embed.weight": (512, 2048),
    "img_embed.bias": (512,),
    "core.i2h.weight": (2560, 512),
    "core.i2h.bias": (2560,),
    "core.h2h.weight": (2560, 512),
    "core.h2h.bias": (2560,),
    "embed.weight": (9488, 512),
    "logit.weight": (9488, 512),
    "logit.bias": (9488,),
}


def shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_the_decoder_has_exactly_the_nine_keys_of_fc_model_pth():
    with meta_build():
        model = NeuralTalk2([f"w{i}" for i in range(9486)] + ["UNK"])
    assert shapes(model.decoder) == DECODER_KEYS
    assert sum(v.numel() for v in model.decoder.state_dict().values()) == 13_400_848


def test_the_encoder_has_torchvisions_resnet101_keys_and_shapes():
    with meta_build():
        ours, theirs = NeuralTalk2(["a", "UNK"]).encoder, resnet101()
    assert shapes(ours) == shapes(theirs)


def test_get_model_builds_at_random_with_the_given_vocabulary_in_eval_mode():
    model = zoo.get_model("neuraltalk2", weights=None, vocab=["a", "horse", "UNK"])
    assert model.vocab == ["a", "horse", "UNK"]
    assert model.decoder.embed.weight.shape == (4, 512)
    assert not model.training
    assert model.features(torch.randn(1, 3, 67, 91)).shape == (1, 2048)


def test_without_a_vocabulary_the_books_size_is_built_with_placeholder_words():
    with meta_build():
        model = zoo.get_model("neuraltalk2", weights=None)
    assert len(model.vocab) == 9487 and model.vocab[-1] == "UNK"
    assert shapes(model.decoder) == DECODER_KEYS


@pytest.mark.parametrize("vocab", ["abc", [], ["a", 3]])
def test_a_vocabulary_that_is_not_a_list_of_words_is_refused(vocab):
    with pytest.raises(InvalidArgumentError, match="vocab"):
        zoo.get_model("neuraltalk2", weights=None, vocab=vocab)


def small_torchvision_resnet() -> ResNet:
    torch.manual_seed(0)
    model = ResNet(Bottleneck, [1, 1, 1, 1]).eval()
    for m in model.modules():  # running stats that are not the identity, so BatchNorm matters too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_the_encoder_puts_the_stride_on_the_1x1_conv_and_rounds_the_max_pool_up():
    encoder = CaffeResNet()
    for name in ("layer2", "layer3", "layer4"):
        first = getattr(encoder, name)[0]
        assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    assert (encoder.maxpool.padding, encoder.maxpool.ceil_mode) == (0, True)
    # 225 px: torchvision's padded, rounded-down pool gives 57x57 after the stem, the Caffe one 56x56.
    tv = small_torchvision_resnet()
    x = torch.randn(1, 3, 225, 225)
    assert encoder.maxpool(encoder.conv1(x)).shape[-1] == 56
    assert tv.maxpool(tv.conv1(x)).shape[-1] == 57


def torchvision_features(tv: ResNet, x: torch.Tensor) -> torch.Tensor:
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    return tv.layer4(tv.layer3(tv.layer2(tv.layer1(x)))).mean((2, 3))


def test_the_encoder_with_torchvisions_weights_gives_other_features_than_torchvision():
    tv = small_torchvision_resnet()
    ours = CaffeResNet(layers=(1, 1, 1, 1)).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        theirs = torchvision_features(tv, x)
        mine = ours.features(x)
        # torchvision's structure with the two Caffe changes made by hand gives our features exactly.
        tv.maxpool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
        for layer in (tv.layer2, tv.layer3, tv.layer4):
            layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
        patched = torchvision_features(tv, x)
    assert (mine - theirs).abs().max() > 1e-3
    torch.testing.assert_close(mine, patched)


def test_features_are_layer4_averaged_over_both_spatial_dimensions():
    model = NeuralTalk2(["a", "UNK"], layers=(1, 1, 1, 1), width=8).eval()
    x = torch.randn(2, 3, 70, 50)
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), model.encoder.feature_map(x).mean((2, 3)))


def test_one_lstm_step_follows_the_books_formula():
    torch.manual_seed(1)
    dec = FCDecoder(vocab_size=6, input_encoding_size=5, rnn_size=4, fc_feat_size=3).eval()
    x, h, c = torch.randn(2, 5), torch.randn(2, 4), torch.randn(2, 4)
    logprobs, (h2, c2) = dec.step(x, (h, c))
    s = x @ dec.core.i2h.weight.T + dec.core.i2h.bias + h @ dec.core.h2h.weight.T + dec.core.h2h.bias
    i, f, o = (torch.sigmoid(s[:, k * 4 : (k + 1) * 4]) for k in range(3))
    g = torch.maximum(s[:, 12:16], s[:, 16:20])
    want_c = f * c + i * g
    want_h = o * torch.tanh(want_c)
    torch.testing.assert_close(c2, want_c)
    torch.testing.assert_close(h2, want_h)
    torch.testing.assert_close(logprobs, torch.log_softmax(want_h @ dec.logit.weight.T + dec.logit.bias, 1))


# A decoder whose LSTM is a bigram table: the next word's probabilities depend only on the previous token
# (0 = BOS/END). Embeddings are one-hot, the gates saturate (i = o = 1, f = 0), so h = tanh(1) * onehot(prev)
# and the logit layer holds log P(next | prev) / tanh(1).
WORDS = ["a", "b", "c", "d", "e", "f", "UNK"]  # tokens 1..7
A, B, C, D, E, F_, UNK = range(1, 8)


def bigram_decoder(table: dict[int, dict[int, float]], seq_length: int = 16) -> FCDecoder:
    n = len(WORDS) + 1
    dec = FCDecoder(len(WORDS), input_encoding_size=n, rnn_size=n, fc_feat_size=3, seq_length=seq_length)
    logp = torch.full((n, n), 0.0)
    for prev in range(n):
        probs = torch.full((n,), 1e-6)
        for nxt, p in table.get(prev, {}).items():
            probs[nxt] = p
        if prev not in table:
            probs[:] = 1 / n
        logp[prev] = torch.log(probs / probs.sum())
    with torch.no_grad():
        for p in dec.parameters():
            p.zero_()
        dec.embed.weight.copy_(torch.eye(n))
        i2h_w, i2h_b = dec.core.i2h.weight, dec.core.i2h.bias
        i2h_b[:n] = 40  # input gate open
        i2h_b[n : 2 * n] = -40  # forget everything: the state is the previous token only
        i2h_b[2 * n : 3 * n] = 40  # output gate open
        i2h_w[3 * n : 4 * n] = torch.eye(n)  # candidate = onehot(prev)
        i2h_b[4 * n :] = -100  # the other candidate never wins the max
        dec.logit.weight.copy_(logp.T / math.tanh(1))
    return dec.eval()


# Greedy takes a (0.5 > 0.45), then c, then f, then ends: "a c f". Beam (K=2) keeps [b d, a c] after two
# words, then [b d e, b d END]: "b d" finishes first (p = 0.182), "b d e" one step later with p = 0.2205.
TABLE = {
    0: {A: 0.5, B: 0.45},
    A: {C: 0.5, F_: 0.4},
    B: {D: 0.9},
    C: {F_: 0.5, E: 0.3},
    D: {E: 0.55, 0: 0.45},
    E: {0: 0.99},
    F_: {0: 0.9},
}


def test_greedy_and_beam_answers_differ_and_beam_returns_the_first_to_finish():
    dec = bigram_decoder(TABLE)
    fc = torch.zeros(1, 3)
    assert dec.decode(fc, beam_size=1) == [[A, C, F_]]
    assert dec.decode(fc, beam_size=2) == [[B, D]]
    assert dec.decode(fc, beam_size=2, rule="first") == [[B, D]]


def test_the_best_rule_returns_the_best_scoring_finished_caption():
    dec = bigram_decoder(TABLE)
    assert dec.decode(torch.zeros(1, 3), beam_size=2, rule="best") == [[B, D, E]]


def test_under_the_first_rule_an_unlikely_early_end_wins():
    # After BOS the two beams are "a" (0.9) and END (about 1e-6, the next-best word): END finishes first.
    dec = bigram_decoder({0: {A: 0.9}, A: {0: 0.9}})
    fc = torch.zeros(1, 3)
    assert dec.decode(fc, beam_size=2, rule="first") == [[]]
    assert dec.decode(fc, beam_size=2, rule="best") == [[A]]


def test_beam_search_suppresses_unk_and_greedy_does_not():
    dec = bigram_decoder({0: {UNK: 0.6, A: 0.3, B: 0.09}, UNK: {0: 0.9}, A: {0: 0.9}, B: {0: 0.9}})
    fc = torch.zeros(1, 3)
    assert dec.decode(fc, beam_size=1) == [[UNK]]
    assert dec.decode(fc, beam_size=2) == [[A]]


def test_captions_stop_at_seq_length_when_no_beam_ends():
    dec = bigram_decoder({0: {A: 0.9, B: 0.09}, A: {A: 0.9, B: 0.09}, B: {B: 0.9, A: 0.09}}, seq_length=5)
    fc = torch.zeros(1, 3)
    assert dec.decode(fc, beam_size=1) == [[A] * 5]
    assert dec.decode(fc, beam_size=2) == [[A] * 5]
    assert dec.decode(fc, beam_size=2, rule="best") == [[A] * 5]


def test_a_caption_that_ends_at_once_is_empty():
    dec = bigram_decoder({0: {0: 0.9}})
    assert dec.decode(torch.zeros(2, 3), beam_size=1) == [[], []]
    assert dec.decode(torch.zeros(2, 3), beam_size=2) == [[], []]


def test_greedy_rows_of_a_batch_finish_independently():
    torch.manual_seed(2)
    dec = FCDecoder(vocab_size=9, input_encoding_size=6, rnn_size=5, fc_feat_size=4, seq_length=7).eval()
    fc = torch.randn(4, 4) * 5
    batch = dec.decode(fc, beam_size=1)
    assert batch == [dec.decode(fc[i : i + 1], beam_size=1)[0] for i in range(4)]
    assert dec.decode(fc, beam_size=3) == [dec.decode(fc[i : i + 1], beam_size=3)[0] for i in range(4)]


@pytest.mark.parametrize("beam_size", [0, -1, 2.0, True, 10])
def test_a_beam_size_outside_one_to_v_plus_one_is_refused(beam_size):
    dec = FCDecoder(vocab_size=8, input_encoding_size=4, rnn_size=4, fc_feat_size=3)
    with pytest.raises(InvalidArgumentError, match="beam_size"):
        dec.decode(torch.zeros(1, 3), beam_size=beam_size)


def test_an_unknown_rule_is_refused():
    dec = FCDecoder(vocab_size=8, input_encoding_size=4, rnn_size=4, fc_feat_size=3)
    with pytest.raises(InvalidArgumentError, match="rule"):
        dec.decode(torch.zeros(1, 3), rule="longest")


def test_sentence_joins_the_words_up_to_the_first_end():
    model = NeuralTalk2(["a", "person", "riding", "horse", "UNK"], layers=(1, 1, 1, 1), width=8)
    assert model.sentence([1, 2, 3, 1, 4, 0, 2]) == "a person riding a horse"
    assert model.sentence([]) == ""


def test_teacher_forcing_gives_the_log_probs_greedy_decoding_follows():
    dec = bigram_decoder(TABLE)
    fc = torch.zeros(1, 3)
    out = dec(fc, torch.tensor([[A, C, F_]]))
    assert out.shape == (1, 4, len(WORDS) + 1)
    assert out[0].argmax(1).tolist() == [A, C, F_, 0]
