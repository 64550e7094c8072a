//===- CudaChip.cpp - What the CUDA target knows of a chip ----------------===//

#include "lib/Target/CudaChip.h"

#include <algorithm>

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
  // "sm_" then the compute capability's digits, then "a" for sm_90a.
  CudaChip chip;
  size_t digits = 0;
  while (3 + digits < name.size() && name[3 + digits] >= '0' &&
         name[3 + digits] <= '9')
    ++digits;
  std::string suffix = name.substr(std::min(name.size(), 3 + digits));
  if (name.compare(0, 3, "sm_") == 0 && digits >= 2 && digits <= 3 &&
      (suffix.empty() || suffix == "a")) {
    chip.sm = static_cast<unsigned>(std::stoul(name.substr(3, digits)));
    chip.archSpecific = suffix == "a";
    // Only sm_90a's architecture-specific features are used.
    if (chip.sm >= 80 && (!chip.archSpecific || chip.sm == 90))
      return chip;
  }
  error = "chip '" + name +
          "' is not an NVIDIA architecture the kernels support (sm_80 or "
          "later, such as " +
          known + ")";
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
