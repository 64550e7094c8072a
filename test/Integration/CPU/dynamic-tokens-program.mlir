// A hand-written program with a dynamic token dimension (and a run-time capacity) runs at the --tokens given.
// Each --check run also runs with --no-fusion: the fused and the materializing pipelines must agree.
// RUN: moe-run %s --tokens 13 --check | FileCheck %s --check-prefixes=CHECK,T13
// RUN: moe-run --no-fusion %s --tokens 13 --check | FileCheck %s --check-prefixes=CHECK,T13
// RUN: moe-run %s --tokens 1 --check | FileCheck %s --check-prefixes=CHECK,T1
// RUN: moe-run --no-fusion %s --tokens 1 --check | FileCheck %s --check-prefixes=CHECK,T1
// Without --tokens a dynamic extent is 16.
// RUN: moe-run %s --check | FileCheck %s --check-prefixes=CHECK,T16
// RUN: moe-run --no-fusion %s --check | FileCheck %s --check-prefixes=CHECK,T16

// CHECK: function dyn(f32[?, 24], f32[24, 6], f32[6, 24, 20], f32[6, 10, 24]) -> (f32[?, 24], i32[?, 2])
// T13: routing: 26 assignments over 6 experts;
// T1: routing: 2 assignments over 6 experts; tokens per expert min 0 / mean 0.33 / max 1; 4 experts empty; 0 dropped
// T16: routing: 32 assignments over 6 experts;
// CHECK: result 0 (y): relative error {{.*}} (tolerance 0.0001) OK
// T13-NEXT: result 1 (indices): 0 of 26 differ from the reference OK
// T1-NEXT: result 1 (indices): 0 of 2 differ from the reference OK
// T16-NEXT: result 1 (indices): 0 of 32 differ from the reference OK
// CHECK-NEXT: CHECK PASSED

func.func @dyn(%x: tensor<?x24xf32>, %w_gate: tensor<24x6xf32>, %w1: tensor<6x24x20xf32>,
               %w2: tensor<6x10x24xf32>) -> (tensor<?x24xf32>, tensor<?x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate {capacity_factor = 1.0 : f64}
      : (tensor<?x24xf32>, tensor<24x6xf32>)
      -> (tensor<?x2xf32>, tensor<?x2xi32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>)
  %d = moe.dispatch %x, %routing
      : (tensor<?x24xf32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>) -> tensor<?x24xf32>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<?x24xf32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>,
         tensor<6x24x20xf32>, tensor<6x10x24xf32>) -> tensor<?x24xf32>
  %y = moe.combine %o, %weights, %routing
      : (tensor<?x24xf32>, tensor<?x2xf32>, !moe.routing<tokens = ?, experts = 6, top_k = 2>)
      -> tensor<?x24xf32>
  return %y, %indices : tensor<?x24xf32>, tensor<?x2xi32>
}
