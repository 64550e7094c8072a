// What the block's verifiers refuse: each diagnostic names the operand and the rule.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @norm_rank(%x: tensor<32xf32>, %g: tensor<32xf32>) -> tensor<32xf32> {
  // expected-error @+1 {{'moe.rms_norm' op x must be a rank-2 [T, H] or rank-3 [B, L, H] tensor, got 'tensor<32xf32>'}}
  %n = moe.rms_norm %x, %g : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
  return %n : tensor<32xf32>
}

// -----

func.func @norm_gain(%x: tensor<4x32xf32>, %g: tensor<16xf32>) -> tensor<4x32xf32> {
  // expected-error @+1 {{'moe.rms_norm' op g dimension 0 (H) (16) does not match x's last dimension (H) (32)}}
  %n = moe.rms_norm %x, %g : (tensor<4x32xf32>, tensor<16xf32>) -> tensor<4x32xf32>
  return %n : tensor<4x32xf32>
}

// -----

func.func @norm_gain_type(%x: tensor<4x32xbf16>, %g: tensor<32xf32>) -> tensor<4x32xbf16> {
  // expected-error @+1 {{'moe.rms_norm' op g has element type 'f32' but x has 'bf16': mixed element types are not allowed}}
  %n = moe.rms_norm %x, %g : (tensor<4x32xbf16>, tensor<32xf32>) -> tensor<4x32xbf16>
  return %n : tensor<4x32xbf16>
}

// -----

func.func @norm_epsilon(%x: tensor<4x32xf32>, %g: tensor<32xf32>) -> tensor<4x32xf32> {
  // expected-error @+1 {{'moe.rms_norm' op epsilon must be positive, got 0}}
  %n = moe.rms_norm %x, %g {epsilon = 0.0 : f64} : (tensor<4x32xf32>, tensor<32xf32>) -> tensor<4x32xf32>
  return %n : tensor<4x32xf32>
}

// -----

func.func @norm_result(%x: tensor<4x32xf32>, %g: tensor<32xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'moe.rms_norm' op result type 'tensor<4x16xf32>' must be x's, 'tensor<4x32xf32>'}}
  %n = moe.rms_norm %x, %g : (tensor<4x32xf32>, tensor<32xf32>) -> tensor<4x16xf32>
  return %n : tensor<4x16xf32>
}

// -----

func.func @attention_rank(%n: tensor<16x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                          %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<16x32xf32> {
  // expected-error @+1 {{'moe.attention' op n must be a rank-3 tensor [B, L, H], got 'tensor<16x32xf32>'}}
  %o = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<16x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x32xf32>) -> tensor<16x32xf32>
  return %o : tensor<16x32xf32>
}

// -----

func.func @attention_groups(%n: tensor<2x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x24xf32>,
                            %wv: tensor<32x24xf32>, %wo: tensor<32x32xf32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{'moe.attention' op heads (4) must be a multiple of kv_heads (3): each key/value head serves heads/kv_heads query heads}}
  %o = moe.attention heads = 4 kv_heads = 3 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xf32>, tensor<32x32xf32>, tensor<32x24xf32>, tensor<32x24xf32>, tensor<32x32xf32>) -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
}

// -----

func.func @attention_heads(%n: tensor<2x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                           %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{'moe.attention' op heads (0) and kv_heads (2) must be positive}}
  %o = moe.attention heads = 0 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x32xf32>) -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
}

// -----

func.func @attention_head_size(%n: tensor<2x8x32xf32>, %wq: tensor<32x30xf32>, %wk: tensor<32x16xf32>,
                               %wv: tensor<32x16xf32>, %wo: tensor<30x32xf32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{'moe.attention' op wq dimension 1 (30) must be heads (4) times the head size}}
  %o = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xf32>, tensor<32x30xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<30x32xf32>) -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
}

// -----

func.func @attention_kv_width(%n: tensor<2x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x8xf32>,
                              %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{'moe.attention' op wk dimension 1 (kv_heads*dh) (8) does not match kv_heads times wq's head size (16)}}
  %o = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xf32>, tensor<32x32xf32>, tensor<32x8xf32>, tensor<32x16xf32>, tensor<32x32xf32>) -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
}

// -----

func.func @attention_output(%n: tensor<2x8x32xf32>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xf32>,
                            %wv: tensor<32x16xf32>, %wo: tensor<32x64xf32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{'moe.attention' op wo dimension 1 (H) (64) does not match n dimension 2 (H) (32)}}
  %o = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x64xf32>) -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
}

// -----

func.func @attention_weight_type(%n: tensor<2x8x32xbf16>, %wq: tensor<32x32xf32>, %wk: tensor<32x16xbf16>,
                                 %wv: tensor<32x16xbf16>, %wo: tensor<32x32xbf16>) -> tensor<2x8x32xbf16> {
  // expected-error @+1 {{'moe.attention' op wq has element type 'f32' but n has 'bf16': mixed element types are not allowed}}
  %o = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xbf16>, tensor<32x32xf32>, tensor<32x16xbf16>, tensor<32x16xbf16>, tensor<32x32xbf16>) -> tensor<2x8x32xbf16>
  return %o : tensor<2x8x32xbf16>
}

// -----

func.func @attention_dynamic_weight(%n: tensor<2x8x32xf32>, %wq: tensor<32x?xf32>, %wk: tensor<32x16xf32>,
                                    %wv: tensor<32x16xf32>, %wo: tensor<32x32xf32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{'moe.attention' op wq must have a static shape (only the token dimension may be dynamic), got 'tensor<32x?xf32>'}}
  %o = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
      : (tensor<2x8x32xf32>, tensor<32x?xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<32x32xf32>) -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
}
