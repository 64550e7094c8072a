// moe-overlap-communication: a per-rank layer (moe-expert-parallel's) in 2 chunks of 8 tokens,
// laid out as a software pipeline: every chunk's gate, dispatch and all-to-all out (phase A),
// then each chunk's local experts and all-to-all back (phase B), then the combines (phase C),
// and the chunks' y and indices put together.
// RUN: moe-opt %s --moe-expert-parallel --moe-overlap-communication=chunks=2 | FileCheck %s
// The function attribute asks the same (what a spec's overlap=2 makes); 0 asks the cost model.
// RUN: moe-opt %s --moe-expert-parallel --moe-overlap-communication 2>&1 | FileCheck %s --check-prefix=ATTR
// RUN: sed 's/moe.overlap_chunks = 2/moe.overlap_chunks = 0/' %s | moe-opt --moe-expert-parallel --moe-overlap-communication 2>&1 | FileCheck %s --check-prefix=MODEL
// Lowered, each all-to-all starts where it was and waits just before its rows are used.
// RUN: moe-opt %s --moe-expert-parallel --moe-overlap-communication --moe-zero-buffer-fusion --moe-lower-to-kernels 2>/dev/null | FileCheck %s --check-prefix=KERNELS

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

// CHECK-LABEL: func.func @layer
// Phase A.
// CHECK: %[[X0:.*]] = tensor.extract_slice %[[X:[a-z0-9_]+]][0, 0] [8, 32] [1, 1] : tensor<16x32xf32> to tensor<8x32xf32>
// CHECK: %[[W0:.*]], %[[I0:.*]], %[[R0:.*]] = moe.gate softmax top_k = 2 %[[X0]], {{.*}} -> (tensor<8x2xf32>, tensor<8x2xi32>, !moe.routing<tokens = 8, experts = 4, top_k = 2>)
// CHECK: %[[D0:.*]] = moe.dispatch %[[X0]], %[[R0]] {{.*}} -> tensor<16x32xf32>
// CHECK: %[[L0:.*]] = moe.expert_loads %[[R0]]
// CHECK: %[[RECV0:.*]], %[[RC0:.*]] = moe.all_to_all %[[D0]], %[[L0]] {ranks = 2 : i64}
// CHECK: %[[X1:.*]] = tensor.extract_slice %[[X]][8, 0] [8, 32] [1, 1]
// CHECK: moe.gate softmax top_k = 2 %[[X1]]
// CHECK: %[[RECV1:.*]], %[[RC1:.*]] = moe.all_to_all
// Phase B: chunk 0's experts run while chunk 1's rows travel.
// CHECK: moe.local_routing %[[RC0]]
// CHECK: moe.experts
// CHECK: %[[BACK0:.*]], %{{.*}} = moe.all_to_all %{{.*}}, %[[RC0]] expecting %[[L0]] {ranks = 2 : i64} : {{.*}} -> (tensor<16x32xf32>, tensor<4xi32>)
// CHECK: moe.local_routing %[[RC1]]
// CHECK: moe.experts
// CHECK: %[[BACK1:.*]], %{{.*}} = moe.all_to_all %{{.*}}, %[[RC1]] expecting
// Phase C.
// CHECK: %[[Y0:.*]] = moe.combine %[[BACK0]], %[[W0]], %[[R0]] {{.*}} -> tensor<8x32xf32>
// CHECK: %[[Y1:.*]] = moe.combine %[[BACK1]]
// CHECK: %[[E:.*]] = tensor.empty() : tensor<16x32xf32>
// CHECK: %[[P:.*]] = tensor.insert_slice %[[Y0]] into %[[E]][0, 0] [8, 32] [1, 1]
// CHECK: %[[Y:.*]] = tensor.insert_slice %[[Y1]] into %[[P]][8, 0] [8, 32] [1, 1]
// CHECK: tensor.insert_slice %[[I0]]
// CHECK: return %[[Y]]

// ATTR: remark: moe-overlap-communication: 2 chunks of 8 tokens (given)
// ATTR-COUNT-2: moe.gate
// MODEL: remark: moe-overlap-communication: {{[0-9]+}} chunks of {{[0-9]+}} tokens (cost model, cpu: all-to-all ~{{[0-9]+}} us, expert GEMMs ~{{[0-9]+}} us per rank, 240 us per chunk (collective latency, all-to-all overhead))

// KERNELS-LABEL: func.func @layer
// KERNELS: %[[E0:.*]] = moek.all_to_all_start %{{.*}}, %{{.*}}, %{{.*}} into %[[RB0:[^ ]*]] {ranks = 2 : i64}
// KERNELS: %[[E1:.*]] = moek.all_to_all_start
// KERNELS: moek.all_to_all_wait %[[E0]], %{{.*}}, %[[RB0]]
// KERNELS: moek.grouped_matmul
// KERNELS: moek.all_to_all_wait %[[E1]]
func.func @layer(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>,
                 %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>)
    -> (tensor<16x32xf32>, tensor<16x2xi32>)
    attributes {moe.ep_ranks = 2 : i64, moe.overlap_chunks = 2 : i64} {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y, %i : tensor<16x32xf32>, tensor<16x2xi32>
}
