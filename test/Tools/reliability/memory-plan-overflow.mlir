// Every operand fits in 64 bits, but the activation buffer [T, F] of the
// fused layer would be 2^64 bytes: the kernel it feeds refuses it (the same
// checked size rule as the moe ops; moe-plan-memory checks its byte counts
// and arena too) instead of a nonsense --report-memory with exit 0 (#9).
// RUN: (moe-compile %s --report-memory=%t.json; echo "exit=$?") 2>&1 | FileCheck %s
// RUN: (moe-compile %s --no-fusion --report-memory=%t.json; echo "exit=$?") 2>&1 | FileCheck %s --check-prefix=UNFUSED
// UNFUSED: error: 'moek.grouped_matmul' op c ('memref<2147483647x4294967294xf32>') is too large: its size in bytes does not fit in 64 bits
// UNFUSED: exit=2
// CHECK: error: 'moek.grouped_matmul' op c ('memref<2147483647x2147483647xf32>') is too large: its size in bytes does not fit in 64 bits
// CHECK: exit=2

func.func @moe_layer(%x: tensor<2147483647x1xf32>, %w_gate: tensor<1x1xf32>,
    %w1: tensor<1x1x4294967294xf32>, %w2: tensor<1x2147483647x1xf32>)
    -> tensor<2147483647x1xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 1 %x, %w_gate
      : (tensor<2147483647x1xf32>, tensor<1x1xf32>)
      -> (tensor<2147483647x1xf32>, tensor<2147483647x1xi32>, !moe.routing<tokens = 2147483647, experts = 1, top_k = 1>)
  %d = moe.dispatch %x, %routing
      : (tensor<2147483647x1xf32>, !moe.routing<tokens = 2147483647, experts = 1, top_k = 1>) -> tensor<2147483647x1xf32>
  %o = moe.experts silu_glu %d, %routing, %w1, %w2
      : (tensor<2147483647x1xf32>, !moe.routing<tokens = 2147483647, experts = 1, top_k = 1>,
         tensor<1x1x4294967294xf32>, tensor<1x2147483647x1xf32>) -> tensor<2147483647x1xf32>
  %y = moe.combine %o, %weights, %routing
      : (tensor<2147483647x1xf32>, tensor<2147483647x1xf32>, !moe.routing<tokens = 2147483647, experts = 1, top_k = 1>)
      -> tensor<2147483647x1xf32>
  return %y : tensor<2147483647x1xf32>
}
