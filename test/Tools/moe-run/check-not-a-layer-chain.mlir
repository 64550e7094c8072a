// A function with every op of a layer but not chained as one layer (here the
// combine takes its weights from an argument, not from the gate) is not one
// MoE layer: --check says so, exit 2, instead of reporting the difference
// from the reference layer as a numeric failure.
// RUN: (moe-run %s --check; echo "exit=$?") 2>&1 | FileCheck %s

// CHECK: moe-run: error: --check needs a function that is one MoE layer (moe.gate, dispatch, experts and combine on its arguments, y returned); 'moe_layer' is not
// CHECK-NOT: CHECK
// CHECK: exit=2

func.func @moe_layer(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>,
    %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xf32>)
    -> tensor<16x32xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x32xf32>, tensor<32x4xf32>)
      -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  %d = moe.dispatch %x, %routing
      : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<32x32xf32>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>,
         tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %o, %w, %routing
      : (tensor<32x32xf32>, tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
      -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}
