//===- MoekLowerToGPU.cpp - moek kernels to GPU kernels -------------------===//
//
// Every moek kernel becomes one or more gpu.launch, named after the op. Grouped
// matmuls on bf16/f16 (and the router's scores) run on tensor cores
// (GroupedMatmulTensorCore); the other kernels are one thread per item (a
// token, an assignment, an output element) with the arithmetic of the CPU
// kernels (KernelBodies): what changes is who iterates.
//
//===----------------------------------------------------------------------===//

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/BackwardKernelsGPU.h"
#include "lib/Conversion/MoekToGPU/BlockKernelsGPU.h"
#include "lib/Conversion/MoekToGPU/CollectivesGPU.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"
#include "lib/Conversion/MoekToGPU/RouteGPU.h"
#include "lib/Conversion/MoekToGPU/TensorCoreTarget.h"
#include "lib/Conversion/MoekToGPU/TileGroupedMatmuls.h"
#include "lib/Conversion/MoekToGPU/VectorAccess.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"
#include "lib/Target/CudaChip.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEKLOWERTOGPUPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

void mlir::moek::launchPerItem(LoopBuilder &lb, Value count,
                                function_ref<void(Value)> body,
                                StringRef part, int64_t threadsPerBlock) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value one = lb.index(1), threads = lb.index(threadsPerBlock);
  // At least one block: a launch of zero blocks is an error.
  Value blocks = arith::MaxUIOp::create(
      b, arith::CeilDivUIOp::create(b, count, threads), one);
  auto launch = gpu::LaunchOp::create(b, blocks, one, one, threads, one, one);
  if (!part.empty())
    launch.setFunctionAttr(FlatSymbolRefAttr::get(b.getContext(), part));
  OpBuilder::InsertionGuard guard(b);
  enterLaunchBody(b, launch);
  // The block size made again inside the kernel: a constant there, where
  // the host's value would be a parameter.
  Value item = arith::AddIOp::create(
      b,
      arith::MulIOp::create(b, launch.getBlockIds().x,
                            lb.index(threadsPerBlock)),
      launch.getThreadIds().x);
  lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, item, count),
            [&] { body(item); });
}

void mlir::moek::launchWarpPerItem(LoopBuilder &lb, Value count,
                                    function_ref<void(Value, Value)> body,
                                    int64_t itemsPerBlock) {
  ImplicitLocOpBuilder &b = lb.builder();
  // 32 threads an item: the guard of launchPerItem keeps or drops whole
  // warps. The 32 is made inside the kernel, so that the division is a
  // shift (one made outside would be a parameter).
  launchPerItem(
      lb, arith::MulIOp::create(b, count, lb.index(32)),
      [&](Value thread) {
        Value warp = lb.index(32);
        body(arith::DivUIOp::create(b, thread, warp),
             arith::RemUIOp::create(b, thread, warp));
      },
      /*part=*/{}, 32 * itemsPerBlock);
}

namespace {

/// Kernels of one thread per token use smaller blocks, so that 16K tokens
/// spread over all SMs.
constexpr int64_t kThreadsPerTokenBlock = 64;
/// Tokens per slice of the parallel rank computation: enough (slice,
/// expert) pairs to fill the GPU, each walking few assignments. The op
/// defines it: its `partials` scratch has a row per slice.
constexpr int64_t kTokensPerSlice = RankAssignmentsOp::kTokensPerSlice;
/// The most slots a kernel unrolls over a token's assignments (the rank
/// passes' walk, the combine's sum).
constexpr int64_t kUnrolledSlots = 16;
/// The most experts the per-token router kernel handles: 48 KiB of
/// thread-private scratch.
constexpr int64_t kMaxRouterExperts = 4096;

/// Runs `body(i, j)` for every (i, j) in [0, rows) x [0, cols).
void launchPerElement(LoopBuilder &lb, Value rows, Value cols,
                      function_ref<void(Value, Value)> body,
                      StringRef part = {}) {
  ImplicitLocOpBuilder &b = lb.builder();
  launchPerItem(
      lb, arith::MulIOp::create(b, rows, cols),
      [&](Value i) {
        body(arith::DivUIOp::create(b, i, cols),
             arith::RemUIOp::create(b, i, cols));
      },
      part);
}

/// What the kernels may use of the GPU they are for.
struct GpuTarget {
  /// The chip, tile and cluster options as parsed.
  TensorCoreTarget chipAndOptions;
  bool flashTensorCores = true; ///< moek.flash_attention on mma.sync

  const TensorCoreTile &tile() const { return chipAndOptions.tile; }
  /// red.add.v4.f32: sm_90 and later.
  bool vectorAtomics() const {
    return chipAndOptions.chip.hasVectorReductions();
  }
  /// wgmma and TMA: sm_90a.
  bool warpgroupMma() const { return chipAndOptions.chip.hasWarpgroupMma(); }
  int64_t multiprocessors() const {
    return chipAndOptions.chip.multiprocessors();
  }
  /// Per block, opt-in included.
  int64_t maxSharedBytes() const {
    return chipAndOptions.chip.maxSharedBytesPerBlock();
  }
  /// CTAs of a cluster for `gemm` (TensorCoreTarget::clusterSize).
  int64_t clusterSize(const TensorCoreGemm &gemm) const {
    return chipAndOptions.clusterSize(gemm);
  }
};

/// The router in two kernels: the scores x * w_gate as a GEMM into an f32
/// [T, E] buffer (on tensor cores for bf16/f16), then one thread per token
/// for the probabilities and the top-k. A thread computing its token's E
/// dot products over H alone would leave the GPU mostly idle.

/// The router's scores x . w_gate into `scores` (f32 [T, E], the op's
/// planned buffer): the tensor-core GEMM (one group) for bf16/f16, else a
/// thread per element. With `route` (moek.route's op), where the sm_90a
/// kernel takes the GEMM and a warp's tile spans every expert, its
/// epilogue routes the tokens instead (emitRouteFromAccumulators) and the
/// scores never go to memory; returns whether it did.
bool emitScores(LoopBuilder &lb, Value x, Value wGate, Value scores,
                const GpuTarget &target, RouteOp route = nullptr) {
  ImplicitLocOpBuilder &b = lb.builder();
  int64_t hidden = staticDim(wGate, 0), experts = staticDim(wGate, 1);
  Value tokens = lb.dim(x, 0);

  TensorCoreGemm gemm;
  gemm.a = x;
  gemm.c = scores;
  gemm.tile = target.tile();
  // The scores are narrow (N = E): the layer's 128 x 256 tile would leave
  // half of each tile and most SMs idle (T / 128 CTAs; 60 us for
  // qwen3_30b_a3b's 8.6 GFLOP on the H200). 64 x 128 tiles make twice the
  // CTAs and waste no columns for E <= 128. (128 x 128 tiles, half the
  // re-reads of w_gate, measured the same: 0.056-0.059 ms.)
  TensorCoreTile narrow;
  narrow.bm = 64;
  narrow.bn = 128;
  narrow.bk = 64;
  narrow.stages = 3;
  narrow.warpsM = 2;
  narrow.warpsN = 2;
  if (experts <= narrow.bn && narrow.validate(target.maxSharedBytes()).empty())
    gemm.tile = narrow;
  auto gateType = cast<MemRefType>(wGate.getType());
  if (gateType.getLayout().isIdentity())
    gemm.b = memref::ExpandShapeOp::create(
        b, ArrayRef<int64_t>{1, hidden, experts}, wGate,
        ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  gemm.multiprocessors = target.multiprocessors();
  gemm.clusterSize = target.clusterSize(gemm);
  bool warpgroup = gemm.b && target.warpgroupMma() &&
                   canLowerToWarpgroupMma(gemm, b.getContext());
  // The sm_90a kernel's tile of a plain GEMM no wider than 128 is 128 x
  // 128: a consumer warp holds 16 rows of all 128 columns.
  bool routes = warpgroup && route && canRouteInScoresEpilogue(route, 128);
  if (routes)
    gemm.accumulatorEpilogue = [route](LoopBuilder &lb,
                                       const FragmentTile &tile,
                                       ArrayRef<Value> acc) {
      emitRouteFromAccumulators(route, lb, tile, acc);
    };
  if (warpgroup || (gemm.b && canLowerToTensorCores(gemm, b.getContext()))) {
    if (warpgroup)
      lowerToWarpgroupMma(gemm, lb);
    else
      lowerToTensorCores(gemm, lb);
    auto launch = cast<gpu::LaunchOp>(*std::prev(b.getInsertionPoint()));
    launch.setFunctionAttr(FlatSymbolRefAttr::get(
        b.getContext(), routes ? "scores_top_k" : "scores"));
  } else {
    launchPerElement(lb, tokens, lb.index(experts), [&](Value t, Value e) {
      Value sum = lb.forLoopCarrying(
          lb.index(0), lb.index(hidden), ValueRange{lb.f32(0.0)},
          [&](Value h, ValueRange acc) -> SmallVector<Value> {
            Value prod = arith::MulFOp::create(b, lb.loadF32(x, {t, h}),
                                               lb.loadF32(wGate, {h, e}));
            return {arith::AddFOp::create(b, acc[0], prod)};
          })[0];
      memref::StoreOp::create(b, sum, scores, ValueRange{t, e});
    }, "scores");
  }
  return routes;
}

/// The scratch buffer `what` of a kernel, or an error: allocating it here,
/// after moe-plan-memory, would hide it from the plan and from
/// --memory-budget.
LogicalResult requireScratch(Operation *op, Value scratch, StringRef what) {
  if (scratch)
    return success();
  return op->emitOpError()
         << "needs " << what
         << " on the GPU; moe-lower-to-kernels gives it one with "
            "kernel-scratch-buffers=true, as the CUDA pipeline does";
}

constexpr StringLiteral kScoresScratch =
    "a scores buffer (its f32 [T, E] scores GEMM writes there)";

void lowerRoute(RouteOp op, LoopBuilder &lb, const GpuTarget &target) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value tokens = lb.dim(op.getX(), 0);
  Value scores = op.getScores();
  if (emitScores(lb, op.getX(), op.getWGate(), scores, target, op))
    return;
  if (canRouteByWarp(op))
    return lowerRouteByWarp(op, lb, scores);
  launchPerItem(
      lb, tokens,
      [&](Value t) {
        // Private per-thread scratch.
        RouteScratch s = makeRouteScratch(b, op, ScratchPlace::Stack);
        emitRouteToken(lb, op, s, t, scores);
      },
      /*part=*/{}, kThreadsPerTokenBlock);
}

/// The launch's dynamic shared memory, as bytes.
Value dynamicSharedBytes(ImplicitLocOpBuilder &b) {
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  return gpu::DynamicSharedMemoryOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                         MemRefLayoutAttrInterface(), workgroup));
}

