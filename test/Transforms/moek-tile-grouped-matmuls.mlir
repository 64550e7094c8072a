// The tiling stage of the tensor-core GEMMs: a grouped matmul the mma.sync
// kernel takes becomes an scf.forall over its CTA tiles, mapped to GPU
// blocks: an upper bound of the row tiles (ceil(rows / BM) plus the
// experts, on the host) by the column tiles (N / BN, half for a GLU's
// outputs). Each tile asks moek.row_tile for its expert and rows, and a
// moek.grouped_matmul_tile computes it when it holds rows.
// RUN: moe-opt %s -moek-tile-grouped-matmuls | FileCheck %s
// RUN: moe-opt %s -moek-tile-grouped-matmuls=tensor-core-tile=64x128x32x3x2x2 | FileCheck %s --check-prefix=TILE
// RUN: moe-opt %s -moek-tile-grouped-matmuls=chip=sm_90a | FileCheck %s --check-prefix=SM90A
// Tiled then lowered: one launch a tile loop, named after its grouped
// matmul, a CTA of 256 threads per tile, nothing of moek left.
// RUN: moe-opt %s -moek-tile-grouped-matmuls -moek-lower-to-gpu | FileCheck %s --check-prefix=LOWERED
// RUN: not moe-opt %s -moek-tile-grouped-matmuls=chip=sm_70 2>&1 | FileCheck %s --check-prefix=CHIP
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
// The warpgroup kernel builds its own persistent loop: left whole.
// SM90A-LABEL: func.func @gather_glu
// SM90A-NOT:   scf.forall
// SM90A:       moek.grouped_matmul silu_glu
// LOWERED-LABEL: func.func @gather_glu
// LOWERED:     gpu.launch blocks({{.*}}) in ({{.*}} = %{{.*}}, {{.*}} = %c2, {{.*}} = %c1{{.*}}) threads({{.*}}) in ({{.*}} = %c256
// LOWERED-SAME: function(@moek_grouped_matmul_silu_glu)
// LOWERED:     nvvm.mma.sync
// LOWERED-NOT: moek.
// LOWERED-NOT: scf.forall
// CHIP: error: moek-tile-grouped-matmuls: chip 'sm_70' is not an NVIDIA architecture the kernels support
// DEPTH: error: moek-tile-grouped-matmuls: tensor-core-tile: tile '128x128x24x3': BK must be a multiple of 16
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
