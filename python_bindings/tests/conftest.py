import os
import sys

import numpy as np
import pytest

# reference.py sits beside the tests.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def rng(request):
    # A fresh seed per test (printed on failure), never all zeros.
    seed = int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    print(f"seed {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    # One artifact cache per test session, not the user's.
    monkeypatch.setenv("MOE_MLIR_CACHE_DIR",
                       str(tmp_path_factory.getbasetemp() / "moe-cache"))