/// A block-shared i32 [rows, cols] view at `byteOffset` of the launch's
/// dynamic shared memory.
Value sharedI32(ImplicitLocOpBuilder &b, Value shared, int64_t byteOffset,
                int64_t rows, int64_t cols) {
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  return memref::ViewOp::create(
      b,
      MemRefType::get({rows, cols}, b.getI32Type(), MemRefLayoutAttrInterface(),
                      workgroup),
      shared, arith::ConstantIndexOp::create(b, byteOffset), ValueRange{});
}

/// Threads of a block of the block-wide rank passes (a thread per
/// assignment of a slice), when the slice's per-warp counts of every expert
/// fit in shared memory; else none.
std::optional<int64_t> blockRankThreads(int64_t topK, int64_t experts) {
  constexpr int64_t kMaxThreads = 1024, kMaxSharedBytes = 48 * 1024;
  int64_t threads = kTokensPerSlice * topK;
  if (threads % 32 != 0 || threads > kMaxThreads ||
      threads / 32 * experts * 4 > kMaxSharedBytes)
    return std::nullopt;
  return threads;
}

/// One pass of the block-wide rank computation: a block per slice, a thread
/// per assignment (t, j) in order of token, then slot, so that a warp's
/// assignments all come before the next warp's. Each warp groups its lanes
/// by expert (match.any.sync): a lane's rank in the warp is the number of
/// its group's lanes below it, and the group's last lane writes the group's
/// size to the warp's count of that expert in shared memory. The counts are
/// then turned, per expert, into the number of the slice's assignments in
/// earlier warps. `slicePass` gets the expert's slice total (the count
/// pass); `assignmentPass` gets each thread's assignment with its expert,
/// whether that is one of [0, E), and its rank in the slice (the rank
/// pass). Replaces a thread per (slice, expert) walking the whole slice: E
/// times the loads of the indices.
void emitBlockRankPass(
    LoopBuilder &lb, Value indices, int64_t experts, int64_t threads,
    Value slices, StringRef part,
    function_ref<void(Value slice, Value e, Value total)> slicePass,
    function_ref<void(Value slice, Value t, Value j, Value e, Value mine,
                      Value rank)>
        assignmentPass,
    int64_t prologueBytes,
    function_ref<void(Value slice, Value tid, Value shared, int64_t offset)>
        prologue) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  int64_t topK = staticDim(indices, 1), warps = threads / 32;
  Value tokens = lb.dim(indices, 0);
  // At least one block (no tokens: no slice; a launch of none is an error).
  Value blocks = arith::MaxUIOp::create(b, slices, ix.c(1));
  auto launch = gpu::LaunchOp::create(
      b, blocks, ix.c(1), ix.c(1), ix.c(threads), ix.c(1), ix.c(1),
      lb.i32(warps * experts * 4 + prologueBytes));
  launch.setFunctionAttr(FlatSymbolRefAttr::get(b.getContext(), part));
  OpBuilder::InsertionGuard guard(b);
  enterLaunchBody(b, launch);
  Value slice = launch.getBlockIds().x, tid = launch.getThreadIds().x;
  Value shared = dynamicSharedBytes(b);
  Value counts = sharedI32(b, shared, 0, warps, experts);
  auto strided = [&](int64_t end, function_ref<void(Value)> body) {
    auto loop = scf::ForOp::create(b, tid, ix.c(end), ix.c(threads));
    OpBuilder::InsertionGuard inLoop(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    body(loop.getInductionVar());
  };
  if (prologue)
    prologue(slice, tid, shared, warps * experts * 4);
  strided(warps * experts, [&](Value i) {
    memref::StoreOp::create(b, lb.i32(0), counts,
                            ValueRange{ix.div(i, experts), ix.rem(i, experts)});
  });
  gpu::BarrierOp::create(b);
  Value a = ix.add(ix.mul(slice, kTokensPerSlice * topK), tid);
  Value t = ix.div(a, topK), j = ix.rem(a, topK);
  Value valid = ix.ult(t, tokens);
  // Past the last token (or with none): no load, the index -1, counted
  // nowhere.
  auto read = scf::IfOp::create(b, TypeRange{b.getI32Type()}, valid,
                                /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard inIf(b);
    b.setInsertionPointToStart(read.thenBlock());
    scf::YieldOp::create(
        b, ValueRange{memref::LoadOp::create(b, indices, ValueRange{t, j})});
    b.setInsertionPointToStart(read.elseBlock());
    scf::YieldOp::create(b, ValueRange{lb.i32(-1)});
  }
  Value e = read.getResult(0);
  Value mine =
      ix.both(valid, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, e,
                                           lb.i32(experts)));
  // Lanes of no expert share the key E and are never counted.
  Value key = arith::SelectOp::create(b, mine, e, lb.i32(experts));
  Value group = NVVM::MatchSyncOp::create(b, b.getI32Type(), lb.i32(-1), key,
                                          NVVM::MatchSyncKind::any);
  auto bits = [&](Value mask) {
    return arith::IndexCastOp::create(b, b.getIndexType(),
                                      math::CtPopOp::create(b, mask));
  };
  Value below = bits(arith::AndIOp::create(
      b, group, NVVM::LaneMaskLtOp::create(b, b.getI32Type())));
  Value above = arith::AndIOp::create(
      b, group, NVVM::LaneMaskGtOp::create(b, b.getI32Type()));
  Value warp = ix.div(tid, 32);
  Value expert = asIndex(b, arith::SelectOp::create(b, mine, e, lb.i32(0)));
  lb.ifThen(ix.both(mine, arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                above, lb.i32(0))),
            [&] {
              memref::StoreOp::create(
                  b, arith::IndexCastOp::create(b, b.getI32Type(), bits(group)),
                  counts, ValueRange{warp, expert});
            });
  gpu::BarrierOp::create(b);
  // Per expert, over the warps in order: the count before each warp.
  strided(experts, [&](Value x) {
    Value total = lb.forLoopCarrying(
        ix.c(0), ix.c(warps), ValueRange{lb.i32(0)},
        [&](Value w, ValueRange c) -> SmallVector<Value> {
          Value count = memref::LoadOp::create(b, counts, ValueRange{w, x});
          memref::StoreOp::create(b, c[0], counts, ValueRange{w, x});
          return {arith::AddIOp::create(b, c[0], count)};
        })[0];
    if (slicePass)
      slicePass(slice, x, total);
  });
  if (!assignmentPass)
    return;
  gpu::BarrierOp::create(b);
  lb.ifThen(valid, [&] {
    Value before = memref::LoadOp::create(b, counts, ValueRange{warp, expert});
    Value rank = arith::AddIOp::create(
        b, before, arith::IndexCastOp::create(b, b.getI32Type(), below));
    assignmentPass(slice, t, j, expert, mine, rank);
  });
}

/// offsets[0] = 0, offsets[e+1] = offsets[e] + counts[e].
void emitExclusiveScanKernel(LoopBuilder &lb, Value counts, Value offsets) {
  ImplicitLocOpBuilder &b = lb.builder();
  int64_t experts = cast<MemRefType>(counts.getType()).getDimSize(0);
  // E is small: one thread. Up to kUnrolledExperts (static), the running
  // sum in a register and the counts loaded eight at a time (their loads in
  // flight together, not each behind the last store); else a loop.
  constexpr int64_t kLoads = 8, kUnrolledExperts = 1024;
  if (ShapedType::isDynamic(experts) || experts > kUnrolledExperts) {
    launchPerItem(lb, lb.index(1),
                  [&](Value) { emitExclusiveScan(lb, counts, offsets); });
    return;
  }
  launchPerItem(lb, lb.index(1), [&](Value) {
    Value running = lb.i32(0);
    memref::StoreOp::create(b, running, offsets, ValueRange{lb.index(0)});
    for (int64_t first = 0; first < experts; first += kLoads) {
      int64_t last = std::min(experts, first + kLoads);
      SmallVector<Value> loaded;
      for (int64_t e = first; e < last; ++e)
        loaded.push_back(
            memref::LoadOp::create(b, counts, ValueRange{lb.index(e)}));
      for (int64_t e = first; e < last; ++e) {
        running = arith::AddIOp::create(b, running, loaded[e - first]);
        memref::StoreOp::create(b, running, offsets,
                                ValueRange{lb.index(e + 1)});
      }
    }
  });
}

/// rows[t, j] for every assignment, a thread each.
void emitAssignmentRowsKernel(LoopBuilder &lb, const RankedAssignments &plan,
                              Value rows) {
  launchPerElement(
      lb, lb.dim(plan.indices, 0), lb.dim(plan.indices, 1),
      [&](Value t, Value j) { emitAssignmentRow(lb, plan, rows, t, j); });
}

