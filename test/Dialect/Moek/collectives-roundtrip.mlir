// The kernel dialect's collectives round-trip in custom and generic form.
// RUN: moe-opt %s | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @collectives
func.func @collectives(%rows: memref<32x64xf32>, %counts: memref<4xi32>,
                       %recv_counts: memref<4xi32>, %recv: memref<?x64xf32>,
                       %indices: memref<?x1xi32>, %weights: memref<?x1xf32>) {
  // CHECK: moek.exchange_counts %[[C:.*]] into %[[RC:.*]] {ranks = 2 : i64} : memref<4xi32>, memref<4xi32>
  moek.exchange_counts %counts into %recv_counts {ranks = 2 : i64}
      : memref<4xi32>, memref<4xi32>
  // CHECK: moek.all_to_all %{{.*}}, %[[C]], %[[RC]] into %{{.*}} {ranks = 2 : i64} : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  moek.all_to_all %rows, %counts, %recv_counts into %recv {ranks = 2 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  // CHECK: moek.received_assignments %[[RC]] into %{{.*}}, %{{.*}} {ranks = 2 : i64} : memref<4xi32>, memref<?x1xi32>, memref<?x1xf32>
  moek.received_assignments %recv_counts into %indices, %weights {ranks = 2 : i64}
      : memref<4xi32>, memref<?x1xi32>, memref<?x1xf32>
  return
}

// CHECK-LABEL: func.func @slots
func.func @slots(%w: memref<16x2xf32>, %rows_of: memref<16x2xi32>, %rows: memref<32x1xf32>,
                 %back: memref<16x2xf32>) {
  // CHECK: moek.slots_to_rows %{{.*}}, %{{.*}} into %{{.*}} : memref<16x2xf32>, memref<16x2xi32>, memref<32x1xf32>
  moek.slots_to_rows %w, %rows_of into %rows : memref<16x2xf32>, memref<16x2xi32>, memref<32x1xf32>
  // CHECK: moek.rows_to_slots %{{.*}}, %{{.*}} into %{{.*}} : memref<32x1xf32>, memref<16x2xi32>, memref<16x2xf32>
  moek.rows_to_slots %rows, %rows_of into %back : memref<32x1xf32>, memref<16x2xi32>, memref<16x2xf32>
  return
}

// CHECK-LABEL: func.func @start_and_wait
func.func @start_and_wait(%rows: memref<32x64xf32>, %counts: memref<4xi32>,
                          %recv_counts: memref<4xi32>, %recv: memref<?x64xf32>) {
  // CHECK: %[[E:.*]] = moek.all_to_all_start %[[R:.*]], %{{.*}}, %{{.*}} into %[[O:.*]] {ranks = 2 : i64} : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  %e = moek.all_to_all_start %rows, %counts, %recv_counts into %recv {ranks = 2 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  // CHECK: moek.all_to_all_wait %[[E]], %[[R]], %[[O]] : memref<32x64xf32>, memref<?x64xf32>
  moek.all_to_all_wait %e, %rows, %recv : memref<32x64xf32>, memref<?x64xf32>
  return
}

// CHECK-LABEL: func.func @reduce
func.func @reduce(%l: memref<4xi32>, %g: memref<4xi32>) {
  // CHECK: moek.all_reduce %{{.*}} into %{{.*}} {ranks = 2 : i64} : memref<4xi32>, memref<4xi32>
  moek.all_reduce %l into %g {ranks = 2 : i64} : memref<4xi32>, memref<4xi32>
  return
}
