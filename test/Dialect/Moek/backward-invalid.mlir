// One case per verifier rule of the backward kernels.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%offsets: memref<5xi32>, %loads: memref<3xi32>) {
  // expected-error @+1 {{'moek.expert_loads' op offsets dimension 0 (E+1) (5) does not match loads dimension 0 plus one (4)}}
  moek.expert_loads %offsets into %loads : memref<5xi32>, memref<3xi32>
  return
}

// -----

func.func @f(%g: memref<32x6xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x10xf32>, %act: memref<32x6xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xf32>) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op gate_up dimension 1 (2F) (10) does not match twice g dimension 1 (F) (12)}}
  moek.grouped_glu_backward silu_glu %g, %offsets, %owners, %weights, %h into %act, %dh, %dw {top_k = 2 : i64}
      : memref<32x6xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x10xf32>, memref<32x6xf32>, memref<32x12xf32>, memref<16x2xf32>
  return
}

// -----

func.func @f(%g: memref<32x6xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x12xf32>, %act: memref<32x6xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xbf16>) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op d_weights must have element type 'f32', got 'bf16'}}
  moek.grouped_glu_backward silu_glu %g, %offsets, %owners, %weights, %h into %act, %dh, %dw {top_k = 2 : i64}
      : memref<32x6xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x12xf32>, memref<32x6xf32>, memref<32x12xf32>, memref<16x2xbf16>
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

// -----

func.func @f(%g: memref<32x6xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x12xf32>, %act: memref<32x5xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xf32>) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op act dimension 1 (F) (5) does not match g dimension 1 (F) (6)}}
  moek.grouped_glu_backward silu_glu %g, %offsets, %owners, %weights, %h into %act, %dh, %dw {top_k = 2 : i64}
      : memref<32x6xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x12xf32>, memref<32x5xf32>, memref<32x12xf32>, memref<16x2xf32>
  return
}

// -----

func.func @f(%g: memref<32x6xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x12xf32>, %act: memref<32x6xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xf32>) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op weights dimension 1 (k) (2) does not match top_k (3)}}
  moek.grouped_glu_backward silu_glu %g, %offsets, %owners, %weights, %h into %act, %dh, %dw {top_k = 3 : i64}
      : memref<32x6xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x12xf32>, memref<32x6xf32>, memref<32x12xf32>, memref<16x2xf32>
  return
}

// -----

func.func @f(%g: memref<32x?xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x12xf32>, %act: memref<32x6xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xf32>) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op g dimension 1 (F) must be static}}
  moek.grouped_glu_backward silu_glu %g, %offsets, %owners, %weights, %h into %act, %dh, %dw {top_k = 2 : i64}
      : memref<32x?xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x12xf32>, memref<32x6xf32>, memref<32x12xf32>, memref<16x2xf32>
  return
}

// -----

func.func @f(%g: memref<32x6xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>,
             %weights: memref<16x2xf32>, %h: memref<32x12xf32>, %act: memref<32x6xf32>, %dh: memref<32x12xf32>, %dw: memref<16x2xf32>, %e: index) {
  // expected-error @+1 {{'moek.grouped_glu_backward' op first_expert and last_expert go together}}
  "moek.grouped_glu_backward"(%g, %offsets, %owners, %weights, %h, %e, %act, %dh, %dw)
      <{activation = 0 : i32, top_k = 2 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0, 1, 1, 1>}>
      : (memref<32x6xf32>, memref<5xi32>, memref<32xi32>, memref<16x2xf32>, memref<32x12xf32>, index, memref<32x6xf32>, memref<32x12xf32>, memref<16x2xf32>) -> ()
  return
}

// -----

func.func @f(%a: memref<32x5xf32>, %dy: memref<16x8xf32>, %offsets: memref<5xi32>, %owners: memref<32xi32>, %dw: memref<4x6x8xf32>) {
  // expected-error @+1 {{'moek.grouped_weight_grad' op lhs dimension 1 (5) does not match dw dimension 1 (6)}}
  moek.grouped_weight_grad %a, %dy, %offsets, %owners into %dw {gather_rhs, top_k = 2 : i64}
      : memref<32x5xf32>, memref<16x8xf32>, memref<5xi32>, memref<32xi32>, memref<4x6x8xf32>
  return
}

// -----

