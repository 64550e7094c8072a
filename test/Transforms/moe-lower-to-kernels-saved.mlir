// The values moe-place-recomputation saves, lowered without the rest of a training step:
// moe.expert_gate_up alone (no fusion) is its own gathered grouped matmul into an f32 [T*k, 2F]
// buffer; moe.router_probabilities has no kernel of its own, its gate's router writes it, and
// one without such a gate is an error that says so.
// RUN: moe-opt %s -split-input-file --moe-lower-to-kernels -verify-diagnostics | FileCheck %s

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
// CHECK-LABEL: func.func @gate_up_alone
// CHECK: moek.route softmax top_k = 2 %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}} probs(%[[P:.*]] : memref<16x4xf32>)
// CHECK: %[[H:.*]] = memref.alloc() {moe.buffer = "activations.gate_up"} : memref<32x48xf32>
// CHECK: moek.grouped_matmul store %{{.*}}, %{{.*}}, %{{.*}} experts(%{{.*}}, %{{.*}}) owners(%{{.*}} : memref<32xi32>) into %[[H]] {gather, top_k = 2 : i64}
func.func @gate_up_alone(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>, %w1: tensor<4x32x48xf32>)
    -> (tensor<32x48xf32>, tensor<16x4xf32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %p = moe.router_probabilities softmax %x, %w_gate : (tensor<16x32xf32>, tensor<32x4xf32>) -> tensor<16x4xf32>
  %h = moe.expert_gate_up %x, %routing, %w1 : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>) -> tensor<32x48xf32>
  return %h, %p : tensor<32x48xf32>, tensor<16x4xf32>
}

// -----

func.func @probabilities_without_a_gate(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>) -> tensor<16x4xf32> {
  // expected-error @+1 {{'moe.router_probabilities' op has no moe.gate on the same x, w_gate and score function to compute it: router probabilities are written by the gate's router kernel}}
  %p = moe.router_probabilities sigmoid %x, %w_gate : (tensor<16x32xf32>, tensor<32x4xf32>) -> tensor<16x4xf32>
  return %p : tensor<16x4xf32>
}
