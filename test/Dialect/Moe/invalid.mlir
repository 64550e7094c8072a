// One case per verifier rule; each message names the operand and the rule.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%x: tensor<16x32x1xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op x must be a rank-2 tensor [T, H], got 'tensor<16x32x1xf32>'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32x1xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xi32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op x must have element type f32, bf16 or f16, got 'i32'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xi32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32xf32>) {
  // expected-error @+1 {{'moe.gate' op w_gate must be a rank-2 tensor [H, E], got 'tensor<32xf32>'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x?xf32>) {
  // expected-error @+1 {{'moe.gate' op w_gate must have a static shape (only the token dimension may be dynamic), got 'tensor<32x?xf32>'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x?xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xbf16>) {
  // expected-error @+1 {{'moe.gate' op w_gate has element type 'bf16' but x has 'f32': mixed element types are not allowed}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xbf16>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<64x4xf32>) {
  // expected-error @+1 {{'moe.gate' op w_gate dimension 0 (H) (64) does not match x dimension 1 (H) (32)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<64x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op top_k (0) must be at least 1}}
  %w, %i, %r = moe.gate softmax top_k = 0 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x0xf32>, tensor<16x0xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 1>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op top_k (8) exceeds the number of experts (4)}}
  %w, %i, %r = moe.gate softmax top_k = 8 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x8xf32>, tensor<16x8xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 4>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op capacity_factor (-1.5) must be finite and non-negative (0 is dropless)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {capacity_factor = -1.5 : f64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op scaling (0) must be finite and positive}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {scaling = 0.0 : f64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op n_group and topk_group must be given together}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {n_group = 2 : i64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op topk_group (4) exceeds n_group (2)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {n_group = 2 : i64, topk_group = 4 : i64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op the number of experts (4) is not divisible by n_group (3)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {n_group = 3 : i64, topk_group = 1 : i64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op top_k (2) exceeds the experts in the topk_group best groups (1)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {n_group = 4 : i64, topk_group = 1 : i64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %b: tensor<4x1xf32>) {
  // expected-error @+1 {{'moe.gate' op bias must be a rank-1 tensor [E], got 'tensor<4x1xf32>'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg bias %b 
      : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x1xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %b: tensor<5xf32>) {
  // expected-error @+1 {{'moe.gate' op bias dimension 0 (E) (5) does not match the number of experts (4)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg bias %b 
      : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<5xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xbf16>, %wg: tensor<32x4xbf16>, %b: tensor<4xf16>) {
  // expected-error @+1 {{'moe.gate' op bias must have element type f32 or that of x ('bf16'), got 'f16'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg bias %b 
      : (tensor<16x32xbf16>, tensor<32x4xbf16>, tensor<4xf16>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op weights must have element type 'f32', got 'bf16'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xbf16>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op indices must have element type 'i32', got 'i64'}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi64>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op weights dimension 1 (k) (3) does not match top_k (2)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x3xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op indices dimension 0 (T) (8) does not match x dimension 0 (T) (16)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<8x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op routing experts (8) does not match the number of experts of w_gate (4)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 8, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op routing tokens (12) does not match x dimension 0 (T) (16)}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg 
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 12, experts = 4, top_k = 2>)
  return
}

// -----

func.func @f(%x: tensor<8x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.dispatch' op x dimension 0 (T) (8) does not match routing tokens (16)}}
  %d = moe.dispatch %x, %r : (tensor<8x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.dispatch' op result dimension 0 (T*k) (16) does not match tokens times top_k (32)}}
  %d = moe.dispatch %x, %r : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<16x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %r: !moe.routing<tokens = ?, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.dispatch' op result has element type 'f16' but x has 'f32': mixed element types are not allowed}}
  %d = moe.dispatch %x, %r : (tensor<?x32xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 2>) -> tensor<?x32xf16>
  return
}

// -----

func.func @f(%t: tensor<16x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>) {
  // expected-error @+1 {{'moe.experts' op tokens dimension 0 (T*k) (16) does not match routing tokens times top_k (32)}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x48xf32>, tensor<4x24x32xf32>) -> tensor<16x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<32x48xf32>, %w2: tensor<4x24x32xf32>) {
  // expected-error @+1 {{'moe.experts' op w1 must be a rank-3 tensor [E, H, 2F], got 'tensor<32x48xf32>'}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<4x32x47xf32>, %w2: tensor<4x24x32xf32>) {
  // expected-error @+1 {{'moe.experts' op w1 dimension 2 (2F) must be even and positive (gate and up halves), got 47}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x47xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<8x32x48xf32>, %w2: tensor<4x24x32xf32>) {
  // expected-error @+1 {{'moe.experts' op w1 dimension 0 (E) (8) does not match routing experts (4)}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<8x32x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<4x16x48xf32>, %w2: tensor<4x24x32xf32>) {
  // expected-error @+1 {{'moe.experts' op w1 dimension 1 (H) (16) does not match tokens dimension 1 (H) (32)}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x16x48xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<4x32x48xf32>, %w2: tensor<4x48x32xf32>) {
  // expected-error @+1 {{'moe.experts' op w2 dimension 1 (F) (48) does not match half of w1 dimension 2 (2F) (24)}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x48xf32>, tensor<4x48x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x16xf32>) {
  // expected-error @+1 {{'moe.experts' op w2 dimension 2 (H) (16) does not match tokens dimension 1 (H) (32)}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x48xf32>, tensor<4x24x16xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<4x32x48xbf16>, %w2: tensor<4x24x32xf32>) {
  // expected-error @+1 {{'moe.experts' op w1 has element type 'bf16' but tokens has 'f32': mixed element types are not allowed}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x48xbf16>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>, %w1: tensor<4x32x48xf32>, %w2: tensor<4x?x32xf32>) {
  // expected-error @+1 {{'moe.experts' op w2 must have a static shape (only the token dimension may be dynamic), got 'tensor<4x?x32xf32>'}}
  %o = moe.experts silu_glu %t, %r, %w1, %w2 : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<4x32x48xf32>, tensor<4x?x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%o: tensor<32x32xf32>, %w: tensor<8x2xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.combine' op weights dimension 0 (T) (8) does not match routing tokens (16)}}
  %y = moe.combine %o, %w, %r : (tensor<32x32xf32>, tensor<8x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<16x32xf32>
  return
}

// -----

func.func @f(%o: tensor<32x32xf32>, %w: tensor<16x2xf16>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.combine' op weights must have element type 'f32', got 'f16'}}
  %y = moe.combine %o, %w, %r : (tensor<32x32xf32>, tensor<16x2xf16>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<16x32xf32>
  return
}

// -----

func.func @f(%o: tensor<32x32xf32>, %w: tensor<16x2xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.combine' op result dimension 0 (T) (32) does not match weights dimension 0 (T) (16)}}
  %y = moe.combine %o, %w, %r : (tensor<32x32xf32>, tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<32x32xf32>
  return
}

// -----

func.func @f(%o: tensor<16x32xf32>, %w: tensor<16x2xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.combine' op expert_out dimension 0 (T*k) (16) does not match routing tokens times top_k (32)}}
  %y = moe.combine %o, %w, %r : (tensor<16x32xf32>, tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<16x32xf32>
  return
}

// -----

// expected-error @+1 {{routing top_k (3) must be between 1 and the number of experts (2)}}
func.func @f(%r: !moe.routing<tokens = 4, experts = 2, top_k = 3>) {
  return
}

// -----

// expected-error @+1 {{routing experts (0) must be at least 1}}
func.func @f(%r: !moe.routing<tokens = 4, experts = 0, top_k = 1>) {
  return
}

// -----

// Checked size arithmetic: a tensor whose size in bytes does not fit in 64 bits.
func.func @f(%x: tensor<16x32xf32>, %w_gate: tensor<32x4xf32>, %w1: tensor<4x4294967296x4294967296xf32>,
             %w2: tensor<4x24x32xf32>, %d: tensor<32x32xf32>, %r: !moe.routing<tokens = 16, experts = 4, top_k = 2>) {
  // expected-error @+1 {{'moe.experts' op w1 ('tensor<4x4294967296x4294967296xf32>') is too large: its size in bytes does not fit in 64 bits}}
  %o = moe.experts silu_glu %d, %r, %w1, %w2
      : (tensor<32x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>,
         tensor<4x4294967296x4294967296xf32>, tensor<4x24x32xf32>) -> tensor<32x32xf32>
  return
}

// -----

// The routing metadata is i32: T*k must be at most 2^31 - 1 assignments.
func.func @f(%x: tensor<1073741824x1xf32>, %w_gate: tensor<1x4xf32>) {
  // expected-error @+1 {{'moe.gate' op x dimension 0 (T = 1073741824) times top_k (2) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<1073741824x1xf32>, tensor<1x4xf32>)
      -> (tensor<1073741824x2xf32>, tensor<1073741824x2xi32>, !moe.routing<tokens = ?, experts = 4, top_k = 2>)
  return
}

// -----

// An element type no rule of the sizes knows (index) is reported by the
// element-type rule, not a crash in the size rule before it.
func.func @f(%x: tensor<16x32xindex>, %w_gate: tensor<32x4xindex>) {
  // expected-error @+1 {{'moe.gate' op x must have element type f32, bf16 or f16, got 'index'}}
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<16x32xindex>, tensor<32x4xindex>)
      -> (tensor<16x2xf32>, tensor<16x2xi32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
  return
}

// -----

// The routing type bounds T * k (found by moe-fuzz-ir: a routing plan from an
// argument with 2^62 tokens overflowed the combine rule's T * k).
// expected-error @+1 {{routing tokens (4611686018427387904) times top_k (2) exceeds the 2147483647 assignments that the i32 routing metadata can index}}
func.func @f(%r: !moe.routing<tokens = 4611686018427387904, experts = 4, top_k = 2>) {
  return
}
