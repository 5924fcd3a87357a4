import itertools
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchvision import models as tvm

import zoo
from zoo.errors import WeightsMismatchError, WeightsNotFoundError, ZooError
from zoo.models.cyclegan import ResNetGenerator
from zoo.models.dcgan import DCGANGenerator
from zoo.models.mlp import make_mlp
from zoo.weights.serialization import UnsafeCheckpointError

CLASSIFIERS = {
    "alexnet": (tvm.alexnet, "classifier.6"),
    "resnet18": (tvm.resnet18, "fc"),
    "resnet34": (tvm.resnet34, "fc"),
    "resnet50": (tvm.resnet50, "fc"),
    "resnet101": (tvm.resnet101, "fc"),
    "resnet152": (tvm.resnet152, "fc"),
    "googlenet": (tvm.googlenet, "fc"),
}


def no_meta(model: nn.Module) -> bool:
    return not any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers()))


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_random_init_matches_torchvision_layout(name):
    model = zoo.get_model(name, weights=None, device="cpu").eval()
    reference = CLASSIFIERS[name][0](weights=None, **({"init_weights": True} if name == "googlenet" else {}))
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    with torch.inference_mode():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 1000)


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "googlenet"])
def test_classifier_num_classes_without_weights(name):
    model = zoo.get_model(name, weights=None, num_classes=7).eval()
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 7)


def test_cyclegan_state_dict_matches_the_books_checkpoint():
    sd = zoo.get_model("cyclegan", weights=None).state_dict()
    assert len(sd) == 48
    assert sd["model.1.weight"].shape == (64, 3, 7, 7)
    assert sd["model.4.weight"].shape == (128, 64, 3, 3)
    assert sd["model.7.weight"].shape == (256, 128, 3, 3)
    for block in range(10, 19):
        for conv in (1, 5):
            assert sd[f"model.{block}.conv_block.{conv}.weight"].shape == (256, 256, 3, 3)
            assert sd[f"model.{block}.conv_block.{conv}.bias"].shape == (256,)
    assert sd["model.19.weight"].shape == (256, 128, 3, 3)  # ConvTranspose2d weights are (in, out, k, k)
    assert sd["model.22.weight"].shape == (128, 64, 3, 3)
    assert sd["model.26.weight"].shape == (3, 64, 7, 7)
    assert sd["model.26.bias"].shape == (3,)
    assert sum(v.numel() for v in sd.values()) == 11_378_179


def test_cyclegan_output_keeps_size_and_range():
    model = zoo.get_model("cyclegan", weights=None).eval()
    with torch.inference_mode():
        y = model(torch.rand(1, 3, 64, 48))
    assert y.shape == (1, 3, 64, 48)
    assert y.min() >= -1 and y.max() <= 1


def test_dcgan_state_dict_matches_the_gan_zoo():
    sd = zoo.get_model("dcgan", weights=None).state_dict()
    assert sd["formatLayer.weight"].shape == (64, 512, 4, 4)
    for i, width in enumerate([512, 256, 128, 64]):
        for stat in ("weight", "bias", "running_mean", "running_var"):
            assert sd[f"main.batchNorm{i}.{stat}"].shape == (width,)
        assert f"main.batchNorm{i}.num_batches_tracked" in sd
    assert sd["main.convTranspose1.weight"].shape == (512, 256, 4, 4)
    assert sd["main.convTranspose2.weight"].shape == (256, 128, 4, 4)
    assert sd["main.convTranspose3.weight"].shape == (128, 64, 4, 4)
    assert sd["main.outlayer.weight"].shape == (64, 3, 4, 4)
    assert not any(k.endswith(".bias") and "batchNorm" not in k for k in sd)


def test_dcgan_gan_zoo_calls():
    model = zoo.get_model("dcgan", weights=None, latent_dim=16)
    noise, labels = model.buildNoiseData(5)
    assert labels is None and noise.shape == (5, 16)
    images = model.test(noise)
    assert images.shape == (5, 3, 64, 64) and images.device.type == "cpu"
    assert images.min() >= -1 and images.max() <= 1
    assert not images.requires_grad


