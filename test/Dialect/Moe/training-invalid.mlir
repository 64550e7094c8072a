// One case per verifier rule of the training ops; each message names the operand and the rule.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.gate' op aux_loss must be a non-negative coefficient, got -1.000000e-01}}
  %w, %i, %r = moe.gate softmax top_k = 2 %x, %wg {aux_loss = -0.1 : f64}
      : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>, !R)
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{'moe.save_for_backward' op saves nothing: a residual list needs at least one value}}
  "moe.save_for_backward"() : () -> ()
  return
}

// -----

// A residual keeps its operand's type (inferred: a mismatch is reported by the inference).
func.func @f(%w: tensor<16x2xf32>) {
  // expected-error @+2 {{'moe.save_for_backward' op inferred type(s) 'tensor<16x2xf32>' are incompatible with return type(s) of operation 'tensor<16x3xf32>'}}
  // expected-error @+1 {{'moe.save_for_backward' op failed to infer returned types}}
  %s = "moe.save_for_backward"(%w) : (tensor<16x2xf32>) -> tensor<16x3xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xf32>, %dy: tensor<16x31xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op dy dimension 1 (H) (31) does not match x dimension 1 (H) (32)}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>, tensor<16x31xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xf32>, %dy: tensor<16x32xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op dw1 has type 'tensor<4x32x48xbf16>' but w1 has 'tensor<4x32x48xf32>': a gradient has the type of its value}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>, tensor<16x32xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x48xbf16>, tensor<4x24x32xf32>, tensor<16x2xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x3xf32>, %dy: tensor<16x32xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op weights dimension 1 (k) (3) does not match routing top_k (2)}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x3xf32>, tensor<16x32xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x3xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x5xf32>, %r: !R, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op w_gate dimension 1 (E) (5) does not match routing experts (4)}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw
      : (tensor<16x32xf32>, tensor<32x5xf32>, !R, tensor<16x2xf32>)
      -> (tensor<16x32xf32>, tensor<32x5xf32>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %r: !R, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op aux must be a scalar tensor<f32>, got 'tensor<1xf32>'}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>)
      -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<1xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %r: !R, %dw: tensor<16x2xf32>, %dxin: tensor<16x32xbf16>) {
  // expected-error @+1 {{'moe.gate_backward' op dx_in has type 'tensor<16x32xbf16>' but x has 'tensor<16x32xf32>': a gradient has the type of its value}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw accumulate %dxin
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>, tensor<16x32xbf16>)
      -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %r: !R, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op aux_loss must be a non-negative coefficient, got -1.000000e+00}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw {aux_loss = -1.0 : f64}
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>)
      -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%r: !R) {
  // expected-error @+1 {{'moe.expert_loads' op loads dimension 0 (E) (5) does not match routing experts (4)}}
  %l = moe.expert_loads %r : (!R) -> tensor<5xi32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%r: !R) {
  // expected-error @+1 {{'moe.expert_loads' op loads must have element type 'i32', got 'f32'}}
  %l = moe.expert_loads %r : (!R) -> tensor<4xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32x1xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xf32>, %dy: tensor<16x32xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op x must be a rank-2 tensor [T, H], got 'tensor<16x32x1xf32>'}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32x1xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>, tensor<16x32xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x47xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xf32>, %dy: tensor<16x32xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op w1 dimension 2 (2F) must be even and positive (gate and up halves), got 47}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32xf32>, !R, tensor<4x32x47xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>, tensor<16x32xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x47xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x20x32xf32>, %w: tensor<16x2xf32>, %dy: tensor<16x32xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op w2 dimension 1 (F) (20) does not match half of w1 dimension 2 (2F) (24)}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x20x32xf32>, tensor<16x2xf32>, tensor<16x32xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x20x32xf32>, tensor<16x2xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xf32>, %dy: tensor<16x32xbf16>) {
  // expected-error @+1 {{'moe.experts_backward' op dy has element type 'bf16' but x has 'f32': mixed element types are not allowed}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>, tensor<16x32xbf16>)
      -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xbf16>, %dy: tensor<16x32xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op weights must have element type 'f32', got 'bf16'}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xbf16>, tensor<16x32xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xbf16>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<8x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<8x2xf32>, %dy: tensor<8x32xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op x dimension 0 (T) (8) does not match routing tokens (16)}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy
      : (tensor<8x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<8x2xf32>, tensor<8x32xf32>)
      -> (tensor<8x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<8x2xf32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<31x4xf32>, %r: !R, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op w_gate dimension 0 (H) (31) does not match x dimension 1 (H) (32)}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw
      : (tensor<16x32xf32>, tensor<31x4xf32>, !R, tensor<16x2xf32>)
      -> (tensor<16x32xf32>, tensor<31x4xf32>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %r: !R, %dw: tensor<15x2xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op d_weights dimension 0 (T) (15) does not match x dimension 0 (T) (16)}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<15x2xf32>)
      -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %r: !R, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op scaling must be positive, got 0}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw {scaling = 0.0 : f64}
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>)
      -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %r: !R, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op dw_gate has type 'tensor<32x4xbf16>' but w_gate has 'tensor<32x4xf32>': a gradient has the type of its value}}
  %a:3 = moe.gate_backward softmax %x, %wg, %r, %dw
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>)
      -> (tensor<16x32xf32>, tensor<32x4xbf16>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%r: !R) {
  // expected-error @+1 {{'moe.expert_loads' op loads must be a rank-1 tensor [E], got 'tensor<4x1xi32>'}}
  %l = moe.expert_loads %r : (!R) -> tensor<4x1xi32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>) {
  // expected-error @+1 {{'moe.expert_gate_up' op result must have element type f32 or that of x ('f32'), got 'bf16'}}
  %h = moe.expert_gate_up %x, %r, %w1 : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>) -> tensor<32x48xbf16>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xbf16>, %r: !R, %w1: tensor<4x32x48xbf16>) {
  // expected-error @+1 {{'moe.expert_gate_up' op result must have element type f32 or that of x ('bf16'), got 'f16'}}
  %h = moe.expert_gate_up %x, %r, %w1 : (tensor<16x32xbf16>, !R, tensor<4x32x48xbf16>) -> tensor<32x48xf16>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>) {
  // expected-error @+1 {{'moe.expert_gate_up' op result dimension 0 (T*k) (16) does not match routing tokens times top_k (32)}}
  %h = moe.expert_gate_up %x, %r, %w1 : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>) -> tensor<16x48xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x31xf32>, %r: !R, %w1: tensor<4x32x48xf32>) {
  // expected-error @+1 {{'moe.expert_gate_up' op w1 dimension 1 (H) (32) does not match x dimension 1 (H) (31)}}
  %h = moe.expert_gate_up %x, %r, %w1 : (tensor<16x31xf32>, !R, tensor<4x32x48xf32>) -> tensor<32x48xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %r: !R, %w1: tensor<4x32x48xf32>, %w2: tensor<4x24x32xf32>, %w: tensor<16x2xf32>, %dy: tensor<16x32xf32>, %h: tensor<32x46xf32>) {
  // expected-error @+1 {{'moe.experts_backward' op gate_up dimension 1 (2F) (46) does not match w1 dimension 2 (2F) (48)}}
  %a:4 = moe.experts_backward silu_glu %x, %r, %w1, %w2, %w, %dy gate_up(%h)
      : (tensor<16x32xf32>, !R, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>, tensor<16x32xf32>, tensor<32x46xf32>)
      -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>)
  return
}

// -----

func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.router_probabilities' op result dimension 1 (E) (5) does not match the number of experts (4)}}
  %p = moe.router_probabilities softmax %x, %wg : (tensor<16x32xf32>, tensor<32x4xf32>) -> tensor<16x5xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %r: !R, %dw: tensor<16x2xf32>, %p: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.gate_backward' op probs dimension 0 (T) (8) does not match x dimension 0 (T) (16)}}
  %dx, %dwg, %aux = moe.gate_backward softmax %x, %wg, %r, %dw probs(%p)
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>, tensor<8x4xf32>)
      -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return
}
