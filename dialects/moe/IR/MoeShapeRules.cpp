//===- MoeShapeRules.cpp - Shape and configuration rules ------------------===//

#include "dialects/moe/IR/MoeShapeRules.h"

#include "mlir/IR/BuiltinTypes.h"
#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace mlir;

/// Doubles as a user wrote them (1.5, not 1.500000e+00).
static std::string formatNumber(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

bool moe::extentsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

int64_t moe::dispatchedRows(int64_t tokens, int64_t topK) {
  if (ShapedType::isDynamic(tokens))
    return ShapedType::kDynamic;
  // Saturated: the routing type bounds T * k, but a rule may call this with
  // a tensor's extent before that rule has run.
  return checkedMul(tokens, topK).value_or(INT64_MAX);
}

int64_t moe::expertCapacity(double capacityFactor, int64_t tokens,
                            int64_t topK, int64_t experts) {
  if (capacityFactor <= 0.0)
    return 0;
  double exact = capacityFactor * static_cast<double>(tokens) *
                 static_cast<double>(topK) / static_cast<double>(experts);
  // Clamped in double, before the conversion, which would overflow for a
  // huge capacity factor.
  double rounded = std::ceil(exact - kCapacityEpsilon);
  if (!ShapedType::isDynamic(tokens))
    rounded = std::min(rounded, static_cast<double>(tokens));
  rounded = std::min(rounded, static_cast<double>(kMaxAssignments));
  // ceil of a positive number is at least 1; the epsilon must not undo that.
  return std::max<int64_t>(1, static_cast<int64_t>(rounded));
}

unsigned moe::elementBitsForSizes(Type type) {
  if (type.isIntOrFloat())
    return type.getIntOrFloatBitWidth();
  return type.isIndex() ? 64 : 0;
}

std::optional<int64_t> moe::checkedAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &sum))
    return std::nullopt;
  return sum;
}

std::optional<int64_t> moe::checkedMul(int64_t a, int64_t b) {
  int64_t product;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product))
    return std::nullopt;
  return product;
}

std::optional<int64_t> moe::checkedElementCount(ArrayRef<int64_t> shape) {
  std::optional<int64_t> count = 1;
  for (int64_t extent : shape)
    if (!ShapedType::isDynamic(extent) && count)
      count = checkedMul(*count, extent);
  return count;
}

std::optional<int64_t> moe::checkedByteCount(int64_t elements,
                                             unsigned bitWidth) {
  // Eight elements at a time, so that the count of bits, which may exceed
  // 64 bits when the count of bytes does not, is never formed.
  std::optional<int64_t> octets = checkedMul(elements / 8, bitWidth);
  int64_t restBits = (elements % 8) * bitWidth;
  if (!octets)
    return std::nullopt;
  return checkedAdd(*octets, restBits / 8 + (restBits % 8 != 0));
}

bool moe::capacityCanDrop(double capacityFactor, int64_t topK,
                          int64_t experts) {
  if (capacityFactor <= 0.0)
    return false;
  return capacityFactor * static_cast<double>(topK) <
         static_cast<double>(experts) - kCapacityEpsilon;
}

LogicalResult
moe::verifyRouterConfig(function_ref<InFlightDiagnostic()> emitError,
                        const RouterConfig &config) {
  if (config.topK < 1)
    return emitError() << "top_k (" << config.topK << ") must be at least 1";
  if (config.topK > config.experts)
    return emitError() << "top_k (" << config.topK
                       << ") exceeds the number of experts (" << config.experts
                       << ")";
  if (!(config.capacityFactor >= 0.0) || std::isinf(config.capacityFactor))
    return emitError() << "capacity_factor (" << formatNumber(config.capacityFactor)
                       << ") must be finite and non-negative (0 is dropless)";
  if (!(config.scaling > 0.0) || std::isinf(config.scaling))
    return emitError() << "scaling (" << formatNumber(config.scaling)
                       << ") must be finite and positive";
  if (config.nGroup.has_value() != config.topkGroup.has_value())
    return emitError() << "n_group and topk_group must be given together";
  if (!config.nGroup)
    return success();
  int64_t nGroup = *config.nGroup, topkGroup = *config.topkGroup;
  if (nGroup < 1)
    return emitError() << "n_group (" << nGroup << ") must be at least 1";
  if (topkGroup < 1)
    return emitError() << "topk_group (" << topkGroup
                       << ") must be at least 1";
  if (topkGroup > nGroup)
    return emitError() << "topk_group (" << topkGroup << ") exceeds n_group ("
                       << nGroup << ")";
  if (config.experts % nGroup != 0)
    return emitError() << "the number of experts (" << config.experts
                       << ") is not divisible by n_group (" << nGroup << ")";
  int64_t selectable = topkGroup * (config.experts / nGroup);
  if (config.topK > selectable)
    return emitError() << "top_k (" << config.topK
                       << ") exceeds the experts in the topk_group best groups ("
                       << selectable << ")";
  return success();
}
