// A program with a collective for 2 ranks, run on one: not a layer, so moe-run cannot refuse
// it up front; the runtime refuses the collective before anything is sent, and the call of
// the function reports it (exit 2), instead of hanging or returning unwritten rows.
// RUN: not moe-run %s 2>&1 | FileCheck %s
// CHECK: moe-run: error: function 'f': a collective failed: the program was compiled for 2 expert-parallel ranks (ep=2) but runs on 1: launch it with mpirun -n 2

func.func @f(%rows: tensor<8x4xf32>, %counts: tensor<2xi32>) -> tensor<?x4xf32> {
  %received, %received_counts = moe.all_to_all %rows, %counts {ranks = 2 : i64}
      : (tensor<8x4xf32>, tensor<2xi32>) -> (tensor<?x4xf32>, tensor<2xi32>)
  return %received : tensor<?x4xf32>
}
