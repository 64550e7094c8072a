// The attention half of a block: 4 sequences of 64 tokens, 4 query heads over 2 key/value
// heads of size 4; TILES is replaced by the test (moe.bta_tiles).
func.func @block_attention(%x: tensor<4x64x16xf32>, %g1: tensor<16xf32>, %wq: tensor<16x16xf32>,
                           %wk: tensor<16x8xf32>, %wv: tensor<16x8xf32>, %wo: tensor<16x16xf32>)
    -> tensor<4x64x16xf32> attributes {moe.bta_tiles = TILES : i64} {
  %n = moe.rms_norm %x, %g1 : (tensor<4x64x16xf32>, tensor<16xf32>) -> tensor<4x64x16xf32>
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<4x64x16xf32>, tensor<16x16xf32>, tensor<16x8xf32>, tensor<16x8xf32>,
         tensor<16x16xf32>) -> tensor<4x64x16xf32>
  %h = arith.addf %x, %a : tensor<4x64x16xf32>
  return %h : tensor<4x64x16xf32>
}