/// Assignment (t, j)'s part of the owners: its flat index r = t*k + j at
/// its grouped row `row` when `kept`, and -1 at row r itself when r is past
/// the last kept row (offsets[E]). The kept rows fill [0, offsets[E]), so
/// the two kinds of writes never meet and, over every assignment, cover
/// all T*k rows: no clear of its own before the scatter.
void placeOwner(LoopBuilder &lb, const RankedAssignments &plan, Value owners,
                Value t, Value j, Value kept, Value row,
                Value keptRows = nullptr) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  int64_t topK = staticDim(plan.indices, 1);
  int64_t experts = staticDim(plan.offsets, 0) - 1;
  if (!keptRows)
    keptRows =
        memref::LoadOp::create(b, plan.offsets, ValueRange{ix.c(experts)});
  Value flat =
      arith::IndexCastOp::create(b, b.getI32Type(), ix.add(ix.mul(t, topK), j));
  lb.ifThen(kept, [&] {
    memref::StoreOp::create(b, flat, owners, ValueRange{asIndex(b, row)});
  });
  lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::sge, flat, keptRows),
            [&] {
              memref::StoreOp::create(b, lb.i32(-1), owners,
                                      ValueRange{asIndex(b, flat)});
            });
}

/// owners for every row, a thread an assignment (placeOwner).
void emitRowOwnersKernel(LoopBuilder &lb, const RankedAssignments &plan,
                         Value owners) {
  launchPerElement(lb, lb.dim(plan.indices, 0), lb.dim(plan.indices, 1),
                   [&](Value t, Value j) {
                     auto [row, kept] = placeAssignment(lb, plan, t, j);
                     placeOwner(lb, plan, owners, t, j, kept, row);
                   });
}

/// kept[0, e] becomes the sum of kept[0, 0..e], by threads 0..E-1 of the
/// block (log2 E steps, each a read, a barrier, an add, a barrier); every
/// thread of the block must reach it.
void emitInclusiveScanInShared(LoopBuilder &lb, Value kept, int64_t experts,
                               Value tid) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value e = tid;
  Value scanning = ix.ult(tid, experts);
  for (int64_t step = 1; step < experts; step *= 2) {
    Value from = ix.both(scanning, ix.uge(e, ix.c(step)));
    auto read = scf::IfOp::create(b, TypeRange{b.getI32Type()}, from,
                                  /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard inIf(b);
      b.setInsertionPointToStart(read.thenBlock());
      scf::YieldOp::create(
          b, ValueRange{memref::LoadOp::create(
                 b, kept, ValueRange{ix.c(0), ix.sub(e, ix.c(step))})});
      b.setInsertionPointToStart(read.elseBlock());
      scf::YieldOp::create(b, ValueRange{lb.i32(0)});
    }
    gpu::BarrierOp::create(b);
    lb.ifThen(from, [&] {
      Value mine = memref::LoadOp::create(b, kept, ValueRange{ix.c(0), e});
      memref::StoreOp::create(b,
                              arith::AddIOp::create(b, mine, read.getResult(0)),
                              kept, ValueRange{ix.c(0), e});
    });
    gpu::BarrierOp::create(b);
  }
}

/// The run of slices [first, last) that thread `part` of `parts` threads
/// an expert sums (ceil(S / parts) slices each; the last runs may be short
/// or empty).
std::pair<Value, Value> sliceRun(LoopBuilder &lb, Value part, int64_t parts,
                                 Value slices) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value perRun = arith::CeilDivUIOp::create(b, slices, ix.c(parts));
  Value first =
      arith::MinUIOp::create(b, arith::MulIOp::create(b, part, perRun), slices);
  Value last = arith::MinUIOp::create(b, ix.add(first, perRun), slices);
  return {first, last};
}

/// offsets[e + 1] = scan[0, e] (the inclusive scan of the kept counts in
/// shared memory) and offsets[0] = 0, by thread e where `writes`.
void storeOffsets(LoopBuilder &lb, Value scan, Value offsets, Value e,
                  Value writes) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  lb.ifThen(writes, [&] {
    memref::StoreOp::create(
        b, memref::LoadOp::create(b, scan, ValueRange{ix.c(0), e}), offsets,
        ValueRange{ix.add(e, 1)});
    lb.ifThen(
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, e, ix.c(0)), [&] {
          memref::StoreOp::create(b, lb.i32(0), offsets, ValueRange{ix.c(0)});
        });
  });
}

/// Most experts whose per-slice counts one block scans (a thread or more
/// an expert).
constexpr int64_t kMaxBlockScanExperts = 1024;

/// The ranking's scan over slices in one block: G threads an expert
/// (G = min(32, 1024 / E)) each sum a run of slices of `partials`' column,
/// take the sums of the runs before theirs from shared memory and rewrite
/// their run as the count before each slice; the last run's thread has the
/// expert's total, kept below `capacity`, into `counts`. With `offsets`, a
/// scan across experts in shared memory (log2 E steps) then writes them. A
/// thread an expert walking all slices alone took 10-12 us on
/// qwen3_30b_a3b's 256 slices, and the offsets a launch of their own.
void emitBlockScan(LoopBuilder &lb, Value partials, Value slices,
                              Value capacity, Value counts, Value offsets,
                              int64_t experts) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  int64_t runs = std::min<int64_t>(32, kMaxBlockScanExperts / experts);
  int64_t threads = runs * experts;
  auto launch =
      gpu::LaunchOp::create(b, ix.c(1), ix.c(1), ix.c(1), ix.c(threads),
                            ix.c(1), ix.c(1), lb.i32((runs + 1) * experts * 4));
  launch.setFunctionAttr(FlatSymbolRefAttr::get(b.getContext(), "scan"));
  OpBuilder::InsertionGuard guard(b);
  enterLaunchBody(b, launch);
  Value tid = launch.getThreadIds().x;
  Value shared = dynamicSharedBytes(b);
  Value runSums = sharedI32(b, shared, 0, runs, experts);
  Value kept = sharedI32(b, shared, runs * experts * 4, 1, experts);
  Value e = ix.rem(tid, experts), run = ix.div(tid, experts);
  auto [first, last] = sliceRun(lb, run, runs, slices);
  auto column = [&](Value s) -> SmallVector<Value> { return {s, e}; };
  Value sum = lb.forLoopCarrying(
      first, last, ValueRange{lb.i32(0)},
      [&](Value s, ValueRange c) -> SmallVector<Value> {
        return {arith::AddIOp::create(
            b, c[0], memref::LoadOp::create(b, partials, column(s)))};
      })[0];
  memref::StoreOp::create(b, sum, runSums, ValueRange{run, e});
  gpu::BarrierOp::create(b);
  Value before = lb.forLoopCarrying(
      ix.c(0), run, ValueRange{lb.i32(0)},
      [&](Value r, ValueRange c) -> SmallVector<Value> {
        return {arith::AddIOp::create(
            b, c[0], memref::LoadOp::create(b, runSums, ValueRange{r, e}))};
      })[0];
  Value total = lb.forLoopCarrying(
      first, last, ValueRange{before},
      [&](Value s, ValueRange c) -> SmallVector<Value> {
        Value count = memref::LoadOp::create(b, partials, column(s));
        memref::StoreOp::create(b, c[0], partials, column(s));
        return {arith::AddIOp::create(b, c[0], count)};
      })[0];
  lb.ifThen(
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, run, ix.c(runs - 1)),
      [&] {
        Value keptCount = arith::MinSIOp::create(b, total, capacity);
        memref::StoreOp::create(b, keptCount, counts, ValueRange{e});
        memref::StoreOp::create(b, keptCount, kept, ValueRange{ix.c(0), e});
      });
  if (!offsets)
    return;
  gpu::BarrierOp::create(b);
  emitInclusiveScanInShared(lb, kept, experts, tid);
  storeOffsets(lb, kept, offsets, e, ix.ult(tid, experts));
}

/// What a rank block works out for itself from the per-slice counts, in
/// shared memory (i32 [1, E] each): the assignments to each expert in the
/// slices before its own, each expert's kept count and their inclusive scan
/// (an expert's first grouped row is scan - kept; the last is all rows kept).
struct SlicePrefix {
  Value before, kept, scan;
  /// Shared bytes it takes for `experts` over `threads`.
  static int64_t bytes(int64_t experts, int64_t threads) {
    return (2 * (threads / experts) + 3) * experts * 4;
  }
};

