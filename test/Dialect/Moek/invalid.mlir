// One case per verifier rule of every moek op; each message names the
// operand and the rule.
// RUN: moe-opt %s -split-input-file -verify-diagnostics
func.func @f(%x: memref<16x32x1xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op x must be a rank-2 buffer [T, H], got 'memref<16x32x1xf32>'}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32x1xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xi32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op x must have element type f32, bf16 or f16, got 'i32'}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xi32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op w_gate must be a rank-2 buffer [H, E], got 'memref<32xf32>'}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

// The kernels size their loops and scratch by H and E.
func.func @f(%x: memref<16x32xf32>, %wg: memref<?x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op w_gate must have a static shape [H, E], got 'memref<?x4xf32>'}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<?x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xbf16>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op w_gate has element type 'bf16' but x has 'f32': mixed element types are not allowed}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xbf16>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<64x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op w_gate dimension 0 (H) (64) does not match x dimension 1 (H) (32)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<64x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x0xf32>, %i: memref<16x0xi32>) {
  // expected-error @+1 {{'moek.route' op top_k (0) must be at least 1}}
  moek.route softmax top_k = 0 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x0xf32>, memref<16x0xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x8xf32>, %i: memref<16x8xi32>) {
  // expected-error @+1 {{'moek.route' op top_k (8) exceeds the number of experts (4)}}
  moek.route softmax top_k = 8 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x8xf32>, memref<16x8xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op scaling (0) must be finite and positive}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {scaling = 0.0 : f64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op scaling (inf) must be finite and positive}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {scaling = 0x7FF0000000000000 : f64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op n_group and topk_group must be given together}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {n_group = 2 : i64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op n_group (0) must be at least 1}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {n_group = 0 : i64, topk_group = 1 : i64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op topk_group (0) must be at least 1}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {n_group = 2 : i64, topk_group = 0 : i64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op topk_group (4) exceeds n_group (2)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {n_group = 2 : i64, topk_group = 4 : i64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op the number of experts (4) is not divisible by n_group (3)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {n_group = 3 : i64, topk_group = 1 : i64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op top_k (2) exceeds the experts in the topk_group best groups (1)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i {n_group = 4 : i64, topk_group = 1 : i64}
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %b: memref<4x1xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op bias must be a rank-1 buffer [E], got 'memref<4x1xf32>'}}
  moek.route softmax top_k = 2 %x, %wg bias(%b : memref<4x1xf32>) into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %b: memref<5xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op bias dimension 0 (E) (5) does not match the number of experts of w_gate (4)}}
  moek.route softmax top_k = 2 %x, %wg bias(%b : memref<5xf32>) into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xbf16>, %wg: memref<32x4xbf16>, %b: memref<4xf16>, %w: memref<16x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op bias must have element type f32 or that of x ('bf16'), got 'f16'}}
  moek.route softmax top_k = 2 %x, %wg bias(%b : memref<4xf16>) into %w, %i
      : memref<16x32xbf16>, memref<32x4xbf16>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<32xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op weights must be a rank-2 buffer [T, k], got 'memref<32xf32>'}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<32xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xbf16>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op weights must have element type 'f32', got 'bf16'}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xbf16>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<8x2xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op weights dimension 0 (T) (8) does not match x dimension 0 (T) (16)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<8x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x3xf32>, %i: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.route' op weights dimension 1 (k) (3) does not match top_k (2)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x3xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x2xi64>) {
  // expected-error @+1 {{'moek.route' op indices must have element type 'i32', got 'i64'}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi64>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<8x2xi32>) {
  // expected-error @+1 {{'moek.route' op indices dimension 0 (T) (8) does not match x dimension 0 (T) (16)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<8x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %wg: memref<32x4xf32>, %w: memref<16x2xf32>, %i: memref<16x3xi32>) {
  // expected-error @+1 {{'moek.route' op indices dimension 1 (k) (3) does not match top_k (2)}}
  moek.route softmax top_k = 2 %x, %wg into %w, %i
      : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x3xi32>
  return
}

// -----

func.func @f(%i: memref<32xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op indices must be a rank-2 buffer [T, k], got 'memref<32xi32>'}}
  moek.rank_assignments %i into %r, %c
      : memref<32xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi64>, %r: memref<16x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op indices must have element type 'i32', got 'i64'}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi64>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x?xi32>, %r: memref<16x?xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op indices dimension 1 (k) must be static, got 'memref<16x?xi32>'}}
  moek.rank_assignments %i into %r, %c
      : memref<16x?xi32>, memref<16x?xi32>, memref<4xi32>
  return
}

