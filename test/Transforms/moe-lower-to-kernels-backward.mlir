// The training ops become the zero-buffer backward kernels: per expert (experts-per-chunk=1),
// the gate/up projection recomputed through the gather prologue, the GLU backward, two
// varlen-K weight gradients and the input gradient scattered into token order; then the
// router's backward. The residuals' buffers are named residuals.*, and no [T*k, H] buffer
// (dispatch.tokens, expert_outputs.*) exists in the fused training step.
// RUN: moe-opt %s --moe-generate-backward --moe-zero-buffer-fusion --moe-lower-to-kernels | FileCheck %s
// RUN: moe-opt %s --moe-generate-backward --moe-zero-buffer-fusion --moe-lower-to-kernels | FileCheck %s --check-prefix=NOROWS
// RUN: moe-opt %s --moe-generate-backward "--moe-zero-buffer-fusion=experts-per-chunk=4" "--moe-lower-to-kernels=experts-per-chunk=4" | FileCheck %s --check-prefix=ALL

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

// CHECK-LABEL: func.func @moe_layer_train
// CHECK: memref.alloc() {moe.buffer = "residuals.weights"} : memref<16x2xf32>
// CHECK: moek.route
// CHECK: {moe.buffer = "residuals.ranks"}
// CHECK: moek.rank_assignments
// CHECK: {moe.buffer = "residuals.offsets"}
// The forward: gather-prologue GEMM with the GLU, scatter-add GEMM.
// CHECK: moek.grouped_matmul silu_glu
// CHECK: moek.grouped_matmul scatter_add
// The backward derives its own row owners from the saved plan.
// CHECK: moek.row_assignments
// CHECK: %[[DX:.*]] = memref.alloc() {moe.buffer = "gradients.dx_experts"} : memref<16x8xbf16>
// CHECK: %[[ACC:.*]] = memref.alloc() {moe.buffer = "accumulators.dx"} : memref<16x8xf32>
// CHECK: memref.alloc() {moe.buffer = "activations.gate_up"} : memref<16x12xf32>
// CHECK: scf.for %[[E:.*]] =
// CHECK: moek.grouped_matmul store %{{.*}}, %{{.*}}, %{{.*}} experts(%[[E]], %{{.*}}) owners(%{{.*}} : memref<32xi32>) into %{{.*}} {gather, top_k = 2 : i64}
// CHECK: moek.grouped_glu_backward silu_glu
// CHECK: moek.grouped_weight_grad {{.*}} weights(%{{.*}} : memref<16x2xf32>) experts(%[[E]], %{{.*}}) into %{{.*}} {gather_rhs, top_k = 2 : i64}
// CHECK: moek.grouped_weight_grad {{.*}} experts(%[[E]], %{{.*}}) into %{{.*}} {gather_lhs, top_k = 2 : i64}
// CHECK: moek.grouped_input_grad {{.*}} into %[[ACC]] {top_k = 2 : i64}
// CHECK: linalg.map
// CHECK: moek.route_backward softmax
// CHECK: moek.expert_loads
// CHECK-NOT: moe.save_for_backward
// NOROWS-NOT: dispatch.tokens
// NOROWS-NOT: expert_outputs
// NOROWS-NOT: memref<32x8xbf16>
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
