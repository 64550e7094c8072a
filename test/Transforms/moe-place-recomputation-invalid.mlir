// What moe-place-recomputation refuses, each with a message that says what to fix.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=lots" -verify-diagnostics -split-input-file
// RUN: not moe-opt %s --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=50%" -split-input-file 2>&1 | FileCheck %s --check-prefix=NO-STEP
// RUN: not moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=50% cost-device=tpu" -split-input-file 2>&1 | FileCheck %s --check-prefix=DEVICE
// RUN: not moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=50% target=gpu" -split-input-file 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100" -split-input-file 2>&1 | FileCheck %s --check-prefix=BELOW

// NO-STEP: error: moe-place-recomputation: the module has no training step (run moe-generate-backward first, or moe-compile --backward)
// DEVICE: error: moe-place-recomputation: no device 'tpu' in the cost model's table (have: h200-sm90a, h200-sm90, cpu)
// TARGET: error: moe-place-recomputation: target 'gpu' is not cpu or cuda[:sm_XY]
// BELOW: error: memory budget 100 bytes (100 B) is below the least planned peak any placement reaches: [[LEAST:[0-9]+]] bytes ({{.*}} KiB, recompute router_probabilities, recompute gate_up); give --memory-budget=[[LEAST]] or more

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
// expected-error @below {{moe-place-recomputation: memory-budget 'lots' is not a number of bytes (e.g. 1073741824), a percentage of the save-everything peak (e.g. 50%) or 'least'}}
module {
func.func @moe_layer(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>,
                     %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>) -> tensor<16x32xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %out, %weights, %routing : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}
}
