"""A runtime-only installation (no compiler module, as on a GPU machine
without MLIR) runs the layer from artifacts precompiled elsewhere, gives the
same numbers as the installation that compiled them, and says what is
missing when an artifact is not there."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import moe_mlir  # noqa: E402
import moe_mlir.torch as moe_torch  # noqa: E402

OPTIONS = dict(hidden=32, ffn=16, experts=6, top_k=2, router="sigmoid",
               capacity=0.8, aux_loss=0.01)

# Run in a fresh interpreter whose moe_mlir has no _compiler.
SCRIPT = textwrap.dedent("""
    import sys, torch, moe_mlir, moe_mlir.torch as moe_torch
    assert not moe_mlir.has_compiler()
    state = torch.load(sys.argv[1])
    layer = moe_torch.MoELayer(**state["options"])
    layer.load_state_dict(state["weights"])
    x = state["x"].clone().requires_grad_()
    y, aux = layer(x)
    ((y * state["dy"]).sum() + aux).backward()
    results = {"y": y, "aux": aux, "dx": x.grad, "dw1": layer.w1.grad}
    for what, call in (("compile", lambda: moe_mlir.compile("tiny")),
                       ("other tokens", lambda: layer(torch.randn(5, 32)))):
        try:
            call()
        except moe_mlir.CompileError as error:
            results[what] = str(error)
    torch.save(results, sys.argv[2])
""")


def runtime_only_package(directory):
    """moe_mlir as it is here, less the compiler module."""
    package = os.path.dirname(moe_mlir.__file__)
    copy = os.path.join(directory, "moe_mlir")
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns(
        "_compiler*", "__pycache__"))
    return directory


def test_runtime_only_runs_precompiled_artifacts(tmp_path, rng):
    torch.manual_seed(int(rng.integers(1 << 30)))
    artifacts = tmp_path / "artifacts"
    layer = moe_torch.MoELayer(**OPTIONS)
    paths = moe_torch.precompile(layer, [12], "cpu", str(artifacts))
    assert [os.path.basename(p) for p in paths] == [
        moe_torch.artifact_name(layer._spec_text, 12, kind, "cpu")
        for kind in (False, True)]

    x = torch.randn(12, 32, requires_grad=True)
    dy = torch.randn(12, 32)
    y, aux = layer(x)
    ((y * dy).sum() + aux).backward()
    torch.save({"options": OPTIONS, "weights": layer.state_dict(),
                "x": x.detach(), "dy": dy}, tmp_path / "inputs.pt")

    env = dict(os.environ, MOE_MLIR_ARTIFACT_DIR=str(artifacts),
               PYTHONPATH=runtime_only_package(str(tmp_path / "pkg")))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "inputs.pt"),
         str(tmp_path / "results.pt")], env=env, capture_output=True,
        text=True)
    assert done.returncode == 0, done.stderr
    got = torch.load(tmp_path / "results.pt")
    # The same artifacts on the same inputs: the same bits.
    assert torch.equal(got["y"], y)
    assert torch.equal(got["aux"], aux)
    assert torch.equal(got["dx"], x.grad)
    assert torch.equal(got["dw1"], layer.w1.grad)
    assert "MOE_MLIR_PYTHON_COMPILER=OFF" in got["compile"]
    assert "no forward artifact for the layer 'tokens=5," in \
        got["other tokens"]
    assert "precompile()" in got["other tokens"]


def test_precompile_needs_a_directory(monkeypatch):
    monkeypatch.delenv("MOE_MLIR_ARTIFACT_DIR", raising=False)
    with pytest.raises(ValueError, match="needs a directory"):
        moe_torch.precompile("tokens=4,hidden=8,ffn=4,experts=2,top_k=1",
                             [4])
