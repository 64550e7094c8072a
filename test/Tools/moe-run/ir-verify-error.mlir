// A program that fails to verify is one error line at the op's location naming the rule, exit 2 (moe-run and moe-compile).
// RUN: (moe-run %s --check; echo "exit=$?") 2>&1 | FileCheck %s -DFILE=%s
// RUN: (moe-compile %s -o %t.so; echo "exit=$?") 2>&1 | FileCheck %s -DFILE=%s
// RUN: (moe-compile %s --emit=mlir; echo "exit=$?") 2>&1 | FileCheck %s -DFILE=%s
// RUN: test ! -e %t.so

// CHECK: [[FILE]]:[[@LINE+6]]:34: error: 'moe.gate' op top_k (8) exceeds the number of experts (4)
// CHECK-NEXT: exit=2

func.func @too_many_experts(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>,
                            %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>)
    -> tensor<16x32xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 8 %x, %w_gate
      : (tensor<16x32xf32>, tensor<32x4xf32>)
      -> (tensor<16x8xf32>, tensor<16x8xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 4>)
  %d = moe.dispatch %x, %routing
      : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 4>) -> tensor<64x32xf32>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<64x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 4>,
         tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<64x32xf32>
  %y = moe.combine %o, %weights, %routing
      : (tensor<64x32xf32>, tensor<16x8xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 4>)
      -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}
