//===- Numerics.cpp - Numeric helpers for reference checks ----------------===//
//-----------------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/Numerics.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace moe::reference {

double relativeError(const float *out, const float *ref, int64_t n) {
  double diff2 = 0.0, ref2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(out[i]) - static_cast<double>(ref[i]);
    diff2 += d * d;
    ref2 += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  if (ref2 == 0.0)
    return std::sqrt(diff2);
  return std::sqrt(diff2) / std::sqrt(ref2);
}

Comparison compareWithReference(const float *out, const float *ref,
                                int64_t n) {
  Comparison c;
  double diff2 = 0.0, ref2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    bool outFinite = std::isfinite(out[i]), refFinite = std::isfinite(ref[i]);
    if (!refFinite) {
      ++c.nonFiniteInReference;
      bool same = std::isnan(ref[i]) ? std::isnan(out[i]) : out[i] == ref[i];
      c.nonFiniteMismatches += !same;
      continue;
    }
    if (!outFinite) {
      ++c.nonFiniteMismatches;
      continue;
    }
    double d = static_cast<double>(out[i]) - static_cast<double>(ref[i]);
    diff2 += d * d;
    ref2 += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  c.relativeError = ref2 == 0.0 ? std::sqrt(diff2)
                                : std::sqrt(diff2) / std::sqrt(ref2);
  return c;
}

float roundToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if (std::isnan(value)) {
    // Set the quiet bit (it lies in the kept upper half) so that dropping
    // the low mantissa bits cannot turn a NaN into an infinity.
    bits = (bits | 0x00400000u) & 0xFFFF0000u;
  } else {
    // Add just under half an ulp of bf16, plus one when the kept part is odd:
    // exact halves then round to the even neighbour. A carry into the
    // exponent is the correct result (it can reach infinity).
    uint32_t lsb = (bits >> 16) & 1u;
    bits = (bits + 0x7FFFu + lsb) & 0xFFFF0000u;
  }
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

namespace {

/// Elements per independently seeded block: blocks fill in parallel, and a
/// block's values do not depend on how many threads there are.
constexpr size_t kNormalBlock = size_t(1) << 20;

/// The seed of block `block` (> 0): splitmix64 of the seed and the index.
uint64_t blockSeed(uint64_t seed, uint64_t block) {
  uint64_t z = seed + block * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fillNormalBlock(float *out, size_t n, uint64_t seed, double stddev) {
  std::mt19937_64 engine(seed);
  // 53 random bits as a double in [0, 1); the +1 variant gives (0, 1] so the
  // logarithm is finite.
  const double kScale = 1.0 / 9007199254740992.0; // 2^-53
  auto uniformOpenLow = [&] {
    return (static_cast<double>(engine() >> 11) + 1.0) * kScale;
  };
  auto uniform = [&] { return static_cast<double>(engine() >> 11) * kScale; };
  const double kTwoPi = 2.0 * 3.14159265358979323846; // M_PI is not ISO C++
  for (size_t i = 0; i < n; i += 2) {
    double u1 = uniformOpenLow();
    double u2 = uniform();
    double radius = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(stddev * radius * std::cos(kTwoPi * u2));
    if (i + 1 < n)
      out[i + 1] = static_cast<float>(stddev * radius * std::sin(kTwoPi * u2));
  }
}

} // namespace

void fillNormal(std::vector<float> &values, uint64_t seed, double stddev) {
  size_t n = values.size();
  size_t blocks = (n + kNormalBlock - 1) / kNormalBlock;
  auto fill = [&](size_t block) {
    size_t first = block * kNormalBlock;
    fillNormalBlock(values.data() + first, std::min(kNormalBlock, n - first),
                    block == 0 ? seed : blockSeed(seed, block), stddev);
  };
  // Full-size layers have billions of weights: fill blocks on all cores.
  size_t threads = std::min<size_t>(
      blocks, std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1) {
    for (size_t block = 0; block < blocks; ++block)
      fill(block);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      for (size_t block = next++; block < blocks; block = next++)
        fill(block);
    });
  for (std::thread &worker : workers)
    worker.join();
}

} // namespace moe::reference
