// The training step's moves between assignment slots [T, k] and rows on the
// GPU: the destination is zeroed (a thread per element), then a thread per
// slot moves its value where its row is kept (row >= 0; dropped ones stay 0).
// RUN: moe-opt %s --moek-lower-to-gpu | FileCheck %s

// CHECK-LABEL: func.func @slots_to_rows
// CHECK: gpu.launch {{.*}} function(@moek_slots_to_rows) {
// CHECK: memref.store %{{.*}}, %[[OUT:.*]][%{{.*}}, %{{.*}}] : memref<32x1xf32>
// CHECK: gpu.launch {{.*}} function(@moek_slots_to_rows) {
// CHECK: %[[ROW:.*]] = memref.load %{{.*}} : memref<16x2xi32>
// CHECK: %[[KEPT:.*]] = arith.cmpi sge, %[[ROW]], %{{.*}} : i32
// CHECK: scf.if %[[KEPT]] {
// CHECK: %[[R:.*]] = arith.index_cast %[[ROW]] : i32 to index
// CHECK: %[[V:.*]] = memref.load %{{.*}} : memref<16x2xf32>
// CHECK: memref.store %[[V]], %{{.*}}[%[[R]], %{{.*}}] : memref<32x1xf32>
// CHECK-NOT: moek.
func.func @slots_to_rows(%w: memref<16x2xf32>, %rows: memref<16x2xi32>, %out: memref<32x1xf32>) {
  moek.slots_to_rows %w, %rows into %out : memref<16x2xf32>, memref<16x2xi32>, memref<32x1xf32>
  return
}

// CHECK-LABEL: func.func @rows_to_slots
// CHECK: gpu.launch {{.*}} function(@moek_rows_to_slots) {
// CHECK: memref.store %{{.*}} : memref<16x2xf32>
// CHECK: gpu.launch {{.*}} function(@moek_rows_to_slots) {
// CHECK: scf.if
// CHECK: %[[V:.*]] = memref.load %{{.*}} : memref<32x1xf32>
// CHECK: memref.store %[[V]], %{{.*}} : memref<16x2xf32>
func.func @rows_to_slots(%in: memref<32x1xf32>, %rows: memref<16x2xi32>, %values: memref<16x2xf32>) {
  moek.rows_to_slots %in, %rows into %values : memref<32x1xf32>, memref<16x2xi32>, memref<16x2xf32>
  return
}
