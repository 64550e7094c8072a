// moek-lower-to-gpu of the expert-parallel kernels: the collectives are
// calls of moert's CUDA entry points (NCCL, device pointers), with the CPU
// ABI's arguments; the routing of the received rows and the moves between
// assignment slots and rows are kernels named after their op. The host sums
// the received counts (to size the received buffer) from a host copy that
// moe-place-buffers-on-gpu makes; the device buffer is never read by the host.
// RUN: moe-opt %s -split-input-file --moe-lower-to-kernels=kernel-scratch-buffers=true --moek-lower-to-gpu | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-lower-to-kernels=kernel-scratch-buffers=true --moek-lower-to-gpu --moe-place-buffers-on-gpu | FileCheck %s --check-prefix=PLACED

// CHECK-LABEL: func.func @out
// CHECK: %[[RC:.*]] = memref.alloc() {moe.buffer = "collectives.received_counts"} : memref<4xi32>
// CHECK: llvm.call @moert_cuda_exchange_counts_v1(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (!llvm.ptr, !llvm.ptr, i64, i64) -> i32
// CHECK: %[[N:.*]] = scf.for
// CHECK: memref.load %[[RC]]
// CHECK: %[[RECV:.*]] = memref.alloc(%[[N]]) {moe.buffer = "collectives.received_rows"} : memref<?x64xf32>
// Rows of 64 f32: 256 bytes.
// CHECK: %[[EVENT:.*]] = llvm.call @moert_cuda_all_to_all_start_v1(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %c256_i64) : (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64) -> i64
// The received rows' routing runs while they travel: a thread per segment.
// CHECK: gpu.launch {{.*}} function(@moek_received_assignments)
// CHECK: gpu.launch {{.*}} function(@moek_rank_assignments_count)
// CHECK: llvm.call @moert_cuda_event_wait_v1(%[[EVENT]]) : (i64) -> i32
// CHECK-NEXT: return
// CHECK-NOT: moert_exchange_counts_v1
// CHECK-NOT: moek.
// CHECK: llvm.func @moert_cuda_exchange_counts_v1(!llvm.ptr, !llvm.ptr, i64, i64) -> i32
// CHECK: llvm.func @moert_cuda_all_to_all_start_v1(
// CHECK: llvm.func @moert_cuda_event_wait_v1(i64) -> i32

// PLACED-LABEL: func.func @out
// PLACED: %[[RC:.*]] = gpu.alloc () : memref<4xi32>
// PLACED: llvm.call @moert_cuda_exchange_counts_v1
// PLACED: %[[HOST:.*]] = memref.alloc() : memref<4xi32>
// PLACED: gpu.memcpy async [%{{.*}}] %[[HOST]], %[[RC]] : memref<4xi32>, memref<4xi32>
// PLACED: scf.for
// PLACED: memref.load %[[HOST]]
// PLACED: memref.dealloc %[[HOST]]
// PLACED: llvm.call @moert_cuda_all_to_all_start_v1
func.func @out(%rows: tensor<32x64xf32>, %loads: tensor<4xi32>) -> (tensor<?x64xf32>, tensor<?x1xf32>) {
  %recv, %counts = moe.all_to_all %rows, %loads {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
  %w, %r = moe.local_routing %counts {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
  %l = moe.expert_loads %r : (!moe.routing<tokens = ?, experts = 2, top_k = 1>) -> tensor<2xi32>
  return %recv, %w : tensor<?x64xf32>, tensor<?x1xf32>
}

// -----

// The way back (`expecting`): no exchange of counts, a static buffer.
// CHECK-LABEL: func.func @back
// CHECK-NOT: exchange_counts
// CHECK: llvm.call @moert_cuda_all_to_all_start_v1
// CHECK: llvm.call @moert_cuda_event_wait_v1
func.func @back(%rows: tensor<?x64xf32>, %counts: tensor<4xi32>, %loads: tensor<4xi32>) -> tensor<32x64xf32> {
  %back, %c = moe.all_to_all %rows, %counts expecting %loads {ranks = 2 : i64}
      : (tensor<?x64xf32>, tensor<4xi32>, tensor<4xi32>) -> (tensor<32x64xf32>, tensor<4xi32>)
  return %back : tensor<32x64xf32>
}

// -----

// The EP group's loads: NCCL's all-reduce (4 counts, 2 ranks).
// CHECK-LABEL: func.func @group
// CHECK-DAG: %[[FOUR:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2 : i64
// CHECK: llvm.call @moert_cuda_all_reduce_sum_i32_v1(%{{.*}}, %{{.*}}, %[[FOUR]], %[[TWO]]) : (!llvm.ptr, !llvm.ptr, i64, i64) -> i32
func.func @group(%loads: tensor<4xi32>) -> tensor<4xi32> {
  %g = moe.all_reduce %loads {ranks = 2 : i64} : (tensor<4xi32>) -> tensor<4xi32>
  return %g : tensor<4xi32>
}
