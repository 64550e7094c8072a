//===- CudaChip.cpp - What the CUDA target knows of a chip ----------------===//

#include "lib/Target/CudaChip.h"

using namespace moe::target;

std::string CudaChip::name() const {
  return "sm_" + std::to_string(sm) + (archSpecific ? "a" : "");
}

int64_t CudaChip::maxSharedBytesPerBlock() const {
  if (sm >= 90)
    return 227 * 1024;
  if (sm == 80 || sm == 87)
    return 163 * 1024;
  return 99 * 1024; // sm_86, sm_89
}

std::optional<CudaChip> CudaChip::parse(const std::string &name,
                                        std::string &error) {
  // The chips the kernels and the pipeline's PTX version (8.1) support;
  // anything else would fail later inside LLVM's NVPTX backend.
  for (unsigned sm : {80u, 86u, 87u, 89u, 90u})
    if (name == "sm_" + std::to_string(sm))
      return CudaChip{sm, false};
  if (name == "sm_90a")
    return CudaChip{90, true};
  error = "chip '" + name +
          "' is not an NVIDIA architecture the kernels support (sm_80, sm_86, "
          "sm_87, sm_89, sm_90, sm_90a)";
  return std::nullopt;
}

std::optional<CudaChip> CudaChip::parseTarget(const std::string &target,
                                              std::string &error) {
  if (target == "cuda")
    return CudaChip{};
  std::string chip = target.rfind("cuda:", 0) == 0 ? target.substr(5) : "";
  // Artifacts are made for the chips the project checks on GPUs.
  if (chip != "sm_80" && chip != "sm_90" && chip != "sm_90a") {
    error = "'" + target + "' is not a CUDA target (" + known + ")";
    return std::nullopt;
  }
  return parse(chip, error);
}
