// moe-expert-parallel: the per-rank program of a layer over 2 ranks (the function asks with
// moe.ep_ranks), and over 4 ranks from the pass option.
// RUN: moe-opt %s --moe-expert-parallel | FileCheck %s
// RUN: moe-opt %s --moe-expert-parallel=ranks=4 | FileCheck %s --check-prefix=FOUR
// A second run changes nothing (the request became moe.expert_parallel).
// RUN: moe-opt %s --moe-expert-parallel --moe-expert-parallel | FileCheck %s

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

// The weights become the rank's shard; the gate still routes over all 4 experts.
// CHECK-LABEL: func.func @layer(
// CHECK-SAME: %[[X:[^:]*]]: tensor<16x32xf32>, %[[WG:[^:]*]]: tensor<32x4xf32>, %[[W1:[^:]*]]: tensor<2x32x48xf32>, %[[W2:[^:]*]]: tensor<2x24x32xf32>)
// CHECK-SAME: attributes {moe.expert_parallel = 2 : i64}
// CHECK: %[[W:.*]], %[[I:.*]], %[[R:.*]] = moe.gate softmax top_k = 2 %[[X]], %[[WG]]
// CHECK: %[[D:.*]] = moe.dispatch %[[X]], %[[R]]
// Out: the loads are the split sizes.
// CHECK: %[[L:.*]] = moe.expert_loads %[[R]] : (!moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<4xi32>
// CHECK: %[[RECV:.*]], %[[RC:.*]] = moe.all_to_all %[[D]], %[[L]] {ranks = 2 : i64} : (tensor<32x32xf32>, tensor<4xi32>) -> (tensor<?x32xf32>, tensor<4xi32>)
// The local experts on what arrived, one assignment per row.
// CHECK: %[[LW:.*]], %[[LR:.*]] = moe.local_routing %[[RC]] {ranks = 2 : i64} : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
// CHECK: %[[LD:.*]] = moe.dispatch %[[RECV]], %[[LR]]
// CHECK: %[[LE:.*]] = moe.experts silu_glu %[[LD]], %[[LR]], %[[W1]], %[[W2]]
// CHECK: %[[LC:.*]] = moe.combine %[[LE]], %[[LW]], %[[LR]]
// Back: the received counts return every row to its place in expert order.
// CHECK: %[[BACK:.*]], %{{.*}} = moe.all_to_all %[[LC]], %[[RC]] expecting %[[L]] {ranks = 2 : i64} : (tensor<?x32xf32>, tensor<4xi32>, tensor<4xi32>) -> (tensor<32x32xf32>, tensor<4xi32>)
// CHECK: %[[Y:.*]] = moe.combine %[[BACK]], %[[W]], %[[R]]
// CHECK: return %[[Y]], %[[I]]
// CHECK-NOT: moe.all_to_all

// FOUR-LABEL: func.func @layer(
// FOUR-SAME: tensor<1x32x48xf32>, %{{.*}}: tensor<1x24x32xf32>)
// FOUR-SAME: attributes {moe.expert_parallel = 4 : i64}
// FOUR: moe.local_routing %{{.*}} {ranks = 4 : i64} : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 1, top_k = 1>)
func.func @layer(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>,
                 %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>)
    -> (tensor<16x32xf32>, tensor<16x2xi32>) attributes {moe.ep_ranks = 2 : i64} {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !R) -> tensor<32x32xf32>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  %y = moe.combine %e, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !R) -> tensor<16x32xf32>
  return %y, %i : tensor<16x32xf32>, tensor<16x2xi32>
}

// A function that does not ask is left alone (without the option).
// CHECK-LABEL: func.func @untouched
// CHECK-NOT: moe.all_to_all
// CHECK: return
func.func @untouched(%x: tensor<16x32xf32>) -> tensor<16x32xf32> {
  return %x : tensor<16x32xf32>
}
