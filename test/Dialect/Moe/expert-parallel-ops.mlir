// The expert-parallel ops round-trip in custom and generic form.
// RUN: moe-opt %s | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @out_and_back
func.func @out_and_back(%rows: tensor<32x64xf32>, %loads: tensor<4xi32>)
    -> (tensor<32x64xf32>, tensor<?x1xf32>) {
  // CHECK: %[[RECV:.*]], %[[COUNTS:.*]] = moe.all_to_all %{{.*}}, %{{.*}} {ranks = 2 : i64} : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
  %recv, %counts = moe.all_to_all %rows, %loads {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
  // CHECK: %{{.*}}, %{{.*}} = moe.local_routing %[[COUNTS]] {ranks = 2 : i64} : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
  %w, %r = moe.local_routing %counts {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
  // A static result is a capacity: the way back into the sender's rows, whose counts are
  // known (what comes back is what was sent).
  // CHECK: moe.all_to_all %[[RECV]], %[[COUNTS]] expecting %{{.*}} {ranks = 2 : i64} : (tensor<?x64xf32>, tensor<4xi32>, tensor<4xi32>) -> (tensor<32x64xf32>, tensor<4xi32>)
  %back, %c2 = moe.all_to_all %recv, %counts expecting %loads {ranks = 2 : i64}
      : (tensor<?x64xf32>, tensor<4xi32>, tensor<4xi32>) -> (tensor<32x64xf32>, tensor<4xi32>)
  return %back, %w : tensor<32x64xf32>, tensor<?x1xf32>
}

// The gate weights travel with the rows, and their gradients come back to the slots.
// CHECK-LABEL: func.func @slots
func.func @slots(%w: tensor<16x2xf32>, %rows: tensor<32x1xf32>,
                 %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>)
    -> (tensor<32x1xf32>, tensor<16x2xf32>) {
  // CHECK: moe.slots_to_rows %{{.*}}, %{{.*}} : (tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<32x1xf32>
  %to = moe.slots_to_rows %w, %r
      : (tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<32x1xf32>
  // CHECK: moe.rows_to_slots %{{.*}}, %{{.*}} : (tensor<32x1xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<16x2xf32>
  %back = moe.rows_to_slots %rows, %r
      : (tensor<32x1xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<16x2xf32>
  return %to, %back : tensor<32x1xf32>, tensor<16x2xf32>
}

// The EP group's loads, and the router backward that counts them.
// CHECK-LABEL: func.func @group_loads
func.func @group_loads(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %dw: tensor<16x2xf32>,
                       %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %loads: tensor<4xi32>)
    -> (tensor<16x32xf32>, tensor<f32>) {
  // CHECK: %[[G:.*]] = moe.all_reduce %{{.*}} {ranks = 2 : i64} : (tensor<4xi32>) -> tensor<4xi32>
  %group = moe.all_reduce %loads {ranks = 2 : i64} : (tensor<4xi32>) -> tensor<4xi32>
  // CHECK: moe.gate_backward softmax %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} group_loads %[[G]] {aux_loss = 1.000000e-02 : f64, group_ranks = 2 : i64}
  %dx, %dwg, %aux = moe.gate_backward softmax %x, %wg, %r, %dw group_loads %group
      {aux_loss = 0.01 : f64, group_ranks = 2 : i64}
      : (tensor<16x32xf32>, tensor<32x4xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>,
         tensor<16x2xf32>, tensor<4xi32>) -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return %dx, %aux : tensor<16x32xf32>, tensor<f32>
}
