"""moe_mlir.torch on a GPU: the layers of cuda_cases.py against the
plain-PyTorch reference (forward and every gradient), against the same
layer on the CPU, on a side stream, without copies, through opcheck and
torch.compile. Every buffer the artifacts allocate, results included, is
poisoned (NaN, -1) first, so an element no kernel writes fails.

Skipped without a GPU. On a machine without the compiler, set
MOE_MLIR_ARTIFACT_DIR to the folder `python3 cuda_cases.py DIR` made."""

import os
import subprocess
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("needs a GPU", allow_module_level=True)

import moe_mlir  # noqa: E402
import moe_mlir.torch as moe_torch  # noqa: E402
from cuda_cases import CASES  # noqa: E402
from torch_reference import moe_layer as reference, relative_error  # noqa: E402

# Relative error allowed against the float64 reference: the layer's storage
# precision (bf16 gradients reduce over thousands of rows in f32 and are
# rounded once).
TOLERANCE = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (2e-2, 3e-2)}


@pytest.fixture(autouse=True)
def poisoned():
    moe_mlir.set_poison_allocations(True)
    yield
    moe_mlir.set_poison_allocations(False)


@pytest.fixture
def seed(rng):
    return int(rng.integers(1 << 30))


def make(name, seed, device="cuda"):
    options, tokens = CASES[name]
    torch.manual_seed(seed)
    layer = moe_torch.MoELayer(**options)
    if layer.bias is not None:
        # A selection bias that changes the choice (update_bias's job).
        layer.bias.normal_(0.0, 0.1)
    x = torch.randn(tokens, options["hidden"], dtype=layer.w1.dtype)
    return layer.to(device), x.to(device)


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_pytorch_forward_and_gradients(name, seed):
    layer, x = make(name, seed)
    x.requires_grad_()
    out = layer(x)
    y, aux = out if isinstance(out, tuple) else (out, None)
    dy = torch.randn_like(y)
    loss = (y.float() * dy.float()).sum() + (aux if aux is not None else 0)
    loss.backward()

    spec = layer.spec
    leaves = [t.detach().cpu().double().requires_grad_()
              for t in (x, layer.w_gate, layer.w1, layer.w2)]
    ref_y, ref_indices, ref_loads, ref_aux = reference(
        *leaves, None if layer.bias is None else layer.bias.cpu(),
        top_k=spec.top_k, router=spec.router, normalize=spec.normalize,
        scaling=spec.scaling, capacity=spec.capacity,
        activation=spec.activation, aux_loss=spec.aux_loss)
    ((ref_y * dy.cpu().double()).sum() + ref_aux).backward()

    forward_tol, gradient_tol = TOLERANCE[layer.w1.dtype]
    assert y.is_cuda and torch.isfinite(y).all()
    assert relative_error(y.cpu(), ref_y) < forward_tol
    # Near-ties of the f32 router scores may pick differently from float64.
    _, indices, loads, _ = torch.ops.moe_mlir.moe_layer(
        x.detach(), layer.w_gate, layer.w1, layer.w2, layer.bias,
        layer._spec_text)
    differ = (indices.cpu().long() != ref_indices.long()).float().mean()
    assert differ <= 0.01
    assert abs(int(loads.sum()) - int(ref_loads.sum())) <= \
        int(differ * indices.numel())
    if aux is not None:
        assert abs(aux.item() - ref_aux.item()) <= 1e-3 * abs(ref_aux.item())
    for label, got, ref in zip(("x", "w_gate", "w1", "w2"),
                               (x.grad, layer.w_gate.grad, layer.w1.grad,
                                layer.w2.grad), leaves):
        assert got.is_cuda and torch.isfinite(got).all(), label
        assert relative_error(got.cpu(), ref.grad) < gradient_tol, label


@pytest.mark.parametrize("name", ["f32", "bf16"])
def test_gpu_and_cpu_layers_agree(name, seed):
    layer, x = make(name, seed, device="cpu")
    expected = layer(x)
    got = layer.to("cuda")(x.cuda())
    assert relative_error(got.cpu(), expected) < TOLERANCE[x.dtype][0]


