# -*- Python -*-
# Runs the GoogleTest binaries of test/unittests under lit.

import os
import lit.formats

config.name = "MoE-MLIR-Unit"
config.suffixes = []
config.test_exec_root = os.path.join(config.moe_obj_root, "test", "unittests")
config.test_source_root = config.test_exec_root
config.test_format = lit.formats.GoogleTest("bin", "Tests")
