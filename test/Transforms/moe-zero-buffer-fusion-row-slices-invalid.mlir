// A function's moe.row_slices below 1 is an error of the fusion, naming the attribute.
// RUN: moe-opt %s -verify-diagnostics -moe-zero-buffer-fusion

!routing = !moe.routing<tokens = 8, experts = 4, top_k = 2>

// expected-error @+1 {{moe.row_slices must be at least 1, got 0}}
func.func @no_slices(%x: tensor<8x16xf32>, %w_gate: tensor<16x4xf32>,
                     %w1: tensor<4x16x8xf32>, %w2: tensor<4x4x16xf32>) -> tensor<8x16xf32>
    attributes {moe.row_slices = 0 : i64} {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<8x16xf32>, tensor<16x4xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<8x16xf32>, !routing) -> tensor<16x16xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<16x16xf32>, !routing, tensor<4x16x8xf32>, tensor<4x4x16xf32>) -> tensor<16x16xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<16x16xf32>, tensor<8x2xf32>, !routing) -> tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}
