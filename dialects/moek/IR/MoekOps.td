//===- MoekOps.td - Operations of the MoE kernel dialect ---*- tablegen -*-===//

#ifndef MOEK_OPS
#define MOEK_OPS

include "dialects/moek/IR/MoekDialect.td"
include "dialects/moek/IR/MoekEnums.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "dialects/moe/IR/MoeEnums.td"

class Moek_KernelOp<string mnemonic, list<Trait> traits = []>
    : Moek_Op<mnemonic, traits> {
  let hasVerifier = 1;
}

def Moek_RouteOp : Moek_KernelOp<"route", [AttrSizedOperandSegments]> {
  let summary = "router: scores, probabilities, top-k, weights";
  let description = [{
    For each token of `x[T,H]`: scores `x[t]·w_gate` (f32), probabilities
    (softmax over E or sigmoid), group limits, the `top_k` experts by
    `p + bias` (ties to the lower index) into `indices[T,k]`, and their
    probabilities, normalized and scaled, into `weights[T,k]` — the
    semantics of `moe.gate` without the plan. With `probs` (f32 [T, E]) it
    also stores every token's probabilities, for a backward that saves them.
    `scores` (f32 [T, E], contents undefined after the op) is the scratch
    the GPU's scores GEMM writes: a buffer of the memory plan like any other
    intermediate (moe-lower-to-kernels `kernel-scratch-buffers`); the GPU
    lowering requires it, the CPU's per-token router ignores it.

    ```mlir
    moek.route softmax top_k = 2 %x, %w_gate into %weights, %indices
        : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xf32>, memref<16x2xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$x,
    Arg<AnyMemRef, "", [MemRead]>:$w_gate,
    Arg<Optional<AnyMemRef>, "", [MemRead]>:$bias,
    Arg<AnyMemRef, "", [MemWrite]>:$weights,
    Arg<AnyMemRef, "", [MemWrite]>:$indices,
    Arg<Optional<AnyMemRef>, "", [MemWrite]>:$probs,
    Arg<Optional<AnyMemRef>, "", [MemWrite]>:$scores,
    Moe_ScoreFuncAttr:$score_func,
    I64Attr:$top_k,
    DefaultValuedAttr<BoolAttr, "true">:$normalize,
    DefaultValuedAttr<F64Attr, "1.0">:$scaling,
    OptionalAttr<I64Attr>:$n_group,
    OptionalAttr<I64Attr>:$topk_group
  );
  let assemblyFormat = [{
    $score_func `top_k` `=` $top_k $x `,` $w_gate
    (`bias` `(` $bias^ `:` type($bias) `)`)?
    `into` $weights `,` $indices
    (`probs` `(` $probs^ `:` type($probs) `)`)?
    (`scores` `(` $scores^ `:` type($scores) `)`)? attr-dict
    `:` type($x) `,` type($w_gate) `,` type($weights) `,` type($indices)
  }];
}

def Moek_RankAssignmentsOp : Moek_KernelOp<"rank_assignments",
    [AttrSizedOperandSegments]> {
  let summary = "each assignment's rank within its expert, under capacity";
  let description = [{
    Walks the assignments `indices[T,k]` in order of token, then slot. An
    assignment's rank is the number of earlier kept assignments of its
    expert; when `capacity_factor` > 0 and the rank reaches
    `C = max(1, ceil(cf*T*k/E))` the assignment is dropped (rank -1). An
    index outside `[0, E)` is no expert's (rank -1, not counted): the rows
    a bound-sized received buffer holds past its counts.
    `counts[E]` receives the kept assignments per expert. `partials` (i32
    [ceil(T / 64), E], contents undefined after the op) is the scratch of
    the GPU's parallel ranking (each slice of 64 tokens' count per expert),
    a buffer of the memory plan (moe-lower-to-kernels
    `kernel-scratch-buffers`); the GPU lowering requires it, the CPU's loop
    ignores it.

    The rest of the routing plan may come with it, so that the GPU makes the
    whole plan in three launches instead of seven: `offsets` (i32 [E+1])
    receives `counts`' exclusive scan, as `moek.exclusive_scan` would write
    it; then (both need `offsets`) `rows` (i32 [T, k]) what
    `moek.assignment_rows` writes and `owners` (i32 [T*k]) what
    `moek.row_assignments` writes.

    ```mlir
    moek.rank_assignments %indices into %ranks, %counts
        : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
    moek.rank_assignments %indices into %ranks, %counts
        offsets(%offsets : memref<5xi32>) owners(%owners : memref<32xi32>)
        : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$indices,
    Arg<AnyMemRef, "", [MemWrite]>:$ranks,
    Arg<AnyMemRef, "", [MemWrite]>:$counts,
    Arg<Optional<AnyMemRef>, "", [MemRead, MemWrite]>:$partials,
    Arg<Optional<AnyMemRef>, "", [MemWrite]>:$offsets,
    Arg<Optional<AnyMemRef>, "", [MemWrite]>:$rows,
    Arg<Optional<AnyMemRef>, "", [MemWrite]>:$owners,
    DefaultValuedAttr<F64Attr, "0.0">:$capacity_factor
  );
  let assemblyFormat = [{
    $indices `into` $ranks `,` $counts
    (`partials` `(` $partials^ `:` type($partials) `)`)?
    (`offsets` `(` $offsets^ `:` type($offsets) `)`)?
    (`rows` `(` $rows^ `:` type($rows) `)`)?
    (`owners` `(` $owners^ `:` type($owners) `)`)? attr-dict
    `:` type($indices) `,` type($ranks) `,` type($counts)
  }];
  let extraClassDeclaration = [{
    /// Tokens per slice of the GPU's parallel ranking: `partials` has
    /// ceil(T / kTokensPerSlice) rows.
    static constexpr int64_t kTokensPerSlice = 64;
  }];
}

def Moek_ExclusiveScanOp : Moek_KernelOp<"exclusive_scan"> {
  let summary = "offsets[0] = 0, offsets[e+1] = offsets[e] + counts[e]";
  let description = [{
    The first row of each expert's group, and the total in `offsets[E]`.

    ```mlir
    moek.exclusive_scan %counts into %offsets : memref<4xi32>, memref<5xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$counts,
    Arg<AnyMemRef, "", [MemWrite]>:$offsets
  );
  let assemblyFormat = [{
    $counts `into` $offsets attr-dict `:` type($counts) `,` type($offsets)
  }];
}

def Moek_AssignmentRowsOp : Moek_KernelOp<"assignment_rows"> {
  let summary = "the grouped row of each assignment (-1 if dropped)";
  let description = [{
    `rows[t,j] = offsets[indices[t,j]] + ranks[t,j]`, or -1 when the
    assignment was dropped.

    ```mlir
    moek.assignment_rows %indices, %ranks, %offsets into %rows
        : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<16x2xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$indices,
    Arg<AnyMemRef, "", [MemRead]>:$ranks,
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Arg<AnyMemRef, "", [MemWrite]>:$rows
  );
  let assemblyFormat = [{
    $indices `,` $ranks `,` $offsets `into` $rows attr-dict
    `:` type($indices) `,` type($ranks) `,` type($offsets) `,` type($rows)
  }];
}

def Moek_RowAssignmentsOp : Moek_KernelOp<"row_assignments"> {
  let summary = "the assignment t*k+j that owns each grouped row (-1 if none)";
  let description = [{
    The inverse of `moek.assignment_rows`: for each of the T*k grouped rows,
    the flat index `t*k + j` of the assignment placed there, or -1 for rows
    past the last kept assignment. A grouped matmul gathers token
    `owner / k` through it and scatters back with weight `weights[owner]`.

    ```mlir
    moek.row_assignments %indices, %ranks, %offsets into %owners
        : memref<16x2xi32>, memref<16x2xi32>, memref<5xi32>, memref<32xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$indices,
    Arg<AnyMemRef, "", [MemRead]>:$ranks,
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Arg<AnyMemRef, "", [MemWrite]>:$owners
  );
  let assemblyFormat = [{
    $indices `,` $ranks `,` $offsets `into` $owners attr-dict
    `:` type($indices) `,` type($ranks) `,` type($offsets) `,` type($owners)
  }];
}

def Moek_GatherRowsOp : Moek_KernelOp<"gather_rows"> {
  let summary = "materializing dispatch: copy tokens into grouped rows";
  let description = [{
    `out[rows[t,j]] = x[t]` for every kept assignment; other rows are zero.
    This is the [T*k, H] copy that zero-buffer fusion avoids.

    ```mlir
    moek.gather_rows %x, %rows into %dispatched
        : memref<16x32xf32>, memref<16x2xi32>, memref<32x32xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$x,
    Arg<AnyMemRef, "", [MemRead]>:$rows,
    Arg<AnyMemRef, "", [MemWrite]>:$out
  );
  let assemblyFormat = [{
    $x `,` $rows `into` $out attr-dict `:` type($x) `,` type($rows) `,`
    type($out)
  }];
}

def Moek_GroupedMatmulOp : Moek_KernelOp<"grouped_matmul",
    [AttrSizedOperandSegments]> {
  let summary = "per-expert matmul over grouped rows, with gather and epilogue";
  let description = [{
    For each expert e in `[first, last)` (default all E of `b[E,K,N]`) and
    each grouped row r in `[offsets[e], offsets[e+1])`, with
    `base = offsets[first]`:

    - A row: `a[r - base]`, or with `gather` token `a[owners[r] / top_k]`
      (the gather prologue: no dispatched copy);
    - `acc = A row · b[e]` in f32, or with `transpose_b` `A row · b[e]^T`
      (`b` is then [E, N, K]: the backward's products with a weight
      transposed, `dy · w2^T` and `dh · w1^T`, read the weight as stored);
    - epilogue `store`: `c[r - base] = acc`; `silu_glu` / `gelu_glu`:
      `c[r - base, f] = act(acc[f]) * acc[N/2 + f]` (c is [rows, N/2]);
      `scatter_add`: `c[t] += weights[t, j] * acc` with `t = owners[r] /
      top_k`, `j = owners[r] % top_k` (c is f32 [T, N] in token order);
      without `weights` the weight is 1 (the backward's `dh` already
      carries it); `scatter_store` (`top_k = 1` only: each token has one
      row, so no two rows meet): `c[t] = weights[t, 0] * acc`, stored in
      c's type with no accumulator and no atomics (c [T, N] of any float
      type; a token with no row, dropped by a capacity, is not written).

    With `pre_activation` (GLU epilogues only) the GEMM also stores the whole
    accumulator row, `pre_activation[r - base, n] = acc[n]` for all N
    columns, in that buffer's type: the training step's saved `h`, written
    by the GEMM that computes it rather than by a second GEMM, while the
    GLU still reads the f32 accumulator.

    Buffers: `a` [T, K] with `gather`, else [rows, K]; `b` [E, K, N] (or
    [E, N, K] with `transpose_b`), static, of the element type of `a` or
    with `a` f32 (the backward's f32 row buffers on the CPU); `offsets` i32
    [E+1]; `owners` i32 [T*k], read by `gather` and the scatter epilogues
    only; `weights` f32 [T, k], read by the scatter epilogues only; `c` f32
    [T, N] for `scatter_add`, [T, N] for `scatter_store`, else [rows, N] or
    [rows, N/2] (GLU), with the rows of `a` unless `gather`;
    `pre_activation` [rows, N] of c's rows, any float type;
    `1 <= top_k <= E`.

    ```mlir
    moek.grouped_matmul silu_glu %x, %w1, %offsets
        owners(%owners : memref<32xi32>) into %act {gather, top_k = 2 : i64}
        : memref<16x32xf32>, memref<4x32x48xf32>, memref<5xi32>,
          memref<32x24xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$a,
    Arg<AnyMemRef, "", [MemRead]>:$b,
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Optional<Index>:$first_expert,
    Optional<Index>:$last_expert,
    Arg<Optional<AnyMemRef>, "", [MemRead]>:$owners,
    Arg<Optional<AnyMemRef>, "", [MemRead]>:$weights,
    Arg<AnyMemRef, "", [MemRead, MemWrite]>:$c,
    Arg<Optional<AnyMemRef>, "", [MemWrite]>:$pre_activation,
    Moek_EpilogueAttr:$epilogue,
    UnitAttr:$gather,
    DefaultValuedAttr<I64Attr, "1">:$top_k,
    // Last, so that the builders' positional arguments before it keep
    // their meaning.
    UnitAttr:$transpose_b
  );
  let assemblyFormat = [{
    $epilogue $a `,` $b `,` $offsets
    (`experts` `(` $first_expert^ `,` $last_expert `)`)?
    (`owners` `(` $owners^ `:` type($owners) `)`)?
    (`weights` `(` $weights^ `:` type($weights) `)`)?
    `into` $c
    (`pre_activation` `(` $pre_activation^ `:` type($pre_activation) `)`)?
    attr-dict
    `:` type($a) `,` type($b) `,` type($offsets) `,` type($c)
  }];
}

def Moek_RowTileOp : Moek_KernelOp<"row_tile", [AttrSizedOperandSegments]> {
  let summary = "the device-side schedule of a grouped matmul's row tiles";
  let description = [{
    The row tiles of the experts `e` in `[first, last)` (default all E, with
    `offsets` [E+1]) in expert order: expert e owns
    `ceil((offsets[e+1] - offsets[e]) / rows_per_tile)` consecutive tiles,
    so that no tile mixes two experts' rows. Returns, for row tile `tile`,
    its expert, its first row (`offsets[e] + rows_per_tile * i` for the
    expert's i-th tile) and the expert's end (`offsets[e+1]`: the tile's rows
    are `[row_begin, min(row_begin + rows_per_tile, group_end))`); past the
    last tile it holds no rows: `row_begin >= group_end` (the kernels may
    return different values there). The host never learns the group sizes:
    `moek-tile-grouped-matmuls` launches an upper bound of the tiles and
    each CTA asks this op for its own.

    ```mlir
    %e, %begin, %end = moek.row_tile %offsets[%tile] rows_per_tile 128
        : memref<9xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Index:$tile,
    Optional<Index>:$first_expert,
    Optional<Index>:$last_expert,
    I64Attr:$rows_per_tile
  );
  let results = (outs Index:$expert, Index:$row_begin, Index:$group_end);
  let assemblyFormat = [{
    $offsets `[` $tile `]`
    (`experts` `(` $first_expert^ `,` $last_expert `)`)?
    `rows_per_tile` $rows_per_tile attr-dict `:` type($offsets)
  }];
}

def Moek_GroupedMatmulTileOp : Moek_KernelOp<"grouped_matmul_tile",
    [AttrSizedOperandSegments]> {
  let summary = "one CTA tile of a moek.grouped_matmul";
  let description = [{
    The part of `moek.grouped_matmul` (same operands, attributes and
    semantics) that one CTA computes: the rows `[row_begin, min(row_begin +
    tile[0], group_end))` of expert `expert` (from `moek.row_tile`) times
    the output columns of column tile `column_tile` (`tile[1]` columns of
    the GEMM, half as many outputs for a GLU), with the epilogue. `tile` is
    the CTA tile `[BM, BN, BK, STAGES, WARPS_M, WARPS_N]` of the tensor-core
    kernel that `moek-lower-to-gpu` makes of it. Made by
    `moek-tile-grouped-matmuls` inside the `scf.forall` over the tiles.

    The sm_90a (warpgroup) kernel's tiles sit in a persistent loop: a CTA
    computes tile after tile, its k tiles streaming through one ring of
    shared-memory stages. There `k_tiles(%before)` gives the k tiles
    (`ceil(K / BK)` per tile) that this CTA computed before this tile,
    counted from 0, and the op returns the count after it (`%before +
    ceil(K / BK)`), which the loop carries to the next tile. With
    `cluster_size` = n > 1 the CTAs `n c .. n c + n - 1` of the loop form a
    thread block cluster that reaches every tile together: their tiles are
    n consecutive row tiles of one expert and column tile (b's k tiles are
    loaded once for all of them), and a CTA past its expert's rows computes
    nothing but still takes part.

    ```mlir
    moek.grouped_matmul_tile silu_glu %x, %w1, %offsets
        owners(%owners : memref<32xi32>) into %act
        tile(%e, %begin, %end, %column) shape [128, 256, 32, 4, 2, 4]
        {gather, top_k = 2 : i64}
        : memref<16x32xbf16>, memref<4x32x48xbf16>, memref<5xi32>,
          memref<32x24xbf16>
    %after = moek.grouped_matmul_tile store %a, %w, %offsets into %c
        tile(%e, %begin, %end, %column) k_tiles(%before)
        shape [128, 256, 64, 4, 8, 1] {cluster_size = 2 : i64}
        : memref<32x64xbf16>, memref<4x64x256xbf16>, memref<5xi32>,
          memref<32x256xbf16> -> index
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$a,
    Arg<AnyMemRef, "", [MemRead]>:$b,
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Optional<Index>:$first_expert,
    Optional<Index>:$last_expert,
    Arg<Optional<AnyMemRef>, "", [MemRead]>:$owners,
    Arg<Optional<AnyMemRef>, "", [MemRead]>:$weights,
    Arg<AnyMemRef, "", [MemRead, MemWrite]>:$c,
    Arg<Optional<AnyMemRef>, "", [MemWrite]>:$pre_activation,
    Index:$expert,
    Index:$row_begin,
    Index:$group_end,
    Index:$column_tile,
    Optional<Index>:$k_tiles_before,
    Moek_EpilogueAttr:$epilogue,
    UnitAttr:$gather,
    DefaultValuedAttr<I64Attr, "1">:$top_k,
    UnitAttr:$transpose_b,
    DenseI64ArrayAttr:$tile,
    DefaultValuedAttr<I64Attr, "1">:$cluster_size
  );
  let results = (outs Optional<Index>:$k_tiles_after);
  let assemblyFormat = [{
    $epilogue $a `,` $b `,` $offsets
    (`experts` `(` $first_expert^ `,` $last_expert `)`)?
    (`owners` `(` $owners^ `:` type($owners) `)`)?
    (`weights` `(` $weights^ `:` type($weights) `)`)?
    `into` $c
    (`pre_activation` `(` $pre_activation^ `:` type($pre_activation) `)`)?
    `tile` `(` $expert `,` $row_begin `,` $group_end `,` $column_tile `)`
    (`k_tiles` `(` $k_tiles_before^ `)`)?
    `shape` $tile
    attr-dict
    `:` type($a) `,` type($b) `,` type($offsets) `,` type($c)
    (`->` type($k_tiles_after)^)?
  }];
}

def Moek_GluOp : Moek_KernelOp<"glu"> {
  let summary = "materializing activation: out = act(h[:, :F]) * h[:, F:]";
  let description = [{
    ```mlir
    moek.glu silu_glu %h into %act : memref<32x48xf32>, memref<32x24xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$h,
    Arg<AnyMemRef, "", [MemWrite]>:$out,
    Moe_ActivationAttr:$activation
  );
  let assemblyFormat = [{
    $activation $h `into` $out attr-dict `:` type($h) `,` type($out)
  }];
}

def Moek_CombineRowsOp : Moek_KernelOp<"combine_rows"> {
  let summary = "materializing combine: y[t] = sum_j w[t,j] * rows[rows_of[t,j]]";
  let description = [{
    ```mlir
    moek.combine_rows %expert_out, %weights, %rows into %y
        : memref<32x32xf32>, memref<16x2xf32>, memref<16x2xi32>, memref<16x32xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$expert_out,
    Arg<AnyMemRef, "", [MemRead]>:$weights,
    Arg<AnyMemRef, "", [MemRead]>:$rows,
    Arg<AnyMemRef, "", [MemWrite]>:$y
  );
  let assemblyFormat = [{
    $expert_out `,` $weights `,` $rows `into` $y attr-dict
    `:` type($expert_out) `,` type($weights) `,` type($rows) `,` type($y)
  }];
}

//===----------------------------------------------------------------------===//
// Backward kernels (zero-buffer: rows are read through the owners map)
//===----------------------------------------------------------------------===//

def Moek_ExpertLoadsOp : Moek_KernelOp<"expert_loads"> {
  let summary = "loads[e] = offsets[e+1] - offsets[e], the kept assignments";
  let description = [{
    ```mlir
    moek.expert_loads %offsets into %loads : memref<5xi32>, memref<4xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Arg<AnyMemRef, "", [MemWrite]>:$loads
  );
  let assemblyFormat = [{
    $offsets `into` $loads attr-dict `:` type($offsets) `,` type($loads)
  }];
}

def Moek_GroupedGluBackwardOp : Moek_KernelOp<"grouped_glu_backward",
    [AttrSizedOperandSegments]> {
  let summary = "per grouped row: the GLU's backward and the gate-weight gradient";
  let description = [{
    The elementwise part of the experts' backward, after the GEMM
    `g = dy[t] . w2[e]^T` (a `moek.grouped_matmul` with `gather` and
    `transpose_b`, on tensor cores where it can be). For each expert e in
    `[first, last)` (default all) and each grouped row r of it
    (`base = offsets[first]`), with `o = owners[r]`, token `t = o / top_k`,
    slot `j = o % top_k`, `w = weights[t, j]`, `g = g[r - base]` (F wide):

    - from the recomputed pre-activation `h = gate_up[r - base]` (2F wide):
      `a = act(h[:F]) * h[F:]`; `act[r - base] = w*a`, weighted so that
      `dw2[e] = sum (w a)^T dy[t]` is a plain varlen-K GEMM;
    - `d_weights[t, j] = <g, a>` (= dy[t] . o_j without forming o_j);
    - `dh[r - base] = (w*g * h[F:] * act'(h[:F]), w*g * act(h[:F]))`.

    Entries of `d_weights` of dropped assignments are not written. `act`
    may be `g` itself and `dh` may be `gate_up` (in place): each element of
    a row is read just before what replaces it is written there. `act` and
    `dh` may be f32 or of a narrower float type (the operands of the
    tensor-core GEMMs that read them).

    ```mlir
    moek.grouped_glu_backward silu_glu %g, %offsets, %owners, %weights,
        %gate_up into %g, %gate_up, %d_weights {top_k = 2 : i64}
        : memref<32x24xf32>, memref<5xi32>, memref<32xi32>,
          memref<16x2xf32>, memref<32x48xf32>, memref<32x24xf32>,
          memref<32x48xf32>, memref<16x2xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$g,
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Arg<AnyMemRef, "", [MemRead]>:$owners,
    Arg<AnyMemRef, "", [MemRead]>:$weights,
    Arg<AnyMemRef, "", [MemRead]>:$gate_up,
    Optional<Index>:$first_expert,
    Optional<Index>:$last_expert,
    Arg<AnyMemRef, "", [MemWrite]>:$act,
    Arg<AnyMemRef, "", [MemWrite]>:$dh,
    Arg<AnyMemRef, "", [MemWrite]>:$d_weights,
    Moe_ActivationAttr:$activation,
    DefaultValuedAttr<I64Attr, "1">:$top_k
  );
  let assemblyFormat = [{
    $activation $g `,` $offsets `,` $owners `,` $weights `,` $gate_up
    (`experts` `(` $first_expert^ `,` $last_expert `)`)?
    `into` $act `,` $dh `,` $d_weights attr-dict
    `:` type($g) `,` type($offsets) `,` type($owners) `,`
    type($weights) `,` type($gate_up) `,` type($act) `,` type($dh) `,`
    type($d_weights)
  }];
}

def Moek_GroupedWeightGradOp : Moek_KernelOp<"grouped_weight_grad",
    [AttrSizedOperandSegments]> {
  let summary = "dw[e] = sum over expert e's rows of lhs_row^T rhs_row (varlen-K)";
  let description = [{
    The weight gradient of a grouped GEMM: for each expert e in
    `[first, last)` (default all), `dw[e] = sum_r L(r)^T (x) R(r)` over the
    grouped rows r of e: a GEMM whose reduction dimension is the expert's
    row count (varlen-K). With `gather_lhs` (`gather_rhs`) the row is token
    `owners[r] / top_k` of `lhs` (`rhs`), read through the routing index;
    otherwise row `r - offsets[first]`. With `weights`, each product is
    scaled by `weights[owners[r] / top_k, owners[r] % top_k]`. An expert
    with no rows gets zero; accumulation is f32.

    ```mlir
    moek.grouped_weight_grad %act, %dy, %offsets, %owners
        weights(%weights : memref<16x2xf32>) into %dw2
        {gather_rhs, top_k = 2 : i64}
        : memref<32x24xf32>, memref<16x32xf32>, memref<5xi32>,
          memref<32xi32>, memref<4x24x32xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$lhs,
    Arg<AnyMemRef, "", [MemRead]>:$rhs,
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Arg<AnyMemRef, "", [MemRead]>:$owners,
    Arg<Optional<AnyMemRef>, "", [MemRead]>:$weights,
    Optional<Index>:$first_expert,
    Optional<Index>:$last_expert,
    Arg<AnyMemRef, "", [MemWrite]>:$dw,
    UnitAttr:$gather_lhs,
    UnitAttr:$gather_rhs,
    DefaultValuedAttr<I64Attr, "1">:$top_k
  );
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $offsets `,` $owners
    (`weights` `(` $weights^ `:` type($weights) `)`)?
    (`experts` `(` $first_expert^ `,` $last_expert `)`)?
    `into` $dw attr-dict
    `:` type($lhs) `,` type($rhs) `,` type($offsets) `,` type($owners) `,`
    type($dw)
  }];
}

def Moek_RouteBackwardOp : Moek_KernelOp<"route_backward",
                                         [AttrSizedOperandSegments]> {
  let summary = "router backward: weights -> p -> scores -> x, w_gate; aux loss";
  let description = [{
    Per token t: recomputes the scores `x[t] . w_gate` and `p` (softmax or
    sigmoid) — or reads `p` from `probs` (f32 [T, E]) when the forward saved
    it —, takes `d_weights[t, :]` back through scaling and
    normalization to `dp` over the selected `indices[t, :]`, adds the
    aux-loss gradient `aux_loss * E * f_e / T` (f_e = loads /
    (group_ranks*T*k), the loads being `offsets[e+1] - offsets[e]`: with
    expert parallelism the offsets of the EP group's loads), then through the score
    function to `ds`, and accumulates `dx[t] += ds . w_gate^T` (`dx` f32
    or in `x`'s type, added to: each element receives its whole sum over E
    in one f32 addition, rounded once to a narrower `dx`) and
    `dw_gate += x[t]^T ds` (f32 `dw_gate`, written). `aux`
    (rank 0, f32) receives `aux_loss * E * sum_e f_e * P_e`, 0 when
    `aux_loss` is 0. `scores` (f32 [T, E], contents undefined after the op)
    is the GPU lowering's scratch for the recomputed scores and their
    gradients, planned like `moek.route`'s; the GPU lowering requires it.
    `ds` ([T, E] in `x`'s element type, bf16 or f16; contents undefined
    after the op) is the GPU's scratch for the score gradients rounded to
    the layer's type: with it the two products `dx += ds . w_gate^T` and
    `dw_gate = x^T ds` run on tensor cores (where their K and N are
    multiples of 8), without it as SIMT kernels reading the f32 `scores`.

    ```mlir
    moek.route_backward softmax %x, %w_gate, %indices, %offsets, %dweights
        into %dx, %dw_gate, %aux
        : memref<16x32xf32>, memref<32x4xf32>, memref<16x2xi32>,
          memref<5xi32>, memref<16x2xf32>, memref<16x32xf32>,
          memref<32x4xf32>, memref<f32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$x,
    Arg<AnyMemRef, "", [MemRead]>:$w_gate,
    Arg<AnyMemRef, "", [MemRead]>:$indices,
    Arg<AnyMemRef, "", [MemRead]>:$offsets,
    Arg<AnyMemRef, "", [MemRead]>:$d_weights,
    Arg<AnyMemRef, "", [MemRead, MemWrite]>:$dx,
    Arg<AnyMemRef, "", [MemWrite]>:$dw_gate,
    Arg<AnyMemRef, "", [MemWrite]>:$aux,
    Arg<Optional<AnyMemRef>, "", [MemRead]>:$probs,
    Arg<Optional<AnyMemRef>, "", [MemRead, MemWrite]>:$scores,
    Arg<Optional<AnyMemRef>, "", [MemRead, MemWrite]>:$ds,
    Moe_ScoreFuncAttr:$score_func,
    DefaultValuedAttr<BoolAttr, "true">:$normalize,
    DefaultValuedAttr<F64Attr, "1.0">:$scaling,
    DefaultValuedAttr<F64Attr, "0.0">:$aux_loss,
    DefaultValuedAttr<I64Attr, "1">:$group_ranks
  );
  let assemblyFormat = [{
    $score_func $x `,` $w_gate `,` $indices `,` $offsets `,` $d_weights
    `into` $dx `,` $dw_gate `,` $aux
    (`probs` `(` $probs^ `:` type($probs) `)`)?
    (`scores` `(` $scores^ `:` type($scores) `)`)?
    (`ds` `(` $ds^ `:` type($ds) `)`)? attr-dict
    `:` type($x) `,` type($w_gate) `,` type($indices) `,` type($offsets) `,`
    type($d_weights) `,` type($dx) `,` type($dw_gate) `,` type($aux)
  }];
  let extraClassDeclaration = [{
    /// Whether the products fit the GPU's tensor-core kernels: H and E
    /// are K and N of dx += ds . w_gate^T, M and N of x^T ds, and both
    /// kernels copy 8 elements at a time.
    static bool productsFitTensorCores(int64_t hidden, int64_t experts) {
      return hidden % 8 == 0 && experts % 8 == 0;
    }
    /// Slices of the tokens that the GPU's dw_gate = x^T ds splits its
    /// reduction into, each CTA adding its slice's sum into dw_gate: its
    /// `outputTiles` tiles of [H, E] alone would leave most of the chip's
    /// `multiprocessors` idle (16 of 132 for H = 2048, E = 128).
    static int64_t weightGradSlices(int64_t outputTiles,
                                    int64_t multiprocessors) {
      return outputTiles >= multiprocessors
                 ? 1
                 : multiprocessors / (outputTiles > 0 ? outputTiles : 1);
    }
  }];
}

//===----------------------------------------------------------------------===//
// Collectives (expert parallelism); the CPU lowering calls moert's MPI-backed
// entry points, the CUDA one its NCCL-backed ones
//===----------------------------------------------------------------------===//

def Moek_ExchangeCountsOp : Moek_KernelOp<"exchange_counts"> {
  let summary = "all-to-all of equal blocks of i32 segment counts";
  let description = [{
    Block `d` (G/R counts) of `counts[G]` goes to rank `d`; block `s` of
    `received[G]` comes from rank `s`. The split sizes of a following
    `moek.all_to_all`, exchanged before its payload.

    ```mlir
    moek.exchange_counts %counts into %received {ranks = 2 : i64}
        : memref<4xi32>, memref<4xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$counts,
    Arg<AnyMemRef, "", [MemWrite]>:$received,
    I64Attr:$ranks
  );
  let assemblyFormat = [{
    $counts `into` $received attr-dict `:` type($counts) `,` type($received)
  }];
}

def Moek_AllToAllOp : Moek_KernelOp<"all_to_all"> {
  let summary = "all-to-all of rows with per-segment splits (MPI_Alltoallv)";
  let description = [{
    The payload of `moe.all_to_all`: segment `g` of `rows` (`counts[g]`
    consecutive rows) goes to rank `g / (G/R)`; `received` gets, from rank
    0, 1, ..., the rows of its block of `received_counts`. Both buffers are
    contiguous rows; `received` must hold `sum(received_counts)` rows (the
    runtime checks it).

    ```mlir
    moek.all_to_all %rows, %counts, %received_counts into %received
        {ranks = 2 : i64}
        : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$rows,
    Arg<AnyMemRef, "", [MemRead]>:$counts,
    Arg<AnyMemRef, "", [MemRead]>:$received_counts,
    Arg<AnyMemRef, "", [MemWrite]>:$received,
    I64Attr:$ranks
  );
  let assemblyFormat = [{
    $rows `,` $counts `,` $received_counts `into` $received attr-dict
    `:` type($rows) `,` type($counts) `,` type($received_counts) `,`
    type($received)
  }];
}

def Moek_AllReduceOp : Moek_KernelOp<"all_reduce"> {
  let summary = "out[i] = sum over the ranks of in[i] (i32)";
  let description = [{
    ```mlir
    moek.all_reduce %loads into %group {ranks = 2 : i64}
        : memref<4xi32>, memref<4xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$in,
    Arg<AnyMemRef, "", [MemWrite]>:$out,
    I64Attr:$ranks
  );
  let assemblyFormat = [{
    $in `into` $out attr-dict `:` type($in) `,` type($out)
  }];
}

def Moek_ReceivedAssignmentsOp : Moek_KernelOp<"received_assignments"> {
  let summary = "local expert and unit weight of each received row";
  let description = [{
    For segment `g` of `counts[G]` (in order), its `counts[g]` rows get
    `indices[n, 0] = g mod (G/R)` and `weights[n, 0] = 1.0`: the routing
    plan of the rows an expert rank received, which `moek.rank_assignments`
    then completes (with its offsets). Rows past `sum(counts)` (a
    buffer sized by a bound, the host never having read the counts) get
    `indices[n, 0] = G/R`, no expert, and weight 0.

    ```mlir
    moek.received_assignments %counts into %indices, %weights {ranks = 2 : i64}
        : memref<4xi32>, memref<?x1xi32>, memref<?x1xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$counts,
    Arg<AnyMemRef, "", [MemWrite]>:$indices,
    Arg<AnyMemRef, "", [MemWrite]>:$weights,
    I64Attr:$ranks
  );
  let assemblyFormat = [{
    $counts `into` $indices `,` $weights attr-dict
    `:` type($counts) `,` type($indices) `,` type($weights)
  }];
}

def Moek_SlotsToRowsOp : Moek_KernelOp<"slots_to_rows"> {
  let summary = "out[rows[t,j], 0] = values[t,j] for kept assignments, other rows 0";
  let description = [{
    ```mlir
    moek.slots_to_rows %weights, %rows into %out
        : memref<16x2xf32>, memref<16x2xi32>, memref<32x1xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$values,
    Arg<AnyMemRef, "", [MemRead]>:$rows,
    Arg<AnyMemRef, "", [MemWrite]>:$out
  );
  let assemblyFormat = [{
    $values `,` $rows `into` $out attr-dict
    `:` type($values) `,` type($rows) `,` type($out)
  }];
}

def Moek_RowsToSlotsOp : Moek_KernelOp<"rows_to_slots"> {
  let summary = "values[t,j] = in[rows[t,j], 0] for kept assignments, 0 for dropped";
  let description = [{
    ```mlir
    moek.rows_to_slots %in, %rows into %values
        : memref<32x1xf32>, memref<16x2xi32>, memref<16x2xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$in,
    Arg<AnyMemRef, "", [MemRead]>:$rows,
    Arg<AnyMemRef, "", [MemWrite]>:$values
  );
  let assemblyFormat = [{
    $in `,` $rows `into` $values attr-dict
    `:` type($in) `,` type($rows) `,` type($values)
  }];
}

def Moek_AllToAllStartOp : Moek_KernelOp<"all_to_all_start"> {
  let summary = "start moek.all_to_all on the communication stream; its event";
  let description = [{
    `moek.all_to_all` without waiting: the transfer runs on the runtime's
    communication stream while the ops that follow run on the compute
    stream, until `moek.all_to_all_wait` on the event. Neither buffer may be
    touched in between; the wait names both, so that their lifetimes (and
    the memory plan) reach it.

    ```mlir
    %event = moek.all_to_all_start %rows, %counts, %received_counts
        into %received {ranks = 2 : i64}
        : memref<32x64xf32>, memref<4xi32>, memref<4xi32>, memref<?x64xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$rows,
    Arg<AnyMemRef, "", [MemRead]>:$counts,
    Arg<AnyMemRef, "", [MemRead]>:$received_counts,
    Arg<AnyMemRef, "", [MemWrite]>:$received,
    I64Attr:$ranks
  );
  let results = (outs I64:$event);
  let assemblyFormat = [{
    $rows `,` $counts `,` $received_counts `into` $received attr-dict
    `:` type($rows) `,` type($counts) `,` type($received_counts) `,`
    type($received)
  }];
}

def Moek_AllToAllWaitOp : Moek_KernelOp<"all_to_all_wait"> {
  let summary = "wait for a started all-to-all; its buffers are usable again";
  let description = [{
    ```mlir
    moek.all_to_all_wait %event, %rows, %received
        : memref<32x64xf32>, memref<?x64xf32>
    ```
  }];
  let arguments = (ins
    I64:$event,
    Arg<AnyMemRef, "", [MemRead]>:$rows,
    Arg<AnyMemRef, "", [MemRead, MemWrite]>:$received
  );
  let assemblyFormat = [{
    $event `,` $rows `,` $received attr-dict `:` type($rows) `,` type($received)
  }];
}

//===----------------------------------------------------------------------===//
// The block's kernels (the CUDA target's RMSNorm and attention)
//===----------------------------------------------------------------------===//

def Moek_MatmulOp : Moek_KernelOp<"matmul"> {
  let summary = "dense GEMM c = a · b, f32 accumulation";
  let description = [{
    `c[m, n] = sum over k of a[m, k] · b[k, n]`, accumulated in f32 and
    stored in c's type: attention's projections (q, k, v = n · wq, wk, wv;
    out = heads · wo). `a` [M, K] and `b` [K, N] (static, a weight) have one
    storage type; `c` [M, N] is f32 or that type. On CUDA a bf16/f16 GEMM
    runs on tensor cores (the grouped matmul's mma.sync kernel with one
    group), anything else on the SIMT kernel.

    ```mlir
    moek.matmul %n, %wq into %q
        : memref<16x32xbf16>, memref<32x32xbf16>, memref<16x32xf32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$a,
    Arg<AnyMemRef, "", [MemRead]>:$b,
    Arg<AnyMemRef, "", [MemWrite]>:$c
  );
  let assemblyFormat = [{
    $a `,` $b `into` $c attr-dict `:` type($a) `,` type($b) `,` type($c)
  }];
}

def Moek_RmsNormOp : Moek_KernelOp<"rms_norm"> {
  let summary = "out = x / sqrt(mean(x²) + epsilon) · g, per row";
  let description = [{
    RMSNorm over the rows of `x` [T, H]: each row's mean of squares in f32,
    then `out[t, h] = x[t, h] / sqrt(mean + epsilon) · g[h]` stored in
    out's type. `x` and `out` [T, H] have one storage type, `g` [H] (static)
    too. On CUDA a warp per row.

    ```mlir
    moek.rms_norm %x, %g into %out {epsilon = 1.0e-06 : f64}
        : memref<16x32xbf16>, memref<32xbf16>, memref<16x32xbf16>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$x,
    Arg<AnyMemRef, "", [MemRead]>:$g,
    Arg<AnyMemRef, "", [MemWrite]>:$out,
    DefaultValuedAttr<F64Attr, "1.0e-6">:$epsilon
  );
  let assemblyFormat = [{
    $x `,` $g `into` $out attr-dict `:` type($x) `,` type($g) `,` type($out)
  }];
}

def Moek_FlashAttentionOp : Moek_KernelOp<"flash_attention"> {
  let summary = "causal grouped-query attention core, online softmax";
  let description = [{
    For each sequence b, query head h and query i of `q` [B, L, heads·dh]:
    `o[b, i, h·dh + d] = sum over j <= i of p_j · v[b, j, g·dh + d]` with
    `p = softmax over j <= i of (q_h[b, i] · k_g[b, j]) / sqrt(dh)` and key
    and value head `g = floor(h · kv_heads / heads)` of `k`, `v` [B, L,
    kv_heads·dh] (ARCHITECTURE.md, "The block"). The softmax is online (a
    running max and sum per query, in f32) over blocks of keys up to the
    causal limit: no [L, L] scores exist anywhere. `q`, `k`, `v` are f32 or
    the storage type of `o`. `heads` must be a multiple of `kv_heads`, the
    widths multiples of the head counts with one head size dh.

    ```mlir
    moek.flash_attention heads = 4 kv_heads = 2 %q, %k, %v into %o
        : memref<2x8x32xf32>, memref<2x8x16xf32>, memref<2x8x16xf32>,
          memref<2x8x32xbf16>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$q,
    Arg<AnyMemRef, "", [MemRead]>:$k,
    Arg<AnyMemRef, "", [MemRead]>:$v,
    Arg<AnyMemRef, "", [MemWrite]>:$o,
    I64Attr:$heads,
    I64Attr:$kv_heads
  );
  let assemblyFormat = [{
    `heads` `=` $heads `kv_heads` `=` $kv_heads $q `,` $k `,` $v `into` $o
    attr-dict `:` type($q) `,` type($k) `,` type($v) `,` type($o)
  }];
  let extraClassDeclaration = [{
    /// The head size dh: q's width over the query heads.
    int64_t getHeadDim();
  }];
}

#endif // MOEK_OPS
