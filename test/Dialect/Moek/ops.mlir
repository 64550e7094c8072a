// Every moek op round-trips in its custom form and in the generic form: the
// router, the routing-plan kernels, the materializing kernels and the
// grouped matmul with each epilogue and each optional operand.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

//===----------------------------------------------------------------------===//
// Router
//===----------------------------------------------------------------------===//

// The bias's type sits with the bias, so a missing bias cannot swallow the
// type of the weights.
// CHECK-LABEL: func.func @route_no_bias
// CHECK-SAME: (%[[X:.*]]: memref<?x32xbf16>, %[[WG:.*]]: memref<32x16xbf16>, %[[W:.*]]: memref<?x2xf32>, %[[I:.*]]: memref<?x2xi32>)
// CHECK: moek.route softmax top_k = 2 %[[X]], %[[WG]] into %[[W]], %[[I]] : memref<?x32xbf16>, memref<32x16xbf16>, memref<?x2xf32>, memref<?x2xi32>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.route"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{normalize = true, operandSegmentSizes = array<i32: 1, 1, 0, 1, 1, 0, 0>, scaling = 1.000000e+00 : f64, score_func = 0 : i32, top_k = 2 : i64}>
func.func @route_no_bias(%x: memref<?x32xbf16>, %w_gate: memref<32x16xbf16>,
                         %weights: memref<?x2xf32>, %indices: memref<?x2xi32>) {
  moek.route softmax top_k = 2 %x, %w_gate into %weights, %indices
      : memref<?x32xbf16>, memref<32x16xbf16>, memref<?x2xf32>, memref<?x2xi32>
  return
}

// Every router attribute and a bias.
// CHECK-LABEL: func.func @route_bias_groups
// CHECK-SAME: (%[[X:.*]]: memref<8x32xf32>, %[[WG:.*]]: memref<32x16xf32>, %[[B:.*]]: memref<16xf32>, %[[W:.*]]: memref<8x4xf32>, %[[I:.*]]: memref<8x4xi32>)
// CHECK: moek.route sigmoid top_k = 4 %[[X]], %[[WG]] bias(%[[B]] : memref<16xf32>) into %[[W]], %[[I]] {n_group = 4 : i64, normalize = false, scaling = 2.500000e+00 : f64, topk_group = 2 : i64} : memref<8x32xf32>, memref<32x16xf32>, memref<8x4xf32>, memref<8x4xi32>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.route"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{n_group = 4 : i64, normalize = false, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0>, scaling = 2.500000e+00 : f64, score_func = 1 : i32, top_k = 4 : i64, topk_group = 2 : i64}>
func.func @route_bias_groups(%x: memref<8x32xf32>, %w_gate: memref<32x16xf32>,
                             %bias: memref<16xf32>, %weights: memref<8x4xf32>,
                             %indices: memref<8x4xi32>) {
  moek.route sigmoid top_k = 4 %x, %w_gate bias(%bias : memref<16xf32>)
      into %weights, %indices
      {normalize = false, scaling = 2.5 : f64, n_group = 4 : i64, topk_group = 2 : i64}
      : memref<8x32xf32>, memref<32x16xf32>, memref<8x4xf32>, memref<8x4xi32>
  return
}

