// One case per verifier rule of the backward kernels.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%offsets: memref<5xi32>, %loads: memref<3xi32>) {
  // expected-error @+1 {{'moek.expert_loads' op offsets dimension 0 (E+1) (5) does not match loads dimension 0 plus one (4)}}
  moek.expert_loads %offsets into %loads : memref<5xi32>, memref<3xi32>
  return
}

// -----

func.func @f(%dy: memref<16x8xf32>, %w2: memref<4x6x8xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x10xf32>, %act: memref<32x6xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xf32>) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op gate_up dimension 1 (2F) (10) does not match twice w2 dimension 1 (F) (12)}}
  moek.grouped_glu_backward silu_glu %dy, %w2, %offsets, %owners, %weights, %h into %act, %dh, %dw {top_k = 2 : i64}
      : memref<16x8xf32>, memref<4x6x8xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x10xf32>, memref<32x6xf32>, memref<32x12xf32>, memref<16x2xf32>
  return
}

// -----

func.func @f(%dy: memref<16x8xf32>, %w2: memref<4x6x8xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x12xf32>, %act: memref<32x6xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xbf16>) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op d_weights must have element type 'f32', got 'bf16'}}
  moek.grouped_glu_backward silu_glu %dy, %w2, %offsets, %owners, %weights, %h into %act, %dh, %dw {top_k = 2 : i64}
      : memref<16x8xf32>, memref<4x6x8xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x12xf32>, memref<32x6xf32>, memref<32x12xf32>, memref<16x2xbf16>
  return
}

// -----

func.func @f(%a: memref<32x6xf32>, %dy: memref<16x8xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>, %dw: memref<4x6x8xf32>) {
  // expected-error @+1 {{'moek.grouped_weight_grad' op gathers both lhs and rhs: one side of a weight gradient is grouped rows}}
  moek.grouped_weight_grad %a, %dy, %offsets, %owners into %dw {gather_lhs, gather_rhs, top_k = 2 : i64}
      : memref<32x6xf32>, memref<16x8xf32>, memref<5xi32>, memref<32xi32>, memref<4x6x8xf32>
  return
}

// -----

func.func @f(%a: memref<32x6xf32>, %dy: memref<16x7xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>, %dw: memref<4x6x8xf32>) {
  // expected-error @+1 {{'moek.grouped_weight_grad' op rhs dimension 1 (7) does not match dw dimension 2 (8)}}
  moek.grouped_weight_grad %a, %dy, %offsets, %owners into %dw {gather_rhs, top_k = 2 : i64}
      : memref<32x6xf32>, memref<16x7xf32>, memref<5xi32>, memref<32xi32>, memref<4x6x8xf32>
  return
}

// -----

func.func @f(%dh: memref<32x12xf32>, %w1: memref<4x8x12xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>, %dx: memref<16x8xbf16>) {
  // expected-error @+1 {{'moek.grouped_input_grad' op dx must have element type 'f32', got 'bf16'}}
  moek.grouped_input_grad %dh, %w1, %offsets, %owners into %dx {top_k = 2 : i64}
      : memref<32x12xf32>, memref<4x8x12xf32>, memref<5xi32>, memref<32xi32>, memref<16x8xbf16>
  return
}

// -----

func.func @f(%dh: memref<32x12xf32>, %w1: memref<4x9x12xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>, %dx: memref<16x8xf32>) {
  // expected-error @+1 {{'moek.grouped_input_grad' op dx dimension 1 (K) (8) does not match b dimension 1 (K) (9)}}
  moek.grouped_input_grad %dh, %w1, %offsets, %owners into %dx {top_k = 2 : i64}
      : memref<32x12xf32>, memref<4x9x12xf32>, memref<5xi32>, memref<32xi32>, memref<16x8xf32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %i: memref<16x2xi32>, %offsets: memref<4xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<f32>) {
  // expected-error @+1 {{'moek.route_backward' op offsets dimension 0 (E+1) (4) does not match experts + 1 (5)}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<4xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %i: memref<16x2xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<1xf32>) {
  // expected-error @+1 {{'moek.route_backward' op aux must be a rank-0 buffer [], got 'memref<1xf32>'}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x4xf32>, memref<1xf32>
  return
}
