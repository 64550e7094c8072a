// What moe-overlap-communication refuses (an error) or leaves alone (a remark saying why).
// RUN: moe-opt %s --moe-expert-parallel --moe-overlap-communication -split-input-file -verify-diagnostics

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x48xf32>,
             %w2: tensor<4x24x32xf32>) -> tensor<16x32xf32>
    attributes {moe.ep_ranks = 2 : i64, moe.overlap_chunks = 3 : i64} {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  // expected-error @+1 {{'moe.combine' op moe-overlap-communication: 3 chunks do not divide the 16 tokens}}
  %y = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x48xf32>,
             %w2: tensor<4x24x32xf32>) -> tensor<16x32xf32>
    attributes {moe.ep_ranks = 2 : i64, moe.overlap_chunks = 2 : i64} {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {capacity_factor = 1.0 : f64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  // expected-remark @+1 {{moe-overlap-communication: not chunked: a capacity is per group of tokens, so chunks would drop other assignments}}
  %y = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}

// -----

// expected-error @+1 {{'func.func' op moe-overlap-communication: moe.overlap_chunks needs the per-rank program of moe-expert-parallel (ep=R)}}
func.func @f(%x: tensor<16x32xf32>) -> tensor<16x32xf32> attributes {moe.overlap_chunks = 2 : i64} {
  return %x : tensor<16x32xf32>
}
