// Intermediate buffers (also those allocated inside loops) become views into one arena; buffers whose lifetimes
// do not overlap share bytes. Results and dynamic buffers are not planned.
// RUN: moe-opt %s -split-input-file -moe-plan-memory | FileCheck %s

// a and b are live together; c starts after a's last use and reuses its
// bytes: 512 bytes for 768 bytes of buffers.
// CHECK-LABEL: func.func @reuse
// CHECK-SAME: moe.memory_plan = {buffers = [{bytes = 256 : i64, category = "activations", live = array<i64: 0, 3>, name = "activations.a", offset = 0 : i64}, {bytes = 256 : i64, category = "activations", live = array<i64: 2, 6>, name = "activations.b", offset = 256 : i64}, {bytes = 256 : i64, category = "routing", live = array<i64: 5, 8>, name = "routing.c", offset = 0 : i64}], peak_intermediate_bytes = 512 : i64, unplanned_dynamic = []}
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 256 : i64} : memref<512xi8>
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[A:.*]] = memref.view %[[ARENA]][%[[C0]]][] : memref<512xi8> to memref<64xf32>
// CHECK: %[[C256:.*]] = arith.constant 256 : index
// CHECK: %[[B:.*]] = memref.view %[[ARENA]][%[[C256]]][] : memref<512xi8> to memref<64xf32>
// CHECK: memref.copy %[[A]], %[[B]]
// CHECK: %[[C:.*]] = memref.view %[[ARENA]][%{{.*}}][] : memref<512xi8> to memref<64xf32>
// CHECK-NOT: memref.dealloc %[[A]]
// CHECK: memref.dealloc %[[ARENA]]
// CHECK-NEXT: return
func.func @reuse(%in: memref<64xf32>, %out: memref<64xf32>) {
  %a = memref.alloc() {moe.buffer = "activations.a"} : memref<64xf32>
  memref.copy %in, %a : memref<64xf32> to memref<64xf32>
  %b = memref.alloc() {moe.buffer = "activations.b"} : memref<64xf32>
  memref.copy %a, %b : memref<64xf32> to memref<64xf32>
  memref.dealloc %a : memref<64xf32>
  %c = memref.alloc() {moe.buffer = "routing.c"} : memref<64xf32>
  memref.copy %b, %c : memref<64xf32> to memref<64xf32>
  memref.dealloc %b : memref<64xf32>
  memref.copy %c, %out : memref<64xf32> to memref<64xf32>
  memref.dealloc %c : memref<64xf32>
  return
}

// -----

// A returned buffer is a result, not an intermediate; a dynamic one is
// listed as unplanned.
// CHECK-LABEL: func.func @escapes
// CHECK-SAME: moe.memory_plan = {buffers = [], peak_intermediate_bytes = 0 : i64, unplanned_dynamic = ["other.buffer1"]}
// CHECK: %[[R:.*]] = memref.alloc() : memref<8xf32>
// CHECK: %[[D:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: return %[[R]]
func.func @escapes(%n: index) -> memref<8xf32> {
  %r = memref.alloc() : memref<8xf32>
  %d = memref.alloc(%n) : memref<?xf32>
  memref.dealloc %d : memref<?xf32>
  return %r : memref<8xf32>
}

// -----

// Buffers allocated inside a loop (a tile of the batch) are planned too, each
// live for the whole loop at the top level: t1 and t2 of one iteration do not
// overlap in the body, so they share bytes; `outer`, live across the loop,
// does not share with either. 512 bytes for 768 bytes of buffers.
// CHECK-LABEL: func.func @tile_loop
// CHECK-SAME: moe.memory_plan = {buffers = [{bytes = 256 : i64, category = "activations", live = array<i64: 3, 6>, name = "activations.outer", offset = 0 : i64}, {bytes = 256 : i64, category = "attention", live = array<i64: 5, 5>, name = "attention.t1", offset = 256 : i64}, {bytes = 256 : i64, category = "attention", live = array<i64: 5, 5>, name = "attention.t2", offset = 256 : i64}], peak_intermediate_bytes = 512 : i64, unplanned_dynamic = []}
// CHECK: scf.for
// CHECK: memref.view %{{.*}}[%{{.*}}][] : memref<512xi8> to memref<64xf32>
// CHECK-NOT: memref.alloc()
// CHECK: memref.view %{{.*}}[%{{.*}}][] : memref<512xi8> to memref<64xf32>
// CHECK-NOT: memref.dealloc %{{.*}} : memref<64xf32>
// CHECK: }
func.func @tile_loop(%in: memref<64xf32>, %out: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %c1 = arith.constant 1 : index
  %outer = memref.alloc() {moe.buffer = "activations.outer"} : memref<64xf32>
  memref.copy %in, %outer : memref<64xf32> to memref<64xf32>
  scf.for %i = %c0 to %c2 step %c1 {
    %t1 = memref.alloc() {moe.buffer = "attention.t1"} : memref<64xf32>
    memref.copy %outer, %t1 : memref<64xf32> to memref<64xf32>
    memref.copy %t1, %out : memref<64xf32> to memref<64xf32>
    memref.dealloc %t1 : memref<64xf32>
    %t2 = memref.alloc() {moe.buffer = "attention.t2"} : memref<64xf32>
    memref.copy %out, %t2 : memref<64xf32> to memref<64xf32>
    memref.copy %t2, %outer : memref<64xf32> to memref<64xf32>
    memref.dealloc %t2 : memref<64xf32>
  }
  memref.copy %outer, %out : memref<64xf32> to memref<64xf32>
  memref.dealloc %outer : memref<64xf32>
  return
}

