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
  CudaChip chip;
  if (name == "sm_80")
    chip.sm = 80;
  else if (name == "sm_90")
    chip.sm = 90;
  else if (name == "sm_90a")
    chip = CudaChip{90, true};
  else {
    error = "chip '" + name + "' is not an NVIDIA architecture the kernels "
            "support (" + known + ")";
    return std::nullopt;
  }
  return chip;
}

std::optional<CudaChip> CudaChip::parseTarget(const std::string &target,
                                              std::string &error) {
  if (target == "cuda")
    return CudaChip{};
  if (target.rfind("cuda:", 0) != 0) {
    error = "'" + target + "' is not a CUDA target";
    return std::nullopt;
  }
  return parse(target.substr(5), error);
}
