//===- TestUtil.h - Helpers shared by the moert unit tests ------*- C++ -*-===//

#ifndef MOERT_TEST_TESTUTIL_H
#define MOERT_TEST_TESTUTIL_H

#include "moe-mlir/Runtime/moert.h"

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <vector>
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

/// Creates a tensor holding `values`.
template <typename T>
TensorPtr makeTensor(moert_dtype dtype, std::vector<int64_t> dims,
                     const std::vector<T> &values) {
  TensorPtr tensor(
      moert_tensor_create(dtype, static_cast<int>(dims.size()), dims.data()));
  if (tensor && !values.empty())
    std::memcpy(moert_tensor_data(tensor.get()), values.data(),
                values.size() * sizeof(T));
  return tensor;
}

template <typename T> std::vector<T> contents(moert_tensor *tensor) {
  const T *data = static_cast<const T *>(moert_tensor_data(tensor));
  return std::vector<T>(data, data + moert_tensor_num_elements(tensor));
}

inline std::vector<int64_t> dimsOf(const moert_tensor *tensor) {
  const int64_t *dims = moert_tensor_dims(tensor);
  return std::vector<int64_t>(dims, dims + moert_tensor_rank(tensor));
}

/// A fixture over one of the hand-written artifacts: the subclass's SetUp
/// loads `artifact`, then calls openFreeCounter to read the artifact's count
/// of moe_artifact_free calls (fake_artifact_common.h).
class FakeArtifactTest : public ::testing::Test {
protected:
  void openFreeCounter(const char *path) {
    // The same shared object moert loaded.
    library = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    ASSERT_NE(library, nullptr) << dlerror();
    freeCount = static_cast<int *>(dlsym(library, "fake_free_count"));
    ASSERT_NE(freeCount, nullptr);
  }
  void TearDown() override {
    if (library)
      dlclose(library);
    moert_artifact_unload(artifact);
  }

  const moert_function *lookup(const char *name) {
    const moert_function *function = moert_artifact_lookup(artifact, name);
    EXPECT_NE(function, nullptr) << moert_last_error();
    return function;
  }

  moert_artifact *artifact = nullptr;
  void *library = nullptr;
  int *freeCount = nullptr;
};

} // namespace moert_test

#endif // MOERT_TEST_TESTUTIL_H
