"""moe_mlir.torch: the compiled MoE layer as a PyTorch module and custom ops.

    from moe_mlir.torch import MoELayer
    layer = MoELayer(hidden=64, ffn=32, experts=8, top_k=2)
    y = layer(x)            # x [..., 64]; compiled for x's token count
    y.sum().backward()      # the compiler's training step

Two custom ops carry the work, so torch.compile(fullgraph=True) sees them as
single nodes with known output shapes (their fake implementations):

- `moe_mlir::moe_layer(x, w_gate, w1, w2, bias, spec) -> (y, indices,
  loads, aux)`: the forward artifact; `loads` are the kept assignments per
  expert (for aux-loss-free bias updates), `aux` the load-balancing loss
  (0 unless the spec's aux_loss > 0);
- `moe_mlir::moe_layer_backward(x, w_gate, w1, w2, bias, dy, d_aux, spec)
  -> (dx, dw_gate, dw1, dw2)`: the training artifact (moe-compile
  --backward), registered as the forward's autograd formula.

`spec` is the layer's spec text without the token count; each op compiles
(once per token count, cached in memory and on disk) for the x it meets.
Artifacts compiled ahead of time (`precompile()`, on a machine with the
compiler) are found in MOE_MLIR_ARTIFACT_DIR first, so a runtime-only
installation runs the layer too. Tensors are passed to the artifact without
a copy and its results become tensors without a copy. On CUDA, PyTorch's
device memory goes straight to the artifacts (moert_function_call_device_owned)
on PyTorch's current stream.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shutil
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ._errors import CompileError, has_compiler
from .artifact import Artifact
from .compiler import compile as _compile, compile_file as _compile_file
from .spec import LayerSpec

_DTYPES = {torch.float32: "f32", torch.bfloat16: "bf16"}


@functools.lru_cache(maxsize=None)
def _spec(text: str) -> LayerSpec:
    return LayerSpec.parse(text)


def artifact_name(text: str, tokens: int, backward: bool,
                  target: str = "cpu") -> str:
    """The file name of the forward or training artifact of the layer spec
    `text` at `tokens` for `target`: what precompile() writes and the layer
    looks for in MOE_MLIR_ARTIFACT_DIR (a hash of the spec, target, kind)."""
    spec = _spec(text).replace(tokens=tokens).text()
    key = hashlib.sha256(
        f"{spec}\0{target}\0{int(backward)}".encode()).hexdigest()[:20]
    return f"moe_layer-{'train' if backward else 'forward'}-{key}.so"


@functools.lru_cache(maxsize=64)
def _function(text: str, tokens: int, backward: bool, target: str = "cpu"):
    """The forward or training function of `text` at `tokens`: the
    precompiled artifact in MOE_MLIR_ARTIFACT_DIR if there is one, else
    compiled (and cached) now."""
    spec = _spec(text).replace(tokens=tokens)
    name = artifact_name(text, tokens, backward, target)
    directory = os.environ.get("MOE_MLIR_ARTIFACT_DIR", "")
    path = os.path.join(directory, name) if directory else ""
    if path and os.path.exists(path):
        artifact = Artifact(path)
    elif not has_compiler():
        kind = "training" if backward else "forward"
        raise CompileError(
            f"moe_mlir: no {kind} artifact for the layer '{spec.text()}' on "
            f"{target} in MOE_MLIR_ARTIFACT_DIR="
            f"{directory or '(not set)'} (looked for {name}), and this "
            "installation has no compiler to make it: run "
            "moe_mlir.torch.precompile() where the compiler is")
    else:
        artifact = _compile(spec, target=target, backward=backward)
    return artifact.function("moe_layer_train" if backward else "moe_layer")


def precompile(layer: Union["MoELayer", LayerSpec, str],
               tokens: Iterable[int], target: str = "cpu",
               directory: Optional[str] = None,
               backward: bool = True) -> List[str]:
    """Compiles the forward (and, with `backward`, the training) artifact of
    `layer` (a MoELayer, a LayerSpec or spec text) at each token count for
    `target` ("cpu", "cuda:sm_90a", ...) into `directory` (default
    MOE_MLIR_ARTIFACT_DIR) under the names a layer looks for there; returns
    their paths. The folder can then go to a machine without the compiler."""
    directory = directory or os.environ.get("MOE_MLIR_ARTIFACT_DIR")
    if not directory:
        raise ValueError("moe_mlir: precompile() needs a directory (or "
                         "MOE_MLIR_ARTIFACT_DIR)")
    os.makedirs(directory, exist_ok=True)
    if isinstance(layer, MoELayer):
        text = layer._spec_text
    else:
        text = layer.text() if isinstance(layer, LayerSpec) else layer
    text = _spec(text).replace(tokens=1).text()
    paths = []
    for count in tokens:
        for kind in ((False, True) if backward else (False,)):
            spec = _spec(text).replace(tokens=count)
            compiled, _ = _compile_file(spec, target=target, backward=kind)
            path = os.path.join(directory,
                                artifact_name(text, count, kind, target))
            shutil.copyfile(compiled, path + ".part")
            os.replace(path + ".part", path)
            paths.append(path)
    return paths


def _cuda_target(device: torch.device) -> str:
    """The compiler's target for a GPU: sm_90a (the wgmma/TMA engine) for
    compute capability 9.0 exactly, sm_80 code (which runs on every 8.x
    chip) for Ampere and Ada."""
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) == (9, 0):
        return "cuda:sm_90a"
    if major == 9:
        return "cuda:sm_90"
    if major == 8:
        return "cuda:sm_80"
    raise ValueError(f"moe_mlir: no CUDA target for compute capability "
                     f"{major}.x (sm_80 and sm_90 are supported)")


_MOERT_DTYPES = {torch.float32: "f32", torch.bfloat16: "bf16",
                 torch.float16: "f16", torch.int32: "i32", torch.int64: "i64"}


def _device_spec(t: Tensor) -> tuple:
    """(address, dtype, dims) of a dense tensor, for Function.call_device(_owned):
    the artifact reads and writes the tensor's own memory."""
    if not t.is_contiguous():
        raise ValueError("moe_mlir: device tensors must be contiguous")
    return (t.data_ptr(), _MOERT_DTYPES[t.dtype], list(t.shape))