def test_dcgan_without_tanh_is_unbounded():
    model = DCGANGenerator(tanh=False)
    nn.init.constant_(model.main.outlayer.weight, 1.0)
    out = model.test(torch.ones(2, 64))
    assert out.abs().max() > 1


def test_mlp_is_the_tutorials_model():
    model = zoo.get_model("mlp", weights=None)
    assert isinstance(model, nn.Sequential)
    assert list(model._modules) == ["hidden_layer_1", "activation_1", "output_layer"]
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        "hidden_layer_1.weight": (8, 4),
        "hidden_layer_1.bias": (8,),
        "output_layer.weight": (3, 8),
        "output_layer.bias": (3,),
    }
    assert model(torch.rand(10, 4)).shape == (10, 3)
    assert zoo.get_model("mlp", weights=None, in_features=6, hidden=5, num_classes=2)(
        torch.rand(1, 6)
    ).shape == (1, 2)


def test_pretrained_and_weights_semantics(test_manifest, tmp_path):
    torch.manual_seed(0)
    reference = make_mlp()
    test_manifest({"mlp.blobs": (reference.state_dict(), {})}, defaults={"mlp": "mlp.blobs"})
    for model in (
        zoo.models.mlp(pretrained=True),
        zoo.models.custom_model(pretrained=True),
        zoo.models.mlp(weights="DEFAULT"),
        zoo.models.mlp(weights="blobs"),
        zoo.models.mlp(weights="mlp.blobs"),
        zoo.get_model("mlp"),
        zoo.get_model("custom_model", weights="blobs"),
    ):
        for k, v in reference.state_dict().items():
            assert torch.equal(model.state_dict()[k], v), k
    random = zoo.models.mlp()
    assert not torch.equal(
        random.state_dict()["output_layer.weight"], reference.state_dict()["output_layer.weight"]
    )


def test_weights_from_a_local_file_infers_sizes(tmp_path):
    reference = make_mlp(in_features=5, hidden=11, num_classes=2)
    f = tmp_path / "tiny.safetensors"
    save_file(reference.state_dict(), str(f))
    model = zoo.get_model("mlp", weights=str(f))
    assert torch.equal(model.output_layer.weight, reference.output_layer.weight)
    assert model(torch.rand(3, 5)).shape == (3, 2)


@pytest.mark.parametrize("name", ["resnet18", "alexnet", "googlenet"])
def test_pretrained_classifier_loads_every_tensor(name, test_manifest):
    builder, _ = CLASSIFIERS[name]
    source = builder(
        weights=None, **({"aux_logits": True, "init_weights": True} if name == "googlenet" else {})
    )
    sd = source.state_dict()
    test_manifest({f"{name}.test": (sd, {"categories": "imagenet1k"})}, defaults={name: f"{name}.test"})
    model = zoo.get_model(name)
    assert no_meta(model)
    loaded = model.state_dict()
    for k, v in loaded.items():
        assert torch.equal(v, sd[k]), k
    if name == "googlenet":
        assert model.transform_input and model.aux1 is None and not model.aux_logits
        assert set(sd) - set(loaded) == {k for k in sd if k.startswith(("aux1.", "aux2."))}
    else:
        assert set(loaded) == set(sd)
    with torch.inference_mode():
        assert model.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize(
    "name", sorted(set(CLASSIFIERS) - {"resnet101", "resnet152", "resnet34", "resnet50"})
)
def test_num_classes_replaces_the_head_and_keeps_the_backbone(name, test_manifest):
    builder, head = CLASSIFIERS[name]
    source = builder(weights=None, **({"init_weights": True} if name == "googlenet" else {}))
    sd = source.state_dict()
    test_manifest({f"{name}.test": (sd, {})}, defaults={name: f"{name}.test"})
    model = zoo.get_model(name, num_classes=10)
    assert no_meta(model)
    new_head = model.get_submodule(head)
    assert isinstance(new_head, nn.Linear) and new_head.out_features == 10
    assert new_head.in_features == sd[f"{head}.weight"].shape[1]
    assert not torch.equal(new_head.weight[:10], sd[f"{head}.weight"][:10])
    for k, v in model.state_dict().items():
        if not k.startswith(head + "."):
            assert torch.equal(v, sd[k]), k
    with torch.inference_mode():
        assert model.eval()(torch.rand(2, 3, 64, 64)).shape == (2, 10)
    same = zoo.get_model(name, num_classes=1000)
    assert torch.equal(same.get_submodule(head).weight, sd[f"{head}.weight"])


