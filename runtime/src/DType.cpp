//===- DType.cpp - Element types and 16-bit float conversions ------------===//
//
// Sizes and names of moert_dtype, and conversions between float32 and the
// bfloat16 / IEEE half bit patterns that bf16 and f16 tensors hold.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <cmath>
#include <cstring>

using namespace moert;

namespace {

uint32_t floatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float bitsFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

struct DTypeInfo {
  const char *name;
  size_t size;
};

// Indexed by moert_dtype.
const DTypeInfo dtypeInfos[] = {
    {"f32", 4}, {"bf16", 2}, {"f16", 2}, {"i32", 4}, {"i64", 8}};
constexpr int numDTypes = sizeof(dtypeInfos) / sizeof(dtypeInfos[0]);

} // namespace

int moert::rawDType(const moert_dtype &dtype) {
  static_assert(sizeof(moert_dtype) == sizeof(int), "enums are ints in C");
  int value;
  std::memcpy(&value, &dtype, sizeof(value));
  return value;
}

bool moert::isValidDType(const moert_dtype &dtype) {
  int value = rawDType(dtype);
  return value >= 0 && value < numDTypes;
}

size_t moert_dtype_size(moert_dtype dtype) {
  return isValidDType(dtype) ? dtypeInfos[rawDType(dtype)].size : 0;
}

const char *moert_dtype_name(moert_dtype dtype) {
  return isValidDType(dtype) ? dtypeInfos[rawDType(dtype)].name
                             : "<invalid dtype>";
}

int moert_dtype_parse(const char *name, moert_dtype *out) {
  if (!name || !out) {
    setError("moert_dtype_parse: NULL argument");
    return 1;
  }
  for (int i = 0; i < numDTypes; ++i) {
    if (std::strcmp(name, dtypeInfos[i].name) == 0) {
      *out = static_cast<moert_dtype>(i);
      return 0;
    }
  }
  setError("unknown dtype '%s' (want f32, bf16, f16, i32 or i64)", name);
  return 1;
}

float moert_bf16_to_f32(uint16_t bits) {
  return bitsFloat(static_cast<uint32_t>(bits) << 16);
}

uint16_t moert_f32_to_bf16(float value) {
  uint32_t bits = floatBits(value);
  // Truncating a NaN could clear every mantissa bit left; keep it quiet NaN.
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Round to nearest, ties to even: add just under half an ulp, plus the
  // lowest kept bit. Overflow carries into the exponent and gives infinity.
  uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7fffu + lsb) >> 16);
}

float moert_f16_to_f32(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) // Infinity or NaN; the payload moves up unchanged.
    return bitsFloat(sign | 0x7f800000u | (mantissa << 13));
  return bitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t moert_f32_to_f16(float value) {
  uint32_t bits = floatBits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) // NaN: keep the top payload bits, stay quiet.
    return sign | 0x7e00u | static_cast<uint16_t>((magnitude >> 13) & 0x3ffu);
  if (magnitude == 0x7f800000u)
    return sign | 0x7c00u;
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal half counts units
    // of 2^-24; value = significand * 2^(exponent - 150).
    uint32_t exponent = magnitude >> 23;
    if (exponent < 102) // Less than 2^-25: rounds to zero.
      return sign;
    uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exponent; // 14..24
    uint32_t result = significand >> shift;
    uint32_t rest = significand & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (result & 1u)))
      ++result; // May carry into the smallest normal, which is correct.
    return sign | static_cast<uint16_t>(result);
  }
  // Normal: rebias the exponent (127 -> 15) and round off 13 mantissa bits.
  uint32_t result = (magnitude - 0x38000000u) >> 13;
  uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (result & 1u)))
    ++result;
  if (result >= 0x7c00u) // Too large for half: infinity.
    return sign | 0x7c00u;
  return sign | static_cast<uint16_t>(result);
}
