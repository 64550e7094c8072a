// The block's kernels (the CUDA target's RMSNorm, projections and attention
// core) print and parse back, the default epsilon elided.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @kernels
// CHECK: moek.rms_norm %{{.*}}, %{{.*}} into %{{.*}} : memref<?x32xbf16>, memref<32xbf16>, memref<?x32xbf16>
// CHECK: moek.rms_norm %{{.*}}, %{{.*}} into %{{.*}} {epsilon = 1.000000e-05 : f64} : memref<?x32xbf16>, memref<32xbf16>, memref<?x32xbf16>
// CHECK: moek.matmul %{{.*}}, %{{.*}} into %{{.*}} : memref<?x32xbf16>, memref<32x32xbf16>, memref<?x32xf32>
// CHECK: moek.flash_attention heads = 4 kv_heads = 2 %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}} : memref<2x8x32xf32>, memref<2x8x16xf32>, memref<2x8x16xf32>, memref<2x8x32xbf16>
// CHECK: moek.matmul %{{.*}}, %{{.*}} into %{{.*}} : memref<16x32xf32>, memref<32x8xf32>, memref<16x8xf32>
func.func @kernels(%x: memref<?x32xbf16>, %g: memref<32xbf16>, %out: memref<?x32xbf16>,
                   %wq: memref<32x32xbf16>, %qrows: memref<?x32xf32>,
                   %q: memref<2x8x32xf32>, %k: memref<2x8x16xf32>, %v: memref<2x8x16xf32>,
                   %o: memref<2x8x32xbf16>, %a: memref<16x32xf32>, %w: memref<32x8xf32>,
                   %c: memref<16x8xf32>) {
  moek.rms_norm %x, %g into %out : memref<?x32xbf16>, memref<32xbf16>, memref<?x32xbf16>
  moek.rms_norm %x, %g into %out {epsilon = 1.0e-05 : f64} : memref<?x32xbf16>, memref<32xbf16>, memref<?x32xbf16>
  moek.matmul %x, %wq into %qrows : memref<?x32xbf16>, memref<32x32xbf16>, memref<?x32xf32>
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x8x32xf32>, memref<2x8x16xf32>, memref<2x8x16xf32>, memref<2x8x32xbf16>
  moek.matmul %a, %w into %c : memref<16x32xf32>, memref<32x8xf32>, memref<16x8xf32>
  return
}
