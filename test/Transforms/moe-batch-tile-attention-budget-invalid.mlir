// What moe-batch-tile-attention=memory-budget=... refuses: one error each, saying what to fix.
// RUN: not moe-opt %s --moe-batch-tile-attention=memory-budget=lots -split-input-file 2>&1 | FileCheck %s --check-prefix=SYNTAX
// RUN: not moe-opt %s --moe-batch-tile-attention="memory-budget=50% target=tpu" -split-input-file 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not moe-opt %s --moe-batch-tile-attention="memory-budget=50% cost-device=tpu" -split-input-file 2>&1 | FileCheck %s --check-prefix=DEVICE
// RUN: not moe-opt %s --moe-batch-tile-attention=memory-budget=50% -split-input-file 2>&1 | FileCheck %s --check-prefix=EACH

// SYNTAX: error: moe-batch-tile-attention: memory-budget 'lots' is not a number of bytes (e.g. 1073741824), a percentage of the untiled peak (e.g. 50%) or 'least'
// TARGET: error: moe-batch-tile-attention: target 'tpu' is not cpu or cuda[:sm_XY]
// DEVICE: error: moe-batch-tile-attention: no device 'tpu' in the cost model's table (have: h200-sm90a, h200-sm90, cpu)

// EACH: error: 'moe.attention' op moe-batch-tile-attention: a memory budget needs a static batch: the memory plan of dynamic buffers is made at run time
func.func @dynamic_batch(%n: tensor<?x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                         %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<?x8x32xf32> {
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<?x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>,
         tensor<32x32xf32>) -> tensor<?x8x32xf32>
  return %a : tensor<?x8x32xf32>
}

// -----

// EACH: error: moe-batch-tile-attention: memory-budget chooses the tiles of a block's attention, but the module has no moe.attention (a training step's budget needs --backward)
func.func @no_attention(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = arith.addf %x, %x : tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
