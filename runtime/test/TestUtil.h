//===- TestUtil.h - Helpers shared by the moert unit tests ------*- C++ -*-===//

#ifndef MOERT_TEST_TESTUTIL_H
#define MOERT_TEST_TESTUTIL_H

#include "moe-mlir/Runtime/moert.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace moert_test {

struct TensorDeleter {
  void operator()(moert_tensor *tensor) const { moert_tensor_free(tensor); }
};
using TensorPtr = std::unique_ptr<moert_tensor, TensorDeleter>;

/// Passes if the last error contains `part`, and shows the error if not.
inline ::testing::AssertionResult errorContains(const std::string &part) {
  std::string error = moert_last_error();
  if (error.find(part) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the last error is \"" << error
                                       << "\"\n  and lacks \"" << part << "\"";
}

/// A fresh directory, removed with its contents at the end of the test.
class TempDir {
public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base && *base ? base : "/tmp") + "/moert-test-XXXXXX";
    if (mkdtemp(&pattern[0]))
      path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path.empty())
      std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string &name) const { return path + "/" + name; }

  std::string path;
};

} // namespace moert_test

#endif // MOERT_TEST_TESTUTIL_H
