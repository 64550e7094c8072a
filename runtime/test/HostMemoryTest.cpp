//===- HostMemoryTest.cpp - The allocation functions of CPU artifacts -----===//

#include "TestUtil.h"

#include <cmath>
#include <cstdint>
#include <cstring>

// What the memref lowering's generic functions declare (libmoert.so exports
// them to the artifacts).
extern "C" {
void *_mlir_memref_to_llvm_alloc(size_t size);
void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t size);
void _mlir_memref_to_llvm_free(void *pointer);
}

namespace {

// While poisoning is on, new buffers are NaN in f32 (and -1 in i32), so an
// element no kernel writes cannot pass for a result; off, they are not
// touched.
TEST(HostMemory, PoisonedWhileEnabled) {
  moert_set_poison_allocations(1);
  auto *f = static_cast<float *>(_mlir_memref_to_llvm_alloc(37 * sizeof(float)));
  auto *i = static_cast<int32_t *>(
      _mlir_memref_to_llvm_aligned_alloc(64, 5 * sizeof(int32_t)));
  moert_set_poison_allocations(0);
  ASSERT_NE(f, nullptr);
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(i) % 64, 0u);
  for (int k = 0; k < 37; ++k)
    EXPECT_TRUE(std::isnan(f[k])) << k;
  for (int k = 0; k < 5; ++k)
    EXPECT_EQ(i[k], -1) << k;
  _mlir_memref_to_llvm_free(f);
  _mlir_memref_to_llvm_free(i);
}

TEST(HostMemory, NotPoisonedByDefault) {
  // A buffer written and freed, then the same size again: without
  // poisoning, moert does not fill it (malloc usually hands the block back).
  auto *f = static_cast<float *>(_mlir_memref_to_llvm_alloc(64));
  ASSERT_NE(f, nullptr);
  std::memset(f, 0, 64);
  _mlir_memref_to_llvm_free(f);
  auto *g = static_cast<unsigned char *>(_mlir_memref_to_llvm_alloc(64));
  ASSERT_NE(g, nullptr);
  bool allPoison = true;
  for (int k = 0; k < 64; ++k)
    allPoison &= g[k] == 0xFF;
  EXPECT_FALSE(allPoison);
  _mlir_memref_to_llvm_free(g);
}

} // namespace