def _call_cuda(function, args: list, x: Tensor) -> list:
    """Runs a CUDA function on PyTorch's tensors (in place: their device
    pointers go to the artifact) on PyTorch's current stream; its results
    come back as tensors over the artifact's own buffers (no copy), which
    return to moert when PyTorch frees them."""
    if x.device.index not in (None, 0):
        raise ValueError("moe_mlir: CUDA tensors on device 0 only for now "
                         f"(got {x.device})")
    results = function._handle.call_device_owned(
        [_device_spec(t.contiguous()) for t in args if t is not None],
        torch.cuda.current_stream(x.device).cuda_stream)
    # Each result is a DLPack capsule; the tensor keeps its owner alive.
    return [torch.utils.dlpack.from_dlpack(r) for r in results]


def _forward_cuda(text: str, layer: LayerSpec, x: Tensor, w_gate: Tensor,
                  w1: Tensor, w2: Tensor, bias: Optional[Tensor]):
    """y and the indices, from the forward artifact on the GPU."""
    function = _function(text, x.shape[0], False, _cuda_target(x.device))
    y, indices = _call_cuda(function, [x, w_gate, w1, w2, bias], x)
    return y, indices


def _host(t: Tensor) -> Tuple[np.ndarray, str]:
    """A NumPy view of a CPU tensor's memory (no copy) and its moert dtype."""
    if t.device.type != "cpu":
        raise ValueError(
            f"moe_mlir: a tensor on {t.device} where the CPU path was taken: "
            "keep all of the layer's tensors on one device")
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), "bf16"
    if t.dtype == torch.float16:
        return t.view(torch.int16).numpy().view(np.uint16), "f16"
    return t.numpy(), {torch.float32: "f32", torch.int32: "i32",
                       torch.int64: "i64"}[t.dtype]


