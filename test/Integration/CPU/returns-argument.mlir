// A layer that also returns one of its arguments (x, as a residual) compiles and runs.
// Each --check run also runs with --no-fusion: the fused and the materializing pipelines must agree.
// RUN: moe-run %s --check | FileCheck %s
// RUN: moe-run --no-fusion %s --check | FileCheck %s

// CHECK: function residual(f32[4, 8], f32[8, 4], f32[4, 8, 8], f32[4, 4, 8]) -> (f32[4, 8], i32[4, 2], f32[4, 8])
// CHECK: result 0 (y): relative error {{.*}} OK
// CHECK-NEXT: result 1 (indices): 0 of 8 differ from the reference OK
// CHECK-NEXT: CHECK PASSED

func.func @residual(%x: tensor<4x8xf32>, %w_gate: tensor<8x4xf32>, %w1: tensor<4x8x8xf32>,
                    %w2: tensor<4x4x8xf32>) -> (tensor<4x8xf32>, tensor<4x2xi32>, tensor<4x8xf32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<4x8xf32>, tensor<8x4xf32>)
      -> (tensor<4x2xf32>, tensor<4x2xi32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>)
  %d = moe.dispatch %x, %routing
      : (tensor<4x8xf32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>) -> tensor<8x8xf32>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<8x8xf32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>,
         tensor<4x8x8xf32>, tensor<4x4x8xf32>) -> tensor<8x8xf32>
  %y = moe.combine %o, %weights, %routing
      : (tensor<8x8xf32>, tensor<4x2xf32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>)
      -> tensor<4x8xf32>
  return %y, %indices, %x : tensor<4x8xf32>, tensor<4x2xi32>, tensor<4x8xf32>
}
