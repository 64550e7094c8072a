//===- Numerics.h - Numeric helpers for reference checks --------*- C++ -*-===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// Error metrics, bf16 rounding and deterministic random data for comparing a
// backend's output with the naive reference.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_REFERENCE_NUMERICS_H
#define MOE_MLIR_LIB_REFERENCE_NUMERICS_H

#include <cstdint>
#include <vector>

namespace moe::reference {

/// ||out - ref||_2 / ||ref||_2, accumulated in double. When ||ref||_2 is 0
/// the absolute error ||out - ref||_2 is returned instead (0 for n == 0).
double relativeError(const float *out, const float *ref, int64_t n);

/// A result compared with the reference where either may hold NaN or
/// infinity (inputs that overflow make the reference non-finite too).
struct Comparison {
  /// relativeError over the elements finite in both.
  double relativeError = 0.0;
  /// Elements where the reference is NaN or infinite.
  int64_t nonFiniteInReference = 0;
  /// Elements where the result is not what the reference is: non-finite
  /// where the reference is finite, or a different non-finite value (NaN vs
  /// infinity, or the other infinity). Any of them fails a check.
  int64_t nonFiniteMismatches = 0;
};
/// Non-finite elements must match exactly; the rest are compared by
/// relativeError.
Comparison compareWithReference(const float *out, const float *ref, int64_t n);

/// Rounds a float to the nearest bfloat16 value (ties to even) and returns it
/// widened back to float. Infinities are kept, finite values that round past
/// the largest bf16 become infinity, NaNs stay NaN (quiet, sign kept).
float roundToBf16(float value);

/// Overwrites every element of `values` (its size is kept) with samples of
/// N(0, stddev^2). Deterministic for a given seed: std::mt19937_64 (fully
/// specified by the standard) feeds a Box-Muller transform written here, so
/// the sequence does not depend on the standard library's distributions.
/// (log/cos/sin come from libm, so platforms may differ in the last ulp.)
/// Blocks of 2^20 elements have their own generators (the first seeded with
/// `seed`, the others with a splitmix64 hash of it and the block index) and
/// fill in parallel; a shorter vector is a prefix of a longer one.
void fillNormal(std::vector<float> &values, uint64_t seed, double stddev);

} // namespace moe::reference

#endif // MOE_MLIR_LIB_REFERENCE_NUMERICS_H
