"""Convolutions run as oneDNN's fused kernels with weights packed once: the fp32 CPU fast path of the tasks.

Eager PyTorch runs each convolution of a (BatchNorm-folded) model as its own oneDNN call that reorders the
weights into oneDNN's blocked layout on every call, then the ReLU and the residual add as separate passes
over memory. This rewrites the model's FX graph so that each convolution is one call of
`torch.ops.mkldnn._convolution_pointwise` with its weights reordered once, here, for the input size it will
see, and with the ReLU after it, or the residual add and ReLU after it, done inside the same call. These are
the kernels inductor emits for the same model under `torch.compile` with freezing, without the compile
(4-8 s for resnet50 here, in every process: inductor's cache refuses graphs holding packed weights). resnet50
on 2 AVX-512 cores, batches of 4, in one run: 40.2 ms an image against 50.3 eager and 39.9 compiled
(docs/benchmarks.md). The results are those of the eager model (the same kernels and the same order of
operations; equal to the bit on resnet50), and a probe checks it when the model is built: a model the rewrite
does not suit is left as it is.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn


class FusedConv2d(nn.Module):
    """A Conv2d (bias folded in) with an optional residual add and ReLU after it, as one oneDNN call.

    `forward(x)` is `relu?(conv(x))`; `forward(x, other)` is `relu?(conv(x) + other)`, written into `other`'s
    memory when `inplace` (the graph has no later use of it). The weight is held in oneDNN's packed layout;
    `unpack()` turns it back into a plain tensor, after which the same module runs as eager PyTorch (the
    fallback should oneDNN refuse an input).
    """

    def __init__(self, conv: nn.Conv2d, relu: bool, input_size: list[int], inplace: bool = False) -> None:
        super().__init__()
        self.padding = list(conv.padding)
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self.inplace = inplace
        weight = conv.weight.detach()
        # Packed for the size this convolution sees in a chunk of the task's batch; other batch sizes
        # run on the same packed weights (measured: no slower at 3 or 8 images a call).
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            weight, self.padding, self.stride, self.dilation, self.groups, input_size
        )
        self.bias = None if conv.bias is None else conv.bias.detach().contiguous()

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """The convolution of `x`, plus `other` if given, then the ReLU if fused."""
        if self.weight.is_mkldnn:
            return self.onednn(x, other)
        # Unpacked: eager PyTorch, the same arithmetic.
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        y = y if other is None else y + other
        return torch.relu(y) if self.relu else y

    def onednn(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """The fused oneDNN call on the packed weight."""
        conv_args = (self.padding, self.stride, self.dilation, self.groups)
        if other is None:
            attr = "relu" if self.relu else "none"
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, *conv_args, attr, [], ""
            )
        unary = "relu" if self.relu else None
        if self.inplace:  # no new output tensor: resnet50 3 % faster (38.9 ms an image against 40.2)
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                other, x, self.weight, self.bias, *conv_args, "add", 1.0, unary, [], None
            )
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, self.weight, self.bias, *conv_args, "add", 1.0, unary, [], None
        )

    def unpack(self) -> None:
        """Hold the weight as a plain tensor again: the module then runs as eager PyTorch."""
        if self.weight.is_mkldnn:
            self.weight = self.weight.to_dense()

    def extra_repr(self) -> str:
        return (
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, relu={self.relu}, "
            f"inplace={self.inplace}"
        )


def available() -> bool:
    """Whether this build of torch has oneDNN and the fused convolution operators."""
    try:
        return torch.backends.mkldnn.is_available() and all(
            hasattr(torch.ops.mkldnn, name)
            for name in ("_convolution_pointwise", "_reorder_convolution_weight")
        )
    except (AttributeError, RuntimeError):
        return False


def fuse_convolutions(model: nn.Module, input_size: list[int]) -> fx.GraphModule | None:
    """A copy of `model` (an fp32 CPU fx.GraphModule, BatchNorms folded) whose convolutions are fused
    oneDNN calls packed for inputs of `input_size` (N, C, H, W); None when it does not apply.

    None (and `model` is used as it is) when oneDNN is missing, `model` is not a GraphModule or has no
    plain 2-d convolution, the rewrite fails, or its output on a probe input differs from `model`'s by more
    than float rounding. Parameters other than the convolutions' are shared with `model`, not copied.
    """
    if not isinstance(model, fx.GraphModule) or not available():
        return None
    try:
        fused, probe, expected = _rewrite(model, input_size)
        if fused is None or not isinstance(expected, torch.Tensor):  # nothing to fuse, or not a classifier
            return None
        with torch.inference_mode():
            got = fused(probe)
    except Exception as e:  # an operator, layout or graph this rewrite does not know: eager is still right
        warnings.warn(
            f"oneDNN convolution fusion is not used for this model ({type(e).__name__}: {e}); "
            "it runs in eager PyTorch",
            stacklevel=2,
        )
        return None
    if not isinstance(got, torch.Tensor) or not _close(got, expected):
        warnings.warn(
            "oneDNN convolution fusion is not used for this model (its output differed from eager "
            "PyTorch's on a probe input); it runs in eager PyTorch",
            stacklevel=2,
        )
        return None
    return fused


def unpack(model: nn.Module) -> None:
    """Turn every fused convolution of `model` back into eager PyTorch (plain weights, separate ops)."""
    for module in model.modules():
        if isinstance(module, FusedConv2d):
            module.unpack()


def _close(got: torch.Tensor, expected: torch.Tensor) -> bool:
    if got.shape != expected.shape:
        return False
    # Same kernels, same order: measured equal to the bit on resnet50; allow float rounding all the same.
    finite = expected[expected.isfinite()]
    scale = (float(finite.abs().max()) if finite.numel() else 0.0) + 1.0
    return torch.allclose(got, expected, rtol=0.0, atol=1e-4 * scale, equal_nan=True)


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return type(modules.get(str(node.target))) is nn.ReLU
    if node.op == "call_function":
        return node.target in (F.relu, torch.relu, torch.relu_) and len(node.args) == 1
    return node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1


def _is_add(node: fx.Node) -> bool:
    return (
        node.op == "call_function"
        and node.target in (operator.add, operator.iadd, torch.add)
        and len(node.args) == 2
        and not node.kwargs
    )


def _shape(node: Any) -> torch.Size | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return getattr(meta, "shape", None)


def _dtype(node: Any) -> torch.dtype | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return getattr(meta, "dtype", None)


def _rewrite(model: fx.GraphModule, input_size: list[int]) -> tuple[fx.GraphModule | None, torch.Tensor, Any]:
    """The fused graph module (None if no convolution qualifies), the probe input and `model`'s output."""
    from torch.fx.passes.shape_prop import ShapeProp

    modules = dict(model.named_modules())
    # One image is enough to learn every convolution's input size (the batch is set to input_size's) and
    # gives the reference output for the probe.
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn([1, *input_size[1:]], generator=generator).contiguous(
        memory_format=torch.channels_last
    )
    with torch.inference_mode():
        expected = ShapeProp(model).propagate(probe)

    # Which convolutions fuse, with what: conv -> (relu, the residual node or None, the last node absorbed).
    plan: dict[fx.Node, tuple[bool, fx.Node | None, fx.Node]] = {}
    claimed: set[fx.Node] = set()  # adds already absorbed (add(conv_a, conv_b) is absorbed once)
    for node in model.graph.nodes:
        conv = modules.get(str(node.target)) if node.op == "call_module" else None
        if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        if conv.weight.dtype != torch.float32 or conv.weight.device.type != "cpu":
            continue
        if _dtype(node.args[0]) != torch.float32 or len(_shape(node.args[0]) or ()) != 4:
            continue
        relu, other, last = False, None, node
        users = list(node.users)
        if len(users) == 1 and _is_relu(users[0], modules):
            relu, last = True, users[0]
        elif len(users) == 1 and _is_add(users[0]) and users[0] not in claimed:
            add = users[0]
            candidate = add.args[1] if add.args[0] is node else add.args[0]
            if (
                isinstance(candidate, fx.Node)
                and candidate is not node
                and _shape(candidate) == _shape(node)
                and _dtype(candidate) == torch.float32
            ):
                add_users = list(add.users)
                other, last = candidate, add
                claimed.add(add)
                if len(add_users) == 1 and _is_relu(add_users[0], modules):
                    relu, last = True, add_users[0]
        plan[node] = (relu, other, last)
    if not plan:
        return None, probe, expected

    # A new graph: nodes copied in order, each fused convolution emitted where its last absorbed node was
    # (its residual may be computed after the convolution, as ResNet's downsample is).
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    absorbed: dict[fx.Node, fx.Node] = {}  # the last absorbed node -> its convolution
    skipped: dict[fx.Node, fx.Node] = {}  # the convolution and nodes up to its last -> that last node
    for conv_node, (_, _, last) in plan.items():
        absorbed[last] = conv_node
        node = conv_node
        while node is not last:
            skipped[node] = last
            node = next(iter(node.users))
    order = {node: i for i, node in enumerate(model.graph.nodes)}
    root: dict[str, Any] = {}
    for node in model.graph.nodes:
        if node in absorbed:
            conv_node = absorbed[node]
            relu, other, last = plan[conv_node]
            # The sum may go into the residual's memory when that is a fused convolution's own output (a
            # fresh tensor, no view of anything), is not this convolution's input, and nothing reads it later.
            inplace = (
                other is not None
                and other in absorbed
                and other is not conv_node.args[0]
                and all(
                    order[skipped.get(u, u)] < order[last]
                    for u in other.users
                    if skipped.get(u, u) is not last
                )
            )
            conv = modules[str(conv_node.target)]
            name = f"fused_{len(root)}_{str(conv_node.target).replace('.', '_')}"
            size = list(_shape(conv_node.args[0]) or ())
            root[name] = FusedConv2d(conv, relu, [input_size[0], *size[1:]], inplace)
            args = (env[conv_node.args[0]],) if other is None else (env[conv_node.args[0]], env[other])
            env[node] = graph.call_module(name, args)
        elif node in skipped:
            continue
        else:
            env[node] = graph.node_copy(node, lambda n: env[n])
            if node.op in ("call_module", "get_attr"):  # shared with `model`, not copied
                target = str(node.target)
                root[target] = (
                    model.get_submodule(target) if node.op == "call_module" else _attr(model, target)
                )
    fused = fx.GraphModule(root, graph, class_name="FusedConvModule")
    fused.eval()
    return fused, probe, expected


def _attr(model: nn.Module, target: str) -> Any:
    *path, name = target.split(".")
    owner = model.get_submodule(".".join(path)) if path else model
    return getattr(owner, name)
