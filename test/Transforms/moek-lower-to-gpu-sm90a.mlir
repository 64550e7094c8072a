// On sm_90a a bf16/f16 grouped matmul becomes the warpgroup kernel: the host
// makes b's tensor map (boxes of 1 x 64 x 64 into 128B-swizzled shared
// memory) and passes it as a pointer; one persistent launch of 384 threads
// (at most one CTA per multiprocessor) with the mbarrier ring in dynamic
// shared memory; the producer warpgroup (fewer registers) issues the TMA
// copies and the gathered cp.async copies; the consumers (more registers)
// fence the async proxy and multiply with wgmma, N-major b (layout row).
// sm_90 keeps mma.sync; the router (no groups) stays on mma.sync on sm_90a.
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_90a | FileCheck %s
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_90 | FileCheck %s --check-prefix=SM90
// RUN: not moe-opt %s -moek-lower-to-gpu=chip=sm_80a 2>&1 | FileCheck %s --check-prefix=ARCH

// CHECK-LABEL: func.func @gather_glu
// CHECK: %[[UNRANKED:.*]] = memref.cast %{{.*}} : memref<4x64x96xbf16> to memref<*xbf16>
// CHECK: %[[MAP:.*]] = nvgpu.tma.create.descriptor %[[UNRANKED]] box[{{.*}}] : memref<*xbf16> -> <tensor = memref<1x64x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b
// CHECK: %[[PTR:.*]] = builtin.unrealized_conversion_cast %[[MAP]]
// CHECK: %[[GRID:.*]] = arith.maxui %{{.*}}, %c1
// CHECK: gpu.launch blocks(%{{.*}}) in (%{{.*}} = %[[GRID]], %{{.*}} = %c1{{.*}}) threads(%{{.*}}) in (%{{.*}} = %c384
// CHECK-SAME: dynamic_shared_memory_size %c197696_i32
// CHECK: nvvm.mbarrier.init
// CHECK: gpu.barrier
// CHECK: nvvm.setmaxregister  decrease 40
// The gather prologue: a's row is owners[r] / top_k.
// CHECK: %[[OWNER:.*]] = memref.load %{{.*}} : memref<64xi32>
// CHECK: %[[OWNER_INDEX:.*]] = arith.index_cast %[[OWNER]]
// CHECK: arith.divui %[[OWNER_INDEX]], %c2
// CHECK: nvvm.mbarrier.try_wait.parity
// CHECK: nvvm.mbarrier.arrive.expect_tx
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %[[PTR]], %{{.*}}, box[
// CHECK: nvgpu.device_async_copy
// CHECK: nvvm.cp.async.mbarrier.arrive %{{.*}} {noinc = true}
// CHECK: nvvm.setmaxregister  increase 232
// CHECK: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 256, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <row>]
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: nvvm.wgmma.wait.group.sync.aligned 1
// CHECK: nvvm.mbarrier.arrive
// GLU epilogue: silu(gate) * up, stored as bf16.
// CHECK: math.exp
// CHECK: memref.store %{{.*}} : memref<64x48xbf16>
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

// ARCH: error: moek-lower-to-gpu: chip 'sm_80a' is not an NVIDIA architecture the kernels support (sm_80, sm_86, sm_87, sm_89, sm_90, sm_90a)
