// The GPU router writes its f32 [T, E] scores (and the router backward their
// gradients) into the op's own scores buffer, which moe-lower-to-kernels
// makes before the memory plan: a router without one is an error, not a
// buffer the lowering allocates behind the plan's back (the measured peak
// would exceed the planned one, and --memory-budget, by T*E*4 bytes).
// RUN: moe-opt %s -moek-lower-to-gpu -split-input-file -verify-diagnostics

func.func @route_without_scores(%x: memref<?x32xbf16>, %w_gate: memref<32x16xbf16>,
                                %weights: memref<?x2xf32>, %indices: memref<?x2xi32>) {
  // expected-error @+1 {{'moek.route' op needs a scores buffer on the GPU (its f32 [T, E] scores GEMM writes there); moe-lower-to-kernels gives it one with router-scores-buffer=true, as the CUDA pipeline does}}
  moek.route softmax top_k = 2 %x, %w_gate into %weights, %indices
      : memref<?x32xbf16>, memref<32x16xbf16>, memref<?x2xf32>, memref<?x2xi32>
  return
}

// -----

func.func @route_backward_without_scores(
    %x: memref<16x32xbf16>, %w_gate: memref<32x4xbf16>, %indices: memref<16x2xi32>,
    %offsets: memref<5xi32>, %dweights: memref<16x2xf32>, %dx: memref<16x32xf32>,
    %dw_gate: memref<32x4xf32>, %aux: memref<f32>) {
  // expected-error @+1 {{'moek.route_backward' op needs a scores buffer on the GPU}}
  moek.route_backward softmax %x, %w_gate, %indices, %offsets, %dweights
      into %dx, %dw_gate, %aux
      : memref<16x32xbf16>, memref<32x4xbf16>, memref<16x2xi32>, memref<5xi32>,
        memref<16x2xf32>, memref<16x32xf32>, memref<32x4xf32>, memref<f32>
  return
}
