/*===- cuda_fake_artifact.c - A hand-written CUDA artifact for the tests -===*\
|*                                                                          *|
|* It behaves like moe-compile's output for a `cuda:` target: a global      *|
|* constructor loads the GPU code with mgpuModuleLoad at dlopen, a          *|
|* destructor unloads it, and the entry points allocate device memory,      *|
|* launch kernels and return device memory through the mgpu* functions     *|
|* that libmoert.so provides (they are undefined here). The GPU code is     *|
|* hand-written PTX, which the driver compiles when it loads it, so no CUDA *|
|* toolkit is needed to build this.                                         *|
|*                                                                          *|
|* Built in variants: CUDA_FAKE_TARGET is the metadata target, and with     *|
|* CUDA_FAKE_GARBAGE the "GPU code" is a string the driver must reject.     *|
\*===----------------------------------------------------------------------===*/

#include <stdbool.h>
#include <stddef.h>
#include "fake_artifact_common.h"

#include <stdint.h>
#include <stdlib.h>

#ifndef CUDA_FAKE_TARGET
#define CUDA_FAKE_TARGET "cuda:sm_90"
#endif

/* What libmoert.so exports, with MLIR's gpu-to-llvm (LLVM 22) signatures. */
extern void *mgpuModuleLoad(void *data, int64_t size);
extern void mgpuModuleUnload(void *module);
extern void *mgpuModuleGetFunction(void *module, const char *name);
extern void *mgpuStreamCreate(void);
extern void mgpuStreamSynchronize(void *stream);
extern void mgpuStreamDestroy(void *stream);
extern void mgpuLaunchKernel(void *function, int64_t gridX, int64_t gridY,
                             int64_t gridZ, int64_t blockX, int64_t blockY,
                             int64_t blockZ, int32_t sharedMemBytes,
                             void *stream, void **params, void **extra,
                             int64_t paramsCount);
extern void mgpuLaunchClusterKernel(void *function, int64_t clusterX,
                                    int64_t clusterY, int64_t clusterZ,
                                    int64_t gridX, int64_t gridY, int64_t gridZ,
                                    int64_t blockX, int64_t blockY,
                                    int64_t blockZ, int32_t sharedMemBytes,
                                    void *stream, void **params, void **extra);
extern void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared);
extern void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream);
extern void mgpuMemset32(void *dst, unsigned int value, size_t count,
                         void *stream);
extern void mgpuMemset16(void *dst, unsigned short value, size_t count,
                         void *stream);

const char moe_artifact_metadata[] =
    "moe-artifact 1\n"
    "target " CUDA_FAKE_TARGET "\n"
    "# add(a, b) = a + b, one kernel launch\n"
    "function add 2 1\n"
    "arg 0 f32 1 ?\n"
    "arg 1 f32 1 ?\n"
    "result 0 f32 1 ?\n"
    "end\n"
    "# the same, launched with 100 KiB of dynamic shared memory\n"
    "function add_big_smem 2 1\n"
    "arg 0 f32 1 ?\n"
    "arg 1 f32 1 ?\n"
    "result 0 f32 1 ?\n"
    "end\n"
    "# views(x) = (x^T as a strided view, x itself, memset32, memset16,\n"
    "#             x flattened and reversed: a negative stride)\n"
    "function views 1 5\n"
    "arg 0 f32 2 2 3\n"
    "result 0 f32 2 3 2\n"
    "result 1 f32 2 2 3\n"
    "result 2 i32 1 4\n"
    "result 3 f16 1 3\n"
    "result 4 f32 1 6\n"
    "end\n"
    "# the same, its blocks in clusters of 2 (a grid of an even count)\n"
    "function add_in_clusters 2 1\n"
    "arg 0 f32 1 ?\n"
    "arg 1 f32 1 ?\n"
    "result 0 f32 1 ?\n"
    "end\n"
    "# bad_cluster(x) launches one block in clusters of 3: the launch fails\n"
    "function bad_cluster 1 1\n"
    "arg 0 f32 1 ?\n"
    "result 0 f32 1 ?\n"
    "end\n"
    "# bad_launch(x) launches with 4096 threads a block: the launch fails\n"
    "function bad_launch 1 1\n"
    "arg 0 f32 1 ?\n"
    "result 0 f32 1 ?\n"
    "end\n"
    "# managed() asks for host-shared memory, which moert refuses\n"
    "function managed 0 1\n"
    "result 0 f32 1 2\n"
    "end\n"
    "# host_result() returns host memory from malloc\n"
    "function host_result 0 1\n"
    "result 0 f32 1 2\n"
    "end\n";

