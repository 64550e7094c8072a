// moe-place-recomputation decides, per layer, whether the forward saves the router
// probabilities p and the experts' pre-activation h, or the backward recomputes them: the
// fastest placement whose planned peak is within the budget. Saving is IR the kernels read:
// moe.router_probabilities / moe.expert_gate_up, through moe.save_for_backward, into
// moe.gate_backward's probs / moe.experts_backward's gate_up operand.
// At the save-everything peak (100%) both are saved; at the least peak (CPU plan, one expert per
// chunk) both are recomputed; on CUDA's plan (all experts per launch) h costs no peak, so the
// least budget there saves h and recomputes p. With no budget the pass does nothing.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100% cost-device=h200-sm90a" 2>&1 | FileCheck %s --check-prefix=SAVE
// Unconstrained, a value is still recomputed where the model predicts that is faster: at
// H = 32 the CPU model prices p's scores GEMM below writing and reading p.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100%" 2>&1 | FileCheck %s --check-prefix=CPU-TOP
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=4800" 2>&1 | FileCheck %s --check-prefix=RECOMPUTE
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation 2>&1 | FileCheck %s --check-prefix=DEFAULT
// `least`: the least peak any placement reaches, and the fastest placement there.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=least" 2>&1 | FileCheck %s --check-prefix=LEAST
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100% target=cuda:sm_90a" 2>&1 | FileCheck %s --check-prefix=CUDA
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=6336 target=cuda:sm_90a" 2>&1 | FileCheck %s --check-prefix=CUDA-LEAST
// Without fusion h is no candidate (the materializing forward would compute it twice).
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100% fusion=false cost-device=h200-sm90a" 2>&1 | FileCheck %s --check-prefix=NO-FUSION
// The lowered training step reads what was saved: the router writes p and its backward reads
// it; the forward's GLU GEMM stores h as well and the backward has no recompute GEMM.
// RUN: moe-opt %s --moe-generate-backward --moe-place-recomputation="memory-budget=100% cost-device=h200-sm90a" --moe-zero-buffer-fusion --moe-lower-to-kernels 2>/dev/null | FileCheck %s --check-prefix=KERNELS
// RUN: moe-opt %s --moe-generate-backward --moe-place-recomputation="memory-budget=4800" --moe-zero-buffer-fusion --moe-lower-to-kernels 2>/dev/null | FileCheck %s --check-prefix=KERNELS-RECOMPUTE

// SAVE: remark: saves router_probabilities (256 B): recomputing it would cost {{-?[0-9.]+}} ms
// SAVE: remark: saves gate_up (6.00 KiB): recomputing it would cost {{[0-9.]+}} ms
// SAVE: remark: recomputation placement: planned peak {{.*}} of a budget of {{.*}} (save everything: {{.*}}, least: {{.*}}), predicted {{[0-9.]+}} ms on h200-sm90a; always saved: router weights, routing metadata; never formed: dispatched tokens, expert outputs; recomputed in the backward's kernels: activations
// SAVE-LABEL: func.func @moe_layer_train
// SAVE-SAME: moe.recomputation = {budget_bytes = [[BUDGET:[0-9]+]] : i64, device = "h200-sm90a", least_peak_bytes = {{[0-9]+}} : i64, planned_peak_bytes = [[BUDGET]] : i64, predicted_ms = {{.*}}, recomputed = [], save_all_peak_bytes = [[BUDGET]] : i64, saved = [{bytes = 256 : i64, name = "router_probabilities", {{.*}}}, {bytes = 6144 : i64, name = "gate_up", peak_delta_bytes = {{[0-9]+}} : i64, recompute_ms = {{.*}}}]}
// SAVE: %[[P:.*]] = moe.router_probabilities softmax %arg0, %arg1 : (tensor<16x32xf32>, tensor<32x4xf32>) -> tensor<16x4xf32>
// SAVE: %[[SP:.*]] = moe.save_for_backward %[[P]] : tensor<16x4xf32>
// SAVE: moe.combine
// SAVE: %[[H:.*]] = moe.expert_gate_up %arg0, %{{.*}}, %arg2 : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x48xf32>) -> tensor<32x48xf32>
// SAVE: %[[SH:.*]] = moe.save_for_backward %[[H]] : tensor<32x48xf32>
// SAVE: moe.save_for_backward %{{.*}}, %{{.*}} {recomputed = ["dispatched_tokens", "activations", "expert_outputs"]}
// SAVE: moe.experts_backward silu_glu {{.*}} gate_up(%[[SH]])
// SAVE: moe.gate_backward softmax {{.*}} probs(%[[SP]])

