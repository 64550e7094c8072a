// Chains fusion cannot take are left alone with a remark that says why, and
// the materializing lowering still lowers them; a bad option is an error.
// RUN: moe-opt %s -split-input-file -verify-diagnostics -moe-zero-buffer-fusion
// RUN: moe-opt %s -split-input-file -verify-diagnostics -moe-zero-buffer-fusion -moe-lower-to-kernels | FileCheck %s
// RUN: not moe-opt %s -split-input-file -moe-zero-buffer-fusion=experts-per-chunk=0 2>&1 | FileCheck %s --check-prefix=OPTION

!routing = !moe.routing<tokens = 8, experts = 4, top_k = 2>

// The expert outputs are returned too, so they must exist.
// CHECK-LABEL: func.func @outputs_escape
// CHECK: moek.gather_rows
// CHECK: moek.combine_rows
func.func @outputs_escape(%x: tensor<8x16xf32>, %w_gate: tensor<16x4xf32>,
                          %w1: tensor<4x16x8xf32>, %w2: tensor<4x4x16xf32>)
    -> (tensor<8x16xf32>, tensor<16x16xf32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<8x16xf32>, tensor<16x4xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<8x16xf32>, !routing) -> tensor<16x16xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<16x16xf32>, !routing, tensor<4x16x8xf32>, tensor<4x4x16xf32>) -> tensor<16x16xf32>
  // expected-remark @+1 {{not fused: the dispatched tokens or the expert outputs have other uses, so they must exist}}
  %y = moe.combine %out, %weights, %routing
      : (tensor<16x16xf32>, tensor<8x2xf32>, !routing) -> tensor<8x16xf32>
  return %y, %out : tensor<8x16xf32>, tensor<16x16xf32>
}

// -----

!routing = !moe.routing<tokens = 8, experts = 4, top_k = 2>

// Combine of rows that no moe.experts made.
// CHECK-LABEL: func.func @rows_from_elsewhere
// CHECK: moek.combine_rows
func.func @rows_from_elsewhere(%x: tensor<8x16xf32>, %w_gate: tensor<16x4xf32>,
                               %rows: tensor<16x16xf32>) -> tensor<8x16xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<8x16xf32>, tensor<16x4xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>, !routing)
  // expected-remark @+1 {{not fused: expert_out does not come from moe.experts}}
  %y = moe.combine %rows, %weights, %routing
      : (tensor<16x16xf32>, tensor<8x2xf32>, !routing) -> tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}

// OPTION: error: moe-zero-buffer-fusion: experts-per-chunk must be at least 1, got 0
