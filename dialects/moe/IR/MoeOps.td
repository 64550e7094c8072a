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
include "mlir/Interfaces/InferTypeOpInterface.td"
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

    `aux_loss` = COEF > 0 asks the training program (`moe-generate-backward`)
    for the load-balancing loss `COEF * E * sum_e f_e * P_e` (f_e: kept
    assignments of expert e / (T*k), P_e: mean over tokens of p[t,e]) and
    its gradient; it does not change the forward results.

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
    OptionalAttr<I64Attr>:$topk_group,
    DefaultValuedAttr<F64Attr, "0.0">:$aux_loss
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


//===----------------------------------------------------------------------===//
// Training: residuals and adjoints (made by moe-generate-backward)
//===----------------------------------------------------------------------===//

def Moe_SaveForBackwardOp : Moe_Op<"save_for_backward",
    [Pure, DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "the residuals the forward keeps for the backward";
  let description = [{
    Marks the forward values the backward reads: its results are its
    operands, and every backward op reads them through this op, so the
    residuals of a training program are exactly its operands. The memory
    plan counts their buffers as the `residuals` category. `recomputed` names
    what the backward recomputes instead of saving; `moe-place-recomputation`
    takes values off that list when it saves them (through a residual list of
    their own: `moe.router_probabilities`, `moe.expert_gate_up`).

    The default of `moe-generate-backward` follows SonicMoE: save the router
    weights and the routing plan (O(T*k) values), recompute the gate/up
    projection per expert, never keep the dispatched tokens or the expert
    outputs.

    ```mlir
    %w, %r = moe.save_for_backward %weights, %routing
        {recomputed = ["dispatched_tokens", "gate_up", "expert_outputs"]}
        : tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values,
                       OptionalAttr<StrArrayAttr>:$recomputed);
  let results = (outs Variadic<AnyType>:$saved);
  let assemblyFormat = [{
    $values attr-dict `:` type($values)
  }];
  let hasVerifier = 1;
}

def Moe_ExpertGateUpOp : Moe_Op<"expert_gate_up", [Pure]> {
  let summary = "the experts' pre-activation h, kept for the backward";
  let description = [{
    For every kept assignment, on its grouped row r (expert order, as
    `moe.dispatch` orders the rows) with token t and expert e:
    `h[r] = x[t] . w1[e]` accumulated in f32 and stored in the result's
    element type, f32 or the storage type of `x` ([T*k, 2F]; rows no
    assignment owns are unspecified). It is the value `moe.experts` computes
    between its two GEMMs, named so that the training step can save it:
    `moe-place-recomputation` adds it when saving `h` is worth its memory
    (in `x`'s type where the backward reads `h` in that type, as CUDA's
    does: half the bytes of f32), `moe-zero-buffer-fusion` then has the
    chain's gate/up GEMM store `h` beside the activation it computes from
    its f32 accumulator (one GEMM, not a GEMM and a GLU), and
    `moe.experts_backward` reads it instead of recomputing the GEMM. Alone
    (no fusion) it lowers to its own grouped matmul.

    ```mlir
    %h = moe.expert_gate_up %x, %routing, %w1
        : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>,
           tensor<4x32x48xf32>) -> tensor<32x48xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$x,
    Moe_RoutingType:$routing,
    AnyRankedTensor:$w1
  );
  let results = (outs AnyRankedTensor:$h);
  let assemblyFormat = [{
    $x `,` $routing `,` $w1 attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_RouterProbabilitiesOp : Moe_Op<"router_probabilities", [Pure]> {
  let summary = "the router's probabilities p, kept for the backward";
  let description = [{
    `p = softmax(x . w_gate)` over the experts, or `sigmoid(x . w_gate)`,
    accumulated in f32 ([T, E], f32; no bias: it only steers selection):
    the value `moe.gate` computes before it selects. Named so that the
    training step can save it: `moe-place-recomputation` adds it (through
    `moe.save_for_backward` into `moe.gate_backward`'s `probs`) when saving
    `p` is worth its memory, and the gate's router kernel writes it as it
    routes. It has no kernel of its own: it must have a `moe.gate` on the
    same `x`, `w_gate` and score function.

    ```mlir
    %p = moe.router_probabilities softmax %x, %w_gate
        : (tensor<16x32xf32>, tensor<32x4xf32>) -> tensor<16x4xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$x,
    AnyRankedTensor:$w_gate,
    Moe_ScoreFuncAttr:$score_func
  );
  let results = (outs AnyRankedTensor:$probs);
  let assemblyFormat = [{
    $score_func $x `,` $w_gate attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_ExpertsBackwardOp : Moe_Op<"experts_backward", [Pure]> {
  let summary = "adjoint of dispatch -> experts -> combine, without buffers";
  let description = [{
    The gradient of `L = sum y * dy` through
    `y = combine(experts(dispatch(x, routing), routing, w1, w2), weights,
    routing)`, treated as one unit so that no [T*k, H] value exists:

    - `dx[t] = sum_j w1[e] . dh_j` over the kept assignments of token t;
    - `dw1[e] = sum x[t] (x) dh`, `dw2[e] = sum a (x) (w[t,j] dy[t])` over the
      kept assignments of expert e (0 for an expert with none);
    - `d_weights[t,j] = dy[t] . o_j` for kept assignments, 0 for dropped;

    where `h = x[t] . w1[e]`, `a = act(h[:F]) * h[F:]`, `o_j = a . w2[e]`,
    `da = w[t,j] * (w2[e] . dy[t])` and `dh = (da * h[F:] * act'(h[:F]),
    da * act(h[:F]))`. `d_weights` is computed as `<w2[e] . dy[t], a>`, so
    `o_j` is never formed. Gradients accumulate in f32; `dx`, `dw1`, `dw2`
    take the storage type of `x`.

    With `gate_up` (the saved pre-activation `h`, [T*k, 2F] in grouped row
    order, f32 or x's type, made by `moe.expert_gate_up`) the backward reads
    `h` instead
    of recomputing the gate/up GEMM: what `moe-place-recomputation` emits
    when it decides to save `h`.

    ```mlir
    %dx, %dw1, %dw2, %dweights = moe.experts_backward silu_glu
        %x, %routing, %w1, %w2, %weights, %dy
        : (tensor<16x32xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>,
           tensor<4x32x48xf32>, tensor<4x24x32xf32>, tensor<16x2xf32>,
           tensor<16x32xf32>)
        -> (tensor<16x32xf32>, tensor<4x32x48xf32>, tensor<4x24x32xf32>,
            tensor<16x2xf32>)
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$x,
    Moe_RoutingType:$routing,
    AnyRankedTensor:$w1,
    AnyRankedTensor:$w2,
    AnyRankedTensor:$weights,
    AnyRankedTensor:$dy,
    Optional<AnyRankedTensor>:$gate_up,
    Moe_ActivationAttr:$activation
  );
  let results = (outs
    AnyRankedTensor:$dx,
    AnyRankedTensor:$dw1,
    AnyRankedTensor:$dw2,
    AnyRankedTensor:$d_weights
  );
  let assemblyFormat = [{
    $activation $x `,` $routing `,` $w1 `,` $w2 `,` $weights `,` $dy
    (`gate_up` `(` $gate_up^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_GateBackwardOp : Moe_Op<"gate_backward",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "adjoint of moe.gate: router gradients and the aux loss";
  let description = [{
    Given `d_weights[T,k]` (the gradient of the loss with respect to the
    gate weights), recomputes the probabilities `p` from `x . w_gate` and
    propagates through scaling and normalization (when `normalize`:
    `dp[idx_i] += scaling * (dw_i - sum_j dw_j p[idx_j] / S) / S`,
    `S = sum_j p[idx_j]`; otherwise `scaling * dw_i`), the score function
    (softmax: `ds = p * (dp - <p, dp>)`; sigmoid: `ds = dp * p * (1 - p)`)
    and the scores: `dx = dx_in + ds . w_gate^T`, `dw_gate = x^T . ds`.

    With `probs` (the saved probabilities, f32 [T, E], made by
    `moe.router_probabilities`) `p` is read instead of recomputed: no
    scores GEMM in the backward.

    The selection (top-k, groups, capacity) has no gradient, and neither has
    the bias, which is why the op does not take it: `routing` says which
    experts were chosen and which assignments were kept.

    With `aux_loss` = COEF > 0, `aux` is `COEF * E * sum_e f_e * P_e` (f_e =
    kept assignments of e / (T*k), P_e = mean_t p[t,e]) and its gradient
    `COEF * E * f_e / T` joins `dp[t,e]`; otherwise `aux` is 0.
    With `group_loads %l` (expert parallelism: the loads summed over the
    `group_ranks` ranks of the EP group, each with T tokens) `f_e =
    l[e] / (group_ranks * T * k)`: the load is the group's, `P_e` the
    rank's.

    ```mlir
    %dx, %dw_gate, %aux = moe.gate_backward softmax %x, %w_gate, %routing,
        %dweights accumulate %dx_experts {normalize = true, scaling = 1.0}
        : (tensor<16x32xf32>, tensor<32x4xf32>,
           !moe.routing<tokens = 16, experts = 4, top_k = 2>, tensor<16x2xf32>,
           tensor<16x32xf32>)
        -> (tensor<16x32xf32>, tensor<32x4xf32>, tensor<f32>)
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$x,
    AnyRankedTensor:$w_gate,
    Moe_RoutingType:$routing,
    AnyRankedTensor:$d_weights,
    Optional<AnyRankedTensor>:$dx_in,
    Optional<AnyRankedTensor>:$probs,
    Optional<AnyRankedTensor>:$group_loads,
    Moe_ScoreFuncAttr:$score_func,
    DefaultValuedAttr<BoolAttr, "true">:$normalize,
    DefaultValuedAttr<F64Attr, "1.0">:$scaling,
    DefaultValuedAttr<F64Attr, "0.0">:$aux_loss,
    DefaultValuedAttr<I64Attr, "1">:$group_ranks
  );
  let results = (outs
    AnyRankedTensor:$dx,
    AnyRankedTensor:$dw_gate,
    AnyRankedTensor:$aux
  );
  let assemblyFormat = [{
    $score_func $x `,` $w_gate `,` $routing `,` $d_weights
    (`accumulate` $dx_in^)? (`probs` `(` $probs^ `)`)?
    (`group_loads` $group_loads^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_ExpertLoadsOp : Moe_Op<"expert_loads", [Pure]> {
  let summary = "kept assignments per expert";
  let description = [{
    `loads[e]` = the assignments of the routing that expert e kept (after
    capacity dropping): what the bias update of aux-loss-free routing needs.

    ```mlir
    %loads = moe.expert_loads %routing
        : (!moe.routing<tokens = 16, experts = 4, top_k = 2>) -> tensor<4xi32>
    ```
  }];
  let arguments = (ins Moe_RoutingType:$routing);
  let results = (outs AnyRankedTensor:$loads);
  let assemblyFormat = [{
    $routing attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Expert parallelism (moe-expert-parallel)
//===----------------------------------------------------------------------===//

def Moe_AllToAllOp : Moe_Op<"all_to_all"> {
  let summary = "all-to-all of rows with data-dependent, per-segment splits";
  let description = [{
    The collective of expert parallelism over `ranks` ranks. `counts[G]`
    (i32, G divisible by `ranks`) splits the leading rows of `rows[N, H]`
    into G consecutive segments of `counts[g]` rows; block `d` of G/R
    segments (`g` in `[d*G/R, (d+1)*G/R)`) goes to rank `d`. Rows past
    `sum(counts)` are not sent (capacity-dropped assignments).

    Results: `received` holds the rows from rank 0, then rank 1, ...; from
    each, its block for this rank in segment order. `received_counts[G]`
    holds the segment sizes: block `s` is what rank `s` sent here. A dynamic
    `received` has exactly the rows received; a static one is a capacity:
    rows past those received are unspecified, and receiving more is a
    runtime error.

    `expecting %c` gives the counts this rank will receive when they are
    known (the way back: what a rank gets back is what it sent), so that
    nothing is exchanged before the rows; `received_counts` is then `%c`.

    Upstream `shard.all_to_all` splits a tensor evenly; the splits here are
    known only at run time (they are expert loads), so the op also exchanges
    the counts. Sending `counts = loads[E]` dispatches the rows of expert
    order to the experts' ranks (E/R experts per rank); sending the received
    counts back returns each row to where it came from, in its place.

    ```mlir
    %received, %received_counts = moe.all_to_all %dispatched, %loads
        {ranks = 2 : i64}
        : (tensor<32x64xf32>, tensor<4xi32>) -> (tensor<?x64xf32>, tensor<4xi32>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$rows, AnyRankedTensor:$counts,
                       Optional<AnyRankedTensor>:$expected,
                       I64Attr:$ranks);
  let results = (outs AnyRankedTensor:$received,
                      AnyRankedTensor:$received_counts);
  let assemblyFormat = [{
    $rows `,` $counts (`expecting` $expected^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_AllReduceOp : Moe_Op<"all_reduce"> {
  let summary = "element-wise sum over the ranks of i32 counts";
  let description = [{
    `result[i] = sum over the ranks of value[i]`: the EP group's expert
    loads, which the aux loss counts over all ranks.

    ```mlir
    %group = moe.all_reduce %loads {ranks = 2 : i64}
        : (tensor<4xi32>) -> tensor<4xi32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$value, I64Attr:$ranks);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $value attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_LocalRoutingOp : Moe_Op<"local_routing", [Pure]> {
  let summary = "the routing of the rows an expert rank received";
  let description = [{
    `counts[G]` are the segment sizes `moe.all_to_all` received for this
    rank's G/R local experts: block `s` (from rank `s`) holds one count per
    local expert. The received rows are each one assignment to one local
    expert, so their routing has `top_k = 1`: row `n` in segment `g` goes to
    local expert `g mod (G/R)`. `weights[N, 1]` are 1.0, so `moe.combine`
    with them returns each row's expert output in received order. The
    number of rows N is `sum(counts)`.

    ```mlir
    %weights, %routing = moe.local_routing %received_counts {ranks = 2 : i64}
        : (tensor<4xi32>)
        -> (tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 2, top_k = 1>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$counts, I64Attr:$ranks);
  let results = (outs AnyRankedTensor:$weights, Moe_RoutingType:$routing);
  let assemblyFormat = [{
    $counts attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_SlotsToRowsOp : Moe_Op<"slots_to_rows", [Pure]> {
  let summary = "per-assignment values into the rows of expert order";
  let description = [{
    `rows[row(t,j), 0] = values[t, j]` for every kept assignment, in the
    row order of `moe.dispatch` (expert order); rows no assignment owns are
    0. Expert parallelism sends the gate weights with the rows this way, so
    that an expert's rank can run the backward of its rows.

    ```mlir
    %rows = moe.slots_to_rows %weights, %routing
        : (tensor<16x2xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
        -> tensor<32x1xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$values, Moe_RoutingType:$routing);
  let results = (outs AnyRankedTensor:$rows);
  let assemblyFormat = [{
    $values `,` $routing attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_RowsToSlotsOp : Moe_Op<"rows_to_slots", [Pure]> {
  let summary = "values of the rows of expert order back to their assignments";
  let description = [{
    The inverse of `moe.slots_to_rows`: `values[t, j] = rows[row(t,j), 0]`
    for kept assignments, 0 for dropped ones. Brings per-row results (the
    gate-weight gradients an expert's rank computed) back to `[T, k]`.

    ```mlir
    %values = moe.rows_to_slots %rows, %routing
        : (tensor<32x1xf32>, !moe.routing<tokens = 16, experts = 4, top_k = 2>)
        -> tensor<16x2xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$rows, Moe_RoutingType:$routing);
  let results = (outs AnyRankedTensor:$values);
  let assemblyFormat = [{
    $rows `,` $routing attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// The block around the layer (ARCHITECTURE.md, "The block")
//===----------------------------------------------------------------------===//

def Moe_RmsNormOp : Moe_Op<"rms_norm", [Pure]> {
  let summary = "RMSNorm over the last dimension, times a gain";
  let description = [{
    `out[..., i] = x[..., i] / sqrt(mean_j(x[..., j]^2) + epsilon) * g[i]`,
    accumulating in f32; `x` is `[T, H]` or `[B, L, H]`, `g` is `[H]`.

    ```mlir
    %n = moe.rms_norm %x, %g {epsilon = 1.0e-06 : f64}
        : (tensor<2x8x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$x,
    AnyRankedTensor:$g,
    DefaultValuedAttr<F64Attr, "1.0e-6">:$epsilon
  );
  let results = (outs AnyRankedTensor:$out);
  let assemblyFormat = [{
    $x `,` $g attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_AttentionOp : Moe_Op<"attention", [Pure]> {
  let summary = "causal grouped-query self-attention over sequences, projections included";
  let description = [{
    For `n[B, L, H]` (B sequences of length L): `q = n * wq` (`[H, nh*dh]`),
    `k = n * wk`, `v = n * wv` (`[H, nkv*dh]`); query head `i` (columns
    `[i*dh, (i+1)*dh)`) attends with key/value head `floor(i*nkv/nh)`, causally
    within its own sequence, with scale `1/sqrt(dh)` and no positional
    encoding; the heads' outputs, concatenated, times `wo` (`[nh*dh, H]`).
    `heads` is nh, `kv_heads` nkv (nh a multiple of nkv); `dh` is the width
    of `wq` over `heads`. Sequences never see each other, so attention over
    any tiling of the batch is the same function (`moe-batch-tile-attention`).

    ```mlir
    %o = moe.attention heads = 4 kv_heads = 2 %n, %wq, %wk, %wv, %wo
        : (tensor<2x8x32xf32>, tensor<32x32xf32>, tensor<32x16xf32>,
           tensor<32x16xf32>, tensor<32x32xf32>) -> tensor<2x8x32xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$n,
    AnyRankedTensor:$wq,
    AnyRankedTensor:$wk,
    AnyRankedTensor:$wv,
    AnyRankedTensor:$wo,
    I64Attr:$heads,
    I64Attr:$kv_heads
  );
  let results = (outs AnyRankedTensor:$out);
  let assemblyFormat = [{
    `heads` `=` $heads `kv_heads` `=` $kv_heads $n `,` $wq `,` $wk `,` $wv `,`
    $wo attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The head size: wq's width over the heads.
    int64_t getHeadDim();
  }];
}

#endif // MOE_OPS