/// The rank block's prologue that replaces the scan's launch (E <= threads):
/// P = threads / E threads an expert each sum a run of slices of `partials`
/// (all of the run, and the part before this block's slice) into shared
/// memory; thread e adds the runs, keeps the total below `capacity` and,
/// in block 0, writes `counts`; the kept counts are scanned across experts
/// (emitInclusiveScanInShared) and block 0 writes `offsets`. Every block
/// reads all S x E per-slice counts (128 KiB for qwen3_30b_a3b, L2-resident)
/// instead of one block rewriting them as prefixes in a launch of its own.
SlicePrefix emitSlicePrefix(LoopBuilder &lb, Value partials, Value slices,
                            Value capacity, Value counts, Value offsets,
                            int64_t experts, int64_t threads, Value slice,
                            Value tid, Value shared, int64_t offset) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  int64_t parts = threads / experts;
  Value partBefore = sharedI32(b, shared, offset, parts, experts);
  Value partAll =
      sharedI32(b, shared, offset + parts * experts * 4, parts, experts);
  int64_t tail = offset + 2 * parts * experts * 4;
  SlicePrefix prefix{sharedI32(b, shared, tail, 1, experts),
                     sharedI32(b, shared, tail + experts * 4, 1, experts),
                     sharedI32(b, shared, tail + 2 * experts * 4, 1, experts)};
  Value e = ix.rem(tid, experts), part = ix.div(tid, experts);
  Value first, last; // captured below: not a structured binding
  std::tie(first, last) = sliceRun(lb, part, parts, slices);
  lb.ifThen(ix.ult(tid, parts * experts), [&] {
    SmallVector<Value> sums = lb.forLoopCarrying(
        first, last, ValueRange{lb.i32(0), lb.i32(0)},
        [&](Value s, ValueRange c) -> SmallVector<Value> {
          Value count = memref::LoadOp::create(b, partials, ValueRange{s, e});
          Value earlier = ix.ult(s, slice);
          return {arith::AddIOp::create(b, c[0], count),
                  arith::AddIOp::create(
                      b, c[1],
                      arith::SelectOp::create(b, earlier, count, lb.i32(0)))};
        });
    memref::StoreOp::create(b, sums[0], partAll, ValueRange{part, e});
    memref::StoreOp::create(b, sums[1], partBefore, ValueRange{part, e});
  });
  gpu::BarrierOp::create(b);
  Value firstBlock =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, slice, ix.c(0));
  lb.ifThen(ix.ult(tid, experts), [&] {
    Value all = lb.i32(0), before = lb.i32(0);
    for (int64_t p = 0; p < parts; ++p) {
      all = arith::AddIOp::create(
          b, all, memref::LoadOp::create(b, partAll, ValueRange{ix.c(p), e}));
      before = arith::AddIOp::create(
          b, before,
          memref::LoadOp::create(b, partBefore, ValueRange{ix.c(p), e}));
    }
    Value kept = arith::MinSIOp::create(b, all, capacity);
    memref::StoreOp::create(b, before, prefix.before, ValueRange{ix.c(0), e});
    memref::StoreOp::create(b, kept, prefix.kept, ValueRange{ix.c(0), e});
    memref::StoreOp::create(b, kept, prefix.scan, ValueRange{ix.c(0), e});
    lb.ifThen(firstBlock,
              [&] { memref::StoreOp::create(b, kept, counts, ValueRange{e}); });
  });
  gpu::BarrierOp::create(b);
  emitInclusiveScanInShared(lb, prefix.scan, experts, tid);
  if (offsets)
    storeOffsets(lb, prefix.scan, offsets, e,
                 ix.both(firstBlock, ix.ult(tid, experts)));
  gpu::BarrierOp::create(b);
  return prefix;
}

void lowerRankAssignments(RankAssignmentsOp op, LoopBuilder &lb) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value indices = op.getIndices(), ranks = op.getRanks(),
        counts = op.getCounts();
  int64_t topK = staticDim(indices, 1), experts = staticDim(counts, 0);
  Value tokens = lb.dim(indices, 0);
  Value capacity = arith::IndexCastOp::create(
      b, b.getI32Type(),
      emitCapacity(lb, op.getCapacityFactor().convertToDouble(), tokens, topK,
                   experts));
  // An assignment's rank is the number of earlier assignments (in order of
  // token, then slot) to its expert; it is kept while that is below C, so
  // the kept count is min(total, C). Computed in three parallel passes over
  // slices of kTokensPerSlice tokens: count per (slice, expert), scan the
  // counts per expert over slices, then rank within each slice.
  Value zero = lb.index(0);
  Value sliceTokens = lb.index(kTokensPerSlice);
  Value slices = arith::CeilDivUIOp::create(b, tokens, sliceTokens);
  Value numExperts = lb.index(experts);
  // The op's planned [slices, E] scratch.
  Value partial = op.getPartials();
  auto sliceBounds = [&](Value slice) {
    Value first = arith::MulIOp::create(b, slice, sliceTokens);
    Value last = arith::MinUIOp::create(
        b, arith::AddIOp::create(b, first, sliceTokens), tokens);
    return std::make_pair(first, last);
  };
  // Walks slice s in order, carrying a count of assignments to expert e and
  // calling onMine(t, j, countBefore) for each of them; with `noExpert`,
  // expert 0's walk also calls noExpert(t, j) for each index outside
  // [0, E) (the rows a bound-sized received buffer holds past its count).
  auto walkSlice = [&](Value s, Value e, Value start,
                       function_ref<void(Value, Value, Value)> onMine,
                       function_ref<void(Value, Value)> noExpert = nullptr) {
    Value e32 = arith::IndexCastOp::create(b, b.getI32Type(), e);
    auto [first, last] = sliceBounds(s);
    // One assignment (t, j) with the count before it; the count after.
    auto visit = [&](Value t, Value j, Value index, Value before) -> Value {
      Value mine =
          arith::CmpIOp::create(b, arith::CmpIPredicate::eq, index, e32);
      if (onMine)
        lb.ifThen(mine, [&] { onMine(t, j, before); });
      if (noExpert) {
        Value outside = arith::CmpIOp::create(b, arith::CmpIPredicate::uge,
                                              index, lb.i32(experts));
        Value firstExpert =
            arith::CmpIOp::create(b, arith::CmpIPredicate::eq, e, zero);
        lb.ifThen(arith::AndIOp::create(b, outside, firstExpert),
                  [&] { noExpert(t, j); });
      }
      Value next = arith::AddIOp::create(b, before, lb.i32(1));
      return arith::SelectOp::create(b, mine, next, before);
    };
    return lb.forLoopCarrying(
        first, last, ValueRange{start},
        [&](Value t, ValueRange c) -> SmallVector<Value> {
          // A token's k indices loaded together, then visited: a loop of
          // one dependent load at a time left these kernels waiting on
          // memory (66 us of qwen3_30b_a3b's 2.9 ms layer on the H200).
          if (topK <= kUnrolledSlots) {
            SmallVector<Value> loaded;
            for (int64_t j = 0; j < topK; ++j)
              loaded.push_back(memref::LoadOp::create(
                  b, indices, ValueRange{t, lb.index(j)}));
            Value count = c[0];
            for (int64_t j = 0; j < topK; ++j)
              count = visit(t, lb.index(j), loaded[j], count);
            return {count};
          }
          return lb.forLoopCarrying(
              zero, lb.index(topK), c,
              [&](Value j, ValueRange c2) -> SmallVector<Value> {
                Value index =
                    memref::LoadOp::create(b, indices, ValueRange{t, j});
                return {visit(t, j, index, c2[0])};
              });
        })[0];
  };
  std::optional<int64_t> blockThreads = blockRankThreads(topK, experts);
  if (blockThreads)
    emitBlockRankPass(
        lb, indices, experts, *blockThreads, slices, "count",
        [&](Value s, Value e, Value total) {
          memref::StoreOp::create(b, total, partial, ValueRange{s, e});
        },
        nullptr, 0, nullptr);
  else
    launchPerElement(
        lb, slices, numExperts,
        [&](Value s, Value e) {
          Value count = walkSlice(s, e, lb.i32(0), nullptr);
          memref::StoreOp::create(b, count, partial, ValueRange{s, e});
        },
        "count");
  // The rest of the plan, when the op makes it (rows and owners need the
  // offsets, which the scan writes).
  RankedAssignments plan{indices, ranks, op.getOffsets()};
  Value rows = op.getRows(), owners = op.getOwners();
  // With the block passes and no more experts than a block has threads,
  // each rank block works out its slice's prefix and the offsets itself
  // (emitSlicePrefix): no scan launch.
  constexpr int64_t kMaxRankSharedBytes = 48 * 1024;
  bool prefixInRank = blockThreads && experts <= *blockThreads &&
                      *blockThreads / 32 * experts * 4 +
                              SlicePrefix::bytes(experts, *blockThreads) <=
                          kMaxRankSharedBytes;
  if (!prefixInRank && experts <= kMaxBlockScanExperts) {
    emitBlockScan(lb, partial, slices, capacity, counts, plan.offsets, experts);
  } else if (!prefixInRank) {
    launchPerItem(
        lb, numExperts,
        [&](Value e) {
          Value total = lb.forLoopCarrying(
              zero, slices, ValueRange{lb.i32(0)},
              [&](Value s, ValueRange c) -> SmallVector<Value> {
                Value count =
                    memref::LoadOp::create(b, partial, ValueRange{s, e});
                memref::StoreOp::create(b, c[0], partial, ValueRange{s, e});
                return {arith::AddIOp::create(b, c[0], count)};
              })[0];
          memref::StoreOp::create(b, arith::MinSIOp::create(b, total, capacity),
                                  counts, ValueRange{e});
        },
        "scan");
    if (plan.offsets)
      emitExclusiveScanKernel(lb, counts, plan.offsets);
  }
  if (blockThreads) {
    // The rank: the assignments to e in earlier slices, earlier warps and
    // lower lanes; kept below C; -1 for an index outside [0, E). With the
    // plan, the same threads place their assignment (rows, owners) and
    // clear the owners past the last kept row.
    SlicePrefix prefix;
    auto emitPrefix = [&](Value slice, Value tid, Value shared,
                          int64_t offset) {
      prefix =
          emitSlicePrefix(lb, partial, slices, capacity, counts, plan.offsets,
                          experts, *blockThreads, slice, tid, shared, offset);
    };
    function_ref<void(Value, Value, Value, int64_t)> prologue = nullptr;
    if (prefixInRank)
      prologue = emitPrefix;
    auto shared = [&](Value view, Value e) {
      return memref::LoadOp::create(b, view, ValueRange{lb.index(0), e});
    };
    emitBlockRankPass(
        lb, indices, experts, *blockThreads, slices, "rank", nullptr,
        [&](Value s, Value t, Value j, Value e, Value mine, Value rank) {
          Value earlier =
              prefixInRank
                  ? shared(prefix.before, e)
                  : memref::LoadOp::create(b, partial, ValueRange{s, e});
          Value before = arith::AddIOp::create(b, earlier, rank);
          Value kept = arith::AndIOp::create(
              b, mine,
              arith::CmpIOp::create(b, arith::CmpIPredicate::slt, before,
                                    capacity));
          memref::StoreOp::create(
              b, arith::SelectOp::create(b, kept, before, lb.i32(-1)), ranks,
              ValueRange{t, j});
          if (!rows && !owners)
            return;
          Value start, keptRows;
          if (prefixInRank) {
            start = arith::SubIOp::create(b, shared(prefix.scan, e),
                                          shared(prefix.kept, e));
            keptRows = shared(prefix.scan, lb.index(experts - 1));
          } else {
            start = memref::LoadOp::create(b, plan.offsets, ValueRange{e});
          }
          Value row = arith::AddIOp::create(b, start, before);
          if (rows)
            memref::StoreOp::create(
                b, arith::SelectOp::create(b, kept, row, lb.i32(-1)), rows,
                ValueRange{t, j});
          if (owners)
            placeOwner(lb, plan, owners, t, j, kept, row, keptRows);
        },
        prefixInRank ? SlicePrefix::bytes(experts, *blockThreads) : 0,
        prologue);
    return;
  }
  launchPerElement(lb, slices, numExperts, [&](Value s, Value e) {
    Value start = memref::LoadOp::create(b, partial, ValueRange{s, e});
    walkSlice(
        s, e, start,
        [&](Value t, Value j, Value before) {
          Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::slt,
                                             before, capacity);
          memref::StoreOp::create(
              b, arith::SelectOp::create(b, kept, before, lb.i32(-1)), ranks,
              ValueRange{t, j});
        },
        [&](Value t, Value j) {
          memref::StoreOp::create(b, lb.i32(-1), ranks, ValueRange{t, j});
        });
  }, "rank");
  if (rows)
    emitAssignmentRowsKernel(lb, plan, rows);
  if (owners)
    emitRowOwnersKernel(lb, plan, owners);
}

