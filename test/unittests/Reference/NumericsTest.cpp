//===- NumericsTest.cpp - Tests of the reference numeric helpers ----------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/Numerics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace moe::reference;

namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

TEST(Numerics, RelativeError) {
  const std::vector<float> ref = {3.0f, 4.0f};
  EXPECT_EQ(relativeError(ref.data(), ref.data(), 2), 0.0);
  const std::vector<float> out = {3.3f, 4.4f}; // diff norm 0.5, ref norm 5
  EXPECT_NEAR(relativeError(out.data(), ref.data(), 2), 0.1, 1e-7);
  // A zero reference falls back to the absolute error.
  const std::vector<float> zero = {0.0f, 0.0f};
  EXPECT_DOUBLE_EQ(relativeError(ref.data(), zero.data(), 2), 5.0);
  EXPECT_EQ(relativeError(zero.data(), zero.data(), 2), 0.0);
  EXPECT_EQ(relativeError(nullptr, nullptr, 0), 0.0);
  // Accumulated in double: tiny differences on large values are not lost.
  std::vector<float> big(1000, 1e20f), big2 = big;
  big2[7] = std::nextafter(1e20f, 2e20f);
  double rel = relativeError(big2.data(), big.data(), 1000);
  EXPECT_GT(rel, 0.0);
  EXPECT_LT(rel, 1e-8);
}

