// Every op round-trips in its custom form and in the generic form.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// CHECK-LABEL: func.func @dynamic_tokens_f32
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[WG:.*]]: tensor<64x8xf32>, %[[W1:.*]]: tensor<8x64x256xf32>, %[[W2:.*]]: tensor<8x128x64xf32>)
// CHECK: %[[W:.*]], %[[I:.*]], %[[R:.*]] = moe.gate softmax top_k = 2 %[[X]], %[[WG]] : (tensor<?x64xf32>, tensor<64x8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>)
// CHECK: %[[D:.*]] = moe.dispatch %[[X]], %[[R]] : (tensor<?x64xf32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>) -> tensor<?x64xf32>
// CHECK: %[[O:.*]] = moe.experts silu_glu %[[D]], %[[R]], %[[W1]], %[[W2]]
// CHECK: %[[Y:.*]] = moe.combine %[[O]], %[[W]], %[[R]]
// CHECK: return %[[Y]]
// GENERIC-LABEL: "func.func"
// GENERIC: "moe.gate"(%{{.*}}, %{{.*}}) <{aux_loss = 0.000000e+00 : f64, capacity_factor = 0.000000e+00 : f64, normalize = true, scaling = 1.000000e+00 : f64, score_func = 0 : i32, top_k = 2 : i64}>
// GENERIC: "moe.dispatch"
// GENERIC: "moe.experts"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{activation = 0 : i32}>
// GENERIC: "moe.combine"
func.func @dynamic_tokens_f32(%x: tensor<?x64xf32>, %w_gate: tensor<64x8xf32>,
                              %w1: tensor<8x64x256xf32>, %w2: tensor<8x128x64xf32>)
    -> tensor<?x64xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<?x64xf32>, tensor<64x8xf32>)
      -> (tensor<?x2xf32>, tensor<?x2xi32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<?x64xf32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>) -> tensor<?x64xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<?x64xf32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>,
         tensor<8x64x256xf32>, tensor<8x128x64xf32>) -> tensor<?x64xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<?x64xf32>, tensor<?x2xf32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>)
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// Every router attribute, a bias and the gelu activation, in bf16.
// CHECK-LABEL: func.func @sigmoid_bias_groups_bf16
// CHECK: moe.gate sigmoid top_k = 4 %{{.*}}, %{{.*}} bias %{{.*}} {capacity_factor = 1.250000e+00 : f64, n_group = 4 : i64, normalize = false, scaling = 2.500000e+00 : f64, topk_group = 2 : i64}
// CHECK-SAME: (tensor<16x32xbf16>, tensor<32x16xbf16>, tensor<16xf32>) -> (tensor<16x4xf32>, tensor<16x4xi32>, !moe.routing<tokens = 16, experts = 16, top_k = 4>)
// CHECK: moe.dispatch
// CHECK-SAME: -> tensor<64x32xbf16>
// CHECK: moe.experts gelu_glu
// CHECK: moe.combine
// GENERIC-LABEL: "func.func"
// GENERIC: "moe.gate"(%{{.*}}, %{{.*}}, %{{.*}}) <{aux_loss = 0.000000e+00 : f64, capacity_factor = 1.250000e+00 : f64, n_group = 4 : i64, normalize = false, scaling = 2.500000e+00 : f64, score_func = 1 : i32, top_k = 4 : i64, topk_group = 2 : i64}>
// GENERIC: "moe.experts"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{activation = 1 : i32}>
func.func @sigmoid_bias_groups_bf16(%x: tensor<16x32xbf16>, %w_gate: tensor<32x16xbf16>,
                                    %bias: tensor<16xf32>, %w1: tensor<16x32x48xbf16>,
                                    %w2: tensor<16x24x32xbf16>) -> tensor<16x32xbf16> {
  %weights, %indices, %routing = moe.gate sigmoid top_k = 4 %x, %w_gate bias %bias
      {capacity_factor = 1.25 : f64, normalize = false, scaling = 2.5 : f64,
       n_group = 4 : i64, topk_group = 2 : i64}
      : (tensor<16x32xbf16>, tensor<32x16xbf16>, tensor<16xf32>)
      -> (tensor<16x4xf32>, tensor<16x4xi32>, !moe.routing<tokens = 16, experts = 16, top_k = 4>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<16x32xbf16>, !moe.routing<tokens = 16, experts = 16, top_k = 4>) -> tensor<64x32xbf16>
  %out = moe.experts gelu_glu %dispatched, %routing, %w1, %w2
      : (tensor<64x32xbf16>, !moe.routing<tokens = 16, experts = 16, top_k = 4>,
         tensor<16x32x48xbf16>, tensor<16x24x32xbf16>) -> tensor<64x32xbf16>
  %y = moe.combine %out, %weights, %routing
      : (tensor<64x32xbf16>, tensor<16x4xf32>, !moe.routing<tokens = 16, experts = 16, top_k = 4>)
      -> tensor<16x32xbf16>
  return %y : tensor<16x32xbf16>
}

// f16 storage, a single token, k = E; the indices are a result too.
// CHECK-LABEL: func.func @single_token_f16
// CHECK: moe.gate softmax top_k = 4
// CHECK-SAME: !moe.routing<tokens = 1, experts = 4, top_k = 4>
// CHECK: return %{{.*}}, %{{.*}} : tensor<1x8xf16>, tensor<1x4xi32>
func.func @single_token_f16(%x: tensor<1x8xf16>, %w_gate: tensor<8x4xf16>,
                            %w1: tensor<4x8x6xf16>, %w2: tensor<4x3x8xf16>)
    -> (tensor<1x8xf16>, tensor<1x4xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 4 %x, %w_gate
      : (tensor<1x8xf16>, tensor<8x4xf16>)
      -> (tensor<1x4xf32>, tensor<1x4xi32>, !moe.routing<tokens = 1, experts = 4, top_k = 4>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<1x8xf16>, !moe.routing<tokens = 1, experts = 4, top_k = 4>) -> tensor<4x8xf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<4x8xf16>, !moe.routing<tokens = 1, experts = 4, top_k = 4>,
         tensor<4x8x6xf16>, tensor<4x3x8xf16>) -> tensor<4x8xf16>
  %y = moe.combine %out, %weights, %routing
      : (tensor<4x8xf16>, tensor<1x4xf32>, !moe.routing<tokens = 1, experts = 4, top_k = 4>)
      -> tensor<1x8xf16>
  return %y, %indices : tensor<1x8xf16>, tensor<1x4xi32>
}
