// RUN: moe-opt %s --moe-fold-slice-copies --split-input-file | FileCheck %s

// A tile loop as moe-batch-tile-attention's bufferizes: the tile's rows
// copied out of the batch's, its output copied into the batch's. Both
// tile buffers become views of the batch buffers' bytes at the tile's
// offset (t * 2 * 64 * 2 = 256 t bytes), and both copies go.
// CHECK-LABEL: func.func @tile_loop
// CHECK:         %[[NBYTES:.*]] = memref.alloc() {moe.buffer = "block.rms_norm"} : memref<512xi8>
// CHECK:         %[[N:.*]] = memref.view %[[NBYTES]][%{{.*}}][] : memref<512xi8> to memref<2x2x64xbf16>
// CHECK:         memref.store %{{.*}}, %[[N]]
// CHECK:         %[[OBYTES:.*]] = memref.alloc() {moe.buffer = "block.attention_out"} : memref<512xi8>
// CHECK:         %[[O:.*]] = memref.view %[[OBYTES]]
// CHECK:         scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step
// CHECK-NEXT:      %[[C256:.*]] = arith.constant 256 : index
// CHECK-NEXT:      %[[OFF:.*]] = arith.muli %[[T]], %[[C256]] : index
// CHECK-NEXT:      %[[ROWS:.*]] = memref.view %[[NBYTES]][%[[OFF]]][] {moe.buffer = "attention.rows"} : memref<512xi8> to memref<1x2x64xbf16>
// CHECK-NOT:       memref.copy
// CHECK:           %[[OUT:.*]] = memref.view %[[OBYTES]][%{{.*}}][] {moe.buffer = "attention.out"} : memref<512xi8> to memref<1x2x64xbf16>
// CHECK:           linalg.copy ins(%[[ROWS]] : memref<1x2x64xbf16>) outs(%[[OUT]] : memref<1x2x64xbf16>)
// CHECK-NOT:       memref.copy
// CHECK:         }
// CHECK:         memref.dealloc %[[NBYTES]] : memref<512xi8>
// CHECK:         memref.dealloc %[[OBYTES]] : memref<512xi8>
func.func @tile_loop(%x: memref<2x2x64xbf16>, %v: bf16) -> memref<2x2x64xbf16> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %n = memref.alloc() {moe.buffer = "block.rms_norm"} : memref<2x2x64xbf16>
  memref.store %v, %n[%c0, %c0, %c0] : memref<2x2x64xbf16>
  %o = memref.alloc() {moe.buffer = "block.attention_out"} : memref<2x2x64xbf16>
  scf.for %t = %c0 to %c2 step %c1 {
    %slice = memref.subview %n[%t, 0, 0] [1, 2, 64] [1, 1, 1] : memref<2x2x64xbf16> to memref<1x2x64xbf16, strided<[128, 64, 1], offset: ?>>
    %rows = memref.alloc() {moe.buffer = "attention.rows"} : memref<1x2x64xbf16>
    memref.copy %slice, %rows : memref<1x2x64xbf16, strided<[128, 64, 1], offset: ?>> to memref<1x2x64xbf16>
    %out = memref.alloc() {moe.buffer = "attention.out"} : memref<1x2x64xbf16>
    linalg.copy ins(%rows : memref<1x2x64xbf16>) outs(%out : memref<1x2x64xbf16>)
    %into = memref.subview %o[%t, 0, 0] [1, 2, 64] [1, 1, 1] : memref<2x2x64xbf16> to memref<1x2x64xbf16, strided<[128, 64, 1], offset: ?>>
    memref.copy %out, %into : memref<1x2x64xbf16> to memref<1x2x64xbf16, strided<[128, 64, 1], offset: ?>>
    memref.dealloc %rows : memref<1x2x64xbf16>
    memref.dealloc %out : memref<1x2x64xbf16>
  }
  %y = memref.alloc() : memref<2x2x64xbf16>
  linalg.copy ins(%o : memref<2x2x64xbf16>) outs(%y : memref<2x2x64xbf16>)
  memref.dealloc %n : memref<2x2x64xbf16>
  memref.dealloc %o : memref<2x2x64xbf16>
  return %y : memref<2x2x64xbf16>
}

// -----

// A static offset folds to a constant: rows 2 and 3 of [4, 64] f32 start
// at byte 512.
// CHECK-LABEL: func.func @static_offset
// CHECK:         %[[BYTES:.*]] = memref.alloc() : memref<1024xi8>
// CHECK:         %[[C512:.*]] = arith.constant 512 : index
// CHECK:         memref.view %[[BYTES]][%[[C512]]][] : memref<1024xi8> to memref<2x64xf32>
// CHECK-NOT:     memref.copy
func.func @static_offset(%out: memref<2x64xf32>) {
  %cst = arith.constant 1.0 : f32
  %whole = memref.alloc() : memref<4x64xf32>
  linalg.fill ins(%cst : f32) outs(%whole : memref<4x64xf32>)
  %slice = memref.subview %whole[2, 0] [2, 64] [1, 1] : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1], offset: 128>>
  %tile = memref.alloc() : memref<2x64xf32>
  memref.copy %slice, %tile : memref<2x64xf32, strided<[64, 1], offset: 128>> to memref<2x64xf32>
  linalg.copy ins(%tile : memref<2x64xf32>) outs(%out : memref<2x64xf32>)
  memref.dealloc %tile : memref<2x64xf32>
  memref.dealloc %whole : memref<4x64xf32>
  return
}
// -----

