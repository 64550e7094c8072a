// Routing values the loop lowering cannot handle are reported as errors on the offending op.
// RUN: moe-opt %s -split-input-file -verify-diagnostics -moe-lower-to-loops

// A routing plan that comes in as an argument has no gate to lower.
func.func @routing_argument(%x: tensor<8x16xf32>, %r: !moe.routing<tokens = 8, experts = 4, top_k = 2>)
    -> tensor<16x16xf32> {
  // expected-error @+1 {{'moe.dispatch' op routing must be produced by a moe.gate in the same function to be lowered to loops}}
  %d = moe.dispatch %x, %r
      : (tensor<8x16xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>) -> tensor<16x16xf32>
  return %d : tensor<16x16xf32>
}

// -----

func.func @routing_argument_experts(%rows: tensor<16x16xf32>, %r: !moe.routing<tokens = 8, experts = 4, top_k = 2>,
                                    %w1: tensor<4x16x16xf32>, %w2: tensor<4x8x16xf32>) -> tensor<16x16xf32> {
  // expected-error @+1 {{'moe.experts' op routing must be produced by a moe.gate in the same function to be lowered to loops}}
  %o = moe.experts silu_glu %rows, %r, %w1, %w2
      : (tensor<16x16xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>,
         tensor<4x16x16xf32>, tensor<4x8x16xf32>) -> tensor<16x16xf32>
  return %o : tensor<16x16xf32>
}

// -----

func.func @routing_argument_combine(%rows: tensor<16x16xf32>, %w: tensor<8x2xf32>,
                                    %r: !moe.routing<tokens = 8, experts = 4, top_k = 2>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'moe.combine' op routing must be produced by a moe.gate in the same function to be lowered to loops}}
  %y = moe.combine %rows, %w, %r
      : (tensor<16x16xf32>, tensor<8x2xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>) -> tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}

// -----

// A routing plan cannot leave the function.
func.func @routing_returned(%x: tensor<8x16xf32>, %w_gate: tensor<16x4xf32>)
    -> (tensor<8x2xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>) {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<8x16xf32>, tensor<16x4xf32>)
      -> (tensor<8x2xf32>, tensor<8x2xi32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>)
  // expected-error @+1 {{'func.return' op uses a !moe.routing value, which only moe.dispatch, moe.experts, moe.combine and the backward ops can consume when lowering to loops}}
  return %w, %r : tensor<8x2xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>
}

// -----

// Nor be passed to a call.
func.func private @consume(!moe.routing<tokens = 8, experts = 4, top_k = 2>)

func.func @routing_passed_to_call(%x: tensor<8x16xf32>, %w_gate: tensor<16x4xf32>) -> tensor<8x2xf32> {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<8x16xf32>, tensor<16x4xf32>)
      -> (tensor<8x2xf32>, tensor<8x2xi32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>)
  // expected-error @+1 {{'func.call' op uses a !moe.routing value}}
  func.call @consume(%r) : (!moe.routing<tokens = 8, experts = 4, top_k = 2>) -> ()
  return %w : tensor<8x2xf32>
}
