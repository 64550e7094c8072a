// One case per verifier rule of moe.all_to_all and moe.local_routing; each message names the operand and the rule.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op ranks must be at least 1, got 0}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 0 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
  return
}

// -----

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<6xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op counts has 6 segments, which the ranks (4) do not divide: every rank owns the same number of segments}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 4 : i64}
      : (tensor<32x64xf32>, tensor<6xi32>) -> (tensor<?x64xf32>, tensor<6xi32>)
  return
}

// -----

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<4xi64>) {
  // expected-error @+1 {{'moe.all_to_all' op counts must have element type 'i32', got 'i64'}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi64>) -> (tensor<?x64xf32>, tensor<4xi64>)
  return
}

// -----

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<?xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op counts must have a static shape}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<?xi32>) -> (tensor<?x64xf32>, tensor<?xi32>)
  return
}

// -----

func.func @f(%rows: tensor<32xf32>, %c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op rows must be a rank-2 tensor [N, H], got 'tensor<32xf32>'}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
  return
}

// -----

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op received has element type 'bf16' but rows has 'f32': mixed element types are not allowed}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xbf16>, tensor<4xi32>)
  return
}

// -----

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op received_counts ('tensor<2xi32>') must have the type of counts ('tensor<4xi32>')}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<2xi32>)
  return
}

// -----

func.func @f(%rows: tensor<32x?xf32>, %c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op rows dimension 1 (H) must be static: every rank sends rows of the same size}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32x?xf32>, tensor<4xi32>) -> (tensor<?x?xf32>, tensor<4xi32>)
  return
}

// -----

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op received dimension 1 (H) (32) does not match rows dimension 1 (H) (64)}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x32xf32>, tensor<4xi32>)
  return
}

// -----

func.func @f(%c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.local_routing' op routing must have top_k = 1 (each received row is one assignment), got 2}}
  %w, %r = moe.local_routing %c {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 2>)
  return
}

// -----

func.func @f(%c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.local_routing' op routing experts (4) must be the local experts, counts' segments per rank (2)}}
  %w, %r = moe.local_routing %c {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 1>)
  return
}

// -----

func.func @f(%c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.local_routing' op routing tokens must be dynamic (?): the rows received are known only at run time}}
  %w, %r = moe.local_routing %c {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = 8, experts = 2, top_k = 1>)
  return
}

// -----

func.func @f(%c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.local_routing' op weights must be tensor<?x1xf32>, got 'tensor<?x2xf32>'}}
  %w, %r = moe.local_routing %c {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x2xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
  return
}

// -----

func.func @f(%c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.local_routing' op weights must have element type 'f32', got 'bf16'}}
  %w, %r = moe.local_routing %c {ranks = 2 : i64}
      : (tensor<4xi32>) -> (tensor<?x1xbf16>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
  return
}

// -----

func.func @f(%c: tensor<3xi32>) {
  // expected-error @+1 {{'moe.local_routing' op counts has 3 segments, which the ranks (2) do not divide: every rank owns the same number of segments}}
  %w, %r = moe.local_routing %c {ranks = 2 : i64}
      : (tensor<3xi32>) -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 1, top_k = 1>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%w: tensor<16x2xf32>, %r: !R) {
  // expected-error @+1 {{'moe.slots_to_rows' op rows must have one column ([T*k, 1]), got 'tensor<32x2xf32>'}}
  %rows = moe.slots_to_rows %w, %r : (tensor<16x2xf32>, !R) -> tensor<32x2xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%w: tensor<16x3xf32>, %r: !R) {
  // expected-error @+1 {{'moe.slots_to_rows' op values dimension 1 (k) (3) does not match routing top_k (2)}}
  %rows = moe.slots_to_rows %w, %r : (tensor<16x3xf32>, !R) -> tensor<32x1xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%rows: tensor<30x1xf32>, %r: !R) {
  // expected-error @+1 {{'moe.rows_to_slots' op rows dimension 0 (T*k) (30) does not match the routing's rows (32)}}
  %w = moe.rows_to_slots %rows, %r : (tensor<30x1xf32>, !R) -> tensor<16x2xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%rows: tensor<32x1xbf16>, %r: !R) {
  // expected-error @+1 {{'moe.rows_to_slots' op rows must have element type 'f32', got 'bf16'}}
  %w = moe.rows_to_slots %rows, %r : (tensor<32x1xbf16>, !R) -> tensor<16x2xf32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%rows: tensor<32x1xf32>, %r: !R) {
  // expected-error @+1 {{'moe.rows_to_slots' op values dimension 0 (T) (8) does not match routing tokens (16)}}
  %w = moe.rows_to_slots %rows, %r : (tensor<32x1xf32>, !R) -> tensor<8x2xf32>
  return
}

// -----

func.func @f(%rows: tensor<32x64xf32>, %c: tensor<4xi32>, %e: tensor<2xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op expected ('tensor<2xi32>') must have the type of counts ('tensor<4xi32>')}}
  %r, %rc = moe.all_to_all %rows, %c expecting %e {ranks = 2 : i64}
      : (tensor<32x64xf32>, tensor<4xi32>, tensor<2xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
  return
}

// -----

func.func @f(%l: tensor<4xf32>) {
  // expected-error @+1 {{'moe.all_reduce' op value must have element type 'i32', got 'f32'}}
  %g = moe.all_reduce %l {ranks = 2 : i64} : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @f(%l: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_reduce' op result ('tensor<8xi32>') must have the type of value ('tensor<4xi32>')}}
  %g = moe.all_reduce %l {ranks = 2 : i64} : (tensor<4xi32>) -> tensor<8xi32>
  return
}

// -----

func.func @f(%l: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_reduce' op ranks must be at least 1, got 0}}
  %g = moe.all_reduce %l {ranks = 0 : i64} : (tensor<4xi32>) -> tensor<4xi32>
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %dw: tensor<16x2xf32>, %r: !R, %l: tensor<8xi32>) {
  // expected-error @+1 {{'moe.gate_backward' op group_loads dimension 0 (E) (8) does not match routing experts (4)}}
  %dx, %dwg, %aux = moe.gate_backward softmax %x, %wg, %r, %dw group_loads %l {aux_loss = 0.01 : f64, group_ranks = 2 : i64}
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>, tensor<8xi32>) -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return
}

// -----

!R = !moe.routing<tokens = 16, experts = 4, top_k = 2>
func.func @f(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %dw: tensor<16x2xf32>, %r: !R, %l: tensor<4xi32>) {
  // expected-error @+1 {{'moe.gate_backward' op group_ranks must be at least 1, got 0}}
  %dx, %dwg, %aux = moe.gate_backward softmax %x, %wg, %r, %dw group_loads %l {aux_loss = 0.01 : f64, group_ranks = 0 : i64}
      : (tensor<16x32xf32>, tensor<32x4xf32>, !R, tensor<16x2xf32>, tensor<4xi32>) -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
  return
}

// -----

func.func @f(%rows: tensor<32x64xindex>, %c: tensor<4xi32>) {
  // expected-error @+1 {{'moe.all_to_all' op rows must have an integer or floating-point element type, got 'index'}}
  %r, %rc = moe.all_to_all %rows, %c {ranks = 2 : i64}
      : (tensor<32x64xindex>, tensor<4xi32>) -> (tensor<?x64xindex>, tensor<4xi32>)
  return
}
