// Zero-buffer fusion turns dispatch/experts/combine into a gather GEMM with a
// GLU epilogue and a scatter-add GEMM: no [T*k, H] = [32, 40] buffer is left,
// while the materializing lowering has both.
// RUN: moe-opt %s -moe-zero-buffer-fusion | FileCheck %s
// RUN: moe-opt %s -moe-zero-buffer-fusion=experts-per-chunk=4 | FileCheck %s --check-prefix=ONE-CHUNK
// RUN: moe-opt %s -moe-lower-to-kernels | FileCheck %s --check-prefix=UNFUSED
// RUN: moe-opt %s -moe-zero-buffer-fusion=epilogue=gather_sum | FileCheck %s --check-prefix=GATHER-SUM
// RUN: not moe-opt %s -moe-zero-buffer-fusion=epilogue=atomic 2>&1 | FileCheck %s --check-prefix=BAD-EPILOGUE
// RUN: moe-opt %s -moe-zero-buffer-fusion=row-slices=3 | FileCheck %s --check-prefix=SLICES
// RUN: moe-opt %s -moe-zero-buffer-fusion=dispatch=copy | FileCheck %s --check-prefix=COPY
// RUN: moe-opt %s "-moe-zero-buffer-fusion=dispatch=copy epilogue=gather_sum" | FileCheck %s --check-prefix=COPY
// RUN: not moe-opt %s "-moe-zero-buffer-fusion=dispatch=copy row-slices=2" 2>&1 | FileCheck %s --check-prefix=COPY-SLICES
// RUN: not moe-opt %s -moe-zero-buffer-fusion=dispatch=scatter 2>&1 | FileCheck %s --check-prefix=BAD-DISPATCH
// RUN: not moe-opt %s -moe-zero-buffer-fusion=row-slices=0 2>&1 | FileCheck %s --check-prefix=BAD-SLICES
// RUN: not moe-opt %s "-moe-zero-buffer-fusion=row-slices=2 epilogue=gather_sum" 2>&1 | FileCheck %s --check-prefix=SLICES-GATHER

!routing = !moe.routing<tokens = 16, experts = 4, top_k = 2>

// CHECK-LABEL: func.func @layer
// CHECK-SAME: (%[[X:.*]]: tensor<16x40xf32>, %[[WG:.*]]: tensor<40x4xf32>, %[[W1:.*]]: tensor<4x40x48xf32>, %[[W2:.*]]: tensor<4x24x40xf32>)
// CHECK-NOT: moe.{{(gate|dispatch|experts|combine)}}
// CHECK: moek.route softmax top_k = 2
// The ranking makes the whole plan: offsets and the row owners the GEMMs read.
// CHECK: moek.rank_assignments %{{.*}} into %{{.*}}, %{{.*}} offsets(%{{.*}} : memref<5xi32>) owners(%{{.*}} : memref<32xi32>)
// CHECK-NOT: moek.exclusive_scan
// CHECK-NOT: moek.row_assignments
// CHECK-DAG: %[[XB:.*]] = bufferization.to_buffer %[[X]] read_only
// CHECK-DAG: %[[W1B:.*]] = bufferization.to_buffer %[[W1]] read_only
// CHECK-DAG: %[[W2B:.*]] = bufferization.to_buffer %[[W2]] read_only
// CHECK: %[[Y:.*]] = memref.alloc() {moe.buffer = "result.y"} : memref<16x40xf32>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[Y]] : memref<16x40xf32>)
// One expert at a time: a token picks an expert at most once, so T rows.
// CHECK: %[[ACT:.*]] = memref.alloc() {moe.buffer = "activations.glu"} : memref<16x24xf32>
// CHECK: scf.for %[[E:.*]] = %{{.*}} to %{{.*}} step
// CHECK: %[[NEXT:.*]] = arith.minsi
// CHECK: moek.grouped_matmul silu_glu %[[XB]], %[[W1B]], %{{.*}} experts(%[[E]], %[[NEXT]]) owners(%{{.*}} : memref<32xi32>) into %[[ACT]] {gather, top_k = 2 : i64}
// CHECK: moek.grouped_matmul scatter_add %[[ACT]], %[[W2B]], %{{.*}} experts(%[[E]], %[[NEXT]]) owners(%{{.*}} : memref<32xi32>) weights(%{{.*}} : memref<16x2xf32>) into %[[Y]] {top_k = 2 : i64}
// CHECK: %[[YT:.*]] = bufferization.to_tensor %[[Y]]
// CHECK: return %[[YT]]
// CHECK-NOT: 32x40