//===----------------------------------------------------------------------===//
// Routing plan
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @routing_plan
// CHECK-SAME: (%[[I:.*]]: memref<?x2xi32>, %[[R:.*]]: memref<?x2xi32>, %[[C:.*]]: memref<4xi32>, %[[O:.*]]: memref<5xi32>, %[[ROWS:.*]]: memref<?x2xi32>, %[[OWN:.*]]: memref<?xi32>, %{{.*}}: index)
// CHECK: moek.rank_assignments %[[I]] into %[[R]], %[[C]] : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
// CHECK: moek.rank_assignments %[[I]] into %[[R]], %[[C]] {capacity_factor = 1.250000e+00 : f64} : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
// CHECK: moek.rank_assignments %[[I]] into %[[R]], %[[C]] partials(%{{.*}} : memref<?x4xi32>) : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
// CHECK: moek.exclusive_scan %[[C]] into %[[O]] : memref<4xi32>, memref<5xi32>
// CHECK: moek.assignment_rows %[[I]], %[[R]], %[[O]] into %[[ROWS]] : memref<?x2xi32>, memref<?x2xi32>, memref<5xi32>, memref<?x2xi32>
// CHECK: moek.row_assignments %[[I]], %[[R]], %[[O]] into %[[OWN]] : memref<?x2xi32>, memref<?x2xi32>, memref<5xi32>, memref<?xi32>
// CHECK: moek.rank_assignments %[[I]] into %[[R]], %[[C]] partials(%{{.*}} : memref<?x4xi32>) offsets(%[[O]] : memref<5xi32>) rows(%[[ROWS]] : memref<?x2xi32>) owners(%[[OWN]] : memref<?xi32>) : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
// CHECK: moek.rank_assignments %[[I]] into %[[R]], %[[C]] offsets(%[[O]] : memref<5xi32>) owners(%[[OWN]] : memref<?xi32>) : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.rank_assignments"(%{{.*}}, %{{.*}}, %{{.*}}) <{capacity_factor = 0.000000e+00 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0>}>
// GENERIC: "moek.rank_assignments"(%{{.*}}, %{{.*}}, %{{.*}}) <{capacity_factor = 1.250000e+00 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0>}>
// GENERIC: "moek.rank_assignments"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{capacity_factor = 0.000000e+00 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0, 0>}>
// GENERIC: "moek.exclusive_scan"(%{{.*}}, %{{.*}})
// GENERIC: "moek.assignment_rows"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// GENERIC: "moek.row_assignments"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// GENERIC: "moek.rank_assignments"({{.*}}) <{capacity_factor = 0.000000e+00 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1>}>
// GENERIC: "moek.rank_assignments"({{.*}}) <{capacity_factor = 0.000000e+00 : f64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0, 1>}>
func.func @routing_plan(%indices: memref<?x2xi32>, %ranks: memref<?x2xi32>,
                        %counts: memref<4xi32>, %offsets: memref<5xi32>,
                        %rows: memref<?x2xi32>, %owners: memref<?xi32>, %n: index) {
  moek.rank_assignments %indices into %ranks, %counts
      : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
  moek.rank_assignments %indices into %ranks, %counts {capacity_factor = 1.25 : f64}
      : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
  %partials = memref.alloc(%n) : memref<?x4xi32>
  moek.rank_assignments %indices into %ranks, %counts partials(%partials : memref<?x4xi32>)
      : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
  moek.exclusive_scan %counts into %offsets : memref<4xi32>, memref<5xi32>
  moek.assignment_rows %indices, %ranks, %offsets into %rows
      : memref<?x2xi32>, memref<?x2xi32>, memref<5xi32>, memref<?x2xi32>
  moek.row_assignments %indices, %ranks, %offsets into %owners
      : memref<?x2xi32>, memref<?x2xi32>, memref<5xi32>, memref<?xi32>
  // The whole plan in one op.
  moek.rank_assignments %indices into %ranks, %counts partials(%partials : memref<?x4xi32>)
      offsets(%offsets : memref<5xi32>) rows(%rows : memref<?x2xi32>) owners(%owners : memref<?xi32>)
      : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
  moek.rank_assignments %indices into %ranks, %counts
      offsets(%offsets : memref<5xi32>) owners(%owners : memref<?xi32>)
      : memref<?x2xi32>, memref<?x2xi32>, memref<4xi32>
  return
}

//===----------------------------------------------------------------------===//
// The materializing kernels (moe-lower-to-kernels)
//===----------------------------------------------------------------------===//

