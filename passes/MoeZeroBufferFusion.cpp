//===- MoeZeroBufferFusion.cpp - dispatch/experts/combine without buffers -===//
//
// Rewrites each moe.dispatch -> moe.experts -> moe.combine chain into two
// grouped matmuls that never materialize a [T*k, H] buffer:
//
//   GEMM 1 reads each grouped row's token straight from x through the row
//   owners map (gather prologue) and applies the GLU in its epilogue, so
//   only the activation [rows, F] exists between the GEMMs;
//   GEMM 2 accumulates each row, times its gate weight, into y in token
//   order (scatter-add epilogue), in f32 (an f32 accumulator stands in for
//   a bf16 or f16 y and is narrowed once at the end). With top_k = 1 a
//   token has one row, which GEMM 2 stores into y in y's type
//   (scatter_store: no accumulator, no atomics).
//
// With epilogue=gather_sum, GEMM 2 stores its rows in expert order instead
// and moek.combine_rows sums each token's k rows, gate-weighted, by a gather
// (no atomics, no accumulator; all experts in one chunk, [T*k, H] rows).
//
// A residual add of y (`r + y`, elementwise, as the block's `h + MoE(..)`
// is after convert-elementwise-to-linalg) is absorbed into the scatter-add:
// the accumulator starts at r instead of zero, so y is `r + sum` rounded
// once, and the MoE's own [T, H] result never exists beside r.
//
// The routing metadata is O(T*k) integers: ranks, offsets, row owners.
// Experts are processed `experts-per-chunk` at a time; a token picks an
// expert at most once, so a chunk has at most T*min(k, chunk) rows and the
// activation buffer is that big, not T*k rows. Row slices bound it whatever
// the routing: the expert-ordered rows a slice of ceil(T*k / S) at a time,
// all experts in each launch, through the offsets clipped to the slice.
//
// With dispatch=copy GEMM 1 reads a dispatched [T*k, H] copy of x's rows
// in order instead of gathering them (on sm_90a, by TMA).
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoeToKernels/BackwardKernels.h"
#include "lib/Conversion/MoeToKernels/CollectiveKernels.h"
#include "lib/Conversion/MoeToKernels/KernelBuilding.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEZEROBUFFERFUSIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The ops of one fusable chain.
struct Chain {
  DispatchOp dispatch;
  ExpertsOp experts;
  CombineOp combine;
  /// Every token has all its k rows (a dropless gate, or the received rows
  /// of expert parallelism): with k = 1 each y row is stored exactly once.
  bool noneDropped = false;
};

/// The saved pre-activation of the chain (moe.expert_gate_up on the chain's
/// tokens, routing and w1, made by moe-place-recomputation), if any.
ExpertGateUpOp savedGateUpOf(Chain chain) {
  for (Operation *user : chain.combine.getRouting().getUsers())
    if (auto gateUp = dyn_cast<ExpertGateUpOp>(user))
      if (gateUp.getX() == chain.dispatch.getX() &&
          gateUp.getW1() == chain.experts.getW1())
        return gateUp;
  return {};
}

/// The chain ending in `combine`, or a remark saying why it cannot fuse.
FailureOr<Chain> matchChain(CombineOp combine) {
  // Expert parallelism: the rows came over the network, so they exist;
  // nothing to fuse and nothing to remark.
  if (combine.getExpertOut().getDefiningOp<AllToAllOp>())
    return failure();
  auto experts = combine.getExpertOut().getDefiningOp<ExpertsOp>();
  if (!experts)
    return combine.emitRemark()
           << "not fused: expert_out does not come from moe.experts";
  auto dispatch = experts.getTokens().getDefiningOp<DispatchOp>();
  if (!dispatch)
    return combine.emitRemark()
           << "not fused: the experts' tokens do not come from moe.dispatch";
  if (!experts->hasOneUse() || !dispatch->hasOneUse())
    return combine.emitRemark()
           << "not fused: the dispatched tokens or the expert outputs have "
              "other uses, so they must exist";
  if (dispatch.getRouting() != combine.getRouting() ||
      experts.getRouting() != combine.getRouting())
    return combine.emitRemark()
           << "not fused: dispatch, experts and combine follow different "
              "routings";
  if (!combine.getRouting().getDefiningOp<GateOp>() &&
      !combine.getRouting().getDefiningOp<LocalRoutingOp>() &&
      !combine.getRouting().getDefiningOp<UnrealizedConversionCastOp>())
    return combine.emitRemark()
           << "not fused: the routing does not come from a moe.gate in this "
              "function";
  return Chain{dispatch, experts, combine};
}