def _tensor(array: np.ndarray, dtype: str) -> Tensor:
    """A tensor over a result's memory (no copy)."""
    if dtype in ("bf16", "f16"):
        return torch.from_numpy(array.view(np.int16)).view(
            torch.bfloat16 if dtype == "bf16" else torch.float16)
    return torch.from_numpy(array)


def _check(spec: LayerSpec, x: Tensor, w_gate: Tensor, w1: Tensor, w2: Tensor,
           bias: Optional[Tensor]) -> None:
    """The errors torch users meet first, in torch terms; moert checks the
    rest (every dimension) with its own messages."""
    want = {"f32": torch.float32, "bf16": torch.bfloat16}[spec.dtype]
    for name, t in (("x", x), ("w_gate", w_gate), ("w1", w1), ("w2", w2)):
        if t.dtype != want:
            raise TypeError(f"moe_mlir: {name} is {t.dtype} but the layer is "
                            f"{spec.dtype} ({want})")
    for name, t in (("w_gate", w_gate), ("w1", w1), ("w2", w2),
                    ("bias", bias)):
        if t is not None and t.device != x.device:
            raise ValueError(f"moe_mlir: {name} is on {t.device} but x is on "
                             f"{x.device}: keep all of the layer's tensors "
                             "on one device")
    if x.dim() != 2 or x.shape[1] != spec.hidden:
        raise ValueError(f"moe_mlir: x has shape {tuple(x.shape)}; the layer "
                         f"wants [tokens, {spec.hidden}]")
    if spec.bias != (bias is not None):
        raise ValueError("moe_mlir: the layer " +
                         ("needs a bias [experts]" if spec.bias else
                          "takes no bias"))


def _arguments(*tensors) -> Tuple[list, list]:
    arrays, dtypes = [], []
    for t in tensors:
        if t is None:
            continue
        array, dtype = _host(t)
        arrays.append(array)
        dtypes.append(dtype)
    return arrays, dtypes


def _aux_loss(spec: LayerSpec, x: Tensor, w_gate: Tensor,
              loads: Tensor) -> Tensor:
    """COEF·E·Σ_e f_e·P_e (ARCHITECTURE.md, "Backward"), from the router
    probabilities and the artifact's loads; its gradient comes from the
    training artifact."""
    if spec.aux_loss <= 0:
        return torch.zeros((), dtype=torch.float32, device=x.device)
    scores = x.detach().float() @ w_gate.detach().float()
    p = torch.softmax(scores, dim=1) if spec.router == "softmax" \
        else torch.sigmoid(scores)
    tokens = x.shape[0]
    f = loads.float() / (tokens * spec.top_k)
    return (spec.aux_loss * spec.experts * (f * p.mean(dim=0)).sum()).float()


