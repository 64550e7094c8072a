// A syntax error in a program is one error line at the exact position, exit 2 (moe-run and moe-compile).
// RUN: (moe-run %s --check; echo "exit=$?") 2>&1 | FileCheck %s -DFILE=%s
// RUN: (moe-compile %s -o %t.so; echo "exit=$?") 2>&1 | FileCheck %s -DFILE=%s

// CHECK: [[FILE]]:[[@LINE+5]]:31: error: expected '>' in tensor type
// CHECK-NEXT: exit=2

func.func @unclosed(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>)
    -> tensor<16x32xf32> {
  return %x : tensor<16x32xf32
}
