//===- FuzzMutate.h - A mutator for the numbers in textual inputs -*- C++ -*-===//
//
// Most of what breaks a compiler of tensor programs is in the numbers: shapes
// whose products overflow, counts at the edge of int32, factors that print in
// exponent form. libFuzzer's byte mutations rarely turn "16" into
// "4294967296"; half of the time this mutator replaces a number of the text
// with a value from a list of edge cases instead: one occurrence, or every
// occurrence of that number (a dimension used throughout a program changes
// consistently, so the program still verifies and reaches the pipelines).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_TEST_FUZZ_FUZZMUTATE_H
#define MOE_MLIR_TEST_FUZZ_FUZZMUTATE_H

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" size_t LLVMFuzzerMutate(uint8_t *data, size_t size,
                                   size_t maxSize);

namespace moefuzz {

/// Replaces one run of digits (with an optional '.', 'e' and sign: a number
/// of the text) by an edge value; returns the new size, or 0 if the text has
/// no number or the result would not fit.
inline size_t mutateOneNumber(uint8_t *data, size_t size, size_t maxSize,
                              std::minstd_rand &rng) {
  static const char *const values[] = {
      "0", "1", "2", "3", "4", "7", "8", "9", "15", "16", "17", "31", "32",
      "33", "63", "64", "65", "127", "128", "255", "256", "1023", "1024",
      "4096", "65535", "65536", "1048576", "2147483647", "2147483648",
      "4294967295", "4294967296", "1099511627776", "4611686018427387904",
      "9223372036854775807", "9223372036854775808", "18446744073709551616",
      "-1", "-2147483648", "0.0", "0.5", "1.5", "1e20", "1e-20", "1e17",
      "1e300", "1e-300", "5e-324", "1.7976931348623157e308", "2.5e+17",
      "0x7fffffff", "-0.0", "1e400", "nan", "inf"};
  std::vector<std::pair<size_t, size_t>> numbers; // [begin, end)
  for (size_t i = 0; i < size;) {
    if (data[i] < '0' || data[i] > '9') {
      ++i;
      continue;
    }
    // Not the digits of a name ("f32", "%arg0", "sm_90"), but those of a
    // shape ("16x32").
    char before = i ? static_cast<char>(data[i - 1]) : ' ';
    if (before != 'x' && (std::isalpha(static_cast<unsigned char>(before)) ||
                          before == '_')) {
      while (i < size && data[i] >= '0' && data[i] <= '9')
        ++i;
      continue;
    }
    size_t begin = i;
    while (i < size && ((data[i] >= '0' && data[i] <= '9') || data[i] == '.' ||
                        data[i] == 'e' || data[i] == 'E' ||
                        ((data[i] == '+' || data[i] == '-') &&
                         (data[i - 1] == 'e' || data[i - 1] == 'E'))))
      ++i;
    numbers.emplace_back(begin, i);
  }
  if (numbers.empty())
    return 0;
  auto [begin, end] = numbers[rng() % numbers.size()];
  const std::string old(reinterpret_cast<const char *>(data) + begin,
                        end - begin);
  const char *value = values[rng() % (sizeof(values) / sizeof(values[0]))];
  bool everywhere = rng() % 2;
  std::string text;
  size_t copied = 0;
  for (auto [b, e] : numbers) {
    bool chosen = b == begin || (everywhere && e - b == old.size() &&
                                 std::memcmp(data + b, old.data(),
                                             old.size()) == 0);
    if (!chosen)
      continue;
    text.append(reinterpret_cast<const char *>(data) + copied, b - copied);
    text += value;
    copied = e;
  }
  text.append(reinterpret_cast<const char *>(data) + copied, size - copied);
  if (text.size() > maxSize)
    return 0;
  std::memcpy(data, text.data(), text.size());
  return text.size();
}

/// The custom mutator of the textual targets.
inline size_t mutateText(uint8_t *data, size_t size, size_t maxSize,
                         unsigned seed) {
  std::minstd_rand rng(seed);
  if (rng() % 2)
    if (size_t newSize = mutateOneNumber(data, size, maxSize, rng))
      return newSize;
  return LLVMFuzzerMutate(data, size, maxSize);
}

} // namespace moefuzz

#endif // MOE_MLIR_TEST_FUZZ_FUZZMUTATE_H
