// The GPU router writes its f32 [T, E] scores (and the router backward their
// gradients) into the op's own scores buffer, and the parallel ranking its
// per-slice counts into the op's partials, which moe-lower-to-kernels makes
// before the memory plan: a kernel without its scratch is an error, not a
// buffer the lowering allocates behind the plan's back (the measured peak
// would exceed the planned one, and --memory-budget, by T*E*4 bytes).
// RUN: moe-opt %s -moek-lower-to-gpu -split-input-file -verify-diagnostics

func.func @route_without_scores(%x: memref<?x32xbf16>, %w_gate: memref<32x16xbf16>,
                                %weights: memref<?x2xf32>, %indices: memref<?x2xi32>) {
  // expected-error @+1 {{'moek.route' op needs a scores buffer (its f32 [T, E] scores GEMM writes there) on the GPU; moe-lower-to-kernels gives it one with kernel-scratch-buffers=true, as the CUDA pipeline does}}
  moek.route softmax top_k = 2 %x, %w_gate into %weights, %indices
      : memref<?x32xbf16>, memref<32x16xbf16>, memref<?x2xf32>, memref<?x2xi32>
  return
}

// -----

func.func @route_backward_without_scores(
    %x: memref<16x32xbf16>, %w_gate: memref<32x4xbf16>, %indices: memref<16x2xi32>,
    %offsets: memref<5xi32>, %dweights: memref<16x2xf32>, %dx: memref<16x32xf32>,
    %dw_gate: memref<32x4xf32>, %aux: memref<f32>) {
  // expected-error @+1 {{'moek.route_backward' op needs a scores buffer}}
  moek.route_backward softmax %x, %w_gate, %indices, %offsets, %dweights
      into %dx, %dw_gate, %aux
      : memref<16x32xbf16>, memref<32x4xbf16>, memref<16x2xi32>, memref<5xi32>,
        memref<16x2xf32>, memref<16x32xf32>, memref<32x4xf32>, memref<f32>
  return
}

// -----

func.func @rank_without_partials(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op needs a partials buffer (the per-slice counts of its parallel ranking) on the GPU}}
  moek.rank_assignments %i into %r, %c : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}
