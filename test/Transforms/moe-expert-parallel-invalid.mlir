// What moe-expert-parallel refuses, one message each.
// RUN: moe-opt %s --moe-expert-parallel -split-input-file -verify-diagnostics

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x48xf32>,
             %w2: tensor<4x24x32xf32>) -> tensor<16x32xf32> attributes {moe.ep_ranks = 3 : i64} {
  // expected-error @+1 {{'moe.gate' op moe-expert-parallel: the experts (4) must be divisible by the ranks (3): every rank holds E/R consecutive experts}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w2: tensor<4x24x32xf32>)
    -> tensor<16x32xf32> attributes {moe.ep_ranks = 2 : i64} {
  %w1 = arith.constant dense<1.0> : tensor<4x32x48xf32>
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  // expected-error @+1 {{'moe.experts' op moe-expert-parallel: w1 must be an argument of the function: each rank receives only its experts' shard of it}}
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x48xf32>,
             %w2: tensor<4x24x32xf32>) -> (tensor<16x32xf32>, tensor<32x32xf32>) attributes {moe.ep_ranks = 2 : i64} {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  // expected-error @+1 {{'moe.combine' op moe-expert-parallel: the dispatched tokens and the expert outputs of an expert-parallel layer may have no other use (they live on other ranks)}}
  %y = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y, %e : tensor<16x32xf32>, tensor<32x32xf32>
}

// -----

func.func @f(%x: tensor<16x32xf32>) -> tensor<16x32xf32> attributes {moe.ep_ranks = 2 : i64} {
  // expected-error @-1 {{'func.func' op moe-expert-parallel: has no MoE layer (no moe.combine) to make expert-parallel}}
  return %x : tensor<16x32xf32>
}

// -----

func.func @f(%x: tensor<16x32xf32>) -> tensor<16x32xf32> attributes {moe.ep_ranks = -1 : i64} {
  // expected-error @-1 {{'func.func' op moe.ep_ranks must be at least 1, got -1}}
  return %x : tensor<16x32xf32>
}