// Not folded: the sliced buffer is written while the tile (copied in) is
// still read, so the tile must keep the bytes of before the write.
// CHECK-LABEL: func.func @written_after_copy_in
// CHECK:         memref.copy
func.func @written_after_copy_in(%out: memref<2x64xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %whole = memref.alloc() : memref<4x64xf32>
  %slice = memref.subview %whole[0, 0] [2, 64] [1, 1] : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1]>>
  %tile = memref.alloc() : memref<2x64xf32>
  memref.copy %slice, %tile : memref<2x64xf32, strided<[64, 1]>> to memref<2x64xf32>
  memref.store %v, %whole[%c0, %c0] : memref<4x64xf32>
  linalg.copy ins(%tile : memref<2x64xf32>) outs(%out : memref<2x64xf32>)
  memref.dealloc %tile : memref<2x64xf32>
  memref.dealloc %whole : memref<4x64xf32>
  return
}

// -----

// Not folded: the tile is written after it is copied in (it would write
// the sliced buffer).
// CHECK-LABEL: func.func @tile_written_after_copy_in
// CHECK:         memref.copy
func.func @tile_written_after_copy_in(%out: memref<2x64xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %whole = memref.alloc() : memref<4x64xf32>
  %slice = memref.subview %whole[0, 0] [2, 64] [1, 1] : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1]>>
  %tile = memref.alloc() : memref<2x64xf32>
  memref.copy %slice, %tile : memref<2x64xf32, strided<[64, 1]>> to memref<2x64xf32>
  memref.store %v, %tile[%c0, %c0] : memref<2x64xf32>
  linalg.copy ins(%tile : memref<2x64xf32>) outs(%out : memref<2x64xf32>)
  memref.dealloc %tile : memref<2x64xf32>
  memref.dealloc %whole : memref<4x64xf32>
  return
}

// -----

// Not folded: the sliced buffer is read while the tile (copied out) is
// being written, so it must still hold its old bytes there.
// CHECK-LABEL: func.func @read_before_copy_out
// CHECK:         memref.copy
func.func @read_before_copy_out(%out: memref<4x64xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %whole = memref.alloc() : memref<4x64xf32>
  linalg.fill ins(%v : f32) outs(%whole : memref<4x64xf32>)
  %tile = memref.alloc() : memref<2x64xf32>
  linalg.fill ins(%v : f32) outs(%tile : memref<2x64xf32>)
  linalg.copy ins(%whole : memref<4x64xf32>) outs(%out : memref<4x64xf32>)
  %slice = memref.subview %whole[0, 0] [2, 64] [1, 1] : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1]>>
  memref.copy %tile, %slice : memref<2x64xf32> to memref<2x64xf32, strided<[64, 1]>>
  linalg.copy ins(%whole : memref<4x64xf32>) outs(%out : memref<4x64xf32>)
  memref.dealloc %tile : memref<2x64xf32>
  memref.dealloc %whole : memref<4x64xf32>
  return
}

// -----

// Not folded: the slice is not contiguous (half of each row), and the
// sliced buffer of the second copy is the function's result, whose bytes
// are not the pass's to re-allocate.
// CHECK-LABEL: func.func @not_contiguous_or_returned
// CHECK:         memref.copy
// CHECK:         memref.copy
func.func @not_contiguous_or_returned(%out: memref<4x32xf32>) -> memref<4x64xf32> {
  %cst = arith.constant 1.0 : f32
  %whole = memref.alloc() : memref<4x64xf32>
  linalg.fill ins(%cst : f32) outs(%whole : memref<4x64xf32>)
  %slice = memref.subview %whole[0, 0] [4, 32] [1, 1] : memref<4x64xf32> to memref<4x32xf32, strided<[64, 1]>>
  %tile = memref.alloc() : memref<4x32xf32>
  memref.copy %slice, %tile : memref<4x32xf32, strided<[64, 1]>> to memref<4x32xf32>
  linalg.copy ins(%tile : memref<4x32xf32>) outs(%out : memref<4x32xf32>)
  %result = memref.alloc() : memref<4x64xf32>
  %rows = memref.subview %result[0, 0] [2, 64] [1, 1] : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1]>>
  %tile2 = memref.alloc() : memref<2x64xf32>
  linalg.fill ins(%cst : f32) outs(%tile2 : memref<2x64xf32>)
  memref.copy %tile2, %rows : memref<2x64xf32> to memref<2x64xf32, strided<[64, 1]>>
  memref.dealloc %tile : memref<4x32xf32>
  memref.dealloc %tile2 : memref<2x64xf32>
  memref.dealloc %whole : memref<4x64xf32>
  return %result : memref<4x64xf32>
}

// -----

// Not folded: a slice may start 8 bytes into its source ([4, 2] f32 rows
// of 8 bytes), and the kernels' vector accesses want 16.
// CHECK-LABEL: func.func @misaligned
// CHECK:         memref.copy
func.func @misaligned(%out: memref<1x2xf32>, %t: index) {
  %cst = arith.constant 1.0 : f32
  %whole = memref.alloc() : memref<4x2xf32>
  linalg.fill ins(%cst : f32) outs(%whole : memref<4x2xf32>)
  %slice = memref.subview %whole[%t, 0] [1, 2] [1, 1] : memref<4x2xf32> to memref<1x2xf32, strided<[2, 1], offset: ?>>
  %tile = memref.alloc() : memref<1x2xf32>
  memref.copy %slice, %tile : memref<1x2xf32, strided<[2, 1], offset: ?>> to memref<1x2xf32>
  linalg.copy ins(%tile : memref<1x2xf32>) outs(%out : memref<1x2xf32>)
  memref.dealloc %tile : memref<1x2xf32>
  memref.dealloc %whole : memref<4x2xf32>
  return
}