// RECOMPUTE: remark: recomputes router_probabilities ({{-?[0-9.]+}} ms): saving it would raise the planned peak to 4.94 KiB, over the budget
// RECOMPUTE: remark: recomputes gate_up ({{[0-9.]+}} ms): saving it would raise the planned peak to 6.19 KiB, over the budget
// RECOMPUTE-NOT: moe.router_probabilities
// RECOMPUTE-NOT: moe.expert_gate_up
// RECOMPUTE: recomputed = ["dispatched_tokens", "gate_up", "activations", "expert_outputs", "router_probabilities"]
// RECOMPUTE-NOT: gate_up(
// RECOMPUTE-NOT: probs(

// LEAST: planned peak 4.69 KiB of a budget of 4.69 KiB (save everything: 6.44 KiB, least: 4.69 KiB)

// CPU-TOP: remark: recomputes router_probabilities ({{-?[0-9.]+}} ms): saving it would not be faster
// CPU-TOP: remark: saves gate_up (6.00 KiB)
// CPU-TOP: planned peak 6.19 KiB of a budget of 6.44 KiB (save everything: 6.44 KiB, least: 4.69 KiB), predicted {{[0-9.]+}} ms on cpu

// DEFAULT-NOT: remark
// DEFAULT-NOT: moe.expert_gate_up
// DEFAULT-NOT: moe.recomputation

// CUDA: remark: saves router_probabilities
// CUDA: remark: saves gate_up
// CUDA: predicted {{[0-9.]+}} ms on h200-sm90a
// CUDA-LEAST: remark: recomputes router_probabilities ({{-?[0-9.]+}} ms): saving it would raise the planned peak to 6.44 KiB, over the budget
// CUDA-LEAST: remark: saves gate_up (6.00 KiB)
// CUDA-LEAST: planned peak 6.19 KiB of a budget of 6.19 KiB (save everything: 6.44 KiB, least: 6.19 KiB)

// NO-FUSION: remark: recomputation placement: gate_up is no candidate without moe-zero-buffer-fusion
// NO-FUSION: remark: saves router_probabilities
// NO-FUSION-NOT: moe.expert_gate_up

// KERNELS-LABEL: func.func @moe_layer_train
// KERNELS: %[[P:.*]] = memref.alloc() {moe.buffer = "residuals.router_probs"} : memref<16x4xf32>
// KERNELS: moek.route softmax top_k = 2 %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}} probs(%[[P]] : memref<16x4xf32>)
// The forward's GLU GEMM stores h beside the activation: one GEMM, no GLU
// kernel (f32 h on the CPU).
// KERNELS: %[[H:.*]] = memref.alloc() {moe.buffer = "residuals.gate_up"} : memref<32x48xf32>
// KERNELS-NOT: moek.glu
// KERNELS: moek.grouped_matmul silu_glu %{{.*}}, %{{.*}}, %{{.*}} experts(%{{.*}}, %{{.*}}) owners(%{{.*}} : memref<32xi32>) into %{{.*}} pre_activation(%[[H]] : memref<32x48xf32>) {gather, top_k = 2 : i64}
// KERNELS-NOT: moek.glu
// KERNELS: moek.grouped_matmul scatter_add
// The backward reads the saved h: its only GEMM before the GLU backward is
// g = dy w2^T (transpose_b), no gate/up recompute.
// KERNELS-NOT: moek.grouped_matmul store {{.*}} {gather, top_k = 2 : i64} :
// KERNELS: moek.grouped_matmul store {{.*}} transpose_b}
// KERNELS-NEXT: moek.grouped_glu_backward silu_glu
// KERNELS: moek.route_backward softmax {{.*}} probs(%{{.*}} : memref<16x4xf32>)
// KERNELS-RECOMPUTE-NOT: probs(
// KERNELS-RECOMPUTE: moek.grouped_matmul silu_glu
// KERNELS-RECOMPUTE: moek.grouped_matmul scatter_add
// KERNELS-RECOMPUTE: moek.grouped_matmul store
// KERNELS-RECOMPUTE: moek.grouped_glu_backward silu_glu

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
