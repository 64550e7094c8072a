// After gpu-async-region, a call's GPU work stays on one stream: a host
// wait before a TMA descriptor's encoding (which reads no device memory) is
// removed and the work after it continues the stream; the wait before the
// return goes too (moert waits, or fences the caller's stream). A host wait
// before an op that may read device memory stays.
// RUN: moe-opt %s -split-input-file -moe-join-gpu-streams | FileCheck %s

module attributes {gpu.container_module} {
gpu.module @kernels {
  gpu.func @k(%m: memref<64xbf16>) kernel { gpu.return }
}

// CHECK-LABEL: func.func @descriptor_between_kernels
// CHECK: %[[S:.*]] = gpu.wait async
// CHECK: %[[T:.*]] = gpu.launch_func async [%[[S]]] @kernels::@k
// CHECK-NOT: gpu.wait
// CHECK: nvgpu.tma.create.descriptor
// CHECK-NOT: gpu.wait
// CHECK: gpu.launch_func async [%[[T]]] @kernels::@k
// CHECK-NOT: gpu.wait
// CHECK: return
func.func @descriptor_between_kernels(%m: memref<64xbf16>) {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %s = gpu.wait async
  %t = gpu.launch_func async [%s] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t]
  %cast = memref.cast %m : memref<64xbf16> to memref<*xbf16>
  %d = nvgpu.tma.create.descriptor %cast box[%c64] : memref<*xbf16> -> !nvgpu.tensormap.descriptor<tensor = memref<64xbf16, 3>, swizzle = none, l2promo = none, oob = zero, interleave = none>
  %s2 = gpu.wait async
  %t2 = gpu.launch_func async [%s2] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t2]
  return
}
}

// -----

module attributes {gpu.container_module} {
gpu.module @kernels {
  gpu.func @k(%m: memref<64xbf16>) kernel { gpu.return }
}
func.func private @reads_device_memory(memref<64xbf16>)

// CHECK-LABEL: func.func @host_call_between_kernels
// CHECK: %[[T:.*]] = gpu.launch_func async
// CHECK-NEXT: gpu.wait [%[[T]]]
// CHECK-NEXT: call @reads_device_memory
// CHECK-NEXT: %[[S2:.*]] = gpu.wait async
// CHECK-NEXT: gpu.launch_func async [%[[S2]]]
func.func @host_call_between_kernels(%m: memref<64xbf16>) {
  %c1 = arith.constant 1 : index
  %s = gpu.wait async
  %t = gpu.launch_func async [%s] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t]
  func.call @reads_device_memory(%m) : (memref<64xbf16>) -> ()
  %s2 = gpu.wait async
  %t2 = gpu.launch_func async [%s2] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t2]
  return
}
}

// -----

// moert's CUDA collectives order themselves after the call's stream and that stream after
// them with events, on the device: no host wait before them, and the kernels around them
// stay on one stream (the host never waits for an all-to-all's split sizes).
module attributes {gpu.container_module} {
gpu.module @kernels {
  gpu.func @k(%m: memref<64xbf16>) kernel { gpu.return }
}
llvm.func @moert_cuda_exchange_counts_v1(!llvm.ptr, !llvm.ptr, i64, i64) -> i32

// CHECK-LABEL: func.func @collective_between_kernels
// CHECK: %[[T:.*]] = gpu.launch_func async
// CHECK-NOT: gpu.wait
// CHECK: llvm.call @moert_cuda_exchange_counts_v1
// CHECK-NOT: gpu.wait
// CHECK: gpu.launch_func async [%[[T]]]
// CHECK-NOT: gpu.wait
// CHECK: return
func.func @collective_between_kernels(%m: memref<64xbf16>, %p: !llvm.ptr) {
  %c1 = arith.constant 1 : index
  %n = llvm.mlir.constant(4 : i64) : i64
  %s = gpu.wait async
  %t = gpu.launch_func async [%s] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t]
  %r = llvm.call @moert_cuda_exchange_counts_v1(%p, %p, %n, %n) : (!llvm.ptr, !llvm.ptr, i64, i64) -> i32
  %s2 = gpu.wait async
  %t2 = gpu.launch_func async [%s2] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t2]
  return
}
}

// -----

// Any other runtime call may read device memory: the host wait before it stays.
module attributes {gpu.container_module} {
gpu.module @kernels {
  gpu.func @k(%m: memref<64xbf16>) kernel { gpu.return }
}
llvm.func @moert_exchange_counts_v1(!llvm.ptr, !llvm.ptr, i64, i64) -> i32

// CHECK-LABEL: func.func @cpu_collective_between_kernels
// CHECK: %[[T:.*]] = gpu.launch_func async
// CHECK-NEXT: gpu.wait [%[[T]]]
// CHECK: llvm.call @moert_exchange_counts_v1
func.func @cpu_collective_between_kernels(%m: memref<64xbf16>, %p: !llvm.ptr) {
  %c1 = arith.constant 1 : index
  %n = llvm.mlir.constant(4 : i64) : i64
  %s = gpu.wait async
  %t = gpu.launch_func async [%s] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t]
  %r = llvm.call @moert_exchange_counts_v1(%p, %p, %n, %n) : (!llvm.ptr, !llvm.ptr, i64, i64) -> i32
  %s2 = gpu.wait async
  %t2 = gpu.launch_func async [%s2] @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%m : memref<64xbf16>)
  gpu.wait [%t2]
  return
}
}
