// A bf16 layer's training step on CUDA saves h in bf16, the type its backward reads h in
// (CUDA narrows the GEMMs' operands), not in f32: half the bytes. The forward's GLU GEMM
// stores it beside the activation it computes from its f32 accumulator, and the backward
// writes dh over it in place (no second [T*k, 2F] buffer).
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100% target=cuda:sm_90a" 2>&1 | FileCheck %s --check-prefix=CUDA
// RUN: moe-opt %s --moe-generate-backward --moe-place-recomputation="memory-budget=100% target=cuda:sm_90a" --moe-zero-buffer-fusion --moe-lower-to-kernels=narrow-gemm-operands=true 2>/dev/null | FileCheck %s --check-prefix=KERNELS
// The CPU's backward keeps f32 rows, so there h is saved in f32.
// RUN: moe-opt %s --moe-generate-backward --mlir-print-op-on-diagnostic=false --moe-place-recomputation="memory-budget=100% cost-device=h200-sm90a" 2>&1 | FileCheck %s --check-prefix=CPU

// CUDA: remark: saves gate_up (6.00 KiB)
// CUDA: moe.expert_gate_up {{.*}} -> tensor<64x48xbf16>
// CUDA: moe.experts_backward silu_glu {{.*}} gate_up(%{{.*}}) : {{.*}}tensor<64x48xbf16>)

// KERNELS-LABEL: func.func @moe_layer_train
// KERNELS: %[[H:.*]] = memref.alloc() {moe.buffer = "residuals.gate_up"} : memref<64x48xbf16>
// KERNELS-NOT: moek.glu
// KERNELS: moek.grouped_matmul silu_glu {{.*}} pre_activation(%[[H]] : memref<64x48xbf16>) {gather, top_k = 2 : i64}
// KERNELS-NOT: moe.buffer = "activations.gate_up_grad"
// KERNELS: moek.grouped_glu_backward silu_glu %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[HV:.*]] experts({{.*}}) into %{{.*}}, %[[HV]], %{{.*}} {top_k = 2 : i64} : {{.*}}, memref<64x48xbf16>, memref<64x24xbf16>, memref<64x48xbf16>,

// CPU: remark: saves gate_up (12.00 KiB)
// CPU: moe.expert_gate_up {{.*}} -> tensor<64x48xf32>

!R = !moe.routing<tokens = 32, experts = 4, top_k = 2>
func.func @moe_layer(%x: tensor<32x32xbf16>, %w_gate: tensor<32x4xbf16>,
                     %w1: tensor<4x32x48xbf16>, %w2: tensor<4x24x32xbf16>) -> (tensor<32x32xbf16>, tensor<32x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<32x32xbf16>, tensor<32x4xbf16>) -> (tensor<32x2xf32>, tensor<32x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<32x32xbf16>, !R) -> tensor<64x32xbf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<64x32xbf16>, !R, tensor<4x32x48xbf16>, tensor<4x24x32xbf16>) -> tensor<64x32xbf16>
  %y = moe.combine %out, %weights, %routing : (tensor<64x32xbf16>, tensor<32x2xf32>, !R) -> tensor<32x32xbf16>
  return %y, %indices : tensor<32x32xbf16>, tensor<32x2xi32>
}
