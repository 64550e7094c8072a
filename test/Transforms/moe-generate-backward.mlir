// moe-generate-backward turns a forward layer into its training step: the
// forward, the residuals (router weights and routing plan, nothing [T*k, H]),
// the adjoint of the chain, the router's adjoint adding its part of dx, the
// aux loss (aux_loss > 0 only) and the loads; the bias gets no gradient.
// RUN: moe-opt %s --moe-generate-backward | FileCheck %s
// RUN: moe-opt %s --moe-generate-backward | moe-opt | FileCheck %s

!R = !moe.routing<tokens = ?, experts = 4, top_k = 2>

// CHECK-LABEL: func.func @moe_layer_train
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[WG:.*]]: tensor<8x4xf32>, %[[W1:.*]]: tensor<4x8x12xf32>, %[[W2:.*]]: tensor<4x6x8xf32>, %[[B:.*]]: tensor<4xf32>, %[[DY:.*]]: tensor<?x8xf32>)
// CHECK-SAME: -> (tensor<?x8xf32>, tensor<?x2xi32>, tensor<?x8xf32>, tensor<8x4xf32>, tensor<4x8x12xf32>, tensor<4x6x8xf32>, tensor<f32>, tensor<4xi32>)
// CHECK: %[[W:.*]], %[[I:.*]], %[[R:.*]] = moe.gate sigmoid top_k = 2 %[[X]], %[[WG]] bias %[[B]]
// CHECK: %[[D:.*]] = moe.dispatch %[[X]], %[[R]]
// CHECK: %[[O:.*]] = moe.experts silu_glu %[[D]]
// CHECK: %[[Y:.*]] = moe.combine %[[O]], %[[W]], %[[R]]
// CHECK: %[[S:.*]]:2 = moe.save_for_backward %[[W]], %[[R]] {recomputed = ["dispatched_tokens", "gate_up", "activations", "expert_outputs", "router_probabilities"]}
// CHECK-NOT: moe.dispatch
// CHECK: %[[DX:.*]], %[[DW1:.*]], %[[DW2:.*]], %[[DWT:.*]] = moe.experts_backward silu_glu %[[X]], %[[S]]#1, %[[W1]], %[[W2]], %[[S]]#0, %[[DY]]
// CHECK: %[[GX:.*]], %[[GWG:.*]], %[[AUX:.*]] = moe.gate_backward sigmoid %[[X]], %[[WG]], %[[S]]#1, %[[DWT]] accumulate %[[DX]] {aux_loss = 5.000000e-02 : f64}
// CHECK: %[[L:.*]] = moe.expert_loads %[[S]]#1
// CHECK: return %[[Y]], %[[I]], %[[GX]], %[[GWG]], %[[DW1]], %[[DW2]], %[[AUX]], %[[L]]
func.func @moe_layer(%x: tensor<?x8xf32>, %w_gate: tensor<8x4xf32>,
                     %w1: tensor<4x8x12xf32>, %w2: tensor<4x6x8xf32>, %bias: tensor<4xf32>)
    -> (tensor<?x8xf32>, tensor<?x2xi32>) {
  %weights, %indices, %routing = moe.gate sigmoid top_k = 2 %x, %w_gate bias %bias {aux_loss = 0.05 : f64}
      : (tensor<?x8xf32>, tensor<8x4xf32>, tensor<4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<?x8xf32>, !R) -> tensor<?x8xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<?x8xf32>, !R, tensor<4x8x12xf32>, tensor<4x6x8xf32>) -> tensor<?x8xf32>
  %y = moe.combine %out, %weights, %routing : (tensor<?x8xf32>, tensor<?x2xf32>, !R) -> tensor<?x8xf32>
  return %y, %indices : tensor<?x8xf32>, tensor<?x2xi32>
}

// Without aux_loss there is no aux result; the loads still come last.
// CHECK-LABEL: func.func @no_aux_train
// CHECK-SAME: -> (tensor<16x8xbf16>, tensor<16x8xbf16>, tensor<8x4xbf16>, tensor<4x8x12xbf16>, tensor<4x6x8xbf16>, tensor<4xi32>)
// CHECK: moe.experts_backward gelu_glu
// CHECK: moe.gate_backward softmax
// CHECK-NOT: aux_loss = 
// CHECK: return
!S = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @no_aux(%x: tensor<16x8xbf16>, %w_gate: tensor<8x4xbf16>,
                  %w1: tensor<4x8x12xbf16>, %w2: tensor<4x6x8xbf16>) -> tensor<16x8xbf16> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x8xbf16>, tensor<8x4xbf16>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !S)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x8xbf16>, !S) -> tensor<32x8xbf16>
  %out = moe.experts gelu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x8xbf16>, !S, tensor<4x8x12xbf16>, tensor<4x6x8xbf16>) -> tensor<32x8xbf16>
  %y = moe.combine %out, %weights, %routing : (tensor<32x8xbf16>, tensor<16x2xf32>, !S) -> tensor<16x8xbf16>
  return %y : tensor<16x8xbf16>
}
