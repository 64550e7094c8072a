// The training ops become the zero-buffer backward kernels: per expert (experts-per-chunk=1),
// the gate/up projection recomputed through the gather prologue, g = dy[t] . w2[e]^T as a
// grouped matmul with B transposed (into the act buffer, which the GLU backward then
// overwrites with a), the GLU backward, two varlen-K weight gradients and dx += dh . w1^T as
// a scatter-add grouped matmul with B transposed (no weights: dh carries them); then the
// router's backward. The GLU backward writes a weighted (w a) so that dw2 is a plain varlen-K
// GEMM. With narrow-gemm-operands (the CUDA pipeline) dh and w a are bf16, in buffers of
// their own, so that tensor cores can read them; g stays f32. The residuals' buffers are named residuals.*, and no [T*k, H] buffer
// (dispatch.tokens, expert_outputs.*) exists in the fused training step.
// RUN: moe-opt %s --moe-generate-backward --moe-zero-buffer-fusion --moe-lower-to-kernels | FileCheck %s
// RUN: moe-opt %s --moe-generate-backward --moe-zero-buffer-fusion --moe-lower-to-kernels | FileCheck %s --check-prefix=NOROWS
// RUN: moe-opt %s --moe-generate-backward "--moe-zero-buffer-fusion=experts-per-chunk=4" "--moe-lower-to-kernels=experts-per-chunk=4" | FileCheck %s --check-prefix=ALL
// RUN: moe-opt %s --moe-generate-backward --moe-zero-buffer-fusion "--moe-lower-to-kernels=narrow-gemm-operands=true" | FileCheck %s --check-prefix=NARROW
// With kernel-scratch-buffers (the CUDA pipeline) the router and its backward get f32 [T, E]
// scores buffers here, before the memory plan, for the GPU's scores GEMM, and the ranking its
// [ceil(T/64), E] per-slice counts; the CPU has none.
// RUN: moe-opt %s --moe-generate-backward "--moe-zero-buffer-fusion=kernel-scratch-buffers=true" "--moe-lower-to-kernels=kernel-scratch-buffers=true" | FileCheck %s --check-prefix=SCORES
// RUN: moe-opt %s --moe-generate-backward --moe-zero-buffer-fusion --moe-lower-to-kernels | FileCheck %s --check-prefix=NOSCORES

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