/// The residual add `r + y` (or `y + r`) that is the only user of the
/// combine's y: a linalg.generic over identity maps whose body adds its two
/// inputs (its init, which may be y, unread), r of y's type and defined
/// before the combine. Null if none.
struct ResidualAdd {
  linalg::GenericOp add;
  Value residual;
};
ResidualAdd residualAddOf(CombineOp combine) {
  Value y = combine.getY();
  if (y.use_empty())
    return {};
  auto add = dyn_cast<linalg::GenericOp>(*y.getUsers().begin());
  if (!add ||
      llvm::any_of(y.getUsers(), [&](Operation *user) { return user != add; }))
    return {};
  if (add.getNumDpsInputs() != 2 || add.getNumDpsInits() != 1 ||
      add->getNumResults() != 1 || add->getResult(0).getType() != y.getType() ||
      add.getNumParallelLoops() != add.getNumLoops() ||
      !llvm::all_of(add.getIndexingMapsArray(),
                    [](AffineMap map) { return map.isIdentity(); }))
    return {};
  Block &body = add.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto sum = yield.getValues().front().getDefiningOp<arith::AddFOp>();
  if (body.getOperations().size() != 2 || !sum)
    return {};
  Value lhs = body.getArgument(0), rhs = body.getArgument(1);
  if (!body.getArgument(2).use_empty())
    return {};
  if (!((sum.getLhs() == lhs && sum.getRhs() == rhs) ||
        (sum.getLhs() == rhs && sum.getRhs() == lhs)))
    return {};
  Value residual = add.getDpsInputs()[0] == y ? add.getDpsInputs()[1]
                                              : add.getDpsInputs()[0];
  if (residual == y || residual.getType() != y.getType())
    return {};
  // The accumulator starts at r where the combine is: r must dominate it.
  if (Operation *def = residual.getDefiningOp()) {
    if (def->getBlock() != combine->getBlock() ||
        !def->isBeforeInBlock(combine))
      return {};
  } else if (!residual.getParentRegion()->isAncestor(
                 combine->getParentRegion())) {
    return {};
  }
  return {add, residual};
}

/// Calls emit(sliceOffsets) for each slice [r0, r0 + sliceRows) of the
/// grouped rows [0, totalRows): sliceOffsets[e] = clamp(offsets[e], r0,
/// r1), so a grouped matmul over all experts with them covers exactly the
/// slice's rows, expert by expert, with base sliceOffsets[0] = r0 (its
/// activation rows are r - r0). One [E+1] buffer serves every slice: the
/// slices run one after another.
void forEachRowSlice(ImplicitLocOpBuilder &b, Value offsets, Value totalRows,
                     Value sliceRows, function_ref<void(Value)> emit) {
  auto offsetsType = cast<MemRefType>(offsets.getType());
  Value sliceOffsets =
      allocBuffer(b, offsetsType.getShape(), offsetsType.getElementType(), {},
                  "routing.slice_offsets");
  Value zero = arith::ConstantIndexOp::create(b, 0);
  auto loop = scf::ForOp::create(b, zero, totalRows, sliceRows);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  Value begin = loop.getInductionVar();
  Value end = arith::MinUIOp::create(
      b, arith::AddIOp::create(b, begin, sliceRows), totalRows);
  Type i32 = offsetsType.getElementType();
  Value begin32 = arith::IndexCastOp::create(b, i32, begin);
  Value end32 = arith::IndexCastOp::create(b, i32, end);
  linalg::MapOp::create(
      b, ValueRange{offsets}, sliceOffsets,
      [&](OpBuilder &nested, Location loc, ValueRange args) {
        Value low = arith::MaxSIOp::create(nested, loc, args[0], begin32);
        Value clipped = arith::MinSIOp::create(nested, loc, low, end32);
        linalg::YieldOp::create(nested, loc, clipped);
      });
  emit(sliceOffsets);
}

