// On the CUDA target the host's buffers become device buffers (synchronous
// gpu ops, which gpu-async-region later chains on one stream); host code
// that would touch a buffer's elements is an error.
// RUN: moe-opt %s -split-input-file -verify-diagnostics -moe-place-buffers-on-gpu | FileCheck %s

// CHECK-LABEL: func.func @buffers
// CHECK: %[[M:.*]] = gpu.alloc  (%{{.*}}) : memref<?xf32>
// CHECK-NEXT: gpu.memcpy  %[[M]], %{{.*}} : memref<?xf32>, memref<?xf32>
// CHECK-NEXT: gpu.dealloc  %[[M]] : memref<?xf32>
// CHECK-NOT: gpu.wait
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.dealloc
// CHECK-NOT: memref.copy
func.func @buffers(%in: memref<?xf32>, %n: index) {
  %m = memref.alloc(%n) : memref<?xf32>
  memref.copy %in, %m : memref<?xf32> to memref<?xf32>
  memref.dealloc %m : memref<?xf32>
  return
}

// -----

func.func @host_reads_device(%m: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'memref.load' op accesses a buffer from host code, but on the CUDA target every buffer lives on the device}}
  %v = memref.load %m[%c0] : memref<4xf32>
  return %v : f32
}

// -----

// A count array (1-D i32, static size) that host code sums, as the
// expert-parallel all-to-all does to size its received buffer: the loop
// reads a host copy made right before it and freed after it; the device
// buffer itself is never touched by the host.
// CHECK-LABEL: func.func @host_sums_counts
// CHECK: %[[DEV:.*]] = gpu.alloc () : memref<4xi32>
// CHECK: %[[HOST:.*]] = memref.alloc() : memref<4xi32>
// CHECK: %[[READY:.*]] = gpu.wait async
// CHECK: %[[DONE:.*]] = gpu.memcpy async [%[[READY]]] %[[HOST]], %[[DEV]] : memref<4xi32>, memref<4xi32>
// CHECK: gpu.wait [%[[DONE]]]
// CHECK: %[[SUM:.*]] = scf.for
// CHECK: memref.load %[[HOST]][%{{.*}}] : memref<4xi32>
// CHECK: memref.dealloc %[[HOST]] : memref<4xi32>
// CHECK: return %[[SUM]]
func.func @host_sums_counts() -> i32 {
  %counts = memref.alloc() : memref<4xi32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0 : i32
  %sum = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %zero) -> i32 {
    %v = memref.load %counts[%i] : memref<4xi32>
    %next = arith.addi %acc, %v : i32
    scf.yield %next : i32
  }
  return %sum : i32
}

// -----

// Stores stay an error, count array or not.
func.func @host_writes_counts(%m: memref<4xi32>, %v: i32) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'memref.store' op accesses a buffer from host code, but on the CUDA target every buffer lives on the device}}
  memref.store %v, %m[%c0] : memref<4xi32>
  return
}

// -----

// A constant array is host memory: kernels read a device copy, made where
// the host takes its address and freed at the end of the block.
// CHECK-LABEL: func.func @constant_on_device
// CHECK: %[[G:.*]] = memref.get_global @ones : memref<4xf32>
// CHECK: %[[D:.*]], %[[A:.*]] = gpu.alloc async [%{{.*}}] () : memref<4xf32>
// CHECK: %[[C:.*]] = gpu.memcpy async [%[[A]]] %[[D]], %[[G]] : memref<4xf32>, memref<4xf32>
// CHECK: gpu.wait [%[[C]]]
// CHECK: gpu.launch
// CHECK: memref.load %[[D]]
// CHECK: gpu.dealloc async [%{{.*}}] %[[D]] : memref<4xf32>
// CHECK-NEXT: gpu.wait
// CHECK-NEXT: return
memref.global "private" constant @ones : memref<4xf32> = dense<1.0>
func.func @constant_on_device(%out: memref<4xf32>) {
  %c1 = arith.constant 1 : index
  %g = memref.get_global @ones : memref<4xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1)
             threads(%tx, %ty, %tz) in (%u = %c1, %v = %c1, %w = %c1) {
    %v0 = memref.load %g[%tx] : memref<4xf32>
    memref.store %v0, %out[%tx] : memref<4xf32>
    gpu.terminator
  }
  return
}

// -----

// A copy between views (a chunk of rows at an offset) is a kernel: the GPU
// runtime's memcpy takes plain arrays only.
// CHECK-LABEL: func.func @copy_of_a_view
// CHECK-NOT: gpu.memcpy
// CHECK: gpu.launch {{.*}} function(@moe_copy)
// CHECK: %[[V:.*]] = memref.load %{{.*}} : memref<8x32xf32, strided<[32, 1], offset: 256>>
// CHECK: memref.store %[[V]], %{{.*}} : memref<8x32xf32>
func.func @copy_of_a_view(%x: memref<16x32xf32>, %chunk: memref<8x32xf32>) {
  %view = memref.subview %x[8, 0] [8, 32] [1, 1] : memref<16x32xf32> to memref<8x32xf32, strided<[32, 1], offset: 256>>
  memref.copy %view, %chunk : memref<8x32xf32, strided<[32, 1], offset: 256>> to memref<8x32xf32>
  return
}
