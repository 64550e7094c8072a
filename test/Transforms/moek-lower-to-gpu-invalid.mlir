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

// -----

// A loop over GPU blocks is lowered only as moek-tile-grouped-matmuls makes
// it (two dimensions around one tile); anything else is an error, not a
// loop dropped or run on the host.
func.func @block_loop_of_one_dimension(%x: memref<16x32xbf16>, %w1: memref<4x32x48xbf16>,
                                       %offsets: memref<5xi32>, %owners: memref<32xi32>,
                                       %act: memref<32x24xbf16>) {
  %c4 = arith.constant 4 : index
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'scf.forall' op is a loop over GPU blocks that moek-lower-to-gpu cannot lower: it takes two dimensions from 0 in steps of 1 around one moek.grouped_matmul_tile (moek-tile-grouped-matmuls' tile loops), this has 1 and 1}}
  scf.forall (%r) in (%c4) {
    %e, %b, %end = moek.row_tile %offsets[%r] rows_per_tile 128 : memref<5xi32>
    moek.grouped_matmul_tile silu_glu %x, %w1, %offsets owners(%owners : memref<32xi32>) into %act
        tile(%e, %b, %end, %c0) shape [128, 256, 32, 4, 2, 4] {gather, top_k = 2 : i64}
        : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// A tile the tensor-core kernel cannot compute (f32 operands) is an error
// naming the rule, not a tile left to the SIMT kernel's whole launch.
func.func @f32_tile(%a: memref<16x24xf32>, %w: memref<4x24x40xf32>, %offsets: memref<5xi32>,
                    %c: memref<16x40xf32>) {
  %c4 = arith.constant 4 : index
  %c1 = arith.constant 1 : index
  scf.forall (%r, %j) in (%c4, %c1) {
    %e, %b, %end = moek.row_tile %offsets[%r] rows_per_tile 128 : memref<5xi32>
    // expected-error @+1 {{'moek.grouped_matmul_tile' op cannot run on the tensor-core kernel: operands are not bf16 or f16}}
    moek.grouped_matmul_tile store %a, %w, %offsets into %c tile(%e, %b, %end, %j)
        shape [128, 256, 32, 4, 2, 4]
        : memref<16x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  } {mapping = [#gpu.block<x>, #gpu.block<y>]}
  return
}

// -----

// A tile shape larger than the chip's shared memory.
func.func @tile_too_big(%x: memref<16x32xbf16>, %w1: memref<4x32x512xbf16>, %offsets: memref<5xi32>,
                        %owners: memref<32xi32>, %act: memref<32x256xbf16>) {
  %c4 = arith.constant 4 : index
  %c1 = arith.constant 1 : index
  scf.forall (%r, %j) in (%c4, %c1) {
    %e, %b, %end = moek.row_tile %offsets[%r] rows_per_tile 256 : memref<5xi32>
    // expected-error @+1 {{'moek.grouped_matmul_tile' op has a tile this GPU cannot run: needs 294912 bytes of shared memory (the chip has at most 232448 per block)}}
    moek.grouped_matmul_tile silu_glu %x, %w1, %offsets owners(%owners : memref<32xi32>) into %act
        tile(%e, %b, %end, %j) shape [256, 256, 64, 4, 2, 4] {gather, top_k = 2 : i64}
        : memref<16x32xbf16>, memref<4x32x512xbf16>, memref<5xi32>, memref<32x256xbf16>
  } {mapping = [#gpu.block<x>, #gpu.block<y>]}
  return
}
