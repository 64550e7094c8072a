// moe-expert-parallel on the training program (moe-generate-backward first): the forward as
// for inference; experts_backward becomes x, dy and the gate weights sent to the experts'
// ranks (dy and the weights with x's counts), the local experts' backward, and the input and
// gate-weight gradients sent back; the aux loss counts the EP group's loads.
// RUN: moe-opt %s --moe-generate-backward --moe-expert-parallel | FileCheck %s
// A training step that saves h (moe-place-recomputation first) is refused with a message:
// RUN: not moe-opt %s --moe-generate-backward --moe-place-recomputation="memory-budget=100%% cost-device=h200-sm90a" --moe-expert-parallel 2>&1 | FileCheck %s --check-prefix=SAVED-H
// SAVED-H: error: 'moe.experts' op moe-expert-parallel: the training step saves the experts' pre-activation (moe-place-recomputation); run moe-expert-parallel before placing recomputation

// The shards: w1, w2 and their gradients dw1, dw2.
// CHECK-LABEL: func.func @moe_layer_train(
// CHECK-SAME: %[[X:[^:]*]]: tensor<16x32xf32>, %{{[^:]*}}: tensor<32x4xf32>, %[[W1:[^:]*]]: tensor<2x32x48xf32>, %[[W2:[^:]*]]: tensor<2x24x32xf32>, %[[DY:[^:]*]]: tensor<16x32xf32>)
// CHECK-SAME: tensor<2x32x48xf32>, tensor<2x24x32xf32>, tensor<f32>, tensor<4xi32>)
// CHECK: %[[SAVED:.*]]:2 = moe.save_for_backward
// CHECK: %[[RX:.*]] = moe.dispatch %[[X]], %[[SAVED]]#1
// CHECK: %[[RDY:.*]] = moe.dispatch %[[DY]], %[[SAVED]]#1
// CHECK: %[[RW:.*]] = moe.slots_to_rows %[[SAVED]]#0, %[[SAVED]]#1 {{.*}} -> tensor<32x1xf32>
// CHECK: %[[L:.*]] = moe.expert_loads %[[SAVED]]#1
// CHECK: %[[INX:.*]], %[[RC:.*]] = moe.all_to_all %[[RX]], %[[L]] {ranks = 2 : i64}
// CHECK: %[[INDY:.*]], %{{.*}} = moe.all_to_all %[[RDY]], %[[L]] expecting %[[RC]]
// CHECK: %[[INW:.*]], %{{.*}} = moe.all_to_all %[[RW]], %[[L]] expecting %[[RC]] {{.*}} -> (tensor<?x1xf32>, tensor<4xi32>)
// CHECK: %{{.*}}, %[[LR:.*]] = moe.local_routing %[[RC]]
// CHECK: %[[DXR:.*]], %[[DW1:.*]], %[[DW2:.*]], %[[DWR:.*]] = moe.experts_backward silu_glu %[[INX]], %[[LR]], %[[W1]], %[[W2]], %[[INW]], %[[INDY]]
// CHECK: %[[BDX:.*]], %{{.*}} = moe.all_to_all %[[DXR]], %[[RC]] expecting %[[L]]
// CHECK: %[[BDW:.*]], %{{.*}} = moe.all_to_all %[[DWR]], %[[RC]] expecting %[[L]]
// CHECK: %[[ONES:.*]] = arith.constant dense<1.000000e+00> : tensor<16x2xf32>
// CHECK: %[[DXE:.*]] = moe.combine %[[BDX]], %[[ONES]], %[[SAVED]]#1
// CHECK: %[[DWS:.*]] = moe.rows_to_slots %[[BDW]], %[[SAVED]]#1
// CHECK: %[[LOADS:.*]] = moe.expert_loads %[[SAVED]]#1
// CHECK: %[[GROUP:.*]] = moe.all_reduce %[[LOADS]] {ranks = 2 : i64}
// CHECK: moe.gate_backward softmax %[[X]], %{{.*}}, %[[SAVED]]#1, %[[DWS]] accumulate %[[DXE]] group_loads %[[GROUP]] {aux_loss = 1.000000e-02 : f64, group_ranks = 2 : i64}
// CHECK: return {{.*}}, %[[DW1]], %[[DW2]],
// CHECK-NOT: moe.experts_backward
func.func @moe_layer(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>,
    %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>)
    -> (tensor<16x32xf32>, tensor<16x2xi32>)
    attributes {moe.ep_ranks = 2 : i64} {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate {aux_loss = 0.01 : f64}
      : (tensor<16x32xf32>, tensor<32x4xf32>)
      -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<32x32xf32>
  %expert_out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>,
         tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %expert_out, %weights, %routing
      : (tensor<32x32xf32>, tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<16x32xf32>
  return %y, %indices : tensor<16x32xf32>, tensor<16x2xi32>
}
