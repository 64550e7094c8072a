# -*- Python -*-
# lit configuration of the MoE-MLIR regression suite.

import os
import shutil

import lit.formats
from lit.llvm import llvm_config

config.name = "MoE-MLIR"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%moe_src_root", config.moe_src_root))
config.substitutions.append(("%moe_obj_root", config.moe_obj_root))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.moe_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["moe-opt", "moe-compile", "moe-run", "moert-seal"], tool_dirs)
llvm_config.add_tool_substitutions(["not", "count"], [config.llvm_tools_dir])
llvm_config.with_environment("PATH", config.moe_tools_dir, append_path=True)

# Features that gate integration tests: a GPU with a CUDA driver.
if shutil.which("nvidia-smi") and os.path.exists("/dev/nvidia0"):
    config.available_features.add("cuda")

# Expert parallelism on the CPU: several ranks under Open MPI's mpirun.
# %mpirun runs a command on N ranks (%mpirun -n 2 moe-run ...), as root too
# (CI runs as root) and on machines with fewer cores than ranks.
mpirun = shutil.which("mpirun")
if mpirun and os.path.exists("/usr/lib/x86_64-linux-gnu/libmpi.so.40"):
    config.available_features.add("mpi")
    config.substitutions.append(
        ("%mpirun", mpirun + " --allow-run-as-root --oversubscribe"
         " --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
         " -x OMPI_ALLOW_RUN_AS_ROOT=1 -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"))
    # The root permission check reads these from mpirun's own environment.
    config.environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    config.environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