// CHECK-LABEL: func.func @moe_layer_train
// CHECK: memref.alloc() {moe.buffer = "residuals.weights"} : memref<16x2xf32>
// CHECK: moek.route
// CHECK: {moe.buffer = "residuals.ranks"}
// CHECK: {moe.buffer = "residuals.offsets"}
// The forward's row owners come with its ranking.
// CHECK: moek.rank_assignments {{.*}} offsets(%{{.*}} : memref<5xi32>) owners(%{{.*}} : memref<32xi32>)
// The forward: gather-prologue GEMM with the GLU, scatter-add GEMM.
// CHECK: moek.grouped_matmul silu_glu
// CHECK: moek.grouped_matmul scatter_add
// The backward derives its own row owners from the saved plan.
// CHECK: moek.row_assignments
// CHECK: %[[DX:.*]] = memref.alloc() {moe.buffer = "gradients.dx_experts"} : memref<16x8xbf16>
// CHECK: %[[ACC:.*]] = memref.alloc() {moe.buffer = "accumulators.dx"} : memref<16x8xf32>
// CHECK: %[[H:.*]] = memref.alloc() {moe.buffer = "activations.gate_up"} : memref<16x12xf32>
// CHECK: %[[G:.*]] = memref.alloc() {moe.buffer = "activations.glu"} : memref<16x6xf32>
// CHECK: scf.for %[[E:.*]] =
// CHECK: moek.grouped_matmul store %{{.*}}, %{{.*}}, %{{.*}} experts(%[[E]], %{{.*}}) owners(%{{.*}} : memref<32xi32>) into %[[H]] {gather, top_k = 2 : i64}
// CHECK: moek.grouped_matmul store %{{.*}}, %{{.*}}, %{{.*}} experts(%[[E]], %{{.*}}) owners(%{{.*}} : memref<32xi32>) into %[[G]] {gather, top_k = 2 : i64, transpose_b} : memref<16x8xbf16>, memref<4x6x8xbf16>, memref<5xi32>, memref<16x6xf32>
// CHECK: moek.grouped_glu_backward silu_glu %[[G]], {{.*}}, %[[H]] experts(%[[E]], %{{.*}}) into %[[G]], %[[H]],
// CHECK: moek.grouped_weight_grad %[[G]], {{.*}} experts(%[[E]], %{{.*}}) into %{{.*}} {gather_rhs, top_k = 2 : i64}
// dx before dw1 (with one chunk the plan keeps dx's accumulator in dw1's bytes).
// CHECK: moek.grouped_matmul scatter_add %[[H]], %{{.*}}, %{{.*}} experts(%[[E]], %{{.*}}) owners(%{{.*}} : memref<32xi32>) into %[[ACC]] {top_k = 2 : i64, transpose_b} : memref<16x12xf32>, memref<4x8x12xbf16>, memref<5xi32>, memref<16x8xf32>
// CHECK: moek.grouped_weight_grad {{.*}} experts(%[[E]], %{{.*}}) into %{{.*}} {gather_lhs, top_k = 2 : i64}
// CHECK-NOT: grouped_input_grad
// CHECK: linalg.map
// The router's backward continues from the experts' f32 dx (one rounding of a bf16 dx).
// CHECK: %[[RACC:.*]] = memref.alloc() {moe.buffer = "accumulators.dx_router"} : memref<16x8xf32>
// CHECK: memref.copy %[[ACC]], %[[RACC]]
// CHECK: moek.route_backward softmax {{.*}} into %[[RACC]]
// CHECK: moek.expert_loads
// CHECK-NOT: moe.save_for_backward
// NOROWS-NOT: dispatch.tokens
// NOROWS-NOT: expert_outputs
// NOROWS-NOT: memref<32x8xbf16>
// With GEMM operands narrowed (CUDA), h and g are bf16 too, and dh and the
// weighted a still overwrite them in place: two row buffers, both bf16.
// NARROW: %[[H:.*]] = memref.alloc() {moe.buffer = "activations.gate_up"} : memref<16x12xbf16>
// NARROW: %[[G:.*]] = memref.alloc() {moe.buffer = "activations.glu"} : memref<16x6xbf16>
// NARROW-NOT: activations.gate_up_grad
// NARROW-NOT: activations.glu_weighted
// NARROW: moek.grouped_glu_backward silu_glu %[[G]], {{.*}}, %[[H]] experts(%{{.*}}, %{{.*}}) into %[[G]], %[[H]],
// NARROW: moek.grouped_weight_grad %[[G]], {{.*}} {gather_rhs, top_k = 2 : i64}
// NARROW: moek.grouped_matmul scatter_add %[[H]], {{.*}} {top_k = 2 : i64, transpose_b} : memref<16x12xbf16>, memref<4x8x12xbf16>
// NARROW: moek.grouped_weight_grad {{.*}}, %[[H]], {{.*}} {gather_lhs, top_k = 2 : i64}
// SCORES: %[[S:.*]] = memref.alloc() {moe.buffer = "routing.scores"} : memref<16x4xf32>
// SCORES: moek.route softmax {{.*}} scores(%[[S]] : memref<16x4xf32>)
// SCORES: %[[P:.*]] = memref.alloc() {moe.buffer = "routing.rank_partials"} : memref<1x4xi32>
// SCORES: moek.rank_assignments {{.*}} partials(%[[P]] : memref<1x4xi32>)
// SCORES: %[[DS:.*]] = memref.alloc() {moe.buffer = "gradients.router_scores"} : memref<16x4xf32>
// SCORES: moek.route_backward softmax {{.*}} scores(%[[DS]] : memref<16x4xf32>)
// E = 4 is not a multiple of 8: the router's products stay SIMT, no bf16 ds is planned.
// SCORES-NOT: ds(
// NOSCORES-NOT: scores(
// NOSCORES-NOT: partials(
// ALL-NOT: scf.for
// ALL: moek.grouped_glu_backward silu_glu {{.*}} experts(%{{.*}}, %{{.*}})
func.func @moe_layer(%x: tensor<16x8xbf16>, %w_gate: tensor<8x4xbf16>,
                     %w1: tensor<4x8x12xbf16>, %w2: tensor<4x6x8xbf16>)
    -> (tensor<16x8xbf16>, tensor<16x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x8xbf16>, tensor<8x4xbf16>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x8xbf16>, !R) -> tensor<32x8xbf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x8xbf16>, !R, tensor<4x8x12xbf16>, tensor<4x6x8xbf16>) -> tensor<32x8xbf16>
  %y = moe.combine %out, %weights, %routing : (tensor<32x8xbf16>, tensor<16x2xf32>, !R) -> tensor<16x8xbf16>
  return %y, %indices : tensor<16x8xbf16>, tensor<16x2xi32>
}