// -----

// Ranks, rows and offsets are i32: T*k = 2^31 rows cannot be numbered.
func.func @f(%i: memref<1073741824x2xi32>, %r: memref<1073741824x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op the number of assignments of indices (T*k) (2147483648) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
  moek.rank_assignments %i into %r, %c
      : memref<1073741824x2xi32>, memref<1073741824x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi64>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op ranks must have element type 'i32', got 'i64'}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi32>, memref<16x2xi64>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<8x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op ranks dimension 0 (T) (8) does not match indices dimension 0 (T) (16)}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi32>, memref<8x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x1xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op ranks dimension 1 (k) (1) does not match indices dimension 1 (k) (2)}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi32>, memref<16x1xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4x1xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op counts must be a rank-1 buffer [E], got 'memref<4x1xi32>'}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi32>, memref<16x2xi32>, memref<4x1xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi64>) {
  // expected-error @+1 {{'moek.rank_assignments' op counts must have element type 'i32', got 'i64'}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi64>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<?xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op counts must have a static number of experts}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi32>, memref<16x2xi32>, memref<?xi32>
  return
}

// -----

// The plan's rows and owners start at the offsets: the op must make them.
func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>, %o: memref<32xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op owners need offsets (a grouped row is its expert's offset plus the rank)}}
  moek.rank_assignments %i into %r, %c owners(%o : memref<32xi32>)
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>, %off: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op offsets dimension 0 (E+1) (4) does not match counts dimension 0 (E) plus one (5)}}
  moek.rank_assignments %i into %r, %c offsets(%off : memref<4xi32>)
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>, %off: memref<5xi32>, %rows: memref<16x3xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op rows dimension 1 (k) (3) does not match indices dimension 1 (k) (2)}}
  moek.rank_assignments %i into %r, %c offsets(%off : memref<5xi32>) rows(%rows : memref<16x3xi32>)
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>, %off: memref<5xi32>, %o: memref<16xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op owners dimension 0 (T*k) (16) does not match the number of assignments of indices (T*k) (32)}}
  moek.rank_assignments %i into %r, %c offsets(%off : memref<5xi32>) owners(%o : memref<16xi32>)
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

// A token picks an expert at most once.
func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<1xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op indices dimension 1 (k) (2) exceeds the number of experts of counts (1)}}
  moek.rank_assignments %i into %r, %c
      : memref<16x2xi32>, memref<16x2xi32>, memref<1xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op capacity_factor (-1.5) must be finite and non-negative (0 is dropless)}}
  moek.rank_assignments %i into %r, %c {capacity_factor = -1.5 : f64}
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op capacity_factor (inf) must be finite and non-negative (0 is dropless)}}
  moek.rank_assignments %i into %r, %c {capacity_factor = 0x7FF0000000000000 : f64}
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %c: memref<4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op capacity_factor (nan) must be finite and non-negative (0 is dropless)}}
  moek.rank_assignments %i into %r, %c {capacity_factor = 0x7FF8000000000000 : f64}
      : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%c: memref<4x1xi32>, %o: memref<5xi32>) {
  // expected-error @+1 {{'moek.exclusive_scan' op counts must be a rank-1 buffer [E], got 'memref<4x1xi32>'}}
  moek.exclusive_scan %c into %o : memref<4x1xi32>, memref<5xi32>
  return
}

// -----

func.func @f(%c: memref<4xf32>, %o: memref<5xi32>) {
  // expected-error @+1 {{'moek.exclusive_scan' op counts must have element type 'i32', got 'f32'}}
  moek.exclusive_scan %c into %o : memref<4xf32>, memref<5xi32>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %o: memref<5x1xi32>) {
  // expected-error @+1 {{'moek.exclusive_scan' op offsets must be a rank-1 buffer [E+1], got 'memref<5x1xi32>'}}
  moek.exclusive_scan %c into %o : memref<4xi32>, memref<5x1xi32>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %o: memref<5xi64>) {
  // expected-error @+1 {{'moek.exclusive_scan' op offsets must have element type 'i32', got 'i64'}}
  moek.exclusive_scan %c into %o : memref<4xi32>, memref<5xi64>
  return
}

// -----

func.func @f(%c: memref<4xi32>, %o: memref<4xi32>) {
  // expected-error @+1 {{'moek.exclusive_scan' op offsets dimension 0 (E+1) (4) does not match counts dimension 0 (E) plus one (5)}}
  moek.exclusive_scan %c into %o : memref<4xi32>, memref<4xi32>
  return
}

// -----

