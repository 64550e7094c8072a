// One case per verifier rule of the kernel dialect's collectives.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%c: memref<4xi32>, %r: memref<4xi32>) {
  // expected-error @+1 {{'moek.exchange_counts' op ranks must be at least 1, got 0}}
  moek.exchange_counts %c into %r {ranks = 0 : i64} : memref<4xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %r: memref<4xi32>) {
  // expected-error @+1 {{'moek.exchange_counts' op counts has 4 segments, which the ranks (3) do not divide}}
  moek.exchange_counts %c into %r {ranks = 3 : i64} : memref<4xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %r: memref<8xi32>) {
  // expected-error @+1 {{'moek.exchange_counts' op received ('memref<8xi32>') must have the type of counts ('memref<4xi32>')}}
  moek.exchange_counts %c into %r {ranks = 2 : i64} : memref<4xi32>, memref<8xi32>
  return
}

// -----

func.func @f(%c: memref<4xf32>, %r: memref<4xf32>) {
  // expected-error @+1 {{'moek.exchange_counts' op counts must have element type 'i32', got 'f32'}}
  moek.exchange_counts %c into %r {ranks = 2 : i64} : memref<4xf32>, memref<4xf32>
  return
}

// -----

func.func @f(%rows: memref<32x64xf32, strided<[128, 1]>>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x64xf32>) {
  // expected-error @+1 {{'moek.all_to_all' op rows must have the identity layout (contiguous rows), got 'memref<32x64xf32, strided<[128, 1]>>'}}
  moek.all_to_all %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32x64xf32, strided<[128, 1]>>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  return
}

// -----

func.func @f(%rows: memref<32x64xf32>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x64xf16>) {
  // expected-error @+1 {{'moek.all_to_all' op received has element type 'f16' but rows has 'f32': mixed element types are not allowed}}
  moek.all_to_all %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf16>
  return
}

// -----

func.func @f(%rows: memref<32x64xf32>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x32xf32>) {
  // expected-error @+1 {{'moek.all_to_all' op received dimension 1 (H) (32) does not match rows dimension 1 (H) (64)}}
  moek.all_to_all %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x32xf32>
  return
}

// -----

func.func @f(%rows: memref<32x64xf32>, %c: memref<4xi32>, %rc: memref<2xi32>, %out: memref<?x64xf32>) {
  // expected-error @+1 {{'moek.all_to_all' op received_counts ('memref<2xi32>') must have the type of counts ('memref<4xi32>')}}
  moek.all_to_all %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<2xi32>, memref<?x64xf32>
  return
}

// -----

func.func @f(%rows: memref<32xf32>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x64xf32>) {
  // expected-error @+1 {{'moek.all_to_all' op rows must be a rank-2 buffer [N, H], got 'memref<32xf32>'}}
  moek.all_to_all %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %i: memref<?x2xi32>, %w: memref<?x2xf32>) {
  // expected-error @+1 {{'moek.received_assignments' op indices and weights must have one slot ([N, 1]: top_k = 1)}}
  moek.received_assignments %c into %i, %w {ranks = 2 : i64}
      : memref<4xi32>, memref<?x2xi32>, memref<?x2xf32>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %i: memref<?x1xi32>, %w: memref<?x1xbf16>) {
  // expected-error @+1 {{'moek.received_assignments' op weights must have element type 'f32', got 'bf16'}}
  moek.received_assignments %c into %i, %w {ranks = 2 : i64}
      : memref<4xi32>, memref<?x1xi32>, memref<?x1xbf16>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %i: memref<8x1xi32>, %w: memref<6x1xf32>) {
  // expected-error @+1 {{'moek.received_assignments' op weights dimension 0 (N) (6) does not match indices dimension 0 (N) (8)}}
  moek.received_assignments %c into %i, %w {ranks = 2 : i64}
      : memref<4xi32>, memref<8x1xi32>, memref<6x1xf32>
  return
}

// -----

func.func @f(%w: memref<16x2xf32>, %r: memref<16x2xi32>, %out: memref<32x2xf32>) {
  // expected-error @+1 {{'moek.slots_to_rows' op out must have one column, got 'memref<32x2xf32>'}}
  moek.slots_to_rows %w, %r into %out : memref<16x2xf32>, memref<16x2xi32>, memref<32x2xf32>
  return
}

// -----

func.func @f(%w: memref<16x2xf32>, %r: memref<16x2xi32>, %out: memref<30x1xf32>) {
  // expected-error @+1 {{'moek.slots_to_rows' op out dimension 0 (T*k) (30) does not match T*k (32)}}
  moek.slots_to_rows %w, %r into %out : memref<16x2xf32>, memref<16x2xi32>, memref<30x1xf32>
  return
}

// -----

func.func @f(%in: memref<32x1xf32>, %r: memref<16x3xi32>, %w: memref<16x2xf32>) {
  // expected-error @+1 {{'moek.rows_to_slots' op rows dimension 1 (k) (3) does not match values dimension 1 (k) (2)}}
  moek.rows_to_slots %in, %r into %w : memref<32x1xf32>, memref<16x3xi32>, memref<16x2xf32>
  return
}

// -----

func.func @f(%in: memref<32x1xf32>, %r: memref<16x2xf32>, %w: memref<16x2xf32>) {
  // expected-error @+1 {{'moek.rows_to_slots' op rows must have element type 'i32', got 'f32'}}
  moek.rows_to_slots %in, %r into %w : memref<32x1xf32>, memref<16x2xf32>, memref<16x2xf32>
  return
}

// -----

func.func @f(%rows: memref<32x64xf32>, %other: memref<32x64xf32>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x64xf32>) {
  %e = moek.all_to_all_start %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  // expected-error @+1 {{'moek.all_to_all_wait' op must name the buffers of the all_to_all_start that made its event (rows and received)}}
  moek.all_to_all_wait %e, %other, %out : memref<32x64xf32>, memref<?x64xf32>
  return
}

// -----

func.func @f(%rows: memref<32x64xf32>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x32xf32>) {
  // expected-error @+1 {{'moek.all_to_all_start' op received dimension 1 (H) (32) does not match rows dimension 1 (H) (64)}}
  %e = moek.all_to_all_start %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x32xf32>
  return
}

// -----

func.func @f(%rows: memref<32x64xf32>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x64xf32>) {
  // expected-error @+1 {{'moek.all_to_all_start' op counts has 4 segments, which the ranks (3) do not divide}}
  %e = moek.all_to_all_start %rows, %c, %rc into %out {ranks = 3 : i64}
      : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
  return
}

// -----

func.func @f(%l: memref<4xi32>, %g: memref<5xi32>) {
  // expected-error @+1 {{'moek.all_reduce' op out ('memref<5xi32>') must have the type of in ('memref<4xi32>')}}
  moek.all_reduce %l into %g {ranks = 2 : i64} : memref<4xi32>, memref<5xi32>
  return
}

// -----

func.func @f(%rows: memref<32x64xindex>, %c: memref<4xi32>, %rc: memref<4xi32>, %out: memref<?x64xindex>) {
  // expected-error @+1 {{'moek.all_to_all' op rows must have an integer or floating-point element type, got 'index'}}
  moek.all_to_all %rows, %c, %rc into %out {ranks = 2 : i64}
      : memref<32x64xindex>, memref<4xi32>, memref<4xi32>, memref<?x64xindex>
  return
}
