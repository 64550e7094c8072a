// moe-batch-tile-attention: each attention runs over tiles of its batch in a loop (the tile's
// slice, attention on B/N sequences, inserted into the result); what follows is unchanged.
// RUN: moe-opt %s --moe-batch-tile-attention | FileCheck %s
// RUN: moe-opt %s --moe-batch-tile-attention=tiles=4 | FileCheck %s --check-prefix=FOUR
// RUN: moe-opt %s --moe-batch-tile-attention=tiles=1 | FileCheck %s --check-prefix=ONE
// A second run changes nothing (the request is consumed).
// RUN: moe-opt %s --moe-batch-tile-attention --moe-batch-tile-attention | FileCheck %s

// CHECK-LABEL: func.func @block
// CHECK-NOT: moe.bta_tiles
// CHECK: %[[N:.*]] = moe.rms_norm
// CHECK: %[[INIT:.*]] = tensor.empty() : tensor<4x8x32xf32>
// CHECK: %[[OUT:.*]] = scf.for %[[T:.*]] = %c0 to %c2 step %c1 iter_args(%[[ACC:.*]] = %[[INIT]]) -> (tensor<4x8x32xf32>)
// CHECK:   %[[FIRST:.*]] = arith.muli %[[T]], %c2
// CHECK:   %[[ROWS:.*]] = tensor.extract_slice %[[N]][%[[FIRST]], 0, 0] [2, 8, 32] [1, 1, 1] : tensor<4x8x32xf32> to tensor<2x8x32xf32>
// CHECK:   %[[O:.*]] = moe.attention heads = 4 kv_heads = 2 %[[ROWS]], {{.*}} -> tensor<2x8x32xf32>
// CHECK:   %[[NEXT:.*]] = tensor.insert_slice %[[O]] into %[[ACC]][%[[FIRST]], 0, 0] [2, 8, 32] [1, 1, 1]
// CHECK:   scf.yield %[[NEXT]]
// CHECK: arith.addf %{{.*}}, %[[OUT]] : tensor<4x8x32xf32>
// CHECK-LABEL: func.func @unasked
// CHECK-NOT: scf.for
// CHECK: moe.attention heads = 4 kv_heads = 2 %{{.*}} -> tensor<4x8x32xf32>

// The option applies to every function.
// FOUR-LABEL: func.func @block
// FOUR: scf.for %{{.*}} = %c0 to %c4 step %c1
// FOUR: moe.attention {{.*}} -> tensor<1x8x32xf32>
// FOUR-LABEL: func.func @unasked
// FOUR: scf.for %{{.*}} = %c0 to %c4 step %c1
// FOUR: moe.attention {{.*}} -> tensor<1x8x32xf32>

// ONE-NOT: scf.for
// ONE: moe.attention {{.*}} -> tensor<4x8x32xf32>
// ONE-NOT: scf.for

func.func @block(%x: tensor<4x8x32xf32>, %g1: tensor<32xf32>, %wq: tensor<32x32xf32>,
                 %wk: tensor<32x16xf32>, %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>)
    -> tensor<4x8x32xf32> attributes {moe.bta_tiles = 2 : i64} {
  %n = moe.rms_norm %x, %g1 : (tensor<4x8x32xf32>, tensor<32xf32>) -> tensor<4x8x32xf32>
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<4x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>,
         tensor<32x32xf32>) -> tensor<4x8x32xf32>
  %h = arith.addf %x, %a : tensor<4x8x32xf32>
  return %h : tensor<4x8x32xf32>
}

func.func @unasked(%n: tensor<4x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                   %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<4x8x32xf32> {
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<4x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>,
         tensor<32x32xf32>) -> tensor<4x8x32xf32>
  return %a : tensor<4x8x32xf32>
}
