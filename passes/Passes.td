//===- Passes.td - MoE-MLIR passes -------------------------*- tablegen -*-===//

#ifndef MOE_PASSES
#define MOE_PASSES

include "mlir/Pass/PassBase.td"

def MoeGenerateBackwardPass : Pass<"moe-generate-backward", "ModuleOp"> {
  let summary = "Make the training program of each MoE function: forward, residuals, backward";
  let description = [{
    Replaces each public function `@F(args) -> (results)` built of moe ops
    by `@F_train(args, dy...) -> (results, gradients, [aux...], loads...)`:
    one cotangent argument per result that a `moe.combine` makes, the
    gradients of the loss `sum y * dy (+ aux)` with respect to every
    floating-point argument that reaches a differentiated result (in
    argument order; a gate's bias steers selection only and gets none),
    then for each `moe.gate` whose `aux_loss` > 0 the load-balancing loss
    (`tensor<f32>`), then each gate's expert loads (`tensor<Exi32>`).

    Reverse mode, one adjoint rule per op, in reverse program order:
    `moe.combine` differentiates its `moe.dispatch -> moe.experts ->
    moe.combine` chain as one unit (`moe.experts_backward`), because the
    per-op adjoints of dispatch and combine are [T*k, H] buffers that the
    zero-buffer kernels exist to avoid; `moe.gate` becomes
    `moe.gate_backward`, which adds its part of dx to what the chain
    produced. Cotangents of a value used twice add up. An op with no rule,
    or a dispatch / experts outside a chain, is an error.

    Residuals: the forward values the backward reads pass through one
    `moe.save_for_backward` per gate (the router weights and the routing
    plan) and one more for any other computed value a rule reads (a stacked
    layer's input, the previous layer's output); the backward recomputes the gate/up projection and never sees
    the dispatched tokens or the expert outputs (`recomputed` lists them),
    the default SonicMoE chose.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def MoeChooseEpiloguePass : Pass<"moe-choose-epilogue", "ModuleOp"> {
  let summary = "Choose how expert outputs reach y (scatter_add or gather_sum) by predicted time";
  let description = [{
    Zero-buffer fusion brings the second grouped GEMM's rows back to token
    order either by `scatter_add` (gate-weighted adds into an f32
    accumulator: the least memory, atomics on every element of y) or by
    `gather_sum` (rows stored in expert order, a gather sums each token's k
    rows: no atomics, T*k*H more bytes of activations). This pass lowers a
    clone of the module with each to planned buffers (the target's pipeline
    up to `moe-plan-memory`), predicts both with the cost model on
    `cost-device` (empty: the target's) and keeps the faster, unless it is
    faster by less than 3% (within the model's error): then the smaller
    planned peak. With `within-peak`, a candidate whose planned peak is
    above scatter_add's is not taken at all: a program placed under a
    memory budget for scatter_add (the least memory) then takes gather_sum
    only where its expert-order rows fit in bytes the plan already has (a
    training step's rows live in dw1's bytes until dw1 is written). The
    choice is the module's `moe.epilogue` attribute (what
    `moe-compile --epilogue=auto` compiles with); remarks give each
    candidate's prediction and peak, then the choice and why.

    ```
    remark: moe-choose-epilogue: scatter_add: predicted 3.795 ms on h200-sm90a, planned peak 336593472 bytes
    remark: moe-choose-epilogue: gather_sum: predicted 3.516 ms on h200-sm90a, planned peak 739770432 bytes
    remark: moe-choose-epilogue: gather_sum (predicted 7% faster)
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "The target whose pipeline plans and whose device predicts: cpu "
           "or cuda:sm_XY">,
    Option<"expertsPerChunk", "experts-per-chunk", "int64_t", /*default=*/"0",
           "The pipeline's experts-per-chunk (0: the target's default, 1 on "
           "the CPU, all experts on CUDA)">,
    Option<"costDevice", "cost-device", "std::string", /*default=*/"\"\"",
           "Device of the cost model's table (empty: the target's)">,
    Option<"withinPeak", "within-peak", "bool", /*default=*/"false",
           "Take no candidate whose planned peak is above scatter_add's (a "
           "program placed under a memory budget)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::moek::MoekDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::math::MathDialect",
  ];
}

def MoePlaceRecomputationPass : Pass<"moe-place-recomputation", "ModuleOp"> {
  let summary = "Save or recompute each residual of a training step, under a memory budget";
  let description = [{
    For each training step (a function `moe-generate-backward` made), decides
    for every forward value its backward reads whether the forward saves it
    or the backward recomputes it: the placement with the least predicted
    time (the cost model, `lib/Analysis/CostModel`, on the device
    `cost-device` or the target's) whose planned peak of intermediate memory
    (`moe-plan-memory`) is at most `memory-budget`. The search is exact:
    every subset of the candidates is lowered on a clone of the module to
    planned buffers (the target's pipeline up to the memory plan), at most
    2^8 of them (four layers).

    The candidates: the experts' pre-activation `h` ([T*k, 2F]; f32 on the
    CPU, the layer's storage type on CUDA, whose backward reads it in that
    type) of each dispatch -> experts -> combine chain (with fusion only):
    saving it adds `moe.expert_gate_up` (through `moe.save_for_backward`)
    as the `gate_up` operand of `moe.experts_backward`, so the forward's
    GLU GEMM stores `h` too and the backward skips its recompute GEMM and
    writes `dh` over `h`; and the router
    probabilities `p` ([T, E], f32) of each gate: saving them adds
    `moe.router_probabilities` as the `probs` operand of
    `moe.gate_backward`, so the router kernel stores `p` and the router's
    backward skips its scores GEMM. The router weights and routing
    metadata are always saved; the dispatched tokens and expert outputs
    never exist; the activation is recomputed inside the GLU's backward. Remarks
    give each decision and its predicted cost; the function gets a
    `moe.recomputation` attribute that `--report-memory` writes as its
    "saved" and "recomputed" lists.

    `memory-budget` is a number of bytes, a percentage of the
    save-everything peak (`50%`), or `least`: the least peak any placement
    reaches (the fastest placement at that peak; what `moe-compile` and
    `moe-run` use on CUDA when no budget is given); empty (the pass's
    default) leaves the placement of `moe-generate-backward` alone. A
    budget below the least peak any placement reaches is an error naming
    that minimum.
  }];
  let options = [
    Option<"memoryBudget", "memory-budget", "std::string", /*default=*/"\"\"",
           "Planned peak of intermediate memory allowed: BYTES, PERCENT% "
           "of the save-everything peak, or least (empty: do nothing)">,
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "The target whose pipeline plans the memory: cpu or cuda:sm_XY">,
    Option<"expertsPerChunk", "experts-per-chunk", "int64_t", /*default=*/"0",
           "The pipeline's experts-per-chunk (0: the target's default, 1 on "
           "the CPU, all experts on CUDA)">,
    Option<"fusion", "fusion", "bool", /*default=*/"true",
           "Plan with moe-zero-buffer-fusion, as the pipeline will run">,
    Option<"epilogue", "epilogue", "std::string",
           /*default=*/"\"scatter_add\"",
           "The fusion's epilogue: scatter_add or gather_sum">,
    Option<"costDevice", "cost-device", "std::string", /*default=*/"\"\"",
           "Device of the cost model's table (empty: the target's: cpu, "
           "h200-sm90a for cuda:sm_90a, h200-sm90 otherwise)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::moek::MoekDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::math::MathDialect",
  ];
}

def MoeExpertParallelPass : Pass<"moe-expert-parallel", "ModuleOp"> {
  let summary = "Turn each MoE layer into its per-rank program for R expert-parallel ranks";
  let description = [{
    ARCHITECTURE.md, "Expert parallelism over R ranks": rank r holds its T
    tokens and experts `[r*E/R, (r+1)*E/R)`; the router is replicated.
    Rewrites each `moe.gate -> moe.dispatch -> moe.experts -> moe.combine`
    chain of a function that asks for it (`ranks` > 0, or the function
    attribute `moe.ep_ranks = R`) into:

    1. the gate over all E experts on the rank's tokens, and the dispatch
       into expert order (the send buffer);
    2. `moe.expert_loads`, then `moe.all_to_all` of the dispatched rows with
       the loads as split sizes: each row travels to its expert's rank;
    3. `moe.local_routing` of what arrived, and the local experts as a
       dispatch -> experts -> combine chain over it (top_k = 1, weights 1),
       which `moe-zero-buffer-fusion` turns into gather/scatter grouped
       GEMMs like any layer;
    4. `moe.all_to_all` back with the received counts, which returns each
       row to its place in expert order, and the gate-weighted combine.

    The function's w1 and w2 arguments become the local shards
    `[E/R, H, 2F]` and `[E/R, F, H]` (they must be arguments). Capacity
    applies to the rank's T tokens (GShard groups). E not divisible by R,
    or weights that are not arguments, are errors.

    The training program (`moe-generate-backward` first, then this pass):
    each `moe.experts_backward` sends the rows of x and dy and each row's
    gate weight (`moe.slots_to_rows`) to the experts' ranks, runs the local
    experts' backward there and brings each row's input gradient and
    gate-weight gradient back (`moe.rows_to_slots`); the dispatch's adjoint
    is a combine with unit weights. dw1 and dw2 are the local experts'
    complete gradients; dx, dw_gate and the loads are the rank's. The aux
    loss counts the EP group's loads: `moe.all_reduce` of the rank's loads
    becomes `moe.gate_backward`'s `group_loads`.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
  let options = [
    Option<"ranks", "ranks", "int64_t", /*default=*/"0",
           "Ranks of every MoE function (0: those with moe.ep_ranks only)">,
  ];
}

def MoeOverlapCommunicationPass : Pass<"moe-overlap-communication", "ModuleOp"> {
  let summary = "Pipeline a per-rank layer's all-to-alls with its expert GEMMs over chunks of tokens";
  let description = [{
    Splits the tokens of each per-rank layer (`moe-expert-parallel`'s) into
    N chunks and lays the program out as a software pipeline: every chunk's
    routing, dispatch and outbound all-to-all first, then each chunk's local
    experts followed by its all-to-all back, then the combines. Lowered,
    each all-to-all is started on the runtime's communication stream and
    waited for just before its rows are used, so chunk c+1's rows travel
    while chunk c is routed and chunk c-1's results travel back while chunk
    c's experts run (both directions). Dropless routing is per token, so
    the result is exactly the layer's.

    N is `chunks`, or the function attribute `moe.overlap_chunks` (a layer
    spec's `overlap=N`), or when that is 0 the cost model's choice from the
    `cost-device`'s link (bandwidth, latency, the host's wait for an
    all-to-all's counts) and its prediction of the local experts' GEMMs (a
    remark says which, and why). A layer with a capacity factor (capacity is per
    group of tokens), a dynamic token count or the training program is left
    alone with a remark; a chunk count that does not divide the tokens is an
    error.
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", /*default=*/"-1",
           "Chunks of every per-rank layer (0: the cost model); -1, the "
           "default: only functions with moe.overlap_chunks are chunked">,
    Option<"costDevice", "cost-device", "std::string", /*default=*/"\"cpu\"",
           "Device of the cost model's table whose link and GEMM rate "
           "choose the chunks (moe-compile passes the target's)">,
  ];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

def MoeBatchTileAttentionPass : Pass<"moe-batch-tile-attention", "ModuleOp"> {
  let summary = "Run each block's attention over tiles of its batch (BTA)";
  let description = [{
    Batch tiling on attention (Cerebras, "MoE at Scale"): attention's
    intermediates (q, k, v, scores, the heads' outputs) grow with the
    batch, which caps it; the experts want the whole batch to keep their
    GEMMs fed. So each `moe.attention` on `n[B, L, H]` becomes a loop over N
    tiles of B/N sequences: the tile's slice of `n`, attention on it, its
    output inserted into the result. Everything the tile's attention makes
    lives only during that iteration, and what follows (the MoE) still sees
    all B*L tokens. Sequences never attend to each other, so the result is
    exactly the untiled one.

    N is `tiles`, or the function attribute `moe.bta_tiles` (a block spec's
    `bta_tiles=N`); 1 leaves the attention as it is. N must divide B (an
    error says so); a dynamic batch is left alone with a remark.

    With `memory-budget` the pass chooses N for each function with
    attention: every N dividing B is lowered, on a clone of the module, to
    planned buffers (the target's pipeline up to `moe-plan-memory`, as
    `moe-place-recomputation` does), and N is the fewest tiles whose planned
    peak of intermediate memory is at most the budget: fewer tiles mean
    fewer launches and larger per-tile GEMMs. A remark gives each
    candidate's planned peak and the cost model's predicted time
    (`cost-device`, or the target's); the
    function gets a `moe.bta` attribute (the budget, the choice, why, every
    candidate) that `--report-memory` writes as "bta". `memory-budget` is a
    number of bytes, a percentage of the untiled peak (`50%`), or `least`
    (the least peak any N reaches: the fewest tiles that reach it). When no
    N fits with the MoE's grouped rows whole, and the function has a MoE
    whose row slices are not given (`moe.row_slices`) and a fused
    `scatter_add`-capable lowering, the pass also tries the rows in 2, 3,
    4, 6 and 8 slices (`moe-zero-buffer-fusion`'s row slices: the MoE's
    activation buffer is often what sets a block's peak) and takes the
    fewest slices with which some N fits, then the fewest N; it sets
    `moe.row_slices` on the function, and the remarks and `moe.bta`
    (`row_slices`) name the slices. A budget below the least peak any N
    reaches (with up to 8 slices, where they were tried) is an error naming
    that minimum. An N given as well (`tiles` or `moe.bta_tiles`) is checked instead of
    chosen: over the budget, an error names its peak and the fewest tiles
    that fit. A budget needs a static batch, and a module with attention.
  }];
  let options = [
    Option<"tiles", "tiles", "int64_t", /*default=*/"0",
           "Tiles of every attention's batch (0, the default: only functions "
           "with moe.bta_tiles are tiled)">,
    Option<"memoryBudget", "memory-budget", "std::string", /*default=*/"\"\"",
           "Choose the tiles: the fewest whose planned peak of intermediate "
           "memory is at most BYTES or PERCENT% of the untiled peak (empty: "
           "tiles as given)">,
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "With memory-budget: the target whose pipeline plans the memory, "
           "cpu or cuda:sm_XY">,
    Option<"expertsPerChunk", "experts-per-chunk", "int64_t", /*default=*/"0",
           "With memory-budget: the pipeline's experts-per-chunk (0: the "
           "target's default, 1 on the CPU, all experts on CUDA)">,
    Option<"fusion", "fusion", "bool", /*default=*/"true",
           "With memory-budget: plan with moe-zero-buffer-fusion, as the "
           "pipeline will run">,
    Option<"epilogue", "epilogue", "std::string",
           /*default=*/"\"scatter_add\"",
           "With memory-budget: the fusion's epilogue, scatter_add or "
           "gather_sum">,
    Option<"costDevice", "cost-device", "std::string", /*default=*/"\"\"",
           "With memory-budget: the cost model's device (empty: the "
           "target's)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::moek::MoekDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
}

def MoeZeroBufferFusionPass : Pass<"moe-zero-buffer-fusion", "ModuleOp"> {
  let summary = "Fuse dispatch, experts and combine into gather/scatter grouped GEMMs";
  let description = [{
    Rewrites each `moe.dispatch` -> `moe.experts` -> `moe.combine` chain
    (and the `moe.gate` it follows) into moek kernels that never
    materialize a [T*k, H] buffer: the first grouped matmul reads tokens
    through the row-owners map (gather prologue) and applies the GLU in its
    epilogue; the second accumulates each row, times its gate weight, into
    the output in token order (scatter-add epilogue; with top_k = 1, one
    row a token, it stores the row into the output in its own type:
    scatter-store, no accumulator and no atomics). Only O(T*k) integers
    of routing metadata and the [rows, F] activation remain. Experts run
    `experts-per-chunk` at a time; since a token picks an expert at most
    once, the activation buffer has T*min(k, experts-per-chunk) rows.
    With `row-slices=S` the grouped rows, in expert order, run S slices of
    ceil(T*k/S) rows instead, all experts in each launch: each slice's
    offsets are the routing's clipped to the slice (a `linalg.map`), so the
    activation buffer has ceil(T*k/S) rows however the tokens are routed,
    where a chunk of experts must hold T*min(k, chunk). Without the option
    a function's `moe.row_slices` attribute (a block spec's `row_slices=S`)
    gives S.

    A residual add of the output (`r + y` as a `linalg.generic` over
    identity maps, y used nowhere else: the block's `h + MoE(..)` after
    `convert-elementwise-to-linalg`) is absorbed into the scatter-add: the
    accumulator starts at r instead of zero, so the output is `r + sum`,
    rounded once, and no second [T, H] buffer exists beside r.

    `dispatch=copy` (or the module's `moe.dispatch = "copy"`, which
    `moe-compile --dispatch=copy` sets) makes GEMM 1 read
    a dispatched [T*k, H] copy of x's rows (`moek.gather_rows`) in order
    instead of gathering them: on sm_90a its rows then load by TMA. All
    experts then share one launch; row slices are an error with it.

    `epilogue=gather_sum` chooses the other way back to token order: the
    second grouped matmul stores its rows in expert order ([T*k, H], the
    storage type) and `moek.combine_rows` sums each token's k rows, times
    their gate weights, with a gather: no atomics and no f32 accumulator,
    at the price of the [T*k, H] rows (all experts then run in one chunk).

    Chains it cannot fuse (an intermediate with other uses, different
    routings, a routing not made in the function) are left to
    `moe-lower-to-kernels` with a remark that says why.
  }];
  let options = [
    Option<"expertsPerChunk", "experts-per-chunk", "int64_t",
           /*default=*/"1",
           "Experts whose grouped GEMMs run back to back; the activation "
           "buffer holds T*min(k, this) rows">,
    Option<"rowSlices", "row-slices", "int64_t", /*default=*/"1",
           "Grouped rows (expert order) in this many slices, each slice's "
           "two GEMMs over all experts back to back: the activation buffer "
           "holds ceil(T*k/this) rows whatever the routing (scatter "
           "epilogues; experts-per-chunk is then all experts). 1: the "
           "function's moe.row_slices, if any">,
    Option<"dispatch", "dispatch", "std::string", /*default=*/"\"\"",
           "How GEMM 1 reads its rows: gather (each row's token from x, in "
           "the GEMM) or copy (a dispatched [T*k, H] copy of x's rows, "
           "read in order: on sm_90a by TMA; all experts in one launch, no "
           "row slices). "
           "Empty: the module's moe.dispatch, else gather">,
    Option<"epilogue", "epilogue", "std::string", /*default=*/"\"scatter_add\"",
           "How expert outputs reach y: scatter_add (gate-weighted adds into "
           "an f32 accumulator) or gather_sum (expert-order rows, then a "
           "weighted gather over each token's k rows)">,
    Option<"kernelScratchBuffers", "kernel-scratch-buffers", "bool",
           /*default=*/"false",
           "The routing kernels it makes get their GPU scratch buffers, as "
           "with moe-lower-to-kernels' option of the same name">,
    Option<"deviceSplitSizes", "device-split-sizes", "bool",
           /*default=*/"false",
           "The local routing it lowers covers a bound on the received "
           "rows, as with moe-lower-to-kernels' option of the same name">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::moek::MoekDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def MoeLowerToKernelsPass : Pass<"moe-lower-to-kernels", "ModuleOp"> {
  let summary = "Lower moe ops to moek kernels, materializing every buffer";
  let description = [{
    Lowers `moe.gate` to the router and routing-plan kernels, and
    `moe.dispatch`, `moe.experts`, `moe.combine` the way today's frameworks
    run them: a [T*k, H] copy of the tokens in expert order, grouped GEMMs
    into [T*k, 2F], the GLU into [T*k, F], grouped GEMMs into [T*k, H], and
    a weighted gather back into token order. Run after
    `moe-zero-buffer-fusion` it lowers only what fusion left.

    The training ops (`moe.experts_backward`, `moe.gate_backward`,
    `moe.expert_loads`) have one lowering, zero-buffer by construction: per
    chunk of `experts-per-chunk` experts, the gate/up projection recomputed
    through the gather prologue, `g = dy[t] . w2[e]^T` as a
    `moek.grouped_matmul` with `transpose_b`, `moek.grouped_glu_backward`
    (the elementwise rest, from g), two `moek.grouped_weight_grad`
    (varlen-K) and `dx += dh . w1[e]^T` as a scatter-add
    `moek.grouped_matmul` with `transpose_b`;
    the router's backward is `moek.route_backward`. `moe.save_for_backward`
    disappears, its buffers named `residuals.*` for the memory plan.

    The block's ops (`moe.rms_norm`, `moe.attention`) become kernels on
    named buffers (`block.rms_norm`, `attention.*`). The buffers that
    bufferization would otherwise make nameless are named here too: an
    elementwise op computing into an argument (the block's residual add)
    writes `block.residual`; a loop that tiles attention over the batch
    (`moe-batch-tile-attention`) fills `block.attention_out`, and each
    tile's rows are copied into `attention.rows`, the tile's size.

    A `!moe.routing` value must come from a `moe.gate` in the same function
    and be used only by dispatch, experts, combine and the training ops;
    anything else is reported as an error.
  }];
  let options = [
    Option<"expertsPerChunk", "experts-per-chunk", "int64_t",
           /*default=*/"1",
           "Backward: experts whose kernels run back to back; the row "
           "buffers hold T*min(k, this) rows">,
    Option<"narrowGemmOperands", "narrow-gemm-operands", "bool",
           /*default=*/"false",
           "Backward: store the row buffers that GEMMs read as operands "
           "(dh) in the layer's element type, as tensor cores need (the "
           "CUDA pipeline sets it; the CPU keeps them f32)">,
    Option<"kernelScratchBuffers", "kernel-scratch-buffers", "bool",
           /*default=*/"false",
           "Give the kernels the GPU's lowering needs scratch for their "
           "buffers here, so that the memory plan counts them: the f32 "
           "[T, E] scores of moek.route and moek.route_backward "
           "(routing.scores, gradients.router_scores), for a bf16/f16 "
           "layer the router backward's [T, E] score gradients in the "
           "layer's type that its tensor-core products read "
           "(gradients.router_ds), and the per-slice "
           "counts of moek.rank_assignments (routing.rank_partials); the "
           "CUDA pipeline sets it, the CPU's loops need none. It also "
           "lowers the block's ops to the GPU's kernels (moek.rms_norm, "
           "moek.matmul, moek.flash_attention) instead of the CPU's "
           "linalg">,
    Option<"deviceSplitSizes", "device-split-sizes", "bool",
           /*default=*/"false",
           "Expert parallelism: the host never reads the all-to-all's "
           "split sizes. A received buffer of unknown rows holds R times "
           "the rows each rank sends (ranks have equal token counts), and "
           "the local routing marks the rows past the counts' sum as no "
           "expert's; without it the host sums the counts and sizes the "
           "buffers exactly (the CPU, whose host is its device). The CUDA "
           "pipeline sets it">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::moek::MoekDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def MoekLowerToLoopsPass : Pass<"moek-lower-to-loops", "ModuleOp"> {
  let summary = "Lower moek kernels to loops over buffers (the CPU backend)";
  let description = [{
    Every moek kernel becomes `scf.for` loops over its buffers with
    `arith`/`math` arithmetic, accumulating in f32. Only the rows of the
    selected experts are computed (T*k rows in all). Collectives become
    calls of moert's versioned entry points (`moert_exchange_counts_v1`,
    `moert_all_to_all_v1`), which run over MPI.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::func::FuncDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def MoekTileGroupedMatmulsPass : Pass<"moek-tile-grouped-matmuls", "ModuleOp"> {
  let summary = "Tile moek grouped matmuls into per-CTA tile loops with the device-side schedule";
  let description = [{
    The first stage of the tensor-core GEMM kernels: each
    `moek.grouped_matmul` that the `mma.sync` kernel takes (bf16 or f16
    operands, K and N multiples of 8, see `moek-lower-to-gpu`) becomes an
    `scf.forall` over its CTA tiles, mapped to GPU blocks: an upper bound
    of the row tiles any routing needs (`ceil(rows / BM)` plus the experts,
    computed on the host, which never learns the group sizes) by the
    column tiles. In each iteration `moek.row_tile` finds the tile's
    expert and rows from the offsets on the device, and a
    `moek.grouped_matmul_tile` computes the tile when it holds rows.
    `moek-lower-to-gpu` then lowers the loop to one launch and the tile to
    the `mma.sync` kernel's pipeline and epilogue.

    `tensor-core-tile` is the CTA tile, as `moek-lower-to-gpu`'s option of
    the same name.

    On `sm_90a` the grouped matmuls that the warpgroup (`wgmma`) kernel
    takes become its persistent loop instead: an `scf.forall` over at most
    one CTA per multiprocessor (in thread block clusters of `gemm-cluster`
    CTAs: pairs by default), and in it an `scf.for` over the cluster's
    tiles (every `clusters`-th of the row tiles times the column tiles, in
    bands of 16 row tiles walked column by column, so that the CTAs
    running at once share both a's rows and b's columns). A tile is
    `cluster` row tiles of one expert (`moek.row_tile` with `rows_per_tile`
    = cluster x 128), of which the CTA of rank r computes the r-th; the
    tile op's `k_tiles` operand and result carry the k tiles the CTA has
    computed, its position in the kernel's ring of shared-memory stages.
    The tile is 128 x 256, 64 deep per stage, 4 stages, 8 warps of 16 rows
    (two consumer warpgroups). `moek-lower-to-gpu` lowers the loop into
    one launch whose producer and consumer warpgroups each run it.
    Grouped matmuls that stay on the SIMT kernel (f32, odd K or N) are
    left whole.
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90\"",
           "GPU architecture the kernels are for (sm_90, sm_90a, sm_80)">,
    Option<"tensorCoreTile", "tensor-core-tile", "std::string",
           /*default=*/"\"128x256x32x4x2x4\"",
           "CTA tile of the tensor-core GEMMs: BMxBNxBKxSTAGES[xWARPSMxWARPSN]">,
    Option<"gemmCluster", "gemm-cluster", "std::string",
           /*default=*/"\"auto\"",
           "sm_90a: CTAs of the grouped matmuls' thread block clusters, as "
           "moek-lower-to-gpu's option of the same name: auto, 1 or 2">,
  ];
  // The tensor-core kernel's dialects: it tiles only what that kernel can
  // lower, which needs them loaded.
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def MoekLowerToGPUPass : Pass<"moek-lower-to-gpu", "ModuleOp"> {
  let summary = "Lower moek kernels to GPU kernels (gpu.launch, one thread per item)";
  let description = [{
    Every moek kernel becomes one or more `gpu.launch` with one thread per
    item: a token (router), an expert (ranks, which follow token order), an
    assignment, an output element (grouped matmul, GLU, combine). The
    scatter-add epilogue accumulates with f32 atomics. These SIMT kernels
    establish the CUDA path. Grouped matmuls on bf16/f16 operands whose
    K and N (N/2 for a GLU) are multiples of 8 run on tensor cores instead:
    128x256 tiles of one expert's rows (option `tensor-core-tile`), a
    4-stage cp.async pipeline into
    shared memory, ldmatrix and mma.sync m16n8k16 with f32 accumulation,
    and the store / GLU / scatter-add epilogues on the accumulators. For
    `chip=sm_90` the scatter-add adds four columns per vector reduction
    (`red.add.v4.f32`, PTX 8.1), lanes trading accumulators to gather them.
    For `chip=sm_90a` grouped matmuls run on Hopper's warpgroup tensor
    cores instead: b's tiles by TMA (a tensor map made on the host) into
    128B-swizzled shared memory on a 4-deep mbarrier ring, the gathered
    rows of a by cp.async into the same layout, a producer warpgroup and
    two consumer warpgroups (setmaxnreg) issuing wgmma m64n256k16, a
    persistent grid of one CTA per multiprocessor, and the same epilogues.
    There the varlen-K weight gradients (`moek.grouped_weight_grad` with
    offsets) take the same ring and roles, both operands' rows by cp.async
    and read transposed by wgmma (`moek_grouped_weight_grad_warpgroup`).
    The router computes its scores as a GEMM
    (tensor cores where they apply), then one thread per token picks the
    top-k. The block's kernels: `moek.rms_norm` a warp per row,
    `moek.matmul` (attention's projections) on the tensor-core kernel with
    one group for bf16/f16, `moek.flash_attention` a CTA per (query block,
    head, sequence) with an online softmax over key blocks in shared
    memory (FlashAttention-2's schedule on mma.sync for a bf16/f16 output
    whose head size is a multiple of 16 up to 128, SIMT otherwise or with
    `flash-attention=simt`); elementwise `linalg.generic`s (the residual adds) a thread per
    element. Each kernel is named after its op (`moek_route_scores`,
    `moek_grouped_matmul_silu_glu`, ...). A tile loop of
    `moek-tile-grouped-matmuls` (an `scf.forall` over GPU blocks around one
    `moek.grouped_matmul_tile`) becomes one launch of a CTA per tile:
    `moek.row_tile` the device-side schedule, the tile the mma.sync
    kernel's pipeline and epilogue. Its sm_90a persistent loop (one
    dimension over the CTAs, a tile with `k_tiles`) becomes one launch of
    those CTAs in clusters of the tile's `cluster_size`, whose producer and
    consumer warpgroups each run a clone of the loop: `moek.row_tile` a
    search of the CTA's tile table in shared memory, the tile the
    producer's loads or the consumers' wgmma k loop and epilogue. A loop or
    tile the kernel cannot run is an error. A grouped matmul not tiled gets
    the same kernel with its tile loop built in place.
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90\"",
           "GPU architecture the kernels are for (sm_90, sm_90a, sm_80)">,
    Option<"tensorCoreTile", "tensor-core-tile", "std::string",
           /*default=*/"\"128x256x32x4x2x4\"",
           "CTA tile of the tensor-core GEMMs: BMxBNxBKxSTAGES[xWARPSMxWARPSN]">,
    Option<"flashAttention", "flash-attention", "std::string",
           /*default=*/"\"auto\"",
           "moek.flash_attention's kernel: auto (mma.sync for a bf16/f16 "
           "output whose head size is a multiple of 16 up to 128, else "
           "SIMT) or simt">,
    Option<"gemmCluster", "gemm-cluster", "std::string",
           /*default=*/"\"auto\"",
           "sm_90a: CTAs of the GEMMs' thread block clusters, which share "
           "b's tiles by TMA multicast: auto (pairs for the grouped matmuls "
           "but the backward's one that gathers dy for a transposed b, and "
           "for the weight gradients; else none), 1 or 2">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def MoePlaceBuffersOnGPUPass : Pass<"moe-place-buffers-on-gpu", "ModuleOp"> {
  let summary = "Make the host's buffers device buffers (gpu.alloc, gpu.dealloc, gpu.memcpy)";
  let description = [{
    On the CUDA target the buffers a function allocates live on the device.
    Each `memref.alloc`, `memref.dealloc` and `memref.copy` outside a kernel
    becomes the synchronous gpu op; `gpu-async-region` then chains them with
    the kernels on one stream. A copy between views with offsets, which
    gpu.memcpy cannot take, becomes a kernel. A constant array
    (`memref.get_global`) is copied to a device buffer where the host takes
    its address. Host code may read small count arrays (1-D i32 of static
    size: the split sizes an expert-parallel all-to-all sums to size its
    buffer) through a host copy made right before the loop that reads them;
    any other host access to a buffer is an error.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def MoeJoinGPUStreamsPass : Pass<"moe-join-gpu-streams", "::mlir::func::FuncOp"> {
  let summary = "Keep a function's GPU work on one stream across host ops that read no device memory";
  let description = [{
    After `gpu-async-region`: that pass makes the host wait for the device
    before every host op it cannot prove free of memory effects, and starts
    a new stream after it. The tensor-map encoding of a TMA descriptor
    (`nvgpu.tma.create.descriptor`) is such an op, yet it reads only the
    buffer's address and shape, never its contents; so is a call of moert's
    CUDA collectives (`moert_cuda_*_v1`), which orders itself after the
    call's stream and that stream after it with events, on the device, and
    never reads a split size on the host. A host wait
    (`gpu.wait [%t]`) whose ops up to the next fresh stream
    (`%s = gpu.wait async`, no dependencies) are all such ops or free of
    memory effects is removed, and the work after it continues `%t`'s
    stream. The host wait right before the function returns is dropped too:
    the moert runtime waits for the device after the entry returns, or,
    for a call on a caller's stream, leaves it to the caller (the artifact's
    ABI: an entry queues its work on the stream the runtime gives it).
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def MoeFoldSliceCopiesPass : Pass<"moe-fold-slice-copies", "::mlir::func::FuncOp"> {
  let summary = "A buffer copied from or into a contiguous slice of another becomes a view of the slice's bytes";
  let description = [{
    After bufferization, before `moe-plan-memory`. The kernels take buffers
    of identity layout, so a tile of `moe-batch-tile-attention` is copied
    out of the block's rows into a tile-sized buffer, and the tile's output
    copied back into a slice of the whole batch's (`memref.copy`): on the
    GPU two kernels a tile, and two tile-sized buffers in the attention
    phase's peak. A slice of whole rows of a row-major buffer is contiguous,
    so the tile's buffer can be those bytes. For a `memref.copy` between a
    `memref.alloc` of identity layout (the tile) and a contiguous
    `memref.subview` of another allocation the function does not return:

    - copy in (slice to tile): the copy is the tile's first use, nothing
      writes the tile after it, and nothing writes the sliced buffer from
      the copy to the tile's last use;
    - copy out (tile to slice): the copy is the tile's last use, and
      nothing reads or writes the sliced buffer from the tile's allocation
      to the copy;

    and every offset the slice can take is a multiple of 16 bytes (what the
    kernels' vector accesses assume of a buffer's start),

    the sliced buffer becomes a `memref.view` of `memref<N x i8>` bytes
    allocated in its place, the tile a `memref.view` of those bytes at the
    slice's byte offset, and the copy is erased. Both views keep the
    identity layout the kernels want; `moe-plan-memory` then places the
    bytes like any buffer, and the tile takes none of its own.

    ```mlir
    %rows = memref.alloc() : memref<1x64x2048xbf16>
    memref.copy %slice, %rows   // %slice = memref.subview %n[%t, 0, 0] ...
    ```

    becomes

    ```mlir
    %rows = memref.view %n_bytes[%offset][] : memref<524288xi8> to memref<1x64x2048xbf16>
    ```

    with `%offset = %t * 262144` and `%n` a view of `%n_bytes` at 0.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect"];
}

def MoePlanMemoryPass : Pass<"moe-plan-memory", "::mlir::func::FuncOp"> {
  let summary = "Place every intermediate buffer in one arena by liveness";
  let description = [{
    After bufferization: each statically shaped buffer a function allocates
    and does not return (`memref.alloc` and `memref.alloca`, at the top level
    of the body or inside its loops) becomes a `memref.view` into one 64-byte
    aligned arena allocated once per call. A buffer is live from its
    allocation to the last operation of its own block that uses it or an
    alias of it (a use inside a loop keeps it live for the whole loop), so
    the buffers of one loop body (a tile of moe-batch-tile-attention) share
    bytes by their lifetimes in the body; buffers whose lifetimes do not
    overlap share bytes (first fit, largest first). The reported `live`
    range is in top-level operations.

    The plan is attached to the function as `moe.memory_plan`
    (`peak_intermediate_bytes`, and per buffer its name, category, bytes,
    offset and live range); buffers are named by the `moe.buffer`
    attribute the lowerings put on them (`CATEGORY.NAME`). Dynamically
    shaped buffers are left as they are and listed as unplanned.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect"];
}

#endif // MOE_PASSES