// Dispatch copy, grouped matmul into [T*k, 2F], GLU, grouped matmul into
// [T*k, H], weighted gather back.
// CHECK-LABEL: func.func @materializing
// CHECK-SAME: (%[[X:.*]]: memref<16x32xf32>, %[[ROWS:.*]]: memref<16x2xi32>, %[[D:.*]]: memref<32x32xf32>, %[[W1:.*]]: memref<4x32x48xf32>, %[[W2:.*]]: memref<4x24x32xf32>, %[[O:.*]]: memref<5xi32>, %[[H:.*]]: memref<32x48xf32>, %[[A:.*]]: memref<32x24xf32>, %[[E:.*]]: memref<32x32xf32>, %[[W:.*]]: memref<16x2xf32>, %[[Y:.*]]: memref<16x32xf32>)
// CHECK: moek.gather_rows %[[X]], %[[ROWS]] into %[[D]] : memref<16x32xf32>, memref<16x2xi32>, memref<32x32xf32>
// CHECK: moek.grouped_matmul store %[[D]], %[[W1]], %[[O]] into %[[H]] {top_k = 2 : i64} : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
// CHECK: moek.glu silu_glu %[[H]] into %[[A]] : memref<32x48xf32>, memref<32x24xf32>
// CHECK: moek.glu gelu_glu %[[H]] into %[[A]] : memref<32x48xf32>, memref<32x24xf32>
// CHECK: moek.grouped_matmul store %[[A]], %[[W2]], %[[O]] into %[[E]] : memref<32x24xf32>, memref<4x24x32xf32>, memref<5xi32>, memref<32x32xf32>
// CHECK: moek.combine_rows %[[E]], %[[W]], %[[ROWS]] into %[[Y]] : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x32xf32>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.gather_rows"(%{{.*}}, %{{.*}}, %{{.*}})
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 0 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0, 1, 0>, top_k = 2 : i64}>
// GENERIC: "moek.glu"(%{{.*}}, %{{.*}}) <{activation = 0 : i32}>
// GENERIC: "moek.glu"(%{{.*}}, %{{.*}}) <{activation = 1 : i32}>
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 0 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0, 1, 0>, top_k = 1 : i64}>
// GENERIC: "moek.combine_rows"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
func.func @materializing(%x: memref<16x32xf32>, %rows: memref<16x2xi32>,
                         %dispatched: memref<32x32xf32>, %w1: memref<4x32x48xf32>,
                         %w2: memref<4x24x32xf32>, %offsets: memref<5xi32>,
                         %h: memref<32x48xf32>, %act: memref<32x24xf32>,
                         %expert_out: memref<32x32xf32>, %weights: memref<16x2xf32>,
                         %y: memref<16x32xf32>) {
  moek.gather_rows %x, %rows into %dispatched
      : memref<16x32xf32>, memref<16x2xi32>, memref<32x32xf32>
  moek.grouped_matmul store %dispatched, %w1, %offsets into %h {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  moek.glu silu_glu %h into %act : memref<32x48xf32>, memref<32x24xf32>
  moek.glu gelu_glu %h into %act : memref<32x48xf32>, memref<32x24xf32>
  // top_k defaults to 1.
  moek.grouped_matmul store %act, %w2, %offsets into %expert_out
      : memref<32x24xf32>, memref<4x24x32xf32>, memref<5xi32>, memref<32x32xf32>
  moek.combine_rows %expert_out, %weights, %rows into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x32xf32>
  return
}

// Dynamic tokens and bf16 storage.
// CHECK-LABEL: func.func @materializing_dynamic_bf16
// CHECK-SAME: (%[[X:.*]]: memref<?x32xbf16>, %[[ROWS:.*]]: memref<?x2xi32>, %[[D:.*]]: memref<?x32xbf16>, %[[W:.*]]: memref<?x2xf32>, %[[Y:.*]]: memref<?x32xbf16>)
// CHECK: moek.gather_rows %[[X]], %[[ROWS]] into %[[D]] : memref<?x32xbf16>, memref<?x2xi32>, memref<?x32xbf16>
// CHECK: moek.combine_rows %[[D]], %[[W]], %[[ROWS]] into %[[Y]] : memref<?x32xbf16>, memref<?x2xf32>, memref<?x2xi32>, memref<?x32xbf16>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.gather_rows"(%{{.*}}, %{{.*}}, %{{.*}}) : (memref<?x32xbf16>, memref<?x2xi32>, memref<?x32xbf16>) -> ()
// GENERIC: "moek.combine_rows"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (memref<?x32xbf16>, memref<?x2xf32>, memref<?x2xi32>, memref<?x32xbf16>) -> ()
func.func @materializing_dynamic_bf16(%x: memref<?x32xbf16>, %rows: memref<?x2xi32>,
                                      %dispatched: memref<?x32xbf16>,
                                      %weights: memref<?x2xf32>, %y: memref<?x32xbf16>) {
  moek.gather_rows %x, %rows into %dispatched
      : memref<?x32xbf16>, memref<?x2xi32>, memref<?x32xbf16>
  moek.combine_rows %dispatched, %weights, %rows into %y
      : memref<?x32xbf16>, memref<?x2xf32>, memref<?x2xi32>, memref<?x32xbf16>
  return
}

//===----------------------------------------------------------------------===//
// Grouped matmul: every epilogue, the gather prologue, the expert range
//===----------------------------------------------------------------------===//

// The fused pair of moe-zero-buffer-fusion over all experts: a GLU epilogue
// reading tokens through the owners map, then a scatter-add into an f32
// accumulator in token order.
// CHECK-LABEL: func.func @fused_all_experts
// CHECK-SAME: (%[[X:.*]]: memref<16x32xbf16>, %[[W1:.*]]: memref<4x32x48xbf16>, %[[W2:.*]]: memref<4x24x32xbf16>, %[[O:.*]]: memref<5xi32>, %[[OWN:.*]]: memref<32xi32>, %[[W:.*]]: memref<16x2xf32>, %[[A:.*]]: memref<32x24xbf16>, %[[ACC:.*]]: memref<16x32xf32>)
// CHECK: %[[FIRST:.*]] = arith.constant 0 : index
// CHECK: %[[LAST:.*]] = arith.constant 4 : index
// CHECK: moek.grouped_matmul silu_glu %[[X]], %[[W1]], %[[O]] experts(%[[FIRST]], %[[LAST]]) owners(%[[OWN]] : memref<32xi32>) into %[[A]] {gather, top_k = 2 : i64} : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
// CHECK: moek.grouped_matmul scatter_add %[[A]], %[[W2]], %[[O]] experts(%[[FIRST]], %[[LAST]]) owners(%[[OWN]] : memref<32xi32>) weights(%[[W]] : memref<16x2xf32>) into %[[ACC]] {top_k = 2 : i64} : memref<32x24xbf16>, memref<4x24x32xbf16>, memref<5xi32>, memref<16x32xf32>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 1 : i32, gather, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0, 1, 0>, top_k = 2 : i64}>
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 3 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 1, 0>, top_k = 2 : i64}>
func.func @fused_all_experts(%x: memref<16x32xbf16>, %w1: memref<4x32x48xbf16>,
                             %w2: memref<4x24x32xbf16>, %offsets: memref<5xi32>,
                             %owners: memref<32xi32>, %weights: memref<16x2xf32>,
                             %act: memref<32x24xbf16>, %acc: memref<16x32xf32>) {
  %first = arith.constant 0 : index
  %last = arith.constant 4 : index
  moek.grouped_matmul silu_glu %x, %w1, %offsets experts(%first, %last)
      owners(%owners : memref<32xi32>) into %act {gather, top_k = 2 : i64}
      : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
  moek.grouped_matmul scatter_add %act, %w2, %offsets experts(%first, %last)
      owners(%owners : memref<32xi32>) weights(%weights : memref<16x2xf32>)
      into %acc {top_k = 2 : i64}
      : memref<32x24xbf16>, memref<4x24x32xbf16>, memref<5xi32>, memref<16x32xf32>
  return
}

