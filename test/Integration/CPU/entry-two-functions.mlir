// A program with two layer functions: --entry picks one, and without --entry the error lists both (exit 2).
// Each --check run also runs with --no-fusion: the fused and the materializing pipelines must agree.
// RUN: moe-run %s --entry layer_a --check | FileCheck %s --check-prefix=A
// RUN: moe-run --no-fusion %s --entry layer_a --check | FileCheck %s --check-prefix=A
// RUN: moe-run %s --entry layer_b --check | FileCheck %s --check-prefix=B
// RUN: moe-run --no-fusion %s --entry layer_b --check | FileCheck %s --check-prefix=B
// RUN: (moe-run %s --check; echo "exit=$?") 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: (moe-run --no-fusion %s --check; echo "exit=$?") 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: (moe-run %s --entry nope --check; echo "exit=$?") 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: (moe-run --no-fusion %s --entry nope --check; echo "exit=$?") 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// The same through a compiled artifact.
// RUN: rm -rf %t && mkdir -p %t
// RUN: moe-compile %s -o %t/two.so
// RUN: moe-run %t/two.so --entry layer_b --check | FileCheck %s --check-prefix=B
// RUN: moe-run --no-fusion %t/two.so --entry layer_b --check | FileCheck %s --check-prefix=B
// RUN: (moe-run %t/two.so; echo "exit=$?") 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: (moe-run --no-fusion %t/two.so; echo "exit=$?") 2>&1 | FileCheck %s --check-prefix=NONE

// A: function layer_a(f32[8, 16], f32[16, 4], f32[4, 16, 16], f32[4, 8, 16]) -> (f32[8, 16], i32[8, 2])
// A: routing: 16 assignments over 4 experts;
// A: result 0 (y): relative error {{.*}} (tolerance 0.0001) OK
// A-NEXT: result 1 (indices): 0 of 16 differ from the reference OK
// A-NEXT: CHECK PASSED

// layer_b does not return its indices: no routing line and no indices check.
// B: function layer_b(f32[8, 16], f32[16, 8], f32[8, 16, 16], f32[8, 8, 16]) -> (f32[8, 16])
// B-NOT: routing:
// B: result 0 (y): relative error {{.*}} (tolerance 0.0001) OK
// B-NEXT: CHECK PASSED

// NONE: moe-run: error: the artifact has 2 functions; choose one with --entry NAME (layer_a, layer_b)
// NONE-NEXT: exit=2

// UNKNOWN: moe-run: error: {{.*}}no function 'nope' (the functions are: layer_a, layer_b)
// UNKNOWN-NEXT: exit=2

func.func @layer_a(%x: tensor<8x16xf32>, %w_gate: tensor<16x4xf32>, %w1: tensor<4x16x16xf32>,
                   %w2: tensor<4x8x16xf32>) -> (tensor<8x16xf32>, tensor<8x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<8x16xf32>, tensor<16x4xf32>)
      -> (tensor<8x2xf32>, tensor<8x2xi32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>)
  %d = moe.dispatch %x, %routing
      : (tensor<8x16xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>) -> tensor<16x16xf32>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<16x16xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>,
         tensor<4x16x16xf32>, tensor<4x8x16xf32>) -> tensor<16x16xf32>
  %y = moe.combine %o, %weights, %routing
      : (tensor<16x16xf32>, tensor<8x2xf32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>)
      -> tensor<8x16xf32>
  return %y, %indices : tensor<8x16xf32>, tensor<8x2xi32>
}

func.func @layer_b(%x: tensor<8x16xf32>, %w_gate: tensor<16x8xf32>, %w1: tensor<8x16x16xf32>,
                   %w2: tensor<8x8x16xf32>) -> tensor<8x16xf32> {
  %weights, %indices, %routing = moe.gate sigmoid top_k = 1 %x, %w_gate
      : (tensor<8x16xf32>, tensor<16x8xf32>)
      -> (tensor<8x1xf32>, tensor<8x1xi32>, !moe.routing<tokens = 8, experts = 8, top_k = 1>)
  %d = moe.dispatch %x, %routing
      : (tensor<8x16xf32>, !moe.routing<tokens = 8, experts = 8, top_k = 1>) -> tensor<8x16xf32>
  %o = moe.experts gelu_glu %d, %routing, %w1, %w2
      : (tensor<8x16xf32>, !moe.routing<tokens = 8, experts = 8, top_k = 1>,
         tensor<8x16x16xf32>, tensor<8x8x16xf32>) -> tensor<8x16xf32>
  %y = moe.combine %o, %weights, %routing
      : (tensor<8x16xf32>, tensor<8x1xf32>, !moe.routing<tokens = 8, experts = 8, top_k = 1>)
      -> tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}