def test_fine_tuned_file_keeps_its_own_class_count(tmp_path):
    tuned = zoo.get_model("resnet18", weights=None, num_classes=2)
    f = tmp_path / "tuned.pth"
    torch.save(tuned.state_dict(), f)
    model = zoo.get_model("resnet18", weights=f)
    assert model.fc.out_features == 2
    assert torch.equal(model.fc.weight, tuned.fc.weight)


def test_legacy_cyclegan_checkpoint_with_instance_norm_stats(tmp_path):
    reference = ResNetGenerator()
    sd = dict(reference.state_dict())
    sd["model.2.running_mean"] = torch.zeros(64)
    sd["model.2.running_var"] = torch.ones(64)
    sd["model.10.conv_block.2.running_mean"] = torch.zeros(256)
    f = tmp_path / "horse2zebra_0.4.0.pth"
    torch.save(sd, f, _use_new_zipfile_serialization=False)  # the pre-1.6 format the book's file uses
    model = zoo.get_model("cyclegan", weights=f)
    assert no_meta(model)
    assert torch.equal(model.model[26].weight, reference.model[26].weight)


def test_checkpoint_wrapped_in_state_dict_key(tmp_path):
    reference = make_mlp()
    f = tmp_path / "ckpt.pth"
    torch.save({"state_dict": reference.state_dict(), "epoch": 3}, f)
    assert torch.equal(zoo.get_model("mlp", weights=f).hidden_layer_1.weight, reference.hidden_layer_1.weight)


def test_weights_that_do_not_fit(tmp_path):
    f = tmp_path / "other.pth"
    torch.save(make_mlp().state_dict(), f)
    with pytest.raises(WeightsMismatchError, match=r"do not fit cyclegan: missing model\.1\.weight"):
        zoo.get_model("cyclegan", weights=f)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(tmp_path):
    f = tmp_path / "evil.pth"
    torch.save({"w": Evil()}, f)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        zoo.get_model("mlp", weights=f)


def test_missing_manifest_file_names_the_places_tried(test_manifest):
    cache = test_manifest({"mlp.blobs": (make_mlp().state_dict(), {})}, defaults={"mlp": "mlp.blobs"})
    (cache / "mlp-blobs.pth").unlink()
    with pytest.raises(WeightsNotFoundError, match="mlp.blobs: no verified copy of mlp-blobs.pth") as info:
        zoo.get_model("mlp")
    message = str(info.value)
    assert str(cache) in message and "checkpoints" in message
    assert "http://127.0.0.1:9/mlp-blobs.pth: connection" in message and "failed" in message


def test_torch_hub_cache_is_reused(test_manifest, isolated_homes):
    reference = make_mlp()
    cache = test_manifest({"mlp.blobs": (reference.state_dict(), {})}, defaults={"mlp": "mlp.blobs"})
    torch_cache = Path(torch.hub.get_dir()) / "checkpoints"
    torch_cache.mkdir(parents=True)
    (cache / "mlp-blobs.pth").rename(torch_cache / "mlp-blobs.pth")
    assert torch.equal(zoo.get_model("mlp").output_layer.weight, reference.output_layer.weight)


def test_devices():
    model = zoo.get_model("mlp", weights=None, device="cpu")
    assert model.output_layer.weight.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ZooError, match="CUDA is not available"):
            zoo.get_model("mlp", weights=None, device="cuda")
    with pytest.raises(ZooError, match="invalid device"):
        zoo.get_model("mlp", weights=None, device="tpu9")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pretrained_on_cuda(test_manifest):
    test_manifest({"mlp.blobs": (make_mlp().state_dict(), {})}, defaults={"mlp": "mlp.blobs"})
    model = zoo.get_model("mlp", device="cuda")
    assert model.output_layer.weight.is_cuda
    assert model(torch.rand(2, 4, device="cuda")).shape == (2, 3)