// The training step's forward with h saved: the GLU GEMM also stores the
// whole accumulator row (bf16 h beside the bf16 activation).
// CHECK-LABEL: func.func @glu_saving_pre_activation
// CHECK-SAME: (%[[X:.*]]: memref<16x32xbf16>, %[[W1:.*]]: memref<4x32x48xbf16>, %[[O:.*]]: memref<5xi32>, %[[OWN:.*]]: memref<32xi32>, %[[A:.*]]: memref<32x24xbf16>, %[[H:.*]]: memref<32x48xbf16>)
// CHECK: moek.grouped_matmul silu_glu %[[X]], %[[W1]], %[[O]] owners(%[[OWN]] : memref<32xi32>) into %[[A]] pre_activation(%[[H]] : memref<32x48xbf16>) {gather, top_k = 2 : i64} : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 1 : i32, gather, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1, 0, 1, 1>, top_k = 2 : i64}>
func.func @glu_saving_pre_activation(%x: memref<16x32xbf16>, %w1: memref<4x32x48xbf16>,
                                     %offsets: memref<5xi32>, %owners: memref<32xi32>,
                                     %act: memref<32x24xbf16>, %h: memref<32x48xbf16>) {
  moek.grouped_matmul silu_glu %x, %w1, %offsets owners(%owners : memref<32xi32>)
      into %act pre_activation(%h : memref<32x48xbf16>) {gather, top_k = 2 : i64}
      : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
  return
}