func.func @f(%i: memref<32xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op indices must be a rank-2 buffer [T, k], got 'memref<32xi32>'}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<32xi32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi64>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op indices must have element type 'i32', got 'i64'}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi64>, memref<16x2xi32>, memref<5xi32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<1073741824x2xi32>, %r: memref<1073741824x2xi32>, %o: memref<5xi32>, %out: memref<1073741824x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op the number of assignments of indices (T*k) (2147483648) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<1073741824x2xi32>, memref<1073741824x2xi32>, memref<5xi32>, memref<1073741824x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<8x2xi32>, %o: memref<5xi32>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op ranks dimension 0 (T) (8) does not match indices dimension 0 (T) (16)}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<8x2xi32>, memref<5xi32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x1xi32>, %o: memref<5xi32>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op ranks dimension 1 (k) (1) does not match indices dimension 1 (k) (2)}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x1xi32>, memref<5xi32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi64>, %o: memref<5xi32>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op ranks must have element type 'i32', got 'i64'}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi64>, memref<5xi32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5x1xi32>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op offsets must be a rank-1 buffer [E+1], got 'memref<5x1xi32>'}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5x1xi32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi64>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op offsets must have element type 'i32', got 'i64'}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi64>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<32xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op indices must be a rank-2 buffer [T, k], got 'memref<32xi32>'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<32xi32>, memref<16x2xi32>, memref<5xi32>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi64>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op indices must have element type 'i32', got 'i64'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi64>, memref<16x2xi32>, memref<5xi32>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<1073741824x2xi32>, %r: memref<1073741824x2xi32>, %o: memref<5xi32>, %out: memref<2147483648xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op the number of assignments of indices (T*k) (2147483648) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
  moek.row_assignments %i, %r, %o into %out
      : memref<1073741824x2xi32>, memref<1073741824x2xi32>, memref<5xi32>, memref<2147483648xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<8x2xi32>, %o: memref<5xi32>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op ranks dimension 0 (T) (8) does not match indices dimension 0 (T) (16)}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<8x2xi32>, memref<5xi32>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x1xi32>, %o: memref<5xi32>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op ranks dimension 1 (k) (1) does not match indices dimension 1 (k) (2)}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x1xi32>, memref<5xi32>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi64>, %o: memref<5xi32>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op ranks must have element type 'i32', got 'i64'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi64>, memref<5xi32>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5x1xi32>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op offsets must be a rank-1 buffer [E+1], got 'memref<5x1xi32>'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5x1xi32>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi64>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op offsets must have element type 'i32', got 'i64'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi64>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<16x2xi64>) {
  // expected-error @+1 {{'moek.assignment_rows' op rows must have element type 'i32', got 'i64'}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xi64>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<8x2xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op rows dimension 0 (T) (8) does not match indices dimension 0 (T) (16)}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<8x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<16x3xi32>) {
  // expected-error @+1 {{'moek.assignment_rows' op rows dimension 1 (k) (3) does not match indices dimension 1 (k) (2)}}
  moek.assignment_rows %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<16x3xi32>
  return
}

// -----

func.func @f(%i: memref<16x?xi32>, %r: memref<16x?xi32>, %o: memref<5xi32>, %out: memref<32xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op indices dimension 1 (k) must be static, got 'memref<16x?xi32>'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x?xi32>, memref<16x?xi32>, memref<5xi32>, memref<32xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<16x2xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op owners must be a rank-1 buffer [T*k], got 'memref<16x2xi32>'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<32xi64>) {
  // expected-error @+1 {{'moek.row_assignments' op owners must have element type 'i32', got 'i64'}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<32xi64>
  return
}

// -----

func.func @f(%i: memref<16x2xi32>, %r: memref<16x2xi32>, %o: memref<5xi32>, %out: memref<16xi32>) {
  // expected-error @+1 {{'moek.row_assignments' op owners dimension 0 (T*k) (16) does not match the number of assignments of indices (T*k) (32)}}
  moek.row_assignments %i, %r, %o into %out
      : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<16xi32>
  return
}

// -----

func.func @f(%x: memref<512xf32>, %r: memref<16x2xi32>, %o: memref<32x32xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op x must be a rank-2 buffer [T, H], got 'memref<512xf32>'}}
  moek.gather_rows %x, %r into %o
      : memref<512xf32>, memref<16x2xi32>, memref<32x32xf32>
  return
}

// -----

