// The sm_90a kernel lowers moek-tile-grouped-matmuls' persistent tile loop
// as that pass makes it; a loop or tile it cannot run is an error naming
// the rule, never a kernel that computes something else or hangs on its
// mbarrier ring.
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_90a -split-input-file -verify-diagnostics

// A tile shape other than the kernel's 128 x 256 x 64, 4 stages, 8 warps.
func.func @wrong_shape(%x: memref<16x64xbf16>, %w: memref<4x64x256xbf16>, %offsets: memref<5xi32>,
                       %c: memref<16x256xbf16>, %grid: index, %count: index) {
  %c0 = arith.constant 0 : index
  scf.forall (%cta) in (%grid) {
    %done = scf.for %i = %c0 to %count step %grid iter_args(%before = %c0) -> (index) {
      %e, %b, %end = moek.row_tile %offsets[%i] rows_per_tile 128 : memref<5xi32>
      // expected-error @+1 {{'moek.grouped_matmul_tile' op has a tile the sm_90a kernel cannot run: it computes 128 x 256 tiles 64 deep in 4 stages with 8 warps of 16 rows (shape [128, 256, 64, 4, 8, 1])}}
      %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%e, %b, %end, %c0) k_tiles(%before)
          shape [128, 256, 32, 4, 2, 4] : memref<16x64xbf16>, memref<4x64x256xbf16>, memref<5xi32>, memref<16x256xbf16> -> index
      scf.yield %after : index
    }
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// A pair's schedule is 256 rows a tile (cluster_size x 128), looked up in
// the tile table of the tile's own offsets.
func.func @wrong_schedule(%x: memref<16x64xbf16>, %w: memref<4x64x256xbf16>, %offsets: memref<5xi32>,
                          %c: memref<16x256xbf16>, %grid: index, %count: index) {
  %c0 = arith.constant 0 : index
  scf.forall (%cta) in (%grid) {
    %done = scf.for %i = %c0 to %count step %grid iter_args(%before = %c0) -> (index) {
      // expected-error @+1 {{'moek.row_tile' op is not the schedule of its loop's tile: the sm_90a kernel looks row tiles up in a table of the tile's offsets and experts, 256 rows (cluster_size x 128) a tile}}
      %e, %b, %end = moek.row_tile %offsets[%i] rows_per_tile 128 : memref<5xi32>
      %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%e, %b, %end, %c0) k_tiles(%before)
          shape [128, 256, 64, 4, 8, 1] {cluster_size = 2 : i64}
          : memref<16x64xbf16>, memref<4x64x256xbf16>, memref<5xi32>, memref<16x256xbf16> -> index
      scf.yield %after : index
    }
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// The producer and the consumers each run the loop: a store in it would
// happen three times (or race).
func.func @store_in_loop(%x: memref<16x64xbf16>, %w: memref<4x64x256xbf16>, %offsets: memref<5xi32>,
                         %c: memref<16x256xbf16>, %grid: index, %count: index, %log: memref<8xindex>) {
  %c0 = arith.constant 0 : index
  scf.forall (%cta) in (%grid) {
    %done = scf.for %i = %c0 to %count step %grid iter_args(%before = %c0) -> (index) {
      %e, %b, %end = moek.row_tile %offsets[%i] rows_per_tile 128 : memref<5xi32>
      // expected-error @+1 {{'memref.store' op has memory effects inside an sm_90a tile loop, whose producer and consumer warpgroups each run the loop}}
      memref.store %e, %log[%c0] : memref<8xindex>
      %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%e, %b, %end, %c0) k_tiles(%before)
          shape [128, 256, 64, 4, 8, 1] : memref<16x64xbf16>, memref<4x64x256xbf16>, memref<5xi32>, memref<16x256xbf16> -> index
      scf.yield %after : index
    }
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// The ring's position must count the CTA's k tiles from 0: the producer
// would otherwise wait for a stage's release that never comes.
func.func @count_not_from_zero(%x: memref<16x64xbf16>, %w: memref<4x64x256xbf16>, %offsets: memref<5xi32>,
                               %c: memref<16x256xbf16>, %grid: index, %count: index) {
  %c0 = arith.constant 0 : index
  %c5 = arith.constant 5 : index
  scf.forall (%cta) in (%grid) {
    %done = scf.for %i = %c0 to %count step %grid iter_args(%before = %c5) -> (index) {
      %e, %b, %end = moek.row_tile %offsets[%i] rows_per_tile 128 : memref<5xi32>
      // expected-error @+1 {{'moek.grouped_matmul_tile' op needs k_tiles, the k tiles its CTA computed before it, carried by the persistent loop from 0 (moek-tile-grouped-matmuls' loop)}}
      %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%e, %b, %end, %c0) k_tiles(%before)
          shape [128, 256, 64, 4, 8, 1] : memref<16x64xbf16>, memref<4x64x256xbf16>, memref<5xi32>, memref<16x256xbf16> -> index
      scf.yield %after : index
    }
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// Clusters of two CTAs at most.
func.func @cluster_of_four(%x: memref<16x64xbf16>, %w: memref<4x64x256xbf16>, %offsets: memref<5xi32>,
                           %c: memref<16x256xbf16>, %grid: index, %count: index) {
  %c0 = arith.constant 0 : index
  scf.forall (%cta) in (%grid) {
    %done = scf.for %i = %c0 to %count step %grid iter_args(%before = %c0) -> (index) {
      %e, %b, %end = moek.row_tile %offsets[%i] rows_per_tile 512 : memref<5xi32>
      // expected-error @+1 {{'moek.grouped_matmul_tile' op has cluster_size 4; the sm_90a kernel pairs at most 2 CTAs}}
      %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%e, %b, %end, %c0) k_tiles(%before)
          shape [128, 256, 64, 4, 8, 1] {cluster_size = 4 : i64}
          : memref<16x64xbf16>, memref<4x64x256xbf16>, memref<5xi32>, memref<16x256xbf16> -> index
      scf.yield %after : index
    }
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// f32 operands have no wgmma tile.
func.func @f32_operands(%x: memref<16x64xf32>, %w: memref<4x64x256xf32>, %offsets: memref<5xi32>,
                        %c: memref<16x256xf32>, %grid: index, %count: index) {
  %c0 = arith.constant 0 : index
  scf.forall (%cta) in (%grid) {
    %done = scf.for %i = %c0 to %count step %grid iter_args(%before = %c0) -> (index) {
      %e, %b, %end = moek.row_tile %offsets[%i] rows_per_tile 128 : memref<5xi32>
      // expected-error @+1 {{'moek.grouped_matmul_tile' op cannot run on the sm_90a kernel: operands are not bf16 or f16}}
      %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%e, %b, %end, %c0) k_tiles(%before)
          shape [128, 256, 64, 4, 8, 1] : memref<16x64xf32>, memref<4x64x256xf32>, memref<5xi32>, memref<16x256xf32> -> index
      scf.yield %after : index
    }
  } {mapping = [#gpu.block<x>]}
  return
}

// -----

// The loop is over the CTAs alone, one dimension.
func.func @two_dimensions(%x: memref<16x64xbf16>, %w: memref<4x64x256xbf16>, %offsets: memref<5xi32>,
                          %c: memref<16x256xbf16>, %grid: index, %count: index) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'scf.forall' op is a persistent tile loop the sm_90a kernel cannot lower: it takes one dimension (the CTAs) from 0 in steps of 1}}
  scf.forall (%cta, %j) in (%grid, %grid) {
    %done = scf.for %i = %c0 to %count step %grid iter_args(%before = %c0) -> (index) {
      %e, %b, %end = moek.row_tile %offsets[%i] rows_per_tile 128 : memref<5xi32>
      %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%e, %b, %end, %j) k_tiles(%before)
          shape [128, 256, 64, 4, 8, 1] : memref<16x64xbf16>, memref<4x64x256xbf16>, memref<5xi32>, memref<16x256xbf16> -> index
      scf.yield %after : index
    }
  } {mapping = [#gpu.block<x>, #gpu.block<y>]}
  return
}
