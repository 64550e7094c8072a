"""compile(): moe programs and layer specs to loaded artifacts."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from typing import Optional, Tuple, Union

from ._errors import compiler_module
from .artifact import Artifact
from .spec import LayerSpec


class Program:
    """A verified moe program, from IR text or a layer spec."""

    def __init__(self, handle, source: str):
        self._handle = handle
        self._source = source

    @staticmethod
    def parse(text: str, source_name: str = "<string>") -> "Program":
        """Parses and verifies moe IR; CompileError with the diagnostics."""
        return Program(compiler_module("Program.parse()").Program.parse(
            text, source_name), text)

    @staticmethod
    def from_spec(spec: Union[LayerSpec, str]) -> "Program":
        text = spec.text() if isinstance(spec, LayerSpec) else spec
        return Program(compiler_module(
            "Program.from_spec()").Program.from_layer_spec(text), text)

    def __str__(self) -> str:
        return str(self._handle)

    def emit(self, kind: str = "mlir", **options) -> str:
        """The LLVM dialect ("mlir"), LLVM IR ("llvm") or PTX ("ptx")."""
        return self._handle.emit(kind, _options(**options))

    def memory_report(self, **options) -> dict:
        """The static memory plan (what moe-compile --report-memory writes)."""
        return json.loads(self._handle.memory_report(_options(**options)))


def _options(target: str = "cpu", opt_level: int = 3, fusion: bool = True,
             experts_per_chunk: int = 0, cuda_tile: Optional[str] = None,
             cuda_path: Optional[str] = None,
             backward: bool = False, cuda_cluster: Optional[str] = None):
    options = compiler_module("compiling").Options()
    options.target = target
    options.opt_level = opt_level
    options.fusion = fusion
    options.experts_per_chunk = experts_per_chunk
    options.cuda_tile = cuda_tile
    options.cuda_path = cuda_path
    options.backward = backward
    options.cuda_cluster = cuda_cluster
    return options


def _to_program(program_or_spec) -> Program:
    if isinstance(program_or_spec, Program):
        return program_or_spec
    if isinstance(program_or_spec, LayerSpec):
        return Program.from_spec(program_or_spec)
    if isinstance(program_or_spec, str):
        # IR has braces; a spec ("tiny", "tokens=8,...") never does.
        if "{" in program_or_spec:
            return Program.parse(program_or_spec)
        return Program.from_spec(program_or_spec)
    raise TypeError("compile() takes a Program, a LayerSpec, spec text or "
                    f"moe IR text, not {type(program_or_spec).__name__}")


def _cache_dir() -> str:
    path = os.environ.get("MOE_MLIR_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"moe_mlir-cache-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return path


def _compiler_stamp() -> str:
    # A rebuilt compiler must not reuse artifacts of the old one.
    info = os.stat(compiler_module("compile()").__file__)
    return f"{info.st_size}:{info.st_mtime_ns}"


_cache_lock = threading.Lock()


def compile_file(program_or_spec, target: str = "cpu", *, opt_level: int = 3,
                 fusion: bool = True, experts_per_chunk: int = 0,
                 cuda_tile: Optional[str] = None,
                 cuda_path: Optional[str] = None, backward: bool = False,
                 cuda_cluster: Optional[str] = None,
                 cache: bool = True) -> Tuple[str, dict]:
    """compile() without loading: the artifact's path in the cache and its
    memory report. Needs no GPU, so CUDA artifacts for another machine can
    be made here."""
    program = _to_program(program_or_spec)
    options = _options(target, opt_level, fusion, experts_per_chunk, cuda_tile,
                       cuda_path, backward, cuda_cluster)
    ir = str(program)
    key = hashlib.sha256("\0".join([
        _compiler_stamp(), ir, target, str(opt_level), str(fusion),
        str(experts_per_chunk), str(cuda_tile), str(backward),
        str(cuda_cluster)
    ]).encode()).hexdigest()[:32]
    directory = _cache_dir()
    path = os.path.join(directory, key + ".so")
    report_path = os.path.join(directory, key + ".json")
    with _cache_lock:
        if not (cache and os.path.exists(path) and os.path.exists(report_path)):
            # Compile beside the final name, then rename: another process
            # never loads half an artifact.
            fd, partial = tempfile.mkstemp(suffix=".so", dir=directory)
            os.close(fd)
            try:
                report = program._handle.compile(partial, options, True)
                with open(report_path + ".part", "w") as out:
                    out.write(report)
                os.replace(report_path + ".part", report_path)
                os.replace(partial, path)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
        with open(report_path) as report_file:
            memory = json.load(report_file)
    return path, memory


def compile(program_or_spec, target: str = "cpu", **options) -> Artifact:
    """Compiles a program (a Program, moe IR text, a LayerSpec or spec text)
    for `target` ("cpu", "cuda:sm_90a", "cuda:sm_90", "cuda:sm_80") and
    loads the artifact. Options (keywords) are moe-compile's: opt_level=3,
    fusion=True, experts_per_chunk=0, cuda_tile=None, cuda_path=None,
    cuda_cluster=None,
    backward=False, and cache=True.

    `backward=True` compiles the training step: each function F becomes
    F_train(args..., dy) -> (results..., dx, dw_gate, dw1, dw2[, aux_loss],
    loads). Artifacts are cached on disk by program and options
    (MOE_MLIR_CACHE_DIR, default a folder in the temp dir), so the same
    layer compiles once per machine. Errors raise CompileError with the
    compiler's messages.
    """
    path, memory = compile_file(program_or_spec, target, **options)
    return Artifact(path, memory_report=memory)