func.func @f(%x: memref<16x32xi32>, %r: memref<16x2xi32>, %o: memref<32x32xi32>) {
  // expected-error @+1 {{'moek.gather_rows' op x must have element type f32, bf16 or f16, got 'i32'}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xi32>, memref<16x2xi32>, memref<32x32xi32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %r: memref<32xi32>, %o: memref<32x32xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op rows must be a rank-2 buffer [T, k], got 'memref<32xi32>'}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xf32>, memref<32xi32>, memref<32x32xf32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %r: memref<16x2xi64>, %o: memref<32x32xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op rows must have element type 'i32', got 'i64'}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xf32>, memref<16x2xi64>, memref<32x32xf32>
  return
}

// -----

func.func @f(%x: memref<1073741824x32xf32>, %r: memref<1073741824x2xi32>, %o: memref<2147483648x32xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op the number of assignments of rows (T*k) (2147483648) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
  moek.gather_rows %x, %r into %o
      : memref<1073741824x32xf32>, memref<1073741824x2xi32>, memref<2147483648x32xf32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %r: memref<8x2xi32>, %o: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op rows dimension 0 (T) (8) does not match x dimension 0 (T) (16)}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xf32>, memref<8x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %r: memref<16x2xi32>, %o: memref<1024xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op out must be a rank-2 buffer [T*k, H], got 'memref<1024xf32>'}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xf32>, memref<16x2xi32>, memref<1024xf32>
  return
}

// -----

// The kernel copies elements: no conversion.
func.func @f(%x: memref<16x32xf32>, %r: memref<16x2xi32>, %o: memref<32x32xbf16>) {
  // expected-error @+1 {{'moek.gather_rows' op out has element type 'bf16' but x has 'f32': mixed element types are not allowed}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xf32>, memref<16x2xi32>, memref<32x32xbf16>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %r: memref<16x2xi32>, %o: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op out dimension 0 (T*k) (16) does not match the number of assignments of rows (T*k) (32)}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xf32>, memref<16x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %r: memref<16x2xi32>, %o: memref<32x64xf32>) {
  // expected-error @+1 {{'moek.gather_rows' op out dimension 1 (H) (64) does not match x dimension 1 (H) (32)}}
  moek.gather_rows %x, %r into %o
      : memref<16x32xf32>, memref<16x2xi32>, memref<32x64xf32>
  return
}

// -----

func.func @f(%a: memref<32x32x1xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a must be a rank-2 buffer [rows, K], got 'memref<32x32x1xf32>'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32x1xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xi8>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a must have element type f32, bf16 or f16, got 'i8'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xi8>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op b must be a rank-3 buffer [E, K, N], got 'memref<32x48xf32>'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

// The kernels size their loops and scratch by K and N.
func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x?xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op b must have a static shape [E, K, N], got 'memref<4x32x?xf32>'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x?xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xbf16>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op b has element type 'f32' but a has 'bf16': mixed element types are not allowed}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xbf16>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x64x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a dimension 1 (K) (32) does not match b dimension 1 (K) (64)}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x64x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5x1xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op offsets must be a rank-1 buffer [E+1], got 'memref<5x1xi32>'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5x1xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xindex>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op offsets must have element type 'i32', got 'index'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xindex>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<4xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op offsets dimension 0 (E+1) (4) does not match b dimension 0 (E) plus one (5)}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<4xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<1536xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op c must be a rank-2 buffer [rows, N], got 'memref<1536xf32>'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<1536xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf64>) {
  // expected-error @+1 {{'moek.grouped_matmul' op c must have element type f32, bf16 or f16, got 'f64'}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf64>
  return
}

// -----

// Only the generic form can give one end of the expert range.
func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %first: index, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op first_expert and last_expert go together}}
  "moek.grouped_matmul"(%a, %b, %o, %first, %c)
      <{epilogue = 0 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0, 0, 1, 0>, top_k = 2 : i64}>
      : (memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, index, memref<32x48xf32>) -> ()
  return
}

// -----

// A constant expert range lies in [0, E].
func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  %first = arith.constant -1 : index
  %last = arith.constant 4 : index
  // expected-error @+1 {{'moek.grouped_matmul' op first_expert (-1) must be between 0 and the number of experts of b (4)}}
  moek.grouped_matmul store %a, %b, %o experts(%first, %last) into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  %first = arith.constant 5 : index
  %last = arith.constant 5 : index
  // expected-error @+1 {{'moek.grouped_matmul' op first_expert (5) must be between 0 and the number of experts of b (4)}}
  moek.grouped_matmul store %a, %b, %o experts(%first, %last) into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  %first = arith.constant 2 : index
  %last = arith.constant 1 : index
  // expected-error @+1 {{'moek.grouped_matmul' op last_expert (1) must be between first_expert (2) and the number of experts of b (4)}}
  moek.grouped_matmul store %a, %b, %o experts(%first, %last) into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  %first = arith.constant 0 : index
  %last = arith.constant 5 : index
  // expected-error @+1 {{'moek.grouped_matmul' op last_expert (5) must be between first_expert (0) and the number of experts of b (4)}}
  moek.grouped_matmul store %a, %b, %o experts(%first, %last) into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

