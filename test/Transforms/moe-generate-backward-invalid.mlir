// What moe-generate-backward cannot differentiate is an error that says why.
// RUN: moe-opt %s --moe-generate-backward -split-input-file -verify-diagnostics

// expected-error @+1 {{moe-generate-backward: function 'identity' returns no moe.combine result, so it has no backward to generate}}
func.func @identity(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  return %x : tensor<4x8xf32>
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @extra_use(%x: tensor<16x8xf32>, %w_gate: tensor<8x4xf32>,
                     %w1: tensor<4x8x12xf32>, %w2: tensor<4x6x8xf32>) -> (tensor<16x8xf32>, tensor<32x8xf32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x8xf32>, tensor<8x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x8xf32>, !R) -> tensor<32x8xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x8xf32>, !R, tensor<4x8x12xf32>, tensor<4x6x8xf32>) -> tensor<32x8xf32>
  // expected-error @+1 {{'moe.combine' op cannot be differentiated: the dispatched tokens or the expert outputs of its chain have other uses, whose gradients the chain's adjoint would drop}}
  %y = moe.combine %out, %weights, %routing : (tensor<32x8xf32>, tensor<16x2xf32>, !R) -> tensor<16x8xf32>
  return %y, %out : tensor<16x8xf32>, tensor<32x8xf32>
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @scaled(%x: tensor<16x8xf32>, %w_gate: tensor<8x4xf32>,
                  %w1: tensor<4x8x12xf32>, %w2: tensor<4x6x8xf32>) -> tensor<16x8xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x8xf32>, tensor<8x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x8xf32>, !R) -> tensor<32x8xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x8xf32>, !R, tensor<4x8x12xf32>, tensor<4x6x8xf32>) -> tensor<32x8xf32>
  %w2x = arith.addf %weights, %weights : tensor<16x2xf32>
  // expected-error @+1 {{'moe.combine' op cannot be differentiated: dispatch, experts and combine must follow one moe.gate's routing and weights}}
  %y = moe.combine %out, %w2x, %routing : (tensor<32x8xf32>, tensor<16x2xf32>, !R) -> tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @other_op(%x: tensor<16x8xf32>, %w_gate: tensor<8x4xf32>,
                    %w1: tensor<4x8x12xf32>, %w2: tensor<4x6x8xf32>) -> (tensor<16x8xf32>, tensor<16x8xf32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x8xf32>, tensor<8x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x8xf32>, !R) -> tensor<32x8xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x8xf32>, !R, tensor<4x8x12xf32>, tensor<4x6x8xf32>) -> tensor<32x8xf32>
  %y = moe.combine %out, %weights, %routing : (tensor<32x8xf32>, tensor<16x2xf32>, !R) -> tensor<16x8xf32>
  // expected-error @+1 {{'arith.mulf' op has no adjoint rule: moe-generate-backward differentiates moe.gate and moe.dispatch -> moe.experts -> moe.combine chains only}}
  %sq = arith.mulf %x, %x : tensor<16x8xf32>
  return %y, %sq : tensor<16x8xf32>, tensor<16x8xf32>
}