def test_sequential_order_is_the_tutorials():
    model = make_mlp()
    expected = nn.Sequential(
        OrderedDict(hidden_layer_1=nn.Linear(4, 8), activation_1=nn.ReLU(), output_layer=nn.Linear(8, 3))
    )
    assert str(model) == str(expected)


def test_fast_build_leaves_torch_init_untouched(tmp_path):
    before = {n: getattr(nn.init, n) for n in dir(nn.init) if n.endswith("_")}
    f = tmp_path / "m.pth"
    torch.save(make_mlp().state_dict(), f)
    zoo.get_model("mlp", weights=f)
    assert {n: getattr(nn.init, n) for n in before} == before
    a, b = nn.Linear(64, 64), nn.Linear(64, 64)
    assert not torch.equal(a.weight, b.weight) and a.weight.abs().sum() > 0


def test_failed_load_also_restores_init(tmp_path):
    before = nn.init.kaiming_uniform_
    f = tmp_path / "m.pth"
    torch.save(make_mlp().state_dict(), f)
    with pytest.raises(WeightsMismatchError):
        zoo.get_model("resnet18", weights=f)
    assert nn.init.kaiming_uniform_ is before


def test_file_dtype_does_not_change_the_models(tmp_path):
    reference = make_mlp().half()
    f = tmp_path / "half.pth"
    torch.save(reference.state_dict(), f)
    model = zoo.get_model("mlp", weights=f)
    assert model.output_layer.weight.dtype == torch.float32
    assert torch.equal(model.output_layer.weight, reference.output_layer.weight.float())
    assert model(torch.rand(2, 4)).dtype == torch.float32


def test_shape_mismatch_is_a_clear_error(tmp_path):
    f = tmp_path / "m.pth"
    torch.save(make_mlp().state_dict(), f)
    with pytest.raises(
        WeightsMismatchError, match=r"shape of hidden_layer_1.weight \(8, 4\) \(model \(16, 4\)\)"
    ):
        zoo.get_model("mlp", weights=f, hidden=16)


@pytest.mark.parametrize(
    ("name", "content"), [("empty.pth", b""), ("cut.pth", None), ("junk.safetensors", b"\x00" * 40)]
)
def test_corrupt_files_are_a_clear_error(tmp_path, name, content):
    f = tmp_path / name
    if content is None:
        torch.save(make_mlp().state_dict(), f)
        content = f.read_bytes()[:200]
    f.write_bytes(content)
    with pytest.raises(ZooError, match="is not a readable weight file"):
        zoo.get_model("mlp", weights=f)


def test_get_model_honours_pretrained_false(test_manifest):
    test_manifest({"mlp.blobs": (make_mlp().state_dict(), {})}, defaults={"mlp": "mlp.blobs"})
    (zoo.store.paths.weights_dir() / "mlp-blobs.pth").unlink()
    assert isinstance(zoo.get_model("mlp", pretrained=False), nn.Sequential)  # no file needed
    with pytest.raises(WeightsNotFoundError):
        zoo.get_model("mlp", pretrained=True)


def test_weights_of_another_arch_are_refused():
    with pytest.raises(ZooError, match="ResNet50_Weights.IMAGENET1K_V1 are not weights for 'resnet18'"):
        zoo.get_model("resnet18", weights=tvm.ResNet50_Weights.IMAGENET1K_V1)
    with pytest.raises(ZooError, match="are for 'resnet50', not 'resnet18'"):
        zoo.get_model("resnet18", weights=zoo.get_weights("resnet50"))


def test_googlenet_aux_follows_the_request(tmp_path):
    f = tmp_path / "g.pth"
    torch.save(tvm.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict(), f)
    assert zoo.get_model("googlenet", weights=f, aux_logits=False).aux1 is None
    kept = zoo.get_model("googlenet", weights=f, aux_logits=True)
    assert kept.aux_logits and kept.aux1 is not None and no_meta(kept)


def test_dcgan_accepts_the_gan_zoo_use_gpu_flag():
    model = zoo.models.dcgan(useGPU=False)
    assert model.formatLayer.weight.device.type == "cpu"