// One chunk of experts [first, last) at a time, with dynamic tokens: the
// activation buffer has T * min(k, chunk) rows, the range is an SSA value.
// CHECK-LABEL: func.func @fused_chunk
// CHECK-SAME: (%[[X:.*]]: memref<?x32xf32>, %[[W1:.*]]: memref<4x32x48xf32>, %[[W2:.*]]: memref<4x24x32xf32>, %[[O:.*]]: memref<5xi32>, %[[OWN:.*]]: memref<?xi32>, %[[W:.*]]: memref<?x2xf32>, %[[A:.*]]: memref<?x24xf32>, %[[Y:.*]]: memref<?x32xf32>, %[[FIRST:.*]]: index, %[[LAST:.*]]: index)
// CHECK: moek.grouped_matmul gelu_glu %[[X]], %[[W1]], %[[O]] experts(%[[FIRST]], %[[LAST]]) owners(%[[OWN]] : memref<?xi32>) into %[[A]] {gather, top_k = 2 : i64} : memref<?x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<?x24xf32>
// CHECK: moek.grouped_matmul scatter_add %[[A]], %[[W2]], %[[O]] experts(%[[FIRST]], %[[LAST]]) owners(%[[OWN]] : memref<?xi32>) weights(%[[W]] : memref<?x2xf32>) into %[[Y]] {top_k = 2 : i64} : memref<?x24xf32>, memref<4x24x32xf32>, memref<5xi32>, memref<?x32xf32>
func.func @fused_chunk(%x: memref<?x32xf32>, %w1: memref<4x32x48xf32>,
                       %w2: memref<4x24x32xf32>, %offsets: memref<5xi32>,
                       %owners: memref<?xi32>, %weights: memref<?x2xf32>,
                       %act: memref<?x24xf32>, %y: memref<?x32xf32>,
                       %first: index, %last: index) {
  moek.grouped_matmul gelu_glu %x, %w1, %offsets experts(%first, %last)
      owners(%owners : memref<?xi32>) into %act {gather, top_k = 2 : i64}
      : memref<?x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<?x24xf32>
  moek.grouped_matmul scatter_add %act, %w2, %offsets experts(%first, %last)
      owners(%owners : memref<?xi32>) weights(%weights : memref<?x2xf32>)
      into %y {top_k = 2 : i64}
      : memref<?x24xf32>, memref<4x24x32xf32>, memref<5xi32>, memref<?x32xf32>
  return
}

// The remaining combinations: a GLU epilogue on grouped rows (no gather), a
// store that gathers its tokens, a store over a range of experts, and a
// scatter-add that gathers (token in, token out).
// CHECK-LABEL: func.func @grouped_matmul_variants
// CHECK-SAME: (%[[X:.*]]: memref<16x32xf16>, %[[D:.*]]: memref<32x32xf16>, %[[W1:.*]]: memref<4x32x48xf16>, %[[O:.*]]: memref<5xi32>, %[[OWN:.*]]: memref<32xi32>, %[[W:.*]]: memref<16x2xf32>, %[[A:.*]]: memref<32x24xf16>, %[[H:.*]]: memref<32x48xf32>, %[[Y:.*]]: memref<16x48xf32>, %[[FIRST:.*]]: index, %[[LAST:.*]]: index)
// CHECK: moek.grouped_matmul silu_glu %[[D]], %[[W1]], %[[O]] into %[[A]] {top_k = 2 : i64} : memref<32x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<32x24xf16>
// CHECK: moek.grouped_matmul store %[[X]], %[[W1]], %[[O]] owners(%[[OWN]] : memref<32xi32>) into %[[H]] {gather, top_k = 2 : i64} : memref<16x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<32x48xf32>
// CHECK: moek.grouped_matmul store %[[D]], %[[W1]], %[[O]] experts(%[[FIRST]], %[[LAST]]) into %[[H]] {top_k = 2 : i64} : memref<32x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<32x48xf32>
// CHECK: moek.grouped_matmul scatter_add %[[X]], %[[W1]], %[[O]] owners(%[[OWN]] : memref<32xi32>) weights(%[[W]] : memref<16x2xf32>) into %[[Y]] {gather, top_k = 2 : i64} : memref<16x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<16x48xf32>
// GENERIC-LABEL: "func.func"
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 1 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0, 1, 0>, top_k = 2 : i64}>
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 0 : i32, gather, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1, 0, 1, 0>, top_k = 2 : i64}>
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 0 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 1, 0>, top_k = 2 : i64}>
// GENERIC: "moek.grouped_matmul"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epilogue = 3 : i32, gather, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1, 1, 1, 0>, top_k = 2 : i64}>
func.func @grouped_matmul_variants(%x: memref<16x32xf16>, %dispatched: memref<32x32xf16>,
                                   %w1: memref<4x32x48xf16>, %offsets: memref<5xi32>,
                                   %owners: memref<32xi32>, %weights: memref<16x2xf32>,
                                   %act: memref<32x24xf16>, %h: memref<32x48xf32>,
                                   %y: memref<16x48xf32>, %first: index, %last: index) {
  moek.grouped_matmul silu_glu %dispatched, %w1, %offsets into %act {top_k = 2 : i64}
      : memref<32x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<32x24xf16>
  moek.grouped_matmul store %x, %w1, %offsets owners(%owners : memref<32xi32>)
      into %h {gather, top_k = 2 : i64}
      : memref<16x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<32x48xf32>
  moek.grouped_matmul store %dispatched, %w1, %offsets experts(%first, %last)
      into %h {top_k = 2 : i64}
      : memref<32x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<32x48xf32>
  moek.grouped_matmul scatter_add %x, %w1, %offsets owners(%owners : memref<32xi32>)
      weights(%weights : memref<16x2xf32>) into %y {gather, top_k = 2 : i64}
      : memref<16x32xf16>, memref<4x32x48xf16>, memref<5xi32>, memref<16x48xf32>
  return
}

