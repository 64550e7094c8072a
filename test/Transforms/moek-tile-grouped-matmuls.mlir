// The tiling stage of the tensor-core GEMMs: a grouped matmul the mma.sync
// kernel takes becomes an scf.forall over its CTA tiles, mapped to GPU
// blocks: an upper bound of the row tiles (ceil(rows / BM) plus the
// experts, on the host) by the column tiles (N / BN, half for a GLU's
// outputs). Each tile asks moek.row_tile for its expert and rows, and a
// moek.grouped_matmul_tile computes it when it holds rows. On sm_90a the
// grouped matmuls the warpgroup kernel takes become its persistent loop
// instead (SM90A, SINGLE, LOWERED90 below).
// RUN: moe-opt %s -moek-tile-grouped-matmuls | FileCheck %s
// RUN: moe-opt %s -moek-tile-grouped-matmuls=tensor-core-tile=64x128x32x3x2x2 | FileCheck %s --check-prefix=TILE
// RUN: moe-opt %s -moek-tile-grouped-matmuls=chip=sm_90a | FileCheck %s --check-prefix=SM90A
// Tiled then lowered: one launch a tile loop, named after its grouped
// matmul, a CTA of 256 threads per tile, nothing of moek left.
// RUN: moe-opt %s -moek-tile-grouped-matmuls -moek-lower-to-gpu | FileCheck %s --check-prefix=LOWERED
// RUN: moe-opt %s -moek-tile-grouped-matmuls="chip=sm_90a gemm-cluster=1" | FileCheck %s --check-prefix=SINGLE
// RUN: moe-opt %s -moek-tile-grouped-matmuls=chip=sm_90a -moek-lower-to-gpu=chip=sm_90a | FileCheck %s --check-prefix=LOWERED90
// RUN: not moe-opt %s -moek-tile-grouped-matmuls=chip=sm_90a -moek-lower-to-gpu=chip=sm_90 2>&1 | FileCheck %s --check-prefix=NOT90
// RUN: not moe-opt %s -moek-tile-grouped-matmuls=chip=sm_70 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not moe-opt %s -moek-tile-grouped-matmuls=gemm-cluster=3 2>&1 | FileCheck %s --check-prefix=CLUSTER
// RUN: not moe-opt %s -moek-tile-grouped-matmuls=tensor-core-tile=128x128x24x3 2>&1 | FileCheck %s --check-prefix=DEPTH

