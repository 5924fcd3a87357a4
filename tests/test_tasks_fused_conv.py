"""The CPU fp32 fast path: convolutions as oneDNN's fused kernels, equal to eager PyTorch, and eager when not."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import photo_jpegs
from torch import fx, nn

from zoo.devices import fold_batchnorm
from zoo.tasks import Classifier, fused_conv

needs_onednn = pytest.mark.skipif(not fused_conv.available(), reason="this torch has no oneDNN")


@pytest.fixture
def images(tmp_path):
    return photo_jpegs(tmp_path)


@pytest.fixture
def random_resnet18(tmp_path):
    """A resnet18 weight file with random weights (outputs depend on the image) and random BatchNorm
    statistics (so that folding them matters)."""
    from zoo.models import resnet18

    torch.manual_seed(0)
    net = resnet18(weights=None, device="cpu")
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    return path


def percent_by_class(classifier: Classifier, paths) -> torch.Tensor:
    rows = []
    for _, prediction in classifier.run(paths, topk=1000, batch_size=3):
        by_label = dict(prediction)
        rows.append([by_label[c] for c in classifier.categories])
    return torch.tensor(rows)


CLASSES = [f"c{i}" for i in range(1000)]


@needs_onednn
def test_the_fused_model_gives_the_eager_models_top1_and_probabilities(random_resnet18, images):
    fused = Classifier("resnet18", random_resnet18, device="cpu", categories=CLASSES)
    eager = Classifier("resnet18", random_resnet18, device="cpu", categories=CLASSES, fuse=False)
    assert fused.fused and not eager.fused
    convs = [m for m in fused.model.modules() if isinstance(m, fused_conv.FusedConv2d)]
    assert not any(isinstance(m, nn.Conv2d) for m in fused.model.modules())
    # resnet18: the stem and 8 first convolutions of a block take their ReLU, the 8 second ones the
    # residual add and ReLU, the 3 downsample convolutions nothing.
    assert len(convs) == 20 and sum(m.relu for m in convs) == 17
    # Each block's sum goes into its residual's memory, except the first's (the max-pool's output).
    assert sum(m.inplace for m in convs) == 7
    assert all(m.weight.is_mkldnn for m in convs)
    a, b = percent_by_class(fused, images), percent_by_class(eager, images)
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert (a - b).abs().max() < 1e-3  # percentage points


@needs_onednn
def test_the_fused_model_matches_torchvisions_unfolded_model_on_the_same_inputs(random_resnet18, images):
    from torchvision.models import resnet18

    reference = resnet18()
    reference.load_state_dict(torch.load(random_resnet18, weights_only=True))
    reference.eval()
    classifier = Classifier("resnet18", random_resnet18, device="cpu")
    x = torch.stack([classifier.prepare(p) for p in images])
    with torch.inference_mode():
        expected = torch.softmax(reference(x), 1) * 100
        got = torch.softmax(classifier.model(x.contiguous(memory_format=torch.channels_last)), 1) * 100
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert (got - expected).abs().max() < 1e-2


def traced_and_fused(
    module_class: type[nn.Module], input_size: list[int]
) -> tuple[fx.GraphModule, nn.Module]:
    """`module_class` with seeded random weights, traced, and its fused rewrite (which must apply)."""
    torch.manual_seed(0)
    model = fx.symbolic_trace(module_class().eval())
    fused = fused_conv.fuse_convolutions(model, input_size)
    assert fused is not None
    return model, fused


class TwoBranches(nn.Module):
    """Convolutions whose outputs are added to each other, reused, or broadcast: cases a rewrite can get wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 8, 1)
        self.c = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.d = nn.Conv2d(8, 1, 1)
        self.e = nn.Conv2d(8, 8, 3, padding="same")  # a string padding: left as it is

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a(x) + self.b(x))  # add(conv, conv): one of the two absorbs the add
        z = self.c(y)
        w = torch.relu(z) + z  # a convolution used twice keeps its output
        v = w + self.d(w)  # a broadcast add (8 channels + 1): not fused
        return self.e(v).mean((2, 3))


@needs_onednn
def test_adds_of_two_convolutions_reused_outputs_and_broadcasts_are_rewritten_correctly():
    model, fused = traced_and_fused(TwoBranches, [4, 3, 20, 20])
    kinds = {name: m for name, m in fused.named_modules() if isinstance(m, fused_conv.FusedConv2d)}
    assert len(kinds) == 4  # a, b, c, d; e keeps its nn.Conv2d
    x = torch.randn(4, 3, 20, 20)
    with torch.inference_mode():
        assert torch.allclose(fused(x), model(x), atol=1e-5)
        assert torch.allclose(fused(x[:1]), model(x[:1]), atol=1e-5)  # another batch size than packed for


