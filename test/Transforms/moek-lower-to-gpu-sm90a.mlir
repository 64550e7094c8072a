// On sm_90a a bf16/f16 grouped matmul becomes the warpgroup kernel: the host
// makes b's tensor map (boxes of 1 x 64 x 64 into 128B-swizzled shared
// memory) and passes it as a pointer; one persistent launch of 384 threads
// (at most one CTA per multiprocessor) with the mbarrier ring in dynamic
// shared memory; the producer warpgroup (fewer registers) issues the TMA
// copies and the gathered cp.async copies; the consumers (more registers)
// fence the async proxy and multiply with wgmma, N-major b (layout row).
// With transpose_b (the backward's g = dy w2^T and dx += dh w1^T), b [E, N, K]
// is wgmma's own K-major B: one TMA box of 256 rows of n by 64 k a stage (the
// bytes of the four N-major boxes; 128 rows a CTA when a pair of CTAs shares
// it), B's descriptors built like A's (leading
// 16 bytes, stride 1024, 128B swizzle) and B read as stored (layout col).
// sm_90 and sm_80 keep mma.sync; the router (no groups) stays on mma.sync on
// sm_90a.
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_90a | FileCheck %s
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_90 | FileCheck %s --check-prefix=SM90
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_80 | FileCheck %s --check-prefix=SM80
// RUN: not moe-opt %s -moek-lower-to-gpu=chip=sm_80a 2>&1 | FileCheck %s --check-prefix=ARCH

