"""The package's exceptions: the C++ modules' own error types, re-exported.

CompileError (a ValueError) carries the compiler's messages, one line each
as moe-compile prints them; RuntimeError (a RuntimeError) carries moert's
message, which names the argument and the rule.
"""

from . import _compiler, _runtime

CompileError = _compiler.Error
RuntimeError_ = _runtime.Error