// owners / top_k is a token: top_k must be a real number of slots.
func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op top_k (0) must be at least 1}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 0 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op top_k (5) exceeds the number of experts of b (4)}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 5 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a gather prologue or a scatter epilogue needs the owners map}}
  moek.grouped_matmul store %a, %b, %o into %c {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x24xf32>, %b: memref<4x24x40xf32>, %o: memref<5xi32>, %weights: memref<16x2xf32>, %c: memref<16x40xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a gather prologue or a scatter epilogue needs the owners map}}
  moek.grouped_matmul scatter_add %a, %b, %o weights(%weights : memref<16x2xf32>) into %c {top_k = 2 : i64}
      : memref<32x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  return
}

// -----

// An operand the kernel would ignore is a mistake.
func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op owners is read only by a gather prologue or a scatter epilogue}}
  moek.grouped_matmul store %a, %b, %o owners(%owners : memref<32xi32>) into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

// With transpose_b, b is [E, N, K]: K is its last dimension.
func.func @f(%a: memref<32x24xbf16>, %b: memref<4x24x40xbf16>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<16x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a dimension 1 (K) (24) does not match b dimension 2 (K) (40)}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) into %c {top_k = 2 : i64, transpose_b}
      : memref<32x24xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<16x24xf32>
  return
}

// -----

func.func @f(%a: memref<16x40xbf16>, %b: memref<4x24x40xbf16>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x40xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op c dimension 1 (40) does not match b dimension 1 (N) (24)}}
  moek.grouped_matmul store %a, %b, %o owners(%owners : memref<32xi32>) into %c {gather, top_k = 2 : i64, transpose_b}
      : memref<16x40xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<32x40xf32>
  return
}

// -----

// Only an f32 a (the backward's f32 rows on the CPU) may differ from b's type.
func.func @f(%a: memref<32x40xf16>, %b: memref<4x24x40xbf16>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<16x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op b has element type 'bf16' but a has 'f16': mixed element types are not allowed}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) into %c {top_k = 2 : i64, transpose_b}
      : memref<32x40xf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<16x24xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %weights: memref<16x2xf32>, %c: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op weights are read only by a scatter epilogue}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xi32>) weights(%weights : memref<16x2xf32>) into %c {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x47xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x23xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a GLU epilogue needs an even N, got 47}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xi32>) into %c {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x47xf32>, memref<5xi32>, memref<32x23xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op c dimension 1 (48) does not match half of b dimension 2 (N) (24)}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xi32>) into %c {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op c dimension 1 (24) does not match b dimension 2 (N) (48)}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<16x2xi32>, %c: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op owners must be a rank-1 buffer [T*k], got 'memref<16x2xi32>'}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<16x2xi32>) into %c {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xindex>, %c: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op owners must have element type 'i32', got 'index'}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xindex>) into %c {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%a: memref<1073741824x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<2147483648xi32>, %c: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op owners dimension 0 (T*k) (2147483648) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<2147483648xi32>) into %c {gather, top_k = 2 : i64}
      : memref<1073741824x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

// The gather prologue reads token owners[r] / top_k of a [T, K].
func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op owners dimension 0 (T*k) (32) does not match a dimension 0 (T) times top_k (64)}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xi32>) into %c {gather, top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

// Without a gather, a and c hold the same grouped rows.
func.func @f(%a: memref<32x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %c: memref<16x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op c dimension 0 (rows) (16) does not match a dimension 0 (rows) (32)}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<16x48xf32>
  return
}

// -----

// The scatter-add accumulates in f32: a bf16 c would be rounded after every expert.
func.func @f(%a: memref<32x24xbf16>, %b: memref<4x24x40xbf16>, %o: memref<5xi32>, %owners: memref<32xi32>, %weights: memref<16x2xf32>, %c: memref<16x40xbf16>) {
  // expected-error @+1 {{'moek.grouped_matmul' op c must have element type 'f32', got 'bf16'}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) weights(%weights : memref<16x2xf32>) into %c {top_k = 2 : i64}
      : memref<32x24xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<16x40xbf16>
  return
}

