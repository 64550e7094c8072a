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