TEST(Numerics, RoundToBf16Exact) {
  // bf16 keeps 7 mantissa bits: around 1 the spacing is 2^-7.
  const float ulp = std::ldexp(1.0f, -7), half = std::ldexp(1.0f, -8);
  EXPECT_EQ(roundToBf16(1.0f), 1.0f);
  EXPECT_EQ(roundToBf16(-2.5f), -2.5f);
  EXPECT_EQ(roundToBf16(0.0f), 0.0f);
  EXPECT_EQ(bitsOf(roundToBf16(-0.0f)), 0x80000000u);
  // Exact halves go to the even neighbour.
  EXPECT_EQ(roundToBf16(1.0f + half), 1.0f);
  EXPECT_EQ(roundToBf16(1.0f + ulp + half), 1.0f + 2 * ulp);
  EXPECT_EQ(roundToBf16(-(1.0f + half)), -1.0f);
  EXPECT_EQ(roundToBf16(-(1.0f + ulp + half)), -(1.0f + 2 * ulp));
  // Just off the half rounds to the nearer one.
  EXPECT_EQ(roundToBf16(1.0f + half + std::ldexp(1.0f, -20)), 1.0f + ulp);
  EXPECT_EQ(roundToBf16(1.0f + half - std::ldexp(1.0f, -20)), 1.0f);
  // Subnormals: halfway between bf16 0x0001 and 0x0002 goes to 0x0002.
  EXPECT_EQ(bitsOf(roundToBf16(fromBits(0x00018000u))), 0x00020000u);
  EXPECT_EQ(bitsOf(roundToBf16(fromBits(0x00008000u))), 0x00000000u);
  // Carry into the exponent, and overflow to infinity.
  EXPECT_EQ(bitsOf(roundToBf16(fromBits(0x3FFFFFFFu))), 0x40000000u);
  const float maxBf16 = fromBits(0x7F7F0000u);
  EXPECT_EQ(roundToBf16(maxBf16), maxBf16);
  EXPECT_EQ(roundToBf16(std::numeric_limits<float>::max()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(roundToBf16(-std::numeric_limits<float>::infinity()),
            -std::numeric_limits<float>::infinity());
  // NaN stays NaN, even one whose payload lies only in the dropped bits.
  EXPECT_TRUE(std::isnan(roundToBf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(roundToBf16(fromBits(0x7F800001u))));
  EXPECT_TRUE(std::isnan(roundToBf16(fromBits(0xFF800001u))));
  EXPECT_EQ(bitsOf(roundToBf16(fromBits(0xFF800001u))) >> 31, 1u);
}

/// For random finite floats, the result is the nearer of the two bf16
/// neighbours (computed exactly in double), the even one on a tie.
TEST(Numerics, RoundToBf16Random) {
  std::mt19937 gen(7);
  int ties = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = gen();
    if (i % 4 == 0)
      u = (u & 0xFFFF0000u) | 0x8000u; // force exact halves
    float v = fromBits(u);
    if (!std::isfinite(v))
      continue;
    uint32_t mag = u & 0x7FFFFFFFu, sign = u & 0x80000000u;
    uint32_t loMag = mag & 0xFFFF0000u, hiMag = loMag + 0x10000u;
    double lo = std::fabs(double(fromBits(loMag)));
    // hiMag may be the infinity pattern; treat it as 2^128 (the next step).
    double hi =
        hiMag == 0x7F800000u ? std::ldexp(1.0, 128) : double(fromBits(hiMag));
    double a = std::fabs(double(v));
    uint32_t expectMag;
    if (a - lo < hi - a)
      expectMag = loMag;
    else if (hi - a < a - lo)
      expectMag = hiMag;
    else {
      ++ties;
      expectMag = ((loMag >> 16) & 1u) ? hiMag : loMag;
    }
    ASSERT_EQ(bitsOf(roundToBf16(v)), sign | expectMag)
        << std::hex << "input bits 0x" << u;
  }
  EXPECT_GT(ties, 10000);
  // Values that are already bf16 do not move.
  for (int i = 0; i < 10000; ++i) {
    float v = fromBits(gen() & 0xFFFF0000u);
    if (std::isfinite(v)) {
      ASSERT_EQ(bitsOf(roundToBf16(v)), bitsOf(v));
    }
  }
}

TEST(Numerics, FillNormalMoments) {
  std::vector<float> v(100000);
  fillNormal(v, 1234, 1.0);
  double sum = 0, sum2 = 0;
  for (float f : v) {
    sum += f;
    sum2 += double(f) * f;
  }
  double mean = sum / v.size();
  double stddev = std::sqrt(sum2 / v.size() - mean * mean);
  // Standard errors are about 0.003 (mean) and 0.002 (stddev).
  EXPECT_NEAR(mean, 0.0, 0.015);
  EXPECT_NEAR(stddev, 1.0, 0.01);

  std::vector<float> w(100000);
  fillNormal(w, 1234, 2.5);
  for (size_t i = 0; i < v.size(); ++i)
    ASSERT_FLOAT_EQ(w[i], 2.5f * v[i]);
}

TEST(Numerics, FillNormalDeterministic) {
  std::vector<float> a(1001), b(1001), c(1001);
  fillNormal(a, 42, 1.0);
  fillNormal(b, 42, 1.0);
  fillNormal(c, 43, 1.0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // An odd length fills its last element too.
  EXPECT_NE(a.back(), 0.0f);
  // A shorter vector is a prefix of a longer one with the same seed.
  std::vector<float> prefix(10);
  fillNormal(prefix, 42, 1.0);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), a.begin()));
  // The exact sequence (mt19937_64, 53-bit uniforms, Box-Muller with
  // u1 in (0,1]), checked against an independent Python implementation;
  // the tolerance only allows for libm differences.
  const float golden[] = {-0.481217712f, -0.57453686f, 0.494583845f,
                          0.570121527f, 0.374554276f};
  for (int i = 0; i < 5; ++i)
    EXPECT_NEAR(a[i], golden[i], 1e-6) << i;
}

TEST(Numerics, FillNormalBlocksAreIndependentAndDeterministic) {
  // Three blocks of 2^20 and a partial one, filled in parallel.
  size_t n = 3 * (size_t(1) << 20) + 12345;
  std::vector<float> a(n), b(n), prefix((size_t(1) << 20) + 1);
  fillNormal(a, 7, 1.0);
  fillNormal(b, 7, 1.0);
  EXPECT_EQ(a, b);
  fillNormal(prefix, 7, 1.0);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), a.begin()));
  // Blocks are not copies of one another, and later blocks are normal too.
  size_t block = size_t(1) << 20;
  EXPECT_FALSE(std::equal(a.begin(), a.begin() + 100, a.begin() + block));
  double sum = 0, sum2 = 0;
  for (size_t i = block; i < n; ++i) {
    sum += a[i];
    sum2 += double(a[i]) * a[i];
  }
  double count = double(n - block);
  EXPECT_NEAR(sum / count, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sum2 / count), 1.0, 0.01);
}

} // namespace