// All experts in one chunk: the classic [T*k, F] activation, no loop.
// ONE-CHUNK-LABEL: func.func @layer
// ONE-CHUNK: memref.alloc() {moe.buffer = "activations.glu"} : memref<32x24xf32>
// ONE-CHUNK-NOT: scf.for
// ONE-CHUNK: moek.grouped_matmul silu_glu
// ONE-CHUNK: moek.grouped_matmul scatter_add
// ONE-CHUNK-NOT: 32x40

// gather_sum: the GLU GEMM as above over all experts, then expert-order rows
// [T*k, H] stored and summed per token by a weighted gather; no fill, no
// atomics, no loop over chunks.
// GATHER-SUM-LABEL: func.func @layer
// GATHER-SUM: %[[Y:.*]] = memref.alloc() {moe.buffer = "result.y"} : memref<16x40xf32>
// GATHER-SUM-NOT: linalg.fill
// GATHER-SUM: %[[ACT:.*]] = memref.alloc() {moe.buffer = "activations.glu"} : memref<32x24xf32>
// GATHER-SUM: %[[ROWS:.*]] = memref.alloc() {moe.buffer = "activations.expert_rows"} : memref<32x40xf32>
// GATHER-SUM-NOT: scf.for
// GATHER-SUM: moek.grouped_matmul silu_glu %{{.*}} into %[[ACT]] {gather, top_k = 2 : i64}
// GATHER-SUM: moek.grouped_matmul store %[[ACT]], %{{.*}} into %[[ROWS]] {top_k = 2 : i64}
// GATHER-SUM: moek.combine_rows %[[ROWS]], %{{.*}}, %{{.*}} into %[[Y]]
// GATHER-SUM-NOT: scatter_add
// BAD-EPILOGUE: error: moe-zero-buffer-fusion: epilogue 'atomic' is not scatter_add or gather_sum

// Row slices: the 32 grouped rows 11 at a time (all experts in each launch), each slice through
// the offsets clipped to [begin, min(begin + 11, 32)).
// SLICES-LABEL: func.func @layer
// SLICES: %[[ACT:.*]] = memref.alloc() {moe.buffer = "activations.glu"} : memref<11x24xf32>
// SLICES: %[[CLIPPED:.*]] = memref.alloc() {moe.buffer = "routing.slice_offsets"} : memref<5xi32>
// SLICES: scf.for %[[BEGIN:.*]] = %{{.*}} to %[[TOTAL:.*]] step %{{.*}} {
// SLICES: %[[END:.*]] = arith.minui %{{.*}}, %[[TOTAL]] : index
// SLICES-DAG: %[[BEGIN32:.*]] = arith.index_cast %[[BEGIN]] : index to i32
// SLICES-DAG: %[[END32:.*]] = arith.index_cast %[[END]] : index to i32
// SLICES: linalg.map ins(%{{.*}} : memref<5xi32>) outs(%[[CLIPPED]] : memref<5xi32>)
// SLICES: %[[LOW:.*]] = arith.maxsi %{{.*}}, %[[BEGIN32]] : i32
// SLICES: arith.minsi %[[LOW]], %[[END32]] : i32
// SLICES: moek.grouped_matmul silu_glu %{{.*}}, %{{.*}}, %[[CLIPPED]] owners(%{{.*}} : memref<32xi32>) into %[[ACT]]
// SLICES: moek.grouped_matmul scatter_add %[[ACT]], %{{.*}}, %[[CLIPPED]] owners(%{{.*}} : memref<32xi32>) weights
// SLICES: }
// dispatch=copy: x's rows copied once into a dispatched [T*k, H] = [32, 40] buffer that GEMM 1
// reads in order (no gather, no owners), all experts in one launch (with the default chunk of 1).
// COPY-LABEL: func.func @layer
// COPY: %[[DISPATCHED:.*]] = memref.alloc() {moe.buffer = "dispatch.tokens"} : memref<32x40xf32>
// COPY: moek.gather_rows %{{.*}}, %{{.*}} into %[[DISPATCHED]] : memref<16x40xf32>, memref<16x2xi32>, memref<32x40xf32>
// COPY-NOT: scf.for
// COPY: moek.grouped_matmul silu_glu %[[DISPATCHED]], %{{.*}}, %{{.*}} into %{{.*}} {top_k = 2 : i64}
// COPY-NOT: gather,
// COPY-LABEL: func.func @dynamic_tokens
// COPY: memref.alloc(%{{.*}}) {moe.buffer = "dispatch.tokens"} : memref<?x40xf32>
// COPY-SLICES: error: dispatch=copy reads a dispatched copy of all T*k rows; it cannot be combined with row slices (2), which bound the rows a launch holds
// BAD-DISPATCH: error: moe-zero-buffer-fusion: dispatch 'scatter' is not gather or copy
// BAD-SLICES: error: moe-zero-buffer-fusion: row-slices must be at least 1, got 0
// SLICES-GATHER: error: row slices (2) need the scatter_add epilogue: gather_sum keeps every expert's [T*k, H] rows at once

