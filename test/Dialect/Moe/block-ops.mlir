// The block's ops round-trip in their custom and generic forms; a block is RMSNorm, attention,
// a residual add (arith.addf on tensors), RMSNorm, the MoE layer and another residual add.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @block
// CHECK: %[[N1:.*]] = moe.rms_norm %{{.*}}, %{{.*}} : (tensor<2x8x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
// CHECK: %[[A:.*]] = moe.attention heads = 4 kv_heads = 2 %[[N1]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x32xf32>) -> tensor<2x8x32xf32>
// CHECK: %[[H:.*]] = arith.addf
// CHECK: moe.rms_norm %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f64} : (tensor<16x32xf32>, tensor<32xf32>) -> tensor<16x32xf32>
// CHECK: moe.gate
// CHECK: moe.combine
!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @block(%x: tensor<2x8x32xf32>, %g1: tensor<32xf32>, %wq: tensor<32x32xf32>,
                 %wk: tensor<32x16xf32>, %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>,
                 %g2: tensor<32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x32xf32>,
                 %w2: tensor<4x16x32xf32>) -> tensor<16x32xf32> {
  %n1 = moe.rms_norm %x, %g1 : (tensor<2x8x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  %a = moe.attention heads = 4 kv_heads = 2 %n1, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>,
         tensor<32x32xf32>) -> tensor<2x8x32xf32>
  %h3 = arith.addf %x, %a : tensor<2x8x32xf32>
  %h = tensor.collapse_shape %h3 [[0, 1], [2]] : tensor<2x8x32xf32> into tensor<16x32xf32>
  %n2 = moe.rms_norm %h, %g2 {epsilon = 1.0e-5 : f64} : (tensor<16x32xf32>, tensor<32xf32>) -> tensor<16x32xf32>
  %w, %i, %r = moe.gate softmax top_k = 2 %n2, %wg
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %n2, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x32xf32>, tensor<4x16x32xf32>) -> tensor<32x32xf32>
  %m = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  %y = arith.addf %h, %m : tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}
