// moe-run --check finds each operand of an f16 layer by its role, whatever the argument and result order.
// Here the bias comes first, w2 before w1, and the results are (indices, y).
// Each --check run also runs with --no-fusion: the fused and the materializing pipelines must agree.
// RUN: moe-run %s --check | FileCheck %s
// RUN: moe-run --no-fusion %s --check | FileCheck %s

// CHECK: function shuffled(f32[6], f16[6, 12, 10], f16[10, 6], f16[6, 10, 24], f16[11, 10]) -> (i32[11, 3], f16[11, 10])
// CHECK: routing: 33 assignments over 6 experts;
// CHECK: result 1 (y): relative error {{.*}} (tolerance 0.01) OK
// CHECK-NEXT: result 0 (indices): 0 of 33 differ from the reference OK
// CHECK-NEXT: CHECK PASSED

func.func @shuffled(%bias: tensor<6xf32>, %w2: tensor<6x12x10xf16>, %w_gate: tensor<10x6xf16>,
                    %w1: tensor<6x10x24xf16>, %x: tensor<11x10xf16>)
    -> (tensor<11x3xi32>, tensor<11x10xf16>) {
  %weights, %indices, %routing = moe.gate sigmoid top_k = 3 %x, %w_gate bias %bias {scaling = 1.5 : f64}
      : (tensor<11x10xf16>, tensor<10x6xf16>, tensor<6xf32>)
      -> (tensor<11x3xf32>, tensor<11x3xi32>, !moe.routing<tokens = 11, experts = 6, top_k = 3>)
  %d = moe.dispatch %x, %routing
      : (tensor<11x10xf16>, !moe.routing<tokens = 11, experts = 6, top_k = 3>) -> tensor<33x10xf16>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<33x10xf16>, !moe.routing<tokens = 11, experts = 6, top_k = 3>,
         tensor<6x10x24xf16>, tensor<6x12x10xf16>) -> tensor<33x10xf16>
  %y = moe.combine %o, %weights, %routing
      : (tensor<33x10xf16>, tensor<11x3xf32>, !moe.routing<tokens = 11, experts = 6, top_k = 3>)
      -> tensor<11x10xf16>
  return %indices, %y : tensor<11x3xi32>, tensor<11x10xf16>
}
