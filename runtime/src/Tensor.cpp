//===- Tensor.cpp - Dense row-major tensors -------------------------------===//
//
// A moert_tensor owns one 64-byte aligned, zero-initialized buffer.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <cstdlib>
#include <cstring>

using namespace moert;

namespace {
// Enough for any vector load the compiled code may issue on the buffer.
constexpr size_t tensorAlignment = 64;
} // namespace

std::string moert::formatShape(int rank, const int64_t *dims) {
  std::string text = "[";
  for (int i = 0; i < rank; ++i) {
    if (i)
      text += ", ";
    text +=
        dims[i] == MOERT_DYNAMIC ? std::string("?") : std::to_string(dims[i]);
  }
  return text + "]";
}

/// Checks what moert_tensor_create and moert_tensor_wrap share and counts
/// the elements; false (and an error) on a bad dtype, rank or dimension.
static bool checkShape(moert_dtype dtype, int rank, const int64_t *dims,
                       int64_t &numElements) {
  if (!isValidDType(dtype)) {
    setError("cannot create a tensor: invalid dtype %d", rawDType(dtype));
    return false;
  }
  if (rank < 0 || rank > MOERT_MAX_RANK) {
    setError("cannot create a tensor of rank %d (the rank must be 0 to %d)",
             rank, MOERT_MAX_RANK);
    return false;
  }
  if (rank > 0 && !dims) {
    setError("cannot create a tensor of rank %d: dims is NULL", rank);
    return false;
  }
  numElements = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 0) {
      setError("cannot create a tensor: dimension %d is %lld (dimensions "
               "must be non-negative)",
               i, static_cast<long long>(dims[i]));
      return false;
    }
    if (__builtin_mul_overflow(numElements, dims[i], &numElements)) {
      setError("cannot create a tensor: too many elements");
      return false;
    }
  }
  size_t bytes;
  if (__builtin_mul_overflow(static_cast<size_t>(numElements),
                             moert_dtype_size(dtype), &bytes)) {
    setError("cannot create a tensor: too many bytes");
    return false;
  }
  return true;
}

/// The header moert_tensor_create and moert_tensor_wrap both fill, once the
/// shape has passed checkShape.
static void fillHeader(moert_tensor &tensor, moert_dtype dtype, int rank,
                       const int64_t *dims, int64_t numElements, void *data,
                       bool ownsData) {
  tensor.dtype = dtype;
  tensor.rank = rank;
  std::memset(tensor.dims, 0, sizeof(tensor.dims));
  if (rank > 0)
    std::memcpy(tensor.dims, dims, sizeof(int64_t) * rank);
  tensor.numElements = numElements;
  tensor.data = data;
  tensor.ownsData = ownsData;
}

moert_tensor *moert_tensor_create(moert_dtype dtype, int rank,
                                  const int64_t *dims) {
  int64_t numElements;
  if (!checkShape(dtype, rank, dims, numElements))
    return nullptr;
  // Round up to the alignment (aligned_alloc wants a multiple); at least one
  // block, so that even an empty tensor has a distinct non-NULL buffer.
  size_t elementSize = moert_dtype_size(dtype);
  size_t bytes;
  if (__builtin_mul_overflow(static_cast<size_t>(numElements), elementSize,
                             &bytes) ||
      bytes > SIZE_MAX - tensorAlignment) {
    setError("cannot create a tensor: too many bytes");
    return nullptr;
  }
  bytes = (bytes + tensorAlignment - 1) / tensorAlignment * tensorAlignment;
  if (bytes == 0)
    bytes = tensorAlignment;

  auto *tensor = static_cast<moert_tensor *>(std::malloc(sizeof(moert_tensor)));
  void *data = std::aligned_alloc(tensorAlignment, bytes);
  if (!tensor || !data) {
    std::free(tensor);
    std::free(data);
    setError("out of memory allocating a tensor of %zu bytes", bytes);
    return nullptr;
  }
  std::memset(data, 0, bytes);
  fillHeader(*tensor, dtype, rank, dims, numElements, data, true);
  return tensor;
}

moert_tensor *moert_tensor_wrap(moert_dtype dtype, int rank,
                                const int64_t *dims, void *data) {
  int64_t numElements;
  if (!checkShape(dtype, rank, dims, numElements))
    return nullptr;
  if (!data) {
    setError("cannot wrap memory as a tensor: data is NULL");
    return nullptr;
  }
  // The compiled code loads whole elements; a misaligned one is undefined.
  size_t elementSize = moert_dtype_size(dtype);
  if (reinterpret_cast<uintptr_t>(data) % elementSize != 0) {
    setError("cannot wrap memory as a %s tensor: the address %p is not "
             "aligned to %zu bytes",
             moert_dtype_name(dtype), data, elementSize);
    return nullptr;
  }
  auto *tensor = static_cast<moert_tensor *>(std::malloc(sizeof(moert_tensor)));
  if (!tensor) {
    setError("out of memory allocating a tensor");
    return nullptr;
  }
  fillHeader(*tensor, dtype, rank, dims, numElements, data, false);
  return tensor;
}

void moert_tensor_free(moert_tensor *tensor) {
  if (!tensor)
    return;
  if (tensor->ownsData)
    std::free(tensor->data);
  std::free(tensor);
}

moert_dtype moert_tensor_dtype(const moert_tensor *tensor) {
  return tensor ? tensor->dtype : MOERT_F32;
}

int moert_tensor_rank(const moert_tensor *tensor) {
  return tensor ? tensor->rank : 0;
}

const int64_t *moert_tensor_dims(const moert_tensor *tensor) {
  return tensor ? tensor->dims : nullptr;
}

int64_t moert_tensor_num_elements(const moert_tensor *tensor) {
  return tensor ? tensor->numElements : 0;
}

void *moert_tensor_data(moert_tensor *tensor) {
  return tensor ? tensor->data : nullptr;
}