class Residuals(nn.Module):
    """Residual adds whose residual must survive: it is the convolution's input, or it is read again later."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.f = nn.Conv2d(8, 8, 3, padding=1)
        self.g = nn.Conv2d(8, 8, 1)
        self.h = nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.stem(x))
        b = torch.relu(self.f(a) + a)  # the residual is f's own input
        c = self.g(b) + b  # b is read again below
        d = torch.relu(self.h(b) + c)  # c is not: the sum may go into c's memory
        return d + b


@needs_onednn
def test_a_sum_goes_into_the_residuals_memory_only_where_nothing_reads_the_residual_again():
    model, fused = traced_and_fused(Residuals, [2, 3, 12, 12])
    inplace = {
        name.rsplit("_", 1)[-1]: m.inplace
        for name, m in fused.named_modules()
        if isinstance(m, fused_conv.FusedConv2d)
    }
    assert inplace == {"stem": False, "f": False, "g": False, "h": True}
    x = torch.randn(2, 3, 12, 12)
    with torch.inference_mode():
        assert torch.allclose(fused(x), model(x), atol=1e-5)


def test_models_it_does_not_suit_are_left_as_they_are():
    assert fused_conv.fuse_convolutions(nn.Linear(3, 2), [1, 3]) is None  # not a graph module
    no_conv = fx.symbolic_trace(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))
    assert fused_conv.fuse_convolutions(no_conv, [2, 3, 2, 2]) is None


@needs_onednn
def test_a_fusion_that_fails_or_disagrees_on_the_probe_leaves_the_model_eager_with_one_warning(
    random_resnet18, images, monkeypatch
):
    eager = Classifier("resnet18", random_resnet18, device="cpu", categories=CLASSES, fuse=False)
    expected = percent_by_class(eager, images[:2])

    def refuse(self, x, other=None):
        raise RuntimeError("could not create a primitive")

    onednn = fused_conv.FusedConv2d.onednn
    monkeypatch.setattr(fused_conv.FusedConv2d, "onednn", refuse)
    with pytest.warns(UserWarning, match="fusion is not used .*could not create a primitive") as caught:
        classifier = Classifier("resnet18", random_resnet18, device="cpu", categories=CLASSES)
    assert len(caught) == 1 and not classifier.fused
    assert not any(isinstance(m, fused_conv.FusedConv2d) for m in classifier.model.modules())
    assert torch.allclose(percent_by_class(classifier, images[:2]), expected, atol=1e-3)

    monkeypatch.setattr(
        fused_conv.FusedConv2d, "onednn", lambda self, x, other=None: onednn(self, x, other) * 1.01
    )
    with pytest.warns(UserWarning, match="differed from eager"):
        assert not Classifier("resnet18", random_resnet18, device="cpu").fused


@needs_onednn
def test_a_fused_model_that_fails_later_warns_once_and_finishes_in_eager(
    random_resnet18, images, monkeypatch
):
    eager = Classifier("resnet18", random_resnet18, device="cpu", categories=CLASSES, fuse=False)
    expected = percent_by_class(eager, images)
    classifier = Classifier("resnet18", random_resnet18, device="cpu", categories=CLASSES)
    assert classifier.fused

    def refuse(self, x, other=None):
        raise RuntimeError("oneDNN: out of memory\nmore detail")

    monkeypatch.setattr(fused_conv.FusedConv2d, "onednn", refuse)
    with pytest.warns(UserWarning, match=r"fused convolutions failed \(oneDNN: out of memory\)") as caught:
        got = percent_by_class(classifier, images)
    assert len(caught) == 1 and not classifier.fused
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert (got - expected).abs().max() < 1e-3


def test_reduced_precision_keeps_the_eager_model_under_autocast(random_resnet18):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 may be emulated on this CPU
        bf16 = Classifier("resnet18", random_resnet18, device="cpu", precision="bf16")
    assert not bf16.fused
    assert not any(isinstance(m, fused_conv.FusedConv2d) for m in bf16.model.modules())


@needs_onednn
def test_a_folded_convolution_and_batchnorm_fuse_into_one_call():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    folded = fold_batchnorm(model)
    fused = fused_conv.fuse_convolutions(folded, [1, 3, 8, 8])
    assert fused is not None
    assert [type(m).__name__ for m in fused.children()] == ["FusedConv2d"]
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        assert torch.allclose(fused(x), model(x), atol=1e-5)
