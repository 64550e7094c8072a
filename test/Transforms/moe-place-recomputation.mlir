// moe-place-recomputation decides, per layer, whether the forward saves the experts'
// pre-activation h or the backward recomputes it: the fastest placement whose planned peak is
// within the budget. Saving h is IR the kernels read: moe.expert_gate_up after the chain,
// through moe.save_for_backward, into moe.experts_backward's gate_up operand.
// At the save-everything peak (100%) h is saved; at the least peak it is recomputed; with no
// budget the pass leaves moe-generate-backward's placement alone.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100%" 2>&1 | FileCheck %s --check-prefix=SAVE
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=7104" 2>&1 | FileCheck %s --check-prefix=RECOMPUTE
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation 2>&1 | FileCheck %s --check-prefix=DEFAULT
// The lowered training step reads the saved h: no recompute GEMM (store epilogue) in the
// backward, and the forward's GEMM stores h for a separate GLU.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100%" --moe-zero-buffer-fusion --moe-lower-to-kernels 2>/dev/null | FileCheck %s --check-prefix=KERNELS
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=7104" --moe-zero-buffer-fusion --moe-lower-to-kernels 2>/dev/null | FileCheck %s --check-prefix=KERNELS-RECOMPUTE
// The CUDA plan (all experts per launch) and another cost device.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100% target=cuda:sm_90a" 2>&1 | FileCheck %s --check-prefix=CUDA

// SAVE: remark: saves gate_up (6.00 KiB): recomputing it would cost {{[0-9.]+}} ms
// SAVE: remark: recomputation placement: planned peak {{.*}} of a budget of {{.*}} (save everything: {{.*}}, least: {{.*}}), predicted {{[0-9.]+}} ms on cpu; always saved: router weights, routing metadata; never formed: dispatched tokens, expert outputs; recomputed in the backward's kernels: activations, router probabilities
// SAVE-LABEL: func.func @moe_layer_train
// SAVE-SAME: moe.recomputation = {budget_bytes = [[BUDGET:[0-9]+]] : i64, device = "cpu", least_peak_bytes = {{[0-9]+}} : i64, planned_peak_bytes = [[BUDGET]] : i64, predicted_ms = {{.*}}, recomputed = [], save_all_peak_bytes = [[BUDGET]] : i64, saved = [{bytes = 6144 : i64, name = "gate_up", peak_delta_bytes = {{[0-9]+}} : i64, recompute_ms = {{.*}}}]}
// SAVE: %[[Y:.*]] = moe.combine
// SAVE: %[[H:.*]] = moe.expert_gate_up %arg0, %{{.*}}, %arg2 : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x48xf32>) -> tensor<32x48xf32>
// SAVE: %[[SH:.*]] = moe.save_for_backward %[[H]] : tensor<32x48xf32>
// SAVE: moe.save_for_backward %{{.*}}, %{{.*}} {recomputed = ["dispatched_tokens", "activations", "expert_outputs", "router_probabilities"]}
// SAVE: moe.experts_backward silu_glu {{.*}} gate_up(%[[SH]])

// RECOMPUTE: remark: recomputes gate_up ({{[0-9.]+}} ms): saving it would raise the planned peak to {{.*}}, over the budget
// RECOMPUTE-NOT: moe.expert_gate_up
// RECOMPUTE: recomputed = ["dispatched_tokens", "gate_up", "activations", "expert_outputs", "router_probabilities"]
// RECOMPUTE-NOT: gate_up(

// DEFAULT-NOT: remark
// DEFAULT-NOT: moe.expert_gate_up
// DEFAULT-NOT: moe.recomputation

// KERNELS-LABEL: func.func @moe_layer_train
// KERNELS: %[[H:.*]] = memref.alloc() {moe.buffer = "residuals.gate_up"} : memref<32x48xf32>
// KERNELS: moek.grouped_matmul store %{{.*}}, %{{.*}}, %{{.*}} experts(%{{.*}}, %{{.*}}) owners(%{{.*}} : memref<32xi32>) into %[[H]] {gather, top_k = 2 : i64}
// KERNELS: moek.glu silu_glu %[[H]] into
// KERNELS: moek.grouped_matmul scatter_add
// KERNELS-NOT: moek.grouped_matmul
// KERNELS: moek.grouped_glu_backward silu_glu
// KERNELS-RECOMPUTE: moek.grouped_matmul silu_glu
// KERNELS-RECOMPUTE: moek.grouped_matmul scatter_add
// KERNELS-RECOMPUTE: moek.grouped_matmul store
// KERNELS-RECOMPUTE: moek.grouped_glu_backward silu_glu

// CUDA: remark: saves gate_up
// CUDA: predicted {{[0-9.]+}} ms on h200-sm90a

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @moe_layer(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>,
                     %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>) -> (tensor<16x32xf32>, tensor<16x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %out, %weights, %routing : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y, %indices : tensor<16x32xf32>, tensor<16x2xi32>
}