// CHECK-LABEL: func.func @gather_glu
// 32 local rows in tiles of 128: one, plus one for each of the 4 experts;
// 256 outputs in two column tiles (a GLU tile's 256 columns are 128 gate
// and 128 up columns).
// CHECK:      %[[ROWS:.*]] = memref.dim %arg4, %c0
// CHECK:      %[[CEIL:.*]] = arith.ceildivui %[[ROWS]], %c128
// CHECK:      %[[BOUND:.*]] = arith.addi %[[CEIL]]
// CHECK:      %[[ROW_TILES:.*]] = arith.maxui %[[BOUND]], %c1
// CHECK:      scf.forall (%[[ROW_TILE:.*]], %[[COLUMN_TILE:.*]]) in (%[[ROW_TILES]], %c2) {
// CHECK-NEXT:   %[[EXPERT:.*]], %[[BEGIN:.*]], %[[END:.*]] = moek.row_tile %arg2[%[[ROW_TILE]]] rows_per_tile 128 : memref<5xi32>
// CHECK-NEXT:   %[[HAS_ROWS:.*]] = arith.cmpi ult, %[[BEGIN]], %[[END]]
// CHECK-NEXT:   scf.if %[[HAS_ROWS]] {
// CHECK-NEXT:     moek.grouped_matmul_tile silu_glu %arg0, %arg1, %arg2 owners(%arg3 : memref<32xi32>) into %arg4 tile(%[[EXPERT]], %[[BEGIN]], %[[END]], %[[COLUMN_TILE]]) shape [128, 256, 32, 4, 2, 4] {gather, top_k = 2 : i64}
// CHECK:      } {mapping = [#gpu.block<x>, #gpu.block<y>]}
// CHECK-NOT:  moek.grouped_matmul silu_glu
// TILE-LABEL: func.func @gather_glu
// TILE:       moek.row_tile %arg2[%{{.*}}] rows_per_tile 64
// TILE:       shape [64, 128, 32, 3, 2, 2]
// sm_90a: the warpgroup kernel's persistent loop, in pairs of CTAs (a
// gathered GLU GEMM: gemm-cluster=auto pairs it). Host: 32 rows in tiles of
// 256 (a pair's) plus the 4 experts, by the one column tile; at most 66
// pairs, twice that many CTAs. Each pair (slot = cta / 2) walks every
// (grid / 2)-th tile in bands of 8 pair tiles (16 row tiles); the pair's
// schedule is 256 rows of one expert, of which the CTA of rank cta % 2
// computes the rank-th 128. The walk counts the CTA's k tiles from 0.
// SM90A-LABEL: func.func @gather_glu
// SM90A:       %[[ROWS:.*]] = memref.dim %arg4, %c0
// SM90A:       %[[CEIL:.*]] = arith.ceildivui %[[ROWS]], %c256
// SM90A:       %[[ROW_TILES:.*]] = arith.addi %[[CEIL]]
// SM90A:       %[[TILES:.*]] = arith.muli %[[ROW_TILES]], %c2
// SM90A:       %[[PAIRS:.*]] = arith.minui %[[TILES]], %c66
// SM90A:       %[[AT_LEAST_ONE:.*]] = arith.maxui %[[PAIRS]], %c1
// SM90A:       %[[GRID:.*]] = arith.muli %[[AT_LEAST_ONE]], %c2
// SM90A:       scf.forall (%[[CTA:.*]]) in (%[[GRID]]) {
// SM90A:         %[[SLOT:.*]] = arith.divui %[[CTA]], %c2
// SM90A:         %[[STRIDE:.*]] = arith.divui %[[GRID]], %c2
// SM90A:         %[[RANK:.*]] = arith.remui %[[CTA]], %c2
// SM90A:         %[[LEFT:.*]] = arith.subi %[[TILES]], %[[SLOT]]
// SM90A:         %[[COUNT:.*]] = arith.ceildivui %[[LEFT]], %[[STRIDE]]
// SM90A:         %[[AFTER_ALL:.*]] = scf.for %[[I:.*]] = %c0 to %[[COUNT]] step %c1{{.*}} iter_args(%[[BEFORE:.*]] = %c0) -> (index) {
// SM90A:           %[[STEP:.*]] = arith.muli %[[I]], %[[STRIDE]]
// SM90A:           %[[LINEAR:.*]] = arith.addi %[[SLOT]], %[[STEP]]
// SM90A:           %[[BAND_TILES:.*]] = arith.muli %c2, %c8
// SM90A:           %[[ROW_TILE:.*]] = arith.addi
// SM90A:           %[[COLUMN_TILE:.*]] = arith.divui
// SM90A-NEXT:      %[[EXPERT:.*]], %[[BEGIN:.*]], %[[END:.*]] = moek.row_tile %arg2[%[[ROW_TILE]]] rows_per_tile 256 : memref<5xi32>
// SM90A-NEXT:      %[[HAS_ROWS:.*]] = arith.cmpi ult, %[[BEGIN]], %[[END]]
// SM90A-NEXT:      %[[NEXT:.*]] = scf.if %[[HAS_ROWS]] -> (index) {
// SM90A:             %[[OWN:.*]] = arith.muli %[[RANK]], %c128
// SM90A-NEXT:        %[[OWN_BEGIN:.*]] = arith.addi %[[BEGIN]], %[[OWN]]
// SM90A-NEXT:        %[[AFTER:.*]] = moek.grouped_matmul_tile silu_glu %arg0, %arg1, %arg2 owners(%arg3 : memref<32xi32>) into %arg4 tile(%[[EXPERT]], %[[OWN_BEGIN]], %[[END]], %[[COLUMN_TILE]]) k_tiles(%[[BEFORE]]) shape [128, 256, 64, 4, 8, 1] {cluster_size = 2 : i64, gather, top_k = 2 : i64} : {{.*}} -> index
// SM90A-NEXT:        scf.yield %[[AFTER]] : index
// SM90A-NEXT:      } else {
// SM90A-NEXT:        scf.yield %[[BEFORE]] : index
// SM90A-NEXT:      }
// SM90A-NEXT:      scf.yield %[[NEXT]] : index
// SM90A:       } {mapping = [#gpu.block<x>]}
// SM90A-NOT:   moek.grouped_matmul silu_glu
// gemm-cluster=1: single CTAs, a schedule of 128-row tiles, at most 132.
// SINGLE-LABEL: func.func @gather_glu
// SINGLE:      arith.ceildivui %{{.*}}, %c128
// SINGLE:      arith.minui %{{.*}}, %c132
// SINGLE:      moek.row_tile %arg2[%{{.*}}] rows_per_tile 128
// SINGLE-NOT:  arith.muli %{{.*}}, %c128
// SINGLE:      moek.grouped_matmul_tile silu_glu {{.*}} shape [128, 256, 64, 4, 8, 1] {gather, top_k = 2 : i64}
// Tiled then lowered for sm_90a: one persistent launch of pairs, 384
// threads; the producer's and the consumers' clones of the loop, the
// schedule looked up in the tile table, nothing of moek left.
// LOWERED90-LABEL: func.func @gather_glu
// LOWERED90:     gpu.launch clusters({{.*}}) in ({{.*}} = %c2{{.*}}) blocks({{.*}}) threads({{.*}}) in ({{.*}} = %c384
// LOWERED90-SAME: function(@moek_grouped_matmul_silu_glu)
// LOWERED90:     nvvm.setmaxregister  decrease 64
// LOWERED90:     scf.for
// LOWERED90:     nvvm.cp.async.bulk.tensor.shared.cluster.global
// LOWERED90:     nvvm.setmaxregister  increase 216
// LOWERED90:     scf.for
// LOWERED90:     nvvm.wgmma.mma_async
// LOWERED90-NOT: moek.
// LOWERED90-NOT: scf.forall
// A tile loop made for sm_90a cannot be lowered for another chip.
// NOT90: error: 'moek.grouped_matmul_tile' op is a tile of the sm_90a (wgmma) kernel's persistent loop; this GPU has no such kernel (chip=sm_90a makes it)
// LOWERED-LABEL: func.func @gather_glu
// LOWERED:     gpu.launch blocks({{.*}}) in ({{.*}} = %{{.*}}, {{.*}} = %c2, {{.*}} = %c1{{.*}}) threads({{.*}}) in ({{.*}} = %c256
// LOWERED-SAME: function(@moek_grouped_matmul_silu_glu)
// LOWERED:     nvvm.mma.sync
// LOWERED-NOT: moek.
// LOWERED-NOT: scf.forall
// CHIP: error: moek-tile-grouped-matmuls: chip 'sm_70' is not an NVIDIA architecture the kernels support
// DEPTH: error: moek-tile-grouped-matmuls: tensor-core-tile: tile '128x128x24x3': BK must be a multiple of 16
// CLUSTER: error: moek-tile-grouped-matmuls: gemm-cluster: '3' is not auto, 1 or 2
func.func @gather_glu(%x: memref<16x32xbf16>, %w1: memref<4x32x512xbf16>, %offsets: memref<5xi32>,
                      %owners: memref<32xi32>, %act: memref<32x256xbf16>) {
  moek.grouped_matmul silu_glu %x, %w1, %offsets owners(%owners : memref<32xi32>) into %act {gather, top_k = 2 : i64}
      : memref<16x32xbf16>, memref<4x32x512xbf16>, memref<5xi32>, memref<32x256xbf16>
  return
}