@torch.library.custom_op("moe_mlir::moe_layer", mutates_args=())
def moe_layer(x: Tensor, w_gate: Tensor, w1: Tensor, w2: Tensor,
              bias: Optional[Tensor], spec: str
              ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    layer = _spec(spec)
    _check(layer, x, w_gate, w1, w2, bias)
    if x.device.type == "cuda":
        y, indices = _forward_cuda(spec, layer, x, w_gate, w1, w2, bias)
    else:
        arrays, dtypes = _arguments(x, w_gate, w1, w2, bias)
        function = _function(spec, x.shape[0], False)
        y, indices = (_tensor(a, d) for a, (d, _) in
                      zip(function.call_prepared(arrays, dtypes),
                          function.results))
    # Kept assignments per expert: the first C in token-then-slot order.
    # scatter_add, not bincount: bincount sizes its result on the host,
    # which would wait for the GPU on every forward.
    flat = indices.flatten().long()
    counts = torch.zeros(layer.experts, dtype=torch.int64,
                         device=x.device).scatter_add_(
                             0, flat, torch.ones_like(flat))
    if layer.capacity > 0:
        tokens = x.shape[0]
        capacity = min(tokens, math.ceil(
            layer.capacity * tokens * layer.top_k / layer.experts))
        counts = counts.clamp(max=capacity)
    loads = counts.to(torch.int32)
    return y, indices, loads, _aux_loss(layer, x, w_gate, loads).to(x.device)


def _backward_cuda(text: str, layer: LayerSpec, x: Tensor, w_gate: Tensor,
                   w1: Tensor, w2: Tensor, bias: Optional[Tensor],
                   dy: Tensor) -> list:
    """dx, dw_gate, dw1, dw2 from the training artifact on the GPU."""
    function = _function(text, x.shape[0], True, _cuda_target(x.device))
    results = _call_cuda(function, [x, w_gate, w1, w2, bias, dy], x)
    return results[2:6]


@moe_layer.register_fake
def _(x, w_gate, w1, w2, bias, spec):
    layer = _spec(spec)
    tokens = x.shape[0]
    return (x.new_empty((tokens, layer.hidden)),
            x.new_empty((tokens, layer.top_k), dtype=torch.int32),
            x.new_empty((layer.experts,), dtype=torch.int32),
            x.new_empty((), dtype=torch.float32))


@torch.library.custom_op("moe_mlir::moe_layer_backward", mutates_args=())
def moe_layer_backward(x: Tensor, w_gate: Tensor, w1: Tensor, w2: Tensor,
                       bias: Optional[Tensor], dy: Tensor, d_aux: Tensor,
                       spec: str) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    layer = _spec(spec)
    _check(layer, x, w_gate, w1, w2, bias)
    if x.device.type != "cuda":
        function = _function(spec, x.shape[0], True)

    def gradients(dy: Tensor) -> list:
        if x.device.type == "cuda":
            return _backward_cuda(spec, layer, x, w_gate, w1, w2, bias,
                                  dy.to(x.dtype))
        arrays, dtypes = _arguments(x, w_gate, w1, w2, bias, dy.to(x.dtype))
        results = [_tensor(a, d) for a, (d, _) in
                   zip(function.call_prepared(arrays, dtypes),
                       function.results)]
        return results[2:6]  # dx, dw_gate, dw1, dw2

    grads = gradients(dy)
    if layer.aux_loss > 0:
        # The training step differentiates Σ y·dy + aux; an upstream
        # gradient g of aux wants g·d(aux): add (g - 1)·d(aux), d(aux)
        # being the step's gradients at dy = 0.
        g = float(d_aux)
        if g != 1.0:
            aux_only = gradients(torch.zeros_like(dy))
            grads = [(a.float() + (g - 1.0) * b.float()).to(a.dtype)
                     for a, b in zip(grads, aux_only)]
    return tuple(grads)


@moe_layer_backward.register_fake
def _(x, w_gate, w1, w2, bias, dy, d_aux, spec):
    return (torch.empty_like(x), torch.empty_like(w_gate),
            torch.empty_like(w1), torch.empty_like(w2))


def _setup_context(ctx, inputs, output):
    x, w_gate, w1, w2, bias, spec = inputs
    ctx.save_for_backward(x, w_gate, w1, w2, bias)
    ctx.spec = spec


def _backward(ctx, dy, d_indices, d_loads, d_aux):
    x, w_gate, w1, w2, bias = ctx.saved_tensors
    if d_aux is None:
        d_aux = torch.zeros((), dtype=torch.float32)
    if dy is None:
        dy = torch.zeros_like(x)
    dx, dw_gate, dw1, dw2 = torch.ops.moe_mlir.moe_layer_backward(
        x, w_gate, w1, w2, bias, dy.contiguous(), d_aux, ctx.spec)
    return dx, dw_gate, dw1, dw2, None, None


moe_layer.register_autograd(_backward, setup_context=_setup_context)


class MoELayer(torch.nn.Module):
    """A Mixture-of-Experts layer whose forward and backward are MoE-MLIR
    artifacts, compiled for each token count it meets (cached).

    Options are the layer spec's (ARCHITECTURE.md, "Semantics"): `router`
    "softmax" | "sigmoid", `capacity` factor (0 = dropless), `normalize`,
    `scaling`, `activation` "silu_glu" | "gelu_glu", `n_group` /
    `topk_group`, `aux_loss` coefficient (then forward returns (y, aux)),
    `dtype` torch.float32 | torch.bfloat16. `selection_bias=True` adds the
    aux-loss-free routing bias (a buffer, updated by `update_bias`).
    After each forward, `loads` holds the kept assignments per expert.
    """

    def __init__(self, hidden: int, ffn: int, experts: int, top_k: int, *,
                 router: str = "softmax", capacity: float = 0.0,
                 normalize: bool = True, scaling: float = 1.0,
                 activation: str = "silu_glu", n_group: int = 0,
                 topk_group: int = 0, aux_loss: float = 0.0,
                 selection_bias: bool = False,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        if dtype not in _DTYPES:
            raise TypeError(f"moe_mlir: dtype {dtype} (float32 or bfloat16)")
        spec = LayerSpec(tokens=1, hidden=hidden, ffn=ffn, experts=experts,
                         top_k=top_k, router=router, bias=selection_bias,
                         capacity=capacity, normalize=normalize,
                         scaling=scaling, activation=activation,
                         dtype=_DTYPES[dtype], n_group=n_group,
                         topk_group=topk_group, aux_loss=aux_loss)
        if has_compiler():
            spec.canonical()  # a bad option fails here, with the key named
        self.spec = spec
        self._spec_text = spec.text()
        self.w_gate = torch.nn.Parameter(torch.empty(hidden, experts,
                                                     dtype=dtype))
        self.w1 = torch.nn.Parameter(torch.empty(experts, hidden, 2 * ffn,
                                                 dtype=dtype))
        self.w2 = torch.nn.Parameter(torch.empty(experts, ffn, hidden,
                                                 dtype=dtype))
        if selection_bias:
            self.register_buffer("bias", torch.zeros(experts))
        else:
            self.register_buffer("bias", None)
        self.register_buffer("loads", torch.zeros(experts, dtype=torch.int32),
                             persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Scaled by fan-in so that y is of order 1, as moe-run's inputs.
        with torch.no_grad():
            for w, fan_in in ((self.w_gate, self.spec.hidden),
                              (self.w1, self.spec.hidden),
                              (self.w2, self.spec.ffn)):
                w.normal_(0.0, 1.0 / math.sqrt(fan_in))

    def forward(self, x: Tensor):
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        y, _, loads, aux = torch.ops.moe_mlir.moe_layer(
            tokens, self.w_gate, self.w1, self.w2, self.bias, self._spec_text)
        self.loads.copy_(loads)
        y = y.reshape(shape)
        return (y, aux) if self.spec.aux_loss > 0 else y

    @torch.no_grad()
    def update_bias(self, rate: float = 1e-3) -> None:
        """Aux-loss-free load balancing (DeepSeek-V3): raise the bias of
        experts below the mean load and lower it above, by `rate`."""
        if self.bias is None:
            raise RuntimeError("moe_mlir: the layer has no selection bias "
                               "(MoELayer(..., selection_bias=True))")
        loads = self.loads.float()
        self.bias += rate * torch.sign(loads.mean() - loads)

    def extra_repr(self) -> str:
        return self.spec.text().replace("tokens=1,", "")
