// Each kernel becomes gpu.launch with one thread per item; the grouped
// matmul reads the expert offsets inside the kernel (they are device data)
// and its scatter-add epilogue is an f32 atomic. On bf16 operands with K
// and N multiples of 8 the grouped matmul runs on tensor cores.
// RUN: moe-opt %s -moek-lower-to-gpu | FileCheck %s --check-prefixes=CHECK,SM90
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_80 | FileCheck %s --check-prefixes=CHECK,SM80
// RUN: moe-opt %s -moek-lower-to-gpu=tensor-core-tile=128x256x64x3x2x4 | FileCheck %s --check-prefix=BIG-TILE

// CHECK-LABEL: func.func @grouped
// CHECK-NOT: memref.load
// CHECK: gpu.launch blocks(%[[BX:[a-z0-9]+]], {{.*}} threads(%[[TX:[a-z0-9]+]],
// CHECK: %[[ROW0:.*]] = arith.muli %[[BX]], %c256
// CHECK: arith.addi %[[ROW0]], %[[TX]]
// CHECK: memref.load %{{.*}} : memref<5xi32>
// CHECK: memref.atomic_rmw addf
// CHECK: gpu.terminator
func.func @grouped(%act: memref<16x24xf32>, %w2: memref<4x24x40xf32>, %offsets: memref<5xi32>,
                   %owners: memref<32xi32>, %weights: memref<16x2xf32>, %y: memref<16x40xf32>,
                   %first: index, %last: index) {
  moek.grouped_matmul scatter_add %act, %w2, %offsets experts(%first, %last)
      owners(%owners : memref<32xi32>) weights(%weights : memref<16x2xf32>) into %y {top_k = 2 : i64}
      : memref<16x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  return
}

// On sm_90 the scatter-add adds column pairs with one vector reduction.
// CHECK-LABEL: func.func @tensor_cores
// CHECK: gpu.launch
// CHECK: nvgpu.ldmatrix
// CHECK: nvvm.mma.sync
// SM90: memref.extract_aligned_pointer_as_index
// SM90: gpu.shuffle  xor
// SM90: llvm.inline_asm has_side_effects "red.relaxed.gpu.add.v4.f32 [$0], {$1, $2, $3, $4};", "l,f,f,f,f,~{memory}"
// SM90-NOT: memref.atomic_rmw
// SM80: memref.atomic_rmw addf
// SM80-NOT: llvm.inline_asm
// The tile is an option (for tuning): 128 x 256 outputs, 64 deep, 3 stages
// of (128 x 72 + 64 x 264) bf16 = 52224 bytes each.
// BIG-TILE-LABEL: func.func @tensor_cores
// BIG-TILE: dynamic_shared_memory_size %c156672_i32
func.func @tensor_cores(%act: memref<16x24xbf16>, %w2: memref<4x24x40xbf16>, %offsets: memref<5xi32>,
                        %owners: memref<32xi32>, %weights: memref<16x2xf32>, %y: memref<16x40xf32>,
                        %first: index, %last: index) {
  moek.grouped_matmul scatter_add %act, %w2, %offsets experts(%first, %last)
      owners(%owners : memref<32xi32>) weights(%weights : memref<16x2xf32>) into %y {top_k = 2 : i64}
      : memref<16x24xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<16x40xf32>
  return
}

// The router is two kernels, each named after its op: the scores GEMM into
// the op's f32 [T, E] scores buffer (tensor cores for bf16 with H and E
// multiples of 8), then one thread per token reads its row for the softmax
// and the top-k. The buffer is the op's (planned by moe-plan-memory): the
// lowering allocates and frees nothing of its own.
// CHECK-LABEL: func.func @route
// CHECK-SAME: %[[SCORES:[a-z0-9_]+]]: memref<?x16xf32>
// CHECK-NOT: memref.alloc
// CHECK: memref.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] output_shape [1, 32, 16]
// CHECK: gpu.launch {{.*}} function(@moek_route_scores)
// CHECK: nvvm.mma.sync
// CHECK: gpu.launch {{.*}} function(@moek_route)
// CHECK-NOT: nvvm.mma.sync
// CHECK: memref.load %[[SCORES]]
// CHECK: math.exp
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @route(%x: memref<?x32xbf16>, %w_gate: memref<32x16xbf16>,
                 %weights: memref<?x2xf32>, %indices: memref<?x2xi32>,
                 %scores: memref<?x16xf32>) {
  moek.route softmax top_k = 2 %x, %w_gate into %weights, %indices
      scores(%scores : memref<?x16xf32>)
      : memref<?x32xbf16>, memref<32x16xbf16>, memref<?x2xf32>, memref<?x2xi32>
  return
}

