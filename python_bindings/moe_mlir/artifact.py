"""Artifacts and their functions, called on NumPy arrays or DLPack tensors."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from . import _runtime

try:  # bf16 as a NumPy dtype, when installed (pip install ml_dtypes)
    import ml_dtypes

    _BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # results then come back as float32 (exact)
    ml_dtypes = None
    _BF16 = None

_NUMPY = {
    "f32": np.dtype(np.float32),
    "f16": np.dtype(np.float16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
}

# DLPack's device type of host memory (kDLCPU) and of CUDA memory.
_DL_CPU = 1
_DL_CUDA = 2


def set_poison_allocations(enabled: bool) -> None:
    """While on, every buffer an artifact allocates starts as NaN / -1, so
    an element no kernel writes shows (moert_set_poison_allocations)."""
    _runtime.set_poison_allocations(enabled)


def f32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """bf16 bit patterns of float32 values, rounded to nearest even as
    moert does; NaN stays NaN."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16
    rounded = np.where(np.isnan(values), 0x7FC0, rounded)
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _describe(dtype: str, dims) -> str:
    return f"{dtype}[{', '.join('?' if d is None else str(d) for d in dims)}]"


def _host_argument(index: int, value, dtype: str):
    """The array handed to moert for argument `index` of moert dtype `dtype`,
    and the dtype it is handed as. NumPy arrays are converted to the
    argument's dtype when they differ (a copy); DLPack tensors must match
    and are never copied."""
    if isinstance(value, np.ndarray) or np.isscalar(value) or \
            isinstance(value, (list, tuple)):
        array = np.asarray(value)
        if dtype == "bf16":
            if _BF16 is not None and array.dtype == _BF16:
                return np.ascontiguousarray(array).view(np.uint16), "bf16"
            if array.dtype.kind not in "fiu":
                raise TypeError(f"argument {index}: cannot pass "
                                f"{array.dtype} as bf16")
            return f32_to_bf16_bits(array.astype(np.float32)), "bf16"
        if dtype == "f16":
            return np.ascontiguousarray(array, dtype=np.float16).view(
                np.uint16), "f16"
        target = _NUMPY[dtype]
        if array.dtype != target:
            if array.dtype.kind == "f" and target.kind != "f":
                raise TypeError(f"argument {index}: {array.dtype} values for "
                                f"an {dtype} argument")
            array = array.astype(target)
        return np.ascontiguousarray(array), dtype
    if hasattr(value, "__dlpack__"):
        device = value.__dlpack_device__() if hasattr(
            value, "__dlpack_device__") else (_DL_CPU, 0)
        if int(device[0]) != _DL_CPU:
            raise ValueError(
                f"argument {index}: a tensor on DLPack device {tuple(device)}; "
                "this function runs on the CPU (host memory only)")
        # nanobind reads the DLPack dtype; moert checks it against the spec.
        return value, dtype
    raise TypeError(f"argument {index}: expected a NumPy array or a DLPack "
                    f"tensor, got {type(value).__name__}")


def _result_array(array: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "f16":
        return array.view(np.float16)
    if dtype == "bf16":
        return array.view(_BF16) if _BF16 is not None else bf16_bits_to_f32(
            array)
    return array


class Function:
    """One function of an artifact: its signature and calls."""

    def __init__(self, handle: "_runtime.Function", artifact: "Artifact"):
        self._handle = handle
        self.artifact = artifact
        self.name: str = handle.name
        self.args: list = handle.args  # [(dtype, dims)], None = dynamic
        self.results: list = handle.results

    def attr(self, key: str) -> Optional[str]:
        """The metadata attribute `key` (`layer.top_k`, ...), or None."""
        return self._handle.attr(key)

    def signature(self) -> str:
        args = ", ".join(_describe(d, s) for d, s in self.args)
        results = ", ".join(_describe(d, s) for d, s in self.results)
        return f"{self.name}({args}) -> ({results})"

    def _prepare(self, arrays: Sequence) -> Tuple[list, list]:
        if len(arrays) != len(self.args):
            raise TypeError(f"{self.name} takes {len(self.args)} arguments "
                            f"({self.signature()}), got {len(arrays)}")
        prepared, dtypes = [], []
        for index, (value, (dtype, _)) in enumerate(zip(arrays, self.args)):
            array, as_dtype = _host_argument(index, value, dtype)
            prepared.append(array)
            dtypes.append(as_dtype)
        return prepared, dtypes

    def call_prepared(self, arrays: Sequence, dtypes: Sequence[str]) -> list:
        """Runs on host arrays already in the arguments' dtypes (16-bit
        floats as uint16 bit patterns), passed in place; results as
        call_raw's. For frameworks with a bf16 type of their own."""
        return self._handle.call(list(arrays), list(dtypes))

    def call_raw(self, arrays: Sequence) -> list:
        """Results as NumPy arrays with 16-bit floats as uint16 bits (for
        frameworks that have a bf16 type of their own, such as torch)."""
        prepared, dtypes = self._prepare(arrays)
        return self._handle.call(prepared, dtypes)

    def __call__(self, *arrays) -> tuple:
        """Runs the function on the CPU; returns its results as NumPy arrays
        (bf16 as ml_dtypes.bfloat16 when installed, else float32). NumPy
        arguments are converted to the argument dtypes; DLPack tensors are
        used in place. Every array result supports DLPack
        (`torch.from_dlpack(result)`)."""
        raw = self.call_raw(arrays)
        return tuple(_result_array(array, dtype)
                     for array, (dtype, _) in zip(raw, self.results))

    def time(self, *arrays, warmup: int = 1, repeat: int = 10) -> list:
        """Milliseconds of each of `repeat` runs after `warmup` runs."""
        prepared, dtypes = self._prepare(arrays)
        return self._handle.time(prepared, dtypes, warmup, repeat)

    def __repr__(self) -> str:
        return f"<moe_mlir.Function {self.signature()}>"


class Artifact:
    """A loaded artifact (the file moe-compile writes)."""

    def __init__(self, path: str, memory_report: Optional[dict] = None):
        self._handle = _runtime.Artifact(path)
        self.path = path
        self.target: str = self._handle.target
        self.backend: str = self._handle.backend
        self.memory_report = memory_report
        self._functions = {f.name: Function(f, self)
                           for f in self._handle.functions}

    @property
    def functions(self) -> list:
        return list(self._functions)

    def function(self, name: str) -> Function:
        if name not in self._functions:
            # moert's message lists the functions there are.
            self._handle.function(name)
        return self._functions[name]

    def default_function(self) -> Function:
        """The only function, else `moe_layer` (as moe-run picks)."""
        if len(self._functions) == 1:
            return next(iter(self._functions.values()))
        if "moe_layer" in self._functions:
            return self._functions["moe_layer"]
        raise TypeError("the artifact has several functions "
                        f"({', '.join(self._functions)}): use .function(name)")

    def __call__(self, *arrays) -> tuple:
        return self.default_function()(*arrays)

    def __repr__(self) -> str:
        return (f"<moe_mlir.Artifact {self.target}: "
                f"{', '.join(self._functions)}>")
