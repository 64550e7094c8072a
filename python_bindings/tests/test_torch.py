"""moe_mlir.torch: the layer, its custom ops, autograd, opcheck and
torch.compile, against the plain-PyTorch reference (torch_reference.py)."""

import pytest

torch = pytest.importorskip("torch")

import moe_mlir  # noqa: E402
from moe_mlir.torch import MoELayer  # noqa: E402
from torch_reference import moe_layer as reference, relative_error  # noqa: E402

OPTIONS = dict(hidden=32, ffn=16, experts=6, top_k=2)


def make_layer(rng_seed, **changes):
    torch.manual_seed(rng_seed)
    options = dict(OPTIONS, **changes)
    return MoELayer(**options), options


def reference_of(layer, x, **kwargs):
    spec = layer.spec
    leaves = [t.detach().double().requires_grad_()
              for t in (x, layer.w_gate, layer.w1, layer.w2)]
    outputs = reference(*leaves, layer.bias, top_k=spec.top_k,
                        router=spec.router, normalize=spec.normalize,
                        scaling=spec.scaling, capacity=spec.capacity,
                        activation=spec.activation, aux_loss=spec.aux_loss)
    return leaves, outputs


@pytest.fixture
def seed(rng):
    return int(rng.integers(1 << 30))


@pytest.mark.parametrize("changes", [
    {}, {"router": "sigmoid", "capacity": 0.8}, {"activation": "gelu_glu",
                                                 "top_k": 3, "scaling": 2.0},
], ids=["default", "sigmoid-capacity", "gelu-k3"])
def test_forward_and_backward_match_pytorch(seed, changes):
    layer, _ = make_layer(seed, **changes)
    x = torch.randn(20, 32, requires_grad=True)
    y = layer(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()

    leaves, (ref_y, ref_indices, ref_loads, _) = reference_of(layer, x)
    (ref_y * dy.double()).sum().backward()
    assert relative_error(y, ref_y) < 1e-4
    assert torch.equal(layer.loads, ref_loads)
    for name, got, ref in zip(("x", "w_gate", "w1", "w2"),
                              (x.grad, layer.w_gate.grad, layer.w1.grad,
                               layer.w2.grad), leaves):
        assert relative_error(got, ref.grad) < 1e-4, name


def test_leading_dimensions_and_token_counts_compile_once_each(seed):
    layer, _ = make_layer(seed)
    for shape in ((2, 5, 32), (7, 32), (2, 5, 32)):
        x = torch.randn(*shape)
        y = layer(x)
        assert y.shape == x.shape
        ref_y = reference_of(layer, x.reshape(-1, 32))[1][0]
        assert relative_error(y.reshape(-1, 32), ref_y) < 1e-4
    info = moe_mlir.torch._function.cache_info()
    assert info.hits >= 1


@pytest.mark.parametrize("aux_scale", [1.0, 0.5])
def test_aux_loss_value_and_gradient(seed, aux_scale):
    layer, _ = make_layer(seed, aux_loss=0.01)
    x = torch.randn(16, 32, requires_grad=True)
    y, aux = layer(x)
    dy = torch.randn_like(y)
    ((y * dy).sum() + aux_scale * aux).backward()

    leaves, (ref_y, _, _, ref_aux) = reference_of(layer, x)
    ((ref_y * dy.double()).sum() + aux_scale * ref_aux).backward()
    assert abs(aux.item() - ref_aux.item()) <= 1e-5 * abs(ref_aux.item())
    for got, ref in zip((x.grad, layer.w_gate.grad), leaves[:2]):
        assert relative_error(got, ref.grad) < 1e-4


def test_bf16(seed):
    layer, _ = make_layer(seed, dtype=torch.bfloat16)
    x = torch.randn(16, 32, dtype=torch.bfloat16, requires_grad=True)
    y = layer(x)
    assert y.dtype == torch.bfloat16
    dy = torch.randn_like(y)
    (y.float() * dy.float()).sum().backward()
    leaves, (ref_y, _, _, _) = reference_of(layer, x)
    (ref_y * dy.double()).sum().backward()
    assert relative_error(y, ref_y) < 2e-2
    assert relative_error(layer.w1.grad, leaves[2].grad) < 3e-2


def test_selection_bias_and_loads(seed):
    layer, _ = make_layer(seed, selection_bias=True)
    x = torch.randn(24, 32)
    layer(x)
    assert int(layer.loads.sum()) == 24 * 2
    before = layer.loads.clone()
    layer.update_bias(0.5)
    below = before.float() < before.float().mean()
    assert torch.all(layer.bias[below] > 0)
    # The bias steers selection: the reference with the same bias agrees.
    y = layer(x)
    ref_y = reference_of(layer, x)[1][0]
    assert relative_error(y, ref_y) < 1e-4


def test_opcheck(seed):
    layer, _ = make_layer(seed, aux_loss=0.01)
    x = torch.randn(12, 32, requires_grad=True)
    torch.library.opcheck(
        torch.ops.moe_mlir.moe_layer.default,
        (x, layer.w_gate, layer.w1, layer.w2, None, layer._spec_text))
    dy = torch.randn(12, 32)
    torch.library.opcheck(
        torch.ops.moe_mlir.moe_layer_backward.default,
        (x.detach(), layer.w_gate.detach(), layer.w1.detach(),
         layer.w2.detach(), None, dy, torch.tensor(1.0), layer._spec_text))


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = torch.nn.LayerNorm(32)
        self.moe = MoELayer(**OPTIONS)

    def forward(self, x):
        return x + self.moe(self.norm(x))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(seed, backend):
    """fullgraph=True fails on any graph break; inductor (the default
    backend) also generates C++ for the code around the layer."""
    torch.manual_seed(seed)
    model = Block()
    x = torch.randn(3, 8, 32, requires_grad=True)
    expected = model(x)
    expected.sum().backward()
    grad = x.grad.clone()
    x.grad = None
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    y = compiled(x)
    y.sum().backward()
    assert torch.allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert torch.allclose(x.grad, grad, rtol=1e-5, atol=1e-5)


def test_bad_arguments_raise_clear_errors(seed):
    layer, _ = make_layer(seed)
    with pytest.raises(TypeError, match="x is torch.float64"):
        layer(torch.randn(4, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"wants \[tokens, 32\]"):
        torch.ops.moe_mlir.moe_layer(torch.randn(4, 31), layer.w_gate,
                                     layer.w1, layer.w2, None,
                                     layer._spec_text)
    with pytest.raises(moe_mlir.RuntimeError, match="argument 2"):
        torch.ops.moe_mlir.moe_layer(torch.randn(4, 32), layer.w_gate,
                                     layer.w1[:, :, :8].contiguous(),
                                     layer.w2, None, layer._spec_text)
    with pytest.raises(moe_mlir.CompileError, match="top_k"):
        MoELayer(32, 16, 4, 5)
    with pytest.raises(ValueError, match="on meta"):
        moe_mlir.torch._host(torch.empty(2, device="meta"))


def test_device_path_reaches_moerts_checks(seed):
    """The CUDA path's packing (addresses, dtypes, shapes) without a GPU:
    moert checks everything, then refuses a CPU function."""
    layer, _ = make_layer(seed)
    spec = layer._spec_text
    function = moe_mlir.torch._function(spec, 4, False)
    x = torch.randn(4, 32)
    args = [moe_mlir.torch._device_spec(t) for t in
            (x, layer.w_gate.detach(), layer.w1.detach(), layer.w2.detach())]
    y = torch.empty(4, 32)
    indices = torch.empty(4, 2, dtype=torch.int32)
    results = [moe_mlir.torch._device_spec(y),
               moe_mlir.torch._device_spec(indices)]
    with pytest.raises(moe_mlir.RuntimeError,
                       match="a CPU function takes host tensors"):
        function._handle.call_device(args, results, 0)
    bad = [moe_mlir.torch._device_spec(torch.empty(4, 2))] + results[1:]
    with pytest.raises(moe_mlir.RuntimeError,
                       match=r"result 0 was given as f32\[4, 2\]"):
        function._handle.call_device(args, bad, 0)
    with pytest.raises(moe_mlir.RuntimeError, match="argument 1 has shape"):
        function._handle.call_device(
            [args[0], moe_mlir.torch._device_spec(torch.empty(32, 5))] +
            args[2:], results, 0)
    with pytest.raises(ValueError, match="contiguous"):
        moe_mlir.torch._device_spec(torch.empty(4, 8).t())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_forward_matches_the_cpu(seed):
    layer, _ = make_layer(seed)
    x = torch.randn(64, 32)
    expected = layer(x)
    y = layer.to("cuda")(x.to("cuda"))
    assert relative_error(y.cpu(), expected) < 1e-4


def test_artifacts_take_torch_tensors_through_dlpack(seed):
    """Any DLPack tensor, bf16 included: torch tensors go to the artifact in
    place and give what the same values as NumPy arrays give."""
    torch.manual_seed(seed)
    spec = moe_mlir.LayerSpec(tokens=8, hidden=32, ffn=16, experts=6, top_k=2,
                              dtype="bf16")
    artifact = moe_mlir.compile(spec)
    tensors = [torch.randn(8, 32), torch.randn(32, 6) / 6,
               torch.randn(6, 32, 32) / 6, torch.randn(6, 16, 32) / 4]
    tensors = [t.bfloat16() for t in tensors]
    y, indices = artifact(*tensors)
    y_numpy, indices_numpy = artifact(*(t.float().numpy() for t in tensors))
    assert (indices == indices_numpy).all()
    assert (y.astype("float32") == y_numpy.astype("float32")).all()
    assert torch.from_dlpack(indices).shape == (8, 2)
