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

def Moek_RouteOp : Moek_KernelOp<"route"> {
  let summary = "router: scores, probabilities, top-k, weights";
  let description = [{
    For each token of `x[T,H]`: scores `x[t]·w_gate` (f32), probabilities
    (softmax over E or sigmoid), group limits, the `top_k` experts by
    `p + bias` (ties to the lower index) into `indices[T,k]`, and their
    probabilities, normalized and scaled, into `weights[T,k]` — the
    semantics of `moe.gate` without the plan.

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
    `into` $weights `,` $indices attr-dict
    `:` type($x) `,` type($w_gate) `,` type($weights) `,` type($indices)
  }];
}

def Moek_RankAssignmentsOp : Moek_KernelOp<"rank_assignments"> {
  let summary = "each assignment's rank within its expert, under capacity";
  let description = [{
    Walks the assignments `indices[T,k]` in order of token, then slot. An
    assignment's rank is the number of earlier kept assignments of its
    expert; when `capacity_factor` > 0 and the rank reaches
    `C = max(1, ceil(cf*T*k/E))` the assignment is dropped (rank -1).
    `counts[E]` receives the kept assignments per expert.

    ```mlir
    moek.rank_assignments %indices into %ranks, %counts
        : memref<16x2xi32>, memref<16x2xi32>, memref<4xi32>
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "", [MemRead]>:$indices,
    Arg<AnyMemRef, "", [MemWrite]>:$ranks,
    Arg<AnyMemRef, "", [MemWrite]>:$counts,
    DefaultValuedAttr<F64Attr, "0.0">:$capacity_factor
  );
  let assemblyFormat = [{
    $indices `into` $ranks `,` $counts attr-dict
    `:` type($indices) `,` type($ranks) `,` type($counts)
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
    - `acc = A row · b[e]` in f32;
    - epilogue `store`: `c[r - base] = acc`; `silu_glu` / `gelu_glu`:
      `c[r - base, f] = act(acc[f]) * acc[N/2 + f]` (c is [rows, N/2]);
      `scatter_add`: `c[t] += weights[t, j] * acc` with `t = owners[r] /
      top_k`, `j = owners[r] % top_k` (c is f32 [T, N] in token order).

    Buffers: `a` [T, K] with `gather`, else [rows, K]; `b` [E, K, N],
    static, of the element type of `a`; `offsets` i32 [E+1]; `owners` i32
    [T*k], read by `gather` and `scatter_add` only; `weights` f32 [T, k],
    read by `scatter_add` only; `c` f32 [T, N] for `scatter_add`, else
    [rows, N] or [rows, N/2] (GLU), with the rows of `a` unless `gather`;
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
    Moek_EpilogueAttr:$epilogue,
    UnitAttr:$gather,
    DefaultValuedAttr<I64Attr, "1">:$top_k
  );
  let assemblyFormat = [{
    $epilogue $a `,` $b `,` $offsets
    (`experts` `(` $first_expert^ `,` $last_expert `)`)?
    (`owners` `(` $owners^ `:` type($owners) `)`)?
    (`weights` `(` $weights^ `:` type($weights) `)`)?
    `into` $c attr-dict
    `:` type($a) `,` type($b) `,` type($offsets) `,` type($c)
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

#endif // MOEK_OPS