// -----

// A training step's result is free until its first use: the intermediates
// that die before it live in its bytes (in_result), not in the arena. %a
// and %b die before %dw is first written, %c is live across that write and
// takes the arena; a result used from the start (%early) holds nothing. The
// result is allocated at the start of the call as bytes, itself a view.
// CHECK-LABEL: func.func @train
// CHECK-SAME: moe.memory_plan = {buffers = [{bytes = 256 : i64, category = "activations", in_result = "gradients.dw", live = array<i64: 2, 5>, name = "activations.a", offset = 0 : i64}, {bytes = 256 : i64, category = "activations", in_result = "gradients.dw", live = array<i64: 4, 6>, name = "activations.b", offset = 256 : i64}, {bytes = 256 : i64, category = "activations", live = array<i64: 7, 11>, name = "activations.c", offset = 0 : i64}], peak_intermediate_bytes = 256 : i64, unplanned_dynamic = []}
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 256 : i64} : memref<256xi8>
// CHECK: %[[BYTES:.*]] = memref.alloc() {alignment = 256 : i64, moe.buffer = "gradients.dw"} : memref<1024xi8>
// CHECK: %[[DW:.*]] = memref.view %[[BYTES]][%{{.*}}][] : memref<1024xi8> to memref<256xf32>
// CHECK: %[[EARLY:.*]] = memref.alloc() {moe.buffer = "result.early"} : memref<64xf32>
// CHECK: memref.view %[[BYTES]][%{{.*}}][] : memref<1024xi8> to memref<64xf32>
// CHECK: memref.view %[[BYTES]][%{{.*}}][] : memref<1024xi8> to memref<64xf32>
// CHECK: memref.view %[[ARENA]][%{{.*}}][] : memref<256xi8> to memref<64xf32>
// CHECK: return %[[DW]], %[[EARLY]]
func.func @train(%in: memref<64xf32>, %grad: memref<256xf32>) -> (memref<256xf32>, memref<64xf32>) attributes {moe.training_step} {
  %early = memref.alloc() {moe.buffer = "result.early"} : memref<64xf32>
  memref.copy %in, %early : memref<64xf32> to memref<64xf32>
  %a = memref.alloc() {moe.buffer = "activations.a"} : memref<64xf32>
  memref.copy %in, %a : memref<64xf32> to memref<64xf32>
  %b = memref.alloc() {moe.buffer = "activations.b"} : memref<64xf32>
  memref.copy %a, %b : memref<64xf32> to memref<64xf32>
  memref.copy %b, %early : memref<64xf32> to memref<64xf32>
  %c = memref.alloc() {moe.buffer = "activations.c"} : memref<64xf32>
  memref.copy %in, %c : memref<64xf32> to memref<64xf32>
  %dw = memref.alloc() {moe.buffer = "gradients.dw"} : memref<256xf32>
  memref.copy %grad, %dw : memref<256xf32> to memref<256xf32>
  memref.copy %c, %early : memref<64xf32> to memref<64xf32>
  return %dw, %early : memref<256xf32>, memref<64xf32>
}

// -----

// Outside a training step results hold no intermediates.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: moe.memory_plan = {buffers = [{bytes = 256 : i64, category = "activations", live = array<i64: 0, 3>, name = "activations.a", offset = 0 : i64}], peak_intermediate_bytes = 256 : i64, unplanned_dynamic = []}
func.func @forward(%in: memref<64xf32>) -> memref<64xf32> {
  %a = memref.alloc() {moe.buffer = "activations.a"} : memref<64xf32>
  memref.copy %in, %a : memref<64xf32> to memref<64xf32>
  %y = memref.alloc() {moe.buffer = "result.y"} : memref<64xf32>
  memref.copy %a, %y : memref<64xf32> to memref<64xf32>
  return %y : memref<64xf32>
}

// -----

// A buffer of 64 KiB or more starts at a multiple of 256 bytes (a cache
// line's multiple, and cudaMalloc's alignment of the arena's base), small
// ones at a multiple of 64: after 65600 bytes of a, b starts at 65792, not
// 65600.
// CHECK-LABEL: func.func @large_aligned
// CHECK-SAME: moe.memory_plan = {buffers = [{bytes = 65600 : i64, category = "activations", live = array<i64: 0, 4>, name = "activations.a", offset = 0 : i64}, {bytes = 65536 : i64, category = "activations", live = array<i64: 2, 6>, name = "activations.b", offset = 65792 : i64}], peak_intermediate_bytes = 131328 : i64
func.func @large_aligned(%a_in: memref<16400xf32>, %b_in: memref<16384xf32>, %out: memref<16384xf32>) {
  %a = memref.alloc() {moe.buffer = "activations.a"} : memref<16400xf32>
  memref.copy %a_in, %a : memref<16400xf32> to memref<16400xf32>
  %b = memref.alloc() {moe.buffer = "activations.b"} : memref<16384xf32>
  memref.copy %b_in, %b : memref<16384xf32> to memref<16384xf32>
  memref.copy %a, %a_in : memref<16400xf32> to memref<16400xf32>
  memref.dealloc %a : memref<16400xf32>
  memref.copy %b, %out : memref<16384xf32> to memref<16384xf32>
  memref.dealloc %b : memref<16384xf32>
  return
}
