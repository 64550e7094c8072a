// The tensor-core attention's staging. q, k, v in the storage type (what the
// CUDA pipeline makes) are copied into shared memory by cp.async, 16 bytes a
// copy: Q and key block 0 in the prologue (two commit groups, Q waited for),
// then in each key block the next block's K and V go out into the other of
// two stages before the block's own are waited for ("all but the newest
// group"), and a barrier after the block's products keeps a stage from being
// refilled while a warp still reads it. f32 q, k, v are loaded 16 bytes (four
// f32) at a time, rounded, and stored 8 bytes at a time, into one stage.
// RUN: moe-opt %s -moek-lower-to-gpu=chip=sm_90a | FileCheck %s

// CHECK-LABEL: func.func @storage_type_operands
// CHECK: gpu.launch
// CHECK-SAME: function(@moek_flash_attention_mma)
// CHECK: nvgpu.device_async_copy %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}], 8, %{{.*}} {bypassL1} : memref<2x100x64xbf16> to memref<64x24xbf16, #gpu.address_space<workgroup>>
// CHECK-NEXT: nvvm.cp.async.commit.group
// CHECK: nvgpu.device_async_copy {{.*}} : memref<2x100x32xbf16> to memref<2x64x24xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_copy {{.*}} : memref<2x100x32xbf16> to memref<2x64x24xbf16, #gpu.address_space<workgroup>>
// CHECK-NEXT: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 1
// CHECK-NEXT: gpu.barrier
// CHECK: scf.for
// CHECK: scf.if
// CHECK: nvgpu.device_async_copy {{.*}} to memref<2x64x24xbf16, #gpu.address_space<workgroup>>
// CHECK: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 1
// CHECK-NEXT: gpu.barrier
// CHECK: nvgpu.ldmatrix %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] {numTiles = 4 : i32, transpose = false} : memref<2x64x24xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.ldmatrix %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] {numTiles = 4 : i32, transpose = true} : memref<2x64x24xbf16, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: scf.yield
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NOT: vector.load
func.func @storage_type_operands(%q: memref<2x100x64xbf16>, %k: memref<2x100x32xbf16>,
                                 %v: memref<2x100x32xbf16>, %o: memref<2x100x64xbf16>) {
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x100x64xbf16>, memref<2x100x32xbf16>, memref<2x100x32xbf16>, memref<2x100x64xbf16>
  return
}

// CHECK-LABEL: func.func @f32_operands
// CHECK-NOT: device_async_copy
// CHECK: vector.load %{{.*}} {alignment = 16 : i64} : memref<2x100x64xf32>, vector<4xf32>
// CHECK-NEXT: arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// CHECK: vector.store %{{.*}} {alignment = 8 : i64} : memref<64x24xbf16, #gpu.address_space<workgroup>>, vector<4xbf16>
// CHECK: scf.for
// CHECK: gpu.barrier
// CHECK: vector.load %{{.*}} : memref<2x100x32xf32>, vector<4xf32>
// CHECK: vector.store %{{.*}} : memref<1x64x24xbf16, #gpu.address_space<workgroup>>, vector<4xbf16>
// CHECK: gpu.barrier
// CHECK-NOT: device_async_copy
func.func @f32_operands(%q: memref<2x100x64xf32>, %k: memref<2x100x32xf32>,
                        %v: memref<2x100x32xf32>, %o: memref<2x100x64xbf16>) {
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x100x64xf32>, memref<2x100x32xf32>, memref<2x100x32xf32>, memref<2x100x64xbf16>
  return
}