def test_a_pretrained_build_runs_no_init_and_every_tensor_comes_from_the_file(tmp_path, monkeypatch):

    calls = []
    original = nn.init.kaiming_uniform_
    monkeypatch.setattr(
        nn.init, "kaiming_uniform_", lambda t, *a, **k: calls.append(t.device.type) or original(t, *a, **k)
    )
    f = tmp_path / "m.pth"
    saved = make_mlp().state_dict()
    torch.save(saved, f)
    calls.clear()
    model = build_from(make_mlp, f)
    assert calls == [] and no_meta(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    make_mlp()
    assert calls == ["cpu", "cpu"]  # the spy is live: a random-init build does reach it


def test_a_module_whose_own_loader_leaves_a_tensor_unfilled_is_refused(tmp_path):

    class Forgetful(nn.Linear):
        def _load_from_state_dict(self, state_dict, prefix, metadata, strict, missing, unexpected, errors):
            # Takes the bias as its own and never fills it: the bias stays as built (no init ran).
            rest = {k: v for k, v in state_dict.items() if k != prefix + "bias"}
            super()._load_from_state_dict(rest, prefix, metadata, strict, [], unexpected, errors)

    f = tmp_path / "m.pth"
    torch.save(nn.Linear(4, 3).state_dict(), f)
    with pytest.raises(WeightsMismatchError, match="uninitialised: bias"):
        build_from(lambda: Forgetful(4, 3), f)


def test_init_of_real_tensors_still_runs_during_a_fast_build():
    import threading

    from zoo.models._builder import _skip_init

    torch.manual_seed(1)
    expected = nn.Linear(8, 8).weight.clone()
    with _skip_init():
        torch.manual_seed(1)
        during = nn.Linear(8, 8).weight  # as another thread would build one meanwhile
        with torch.device("meta"):
            assert nn.Linear(8, 8).weight.is_meta
    assert torch.equal(during, expected)
    other = {}

    def build_elsewhere():
        torch.manual_seed(1)
        other["weight"] = nn.Linear(8, 8).weight

    with _skip_init(every_tensor=True):  # a pretrained build skips init on this thread only
        thread = threading.Thread(target=build_elsewhere)
        thread.start()
        thread.join()
    assert torch.equal(other["weight"], expected)


def test_a_build_with_weights_inside_another_build_finishes_and_restores_init(tmp_path):
    # A hub entry that loads a pretrained zoo backbone, built by `zoo check` under meta_build.
    import threading

    from zoo.models import _builder

    before = {n: getattr(nn.init, n) for n in dir(nn.init) if n.endswith("_")}
    reference = make_mlp()
    f = tmp_path / "m.pth"
    torch.save(reference.state_dict(), f)
    built = {}

    def nested():
        with _builder.meta_build():
            built["inner"] = zoo.get_model("mlp", weights=f)
            built["after inner"] = nn.Linear(8, 8).weight  # meta, whatever the inner build did
        torch.manual_seed(1)
        built["real"] = nn.Linear(8, 8).weight

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "a nested build waited forever"
    assert torch.equal(built["inner"].output_layer.weight, reference.output_layer.weight)
    assert built["after inner"].is_meta
    assert {n: getattr(nn.init, n) for n in before} == before
    torch.manual_seed(1)
    assert torch.equal(built["real"], nn.Linear(8, 8).weight)  # init runs again once the builds are done


def test_pre_0_4_1_files_without_batchnorm_counters_load(tmp_path):
    reference = tvm.resnet18(weights=None)
    sd = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    f = tmp_path / "resnet18-old.pth"
    torch.save(sd, f)
    model = zoo.get_model("resnet18", weights=f)
    assert no_meta(model)
    assert model.bn1.num_batches_tracked.item() == 0
    assert torch.equal(model.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)


def test_modules_with_load_hooks_go_through_load_state_dict(tmp_path):
    from zoo.models import _builder

    seen = []

    def make(**kwargs):
        model = make_mlp(**kwargs)
        model.register_load_state_dict_post_hook(lambda module, keys: seen.append(len(keys.missing_keys)))
        return model

    f = tmp_path / "m.pth"
    reference = make_mlp()
    torch.save(reference.state_dict(), f)
    model = _builder.build("mlp", make, weights=f, pretrained=False, progress=False, device="cpu", kwargs={})
    assert seen == [0]
    assert torch.equal(model.output_layer.bias, reference.output_layer.bias) and no_meta(model)
    assert _builder._plain_loading(make_mlp().modules()) and not _builder._plain_loading(model.modules())


def test_a_module_that_saves_extra_state_is_loaded_through_load_state_dict(tmp_path):
    from zoo.models import _builder

    class Counted(nn.Linear):
        def get_extra_state(self):
            return torch.tensor([3.0])

        def set_extra_state(self, state):
            self.restored = state

    f = tmp_path / "m.pth"
    torch.save(Counted(4, 2).state_dict(), f)
    assert not _builder._plain_loading(Counted(4, 2).modules())
    model = build_from(lambda: Counted(4, 2), f)
    assert torch.equal(model.restored, torch.tensor([3.0]))


def build_from(make, f):
    from zoo.models import _builder

    return _builder.build(
        "custom", make, weights=f, pretrained=False, progress=False, device="cpu", kwargs={}
    )


def test_saving_over_the_loaded_file_is_safe(tmp_path):
    f = tmp_path / "ck.pth"
    torch.save(zoo.get_model("resnet18", weights=None).state_dict(), f)
    model = zoo.get_model("resnet18", weights=f)
    before = model.fc.weight.detach().clone()
    torch.save({k: torch.zeros_like(v) for k, v in model.state_dict().items()}, f)
    assert torch.equal(model.fc.weight, before)
    torch.save(model.state_dict(), f)
    assert torch.equal(torch.load(f, weights_only=True)["fc.weight"], before)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = self.a  # one layer under two names, both in the state dict


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.out = nn.Linear(4, 5, bias=False)
        self.out.weight = self.embed.weight


class WithPositions(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.register_buffer("positions", torch.arange(3), persistent=False)


class Renaming(nn.Module):
    """Reads an old key name, as torchvision's ViT MLP blocks do."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for kind in ("weight", "bias"):
            old = f"{prefix}old.{kind}"
            if old in state_dict:
                state_dict[f"{prefix}lin.{kind}"] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def test_shared_tied_unsaved_and_renamed_tensors(tmp_path):
    f = tmp_path / "w.pth"
    for cls in (Shared, Tied, WithPositions):
        reference = cls()
        torch.save(reference.state_dict(), f)
        model = build_from(cls, f)
        assert no_meta(model)
        for k, v in reference.state_dict().items():
            assert torch.equal(model.state_dict()[k], v), (cls.__name__, k)
    torch.save(Tied().state_dict(), f)
    tied = build_from(Tied, f)
    assert tied.out.weight is tied.embed.weight
    torch.save(Shared().state_dict(), f)
    shared = build_from(Shared, f)
    assert shared.a is shared.b and len(list(shared.parameters())) == 2
    torch.save(WithPositions().state_dict(), f)
    assert torch.equal(build_from(WithPositions, f).positions, torch.arange(3))
    old = Renaming()
    torch.save({"old.weight": old.lin.weight.detach(), "old.bias": old.lin.bias.detach()}, f)
    assert torch.equal(build_from(Renaming, f).lin.weight, old.lin.weight)


def test_data_parallel_prefix_is_stripped(tmp_path):
    reference = make_mlp()
    f = tmp_path / "dp.pth"
    torch.save(nn.DataParallel(reference).state_dict(), f)
    assert torch.equal(zoo.get_model("mlp", weights=f).output_layer.weight, reference.output_layer.weight)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:043a\nsize 45519250\n", "Git LFS pointer"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML page"),
        (b"\x80\x02}q\x00random bytes" * 3, "not a"),
    ],
)
def test_things_that_are_not_weight_files(tmp_path, content, message):
    f = tmp_path / "horse2zebra_0.4.0.pth"
    f.write_bytes(content)
    with pytest.raises(ZooError, match=message) as info:
        zoo.get_model("cyclegan", weights=f)
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_a_model_built_under_the_meta_device_stays_there_without_weights():
    with torch.device("meta"):
        model = zoo.get_model("resnet18", weights=None)
    assert (
        all(p.is_meta for p in model.parameters()) and sum(p.numel() for p in model.parameters()) == 11689512
    )
