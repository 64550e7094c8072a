// moek.route prints and parses back with and without the optional bias (the
// bias's type sits with the bias, so a missing bias cannot swallow the type
// of the weights).
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @no_bias
// CHECK: moek.route softmax top_k = 2 %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}} : memref<?x32xbf16>, memref<32x16xbf16>, memref<?x2xf32>, memref<?x2xi32>
func.func @no_bias(%x: memref<?x32xbf16>, %w_gate: memref<32x16xbf16>,
                   %weights: memref<?x2xf32>, %indices: memref<?x2xi32>) {
  moek.route softmax top_k = 2 %x, %w_gate into %weights, %indices
      : memref<?x32xbf16>, memref<32x16xbf16>, memref<?x2xf32>, memref<?x2xi32>
  return
}

// CHECK-LABEL: func.func @bias
// CHECK: moek.route sigmoid top_k = 2 %{{.*}}, %{{.*}} bias(%{{.*}} : memref<16xf32>) into %{{.*}}, %{{.*}} : memref<8x32xf32>, memref<32x16xf32>, memref<8x2xf32>, memref<8x2xi32>
func.func @bias(%x: memref<8x32xf32>, %w_gate: memref<32x16xf32>, %bias: memref<16xf32>,
                %weights: memref<8x2xf32>, %indices: memref<8x2xi32>) {
  moek.route sigmoid top_k = 2 %x, %w_gate bias(%bias : memref<16xf32>)
      into %weights, %indices
      : memref<8x32xf32>, memref<32x16xf32>, memref<8x2xf32>, memref<8x2xi32>
  return
}
