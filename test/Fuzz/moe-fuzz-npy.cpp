//===- moe-fuzz-npy.cpp - Fuzz the runtime's .npy reader ------------------===//
//
// The input is the content of a .npy file. moert_tensor_load_npy reads it
// (from a temporary file: the runtime has no in-memory entry point) as each
// dtype, and an invalid one. A refusal must come with a message; a tensor it
// returns must be consistent (dtype, rank, element count) and must save and
// load back to the same dims and elements.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Runtime/moert.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

namespace {

constexpr size_t kMaxInputBytes = 64 * 1024;

[[noreturn]] void fail(const std::string &what) {
  std::fprintf(stderr, "==moe-fuzz== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string tempPath(const char *suffix) {
  const char *dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/moe-fuzz-npy-" +
         std::to_string(getpid()) + suffix;
}

bool writeFile(const std::string &path, const uint8_t *data, size_t size) {
  FILE *file = std::fopen(path.c_str(), "wb");
  if (!file)
    return false;
  bool ok = std::fwrite(data, 1, size, file) == size;
  return std::fclose(file) == 0 && ok;
}

const moert_dtype kDTypes[] = {MOERT_F32, MOERT_BF16, MOERT_F16, MOERT_I32,
                               MOERT_I64};

void checkTensor(const moert_tensor *tensor, moert_dtype dtype,
                 size_t fileSize) {
  if (moert_tensor_dtype(tensor) != dtype)
    fail("a loaded tensor has another dtype than the one asked for");
  int rank = moert_tensor_rank(tensor);
  if (rank < 0 || rank > MOERT_MAX_RANK)
    fail("a loaded tensor has rank " + std::to_string(rank));
  const int64_t *dims = moert_tensor_dims(tensor);
  int64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 0)
      fail("a loaded tensor has a negative dimension");
    count *= dims[i]; // Cannot overflow: the data is in the file.
  }
  if (count != moert_tensor_num_elements(tensor))
    fail("a loaded tensor's element count is not the product of its dims");
  // The file holds every element (bf16 as float32).
  size_t fileElement = dtype == MOERT_BF16 ? 4 : moert_dtype_size(dtype);
  if (static_cast<uint64_t>(count) * fileElement > fileSize)
    fail("a loaded tensor has more elements than the file has bytes");
  if (!moert_tensor_data(const_cast<moert_tensor *>(tensor)))
    fail("a loaded tensor has no data pointer");
}

/// bf16 elements: equal bits, or both NaN (a NaN payload may change).
bool sameElements(moert_tensor *a, moert_tensor *b) {
  size_t count = static_cast<size_t>(moert_tensor_num_elements(a));
  size_t bytes = count * moert_dtype_size(moert_tensor_dtype(a));
  const void *x = moert_tensor_data(a), *y = moert_tensor_data(b);
  if (moert_tensor_dtype(a) != MOERT_BF16)
    return std::memcmp(x, y, bytes) == 0;
  const auto *p = static_cast<const uint16_t *>(x);
  const auto *q = static_cast<const uint16_t *>(y);
  for (size_t i = 0; i < count; ++i) {
    bool nanP = (p[i] & 0x7f80) == 0x7f80 && (p[i] & 0x7f);
    bool nanQ = (q[i] & 0x7f80) == 0x7f80 && (q[i] & 0x7f);
    if (p[i] != q[i] && !(nanP && nanQ))
      return false;
  }
  return true;
}

const std::string &inputPath() {
  static const std::string path = tempPath(".npy");
  return path;
}
const std::string &copyPath() {
  static const std::string path = tempPath("-saved.npy");
  return path;
}
void removeTemporaries() {
  std::remove(inputPath().c_str());
  std::remove(copyPath().c_str());
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  std::atexit(removeTemporaries);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputBytes)
    return -1;
  const std::string &input = inputPath();
  const std::string &copy = copyPath();
  if (!writeFile(input, data, size))
    fail("cannot write the temporary file " + input);

  for (moert_dtype dtype : kDTypes) {
    moert_tensor *tensor = nullptr;
    if (moert_tensor_load_npy(input.c_str(), dtype, &tensor) != 0) {
      if (tensor)
        fail("a failed load returned a tensor");
      if (!*moert_last_error())
        fail("a failed load set no error message");
      continue;
    }
    if (!tensor)
      fail("a successful load returned no tensor");
    checkTensor(tensor, dtype, size);

    // Save and load back: the same dims and elements.
    if (moert_tensor_save_npy(tensor, copy.c_str()) != 0)
      fail(std::string("saving a loaded tensor failed: ") + moert_last_error());
    moert_tensor *again = nullptr;
    if (moert_tensor_load_npy(copy.c_str(), dtype, &again) != 0)
      fail(std::string("a saved tensor does not load back: ") +
           moert_last_error());
    int rank = moert_tensor_rank(tensor);
    if (moert_tensor_rank(again) != rank ||
        std::memcmp(moert_tensor_dims(again), moert_tensor_dims(tensor),
                    sizeof(int64_t) * rank) != 0 ||
        !sameElements(tensor, again))
      fail("a saved tensor loads back different");
    moert_tensor_free(again);
    moert_tensor_free(tensor);
  }

  // A dtype that is no moert_dtype is refused, not used.
  moert_dtype invalid;
  int raw = 5;
  std::memcpy(&invalid, &raw, sizeof(raw));
  moert_tensor *tensor = nullptr;
  if (moert_tensor_load_npy(input.c_str(), invalid, &tensor) == 0 || tensor)
    fail("a load with an invalid dtype succeeded");
  return 0;
}