// -----

func.func @f(%a: memref<32x24xf32>, %b: memref<4x24x40xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %weights: memref<8x2xf32>, %c: memref<8x40xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op owners dimension 0 (T*k) (32) does not match c dimension 0 (T) times top_k (16)}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) weights(%weights : memref<8x2xf32>) into %c {top_k = 2 : i64}
      : memref<32x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<8x40xf32>
  return
}

// -----

func.func @f(%a: memref<32x24xf32>, %b: memref<4x24x40xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %weights: memref<32xf32>, %c: memref<16x40xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op weights must be a rank-2 buffer [T, k], got 'memref<32xf32>'}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) weights(%weights : memref<32xf32>) into %c {top_k = 2 : i64}
      : memref<32x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  return
}

// -----

func.func @f(%a: memref<32x24xf32>, %b: memref<4x24x40xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %weights: memref<16x2xbf16>, %c: memref<16x40xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op weights must have element type 'f32', got 'bf16'}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) weights(%weights : memref<16x2xbf16>) into %c {top_k = 2 : i64}
      : memref<32x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  return
}

// -----

func.func @f(%a: memref<32x24xf32>, %b: memref<4x24x40xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %weights: memref<8x2xf32>, %c: memref<16x40xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op weights dimension 0 (T) (8) does not match c dimension 0 (T) (16)}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) weights(%weights : memref<8x2xf32>) into %c {top_k = 2 : i64}
      : memref<32x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  return
}

// -----

func.func @f(%a: memref<32x24xf32>, %b: memref<4x24x40xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %weights: memref<16x4xf32>, %c: memref<16x40xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op weights dimension 1 (k) (4) does not match top_k (2)}}
  moek.grouped_matmul scatter_add %a, %b, %o owners(%owners : memref<32xi32>) weights(%weights : memref<16x4xf32>) into %c {top_k = 2 : i64}
      : memref<32x24xf32>, memref<4x24x40xf32>, memref<5xi32>, memref<16x40xf32>
  return
}

// -----

func.func @f(%h: memref<1536xf32>, %o: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.glu' op h must be a rank-2 buffer [rows, 2F], got 'memref<1536xf32>'}}
  moek.glu silu_glu %h into %o : memref<1536xf32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%h: memref<32x48xi32>, %o: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.glu' op h must have element type f32, bf16 or f16, got 'i32'}}
  moek.glu silu_glu %h into %o : memref<32x48xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%h: memref<32x48xf32>, %o: memref<768xf32>) {
  // expected-error @+1 {{'moek.glu' op out must be a rank-2 buffer [rows, F], got 'memref<768xf32>'}}
  moek.glu silu_glu %h into %o : memref<32x48xf32>, memref<768xf32>
  return
}

// -----

func.func @f(%h: memref<32x48xf32>, %o: memref<32x24xf64>) {
  // expected-error @+1 {{'moek.glu' op out must have element type f32, bf16 or f16, got 'f64'}}
  moek.glu silu_glu %h into %o : memref<32x48xf32>, memref<32x24xf64>
  return
}

// -----

func.func @f(%h: memref<32x48xf32>, %o: memref<16x24xf32>) {
  // expected-error @+1 {{'moek.glu' op out dimension 0 (rows) (16) does not match h dimension 0 (rows) (32)}}
  moek.glu silu_glu %h into %o : memref<32x48xf32>, memref<16x24xf32>
  return
}

// -----

func.func @f(%h: memref<32x47xf32>, %o: memref<32x23xf32>) {
  // expected-error @+1 {{'moek.glu' op h dimension 1 (2F) must be even (gate and up halves), got 47}}
  moek.glu silu_glu %h into %o : memref<32x47xf32>, memref<32x23xf32>
  return
}

// -----

func.func @f(%h: memref<32x48xf32>, %o: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.glu' op out dimension 1 (F) (48) does not match half of h dimension 1 (2F) (24)}}
  moek.glu silu_glu %h into %o : memref<32x48xf32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%e: memref<1024xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op expert_out must be a rank-2 buffer [T*k, H], got 'memref<1024xf32>'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<1024xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xi32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op expert_out must have element type f32, bf16 or f16, got 'i32'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xi32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<32xf32>, %r: memref<16x2xi32>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op weights must be a rank-2 buffer [T, k], got 'memref<32xf32>'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<32xf32>, memref<16x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xbf16>, %r: memref<16x2xi32>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op weights must have element type 'f32', got 'bf16'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xbf16>, memref<16x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi64>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op rows must have element type 'i32', got 'i64'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi64>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xf32>, %r: memref<8x2xi32>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op rows dimension 0 (T) (8) does not match weights dimension 0 (T) (16)}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<8x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xf32>, %r: memref<16x1xi32>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op rows dimension 1 (k) (1) does not match weights dimension 1 (k) (2)}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<16x1xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<?x32xf32>, %w: memref<1073741824x2xf32>, %r: memref<1073741824x2xi32>, %y: memref<1073741824x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op the number of assignments of rows (T*k) (2147483648) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
  moek.combine_rows %e, %w, %r into %y
      : memref<?x32xf32>, memref<1073741824x2xf32>, memref<1073741824x2xi32>, memref<1073741824x32xf32>
  return
}

