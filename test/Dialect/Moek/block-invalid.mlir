// One case per verifier rule of the block's kernels (moek.matmul,
// moek.rms_norm, moek.flash_attention).
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%a: memref<16x32xbf16>, %b: memref<24x8xbf16>, %c: memref<16x8xf32>) {
  // expected-error @+1 {{'moek.matmul' op b dimension 0 (K) (24) does not match a dimension 1 (K) (32)}}
  moek.matmul %a, %b into %c : memref<16x32xbf16>, memref<24x8xbf16>, memref<16x8xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xbf16>, %b: memref<32x8xf32>, %c: memref<16x8xf32>) {
  // expected-error @+1 {{'moek.matmul' op b has element type 'f32' but a has 'bf16': mixed element types are not allowed}}
  moek.matmul %a, %b into %c : memref<16x32xbf16>, memref<32x8xf32>, memref<16x8xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xbf16>, %b: memref<32x8xbf16>, %c: memref<16x8xf16>) {
  // expected-error @+1 {{'moek.matmul' op c must have element type f32 or that of a ('bf16'), got 'f16'}}
  moek.matmul %a, %b into %c : memref<16x32xbf16>, memref<32x8xbf16>, memref<16x8xf16>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<?x8xf32>, %c: memref<16x8xf32>) {
  // expected-error @+1 {{'moek.matmul' op b must have a static shape [K, N], got 'memref<?x8xf32>'}}
  moek.matmul %a, %b into %c : memref<16x32xf32>, memref<?x8xf32>, memref<16x8xf32>
  return
}

// -----

func.func @f(%a: memref<16x32xf32>, %b: memref<32x8xf32>, %c: memref<12x8xf32>) {
  // expected-error @+1 {{'moek.matmul' op c dimension 0 (M) (12) does not match a dimension 0 (M) (16)}}
  moek.matmul %a, %b into %c : memref<16x32xf32>, memref<32x8xf32>, memref<12x8xf32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %g: memref<24xf32>, %out: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.rms_norm' op x dimension 1 (H) (32) does not match g dimension 0 (H) (24)}}
  moek.rms_norm %x, %g into %out : memref<16x32xf32>, memref<24xf32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %g: memref<32xf32>, %out: memref<16x32xbf16>) {
  // expected-error @+1 {{'moek.rms_norm' op out has element type 'bf16' but x has 'f32': mixed element types are not allowed}}
  moek.rms_norm %x, %g into %out : memref<16x32xf32>, memref<32xf32>, memref<16x32xbf16>
  return
}

// -----

func.func @f(%x: memref<16x32xf32>, %g: memref<32xf32>, %out: memref<16x32xf32>) {
  // expected-error @+1 {{'moek.rms_norm' op epsilon must be positive and finite, got 0}}
  moek.rms_norm %x, %g into %out {epsilon = 0.0 : f64} : memref<16x32xf32>, memref<32xf32>, memref<16x32xf32>
  return
}

// -----

func.func @f(%x: memref<2x16x32xf32>, %g: memref<32xf32>, %out: memref<2x16x32xf32>) {
  // expected-error @+1 {{'moek.rms_norm' op x must be a rank-2 buffer [T, H], got 'memref<2x16x32xf32>'}}
  moek.rms_norm %x, %g into %out : memref<2x16x32xf32>, memref<32xf32>, memref<2x16x32xf32>
  return
}

// -----

func.func @f(%q: memref<2x8x32xf32>, %k: memref<2x8x24xf32>, %v: memref<2x8x24xf32>, %o: memref<2x8x32xf32>) {
  // expected-error @+1 {{'moek.flash_attention' op heads (4) must be a positive multiple of kv_heads (3): each key/value head serves a group of query heads}}
  moek.flash_attention heads = 4 kv_heads = 3 %q, %k, %v into %o
      : memref<2x8x32xf32>, memref<2x8x24xf32>, memref<2x8x24xf32>, memref<2x8x32xf32>
  return
}

// -----

func.func @f(%q: memref<2x8x30xf32>, %k: memref<2x8x16xf32>, %v: memref<2x8x16xf32>, %o: memref<2x8x30xf32>) {
  // expected-error @+1 {{'moek.flash_attention' op q dimension 2 (30) must be a positive multiple of heads (4): heads*dh}}
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x8x30xf32>, memref<2x8x16xf32>, memref<2x8x16xf32>, memref<2x8x30xf32>
  return
}

// -----

func.func @f(%q: memref<2x8x32xf32>, %k: memref<2x8x8xf32>, %v: memref<2x8x16xf32>, %o: memref<2x8x32xf32>) {
  // expected-error @+1 {{'moek.flash_attention' op k dimension 2 (kv_heads*dh) (8) does not match kv_heads*dh (16)}}
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x8x32xf32>, memref<2x8x8xf32>, memref<2x8x16xf32>, memref<2x8x32xf32>
  return
}

// -----

func.func @f(%q: memref<2x8x32xf32>, %k: memref<2x6x16xf32>, %v: memref<2x8x16xf32>, %o: memref<2x8x32xf32>) {
  // expected-error @+1 {{'moek.flash_attention' op k dimension 1 (L) (6) does not match o dimension 1 (L) (8)}}
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x8x32xf32>, memref<2x6x16xf32>, memref<2x8x16xf32>, memref<2x8x32xf32>
  return
}

// -----

func.func @f(%q: memref<2x8x32xf16>, %k: memref<2x8x16xf32>, %v: memref<2x8x16xf32>, %o: memref<2x8x32xbf16>) {
  // expected-error @+1 {{'moek.flash_attention' op q must have element type f32 or that of o ('bf16'), got 'f16'}}
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x8x32xf16>, memref<2x8x16xf32>, memref<2x8x16xf32>, memref<2x8x32xbf16>
  return
}

// -----

func.func @f(%q: memref<2x8x?xf32>, %k: memref<2x8x16xf32>, %v: memref<2x8x16xf32>, %o: memref<2x8x32xf32>) {
  // expected-error @+1 {{'moek.flash_attention' op q dimension 2 must be static, got 'memref<2x8x?xf32>'}}
  moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
      : memref<2x8x?xf32>, memref<2x8x16xf32>, memref<2x8x16xf32>, memref<2x8x32xf32>
  return
}
