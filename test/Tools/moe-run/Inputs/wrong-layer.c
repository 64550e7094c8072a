/* A miscompiled stand-in for `moe-compile --layer tiny`: the same metadata
   (one MoE layer, so moe-run --check runs the reference), but y is a
   constant and every token picks experts 0 and 1. --check must fail. */
#include <stdint.h>
#include <stdlib.h>

typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} MemRef2;

const char moe_artifact_metadata[] =
    "moe-artifact 1\n"
    "target cpu\n"
    "function moe_layer 4 2\n"
    "arg 0 f32 2 16 32\n"
    "arg 1 f32 2 32 4\n"
    "arg 2 f32 3 4 32 48\n"
    "arg 3 f32 3 4 24 32\n"
    "result 0 f32 2 16 32\n"
    "result 1 i32 2 16 2\n"
    "attr layer.router softmax\n"
    "attr layer.top_k 2\n"
    "attr layer.normalize 1\n"
    "attr layer.scaling 1\n"
    "attr layer.capacity 0\n"
    "attr layer.n_group 0\n"
    "attr layer.topk_group 0\n"
    "attr layer.activation silu_glu\n"
    "attr layer.x 0\n"
    "attr layer.w_gate 1\n"
    "attr layer.w1 2\n"
    "attr layer.w2 3\n"
    "attr layer.bias -1\n"
    "attr layer.y 0\n"
    "attr layer.indices 1\n"
    "end\n";

void moe_entry_moe_layer(void **args, void *results) {
  (void)args;
  float *y = malloc(sizeof(float) * 16 * 32);
  int32_t *indices = malloc(sizeof(int32_t) * 16 * 2);
  for (int i = 0; i < 16 * 32; ++i)
    y[i] = 0.25f;
  for (int t = 0; t < 16; ++t) {
    indices[2 * t] = 0;
    indices[2 * t + 1] = 1;
  }
  MemRef2 *out = results;
  out[0] = (MemRef2){y, y, 0, {16, 32}, {32, 1}};
  out[1] = (MemRef2){indices, indices, 0, {16, 2}, {2, 1}};
}

void moe_artifact_free(void *pointer) { free(pointer); }