// -----

func.func @f(%e: memref<16x32xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op expert_out dimension 0 (T*k) (16) does not match the number of assignments of rows (T*k) (32)}}
  moek.combine_rows %e, %w, %r into %y
      : memref<16x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<512xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op y must be a rank-2 buffer [T, H], got 'memref<512xf32>'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<512xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<16x32xi32>) {
  // expected-error @+1 {{'moek.combine_rows' op y must have element type f32, bf16 or f16, got 'i32'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x32xi32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<8x32xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op y dimension 0 (T) (8) does not match weights dimension 0 (T) (16)}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<8x32xf32>
  return
}

// -----

func.func @f(%e: memref<32x32xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<16x64xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op y dimension 1 (H) (64) does not match expert_out dimension 1 (H) (32)}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x64xf32>
  return
}

// -----

// The kernel accumulates a row of y in scratch of H elements.
func.func @f(%e: memref<32x?xf32>, %w: memref<16x2xf32>, %r: memref<16x2xi32>, %y: memref<16x?xf32>) {
  // expected-error @+1 {{'moek.combine_rows' op y dimension 1 (H) must be static, got 'memref<16x?xf32>'}}
  moek.combine_rows %e, %w, %r into %y
      : memref<32x?xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x?xf32>
  return
}

// -----

// Checked sizes (found by moe-fuzz-ir): E = 2^63 - 1 made the rule "offsets
// has E + 1 entries" overflow; a buffer's size in bytes must fit in 64 bits.
func.func @f(%a: memref<32x32xf32>, %b: memref<9223372036854775807x32x48xf32>, %o: memref<5xi32>, %c: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op b ('memref<9223372036854775807x32x48xf32>') is too large: its size in bytes does not fit in 64 bits}}
  moek.grouped_matmul store %a, %b, %o into %c {top_k = 2 : i64}
      : memref<32x32xf32>, memref<9223372036854775807x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

// The GPU's ranking scratch has a row per slice of 64 tokens: 130 tokens
// need 3.
func.func @f(%i: memref<130x2xi32>, %r: memref<130x2xi32>, %c: memref<4xi32>, %p: memref<2x4xi32>) {
  // expected-error @+1 {{'moek.rank_assignments' op partials dimension 0 (ceil(T / 64)) (2) does not match slices of indices (3)}}
  moek.rank_assignments %i into %r, %c partials(%p : memref<2x4xi32>)
      : memref<130x2xi32>, memref<130x2xi32>, memref<4xi32>
  return
}

// -----

// scatter_store writes c[t] once per row: two rows of one token would race.
func.func @f(%a: memref<32x24xbf16>, %b: memref<4x24x40xbf16>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<16x40xbf16>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a scatter_store epilogue needs top_k = 1 (each token one row), got top_k = 2}}
  moek.grouped_matmul scatter_store %a, %b, %o owners(%owners : memref<32xi32>) into %c {top_k = 2 : i64}
      : memref<32x24xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<16x40xbf16>
  return
}

// -----

func.func @f(%a: memref<16x24xbf16>, %b: memref<4x24x40xbf16>, %o: memref<5xi32>, %c: memref<16x40xbf16>) {
  // expected-error @+1 {{'moek.grouped_matmul' op a gather prologue or a scatter epilogue needs the owners map}}
  moek.grouped_matmul scatter_store %a, %b, %o into %c {top_k = 1 : i64}
      : memref<16x24xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<16x40xbf16>
  return
}

// -----