func.func @f(%a: memref<32x6xf32>, %dy: memref<16x8xf32>, %offsets: memref<5xi32>, %owners: memref<32xi64>, %dw: memref<4x6x8xf32>) {
  // expected-error @+1 {{'moek.grouped_weight_grad' op owners must have element type 'i32', got 'i64'}}
  moek.grouped_weight_grad %a, %dy, %offsets, %owners into %dw {gather_rhs, top_k = 2 : i64}
      : memref<32x6xf32>, memref<16x8xf32>, memref<5xi32>, memref<32xi64>, memref<4x6x8xf32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %i: memref<16x2xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x3xf32>, %aux: memref<f32>) {
  // expected-error @+1 {{'moek.route_backward' op dw_gate dimension 1 (E) (3) does not match w_gate dimension 1 (E) (4)}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x3xf32>, memref<f32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %i: memref<16x?xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<f32>) {
  // expected-error @+1 {{'moek.route_backward' op indices dimension 1 (k) must be static, got 'memref<16x?xi32>'}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x?xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %i: memref<16x2xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xbf16>, %dwg: memref<8x4xf32>, %aux: memref<f32>) {
  // expected-error @+1 {{'moek.route_backward' op dx must have element type f32 or x's ('f32'), got 'bf16'}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xbf16>, memref<8x4xf32>, memref<f32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %weights: memref<16x2xf32>,
             %indices: memref<16x2xi32>, %p: memref<16x3xf32>) {
  // expected-error @+1 {{'moek.route' op probs dimension 1 (E) (3) does not match w_gate dimension 1 (E) (4)}}
  moek.route softmax top_k = 2 %x, %wg into %weights, %indices probs(%p : memref<16x3xf32>)
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %indices: memref<16x2xi32>,
             %offsets: memref<5xi32>, %dweights: memref<16x2xf32>, %dx: memref<16x8xf32>,
             %dwg: memref<8x4xf32>, %aux: memref<f32>, %p: memref<16x4xbf16>) {
  // expected-error @+1 {{'moek.route_backward' op probs must have element type 'f32', got 'bf16'}}
  moek.route_backward softmax %x, %wg, %indices, %offsets, %dweights into %dx, %dwg, %aux
      probs(%p : memref<16x4xbf16>)
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>,
        memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %weights: memref<16x2xf32>,
             %indices: memref<16x2xi32>, %s: memref<8x4xf32>) {
  // expected-error @+1 {{'moek.route' op scores dimension 0 (T) (8) does not match x dimension 0 (T) (16)}}
  moek.route softmax top_k = 2 %x, %wg into %weights, %indices scores(%s : memref<8x4xf32>)
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xf32>, memref<16x2xi32>
  return
}

// -----

func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %indices: memref<16x2xi32>,
             %offsets: memref<5xi32>, %dweights: memref<16x2xf32>, %dx: memref<16x8xf32>,
             %dwg: memref<8x4xf32>, %aux: memref<f32>, %s: memref<16x4xbf16>) {
  // expected-error @+1 {{'moek.route_backward' op scores must have element type 'f32', got 'bf16'}}
  moek.route_backward softmax %x, %wg, %indices, %offsets, %dweights into %dx, %dwg, %aux
      scores(%s : memref<16x4xbf16>)
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>,
        memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// -----

// ds: the score gradients rounded to the layer's type for the tensor cores.
func.func @f(%x: memref<16x8xbf16>, %wg: memref<8x4xbf16>, %i: memref<16x2xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<f32>, %s: memref<16x4xf32>, %ds: memref<16x3xbf16>) {
  // expected-error @+1 {{'moek.route_backward' op ds dimension 1 (E) (3) does not match w_gate dimension 1 (E) (4)}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      scores(%s : memref<16x4xf32>) ds(%ds : memref<16x3xbf16>)
      : memref<16x8xbf16>, memref<8x4xbf16>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// -----

func.func @f(%x: memref<16x8xbf16>, %wg: memref<8x4xbf16>, %i: memref<16x2xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<f32>, %ds: memref<8x4xbf16>) {
  // expected-error @+1 {{'moek.route_backward' op ds dimension 0 (T) (8) does not match x dimension 0 (T) (16)}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      ds(%ds : memref<8x4xbf16>)
      : memref<16x8xbf16>, memref<8x4xbf16>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// -----

func.func @f(%x: memref<16x8xbf16>, %wg: memref<8x4xbf16>, %i: memref<16x2xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<f32>, %ds: memref<16x4xf16>) {
  // expected-error @+1 {{'moek.route_backward' op ds must have element type 'bf16', got 'f16'}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      ds(%ds : memref<16x4xf16>)
      : memref<16x8xbf16>, memref<8x4xbf16>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}

// -----

// An f32 layer's products read the f32 scores: no ds.
func.func @f(%x: memref<16x8xf32>, %wg: memref<8x4xf32>, %i: memref<16x2xi32>, %offsets: memref<5xi32>, %dw: memref<16x2xf32>,
             %dx: memref<16x8xf32>, %dwg: memref<8x4xf32>, %aux: memref<f32>, %ds: memref<16x4xf32>) {
  // expected-error @+1 {{'moek.route_backward' op has ds but x has element type 'f32': ds holds the score gradients rounded to a bf16 or f16 layer's type for tensor cores}}
  moek.route_backward softmax %x, %wg, %i, %offsets, %dw into %dx, %dwg, %aux
      ds(%ds : memref<16x4xf32>)
      : memref<16x8xf32>, memref<8x4xf32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xf32>, memref<16x8xf32>, memref<8x4xf32>, memref<f32>
  return
}