// Not tiled before (moek-tile-grouped-matmuls), the grouped matmul gets its
// persistent tile loop in place: in pairs of CTAs (gemm-cluster=auto), at
// most 66 pairs, twice that many CTAs, each pair a cluster of two.
// CHECK-LABEL: func.func @gather_glu
// CHECK: %[[PAIRS:.*]] = arith.maxui %{{.*}}, %c1
// CHECK: %[[GRID:.*]] = arith.muli %[[PAIRS]], %c2
// CHECK: %[[UNRANKED:.*]] = memref.cast %{{.*}} : memref<4x64x96xbf16> to memref<*xbf16>
// CHECK: %[[MAP:.*]] = nvgpu.tma.create.descriptor %[[UNRANKED]] box[{{.*}}] : memref<*xbf16> -> <tensor = memref<1x64x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b
// CHECK: %[[PTR:.*]] = builtin.unrealized_conversion_cast %[[MAP]]
// CHECK: gpu.launch clusters({{.*}}) in ({{.*}} = %c2{{.*}}, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}) blocks(%{{.*}}) in (%{{.*}} = %[[GRID]], %{{.*}} = %c1{{.*}}) threads(%{{.*}}) in (%{{.*}} = %c384
// CHECK-SAME: dynamic_shared_memory_size %c197736_i32
// CHECK: nvvm.mbarrier.init
// CHECK: gpu.barrier
// The tile table (4 experts: 5 first rows and 5 row-tile sums, 40 bytes
// after the mbarriers): the first rows copied, then thread 0's sums.
// CHECK: llvm.store %{{.*}}, %{{.*}} : i32, !llvm.ptr<3>
// CHECK: gpu.barrier
// CHECK: llvm.load %{{.*}} : !llvm.ptr<3> -> i32
// CHECK: llvm.store %{{.*}}, %{{.*}} : i32, !llvm.ptr<3>
// CHECK: gpu.barrier
// CHECK: nvvm.setmaxregister  decrease 64
// A tile's expert: a binary search of the table (ceil(log2(5)) = 3 loads).
// CHECK-COUNT-3: llvm.load %{{.*}} : !llvm.ptr<3> -> i32
// The gather prologue: a's row is owners[r] / top_k.
// CHECK: %[[OWNER:.*]] = memref.load %{{.*}} : memref<64xi32>
// CHECK: %[[OWNER_INDEX:.*]] = arith.index_cast %[[OWNER]]
// CHECK: arith.divui %[[OWNER_INDEX]], %c2
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.mbarrier.arrive.expect_tx
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %[[PTR]], %{{.*}}, box[
// CHECK: nvgpu.device_async_copy
// CHECK: nvvm.cp.async.mbarrier.arrive %{{.*}} {noinc = true}
// CHECK: nvvm.setmaxregister  increase 216
// CHECK: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 256, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <row>]
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: nvvm.wgmma.wait.group.sync.aligned 1
// CHECK: nvvm.mbarrier.arrive
// GLU epilogue: silu(gate) * up, its exp and division approximate (afn: the
// GPU's ex2.approx and div.approx); a lane's two adjacent columns narrowed to
// bf16 and packed; a quad's lanes trade the words so that each writes 8
// columns (16 bytes) at once.
// CHECK: math.exp %{{.*}} fastmath<afn> : f32
// CHECK: arith.divf %{{.*}} fastmath<afn> : f32
// CHECK: vector.bitcast %{{.*}} : vector<2xbf16> to vector<1xi32>
// CHECK: gpu.shuffle  xor
// CHECK: llvm.inline_asm has_side_effects "st.global.v4.b32 [$0], {$1, $2, $3, $4};"
// SM90-LABEL: func.func @gather_glu
// SM90-NOT: wgmma
// SM90: nvvm.mma.sync
func.func @gather_glu(%x: memref<32x64xbf16>, %w1: memref<4x64x96xbf16>, %offsets: memref<5xi32>,
                      %owners: memref<64xi32>, %act: memref<64x48xbf16>) {
  moek.grouped_matmul silu_glu %x, %w1, %offsets owners(%owners : memref<64xi32>)
      into %act {gather, top_k = 2 : i64}
      : memref<32x64xbf16>, memref<4x64x96xbf16>, memref<5xi32>, memref<64x48xbf16>
  return
}

// g = dy[t] w2[e]^T: K = 64 and N = 320 (two column tiles, the second
// partly past N: the TMA box's rows there are zero-filled).
// CHECK-LABEL: func.func @store_transposed_b
// CHECK: %[[B:.*]] = memref.cast %{{.*}} : memref<4x320x64xbf16> to memref<*xbf16>
// CHECK: nvgpu.tma.create.descriptor %[[B]] box[{{.*}}] : memref<*xbf16> -> <tensor = memref<1x256x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b
// CHECK: gpu.launch
// CHECK-SAME: function(@moek_grouped_matmul_store_transposed_b)
// CHECK: nvvm.mbarrier.arrive.expect_tx
// One box a stage.
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK-NOT: nvvm.cp.async.bulk.tensor
// CHECK: nvgpu.device_async_copy
// A's and B's descriptors alike: (16 >> 4) << 16 | (1024 >> 4) << 32 |
// 1 << 62, never the N-major B's (leading 8192 bytes: 4611686293338849280).
// CHECK-NOT: arith.constant 4611686293338849280 : i64
// CHECK: arith.constant 4611686293305360384 : i64
// CHECK-NOT: arith.constant 4611686293338849280 : i64
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 256, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK: memref.store %{{.*}} : memref<64x320xf32>
// SM80-LABEL: func.func @store_transposed_b
// SM80-NOT: wgmma
// SM80-NOT: nvgpu.tma
// SM80: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false}
// SM80: nvvm.mma.sync
func.func @store_transposed_b(%dy: memref<32x64xbf16>, %w2: memref<4x320x64xbf16>, %offsets: memref<5xi32>,
                              %owners: memref<64xi32>, %g: memref<64x320xf32>) {
  moek.grouped_matmul store %dy, %w2, %offsets owners(%owners : memref<64xi32>)
      into %g {gather, top_k = 2 : i64, transpose_b}
      : memref<32x64xbf16>, memref<4x320x64xbf16>, memref<5xi32>, memref<64x320xf32>
  return
}

// dx += dh w1[e]^T: K = 72, not a multiple of 64 (the last k tile's columns
// past K are zero in both operands), N = 40. Its rows (dh's) are not
// gathered, so it runs in pairs of CTAs (gemm-cluster=auto): each CTA loads
// 128 of the tile's 256 rows of b, multicast to both.
// CHECK-LABEL: func.func @scatter_add_transposed_b
// CHECK: nvgpu.tma.create.descriptor %{{.*}} : memref<*xbf16> -> <tensor = memref<1x128x64xbf16, #gpu.address_space<workgroup>>
// CHECK: gpu.launch clusters({{.*}}) in ({{.*}} = %c2{{.*}}, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}) blocks
// CHECK-SAME: function(@moek_grouped_matmul_scatter_add_transposed_b)
// CHECK: gpu.cluster_block_id x
// CHECK: nvvm.cluster.arrive
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global {{.*}} multicast_mask = %c3_i16
// CHECK-NOT: nvvm.cp.async.bulk.tensor
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global {{.*}} box[{{.*}}] : !llvm.ptr<7>, !llvm.ptr
// CHECK-NOT: nvgpu.device_async_copy
// CHECK: nvvm.wgmma.mma_async {{.*}} B[<bf16>, <one>, <col>]
// CHECK: red.relaxed.gpu.add.v4.f32
// SM80-LABEL: func.func @scatter_add_transposed_b
// SM80-NOT: wgmma
// SM80: nvvm.mma.sync
func.func @scatter_add_transposed_b(%dh: memref<64x72xbf16>, %w1: memref<4x40x72xbf16>, %offsets: memref<5xi32>,
                                    %owners: memref<64xi32>, %dx: memref<32x40xf32>) {
  moek.grouped_matmul scatter_add %dh, %w1, %offsets owners(%owners : memref<64xi32>)
      into %dx {top_k = 2 : i64, transpose_b}
      : memref<64x72xbf16>, memref<4x40x72xbf16>, memref<5xi32>, memref<32x40xf32>
  return
}

// ARCH: error: moek-lower-to-gpu: chip 'sm_80a' is not an NVIDIA architecture the kernels support (sm_80, sm_86, sm_87, sm_89, sm_90, sm_90a)