// An expert range travels to the schedule and the tile; 40 output columns
// make one column tile of 256.
// CHECK-LABEL: func.func @experts_scatter_add
// CHECK:      scf.forall (%[[ROW_TILE:.*]], %{{.*}}) in (%{{.*}}, %c1{{.*}})
// CHECK-NEXT:   moek.row_tile %arg2[%[[ROW_TILE]]] experts(%arg6, %arg7) rows_per_tile 128
// CHECK:        moek.grouped_matmul_tile scatter_add %arg0, %arg1, %arg2 experts(%arg6, %arg7) owners(%arg3 : memref<32xi32>) weights(%arg4 : memref<16x2xf32>) into %arg5 tile(
// LOWERED-LABEL: func.func @experts_scatter_add
// LOWERED:     function(@moek_grouped_matmul_scatter_add)
func.func @experts_scatter_add(%act: memref<16x24xbf16>, %w2: memref<4x24x40xbf16>, %offsets: memref<5xi32>,
                               %owners: memref<32xi32>, %weights: memref<16x2xf32>, %y: memref<16x40xf32>,
                               %first: index, %last: index) {
  moek.grouped_matmul scatter_add %act, %w2, %offsets experts(%first, %last)
      owners(%owners : memref<32xi32>) weights(%weights : memref<16x2xf32>) into %y {top_k = 2 : i64}
      : memref<16x24xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<16x40xf32>
  return
}

// f32 operands (and K or N not multiples of 8) stay on the SIMT kernel,
// which has no tiles: left whole.
// CHECK-LABEL: func.func @simt
// CHECK-NOT:   scf.forall
// CHECK:       moek.grouped_matmul store
func.func @simt(%a: memref<16x24xf32>, %w: memref<4x24x40xf32>, %offsets: memref<5xi32>, %c: memref<16x40xf32>) {
  moek.grouped_matmul store %a, %w, %offsets into %c
      : memref<16x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  return
}
