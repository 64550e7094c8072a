//===- HostMemory.cpp - The allocation functions CPU artifacts call -------===//
//
// CPU artifacts allocate through the generic functions of MLIR's memref
// lowering (use-generic-functions), which moert provides like the mgpu*
// functions of CUDA artifacts. They are malloc, aligned_alloc and free
// underneath (an artifact's moe_artifact_free calls free on its results),
// plus poisoning: while it is on, every new buffer is filled with 0xFF bytes
// (NaN in f32, bf16 and f16; -1 in integers), so a result element or an
// intermediate that no kernel writes shows as NaN instead of passing as a
// leftover value.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#define MOERT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
std::atomic<bool> poisoning{false};
} // namespace

bool moert::poisonAllocations() { return poisoning.load(); }

void moert_set_poison_allocations(int enabled) { poisoning = enabled != 0; }

MOERT_EXPORT void *_mlir_memref_to_llvm_alloc(size_t size) {
  void *pointer = std::malloc(size);
  if (pointer && poisoning)
    std::memset(pointer, moert::kPoisonByte, size);
  return pointer;
}

MOERT_EXPORT void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment,
                                                      size_t size) {
  // aligned_alloc wants a size that is a multiple of the alignment.
  size_t rounded = (size + alignment - 1) / alignment * alignment;
  void *pointer = std::aligned_alloc(alignment, rounded ? rounded : alignment);
  if (pointer && poisoning)
    std::memset(pointer, moert::kPoisonByte, size);
  return pointer;
}

MOERT_EXPORT void _mlir_memref_to_llvm_free(void *pointer) {
  std::free(pointer);
}