#ifdef CUDA_FAKE_GARBAGE
static const char gpuCode[] = "this is neither a cubin nor PTX";
#else
/* add_f32(a, b, c, n): c[i] = a[i] + b[i] for i < n. */
static const char gpuCode[] =
    ".version 7.0\n"
    ".target sm_52\n"
    ".address_size 64\n"
    ".visible .entry add_f32(.param .u64 add_f32_a, .param .u64 add_f32_b,\n"
    "                        .param .u64 add_f32_c, .param .u32 add_f32_n)\n"
    "{\n"
    "  .reg .pred %p<2>;\n"
    "  .reg .b32 %r<6>;\n"
    "  .reg .f32 %f<4>;\n"
    "  .reg .b64 %rd<11>;\n"
    "  ld.param.u64 %rd1, [add_f32_a];\n"
    "  ld.param.u64 %rd2, [add_f32_b];\n"
    "  ld.param.u64 %rd3, [add_f32_c];\n"
    "  ld.param.u32 %r2, [add_f32_n];\n"
    "  mov.u32 %r3, %ctaid.x;\n"
    "  mov.u32 %r4, %ntid.x;\n"
    "  mov.u32 %r5, %tid.x;\n"
    "  mad.lo.s32 %r1, %r3, %r4, %r5;\n"
    "  setp.ge.u32 %p1, %r1, %r2;\n"
    "  @%p1 bra DONE;\n"
    "  cvta.to.global.u64 %rd4, %rd1;\n"
    "  mul.wide.u32 %rd5, %r1, 4;\n"
    "  add.s64 %rd6, %rd4, %rd5;\n"
    "  cvta.to.global.u64 %rd7, %rd2;\n"
    "  add.s64 %rd8, %rd7, %rd5;\n"
    "  ld.global.f32 %f1, [%rd6];\n"
    "  ld.global.f32 %f2, [%rd8];\n"
    "  add.f32 %f3, %f1, %f2;\n"
    "  cvta.to.global.u64 %rd9, %rd3;\n"
    "  add.s64 %rd10, %rd9, %rd5;\n"
    "  st.global.f32 [%rd10], %f3;\n"
    "DONE:\n"
    "  ret;\n"
    "}\n";
#endif

/* As MLIR's embedded GPU module does: loaded at dlopen, unloaded at
   dlclose. NULL if the load failed (moert then reports why). */
static void *module;

__attribute__((constructor)) static void loadGpuCode(void) {
  /* mgpuModuleLoad only reads the image; its signature is not const. */
  module = mgpuModuleLoad((void *)(uintptr_t)gpuCode, (int64_t)sizeof(gpuCode));
}

__attribute__((destructor)) static void unloadGpuCode(void) {
  mgpuModuleUnload(module);
}

/* c = a + b, 128 threads a block unless blockX says otherwise; cluster > 0
 * launches the blocks in clusters of that many (mgpuLaunchClusterKernel),
 * `roundUp` rounding the grid up to a multiple of it. */
