// moe-batch-tile-attention=memory-budget=...: every N dividing the batch (4 here) is lowered to
// planned buffers; a remark gives each one's planned peak and predicted time, and the fewest
// tiles whose peak fits are chosen. The numbers are the plan's: the checks capture them from
// the remarks and hold the decision and the error to them.
// A budget no plan reaches: nothing to tile for, the untiled attention is kept.
// RUN: moe-opt %s --mlir-print-op-on-diagnostic=false --moe-batch-tile-attention=memory-budget=1000000000 2>&1 | FileCheck %s --check-prefix=LOOSE
// RUN: moe-opt %s --mlir-print-op-on-diagnostic=false --moe-batch-tile-attention=memory-budget=100% 2>&1 | FileCheck %s --check-prefix=LOOSE
// Below the least peak: an error naming it (the 4-tile plan's, as the remark says).
// RUN: not moe-opt %s --mlir-print-op-on-diagnostic=false --moe-batch-tile-attention=memory-budget=0% 2>&1 | FileCheck %s --check-prefix=BELOW
// The tiles of a given N (the option, or moe.bta_tiles) are checked against the budget.
// `least`: the least peak any tile count reaches, here that of 4 tiles.
// RUN: moe-opt %s --mlir-print-op-on-diagnostic=false --moe-batch-tile-attention=memory-budget=least 2>&1 | FileCheck %s --check-prefix=LEAST
// RUN: moe-opt %s --mlir-print-op-on-diagnostic=false --moe-batch-tile-attention="memory-budget=100% tiles=2" 2>&1 | FileCheck %s --check-prefix=GIVEN
// RUN: not moe-opt %s --mlir-print-op-on-diagnostic=false --moe-batch-tile-attention="memory-budget=0 tiles=1" 2>&1 | FileCheck %s --check-prefix=GIVEN-OVER
// RUN: not moe-opt %s --mlir-print-op-on-diagnostic=false --moe-batch-tile-attention="memory-budget=100% tiles=3" 2>&1 | FileCheck %s --check-prefix=GIVEN-INDIVISIBLE

// LOOSE: remark: batch tiling on attention: 1 tile of 4 sequences: planned peak [[P1:[0-9]+]] bytes ({{.*}}), predicted {{[0-9.]+}} ms on cpu, within the budget
// LOOSE: remark: batch tiling on attention: 2 tiles of 2 sequences: planned peak {{[0-9]+}} bytes
// LOOSE: remark: batch tiling on attention: 4 tiles of 1 sequence: planned peak {{[0-9]+}} bytes
// LOOSE: remark: batch tiling on attention: 1 tile (the untiled peak fits the budget): planned peak {{.*}}, predicted {{[0-9.]+}} ms on cpu
// The choice, in the function's moe.bta (what --report-memory writes as "bta").
// LOOSE: func.func @block(%arg0{{.*}}moe.bta = {batch = 4 : i64, {{.*}}planned_peak_bytes = [[P1]] : i64, predicted_ms = {{.*}}, reason = "the untiled peak fits the budget", row_slices = 1 : i64, tiles = 1 : i64, untiled_peak_bytes = [[P1]] : i64}
// LOOSE-NOT: scf.for
// LOOSE: moe.attention {{.*}} -> tensor<4x16x16xf32>

// BELOW: remark: batch tiling on attention: 4 tiles of 1 sequence: planned peak [[P4:[0-9]+]] bytes ({{.*}}), predicted {{[0-9.]+}} ms on cpu, over the budget of 0 bytes
// BELOW: error: memory budget 0 bytes (0 B) is below the least planned peak any tile count reaches: [[P4]] bytes ({{.*}}, 4 tiles of 1 sequence); give --memory-budget=[[P4]] or more

// LEAST: remark: batch tiling on attention: 1 tile of 4 sequences: planned peak {{[0-9]+}} bytes ({{.*}}), predicted {{[0-9.]+}} ms on cpu, over the budget of [[L:[0-9]+]] bytes
// LEAST: remark: batch tiling on attention: 4 tiles of 1 sequence: planned peak [[L]] bytes ({{.*}}), predicted {{[0-9.]+}} ms on cpu, within the budget of [[L]] bytes
// LEAST: remark: batch tiling on attention: 4 tiles (the fewest tiles whose planned peak fits the budget)

// GIVEN: remark: batch tiling on attention: 2 tiles (given (bta_tiles), within the budget)
// GIVEN: scf.for %{{.*}} = %c0 to %c2 step %c1
// GIVEN: moe.attention {{.*}} -> tensor<2x16x16xf32>

// GIVEN-OVER: remark: batch tiling on attention: 1 tile of 4 sequences: planned peak [[P1:[0-9]+]] bytes
// GIVEN-OVER: remark: batch tiling on attention: 4 tiles of 1 sequence: planned peak [[P4:[0-9]+]] bytes
// GIVEN-OVER: error: bta_tiles=1 plans a peak of [[P1]] bytes ({{.*}}), over the memory budget of 0 bytes (0 B): no tile count fits; give --memory-budget=[[P4]] or more

// GIVEN-INDIVISIBLE: error: 'moe.attention' op moe-batch-tile-attention: 3 tiles do not divide the batch of 4 sequences

func.func @block(%x: tensor<4x16x16xf32>, %g1: tensor<16xf32>, %wq: tensor<16x16xf32>,
                 %wk: tensor<16x8xf32>, %wv: tensor<16x8xf32>, %wo: tensor<16x16xf32>)
    -> tensor<4x16x16xf32> {
  %n = moe.rms_norm %x, %g1 : (tensor<4x16x16xf32>, tensor<16xf32>) -> tensor<4x16x16xf32>
  %a = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<4x16x16xf32>, tensor<16x16xf32>, tensor<16x8xf32>, tensor<16x8xf32>,
         tensor<16x16xf32>) -> tensor<4x16x16xf32>
  %h = arith.addf %x, %a : tensor<4x16x16xf32>
  return %h : tensor<4x16x16xf32>
}