/// Elements a thread of gather_rows moves at once: 16 bytes where x's and
/// out's rows are dense and the row splits into them; else 1.
int64_t gatherWidth(GatherRowsOp op) {
  auto x = cast<MemRefType>(op.getX().getType());
  auto out = cast<MemRefType>(op.getOut().getType());
  int64_t width = 128 / x.getElementType().getIntOrFloatBitWidth();
  int64_t hidden = x.getDimSize(1);
  if (!x.getLayout().isIdentity() || !out.getLayout().isIdentity() ||
      ShapedType::isDynamic(hidden) || hidden % width != 0 ||
      ShapedType::isDynamic(
          cast<MemRefType>(op.getRows().getType()).getDimSize(1)))
    return 1;
  return width;
}

/// gather_rows with a thread per 16 bytes of a token's row: the zeros as
/// vector stores, then x's 16 bytes loaded once and stored into each of
/// the token's k rows. A thread per element (a 2-byte load, the row index
/// loaded again for each) took 0.49 ms for mixtral's 128 MiB of rows on
/// the H200, about 0.8 TB/s.
void lowerGatherRowsVectorized(GatherRowsOp op, LoopBuilder &lb,
                               int64_t width) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value x = op.getX(), rows = op.getRows(), out = op.getOut();
  Type element = cast<MemRefType>(x.getType()).getElementType();
  auto vectorType = VectorType::get({width}, element);
  llvm::Align align(16);
  Value vectorsPerRow = lb.index(staticDim(x, 1) / width);
  Value zeros = arith::ConstantOp::create(
      b, vectorType,
      DenseElementsAttr::get(vectorType, b.getZeroAttr(element)));
  launchPerElement(lb, lb.dim(out, 0), vectorsPerRow, [&](Value r, Value v) {
    vector::StoreOp::create(
        b, zeros, out,
        ValueRange{r, arith::MulIOp::create(b, v, lb.index(width))},
        /*nontemporal=*/false, align);
  });
  int64_t topK = staticDim(rows, 1);
  launchPerElement(lb, lb.dim(rows, 0), vectorsPerRow, [&](Value t, Value v) {
    Value h = arith::MulIOp::create(b, v, lb.index(width));
    Value values = vector::LoadOp::create(b, vectorType, x, ValueRange{t, h},
                                          /*nontemporal=*/false, align);
    for (int64_t j = 0; j < topK; ++j) {
      Value row = memref::LoadOp::create(b, rows, ValueRange{t, lb.index(j)});
      lb.ifThen(
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row, lb.i32(0)),
          [&] {
            vector::StoreOp::create(b, values, out,
                                    ValueRange{asIndex(b, row), h},
                                    /*nontemporal=*/false, align);
          });
    }
  });
}

void lowerGatherRows(GatherRowsOp op, LoopBuilder &lb) {
  if (int64_t width = gatherWidth(op);
      width > 1 && staticDim(op.getRows(), 1) <= kUnrolledSlots)
    return lowerGatherRowsVectorized(op, lb, width);
  ImplicitLocOpBuilder &b = lb.builder();
  Value x = op.getX(), rows = op.getRows(), out = op.getOut();
  Value hidden = lb.dim(x, 1);
  Value zeroValue = lb.zeroOf(cast<MemRefType>(out.getType()).getElementType());
  launchPerElement(lb, lb.dim(out, 0), hidden, [&](Value r, Value h) {
    memref::StoreOp::create(b, zeroValue, out, ValueRange{r, h});
  });
  Value topK = lb.dim(rows, 1);
  launchPerElement(
      lb, arith::MulIOp::create(b, lb.dim(rows, 0), topK), hidden,
      [&](Value a, Value h) {
        Value t = arith::DivUIOp::create(b, a, topK);
        Value j = arith::RemUIOp::create(b, a, topK);
        Value row = memref::LoadOp::create(b, rows, ValueRange{t, j});
        lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row,
                                        lb.i32(0)),
                  [&] {
                    memref::StoreOp::create(
                        b, memref::LoadOp::create(b, x, ValueRange{t, h}), out,
                        ValueRange{asIndex(b, row), h});
                  });
      });
}

/// Whether `op` is a loop over GPU blocks (moek-tile-grouped-matmuls'
/// tile loops), which lowerTileLoop lowers as a whole.
bool isBlockLoop(Operation *op) {
  auto forall = dyn_cast<scf::ForallOp>(op);
  if (!forall)
    return false;
  std::optional<ArrayAttr> mapping = forall.getMapping();
  return mapping && llvm::any_of(*mapping, [](Attribute attr) {
           return isa<gpu::GPUBlockMappingAttr>(attr);
         });
}

/// moek.row_tile as the tensor-core kernels' shared device-side schedule.
RowTile lowerRowTile(RowTileOp op, LoopBuilder &lb) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value offsets = op.getOffsets();
  Value zero = lb.index(0);
  Value first = op.getFirstExpert() ? op.getFirstExpert() : zero;
  Value last = op.getLastExpert();
  if (!last) {
    int64_t bounds = cast<MemRefType>(offsets.getType()).getDimSize(0);
    last = ShapedType::isDynamic(bounds)
               ? arith::SubIOp::create(b, lb.dim(offsets, 0), lb.index(1))
               : lb.index(bounds - 1);
  }
  return scheduleRowTile(
      lb, first, last, op.getTile(), op.getRowsPerTile(),
      [&](Value e) {
        return asIndex(b, memref::LoadOp::create(b, offsets, ValueRange{e}));
      },
      zero);
}

/// A tile loop of moek-tile-grouped-matmuls (an scf.forall over GPU blocks
/// around one moek.grouped_matmul_tile): one launch of a CTA per tile, its
/// body the loop's, with moek.row_tile lowered to the device-side schedule
/// and the tile to the mma.sync kernel's pipeline and epilogue.
LogicalResult lowerTileLoop(scf::ForallOp forall, LoopBuilder &lb,
                            const GpuTarget &target) {
  ImplicitLocOpBuilder &b = lb.builder();
  SmallVector<GroupedMatmulTileOp> tiles;
  forall.walk([&](GroupedMatmulTileOp tile) { tiles.push_back(tile); });
  // The sm_90a kernel's persistent loop: its tile counts its CTA's k tiles.
  if (tiles.size() == 1 && tiles.front().getKTilesBefore()) {
    if (!target.warpgroupMma())
      return tiles.front().emitOpError()
             << "is a tile of the sm_90a (wgmma) kernel's persistent loop; "
                "this GPU has no such kernel (chip=sm_90a makes it)";
    TensorCoreGemm gemm = TensorCoreGemm::of(tiles.front());
    gemm.vectorAtomics = target.vectorAtomics();
    gemm.multiprocessors = target.multiprocessors();
    return lowerWarpgroupTileLoop(forall, tiles.front(), gemm, lb);
  }
  if (tiles.size() != 1 || forall.getRank() != 2 || !forall.isNormalized())
    return forall.emitOpError()
           << "is a loop over GPU blocks that moek-lower-to-gpu cannot "
              "lower: it takes two dimensions from 0 in steps of 1 around "
              "one moek.grouped_matmul_tile (moek-tile-grouped-matmuls' "
              "tile loops), this has "
           << forall.getRank() << " and " << tiles.size();
  TensorCoreGemm gemm = TensorCoreGemm::of(tiles.front());
  gemm.vectorAtomics = target.vectorAtomics();
  std::string why;
  if (!canLowerToTensorCores(gemm, b.getContext(), &why))
    return tiles.front().emitOpError()
           << "cannot run on the tensor-core kernel: " << why;
  if (std::string wrong = gemm.tile.validate(target.maxSharedBytes());
      !wrong.empty())
    return tiles.front().emitOpError() << "has a tile this GPU cannot run: "
                                       << wrong;
  TensorCoreLaunchShape shape = tensorCoreLaunchShape(gemm);
  SmallVector<Value> bounds = getValueOrCreateConstantIndexOp(
      b, b.getLoc(), forall.getMixedUpperBound());
  Value one = lb.index(1);
  auto launch = gpu::LaunchOp::create(b, bounds[0], bounds[1], one,
                                      lb.index(shape.threads), one, one,
                                      lb.i32(shape.sharedBytes));
  OpBuilder::InsertionGuard guard(b);
  enterLaunchBody(b, launch);
  IRMapping blocks;
  blocks.map(forall.getInductionVar(0), launch.getBlockIds().x);
  blocks.map(forall.getInductionVar(1), launch.getBlockIds().y);
  for (Operation &op : forall.getBody()->without_terminator())
    b.clone(op, blocks);
  SmallVector<Operation *> stages;
  launch.walk([&](Operation *op) {
    if (isa<RowTileOp, GroupedMatmulTileOp>(op))
      stages.push_back(op);
  });
  for (Operation *op : stages) {
    b.setInsertionPoint(op);
    if (auto schedule = dyn_cast<RowTileOp>(op)) {
      RowTile hit = lowerRowTile(schedule, lb);
      op->replaceAllUsesWith(ValueRange{hit.expert, hit.rowBegin, hit.rowEnd});
    } else {
      auto tile = cast<GroupedMatmulTileOp>(op);
      emitTensorCoreTile(gemm, lb, launch.getThreadIds().x, tile.getExpert(),
                         tile.getRowBegin(), tile.getGroupEnd(),
                         tile.getColumnTile());
    }
    op->erase();
  }
  return success();
}

