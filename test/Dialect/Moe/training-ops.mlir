// The training ops moe-generate-backward makes round-trip in custom and generic form.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

!R = !moe.routing<tokens = ?, experts = 4, top_k = 2>

// CHECK-LABEL: func.func @training
// CHECK: %[[W:.*]], %[[I:.*]], %[[R:.*]] = moe.gate sigmoid top_k = 2 %{{.*}}, %{{.*}} {aux_loss = 1.000000e-02 : f64}
// CHECK: %[[SW:.*]]:2 = moe.save_for_backward %[[W]], %[[R]] {recomputed = ["dispatched_tokens", "expert_outputs"]} : tensor<?x2xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 2>
// CHECK: %[[DX:.*]], %[[DW1:.*]], %[[DW2:.*]], %[[DWT:.*]] = moe.experts_backward gelu_glu %{{.*}}, %[[SW]]#1, %{{.*}}, %{{.*}}, %[[SW]]#0, %{{.*}} :
// CHECK: moe.gate_backward sigmoid %{{.*}}, %{{.*}}, %[[SW]]#1, %[[DWT]] accumulate %[[DX]] {aux_loss = 1.000000e-02 : f64, normalize = false, scaling = 2.500000e+00 : f64}
// CHECK-SAME: -> (tensor<?x8xbf16>, tensor<8x4xbf16>, tensor<f32>)
// CHECK: moe.gate_backward softmax %{{.*}}, %{{.*}}, %[[SW]]#1, %[[DWT]] : (
// CHECK: moe.expert_loads %[[SW]]#1 : (!moe.routing<tokens = ?, experts = 4, top_k = 2>) -> tensor<4xi32>
func.func @training(%x: tensor<?x8xbf16>, %wg: tensor<8x4xbf16>,
                    %w1: tensor<4x8x12xbf16>, %w2: tensor<4x6x8xbf16>,
                    %dy: tensor<?x8xbf16>) {
  %w, %i, %r = moe.gate sigmoid top_k = 2 %x, %wg {aux_loss = 0.01 : f64}
      : (tensor<?x8xbf16>, tensor<8x4xbf16>) -> (tensor<?x2xf32>, tensor<?x2xi32>, !R)
  %sw, %sr = moe.save_for_backward %w, %r {recomputed = ["dispatched_tokens", "expert_outputs"]}
      : tensor<?x2xf32>, !R
  %dx, %dw1, %dw2, %dwt = moe.experts_backward gelu_glu %x, %sr, %w1, %w2, %sw, %dy
      : (tensor<?x8xbf16>, !R, tensor<4x8x12xbf16>, tensor<4x6x8xbf16>, tensor<?x2xf32>, tensor<?x8xbf16>)
      -> (tensor<?x8xbf16>, tensor<4x8x12xbf16>, tensor<4x6x8xbf16>, tensor<?x2xf32>)
  %gx, %gwg, %aux = moe.gate_backward sigmoid %x, %wg, %sr, %dwt accumulate %dx
      {normalize = false, scaling = 2.5 : f64, aux_loss = 0.01 : f64}
      : (tensor<?x8xbf16>, tensor<8x4xbf16>, !R, tensor<?x2xf32>, tensor<?x8xbf16>)
      -> (tensor<?x8xbf16>, tensor<8x4xbf16>, tensor<f32>)
  %hx, %hwg, %haux = moe.gate_backward softmax %x, %wg, %sr, %dwt
      : (tensor<?x8xbf16>, tensor<8x4xbf16>, !R, tensor<?x2xf32>)
      -> (tensor<?x8xbf16>, tensor<8x4xbf16>, tensor<f32>)
  %loads = moe.expert_loads %sr : (!R) -> tensor<4xi32>
  return
}

// The saved pre-activation (moe-place-recomputation): moe.expert_gate_up
// makes it, moe.experts_backward reads it through its gate_up operand.
// CHECK-LABEL: func.func @saved_gate_up
// CHECK: %[[H:.*]] = moe.expert_gate_up %{{.*}}, %{{.*}}, %{{.*}} : (tensor<16x8xbf16>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x8x12xbf16>) -> tensor<32x12xf32>
// CHECK: %[[SH:.*]] = moe.save_for_backward %[[H]] : tensor<32x12xf32>
// CHECK: moe.experts_backward silu_glu %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} gate_up(%[[SH]]) :
!S = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @saved_gate_up(%x: tensor<16x8xbf16>, %r: !S, %w1: tensor<4x8x12xbf16>,
                         %w2: tensor<4x6x8xbf16>, %w: tensor<16x2xf32>, %dy: tensor<16x8xbf16>) {
  %h = moe.expert_gate_up %x, %r, %w1
      : (tensor<16x8xbf16>, !S, tensor<4x8x12xbf16>) -> tensor<32x12xf32>
  %sh = moe.save_for_backward %h : tensor<32x12xf32>
  %dx, %dw1, %dw2, %dwt = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy gate_up(%sh)
      : (tensor<16x8xbf16>, !S, tensor<4x8x12xbf16>, tensor<4x6x8xbf16>, tensor<16x2xf32>, tensor<16x8xbf16>, tensor<32x12xf32>)
      -> (tensor<16x8xbf16>, tensor<4x8x12xbf16>, tensor<4x6x8xbf16>, tensor<16x2xf32>)
  return
}

// The saved router probabilities: moe.router_probabilities makes them,
// moe.gate_backward reads them through its probs operand.
// CHECK-LABEL: func.func @saved_probabilities
// CHECK: %[[P:.*]] = moe.router_probabilities sigmoid %{{.*}}, %{{.*}} : (tensor<16x8xbf16>, tensor<8x4xbf16>) -> tensor<16x4xf32>
// CHECK: moe.gate_backward sigmoid %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} accumulate %{{.*}} probs(%[[P]]) :
func.func @saved_probabilities(%x: tensor<16x8xbf16>, %wg: tensor<8x4xbf16>, %r: !S,
                               %dw: tensor<16x2xf32>, %dxin: tensor<16x8xbf16>) {
  %p = moe.router_probabilities sigmoid %x, %wg : (tensor<16x8xbf16>, tensor<8x4xbf16>) -> tensor<16x4xf32>
  %dx, %dwg, %aux = moe.gate_backward sigmoid %x, %wg, %r, %dw accumulate %dxin probs(%p)
      : (tensor<16x8xbf16>, tensor<8x4xbf16>, !S, tensor<16x2xf32>, tensor<16x8xbf16>, tensor<16x4xf32>)
      -> (tensor<16x8xbf16>, tensor<8x4xbf16>, tensor<f32>)
  return
}
