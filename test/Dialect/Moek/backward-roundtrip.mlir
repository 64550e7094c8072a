// The backward kernels print and parse back, with and without the optional
// expert range and weights.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @kernels
// CHECK: moek.expert_loads %{{.*}} into %{{.*}} : memref<5xi32>, memref<4xi32>
// CHECK: moek.grouped_matmul store %{{.*}}, %{{.*}}, %{{.*}} owners(%{{.*}} : memref<?xi32>) into %{{.*}} {gather, top_k = 2 : i64, transpose_b}
// CHECK: moek.grouped_glu_backward silu_glu %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}}, %{{.*}} {top_k = 2 : i64}
// CHECK: moek.grouped_glu_backward gelu_glu %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} experts(%{{.*}}, %{{.*}}) into %{{.*}}, %{{.*}}, %{{.*}} {top_k = 2 : i64} : memref<?x6xf32>, memref<5xi32>, memref<?xi32>, memref<?x2xf32>, memref<?x12xf32>, memref<?x6xf32>, memref<?x12xbf16>
// CHECK: moek.grouped_weight_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} weights(%{{.*}} : memref<?x2xf32>) into %{{.*}} {gather_rhs, top_k = 2 : i64}
// CHECK: moek.grouped_weight_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} experts(%{{.*}}, %{{.*}}) into %{{.*}} {gather_lhs, top_k = 2 : i64}
// CHECK: moek.grouped_matmul scatter_add %{{.*}}, %{{.*}}, %{{.*}} experts(%{{.*}}, %{{.*}}) owners(%{{.*}} : memref<?xi32>) into %{{.*}} {top_k = 2 : i64, transpose_b}
// CHECK: moek.route_backward sigmoid %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}}, %{{.*}} {aux_loss = 1.000000e-01 : f64, normalize = false}
func.func @kernels(%x: memref<?x8xbf16>, %dy: memref<?x8xbf16>, %w1: memref<4x8x12xbf16>,
                   %w2: memref<4x6x8xbf16>, %wg: memref<8x4xbf16>, %offsets: memref<5xi32>,
                   %owners: memref<?xi32>, %weights: memref<?x2xf32>, %indices: memref<?x2xi32>,
                   %h: memref<?x12xf32>, %act: memref<?x6xf32>, %dh: memref<?x12xf32>,
                   %dh16: memref<?x12xbf16>,
                   %dweights: memref<?x2xf32>, %dw1: memref<4x8x12xbf16>, %dw2: memref<4x6x8xbf16>,
                   %dx: memref<?x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<f32>,
                   %loads: memref<4xi32>, %first: index, %last: index) {
  moek.expert_loads %offsets into %loads : memref<5xi32>, memref<4xi32>
  // g = dy[t] . w2[e]^T, then the GLU's backward from it, a over g in place.
  moek.grouped_matmul store %dy, %w2, %offsets owners(%owners : memref<?xi32>)
      into %act {gather, top_k = 2 : i64, transpose_b}
      : memref<?x8xbf16>, memref<4x6x8xbf16>, memref<5xi32>, memref<?x6xf32>
  moek.grouped_glu_backward silu_glu %act, %offsets, %owners, %weights, %h
      into %act, %dh, %dweights {top_k = 2 : i64}
      : memref<?x6xf32>, memref<5xi32>, memref<?xi32>,
        memref<?x2xf32>, memref<?x12xf32>, memref<?x6xf32>, memref<?x12xf32>, memref<?x2xf32>
  moek.grouped_glu_backward gelu_glu %act, %offsets, %owners, %weights, %h
      experts(%first, %last) into %act, %dh16, %dweights {top_k = 2 : i64}
      : memref<?x6xf32>, memref<5xi32>, memref<?xi32>,
        memref<?x2xf32>, memref<?x12xf32>, memref<?x6xf32>, memref<?x12xbf16>, memref<?x2xf32>
  moek.grouped_weight_grad %act, %dy, %offsets, %owners weights(%weights : memref<?x2xf32>)
      into %dw2 {gather_rhs, top_k = 2 : i64}
      : memref<?x6xf32>, memref<?x8xbf16>, memref<5xi32>, memref<?xi32>, memref<4x6x8xbf16>
  moek.grouped_weight_grad %x, %dh, %offsets, %owners experts(%first, %last)
      into %dw1 {gather_lhs, top_k = 2 : i64}
      : memref<?x8xbf16>, memref<?x12xf32>, memref<5xi32>, memref<?xi32>, memref<4x8x12xbf16>
  // dx += dh . w1[e]^T: an f32 dh (the CPU's) with bf16 weights, no routing weights.
  moek.grouped_matmul scatter_add %dh, %w1, %offsets experts(%first, %last)
      owners(%owners : memref<?xi32>) into %dx {top_k = 2 : i64, transpose_b}
      : memref<?x12xf32>, memref<4x8x12xbf16>, memref<5xi32>, memref<?x8xf32>
  moek.route_backward sigmoid %x, %wg, %indices, %offsets, %dweights into %dx, %dwg, %aux
      {normalize = false, aux_loss = 0.1 : f64}
      : memref<?x8xbf16>, memref<8x4xbf16>, memref<?x2xi32>, memref<5xi32>, memref<?x2xf32>,
        memref<?x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// The saved router probabilities (moe-place-recomputation): the router writes them, its
// backward reads them.
// CHECK-LABEL: func.func @saved_probabilities
// CHECK: moek.route softmax top_k = 2 %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}} probs(%[[P:.*]] : memref<16x4xf32>) :
// CHECK: moek.route_backward softmax %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}}, %{{.*}} probs(%[[P]] : memref<16x4xf32>) :
func.func @saved_probabilities(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %weights: memref<16x2xf32>,
                               %indices: memref<16x2xi32>, %p: memref<16x4xf32>, %offsets: memref<5xi32>,
                               %dweights: memref<16x2xf32>, %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>,
                               %aux: memref<f32>) {
  moek.route softmax top_k = 2 %x, %wg into %weights, %indices probs(%p : memref<16x4xf32>)
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  moek.route_backward softmax %x, %wg, %indices, %offsets, %dweights into %dx, %dwg, %aux
      probs(%p : memref<16x4xf32>)
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>,
        memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// The GPU's scratch: the f32 scores and, for a bf16 layer, the rounded score gradients its
// tensor-core products read.
// CHECK-LABEL: func.func @gpu_scratch
// CHECK: moek.route_backward softmax %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}}, %{{.*}} scores(%{{.*}} : memref<?x8xf32>) ds(%{{.*}} : memref<?x8xbf16>) :
func.func @gpu_scratch(%x: memref<?x16xbf16>, %wg: memref<16x8xbf16>, %indices: memref<?x2xi32>,
                       %offsets: memref<9xi32>, %dweights: memref<?x2xf32>, %dx: memref<?x16xf32>,
                       %dwg: memref<16x8xf32>, %aux: memref<f32>, %s: memref<?x8xf32>,
                       %ds: memref<?x8xbf16>) {
  moek.route_backward softmax %x, %wg, %indices, %offsets, %dweights into %dx, %dwg, %aux
      scores(%s : memref<?x8xf32>) ds(%ds : memref<?x8xbf16>)
      : memref<?x16xbf16>, memref<16x8xbf16>, memref<?x2xi32>, memref<9xi32>, memref<?x2xf32>,
        memref<?x16xf32>, memref<16x8xf32>, memref<f32>
  return
}

// A bf16 layer's dx in its own type: the router's products are added to each
// element once, rounded once.
// CHECK-LABEL: func.func @narrow_dx
// CHECK: moek.route_backward softmax {{.*}} into %{{.*}}, %{{.*}}, %{{.*}} : {{.*}}, memref<16x8xbf16>, memref<8x4xf32>, memref<f32>
func.func @narrow_dx(%x: memref<16x8xbf16>, %wg: memref<8x4xbf16>, %indices: memref<16x2xi32>,
                     %offsets: memref<5xi32>, %dweights: memref<16x2xf32>, %dx: memref<16x8xbf16>,
                     %dwg: memref<8x4xf32>, %aux: memref<f32>) {
  moek.route_backward softmax %x, %wg, %indices, %offsets, %dweights into %dx, %dwg, %aux
      : memref<16x8xbf16>, memref<8x4xbf16>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>,
        memref<16x8xbf16>, memref<8x4xf32>, memref<f32>
  return
}
