"""The package's exceptions, and the compiler module when there is one.

CompileError (a ValueError) carries the compiler's messages, one line each
as moe-compile prints them; RuntimeError (a RuntimeError) carries moert's
message, which names the argument and the rule.

A runtime-only installation (MOE_MLIR_PYTHON_COMPILER=OFF: a machine that
runs artifacts compiled elsewhere, with no MLIR) has no `_compiler`; then
everything that compiles raises CompileError saying so, and artifacts are
loaded with moe_mlir.load() or found in MOE_MLIR_ARTIFACT_DIR.
"""

import importlib.util

from . import _runtime

try:
    from . import _compiler
except ImportError as error:  # runtime only, or libMLIR not found
    _compiler = None
    if importlib.util.find_spec(__package__ + "._compiler") is None:
        _missing_compiler = "it was built with MOE_MLIR_PYTHON_COMPILER=OFF"
    else:
        _missing_compiler = f"it does not load: {error}"

    class CompileError(ValueError):
        """Raised by what needs the compiler module when there is none."""
else:
    _missing_compiler = ""
    CompileError = _compiler.Error

RuntimeError_ = _runtime.Error


def compiler_module(what: str):
    """The `_compiler` extension module; CompileError naming `what` and the
    way out when this installation has none."""
    if _compiler is None:
        raise CompileError(
            f"moe_mlir: {what} needs the compiler module, which this "
            f"installation does not have ({_missing_compiler}); load "
            "artifacts compiled elsewhere with moe_mlir.load(PATH), or set "
            "MOE_MLIR_ARTIFACT_DIR to a folder of moe_mlir.torch.precompile()"
            " artifacts")
    return _compiler


def has_compiler() -> bool:
    return _compiler is not None
