//===- FuzzKnown.h - Inputs of open bugs the fuzzers skip -------*- C++ -*-===//
//
// A fuzzer that keeps finding the same open bug finds nothing else, and CI
// would fail on it until it is fixed. scripts/fuzz.sh sets
// MOE_FUZZ_SKIP_KNOWN=1, and then the targets skip the inputs of the bugs
// below (each with its reproducer in test/Fuzz/crashes/<target>/, which
// `scripts/fuzz.sh regress` runs without skipping and reports as open or
// fixed). Run by hand, a target skips nothing.
//
// When a bug is fixed: delete its filter here, move its reproducer into
// test/Fuzz/corpus/<target>/.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_TEST_FUZZ_FUZZKNOWN_H
#define MOE_MLIR_TEST_FUZZ_FUZZKNOWN_H

#include <cstdlib>

namespace moefuzz {

inline bool skipKnownBugs() {
  static const bool skip = [] {
    const char *env = std::getenv("MOE_FUZZ_SKIP_KNOWN");
    return env && env[0] == '1';
  }();
  return skip;
}

} // namespace moefuzz

#endif // MOE_MLIR_TEST_FUZZ_FUZZKNOWN_H
