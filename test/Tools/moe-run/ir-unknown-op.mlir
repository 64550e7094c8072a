// An op the moe dialect does not have is one error line naming it, exit 2.
// RUN: (moe-run %s; echo "exit=$?") 2>&1 | FileCheck %s -DFILE=%s

// CHECK: [[FILE]]:[[@LINE+5]]:{{[0-9]+}}: error: custom op 'moe.route' is unknown
// CHECK-NEXT: exit=2

func.func @f(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>)
    -> tensor<16x32xf32> {
  %r = moe.route %x, %w_gate : (tensor<16x32xf32>, tensor<32x4xf32>) -> tensor<16x32xf32>
  return %r : tensor<16x32xf32>
}