func.func @f(%a: memref<16x24xbf16>, %b: memref<4x24x40xbf16>, %o: memref<5xi32>, %owners: memref<16xi32>, %c: memref<8x40xbf16>) {
  // expected-error @+1 {{'moek.grouped_matmul' op owners dimension 0 (T*k) (16) does not match c dimension 0 (T) times top_k (8)}}
  moek.grouped_matmul scatter_store %a, %b, %o owners(%owners : memref<16xi32>) into %c {top_k = 1 : i64}
      : memref<16x24xbf16>, memref<4x24x40xbf16>, memref<5xi32>, memref<8x40xbf16>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x48xf32>, %h: memref<32x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op pre_activation is written only by a GLU epilogue, not by store}}
  moek.grouped_matmul store %a, %b, %o owners(%owners : memref<32xi32>) into %c pre_activation(%h : memref<32x48xf32>) {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x48xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x24xf32>, %h: memref<32x24xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op pre_activation dimension 1 (N) (24) does not match b dimension 2 (N) (48)}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xi32>) into %c pre_activation(%h : memref<32x24xf32>) {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x24xf32>, %h: memref<16x48xf32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op pre_activation dimension 0 (rows) (16) does not match c dimension 0 (rows) (32)}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xi32>) into %c pre_activation(%h : memref<16x48xf32>) {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<4x32x48xf32>, %o: memref<5xi32>, %owners: memref<32xi32>, %c: memref<32x24xf32>, %h: memref<32x48xi32>) {
  // expected-error @+1 {{'moek.grouped_matmul' op pre_activation must have element type f32, bf16 or f16, got 'i32'}}
  moek.grouped_matmul silu_glu %a, %b, %o owners(%owners : memref<32xi32>) into %c pre_activation(%h : memref<32x48xi32>) {gather, top_k = 2 : i64}
      : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>, memref<32x24xf32>
  return
}

// -----

func.func @f(%offsets: memref<5xi32>, %tile: index) {
  // expected-error @+1 {{'moek.row_tile' op rows_per_tile (0) must be at least 1}}
  %e, %b, %end = moek.row_tile %offsets[%tile] rows_per_tile 0 : memref<5xi32>
  return
}

// -----

func.func @f(%offsets: memref<5xf32>, %tile: index) {
  // expected-error @+1 {{'moek.row_tile' op offsets must have element type 'i32', got 'f32'}}
  %e, %b, %end = moek.row_tile %offsets[%tile] rows_per_tile 128 : memref<5xf32>
  return
}

// -----

// The tile shares its grouped matmul's rules.
func.func @f(%x: memref<16x32xbf16>, %w1: memref<4x32x48xbf16>, %offsets: memref<5xi32>,
             %act: memref<32x24xbf16>, %i: index) {
  // expected-error @+1 {{'moek.grouped_matmul_tile' op a gather prologue or a scatter epilogue needs the owners map}}
  moek.grouped_matmul_tile silu_glu %x, %w1, %offsets into %act tile(%i, %i, %i, %i)
      shape [128, 256, 32, 4, 2, 4] {gather, top_k = 2 : i64}
      : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
  return
}

// -----

func.func @f(%x: memref<32x32xbf16>, %w1: memref<4x32x48xbf16>, %offsets: memref<5xi32>,
             %act: memref<32x24xbf16>, %i: index) {
  // expected-error @+1 {{'moek.grouped_matmul_tile' op tile must be six positive sizes [BM, BN, BK, STAGES, WARPS_M, WARPS_N], got 4 values}}
  moek.grouped_matmul_tile silu_glu %x, %w1, %offsets into %act tile(%i, %i, %i, %i)
      shape [128, 256, 32, 4]
      : memref<32x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x24xbf16>
  return
}

// -----

// The k tiles before a tile of a persistent loop come with those after it.
func.func @f(%x: memref<32x32xbf16>, %w: memref<4x32x48xbf16>, %offsets: memref<5xi32>,
             %c: memref<32x48xbf16>, %i: index) {
  // expected-error @+1 {{'moek.grouped_matmul_tile' op k_tiles (the k tiles before the tile) and the result (those after it) go together}}
  moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%i, %i, %i, %i) k_tiles(%i)
      shape [128, 256, 64, 4, 8, 1]
      : memref<32x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x48xbf16>
  return
}

// -----

func.func @f(%x: memref<32x32xbf16>, %w: memref<4x32x48xbf16>, %offsets: memref<5xi32>,
             %c: memref<32x48xbf16>, %i: index) {
  // expected-error @+1 {{'moek.grouped_matmul_tile' op cluster_size (0) must be at least 1}}
  %after = moek.grouped_matmul_tile store %x, %w, %offsets into %c tile(%i, %i, %i, %i) k_tiles(%i)
      shape [128, 256, 64, 4, 8, 1] {cluster_size = 0 : i64}
      : memref<32x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>, memref<32x48xbf16> -> index
  return
}
