// moe-lower-to-kernels of the expert-parallel ops: moe.all_to_all exchanges its split sizes,
// sizes the received buffer by their sum and starts moving the rows on the communication
// stream, waiting just before the rows' first use (here: the return); with `expecting` the
// counts are known and nothing is exchanged. moe.local_routing is the routing
// plan of the received rows (dropless, one assignment per row), which planOf reads like a
// gate's (moe.expert_loads consumes it here).
// RUN: moe-opt %s --moe-lower-to-kernels | FileCheck %s
// RUN: moe-opt %s --moe-lower-to-kernels --moek-lower-to-loops | FileCheck %s --check-prefix=LOOPS
// With device-split-sizes (the CUDA pipeline) the host reads no count: the received rows and
// the local routing hold R times the rows sent (2 x 32), those past the counts no expert's.
// RUN: moe-opt %s --moe-lower-to-kernels=device-split-sizes=true --canonicalize | FileCheck %s --check-prefix=DEVICE

// DEVICE-LABEL: func.func @out
// DEVICE-NOT: scf.for
// DEVICE: moek.exchange_counts
// DEVICE: %[[RECV:.*]] = memref.alloc() {moe.buffer = "collectives.received_rows"} : memref<64x64xf32>
// DEVICE: %[[RV:.*]] = memref.cast %[[RECV]] : memref<64x64xf32> to memref<?x64xf32>
// DEVICE: moek.all_to_all_start %{{.*}}, %{{.*}}, %{{.*}} into %[[RV]]
// DEVICE: memref.alloc() {moe.buffer = "routing.received_indices"} : memref<64x1xi32>
// DEVICE: moek.received_assignments
// DEVICE-NOT: scf.for
// DEVICE: return

// CHECK-LABEL: func.func @out
// CHECK: %[[ROWS:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<32x64xf32> to memref<32x64xf32>
// CHECK: %[[COUNTS:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<4xi32> to memref<4xi32>
// CHECK: %[[RC:.*]] = memref.alloc() {moe.buffer = "collectives.received_counts"} : memref<4xi32>
// CHECK: moek.exchange_counts %[[COUNTS]] into %[[RC]] {ranks = 2 : i64}
// CHECK: %[[N:.*]] = scf.for
// CHECK: %[[RECV:.*]] = memref.alloc(%[[N]]) {moe.buffer = "collectives.received_rows"} : memref<?x64xf32>
// CHECK: %[[EV:.*]] = moek.all_to_all_start %[[ROWS]], %[[COUNTS]], %[[RC]] into %[[RECV]] {ranks = 2 : i64}
// CHECK: moek.received_assignments %{{.*}} into %[[IDX:.*]], %{{.*}} {ranks = 2 : i64}
// CHECK: moek.rank_assignments %[[IDX]] into %{{.*}}, %{{.*}} offsets(%{{.*}} : memref<3xi32>)
// CHECK: moek.expert_loads
// CHECK: moek.all_to_all_wait %[[EV]], %[[ROWS]], %[[RECV]]
// CHECK-NEXT: return

// CHECK-LABEL: func.func @back
// CHECK-NOT: moek.exchange_counts
// CHECK: bufferization.to_buffer %{{.*}} read_only : tensor<4xi32> to memref<4xi32>
// CHECK: %[[EXPECTED:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<4xi32> to memref<4xi32>
// CHECK: %[[OUT:.*]] = memref.alloc() {moe.buffer = "collectives.received_rows"} : memref<32x64xf32>
// CHECK: moek.all_to_all_start %{{.*}}, %{{.*}}, %[[EXPECTED]] into %[[OUT]]

// On the CPU the collectives are calls of moert's versioned entry points with plain pointers.
// LOOPS-LABEL: func.func @out
// LOOPS: llvm.call @moert_exchange_counts_v1(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (!llvm.ptr, !llvm.ptr, i64, i64) -> i32
// The row size in bytes: 64 f32.
// LOOPS: %[[EVENT:.*]] = llvm.call @moert_all_to_all_start_v1({{.*}}, %{{.*}}) : (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64) -> i64
// LOOPS: llvm.call @moert_event_wait_v1(%[[EVENT]]) : (i64) -> i32
// LOOPS-NOT: moek.

// The EP group's loads: a call of moert_all_reduce_sum_i32_v1 (4 counts, 2 ranks).
// CHECK-LABEL: func.func @group
// CHECK: %[[OUT:.*]] = memref.alloc() {moe.buffer = "collectives.all_reduce"} : memref<4xi32>
// CHECK: moek.all_reduce %{{.*}} into %[[OUT]] {ranks = 2 : i64}
// LOOPS-LABEL: func.func @group
// LOOPS-DAG: %[[FOUR:.*]] = arith.constant 4 : i64
// LOOPS-DAG: %[[TWO:.*]] = arith.constant 2 : i64
// LOOPS: llvm.call @moert_all_reduce_sum_i32_v1(%{{.*}}, %{{.*}}, %[[FOUR]], %[[TWO]]) : (!llvm.ptr, !llvm.ptr, i64, i64) -> i32
// The declarations, once each, at the end of the module.
// LOOPS: llvm.func @moert_exchange_counts_v1(!llvm.ptr, !llvm.ptr, i64, i64) -> i32
// LOOPS: llvm.func @moert_all_to_all_start_v1(!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64) -> i64
// LOOPS: llvm.func @moert_event_wait_v1(i64) -> i32
// LOOPS: llvm.func @moert_all_reduce_sum_i32_v1(!llvm.ptr, !llvm.ptr, i64, i64) -> i32
func.func @out(%rows: tensor<32x64xf32>, %loads: tensor<4xi32>) -> (tensor<?x64xf32>, tensor<?x1xf32>) {
  %recv, %counts = moe.all_to_all %rows, %loads {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
  %w, %r = moe.local_routing %counts {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
  %l = moe.expert_loads %r : (!moe.routing<tokens = ?, experts = 2, top_k = 1>) -> tensor<2xi32>
  return %recv, %w : tensor<?x64xf32>, tensor<?x1xf32>
}

func.func @back(%rows: tensor<?x64xf32>, %counts: tensor<4xi32>, %loads: tensor<4xi32>) -> tensor<32x64xf32> {
  %back, %c = moe.all_to_all %rows, %counts expecting %loads {ranks = 2 : i64}
      : (tensor<?x64xf32>, tensor<4xi32>, tensor<4xi32>) -> (tensor<32x64xf32>, tensor<4xi32>)
  return %back : tensor<32x64xf32>
}

func.func @group(%loads: tensor<4xi32>) -> tensor<4xi32> {
  %g = moe.all_reduce %loads {ranks = 2 : i64} : (tensor<4xi32>) -> tensor<4xi32>
  return %g : tensor<4xi32>
}
