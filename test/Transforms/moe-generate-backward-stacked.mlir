// Two stacked layers: the cotangent of the first layer's output is the second layer's dx, and
// that output, which the second layer's adjoints read, is a residual of its own. The training
// step compiles and runs (there is no single-layer reference to --check it against).
// RUN: moe-opt %s --moe-generate-backward | FileCheck %s
// RUN: moe-run %s --backward | FileCheck %s --check-prefix=RUN1

// CHECK-LABEL: func.func @stacked_train
// CHECK-SAME: attributes {moe.training_step}
// CHECK: %[[Y1:.*]] = moe.combine
// CHECK: %[[Y2:.*]] = moe.combine
// CHECK: %[[S1:.*]]:2 = moe.save_for_backward %weights, %routing
// CHECK: %[[S2:.*]]:2 = moe.save_for_backward %weights_0, %routing_2
// CHECK: %[[SY:.*]] = moe.save_for_backward %[[Y1]] : tensor<8x16xf32>
// CHECK: %[[DX2:.*]], %{{.*}}, %{{.*}}, %[[DW2:.*]] = moe.experts_backward gelu_glu %[[SY]], %[[S2]]#1
// CHECK: %[[GX2:.*]], %{{.*}}, %[[AUX:.*]] = moe.gate_backward sigmoid %[[SY]], %{{.*}}, %[[S2]]#1, %[[DW2]] accumulate %[[DX2]]
// CHECK: moe.experts_backward silu_glu %arg0, %[[S1]]#1, %arg2, %arg3, %[[S1]]#0, %[[GX2]]
// RUN1: function stacked_train(f32[8, 16], f32[16, 4], f32[4, 16, 16], f32[4, 8, 16], f32[16, 4], f32[4, 16, 16], f32[4, 8, 16], f32[8, 16]) -> (f32[8, 16], f32[8, 16], f32[16, 4], f32[4, 16, 16], f32[4, 8, 16], f32[16, 4], f32[4, 16, 16], f32[4, 8, 16], f32[], i32[4], i32[4])
// RUN1: memory: {{.*}}residuals
// RUN1: time:

!R = !moe.routing<tokens = 8, experts = 4, top_k = 2>
func.func @stacked(%x: tensor<8x16xf32>, %g1: tensor<16x4xf32>, %a1: tensor<4x16x16xf32>, %b1: tensor<4x8x16xf32>,
                   %g2: tensor<16x4xf32>, %a2: tensor<4x16x16xf32>, %b2: tensor<4x8x16xf32>) -> tensor<8x16xf32> {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %g1 : (tensor<8x16xf32>, tensor<16x4xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<8x16xf32>, !R) -> tensor<16x16xf32>
  %o = moe.experts silu_glu %d, %r, %a1, %b1 : (tensor<16x16xf32>, !R, tensor<4x16x16xf32>, tensor<4x8x16xf32>) -> tensor<16x16xf32>
  %y = moe.combine %o, %w, %r : (tensor<16x16xf32>, tensor<8x2xf32>, !R) -> tensor<8x16xf32>
  %w2, %i2, %r2 = moe.gate sigmoid top_k = 2 %y, %g2 {aux_loss = 0.1 : f64} : (tensor<8x16xf32>, tensor<16x4xf32>) -> (tensor<8x2xf32>, tensor<8x2xi32>, !R)
  %d2 = moe.dispatch %y, %r2 : (tensor<8x16xf32>, !R) -> tensor<16x16xf32>
  %o2 = moe.experts gelu_glu %d2, %r2, %a2, %b2 : (tensor<16x16xf32>, !R, tensor<4x16x16xf32>, tensor<4x8x16xf32>) -> tensor<16x16xf32>
  %y2 = moe.combine %o2, %w2, %r2 : (tensor<16x16xf32>, tensor<8x2xf32>, !R) -> tensor<8x16xf32>
  return %y2 : tensor<8x16xf32>
}