// f32 (or E not a multiple of 8): the scores kernel is one thread per
// (token, expert) dot product.
// CHECK-LABEL: func.func @route_simt
// CHECK-NOT: memref.alloc
// CHECK: gpu.launch {{.*}} function(@moek_route_scores)
// CHECK-NOT: nvvm.mma.sync
// CHECK: arith.mulf
// CHECK: gpu.launch {{.*}} function(@moek_route)
func.func @route_simt(%x: memref<?x32xf32>, %w_gate: memref<32x5xf32>,
                      %weights: memref<?x2xf32>, %indices: memref<?x2xi32>,
                      %scores: memref<?x5xf32>) {
  moek.route softmax top_k = 2 %x, %w_gate into %weights, %indices
      scores(%scores : memref<?x5xf32>)
      : memref<?x32xf32>, memref<32x5xf32>, memref<?x2xf32>, memref<?x2xi32>
  return
}

// The ranking runs in three launches over slices of 64 tokens, its
// per-slice counts in the op's planned partials buffer: nothing allocated.
// CHECK-LABEL: func.func @rank
// CHECK-SAME: %[[P:[a-z0-9_]+]]: memref<?x4xi32>
// CHECK-NOT: memref.alloc
// CHECK: gpu.launch
// CHECK: memref.store %{{.*}}, %[[P]]
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @rank(%indices: memref<?x2xi32>, %ranks: memref<?x2xi32>,
                %counts: memref<4xi32>, %partials: memref<?x4xi32>) {
  moek.rank_assignments %indices into %ranks, %counts
      partials(%partials : memref<?x4xi32>)
      : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
  return
}

// With the rest of the plan the ranking is two launches: the count pass, and
// the rank pass, each block of which first works out its slice's prefix, the
// kept counts and their scan across experts from all per-slice counts (block 0
// writes the counts and the offsets), then places each assignment's row and
// owner and clears the owners past the last kept row. moek.row_assignments
// alone is one launch, the clear and the scatter together.
// CHECK-LABEL: func.func @rank_plan
// CHECK-SAME: %[[C:[a-z0-9_]+]]: memref<4xi32>, %[[P:[a-z0-9_]+]]: memref<?x4xi32>, %[[OFF:[a-z0-9_]+]]: memref<5xi32>, %[[ROWS:[a-z0-9_]+]]: memref<?x2xi32>, %[[OWN:[a-z0-9_]+]]: memref<?xi32>
// CHECK: gpu.launch {{.*}} function(@moek_rank_assignments_count)
// CHECK-NOT: gpu.launch
// CHECK: gpu.launch {{.*}} function(@moek_rank_assignments_rank)
// CHECK: memref.load %[[P]]
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[C]]
// CHECK: memref.store %{{.*}}, %[[OFF]]
// CHECK: memref.store %{{.*}}, %[[ROWS]]
// CHECK: memref.store %{{.*}}, %[[OWN]]
// CHECK: memref.store %{{.*}}, %[[OWN]]
// CHECK: gpu.launch {{.*}} function(@moek_row_assignments)
// CHECK-NOT: gpu.launch
// CHECK: return
func.func @rank_plan(%indices: memref<?x2xi32>, %ranks: memref<?x2xi32>,
                     %counts: memref<4xi32>, %partials: memref<?x4xi32>,
                     %offsets: memref<5xi32>, %rows: memref<?x2xi32>,
                     %owners: memref<?xi32>) {
  moek.rank_assignments %indices into %ranks, %counts
      partials(%partials : memref<?x4xi32>) offsets(%offsets : memref<5xi32>)
      rows(%rows : memref<?x2xi32>) owners(%owners : memref<?xi32>)
      : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
  moek.row_assignments %indices, %ranks, %offsets into %owners
      : memref<?x2xi32>, memref<?x2xi32>, memref<5xi32>, memref<?xi32>
  return
}

// Fills of dense 16- or 32-bit buffers are the driver's memset; others (f64
// here) a kernel of one thread per element.
// CHECK-LABEL: func.func @fills
// CHECK: gpu.memset %{{.*}}, %{{.*}} : memref<16x32xf32>, f32
// CHECK: gpu.memset %{{.*}}, %{{.*}} : memref<8xbf16>, bf16
// CHECK: gpu.launch {{.*}} function(@linalg_fill)
// CHECK: memref.store %{{.*}} : memref<4xf64>
func.func @fills(%acc: memref<16x32xf32>, %half: memref<8xbf16>, %wide: memref<4xf64>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : bf16
  %two = arith.constant 2.0 : f64
  linalg.fill ins(%zero : f32) outs(%acc : memref<16x32xf32>)
  linalg.fill ins(%one : bf16) outs(%half : memref<8xbf16>)
  linalg.fill ins(%two : f64) outs(%wide : memref<4xf64>)
  return
}
