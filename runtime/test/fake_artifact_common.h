/*===- fake_artifact_common.h - What the fake artifacts share ----*- C -*-===*\
|*                                                                          *|
|* The memref descriptors of docs/ArtifactFormat.md for the element types  *|
|* and ranks the hand-written artifacts use, and the artifact's free       *|
|* function, which counts its calls for the tests (read through dlsym).    *|
|* Included once per artifact, each a shared object of its own.            *|
\*===----------------------------------------------------------------------===*/

#ifndef MOERT_TEST_FAKE_ARTIFACT_COMMON_H
#define MOERT_TEST_FAKE_ARTIFACT_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#define FAKE_MEMREF(Name, Element, Rank)                                       \
  typedef struct {                                                             \
    Element *allocated, *aligned;                                              \
    int64_t offset, sizes[Rank], strides[Rank];                                \
  } Name

FAKE_MEMREF(MemRefF32x1, float, 1);
FAKE_MEMREF(MemRefF32x2, float, 2);
FAKE_MEMREF(MemRefI32x1, int32_t, 1);
FAKE_MEMREF(MemRefI64x1, int64_t, 1);
FAKE_MEMREF(MemRefI64x2, int64_t, 2);
FAKE_MEMREF(MemRefF16x1, uint16_t, 1);
typedef struct {
  float *allocated, *aligned;
  int64_t offset;
} MemRefF32x0;

/* How often moe_artifact_free ran. */
int fake_free_count = 0;

void moe_artifact_free(void *pointer) {
  ++fake_free_count;
  free(pointer);
}

#endif /* MOERT_TEST_FAKE_ARTIFACT_COMMON_H */
