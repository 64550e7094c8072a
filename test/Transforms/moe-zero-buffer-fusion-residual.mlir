// A residual add of the combine's y (the block's `h + MoE(..)`, linalg after
// convert-elementwise-to-linalg) is absorbed into the scatter-add: the f32
// accumulator starts at the residual, widened, instead of zero, and the
// narrowed accumulator is the add's result; no second [T, H] buffer and no
// add are left. Where the add is not the combine's only use, or the layer
// has k = 1 (its rows are stored, not accumulated), the add stays.
// RUN: moe-opt %s --convert-elementwise-to-linalg -moe-zero-buffer-fusion=experts-per-chunk=4 | FileCheck %s

!routing = !moe.routing<tokens = 16, experts = 4, top_k = 2>

// CHECK-LABEL: func.func @residual
// CHECK-SAME: (%[[R:[^:]*]]: tensor<16x40xbf16>, %[[X:[^:]*]]: tensor<16x40xbf16>,
// CHECK: %[[Y:.*]] = memref.alloc() {moe.buffer = "result.y"} : memref<16x40xbf16>
// CHECK: %[[ACC:.*]] = memref.alloc() {moe.buffer = "accumulators.y"} : memref<16x40xf32>
// CHECK: %[[RB:.*]] = bufferization.to_buffer %[[R]] read_only
// CHECK: linalg.map { arith.extf } ins(%[[RB]] : memref<16x40xbf16>) outs(%[[ACC]] : memref<16x40xf32>)
// CHECK-NOT: linalg.fill
// CHECK: moek.grouped_matmul scatter_add {{.*}} into %[[ACC]]
// CHECK: linalg.map { arith.truncf } ins(%[[ACC]] : memref<16x40xf32>) outs(%[[Y]] : memref<16x40xbf16>)
// CHECK: %[[YT:.*]] = bufferization.to_tensor %[[Y]]
// CHECK-NOT: linalg.generic
// CHECK: return %[[YT]]
func.func @residual(%r: tensor<16x40xbf16>, %x: tensor<16x40xbf16>, %w_gate: tensor<40x4xbf16>,
                    %w1: tensor<4x40x48xbf16>, %w2: tensor<4x24x40xbf16>) -> tensor<16x40xbf16> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x40xbf16>, tensor<40x4xbf16>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xbf16>, !routing) -> tensor<32x40xbf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x40xbf16>, !routing, tensor<4x40x48xbf16>, tensor<4x24x40xbf16>) -> tensor<32x40xbf16>
  %y = moe.combine %out, %weights, %routing
      : (tensor<32x40xbf16>, tensor<16x2xf32>, !routing) -> tensor<16x40xbf16>
  %sum = arith.addf %y, %r : tensor<16x40xbf16>
  return %sum : tensor<16x40xbf16>
}

// f32: y is its own accumulator and starts as a copy of the residual.
// CHECK-LABEL: func.func @residual_f32
// CHECK-SAME: (%[[R:[^:]*]]: tensor<16x40xf32>,
// CHECK: %[[Y:.*]] = memref.alloc() {moe.buffer = "result.y"} : memref<16x40xf32>
// CHECK-NOT: accumulators.y
// CHECK: %[[RB:.*]] = bufferization.to_buffer %[[R]] read_only
// CHECK: memref.copy %[[RB]], %[[Y]] : memref<16x40xf32> to memref<16x40xf32>
// CHECK-NOT: linalg.fill
// CHECK: moek.grouped_matmul scatter_add {{.*}} into %[[Y]]
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @residual_f32(%r: tensor<16x40xf32>, %x: tensor<16x40xf32>, %w_gate: tensor<40x4xf32>,
                        %w1: tensor<4x40x48xf32>, %w2: tensor<4x24x40xf32>) -> tensor<16x40xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x40xf32>, tensor<40x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xf32>, !routing) -> tensor<32x40xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x40xf32>, !routing, tensor<4x40x48xf32>, tensor<4x24x40xf32>) -> tensor<32x40xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<32x40xf32>, tensor<16x2xf32>, !routing) -> tensor<16x40xf32>
  %sum = arith.addf %r, %y : tensor<16x40xf32>
  return %sum : tensor<16x40xf32>
}

// y has a second use: it must exist, so the add stays.
// CHECK-LABEL: func.func @y_also_returned
// CHECK: linalg.fill
// CHECK: moek.grouped_matmul scatter_add
// CHECK: linalg.generic
func.func @y_also_returned(%r: tensor<16x40xf32>, %x: tensor<16x40xf32>, %w_gate: tensor<40x4xf32>,
                           %w1: tensor<4x40x48xf32>, %w2: tensor<4x24x40xf32>)
    -> (tensor<16x40xf32>, tensor<16x40xf32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x40xf32>, tensor<40x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xf32>, !routing) -> tensor<32x40xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x40xf32>, !routing, tensor<4x40x48xf32>, tensor<4x24x40xf32>) -> tensor<32x40xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<32x40xf32>, tensor<16x2xf32>, !routing) -> tensor<16x40xf32>
  %sum = arith.addf %r, %y : tensor<16x40xf32>
  return %sum, %y : tensor<16x40xf32>, tensor<16x40xf32>
}

// A product, not a sum: not a residual add.
// CHECK-LABEL: func.func @scaled
// CHECK: linalg.fill
// CHECK: linalg.generic
// CHECK: arith.mulf
func.func @scaled(%r: tensor<16x40xf32>, %x: tensor<16x40xf32>, %w_gate: tensor<40x4xf32>,
                  %w1: tensor<4x40x48xf32>, %w2: tensor<4x24x40xf32>) -> tensor<16x40xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x40xf32>, tensor<40x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xf32>, !routing) -> tensor<32x40xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x40xf32>, !routing, tensor<4x40x48xf32>, tensor<4x24x40xf32>) -> tensor<32x40xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<32x40xf32>, tensor<16x2xf32>, !routing) -> tensor<16x40xf32>
  %p = arith.mulf %r, %y : tensor<16x40xf32>
  return %p : tensor<16x40xf32>
}

// The residual is a loop's block argument and the combine is outside the loop:
// the accumulator could not start at it, so the add stays.
// CHECK-LABEL: func.func @residual_in_loop
// CHECK: linalg.fill
// CHECK: moek.grouped_matmul scatter_add
// CHECK: scf.for
// CHECK: linalg.generic
func.func @residual_in_loop(%r: tensor<16x40xf32>, %x: tensor<16x40xf32>, %w_gate: tensor<40x4xf32>,
                            %w1: tensor<4x40x48xf32>, %w2: tensor<4x24x40xf32>) -> tensor<16x40xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x40xf32>, tensor<40x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xf32>, !routing) -> tensor<32x40xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x40xf32>, !routing, tensor<4x40x48xf32>, tensor<4x24x40xf32>) -> tensor<32x40xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<32x40xf32>, tensor<16x2xf32>, !routing) -> tensor<16x40xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %sum = scf.for %i = %c0 to %c2 step %c1 iter_args(%acc = %r) -> (tensor<16x40xf32>) {
    %next = arith.addf %acc, %y : tensor<16x40xf32>
    scf.yield %next : tensor<16x40xf32>
  }
  return %sum : tensor<16x40xf32>
}