LogicalResult lowerGroupedMatmul(GroupedMatmulOp op, LoopBuilder &lb,
                                 const GpuTarget &target) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value a = op.getA(), w = op.getB(), offsets = op.getOffsets(), c = op.getC();
  Value owners = op.getOwners();
  bool transposeB = op.getTransposeB();
  int64_t experts = staticDim(w, 0);
  int64_t depth = staticDim(w, transposeB ? 2 : 1);
  int64_t width = staticDim(w, transposeB ? 1 : 2);
  Epilogue epilogue = op.getEpilogue();
  bool glu = isGlu(epilogue);
  bool scatterStore = epilogue == Epilogue::scatter_store;
  bool scatter = epilogue == Epilogue::scatter_add || scatterStore;
  if (epilogue == Epilogue::scatter_add &&
      !cast<MemRefType>(c.getType()).getElementType().isF32())
    return op.emitOpError()
           << "the GPU scatter-add epilogue accumulates with f32 atomics; "
              "its output must be f32";
  // bf16/f16 operands: the tensor-core kernel (mma.sync); everything it does
  // not cover (f32, K or N not a multiple of 8, ...) keeps the SIMT kernel.
  TensorCoreGemm gemm = TensorCoreGemm::of(op);
  gemm.tile = target.tile();
  gemm.vectorAtomics = target.vectorAtomics();
  gemm.multiprocessors = target.multiprocessors();
  gemm.clusterSize = target.clusterSize(gemm);
  // Not tiled by moek-tile-grouped-matmuls: its tile loop built in place.
  if (target.warpgroupMma() && canLowerToWarpgroupMma(gemm, op.getContext())) {
    scf::ForallOp forall = buildWarpgroupTileLoop(op, gemm, b);
    LogicalResult lowered = lowerTileLoop(forall, lb, target);
    forall.erase();
    return lowered;
  }
  if (canLowerToTensorCores(gemm, op.getContext())) {
    lowerToTensorCores(gemm, lb);
    return success();
  }
  Value topK = lb.index(op.getTopK());
  Value zero = lb.index(0);
  Value first = op.getFirstExpert() ? op.getFirstExpert() : zero;
  Value last = op.getLastExpert() ? op.getLastExpert() : lb.index(experts);
  auto rowOf = [&](Value e) {
    return asIndex(b, memref::LoadOp::create(b, offsets, ValueRange{e}));
  };
  // Local rows: those of c (gather) or of a; outputs per row: N or N/2.
  Value localRows = op.getGather() ? lb.dim(c, 0) : lb.dim(a, 0);
  Value outputs = lb.index(glu ? width / 2 : width);
  Value K = lb.index(depth), half = lb.index(width / 2);

  launchPerElement(lb, localRows, outputs, [&](Value local, Value n) {
    // The offsets live on the device: read them in the kernel.
    Value base = rowOf(first), end = rowOf(last);
    Value r = arith::AddIOp::create(b, base, local);
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, r, end), [&] {
      // The expert whose group holds row r: the last e with offsets[e] <= r.
      Value e = lb.forLoopCarrying(
          first, last, ValueRange{first},
          [&](Value candidate, ValueRange c0) -> SmallVector<Value> {
            Value starts = arith::CmpIOp::create(b, arith::CmpIPredicate::ule,
                                                 rowOf(candidate), r);
            return {arith::SelectOp::create(b, starts, candidate, c0[0])};
          })[0];
      Value owner =
          owners ? asIndex(b, memref::LoadOp::create(b, owners, ValueRange{r}))
                 : Value();
      Value src = op.getGather() ? arith::DivUIOp::create(b, owner, topK) : local;
      auto dot = [&](Value column) {
        return lb.forLoopCarrying(
            zero, K, ValueRange{lb.f32(0.0)},
            [&](Value k, ValueRange acc) -> SmallVector<Value> {
              Value wv = transposeB ? lb.loadF32(w, {e, column, k})
                                    : lb.loadF32(w, {e, k, column});
              Value prod =
                  arith::MulFOp::create(b, lb.loadF32(a, {src, k}), wv);
              return {arith::AddFOp::create(b, acc[0], prod)};
            })[0];
      };
      if (glu) {
        Value gate = dot(n);
        Value upColumn = arith::AddIOp::create(b, n, half);
        Value up = dot(upColumn);
        lb.storeF32(arith::MulFOp::create(
                        b, activate(lb, gate, epilogue == Epilogue::gelu_glu),
                        up),
                    c, {local, n});
        if (Value preActivation = op.getPreActivation()) {
          lb.storeF32(gate, preActivation, {local, n});
          lb.storeF32(up, preActivation, {local, upColumn});
        }
      } else if (scatter) {
        Value token = arith::DivUIOp::create(b, owner, topK);
        Value slot = arith::RemUIOp::create(b, owner, topK);
        // Without weights the weight is 1 (the backward's dh carries it).
        Value term = dot(n);
        if (op.getWeights())
          term = arith::MulFOp::create(
              b, lb.loadF32(op.getWeights(), {token, slot}), term);
        // top_k = 1: the token's only row, stored; else summed atomically.
        if (scatterStore)
          lb.storeF32(term, c, {token, n});
        else
          memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, term, c,
                                      ValueRange{token, n});
      } else {
        lb.storeF32(dot(n), c, {local, n});
      }
    });
  });
  return success();
}

void lowerGlu(GluOp op, LoopBuilder &lb) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value h = op.getH(), out = op.getOut();
  bool gelu = op.getActivation() == mlir::moe::Activation::gelu_glu;
  Value half = lb.dim(out, 1);
  launchPerElement(lb, lb.dim(h, 0), half, [&](Value r, Value f) {
    Value gate = lb.loadF32(h, {r, f});
    Value up = lb.loadF32(h, {r, arith::AddIOp::create(b, f, half)});
    lb.storeF32(arith::MulFOp::create(b, activate(lb, gate, gelu), up), out,
                {r, f});
  });
}

/// Elements a thread of the combine moves per row: 16 bytes of the rows
/// (one vector load), when the rows' width allows it and both buffers are
/// dense rows; else 1.
int64_t combineWidth(CombineRowsOp op) {
  auto out = cast<MemRefType>(op.getExpertOut().getType());
  auto y = cast<MemRefType>(op.getY().getType());
  int64_t bits = out.getElementType().getIntOrFloatBitWidth();
  int64_t width = 128 / bits, hidden = out.getDimSize(1);
  bool dense = out.getLayout().isIdentity() && y.getLayout().isIdentity();
  if (!dense || ShapedType::isDynamic(hidden) || hidden % width != 0 ||
      y.getDimSize(1) != hidden)
    return 1;
  return width;
}

/// The combine with a thread per 16 bytes of a token's output: its k rows'
/// loads (unrolled, so that they are in flight together) are vectors, where
/// a thread per element moved 2 bytes a load and left the kernel at half
/// the memory's rate (0.258 ms for qwen3_30b_a3b's 576 MiB on the H200).
/// The sum is the scalar kernel's: f32, over the slots in order.
void lowerCombineRowsVectorized(CombineRowsOp op, LoopBuilder &lb,
                                int64_t width) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value expertOut = op.getExpertOut(), weights = op.getWeights();
  Value rows = op.getRows(), y = op.getY();
  Type element = cast<MemRefType>(expertOut.getType()).getElementType();
  Type outElement = cast<MemRefType>(y.getType()).getElementType();
  auto loadType = VectorType::get({width}, element);
  auto sumType = VectorType::get({width}, b.getF32Type());
  auto storeType = VectorType::get({width}, outElement);
  int64_t topK = staticDim(rows, 1);
  int64_t vectorsPerRow = staticDim(y, 1) / width;
  llvm::Align loadAlign(width * element.getIntOrFloatBitWidth() / 8);
  llvm::Align storeAlign(width * outElement.getIntOrFloatBitWidth() / 8);
  launchPerElement(lb, lb.dim(y, 0), lb.index(vectorsPerRow),
                   [&](Value t, Value v) {
    Value h = arith::MulIOp::create(b, v, lb.index(width));
    Value sum = arith::ConstantOp::create(
        b, sumType, DenseElementsAttr::get(sumType, b.getF32FloatAttr(0.0)));
    for (int64_t j = 0; j < topK; ++j) {
      Value slot = lb.index(j);
      Value row = memref::LoadOp::create(b, rows, ValueRange{t, slot});
      Value kept =
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row, lb.i32(0));
      // A dropped assignment reads row 0 and contributes nothing.
      Value safe =
          asIndex(b, arith::SelectOp::create(b, kept, row, lb.i32(0)));
      Value values = vector::LoadOp::create(b, loadType, expertOut,
                                            ValueRange{safe, h},
                                            /*nontemporal=*/false, loadAlign);
      if (element != b.getF32Type())
        values = arith::ExtFOp::create(b, sumType, values);
      Value weight = vector::BroadcastOp::create(
          b, sumType, lb.loadF32(weights, {t, slot}));
      Value added = arith::AddFOp::create(
          b, sum, arith::MulFOp::create(b, weight, values));
      sum = arith::SelectOp::create(b, kept, added, sum);
    }
    if (outElement != b.getF32Type())
      sum = arith::TruncFOp::create(b, storeType, sum);
    vector::StoreOp::create(b, sum, y, ValueRange{t, h},
                            /*nontemporal=*/false, storeAlign);
  });
}

