// moe-overlap-communication's options: a negative chunk count and a device the cost model's
// table does not have are errors that say what is allowed; the device's link sets the chunks.
// RUN: not moe-opt %s --moe-expert-parallel --moe-overlap-communication=chunks=-2 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// RUN: not moe-opt %s --moe-expert-parallel "--moe-overlap-communication=chunks=0 cost-device=tpu" 2>&1 | FileCheck %s --check-prefix=DEVICE
// RUN: moe-opt %s --moe-expert-parallel "--moe-overlap-communication=chunks=0 cost-device=h200-sm90a" 2>&1 | FileCheck %s --check-prefix=H200
// Without the option only functions that ask are chunked (this one does not).
// RUN: moe-opt %s --moe-expert-parallel "--moe-overlap-communication=cost-device=h200-sm90a" 2>&1 | FileCheck %s --check-prefix=UNASKED

// NEGATIVE: error: moe-overlap-communication: chunks must be at least 0 (0: the cost model; -1, the default: only where a function asks), got -2
// DEVICE: error: moe-overlap-communication: no device 'tpu' in the cost model's table (have: {{.*}}h200-sm90a{{.*}})
// H200: remark: moe-overlap-communication: {{[0-9]+}} chunks of {{[0-9]+}} tokens (cost model, h200-sm90a: all-to-all ~{{[0-9]+}} us, expert GEMMs ~{{[0-9]+}} us per rank, 1428 us per chunk (collective latency, all-to-all overhead))
// UNASKED-NOT: moe-overlap-communication:
// UNASKED: moe.all_to_all
// UNASKED-NOT: moe-overlap-communication:

!R = !moe.routing<tokens = 64, experts = 4, top_k = 2>
func.func @f(%x: tensor<64x32xbf16>, %wg: tensor<32x4xbf16>, %w1: tensor<4x32x48xbf16>,
             %w2: tensor<4x24x32xbf16>) -> tensor<64x32xbf16>
    attributes {moe.ep_ranks = 2 : i64} {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg
      : (tensor<64x32xbf16>, tensor<32x4xbf16>) -> (tensor<64x2xf32>, tensor<64x2xi32>, !R)
  %d = moe.dispatch %x, %r : (tensor<64x32xbf16>, !R) -> tensor<128x32xbf16>
  %e = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<128x32xbf16>, !R, tensor<4x32x48xbf16>, tensor<4x24x32xbf16>) -> tensor<128x32xbf16>
  %y = moe.combine %e, %w, %r : (tensor<128x32xbf16>, tensor<64x2xf32>, !R) -> tensor<64x32xbf16>
  return %y : tensor<64x32xbf16>
}
