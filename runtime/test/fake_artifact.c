/*===- fake_artifact.c - A hand-written artifact for the moert tests -----===*\
|*                                                                          *|
|* It follows docs/ArtifactFormat.md like moe-compile output would, and     *|
|* returns results in the awkward shapes a compiler may produce: strided    *|
|* and offset views, broadcasts, two results sharing one allocation, a      *|
|* result that is an argument, an MLIR global constant, a wrong shape.      *|
\*===----------------------------------------------------------------------===*/

#include "fake_artifact_common.h"

#include <stdint.h>
#include <stdlib.h>

const char moe_artifact_metadata[] =
    "moe-artifact 1\n"
    "target cpu\n"
    "# add(a, b) = a + b\n"
    "function add 2 1\n"
    "arg 0 f32 2 ? 4\n"
    "arg 1 f32 2 ? 4\n"
    "result 0 f32 2 ? 4\n"
    "attr kind elementwise  add\n"
    "attr layer.router softmax\n"
    "end\n"
    "\n"
    "# pair(x) = ([x, 10 x] as a transposed view, broadcast of sum(x))\n"
    "function pair 1 2\n"
    "arg 0 i64 1 ?\n"
    "result 0 i64 2 2 ?\n"
    "result 1 f32 1 3\n"
    "end\n"
    "# echo(x) = (x itself, sum(x))\n"
    "function echo 1 2\n"
    "arg 0 f32 1 ?\n"
    "result 0 f32 1 ?\n"
    "result 1 f32 0\n"
    "end\n"
    "# konst() = a global constant\n"
    "function konst 0 1\n"
    "result 0 f32 1 2\n"
    "end\n"
    "# liar() declares 3 elements and returns 4\n"
    "function liar 0 1\n"
    "result 0 f32 1 3\n"
    "end\n";


void moe_entry_add(void **args, void *results) {
  const MemRefF32x2 *a = args[0], *b = args[1];
  MemRefF32x2 *out = results;
  int64_t rows = a->sizes[0];
  float *data = malloc(sizeof(float) * (rows * 4 + 1));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < 4; ++j)
      data[i * 4 + j] =
          a->aligned[a->offset + i * a->strides[0] + j * a->strides[1]] +
          b->aligned[b->offset + i * b->strides[0] + j * b->strides[1]];
  *out = (MemRefF32x2){data, data, 0, {rows, 4}, {4, 1}};
}

void moe_entry_pair(void **args, void *results) {
  const MemRefI64x1 *x = args[0];
  int64_t n = x->sizes[0], sum = 0;
  /* One block: 2 words of padding, n x 2 int64 (x and 10 x interleaved),
     then 2 floats. Both results point into it. */
  int64_t *block = malloc(sizeof(int64_t) * (2 + 2 * n + 1));
  for (int64_t j = 0; j < n; ++j) {
    int64_t value = x->aligned[x->offset + j * x->strides[0]];
    block[2 + 2 * j] = value;
    block[2 + 2 * j + 1] = 10 * value;
    sum += value;
  }
  float *floats = (float *)(block + 2 + 2 * n);
  floats[0] = -1.0f;
  floats[1] = (float)sum;
  MemRefI64x2 *first = results;
  /* [2, n] with strides [1, 2]: element (r, j) is block[2 + 2 j + r]. */
  *first = (MemRefI64x2){block, block + 1, 1, {2, n}, {1, 2}};
  MemRefF32x1 *second = (MemRefF32x1 *)(first + 1);
  *second = (MemRefF32x1){(float *)block, floats, 1, {3}, {0}};
}

void moe_entry_echo(void **args, void *results) {
  const MemRefF32x1 *x = args[0];
  MemRefF32x1 *first = results;
  *first = *x; /* The argument itself: the runtime must not free it. */
  float *sum = malloc(sizeof(float));
  *sum = 0;
  for (int64_t i = 0; i < x->sizes[0]; ++i)
    *sum += x->aligned[x->offset + i * x->strides[0]];
  MemRefF32x0 *second = (MemRefF32x0 *)(first + 1);
  *second = (MemRefF32x0){sum, sum, 0};
}

static float konstData[2] = {1.5f, -2.5f};

void moe_entry_konst(void **args, void *results) {
  (void)args;
  /* MLIR's memref.get_global marks the allocated pointer like this. */
  *(MemRefF32x1 *)results =
      (MemRefF32x1){(float *)0xdeadbeef, konstData, 0, {2}, {1}};
}

void moe_entry_liar(void **args, void *results) {
  (void)args;
  float *data = calloc(4, sizeof(float));
  *(MemRefF32x1 *)results = (MemRefF32x1){data, data, 0, {4}, {1}};
}