def test_runs_on_the_current_stream_without_copies(seed):
    layer, x = make("bf16", seed)
    expected = layer(x)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    before = torch.cuda.memory_allocated()
    with torch.cuda.stream(side):
        y = layer(x)
        grown = torch.cuda.memory_allocated() - before
        # Work queued behind the layer on the same stream sees its result
        # (moert poisons the buffer first: too early, and it reads NaN).
        doubled = y * 2
    side.synchronize()
    # y is the artifact's own buffer, handed over: PyTorch allocated none
    # of its bytes (only the loads' few).
    assert grown < y.numel() * y.element_size()
    assert y.is_cuda and y.dtype == torch.bfloat16
    # The scatter-add's atomics may round a bf16 element differently.
    assert relative_error(y, expected) < 1e-3
    assert torch.equal(doubled, y * 2)


def test_queued_calls_neither_wait_nor_take_memory_each(seed):
    """A call only queues its work (no host wait inside the artifact, none
    in moert): behind a busy stream, eight calls return long before the GPU
    gets to them, and reuse the blocks freed on that stream instead of
    allocating a set each."""
    layer, x = make("bf16-qwen3-shape", seed)
    expected = layer(x)

    def error():
        return (layer(x).float() - expected.float()).abs().max()
    # A first call of the loop's work: its blocks (moert's and PyTorch's)
    # are free for the calls below, none of which should need a new one.
    error()
    torch.cuda.synchronize()
    free_before = torch.cuda.mem_get_info()[0]
    torch.cuda._sleep(1_000_000_000)  # about half a second of GPU time
    errors, seconds = [], []
    for _ in range(8):
        start = time.perf_counter()
        errors.append(error())
        seconds.append(time.perf_counter() - start)
    grown = free_before - torch.cuda.mem_get_info()[0]
    torch.cuda.synchronize()
    assert sum(seconds) < 0.2, \
        f"the calls waited for the GPU (s per call: {seconds})"
    # One call's blocks are about 6 MiB here; eight sets would be ~50 MiB.
    assert grown < 16 << 20, f"{grown >> 20} MiB more device memory"
    scale = expected.float().abs().max()
    assert max(float(e) for e in errors) <= 1e-2 * float(scale)


def test_opcheck_on_cuda(seed):
    layer, x = make("bf16", seed)
    torch.library.opcheck(
        torch.ops.moe_mlir.moe_layer.default,
        (x, layer.w_gate.detach(), layer.w1.detach(), layer.w2.detach(),
         layer.bias, layer._spec_text),
        test_utils=("test_schema", "test_faketensor",
                    "test_aot_dispatch_static"))


def test_torch_compile_fullgraph_on_cuda(seed):
    layer, x = make("bf16", seed)
    expected = layer(x)
    compiled = torch.compile(lambda t: layer(t) * 0.5 + t, fullgraph=True)
    got = compiled(x)
    assert relative_error(got.float().cpu(),
                          (expected * 0.5 + x).float().cpu()) < 1e-2


def test_tensors_on_two_devices_are_an_error(seed):
    layer, x = make("bf16", seed)
    with pytest.raises(ValueError, match="w_gate is on cpu but x is on cuda"):
        torch.ops.moe_mlir.moe_layer(x, layer.w_gate.cpu(), layer.w1,
                                     layer.w2, None, layer._spec_text)
    with pytest.raises(TypeError, match="x is torch.float32"):
        layer(x.float())


@pytest.mark.skipif(not os.environ.get("MOE_RUN"),
                    reason="set MOE_RUN to moe-run (bench/python_device.sh)")
@pytest.mark.parametrize("name", ["bf16", "bf16-qwen3-shape"])
def test_same_results_as_moe_run(name, seed, tmp_path):
    """The layer and moe-run, on the same artifact and the same inputs."""
    layer, x = make(name, seed)
    y = layer(x)
    function = moe_torch._function(layer._spec_text, x.shape[0], False,
                                   moe_torch._cuda_target(x.device))
    tensors = (x, layer.w_gate, layer.w1, layer.w2)
    for index, t in enumerate(tensors):  # bf16 is exact in float32
        np.save(tmp_path / f"arg{index}.npy", t.detach().float().cpu().numpy())
    done = subprocess.run(
        [os.environ["MOE_RUN"], function.artifact.path, "--inputs",
         str(tmp_path), "--dump", str(tmp_path / "out")],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    run_y = torch.from_numpy(np.load(tmp_path / "out" / "result0.npy"))
    run_indices = np.load(tmp_path / "out" / "result1.npy")
    _, indices, _, _ = torch.ops.moe_mlir.moe_layer(
        x, layer.w_gate, layer.w1, layer.w2, layer.bias, layer._spec_text)
    assert (indices.cpu().numpy() == run_indices).all()
    # The scatter-add's atomics add in any order: bf16 roundings may differ.
    assert relative_error(y.float().cpu(), run_y) < 1e-3
