// What moe-batch-tile-attention refuses (an error) or leaves alone (a remark saying why).
// RUN: moe-opt %s --moe-batch-tile-attention -split-input-file -verify-diagnostics
// RUN: not moe-opt %s --moe-batch-tile-attention=tiles=-1 -split-input-file 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// NEGATIVE: error: moe-batch-tile-attention: tiles must be at least 0 (0: each function's moe.bta_tiles), got -1

func.func @indivisible(%n: tensor<6x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                       %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<6x8x32xf32>
    attributes {moe.bta_tiles = 4 : i64} {
  // expected-error @+1 {{'moe.attention' op moe-batch-tile-attention: 4 tiles do not divide the batch of 6 sequences: every tile has batch/tiles sequences}}
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<6x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>,
         tensor<32x32xf32>) -> tensor<6x8x32xf32>
  return %a : tensor<6x8x32xf32>
}

// -----

func.func @dynamic_batch(%n: tensor<?x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                         %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<?x8x32xf32>
    attributes {moe.bta_tiles = 2 : i64} {
  // expected-remark @+1 {{moe-batch-tile-attention: not tiled: the batch is dynamic}}
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<?x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>,
         tensor<32x32xf32>) -> tensor<?x8x32xf32>
  return %a : tensor<?x8x32xf32>
}

// -----

// expected-error @+1 {{'func.func' op moe-batch-tile-attention: moe.bta_tiles must be positive, got -2}}
func.func @negative_request(%n: tensor<2x8x32xf32>) -> tensor<2x8x32xf32>
    attributes {moe.bta_tiles = -2 : i64} {
  return %n : tensor<2x8x32xf32>
}
