// Routing limits that cannot limit anything are dropped.
// RUN: moe-opt %s -canonicalize -split-input-file | FileCheck %s

// A capacity of cf*T*k/E >= T (cf >= E/k) never drops: the router is dropless.
// CHECK-LABEL: func.func @inert_capacity
// CHECK: moe.gate softmax top_k = 2 %{{.*}}, %{{.*}} :
// CHECK-NOT: capacity_factor
func.func @inert_capacity(%x: tensor<?x16xf32>, %wg: tensor<16x8xf32>) -> tensor<?x2xf32> {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {capacity_factor = 4.0 : f64}
      : (tensor<?x16xf32>, tensor<16x8xf32>)
      -> (tensor<?x2xf32>, tensor<?x2xi32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>)
  return %w : tensor<?x2xf32>
}

// -----

// A capacity below T can drop assignments and stays.
// CHECK-LABEL: func.func @binding_capacity
// CHECK: moe.gate softmax top_k = 2 {{.*}} {capacity_factor = 1.000000e+00 : f64}
func.func @binding_capacity(%x: tensor<?x16xf32>, %wg: tensor<16x8xf32>) -> tensor<?x2xf32> {
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {capacity_factor = 1.0 : f64}
      : (tensor<?x16xf32>, tensor<16x8xf32>)
      -> (tensor<?x2xf32>, tensor<?x2xi32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>)
  return %w : tensor<?x2xf32>
}

// -----

// Keeping every group is no limit.
// CHECK-LABEL: func.func @inert_groups
// CHECK: moe.gate sigmoid top_k = 2 %{{.*}}, %{{.*}} :
// CHECK-NOT: n_group
func.func @inert_groups(%x: tensor<4x16xf32>, %wg: tensor<16x8xf32>) -> tensor<4x2xf32> {
  %w, %i, %r = moe.gate sigmoid top_k = 2 %x, %wg {n_group = 4 : i64, topk_group = 4 : i64}
      : (tensor<4x16xf32>, tensor<16x8xf32>)
      -> (tensor<4x2xf32>, tensor<4x2xi32>, !moe.routing<tokens = 4, experts = 8, top_k = 2>)
  return %w : tensor<4x2xf32>
}

// -----

// CHECK-LABEL: func.func @binding_groups
// CHECK: moe.gate sigmoid top_k = 2 {{.*}} {n_group = 4 : i64, topk_group = 2 : i64}
func.func @binding_groups(%x: tensor<4x16xf32>, %wg: tensor<16x8xf32>) -> tensor<4x2xf32> {
  %w, %i, %r = moe.gate sigmoid top_k = 2 %x, %wg {n_group = 4 : i64, topk_group = 2 : i64}
      : (tensor<4x16xf32>, tensor<16x8xf32>)
      -> (tensor<4x2xf32>, tensor<4x2xi32>, !moe.routing<tokens = 4, experts = 8, top_k = 2>)
  return %w : tensor<4x2xf32>
}