void lowerCombineRows(CombineRowsOp op, LoopBuilder &lb) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value expertOut = op.getExpertOut(), weights = op.getWeights();
  Value rows = op.getRows(), y = op.getY();
  // Static k up to kUnrolledSlots: the unrolled vector kernel.
  int64_t topK = cast<MemRefType>(rows.getType()).getDimSize(1);
  if (int64_t width = combineWidth(op);
      width > 1 && !ShapedType::isDynamic(topK) && topK <= kUnrolledSlots)
    return lowerCombineRowsVectorized(op, lb, width);
  launchPerElement(lb, lb.dim(y, 0), lb.dim(y, 1), [&](Value t, Value h) {
    Value sum = lb.forLoopCarrying(
        lb.index(0), lb.dim(rows, 1), ValueRange{lb.f32(0.0)},
        [&](Value j, ValueRange acc) -> SmallVector<Value> {
          Value row = memref::LoadOp::create(b, rows, ValueRange{t, j});
          Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row,
                                             lb.i32(0));
          // A dropped assignment reads row 0 and contributes nothing.
          Value safe = asIndex(b, arith::SelectOp::create(b, kept, row, lb.i32(0)));
          Value term = arith::MulFOp::create(b, lb.loadF32(weights, {t, j}),
                                             lb.loadF32(expertOut, {safe, h}));
          Value added = arith::AddFOp::create(b, acc[0], term);
          return {arith::SelectOp::create(b, kept, added, acc[0])};
        })[0];
    lb.storeF32(sum, y, {t, h});
  });
}

/// Indices of element `i` of a buffer in row-major order (any rank).
SmallVector<Value> elementIndices(LoopBuilder &lb, Value buffer, Value i) {
  ImplicitLocOpBuilder &b = lb.builder();
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  SmallVector<Value> indices(rank);
  for (int64_t d = rank - 1; d > 0; --d) {
    Value extent = lb.dim(buffer, d);
    indices[d] = arith::RemUIOp::create(b, i, extent);
    i = arith::DivUIOp::create(b, i, extent);
  }
  if (rank > 0)
    indices[0] = i;
  return indices;
}

Value numElements(LoopBuilder &lb, Value buffer) {
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  Value count = lb.index(1);
  for (int64_t d = 0; d < rank; ++d)
    count = arith::MulIOp::create(lb.builder(), count, lb.dim(buffer, d));
  return count;
}

/// Whether `op` is an elementwise linalg.generic on buffers: every loop
/// parallel, every operand indexed by the identity, one output (the
/// block's residual adds, converted from arith on tensors).
bool isElementwiseGeneric(linalg::GenericOp op) {
  return op.hasPureBufferSemantics() && op.getNumDpsInits() == 1 &&
         op.getNumParallelLoops() == op.getNumLoops() &&
         llvm::all_of(op.getIndexingMapsArray(),
                      [](AffineMap map) { return map.isIdentity(); }) &&
         op.getBody()->getOps<linalg::IndexOp>().empty();
}

/// Elements a thread of an elementwise map takes: 8 (16 bytes of a 16-bit
/// buffer, two vectors of a 32-bit one) when every operand is a dense
/// buffer of 16- or 32-bit elements of the output's static shape whose rows
/// 8 divides (so every vector is 16-byte aligned); else 1.
int64_t elementwiseWidth(Value out, ValueRange inputs) {
  constexpr int64_t kWidth = 8;
  auto outType = cast<MemRefType>(out.getType());
  if (outType.getRank() == 0 || !outType.hasStaticShape() ||
      outType.getShape().back() % kWidth != 0)
    return 1;
  SmallVector<Value> operands{out};
  llvm::append_range(operands, inputs);
  for (Value operand : operands) {
    auto type = dyn_cast<MemRefType>(operand.getType());
    unsigned bits = type ? type.getElementTypeBitWidth() : 0;
    if (!type || !type.getLayout().isIdentity() ||
        type.getShape() != outType.getShape() || (bits != 16 && bits != 32))
      return 1;
  }
  return kWidth;
}

/// Whether a map's body reads the output element (a generic's last block
/// argument), beside its inputs.
bool bodyReadsOutput(Block *body, ValueRange inputs) {
  return body->getNumArguments() > inputs.size() &&
         !body->getArguments().back().use_empty();
}

/// A copy of the map's body at the builder on `operands` (the inputs', then
/// the output's when the body reads it): the value it yields.
Value cloneMapBody(ImplicitLocOpBuilder &b, Block *body, ValueRange operands) {
  IRMapping mapping;
  for (auto [arg, value] : llvm::zip(body->getArguments(), operands))
    mapping.map(arg, value);
  for (Operation &inner : body->without_terminator())
    b.clone(inner, mapping);
  return mapping.lookup(body->getTerminator()->getOperand(0));
}

/// A map's body on `width` adjacent elements a thread: vector loads of the
/// operands, the body once per element, one vector store. A thread per
/// element moved 2 or 4 bytes a load and left these kernels well below the
/// memory's rate.
void lowerElementwiseVectorized(LoopBuilder &lb, Value out, ValueRange inputs,
                                Block *body, int64_t width) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value vectors =
      arith::DivUIOp::create(b, numElements(lb, out), lb.index(width));
  launchPerItem(lb, vectors, [&](Value v) {
    SmallVector<Value> indices =
        elementIndices(lb, out, arith::MulIOp::create(b, v, lb.index(width)));
    SmallVector<SmallVector<Value>> loaded;
    for (Value input : inputs)
      loaded.push_back(loadAdjacent(b, input, indices, width));
    if (bodyReadsOutput(body, inputs))
      loaded.push_back(loadAdjacent(b, out, indices, width));
    SmallVector<Value> results;
    for (int64_t i = 0; i < width; ++i) {
      SmallVector<Value> operands;
      for (ArrayRef<Value> values : loaded)
        operands.push_back(values[i]);
      results.push_back(cloneMapBody(b, body, operands));
    }
    storeAdjacent(b, results, out, indices);
  });
}

/// The fills and elementwise maps that moe-zero-buffer-fusion leaves around
/// the kernels write device buffers too: one thread per element, or per 8
/// adjacent elements where elementwiseWidth allows.
LogicalResult lowerElementwise(Operation *op, LoopBuilder &lb) {
  ImplicitLocOpBuilder &b = lb.builder();
  if (auto fill = dyn_cast<linalg::FillOp>(op)) {
    Value out = fill.getOutputs()[0];
    if (!isa<MemRefType>(out.getType()))
      return op->emitOpError() << "only fills of buffers run on the GPU "
                                  "target";
    Value value = fill.getInputs()[0];
    // A dense buffer of 16- or 32-bit elements: the driver's memset, which
    // runs at memory bandwidth.
    auto outType = cast<MemRefType>(out.getType());
    unsigned bits = outType.getElementTypeBitWidth();
    if (outType.getLayout().isIdentity() && (bits == 16 || bits == 32)) {
      gpu::MemsetOp::create(b, /*asyncToken=*/Type(), ValueRange{}, out,
                            value);
      return success();
    }
    launchPerItem(lb, numElements(lb, out), [&](Value i) {
      memref::StoreOp::create(b, value, out, elementIndices(lb, out, i));
    });
    return success();
  }
  // A map, or an elementwise generic: its body once per element.
  Value out;
  ValueRange inputs;
  Block *body;
  if (auto map = dyn_cast<linalg::MapOp>(op)) {
    out = map.getInit();
    inputs = map.getInputs();
    body = &map.getMapper().front();
  } else {
    auto generic = cast<linalg::GenericOp>(op);
    if (!isElementwiseGeneric(generic))
      return op->emitOpError()
             << "only elementwise linalg.generic ops (parallel loops, "
                "identity maps, one output) run on the GPU target";
    out = generic.getDpsInits()[0];
    inputs = generic.getDpsInputs();
    body = generic.getBody();
  }
  if (!isa<MemRefType>(out.getType()))
    return op->emitOpError() << "only maps over buffers run on the GPU "
                                "target";
  if (int64_t width = elementwiseWidth(out, inputs); width > 1) {
    lowerElementwiseVectorized(lb, out, inputs, body, width);
    return success();
  }
  launchPerItem(lb, numElements(lb, out), [&](Value i) {
    SmallVector<Value> indices = elementIndices(lb, out, i);
    SmallVector<Value> operands;
    for (Value input : inputs)
      operands.push_back(memref::LoadOp::create(b, input, indices));
    if (bodyReadsOutput(body, inputs))
      operands.push_back(memref::LoadOp::create(b, out, indices));
    memref::StoreOp::create(b, cloneMapBody(b, body, operands), out, indices);
  });
  return success();
}

