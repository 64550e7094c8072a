"""moe_mlir.compile and the compiler module: programs, options, errors."""

import numpy as np
import pytest

import moe_mlir
from moe_mlir import _compiler

SPEC = moe_mlir.LayerSpec(tokens=8, hidden=16, ffn=8, experts=4, top_k=2)


def test_spec_text_round_trips_through_the_compiler():
    spec = SPEC.replace(router="sigmoid", capacity=1.25, scaling=2.5)
    canonical = spec.canonical()
    assert "router=sigmoid" in canonical and "capacity=1.25" in canonical
    assert moe_mlir.LayerSpec.parse(canonical) == spec
    assert moe_mlir.LayerSpec.parse("tiny").experts == 4


def test_bad_specs_raise_with_the_compilers_message():
    with pytest.raises(moe_mlir.CompileError, match="top_k"):
        moe_mlir.compile(SPEC.replace(top_k=9))
    with pytest.raises(moe_mlir.CompileError, match="no_such_preset"):
        moe_mlir.compile("no_such_preset")
    with pytest.raises(moe_mlir.CompileError, match="router"):
        SPEC.replace(router="relu").canonical()


def test_ir_errors_carry_the_location_and_rule():
    ir = str(moe_mlir.Program.from_spec(SPEC))
    with pytest.raises(moe_mlir.CompileError) as info:
        moe_mlir.Program.parse(ir.replace("top_k = 2", "top_k = 9"), "k.mlir")
    message = str(info.value)
    assert "k.mlir:" in message and "top_k" in message and "error:" in message
    with pytest.raises(moe_mlir.CompileError, match="bad.mlir:1:"):
        moe_mlir.Program.parse("func.func @f(", "bad.mlir")


def test_bad_options_raise():
    with pytest.raises(moe_mlir.CompileError, match="tpu"):
        moe_mlir.compile(SPEC, target="tpu")
    with pytest.raises(moe_mlir.CompileError, match="-O9"):
        moe_mlir.compile(SPEC, opt_level=9)
    with pytest.raises(moe_mlir.CompileError, match="CUDA target"):
        moe_mlir.compile(SPEC, cuda_tile="128x128x32x4")
    with pytest.raises(moe_mlir.CompileError, match="is not auto, 1 or 2"):
        moe_mlir.compile(SPEC, target="cuda:sm_90a", cuda_cluster="4")
    with pytest.raises(TypeError, match="compile"):
        moe_mlir.compile(42)


def test_artifact_signature_and_metadata():
    artifact = moe_mlir.compile(SPEC)
    assert artifact.target == "cpu" and artifact.backend == "cpu"
    assert artifact.functions == ["moe_layer"]
    function = artifact.function("moe_layer")
    assert function.args == [("f32", [8, 16]), ("f32", [16, 4]),
                             ("f32", [4, 16, 16]), ("f32", [4, 8, 16])]
    assert function.results == [("f32", [8, 16]), ("i32", [8, 2])]
    assert function.attr("layer.router") == "softmax"
    assert function.attr("no.such.key") is None
    with pytest.raises(moe_mlir.RuntimeError, match="moe_layer"):
        artifact.function("nope")


def test_memory_report_fused_is_smaller_than_unfused():
    program = moe_mlir.Program.from_spec(SPEC.replace(tokens=64))
    fused = program.memory_report()
    unfused = program.memory_report(fusion=False)
    assert 0 < fused["peak_intermediate_bytes"] < \
        unfused["peak_intermediate_bytes"]
    artifact = moe_mlir.compile(program)
    assert artifact.memory_report["peak_intermediate_bytes"] == \
        fused["peak_intermediate_bytes"]


def test_emit_text():
    program = moe_mlir.Program.from_spec(SPEC)
    assert "llvm.func" in program.emit("mlir")
    assert "define" in program.emit("llvm", opt_level=1)
    with pytest.raises(moe_mlir.CompileError, match="CUDA"):
        program.emit("ptx")
    with pytest.raises(moe_mlir.CompileError, match="unknown kind"):
        program.emit("asm")


def test_cuda_cluster_pairs_the_ctas_of_grouped_gemms():
    # bf16, widths multiple of 64: the sm_90a kernel. Both grouped GEMMs (the
    # gathered GLU GEMM and the down projection) run in CTA pairs by
    # default, as with cuda_cluster="2"; "1" pairs nothing.
    program = moe_mlir.Program.from_spec(
        "tokens=64,hidden=128,ffn=64,experts=4,top_k=2,dtype=bf16")
    auto = program.emit("ptx", target="cuda:sm_90a")
    single = program.emit("ptx", target="cuda:sm_90a", cuda_cluster="1")
    pairs = program.emit("ptx", target="cuda:sm_90a", cuda_cluster="2")
    glu, store = auto.split(".entry moek_grouped_matmul_store(")
    glu = glu.split(".entry moek_grouped_matmul_silu_glu(")[1]
    assert "multicast::cluster" in glu and "multicast::cluster" in store
    assert "multicast::cluster" not in single
    assert pairs.count("multicast::cluster") == auto.count("multicast::cluster")


def test_compile_is_cached_and_the_program_reusable(tmp_path, monkeypatch):
    monkeypatch.setenv("MOE_MLIR_CACHE_DIR", str(tmp_path))
    program = moe_mlir.Program.from_spec(SPEC)
    first = moe_mlir.compile(program)
    second = moe_mlir.compile(program)
    assert first.path == second.path
    other = moe_mlir.compile(program, opt_level=1)
    assert other.path != first.path
    assert len(list(tmp_path.glob("*.so"))) == 2
    # A C-level error object, not a crash, for a NULL-like misuse.
    assert issubclass(moe_mlir.CompileError, ValueError)
    assert _compiler.canonical_layer_spec("tiny").startswith("tokens=16")