static void launchAdd(void **args, void *results, int32_t sharedMemBytes,
                      int64_t blockX, int64_t cluster, bool roundUp) {
  const MemRefF32x1 *a = args[0], *b = args[1];
  int64_t n = a->sizes[0];
  void *stream = mgpuStreamCreate();
  float *c = mgpuMemAlloc((uint64_t)n * sizeof(float), stream, false);
  if (n > 0) {
    void *function = mgpuModuleGetFunction(module, "add_f32");
    float *pa = a->aligned + a->offset, *pb = b->aligned + b->offset;
    uint32_t count = (uint32_t)n;
    void *params[] = {&pa, &pb, &c, &count};
    int64_t grid = (n + 127) / 128;
    if (cluster > 0 && roundUp)
      grid = (grid + cluster - 1) / cluster * cluster;
    if (cluster > 0)
      mgpuLaunchClusterKernel(function, cluster, 1, 1, grid, 1, 1, blockX, 1, 1,
                              sharedMemBytes, stream, params, NULL);
    else
      mgpuLaunchKernel(function, grid, 1, 1, blockX, 1, 1, sharedMemBytes,
                       stream, params, NULL, 4);
  }
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
  *(MemRefF32x1 *)results = (MemRefF32x1){c, c, 0, {n}, {1}};
}

static void add(void **args, void *results, int32_t sharedMemBytes,
                int64_t blockX) {
  launchAdd(args, results, sharedMemBytes, blockX, 0, false);
}

void moe_entry_add(void **args, void *results) { add(args, results, 0, 128); }

void moe_entry_add_big_smem(void **args, void *results) {
  add(args, results, 100 * 1024, 128);
}

void moe_entry_add_in_clusters(void **args, void *results) {
  launchAdd(args, results, 0, 128, 2, true);
}

void moe_entry_bad_cluster(void **args, void *results) {
  void *pair[] = {args[0], args[0]};
  launchAdd(pair, results, 0, 128, 3, false);
}

void moe_entry_bad_launch(void **args, void *results) {
  const MemRefF32x1 *a = args[0];
  void *extra[] = {args[0], args[0]};
  add(extra, results, 0, a->sizes[0] > 0 ? 4096 : 128);
}

void moe_entry_views(void **args, void *results) {
  const MemRefF32x2 *x = args[0];
  void *stream = mgpuStreamCreate();
  /* One block: a word of padding, then x row-major. */
  float *block = mgpuMemAlloc(7 * sizeof(float), stream, false);
  mgpuMemset32(block, 0xbf800000u /* -1.0f */, 7, stream);
  mgpuMemcpy(block + 1, x->aligned + x->offset, 6 * sizeof(float), stream);
  int32_t *ints = mgpuMemAlloc(4 * sizeof(int32_t), stream, false);
  mgpuMemset32(ints, 0x01020304u, 4, stream);
  uint16_t *halves = mgpuMemAlloc(3 * sizeof(uint16_t), stream, false);
  mgpuMemset16(halves, 0x3c00u /* 1.0 in f16 */, 3, stream);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);

  MemRefF32x2 *transposed = results;
  /* [3, 2] with strides [1, 3]: element (i, j) is x[j][i]. */
  *transposed = (MemRefF32x2){block, block, 1, {3, 2}, {1, 3}};
  MemRefF32x2 *same = transposed + 1;
  *same = *x; /* The argument itself: moert must not free it. */
  MemRefI32x1 *filled = (MemRefI32x1 *)(same + 1);
  *filled = (MemRefI32x1){ints, ints, 0, {4}, {1}};
  MemRefF16x1 *ones = (MemRefF16x1 *)(filled + 1);
  *ones = (MemRefF16x1){halves, halves, 0, {3}, {1}};
  MemRefF32x1 *reversed = (MemRefF32x1 *)(ones + 1);
  /* Shares the block with the first result: freed once. */
  *reversed = (MemRefF32x1){block, block, 6, {6}, {-1}};
}

void moe_entry_managed(void **args, void *results) {
  (void)args;
  float *data = mgpuMemAlloc(2 * sizeof(float), NULL, true);
  *(MemRefF32x1 *)results = (MemRefF32x1){data, data, 0, {2}, {1}};
}

void moe_entry_host_result(void **args, void *results) {
  (void)args;
  float *data = malloc(2 * sizeof(float));
  data[0] = 1.5f;
  data[1] = -2.5f;
  *(MemRefF32x1 *)results = (MemRefF32x1){data, data, 0, {2}, {1}};
}