struct MoeZeroBufferFusionPass
    : public moe::impl::MoeZeroBufferFusionPassBase<MoeZeroBufferFusionPass> {
  using MoeZeroBufferFusionPassBase::MoeZeroBufferFusionPassBase;

  void runOnOperation() override {
    if (expertsPerChunk < 1) {
      getOperation()->emitError()
          << "moe-zero-buffer-fusion: experts-per-chunk must be at least 1, "
             "got "
          << static_cast<int64_t>(expertsPerChunk);
      return signalPassFailure();
    }
    if (rowSlices < 1) {
      getOperation()->emitError()
          << "moe-zero-buffer-fusion: row-slices must be at least 1, got "
          << static_cast<int64_t>(rowSlices);
      return signalPassFailure();
    }
    if (epilogue != "scatter_add" && epilogue != "gather_sum") {
      getOperation()->emitError()
          << "moe-zero-buffer-fusion: epilogue '" << epilogue
          << "' is not scatter_add or gather_sum";
      return signalPassFailure();
    }
    // The option, else the module's moe.dispatch (what moe-compile
    // --dispatch sets), else gather.
    std::string how = dispatch;
    if (how.empty())
      if (auto attr = getOperation()->getAttrOfType<StringAttr>("moe.dispatch"))
        how = attr.getValue().str();
    if (!how.empty() && how != "gather" && how != "copy") {
      getOperation()->emitError() << "moe-zero-buffer-fusion: dispatch '" << how
                                  << "' is not gather or copy";
      return signalPassFailure();
    }
    copyRows = how == "copy";
    IRRewriter rewriter(&getContext());
    RoutingPlans plans;
    SmallVector<CombineOp> combines;
    getOperation()->walk([&](CombineOp op) { combines.push_back(op); });
    for (CombineOp combine : combines) {
      FailureOr<Chain> chain = matchChain(combine);
      if (failed(chain))
        continue;
      if (auto gate = combine.getRouting().getDefiningOp<GateOp>()) {
        chain->noneDropped = gate.getCapacityFactor().convertToDouble() <= 0;
        lowerGateToKernels(gate, rewriter, kernelScratchBuffers);
      } else if (auto local =
                     combine.getRouting().getDefiningOp<LocalRoutingOp>()) {
        // Rows past the received counts (a bound-sized buffer) are no
        // expert's; their y rows are never sent back, so need no zeros.
        chain->noneDropped = true;
        lowerLocalRoutingToKernels(local, rewriter, kernelScratchBuffers,
                                   deviceSplitSizes);
      }
      if (failed(fuse(*chain, plans, rewriter)))
        return signalPassFailure();
    }
    // The kernels made here must follow the kernel dialect's rules (buffer
    // sizes that fit in 64 bits among them): a layer whose buffers would not
    // is an error of this pass, never IR that fails to verify after it.
    if (failed(verify(getOperation())))
      return signalPassFailure();
  }

  /// GEMM 1's a: x itself, each row's token gathered through the owners
  /// by the GEMM (dispatch=gather), or x's rows copied once into a
  /// dispatched [T*k, H] buffer that GEMM 1 reads in order (dispatch=copy:
  /// on sm_90a its a then loads by TMA, which cannot gather rows; the copy
  /// costs two passes over T*k*H). The copy needs all experts in one
  /// launch: a chunk's GEMM reads a's rows from its first expert's.
  struct GateUpRows {
    Value rows, owners;
    bool gather;
  };
  GateUpRows gateUpRows(ImplicitLocOpBuilder &b, Chain chain,
                        RoutingPlans &plans, RewriterBase &rewriter, Value x,
                        Value owners, int64_t rows, ValueRange dynamicRows) {
    if (!copyRows)
      return {x, owners, /*gather=*/true};
    auto xType = cast<MemRefType>(x.getType());
    Value dispatched =
        allocBuffer(b, {rows, xType.getDimSize(1)}, xType.getElementType(),
                    dynamicRows, "dispatch.tokens");
    Value assignmentRows = readBuffer(
        b, plans.assignmentRows(rewriter, chain.combine.getRouting()));
    moek::GatherRowsOp::create(b, x, assignmentRows, dispatched);
    return {dispatched, Value(), /*gather=*/false};
  }

  /// The gather_sum form: GEMM 1 as for scatter_add over all experts at
  /// once (storing the saved pre-activation too, when the backward keeps
  /// it), GEMM 2 storing rows [T*k, H] in expert order, then each token's k
  /// rows summed by a weighted gather into y.
  void fuseGatherSum(ImplicitLocOpBuilder &b, Chain chain,
                     const RoutingPlan &plan, RoutingPlans &plans,
                     RewriterBase &rewriter, Value x, Value w1, Value w2,
                     Value offsets, Value owners, Value weights, Value y,
                     ArrayRef<Value> dynamicT) {
    ExpertGateUpOp savedGateUp = savedGateUpOf(chain);
    Value savedH =
        savedGateUp ? allocGateUp(b, savedGateUp, plan, x) : Value();
    auto yType = cast<MemRefType>(y.getType());
    int64_t tokens = yType.getDimSize(0), hidden = yType.getDimSize(1);
    int64_t ffn = chain.experts.getW1().getType().getDimSize(2) / 2;
    int64_t topK = plan.topK;
    Type element = yType.getElementType();
    SmallVector<Value> dynamicRows;
    if (ShapedType::isDynamic(tokens))
      dynamicRows.push_back(arith::MulIOp::create(
          b, dynamicT.front(), arith::ConstantIndexOp::create(b, topK)));
    int64_t rows =
        ShapedType::isDynamic(tokens) ? ShapedType::kDynamic : tokens * topK;
    Value act = allocBuffer(b, {rows, ffn}, element, dynamicRows,
                            "activations.glu");
    Value expertRows = allocBuffer(b, {rows, hidden}, element, dynamicRows,
                                   "activations.expert_rows");
    auto epilogue = chain.experts.getActivation() == Activation::gelu_glu
                        ? moek::Epilogue::gelu_glu
                        : moek::Epilogue::silu_glu;
    Value first = arith::ConstantIndexOp::create(b, 0);
    Value last = arith::ConstantIndexOp::create(b, plan.experts);
    GateUpRows a =
        gateUpRows(b, chain, plans, rewriter, x, owners, rows, dynamicRows);
    moek::GroupedMatmulOp::create(b, a.rows, w1, offsets, first, last, a.owners,
                                  Value(), act, savedH, epilogue, a.gather,
                                  topK);
    moek::GroupedMatmulOp::create(b, act, w2, offsets, first, last, Value(),
                                  Value(), expertRows, Value(),
                                  moek::Epilogue::store,
                                  /*gather=*/false, topK);
    Value assignmentRows = readBuffer(
        b, plans.assignmentRows(rewriter, chain.combine.getRouting()));
    moek::CombineRowsOp::create(b, expertRows, weights, assignmentRows, y);
    if (savedGateUp)
      rewriter.replaceOp(savedGateUp, asTensor(b, savedH));
  }

  /// dispatch=copy: GEMM 1 reads a dispatched copy of x's rows.
  bool copyRows = false;

  /// The row slices for `combine`: the option's, else its function's
  /// moe.row_slices (what a block spec's row_slices=S sets), else 1.
  FailureOr<int64_t> rowSlicesOf(CombineOp combine) {
    if (rowSlices > 1)
      return static_cast<int64_t>(rowSlices);
    auto function = combine->getParentOfType<FunctionOpInterface>();
    auto attr = function ? function->getAttrOfType<IntegerAttr>(kRowSlicesAttr)
                         : IntegerAttr();
    if (!attr)
      return 1;
    if (attr.getInt() < 1)
      return function->emitError()
             << kRowSlicesAttr << " must be at least 1, got " << attr.getInt();
    return attr.getInt();
  }

  LogicalResult fuse(Chain chain, RoutingPlans &plans, RewriterBase &rewriter) {
    CombineOp combine = chain.combine;
    Value routing = combine.getRouting();
    FailureOr<RoutingPlan> plan = plans.planOf(combine, routing);
    if (failed(plan))
      return failure();
    Value ownersTensor = plans.rowOwners(rewriter, routing);

    ImplicitLocOpBuilder b(combine.getLoc(), rewriter);
    b.setInsertionPoint(combine);
    Value x = readBuffer(b, chain.dispatch.getX());
    Value w1 = readBuffer(b, chain.experts.getW1());
    Value w2 = readBuffer(b, chain.experts.getW2());
    Value offsets = readBuffer(b, plan->offsets);
    Value owners = readBuffer(b, ownersTensor);
    Value weights = readBuffer(b, combine.getWeights());

    FailureOr<int64_t> slicesAsked = rowSlicesOf(combine);
    if (failed(slicesAsked))
      return failure();
    if (*slicesAsked > 1 && epilogue == "gather_sum")
      return combine.emitError()
             << "row slices (" << *slicesAsked
             << ") need the scatter_add epilogue: gather_sum keeps every "
                "expert's [T*k, H] rows at once";

    auto yType = cast<RankedTensorType>(combine.getY().getType());
    int64_t tokens = yType.getDimSize(0);
    int64_t ffn = chain.experts.getW1().getType().getDimSize(2) / 2;
    int64_t experts = plan->experts, topK = plan->topK;
    int64_t chunk = std::min<int64_t>(expertsPerChunk, experts);
    Type element = yType.getElementType();
    SmallVector<Value> dynamicT;
    if (ShapedType::isDynamic(tokens))
      dynamicT.push_back(extentOf(b, x, 0));

    Value y = allocBuffer(b, yType.getShape(), element, dynamicT, "result.y");
    if (epilogue == "gather_sum") {
      fuseGatherSum(b, chain, *plan, plans, rewriter, x, w1, w2, offsets,
                    owners, weights, y, dynamicT);
      rewriter.replaceOp(combine, asTensor(b, y));
      rewriter.eraseOp(chain.experts);
      rewriter.eraseOp(chain.dispatch);
      return success();
    }
    // The scatter-add epilogue accumulates, in f32 whatever the storage: a
    // bf16 y would be rounded after every expert. So y starts at zero, or
    // an f32 accumulator does and is narrowed into y at the end. With
    // top_k = 1 a token has one row: GEMM 2 stores it into y in y's type
    // (scatter_store: no accumulator, no atomics, no narrowing), and y is
    // zeroed only where a capacity may have dropped a token's row.
    Type f32 = b.getF32Type();
    bool storeRows = topK == 1;
    Value accumulator =
        element == f32 || storeRows
            ? y
            : allocBuffer(b, yType.getShape(), f32, dynamicT,
                          "accumulators.y");
    ResidualAdd residualAdd =
        storeRows ? ResidualAdd{} : residualAddOf(combine);
    if (residualAdd.add) {
      // The accumulator starts at the residual (widened to f32).
      widenInto(b, readBuffer(b, residualAdd.residual), accumulator);
    } else if (!storeRows || !chain.noneDropped) {
      Type zeroType = storeRows ? element : f32;
      linalg::FillOp::create(
          b, ValueRange{arith::ConstantOp::create(b, b.getZeroAttr(zeroType))},
          ValueRange{accumulator});
    }

    // With a saved pre-activation, GEMM 1 also stores h (every grouped row,
    // in the saved value's type) beside the activation it makes from its
    // f32 accumulator: h is computed once and kept for the backward, at
    // the price of writing it once.
    ExpertGateUpOp savedGateUp = savedGateUpOf(chain);
    // Row slices: the grouped rows, in expert order, a slice of
    // ceil(T*k / slices) at a time (all experts in one launch each). A
    // chunk of experts bounds its rows only by T*min(k, chunk), whatever
    // the routing; a slice's bound is its own length.
    int64_t slices = savedGateUp ? 1 : *slicesAsked;
    // A dispatched copy holds all T*k rows: all experts in one launch.
    if (savedGateUp || slices > 1 || copyRows)
      chunk = experts;

    int64_t rowsPerToken = std::min(topK, chunk);
    Value totalRows;
    int64_t rows = ShapedType::kDynamic;
    SmallVector<Value> dynamicRows;
    if (ShapedType::isDynamic(tokens)) {
      totalRows = arith::MulIOp::create(
          b, dynamicT.front(), arith::ConstantIndexOp::create(b, rowsPerToken));
      dynamicRows.push_back(
          slices > 1
              ? arith::CeilDivUIOp::create(
                    b, totalRows, arith::ConstantIndexOp::create(b, slices))
                    .getResult()
              : totalRows);
    } else {
      rows = llvm::divideCeil(tokens * rowsPerToken, slices);
      totalRows = arith::ConstantIndexOp::create(b, tokens * rowsPerToken);
    }
    Value act = allocBuffer(b, {rows, ffn}, element, dynamicRows,
                            "activations.glu");

    auto epilogue = chain.experts.getActivation() == Activation::gelu_glu
                        ? moek::Epilogue::gelu_glu
                        : moek::Epilogue::silu_glu;
    Value savedH =
        savedGateUp ? allocGateUp(b, savedGateUp, *plan, x) : Value();
    if (copyRows && slices > 1)
      return combine.emitError()
             << "dispatch=copy reads a dispatched copy of all T*k rows; it "
                "cannot be combined with row slices ("
             << slices << "), which bound the rows a launch holds";
    GateUpRows a =
        gateUpRows(b, chain, plans, rewriter, x, owners, rows, dynamicRows);
    auto emitGemms = [&](Value groupOffsets, Value first, Value last) {
      moek::GroupedMatmulOp::create(b, a.rows, w1, groupOffsets, first, last,
                                    a.owners, Value(), act, savedH, epilogue,
                                    a.gather, topK);
      moek::GroupedMatmulOp::create(b, act, w2, groupOffsets, first, last,
                                    owners, weights, accumulator, Value(),
                                    storeRows ? moek::Epilogue::scatter_store
                                              : moek::Epilogue::scatter_add,
                                    /*gather=*/false, topK);
    };
    if (slices > 1) {
      forEachRowSlice(b, offsets, totalRows, extentOf(b, act, 0),
                      [&](Value sliceOffsets) {
                        emitGemms(sliceOffsets, Value(), Value());
                      });
    } else {
      forEachExpertChunk(b, experts, chunk, [&](Value first, Value last) {
        emitGemms(offsets, first, last);
      });
    }

    narrowInto(b, accumulator, y);
    if (savedGateUp)
      rewriter.replaceOp(savedGateUp, asTensor(b, savedH));
    Value result = asTensor(b, y);
    if (residualAdd.add)
      rewriter.replaceOp(residualAdd.add, result);
    rewriter.replaceOp(combine, result);
    rewriter.eraseOp(chain.experts);
    rewriter.eraseOp(chain.dispatch);
    return success();
  }
};

} // namespace