/// The training kernels other than grouped matmuls (BackwardKernelsGPU.cpp):
/// SIMT launches, the weight gradients on tensor cores where they can be,
/// the router's backward after its scores GEMM (its products on tensor
/// cores when moe-lower-to-kernels gave it a bf16/f16 ds).
void lowerBackwardKernel(Operation *op, LoopBuilder &lb,
                         const GpuTarget &target) {
  auto launch = [&](Value count, function_ref<void(Value)> body) {
    launchPerItem(lb, count, body);
  };
  TypeSwitch<Operation *>(op)
      .Case(
          [&](moek::ExpertLoadsOp o) { lowerExpertLoadsToGPU(o, lb, launch); })
      .Case([&](GroupedGluBackwardOp o) {
        lowerGroupedGluBackwardToGPU(o, lb, launch);
      })
      .Case([&](GroupedWeightGradOp o) {
        // Pairs by default (auto), as the grouped GEMMs whose a comes by
        // TMA; --cuda-cluster=1 keeps single CTAs.
        lowerGroupedWeightGradToGPU(
            o, lb, launch, target.warpgroupMma(), target.multiprocessors(),
            target.warpgroupMma()
                ? target.chipAndOptions.gemmClusterForced.value_or(2)
                : 1);
      })
      .Case([&](RouteBackwardOp o) {
        // The scores recomputed by the router's GEMM (a thread per token
        // recomputing its E dot products over H alone leaves the GPU idle),
        // then overwritten with their gradients; with saved probabilities
        // the buffer only receives the gradients.
        if (!o.getProbs())
          emitScores(lb, o.getX(), o.getWGate(), o.getScores(), target);
        lowerRouteBackwardToGPU(o, lb, launch, o.getScores(), target.tile(),
                                target.multiprocessors());
      });
}

/// A grouped matmul's kernel name (that of its tile loop too).
template <typename MatmulOpT>
std::string groupedMatmulKernelName(MatmulOpT matmul) {
  return ("moek_grouped_matmul_" + stringifyEpilogue(matmul.getEpilogue()) +
          (matmul.getTransposeB() ? "_transposed_b" : ""))
      .str();
}

/// The name the kernels of `op` get: `moek_<op>`, with the epilogue for a
/// grouped matmul, so that profiles and cubins say what each kernel does.
std::string kernelName(Operation *op) {
  if (auto matmul = dyn_cast<GroupedMatmulOp>(op))
    return groupedMatmulKernelName(matmul);
  // A tile loop is named after its grouped matmul.
  GroupedMatmulTileOp tile;
  op->walk([&](GroupedMatmulTileOp found) { tile = found; });
  if (tile)
    return groupedMatmulKernelName(tile);
  std::string name = op->getName().getStringRef().str();
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

struct MoekLowerToGPUPass
    : public mlir::moe::impl::MoekLowerToGPUPassBase<MoekLowerToGPUPass> {
  using MoekLowerToGPUPassBase::MoekLowerToGPUPassBase;

  /// Names the launches emitted for `op` (those after `boundary`, the op
  /// before it): `moek_<op>`, or `moek_<op>_<part>` where the lowering named
  /// the part. gpu-kernel-outlining makes the name the kernel's symbol.
  static void nameLaunches(Operation *boundary, Operation *op) {
    Operation *from = boundary ? boundary->getNextNode()
                               : &op->getBlock()->front();
    std::string base = kernelName(op);
    for (Operation *it = from; it != op; it = it->getNextNode()) {
      auto launch = dyn_cast<gpu::LaunchOp>(it);
      if (!launch)
        continue;
      std::string name = base;
      if (FlatSymbolRefAttr part = launch.getFunctionAttr())
        name += "_" + part.getValue().str();
      launch.setFunctionAttr(FlatSymbolRefAttr::get(op->getContext(), name));
    }
  }

  /// The target the options describe, or failure after an error.
  FailureOr<GpuTarget> parseTarget() {
    std::optional<TensorCoreTarget> chipAndTile = parseTensorCoreTarget(
        getOperation(), getArgument(), chip, tensorCoreTile, gemmCluster);
    if (!chipAndTile)
      return failure();
    GpuTarget target;
    target.chipAndOptions = *chipAndTile;
    if (flashAttention != "auto" && flashAttention != "simt") {
      getOperation()->emitError() << "moek-lower-to-gpu: flash-attention: '"
                                  << flashAttention << "' is not auto or simt";
      return failure();
    }
    target.flashTensorCores = flashAttention == "auto";
    return target;
  }

  void runOnOperation() override {
    FailureOr<GpuTarget> parsed = parseTarget();
    if (failed(parsed))
      return signalPassFailure();
    const GpuTarget &target = *parsed;
    IRRewriter rewriter(&getContext());
    SmallVector<Operation *> kernels;
    getOperation()->walk([&](Operation *op) {
      // A tile loop is lowered whole, its moek ops with it.
      if (isBlockLoop(op)) {
        kernels.push_back(op);
        return;
      }
      for (Operation *parent = op->getParentOp(); parent;
           parent = parent->getParentOp())
        if (isBlockLoop(parent))
          return;
      if (isa<MoekDialect>(op->getDialect()) ||
          (isa<linalg::FillOp, linalg::MapOp, linalg::GenericOp>(op) &&
           !op->getParentOfType<gpu::LaunchOp>()))
        kernels.push_back(op);
    });
    for (Operation *op : kernels) {
      ImplicitLocOpBuilder b(op->getLoc(), rewriter);
      b.setInsertionPoint(op);
      Operation *boundary = op->getPrevNode();
      LoopBuilder lb(b);
      auto launch = [&](Value count, function_ref<void(Value)> body) {
        launchPerItem(lb, count, body);
      };
      if (isCollectiveOp(op)) {
        // Expert parallelism: runtime calls (NCCL) and small kernels.
        lowerCollectiveToGPU(op, lb, launch);
        nameLaunches(boundary, op);
        rewriter.eraseOp(op);
        continue;
      }
      LogicalResult result =
          TypeSwitch<Operation *, LogicalResult>(op)
              .Case([&](RouteOp o) -> LogicalResult {
                // Each token's thread keeps 12 bytes an expert in private
                // memory (CUDA allows at most 512 KiB a thread).
                int64_t experts = staticDim(o.getWGate(), 1);
                if (experts > kMaxRouterExperts)
                  return o.emitOpError()
                         << "routes over " << experts
                         << " experts; the GPU router supports at most "
                         << kMaxRouterExperts
                         << " (its per-token scratch is thread-private)";
                if (failed(requireScratch(o, o.getScores(), kScoresScratch)))
                  return failure();
                return lowerRoute(o, lb, target), success();
              })
              .Case([&](RankAssignmentsOp o) -> LogicalResult {
                if (failed(requireScratch(
                        o, o.getPartials(),
                        "a partials buffer (the per-slice counts of its "
                        "parallel ranking)")))
                  return failure();
                return lowerRankAssignments(o, lb), success();
              })
              .Case([&](ExclusiveScanOp o) {
                return emitExclusiveScanKernel(lb, o.getCounts(),
                                               o.getOffsets()),
                       success();
              })
              .Case([&](AssignmentRowsOp o) {
                return emitAssignmentRowsKernel(lb, rankedAssignmentsOf(o),
                                                o.getRows()),
                       success();
              })
              .Case([&](RowAssignmentsOp o) {
                return emitRowOwnersKernel(lb, rankedAssignmentsOf(o),
                                           o.getOwners()),
                       success();
              })
              .Case([&](GatherRowsOp o) {
                return lowerGatherRows(o, lb), success();
              })
              .Case([&](GroupedMatmulOp o) {
                return lowerGroupedMatmul(o, lb, target);
              })
              .Case([&](scf::ForallOp o) {
                return lowerTileLoop(o, lb, target);
              })
              .Case([&](GluOp o) { return lowerGlu(o, lb), success(); })
              .Case([&](CombineRowsOp o) {
                return lowerCombineRows(o, lb), success();
              })
              .Case([&](RouteBackwardOp o) -> LogicalResult {
                if (failed(requireScratch(o, o.getScores(), kScoresScratch)))
                  return failure();
                return lowerBackwardKernel(o, lb, target), success();
              })
              .Case<moek::ExpertLoadsOp, GroupedGluBackwardOp,
                    GroupedWeightGradOp>([&](Operation *o) {
                return lowerBackwardKernel(o, lb, target), success();
              })
              .Case([&](MatmulOp o) {
                return lowerMatmulToGPU(o, lb, target.tile(),
                                        target.warpgroupMma(),
                                        target.multiprocessors()),
                       success();
              })
              .Case([&](moek::RmsNormOp o) {
                return lowerRmsNormToGPU(o, lb), success();
              })
              .Case([&](FlashAttentionOp o) {
                if (target.flashTensorCores &&
                    canLowerFlashAttentionToTensorCores(o))
                  return lowerFlashAttentionToTensorCores(o, lb), success();
                return lowerFlashAttentionToGPU(o, lb, target.maxSharedBytes());
              })
              .Case<linalg::FillOp, linalg::MapOp, linalg::GenericOp>(
                  [&](Operation *o) { return lowerElementwise(o, lb); })
              .Default([&](Operation *o) {
                // A kernel nobody lowers must not reach the host code.
                return o->emitOpError()
                       << "has no lowering to GPU kernels (moek-lower-to-gpu "
                          "handles the moek kernels, linalg.fill, "
                          "linalg.map and elementwise linalg.generic)";
              });
      if (failed(result))
        return signalPassFailure();
      nameLaunches(boundary, op);
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