// UNFUSED-LABEL: func.func @layer
// UNFUSED: %[[D:.*]] = memref.alloc() {moe.buffer = "dispatch.tokens"} : memref<32x40xf32>
// UNFUSED: moek.gather_rows %{{.*}}, %{{.*}} into %[[D]]
// UNFUSED: memref.alloc() {moe.buffer = "activations.gate_up"} : memref<32x48xf32>
// UNFUSED: moek.grouped_matmul store
// UNFUSED: moek.glu silu_glu
// UNFUSED: memref.alloc() {moe.buffer = "expert_outputs.rows"} : memref<32x40xf32>
// UNFUSED: moek.grouped_matmul store
// UNFUSED: moek.combine_rows
func.func @layer(%x: tensor<16x40xf32>, %w_gate: tensor<40x4xf32>,
                 %w1: tensor<4x40x48xf32>, %w2: tensor<4x24x40xf32>) -> tensor<16x40xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x40xf32>, tensor<40x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !routing)
  %dispatched = moe.dispatch %x, %routing : (tensor<16x40xf32>, !routing) -> tensor<32x40xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<32x40xf32>, !routing, tensor<4x40x48xf32>, tensor<4x24x40xf32>) -> tensor<32x40xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<32x40xf32>, tensor<16x2xf32>, !routing) -> tensor<16x40xf32>
  return %y : tensor<16x40xf32>
}

// With a dynamic token count the activation buffer is sized at run time.
// CHECK-LABEL: func.func @dynamic_tokens
// CHECK: %[[T:.*]] = memref.dim
// CHECK: memref.alloc(%{{.*}}) {moe.buffer = "activations.glu"} : memref<?x24xf32>
// CHECK: moek.grouped_matmul gelu_glu
// CHECK: moek.grouped_matmul scatter_add
func.func @dynamic_tokens(%x: tensor<?x40xf32>, %w_gate: tensor<40x4xf32>,
                          %w1: tensor<4x40x48xf32>, %w2: tensor<4x24x40xf32>) -> tensor<?x40xf32> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<?x40xf32>, tensor<40x4xf32>)
      -> (tensor<?x2xf32>, tensor<?x2xi32>, !moe.routing<tokens = ?, experts = 4, top_k = 2>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<?x40xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 2>) -> tensor<?x40xf32>
  %out = moe.experts gelu_glu %dispatched, %routing, %w1, %w2
      : (tensor<?x40xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 2>,
         tensor<4x40x48xf32>, tensor<4x24x40xf32>) -> tensor<?x40xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<?x40xf32>, tensor<?x2xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 2>)
      -> tensor<?x40xf32>
  return %y : tensor<?x40xf32>
}
