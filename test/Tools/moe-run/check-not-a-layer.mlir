// --check on a function that is not one MoE layer (here: a router only) is an error, exit 2; without --check it runs.
// RUN: (moe-run %s --check; echo "exit=$?") 2>&1 | FileCheck %s
// RUN: moe-run %s | FileCheck %s --check-prefix=PLAIN

// CHECK: moe-run: error: --check needs a function that is one MoE layer (moe.gate, dispatch, experts and combine on its arguments, y returned); 'router' is not
// CHECK-NOT: CHECK PASSED
// CHECK: exit=2

// No layer, so no routing statistics either.
// PLAIN: function router(f32[16, 32], f32[32, 4]) -> (f32[16, 2], i32[16, 2])
// PLAIN: inputs: random normal, seed 1
// PLAIN: time:

func.func @router(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>)
    -> (tensor<16x2xf32>, tensor<16x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x32xf32>, tensor<32x4xf32>)
      -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return %weights, %indices : tensor<16x2xf32>, tensor<16x2xi32>
}
