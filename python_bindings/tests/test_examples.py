"""The examples run and do what they say: the loss goes down, and the
Hugging Face-style model keeps its output with the compiled blocks (each
script exits non-zero otherwise)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.mark.parametrize("script", ["train_moe.py", "hf_block.py"])
def test_example(script):
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, script)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
