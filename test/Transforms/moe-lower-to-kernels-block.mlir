// moe-lower-to-kernels on the block's ops: RMSNorm and attention become linalg kernels on
// named buffers (what the memory plan sees); a dynamic sequence length is refused with the
// reason. The GPU's pipeline (kernel scratch buffers) makes moek kernels instead: RMSNorm,
// the projections as dense GEMMs into f32 q, k, v, the flash-attention core into the heads'
// outputs in the storage type, the output projection; no scores buffer, so a dynamic
// sequence length lowers too.
// RUN: moe-opt %s --split-input-file --moe-lower-to-kernels --verify-diagnostics | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-lower-to-kernels=kernel-scratch-buffers=true | FileCheck %s --check-prefix=GPU

// CHECK-LABEL: func.func @attention
// CHECK-SAME: {bufferization.writable = false}
// CHECK: memref.alloc() {moe.buffer = "block.rms_norm.sums"} : memref<2x8xf32>
// CHECK: memref.alloc() {moe.buffer = "block.rms_norm"} : memref<2x8x32xbf16>
// CHECK: memref.alloc() {moe.buffer = "attention.q"} : memref<2x8x32xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.k"} : memref<2x8x16xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.v"} : memref<2x8x16xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.scores"} : memref<2x4x8x8xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.row_max"} : memref<2x4x8xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.row_sum"} : memref<2x4x8xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.heads"} : memref<2x8x32xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.out_f32"} : memref<2x8x32xf32>
// CHECK: memref.alloc() {moe.buffer = "attention.out"} : memref<2x8x32xbf16>
// CHECK-NOT: moe.attention
// GPU-LABEL: func.func @attention
// GPU: %[[NORM:.*]] = memref.alloc() {moe.buffer = "block.rms_norm"} : memref<2x8x32xbf16>
// GPU: %[[NORM_ROWS:.*]] = memref.collapse_shape %[[NORM]] {{\[}}[0, 1], [2]]
// GPU: moek.rms_norm %{{.*}}, %{{.*}} into %[[NORM_ROWS]] : memref<16x32xbf16>, memref<32xbf16>, memref<16x32xbf16>
// q, k and v in the storage type (the tensor-core attention's operands).
// GPU: memref.alloc() {moe.buffer = "attention.q"} : memref<2x8x32xbf16>
// GPU: moek.matmul %{{.*}}, %{{.*}} into %{{.*}} : memref<16x32xbf16>, memref<32x32xbf16>, memref<16x32xbf16>
// GPU: memref.alloc() {moe.buffer = "attention.k"} : memref<2x8x16xbf16>
// GPU: moek.matmul
// GPU: memref.alloc() {moe.buffer = "attention.v"} : memref<2x8x16xbf16>
// GPU: moek.matmul
// GPU: %[[HEADS:.*]] = memref.alloc() {moe.buffer = "attention.heads"} : memref<2x8x32xbf16>
// GPU: moek.flash_attention heads = 4 kv_heads = 2 %{{.*}}, %{{.*}}, %{{.*}} into %[[HEADS]] : memref<2x8x32xbf16>, memref<2x8x16xbf16>, memref<2x8x16xbf16>, memref<2x8x32xbf16>
// GPU: memref.alloc() {moe.buffer = "attention.out"} : memref<2x8x32xbf16>
// GPU: moek.matmul %{{.*}}, %{{.*}} into %{{.*}} : memref<16x32xbf16>, memref<32x32xbf16>, memref<16x32xbf16>
// GPU-NOT: attention.scores
// GPU-NOT: moe.attention
func.func @attention(%x: tensor<2x8x32xbf16>, %g: tensor<32xbf16>, %wq: tensor<32x32xbf16>,
                     %wk: tensor<32x16xbf16>, %wv: tensor<32x16xbf16>, %wo: tensor<32x32xbf16>)
    -> tensor<2x8x32xbf16> {
  %n = moe.rms_norm %x, %g : (tensor<2x8x32xbf16>, tensor<32xbf16>) -> tensor<2x8x32xbf16>
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xbf16>, tensor<32x32xbf16>, tensor<32x16xbf16>, tensor<32x16xbf16>,
         tensor<32x32xbf16>) -> tensor<2x8x32xbf16>
  return %a : tensor<2x8x32xbf16>
}

// -----

// GPU-LABEL: func.func @dynamic_length
// GPU: memref.alloc(%{{.*}}) {moe.buffer = "attention.q"} : memref<2x?x32xf32>
// GPU: moek.flash_attention heads = 4 kv_heads = 2 %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}} : memref<2x?x32xf32>, memref<2x?x16xf32>, memref<2x?x16xf32>, memref<2x?x32xf32>
func.func @dynamic_length(%n: tensor<2x?x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                          %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<2x?x32xf32> {
  // expected-error @+1 {{'moe.attention' op needs a static sequence length (n dimension 1) to lower: its scores are [B, heads, L, L]}}
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x?x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>,
         tensor<32x32xf32>) -> tensor<2x?x32xf32>
  return %a : tensor<2x?x32xf32>
}
