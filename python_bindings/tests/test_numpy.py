"""Calling artifacts on NumPy arrays and DLPack tensors, checked against the
NumPy reference layer (reference.py) on fresh random inputs."""

import numpy as np
import pytest

import moe_mlir
from reference import moe_layer, random_layer, relative_error

BASE = moe_mlir.LayerSpec(tokens=24, hidden=32, ffn=16, experts=6, top_k=2)


@pytest.mark.parametrize("changes", [
    {},
    {"router": "sigmoid", "bias": True},
    {"top_k": 3, "capacity": 0.75},
    {"activation": "gelu_glu", "normalize": False, "scaling": 1.5},
    {"dynamic": True},
], ids=["default", "sigmoid-bias", "capacity", "gelu-scaling", "dynamic"])
def test_layer_matches_the_reference(rng, changes):
    spec = BASE.replace(**changes)
    artifact = moe_mlir.compile(spec)
    arrays = random_layer(rng, spec.tokens, spec.hidden, spec.ffn,
                          spec.experts, bias=spec.bias)
    copies = [a.copy() for a in arrays]
    moe_mlir.set_poison_allocations(True)
    try:
        y, indices = artifact(*arrays)
    finally:
        moe_mlir.set_poison_allocations(False)
    ref_y, ref_indices, _ = moe_layer(
        *arrays[:4], arrays[4] if spec.bias else None, top_k=spec.top_k,
        router=spec.router, normalize=spec.normalize, scaling=spec.scaling,
        capacity=spec.capacity, activation=spec.activation)
    assert y.dtype == np.float32 and y.shape == (spec.tokens, spec.hidden)
    assert indices.dtype == np.int32
    np.testing.assert_array_equal(indices, ref_indices)
    assert relative_error(y, ref_y) < 1e-4
    # Arguments are passed without a copy and must come back untouched.
    for before, after in zip(copies, arrays):
        np.testing.assert_array_equal(before, after)


def test_dynamic_tokens_run_any_count(rng):
    artifact = moe_mlir.compile(BASE.replace(dynamic=True))
    assert artifact.function("moe_layer").args[0][1] == [None, 32]
    for tokens in (1, 5, 40):
        arrays = random_layer(rng, tokens, 32, 16, 6)
        y, indices = artifact(*arrays)
        ref_y, ref_indices, _ = moe_layer(*arrays, top_k=2)
        assert y.shape == (tokens, 32)
        np.testing.assert_array_equal(indices, ref_indices)
        assert relative_error(y, ref_y) < 1e-4


def test_float64_and_strided_numpy_arrays_are_converted(rng):
    artifact = moe_mlir.compile(BASE)
    x, w_gate, w1, w2 = random_layer(rng, 24, 32, 16, 6)
    wide = np.asfortranarray(x.astype(np.float64))
    y, _ = artifact(wide, w_gate, w1, w2)
    ref_y, _, _ = moe_layer(x, w_gate, w1, w2, top_k=2)
    assert relative_error(y, ref_y) < 1e-4


def test_bf16(rng):
    spec = BASE.replace(dtype="bf16")
    artifact = moe_mlir.compile(spec)
    arrays = random_layer(rng, 24, 32, 16, 6)
    y, indices = artifact(*arrays)  # float32 in, rounded to bf16
    rounded = [moe_mlir.artifact.bf16_bits_to_f32(
        moe_mlir.artifact.f32_to_bf16_bits(a)) for a in arrays]
    ref_y, ref_indices, _ = moe_layer(*rounded, top_k=2)
    assert relative_error(np.asarray(y, np.float32), ref_y) < 2e-2
    # A bf16 result is ml_dtypes.bfloat16 when installed, else float32.
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert y.dtype == ml_dtypes.bfloat16
    as_bf16 = [a.astype(ml_dtypes.bfloat16) for a in arrays]
    y2, _ = artifact(*as_bf16)
    np.testing.assert_array_equal(np.asarray(y2, np.float32),
                                  np.asarray(y, np.float32))


def test_bf16_rounding_matches_moert():
    values = np.array([1.0, 1.00390625, 1.01171875, -3.5, np.inf, np.nan],
                      np.float32)
    bits = moe_mlir.artifact.f32_to_bf16_bits(values)
    # 1 + 2^-8 is a tie and rounds to even (1.0); 1 + 3*2^-8 rounds up.
    assert list(bits[:5]) == [0x3F80, 0x3F80, 0x3F82, 0xC060, 0x7F80]
    assert np.isnan(moe_mlir.artifact.bf16_bits_to_f32(bits[5:]))[0]


class DLPackOnly:
    """A tensor that offers DLPack and nothing else (not a NumPy array)."""

    def __init__(self, array, device=(1, 0)):
        self.array = array
        self.device = device

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.device


def test_dlpack_tensors_are_used_in_place(rng):
    artifact = moe_mlir.compile(BASE)
    arrays = random_layer(rng, 24, 32, 16, 6)
    y, indices = artifact(*(DLPackOnly(a) for a in arrays))
    ref_y, ref_indices, _ = moe_layer(*arrays, top_k=2)
    np.testing.assert_array_equal(indices, ref_indices)
    assert relative_error(y, ref_y) < 1e-4
    # Results speak DLPack too.
    assert np.from_dlpack(y).shape == (24, 32)


def test_bad_arguments_raise_with_moerts_message(rng):
    artifact = moe_mlir.compile(BASE)
    x, w_gate, w1, w2 = random_layer(rng, 24, 32, 16, 6)
    with pytest.raises(TypeError, match="takes 4 arguments"):
        artifact(x, w_gate, w1)
    with pytest.raises(moe_mlir.RuntimeError, match="argument 1"):
        artifact(x, w_gate[:, :5], w1, w2)
    with pytest.raises(moe_mlir.RuntimeError, match="argument 0"):
        artifact(x[:, :, None], w_gate, w1, w2)
    # A DLPack tensor of the wrong dtype is not silently converted.
    with pytest.raises(moe_mlir.RuntimeError, match="argument 0"):
        artifact(DLPackOnly(x.astype(np.float64)), w_gate, w1, w2)
    # Device memory is refused by a CPU function, with the device named.
    with pytest.raises(ValueError, match="DLPack device"):
        artifact(DLPackOnly(x, device=(2, 0)), w_gate, w1, w2)
    with pytest.raises(TypeError, match="NumPy array or a DLPack"):
        artifact(object(), w_gate, w1, w2)


def test_timing(rng):
    artifact = moe_mlir.compile(BASE)
    times = artifact.function("moe_layer").time(
        *random_layer(rng, 24, 32, 16, 6), warmup=1, repeat=3)
    assert len(times) == 3 and all(t > 0 for t in times)
