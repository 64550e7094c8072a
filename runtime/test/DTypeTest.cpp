//===- DTypeTest.cpp - Tests of dtypes and 16-bit float conversions -------===//

#include "TestUtil.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace moert_test;

namespace {

float fromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

bool isBf16NaN(uint16_t bits) {
  return (bits & 0x7f80u) == 0x7f80u && (bits & 0x007fu) != 0;
}

bool isF16NaN(uint16_t bits) {
  return (bits & 0x7c00u) == 0x7c00u && (bits & 0x03ffu) != 0;
}

TEST(DType, SizesNamesAndParsing) {
  const struct {
    moert_dtype dtype;
    const char *name;
    size_t size;
  } cases[] = {{MOERT_F32, "f32", 4},
               {MOERT_BF16, "bf16", 2},
               {MOERT_F16, "f16", 2},
               {MOERT_I32, "i32", 4},
               {MOERT_I64, "i64", 8}};
  for (const auto &c : cases) {
    EXPECT_EQ(moert_dtype_size(c.dtype), c.size);
    EXPECT_STREQ(moert_dtype_name(c.dtype), c.name);
    moert_dtype parsed = MOERT_I64;
    ASSERT_EQ(moert_dtype_parse(c.name, &parsed), 0);
    EXPECT_EQ(parsed, c.dtype);
  }
  EXPECT_EQ(moert_dtype_size(static_cast<moert_dtype>(42)), 0u);
  moert_dtype parsed;
  EXPECT_NE(moert_dtype_parse("f64", &parsed), 0);
  EXPECT_TRUE(
      errorContains("unknown dtype 'f64' (want f32, bf16, f16, i32 or i64)"));
}

TEST(DType, Bf16RoundsToNearestEven) {
  const struct {
    uint32_t f32;
    uint16_t bf16;
  } cases[] = {
      {0x3f800000, 0x3f80}, // 1.0, exact
      {0x3f807fff, 0x3f80}, // below half an ulp: down
      {0x3f808001, 0x3f81}, // above half an ulp: up
      {0x3f808000, 0x3f80}, // tie, even below: down
      {0x3f818000, 0x3f82}, // tie, odd below: up to even
      {0xbf818000, 0xbf82}, // the same, negative
      {0x3f80ffff, 0x3f81}, // up
      {0x3fff8000, 0x4000}, // tie carrying into the exponent
      {0x7f7f7fff, 0x7f7f}, // large, down
      {0x7f7fffff, 0x7f80}, // the largest float rounds to infinity
      {0x7f800000, 0x7f80}, // +inf
      {0xff800000, 0xff80}, // -inf
      {0x80000000, 0x8000}, // -0
      {0x00008000, 0x0000}, // subnormal tie to even (down)
      {0x00018000, 0x0002}, // subnormal tie to even (up)
  };
  for (const auto &c : cases)
    EXPECT_EQ(moert_f32_to_bf16(fromBits(c.f32)), c.bf16)
        << std::hex << "f32 bits 0x" << c.f32;
  EXPECT_EQ(moert_bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(moert_bf16_to_f32(0xc000), -2.0f);
  EXPECT_TRUE(std::isinf(moert_bf16_to_f32(0xff80)));
}

TEST(DType, Bf16KeepsNaN) {
  // Truncating these would lose every mantissa bit, or round up to infinity.
  for (uint32_t bits :
       {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu, 0xff80ffffu}) {
    uint16_t bf16 = moert_f32_to_bf16(fromBits(bits));
    EXPECT_TRUE(isBf16NaN(bf16)) << std::hex << bits << " -> " << bf16;
    EXPECT_EQ(bf16 & 0x8000u, (bits >> 16) & 0x8000u) << "sign kept";
  }
  EXPECT_TRUE(std::isnan(moert_bf16_to_f32(0x7fc0)));
}

TEST(DType, Bf16RoundTripsEveryPattern) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    uint16_t back = moert_f32_to_bf16(moert_bf16_to_f32(bits));
    if (isBf16NaN(bits))
      EXPECT_TRUE(isBf16NaN(back));
    else
      ASSERT_EQ(back, bits);
  }
}

TEST(DType, F16KnownValues) {
  const struct {
    float f32;
    uint16_t f16;
  } cases[] = {
      {1.0f, 0x3c00},
      {-2.0f, 0xc000},
      {65504.0f, 0x7bff},                     // the largest half
      {65519.0f, 0x7bff},                     // below the overflow tie
      {65520.0f, 0x7c00},                     // the tie rounds to infinity
      {std::ldexp(1.0f, -14), 0x0400},        // the smallest normal
      {std::ldexp(1023.0f, -24), 0x03ff},     // the largest subnormal
      {std::ldexp(1.0f, -24), 0x0001},        // the smallest subnormal
      {std::ldexp(1.0f, -25), 0x0000},        // tie to even: zero
      {std::ldexp(1.5f, -25), 0x0001},        // above the tie
      {std::ldexp(3.0f, -25), 0x0002},        // tie to even: up
      {1.0f + std::ldexp(1.0f, -11), 0x3c00}, // tie, even below
      {1.0f + std::ldexp(3.0f, -11), 0x3c02}, // tie, odd below
      {-0.0f, 0x8000},
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {1e-30f, 0x0000},
  };
  for (const auto &c : cases)
    EXPECT_EQ(moert_f32_to_f16(c.f32), c.f16) << c.f32;
  EXPECT_TRUE(isF16NaN(moert_f32_to_f16(std::nanf(""))));
  EXPECT_TRUE(isF16NaN(moert_f32_to_f16(fromBits(0x7f800001u))));
  EXPECT_TRUE(std::isnan(moert_f16_to_f32(0x7e00)));
  EXPECT_EQ(moert_f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

TEST(DType, F16RoundTripsEveryPattern) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    float value = moert_f16_to_f32(bits);
    uint16_t back = moert_f32_to_f16(value);
    if (isF16NaN(bits)) {
      EXPECT_TRUE(std::isnan(value));
      EXPECT_TRUE(isF16NaN(back));
    } else {
      ASSERT_EQ(back, bits) << std::hex << bits;
    }
  }
}

#ifdef __FLT16_MAX__
uint32_t toBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// The compiler's own _Float16 conversion rounds to nearest even too.
TEST(DType, F16MatchesTheCompiler) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<uint32_t> anyBits;
  for (int i = 0; i < 1000000; ++i) {
    uint32_t bits = anyBits(rng);
    // Mostly values near the half range, where the rounding happens.
    if (i % 2)
      bits = (bits & 0x80ffffffu) | ((0x30u + (bits >> 24) % 0x18u) << 24);
    float value = fromBits(bits);
    _Float16 reference = static_cast<_Float16>(value);
    uint16_t expected;
    std::memcpy(&expected, &reference, sizeof(expected));
    uint16_t got = moert_f32_to_f16(value);
    if (std::isnan(value)) {
      ASSERT_TRUE(isF16NaN(got));
      continue;
    }
    ASSERT_EQ(got, expected) << std::hex << "f32 bits 0x" << bits;
    ASSERT_EQ(toBits(moert_f16_to_f32(expected)),
              toBits(static_cast<float>(reference)));
  }
}
#endif

} // namespace
