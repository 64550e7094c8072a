// With top_k = 1 a token has one row, so GEMM 2 stores it straight into y in
// y's type (scatter_store): no f32 accumulator, no atomics, no narrowing map,
// and no fill when no row can be dropped (a dropless gate); a capacity may
// drop a token's only row, so there y is zeroed first, in its own type.
// RUN: moe-opt %s -moe-zero-buffer-fusion -split-input-file | FileCheck %s

!routing = !moe.routing<tokens = 16, experts = 4, top_k = 1>

// CHECK-LABEL: func.func @dropless
// CHECK: %[[Y:.*]] = memref.alloc() {moe.buffer = "result.y"} : memref<16x40xbf16>
// CHECK-NOT: accumulators.y
// CHECK-NOT: linalg.fill {{.*}} outs(%[[Y]]
// CHECK: moek.grouped_matmul silu_glu
// CHECK: moek.grouped_matmul scatter_store %{{.*}} weights(%{{.*}} : memref<16x1xf32>) into %[[Y]] :
// CHECK-NOT: linalg.map
// CHECK: return
func.func @dropless(%x: tensor<16x40xbf16>, %w_gate: tensor<40x4xbf16>,
                    %w1: tensor<4x40x48xbf16>, %w2: tensor<4x24x40xbf16>) -> tensor<16x40xbf16> {
  %weights, %indices, %routing = moe.gate softmax top_k = 1 %x, %w_gate
      : (tensor<16x40xbf16>, tensor<40x4xbf16>) -> (tensor<16x1xf32>, tensor<16x1xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xbf16>, !routing) -> tensor<16x40xbf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<16x40xbf16>, !routing, tensor<4x40x48xbf16>, tensor<4x24x40xbf16>) -> tensor<16x40xbf16>
  %y = moe.combine %out, %weights, %routing
      : (tensor<16x40xbf16>, tensor<16x1xf32>, !routing) -> tensor<16x40xbf16>
  return %y : tensor<16x40xbf16>
}

// -----

!routing = !moe.routing<tokens = 16, experts = 4, top_k = 1>

// CHECK-LABEL: func.func @capacity
// CHECK: %[[Y:.*]] = memref.alloc() {moe.buffer = "result.y"} : memref<16x40xbf16>
// CHECK-NOT: accumulators.y
// CHECK: linalg.fill ins(%{{.*}} : bf16) outs(%[[Y]] : memref<16x40xbf16>)
// CHECK: moek.grouped_matmul scatter_store %{{.*}} into %[[Y]] :
// CHECK-NOT: linalg.map
func.func @capacity(%x: tensor<16x40xbf16>, %w_gate: tensor<40x4xbf16>,
                    %w1: tensor<4x40x48xbf16>, %w2: tensor<4x24x40xbf16>) -> tensor<16x40xbf16> {
  %weights, %indices, %routing = moe.gate softmax top_k = 1 %x, %w_gate {capacity_factor = 0.5 : f64}
      : (tensor<16x40xbf16>, tensor<40x4xbf16>) -> (tensor<16x1xf32>, tensor<16x1xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xbf16>, !routing) -> tensor<16x40xbf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<16x40xbf16>, !routing, tensor<4x40x48xbf16>, tensor<4x24x40xbf16>) -> tensor<16x40xbf16>
  %y = moe.combine %out, %weights, %routing
      : (tensor<16x40xbf16>, tensor<16x1xf32>, !routing) -> tensor<16x40xbf16>
  return %y : tensor<16x40xbf16>
}
