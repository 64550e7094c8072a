//===- MoeOps.td - Operations of the moe dialect -----------*- tablegen -*-===//
//
// The semantics every backend agrees on are those of ARCHITECTURE.md,
// "Semantics of the reference MoE layer"; each op below is one step of it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_OPS
#define MOE_OPS

include "dialects/moe/IR/MoeDialect.td"
include "dialects/moe/IR/MoeTypes.td"
include "dialects/moe/IR/MoeEnums.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// moe.gate
//===----------------------------------------------------------------------===//

def Moe_GateOp : Moe_Op<"gate", [Pure]> {
  let summary = "router: scores, top-k selection, weights and the routing plan";
  let description = [{
    Scores every token of `x[T,H]` against every expert with `w_gate[H,E]`
    (accumulated in f32), turns the scores into probabilities `p` with the
    score function (`softmax` over E or elementwise `sigmoid`), and selects
    for each token the `top_k` experts with the largest `p + bias` (bias is
    0 when absent; ties go to the lower expert index).

    Results:
    - `weights[T,k]` (f32): `p` of the selected experts, divided by their
      sum over the k slots when `normalize` (default true), times `scaling`
      (default 1.0). The bias never enters the weights.
    - `indices[T,k]` (i32): the selected experts, best first.
    - `routing`: the plan `moe.dispatch`, `moe.experts` and `moe.combine`
      follow.

    `capacity_factor` > 0 bounds each expert to `C = ceil(cf*T*k/E)`
    assignments, taken in order of token then slot; later ones are dropped
    and contribute zero. 0 (the default) is dropless.

    Group-limited routing (`n_group`, `topk_group`, both or neither): the E
    experts form `n_group` groups of consecutive experts; a group scores the
    largest `p + bias` among its experts; only experts of the `topk_group`
    best groups (ties to the lower group) can be selected.

    Example:

    ```mlir
    %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
        : (tensor<?x64xf32>, tensor<64x8xf32>)
        -> (tensor<?x2xf32>, tensor<?x2xi32>,
            !moe.routing<tokens = ?, experts = 8, top_k = 2>)
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$x,
    AnyRankedTensor:$w_gate,
    Optional<AnyRankedTensor>:$bias,
    Moe_ScoreFuncAttr:$score_func,
    I64Attr:$top_k,
    DefaultValuedAttr<BoolAttr, "true">:$normalize,
    DefaultValuedAttr<F64Attr, "1.0">:$scaling,
    DefaultValuedAttr<F64Attr, "0.0">:$capacity_factor,
    OptionalAttr<I64Attr>:$n_group,
    OptionalAttr<I64Attr>:$topk_group
  );
  let results = (outs
    AnyRankedTensor:$weights,
    AnyRankedTensor:$indices,
    Moe_RoutingType:$routing
  );

  let assemblyFormat = [{
    $score_func `top_k` `=` $top_k $x `,` $w_gate (`bias` $bias^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    int64_t getNumExperts() { return getRouting().getType().getExperts(); }
    /// True when group-limited routing is requested.
    bool isGroupLimited() { return getNGroup().has_value(); }
  }];
}

//===----------------------------------------------------------------------===//
// moe.dispatch
//===----------------------------------------------------------------------===//

def Moe_DispatchOp : Moe_Op<"dispatch", [Pure]> {
  let summary = "copy each token once per kept assignment, in expert order";
  let description = [{
    Produces the dispatched tokens `[T*k, H]`: the rows of expert 0 first
    (in order of token, then slot), then those of expert 1, and so on.
    Assignments that capacity dropped get no row; the rows left at the end
    are zero. This is the buffer that zero-buffer dispatch fusion removes.

    ```mlir
    %dispatched = moe.dispatch %x, %routing
        : (tensor<?x64xf32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>)
        -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, Moe_RoutingType:$routing);
  let results = (outs AnyRankedTensor:$dispatched);
  let assemblyFormat = [{
    $x `,` $routing attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// moe.experts
//===----------------------------------------------------------------------===//

def Moe_ExpertsOp : Moe_Op<"experts", [Pure]> {
  let summary = "grouped gated FFN: each expert applied to its own rows";
  let description = [{
    For the rows `[T*k, H]` in expert order (as `moe.dispatch` made them),
    applies to each row r of expert e:
    `h = row * w1[e]` (`w1[E,H,2F]`, columns `[0,F)` gate, `[F,2F)` up),
    `a = act(h[:F]) * h[F:]` and `out[r] = a * w2[e]` (`w2[E,F,H]`),
    accumulating in f32. `act` is `silu` for `silu_glu` and the tanh form of
    `gelu` for `gelu_glu`. Rows no assignment owns stay zero.

    ```mlir
    %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
        : (tensor<?x64xf32>, !moe.routing<tokens = ?, experts = 8, top_k = 2>,
           tensor<8x64x256xf32>, tensor<8x128x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$tokens,
    Moe_RoutingType:$routing,
    AnyRankedTensor:$w1,
    AnyRankedTensor:$w2,
    Moe_ActivationAttr:$activation
  );
  let results = (outs AnyRankedTensor:$out);
  let assemblyFormat = [{
    $activation $tokens `,` $routing `,` $w1 `,` $w2 attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// moe.combine
//===----------------------------------------------------------------------===//

def Moe_CombineOp : Moe_Op<"combine", [Pure]> {
  let summary = "weighted sum of expert outputs back into token order";
  let description = [{
    `y[t] = sum_j weights[t,j] * expert_out[row(t,j)]` over the kept
    assignments of token t, accumulated in f32 and stored in the element
    type of `expert_out`.

    ```mlir
    %y = moe.combine %out, %weights, %routing
        : (tensor<?x64xf32>, tensor<?x2xf32>,
           !moe.routing<tokens = ?, experts = 8, top_k = 2>)
        -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$expert_out,
    AnyRankedTensor:$weights,
    Moe_RoutingType:$routing
  );
  let results = (outs AnyRankedTensor:$y);
  let assemblyFormat = [{
    $expert_out `,` $weights `,` $routing attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // MOE_OPS