// The tiling stage's ops (moek-tile-grouped-matmuls): a row tile's schedule
// and one CTA tile of a grouped matmul.
// CHECK-LABEL: func.func @tiles
// CHECK: %[[E:.*]], %[[B:.*]], %[[END:.*]] = moek.row_tile %{{.*}}[%{{.*}}] rows_per_tile 128 : memref<5xi32>
// CHECK: moek.row_tile %{{.*}}[%{{.*}}] experts(%{{.*}}, %{{.*}}) rows_per_tile 64 : memref<?xi32>
// CHECK: moek.grouped_matmul_tile silu_glu %{{.*}}, %{{.*}}, %{{.*}} owners(%{{.*}} : memref<32xi32>) into %{{.*}} tile(%[[E]], %[[B]], %[[END]], %{{.*}}) shape [128, 256, 32, 4, 2, 4] {gather, top_k = 2 : i64}
// A tile of the sm_90a kernel's persistent loop: the k tiles before and
// after it, and its cluster.
// CHECK: %{{.*}} = moek.grouped_matmul_tile silu_glu {{.*}} tile(%[[E]], %[[B]], %[[END]], %{{.*}}) k_tiles(%{{.*}}) shape [128, 256, 64, 4, 8, 1] {cluster_size = 2 : i64, gather, top_k = 2 : i64} : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16> -> index
func.func @tiles(%x: memref<16x32xbf16>, %w1: memref<4x32x48xbf16>, %offsets: memref<5xi32>,
                 %dynamic_offsets: memref<?xi32>, %owners: memref<32xi32>, %act: memref<32x24xbf16>,
                 %tile: index, %column: index, %first: index, %last: index) {
  %e, %begin, %end = moek.row_tile %offsets[%tile] rows_per_tile 128 : memref<5xi32>
  %e2, %begin2, %end2 = moek.row_tile %dynamic_offsets[%tile] experts(%first, %last) rows_per_tile 64 : memref<?xi32>
  moek.grouped_matmul_tile silu_glu %x, %w1, %offsets owners(%owners : memref<32xi32>) into %act
      tile(%e, %begin, %end, %column) shape [128, 256, 32, 4, 2, 4] {gather, top_k = 2 : i64}
      : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
  %after = moek.grouped_matmul_tile silu_glu %x, %w1, %offsets owners(%owners : memref<32xi32>) into %act
      tile(%e, %begin, %end, %column) k_tiles(%tile) shape [128, 256, 64, 4, 8, 1]
      {cluster_size = 2 : i64, gather, top_k = 2 : i64}
      : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16> -> index
  return
}
