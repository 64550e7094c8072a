// The MoE's grouped rows in slices (moe.row_slices, moe-zero-buffer-fusion's row slices): a
// dynamic token count, a capacity that drops rows, 3 slices of ceil(T*2/3) rows, each through
// the routing's offsets clipped to it (a slice past the rows the capacity kept has none); the
// answer is the reference's at every --tokens, down to one token (two slices of one row).
// RUN: moe-run %s --tokens 13 --check --seed 7 | FileCheck %s
// RUN: moe-run %s --tokens 1 --check --seed 8 | FileCheck %s
// RUN: moe-run %s --check --seed 9 | FileCheck %s
// RUN: moe-opt %s -moe-zero-buffer-fusion | FileCheck %s --check-prefix=SLICES

// CHECK: function dyn(f32[?, 24], f32[24, 6], f32[6, 24, 20], f32[6, 10, 24]) -> (f32[?, 24], i32[?, 2])
// CHECK: result 0 (y): relative error {{.*}} (tolerance 0.0001) OK
// CHECK-NEXT: result 1 (indices): 0 of {{[0-9]+}} differ from the reference OK
// CHECK-NEXT: CHECK PASSED
// The activation buffer holds ceil(2T/3) rows; a loop over the slices clips the offsets.
// SLICES: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c3
// SLICES: %[[ACT:.*]] = memref.alloc(%[[ROWS]]) {moe.buffer = "activations.glu"} : memref<?x10xf32>
// SLICES: %[[CLIPPED:.*]] = memref.alloc() {moe.buffer = "routing.slice_offsets"} : memref<7xi32>
// SLICES: scf.for %[[BEGIN:.*]] = %{{.*}} to %[[TOTAL:.*]] step %{{.*}} {
// SLICES: %[[END:.*]] = arith.minui %{{.*}}, %[[TOTAL]] : index
// SLICES: linalg.map ins(%{{.*}} : memref<7xi32>) outs(%[[CLIPPED]] : memref<7xi32>)
// SLICES: arith.maxsi
// SLICES: arith.minsi
// SLICES: moek.grouped_matmul silu_glu %{{.*}}, %{{.*}}, %[[CLIPPED]] owners(%{{.*}}) into %[[ACT]]
// SLICES: moek.grouped_matmul scatter_add %[[ACT]], %{{.*}}, %[[CLIPPED]] owners(%{{.*}}) weights(%{{.*}})
// SLICES: }

func.func @dyn(%x: tensor<?x24xf32>, %w_gate: tensor<24x6xf32>, %w1: tensor<6x24x20xf32>,
               %w2: tensor<6x10x24xf32>) -> (tensor<?x24xf32>, tensor<?x2xi32>)
    attributes {moe.row_slices = 3 : i64} {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate {capacity_factor = 1.0 : f64}
      : (tensor<?x24xf32>, tensor<24x6xf32>)
      -> (tensor<?x2xf32>, tensor<?x2xi32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>)
  %d = moe.dispatch %x, %routing
      : (tensor<?x24xf32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>) -> tensor<?x24xf32>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<?x24xf32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>,
         tensor<6x24x20xf32>, tensor<6x10x24xf32>) -> tensor<?x24xf32>
  %y = moe.combine %o, %weights, %routing
      : (tensor<?x24xf32>, tensor<?x2xf32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>)
      -> tensor<?x24xf32>
  return %y, %indices : tensor<?x24xf32>, tensor<?x2xi32>
}
