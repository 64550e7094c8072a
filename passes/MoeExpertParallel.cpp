//===- MoeExpertParallel.cpp - The per-rank program of an MoE layer -------===//
//
// Expert parallelism over R ranks (ARCHITECTURE.md): each rank routes its own
// T tokens over all E experts, sends every assignment's row to the rank of
// its expert, runs its E/R local experts on what it received and sends the
// results back, where the gate-weighted combine puts them in token order.
//
// The rows travel in expert order (moe.dispatch's layout), so the split for
// rank d is the contiguous run of rows of d's experts and its size is a sum
// of expert loads: the loads themselves are the split sizes, exchanged by
// moe.all_to_all before the rows. What a rank receives is, per source rank,
// its rows for each local expert; as a routing with top_k = 1 and unit
// weights (moe.local_routing) it is an ordinary dispatch -> experts ->
// combine chain, so zero-buffer fusion makes the local experts grouped GEMMs
// that gather their rows and scatter their outputs without extra buffers.
// The way back uses the received counts as split sizes, which returns each
// row to its place in the sender's expert order.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEEXPERTPARALLELPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The function attribute that asks for the per-rank program.
constexpr const char *kEpRanksAttr = "moe.ep_ranks";
/// The attribute of a per-rank program, which moe-compile's metadata and
/// moe-run read; it replaces the request, so a second run changes nothing.
constexpr const char *kExpertParallelAttr = "moe.expert_parallel";

/// A layer's ops: the gate and the chain that follows it.
struct Layer {
  GateOp gate;
  DispatchOp dispatch;
  ExpertsOp experts;
  CombineOp combine;
};

FailureOr<Layer> matchLayer(CombineOp combine) {
  auto experts = combine.getExpertOut().getDefiningOp<ExpertsOp>();
  auto dispatch =
      experts ? experts.getTokens().getDefiningOp<DispatchOp>() : DispatchOp();
  auto gate = combine.getRouting().getDefiningOp<GateOp>();
  if (!experts || !dispatch || !gate ||
      experts.getRouting() != combine.getRouting() ||
      dispatch.getRouting() != combine.getRouting() ||
      combine.getWeights() != gate.getWeights())
    return combine.emitOpError()
           << "moe-expert-parallel: must end a moe.gate -> moe.dispatch -> "
              "moe.experts -> moe.combine chain on one routing to be made "
              "expert-parallel";
  if (!experts->hasOneUse() || !dispatch->hasOneUse())
    return combine.emitOpError()
           << "moe-expert-parallel: the dispatched tokens and the expert "
              "outputs of an expert-parallel layer may have no other use "
              "(they live on other ranks)";
  return Layer{gate, dispatch, experts, combine};
}

/// `type` with its leading extent replaced.
RankedTensorType withLeading(RankedTensorType type, int64_t extent) {
  SmallVector<int64_t> shape(type.getShape());
  shape[0] = extent;
  return RankedTensorType::get(shape, type.getElementType());
}

/// Makes `weight` (w1 or w2 of the layer, a function argument) the local
/// shard: its leading extent E becomes E/R. The forward's experts and the
/// training program's experts_backward may both use it; anything else would
/// see the shard where it expects all E experts.
LogicalResult shardArgument(func::FuncOp func, Operation *user, Value weight,
                            StringRef name, int64_t ranks,
                            llvm::DenseSet<Value> &sharded) {
  auto argument = dyn_cast<BlockArgument>(weight);
  if (!argument || argument.getOwner()->getParentOp() != func)
    return user->emitOpError()
           << "moe-expert-parallel: " << name
           << " must be an argument of the function: each rank receives "
              "only its experts' shard of it";
  // A saved pre-activation (moe-place-recomputation) reads w1 in the rank's
  // expert order: recomputation is placed after the per-rank rewrite.
  if (llvm::any_of(weight.getUsers(),
                   [](Operation *other) { return isa<ExpertGateUpOp>(other); }))
    return user->emitOpError()
           << "moe-expert-parallel: the training step saves the experts' "
              "pre-activation (moe-place-recomputation); run "
              "moe-expert-parallel before placing recomputation";
  if (llvm::any_of(weight.getUsers(), [](Operation *other) {
        return !isa<ExpertsOp, ExpertsBackwardOp>(other);
      }))
    return user->emitOpError()
           << "moe-expert-parallel: " << name
           << " has other uses than this layer's moe.experts and "
              "moe.experts_backward; only they may see the shard that "
              "replaces it";
  if (!sharded.insert(weight).second)
    return success();
  auto type = cast<RankedTensorType>(weight.getType());
  argument.setType(withLeading(type, type.getDimSize(0) / ranks));
  return success();
}

LogicalResult makeExpertParallel(func::FuncOp func, Layer layer,
                                 int64_t ranks, llvm::DenseSet<Value> &sharded) {
  GateOp gate = layer.gate;
  int64_t experts = gate.getNumExperts();
  if (experts % ranks != 0)
    return gate.emitOpError()
           << "moe-expert-parallel: the experts (" << experts
           << ") must be divisible by the ranks (" << ranks
           << "): every rank holds E/R consecutive experts";
  int64_t local = experts / ranks;
  if (failed(shardArgument(func, layer.experts, layer.experts.getW1(), "w1",
                           ranks, sharded)) ||
      failed(shardArgument(func, layer.experts, layer.experts.getW2(), "w2",
                           ranks, sharded)))
    return failure();

  OpBuilder b(layer.combine);
  Location loc = layer.combine.getLoc();
  auto i32 = b.getI32Type();
  auto rowsType =
      cast<RankedTensorType>(layer.dispatch.getDispatched().getType());
  auto countsType = RankedTensorType::get({experts}, i32);
  auto dynamicRows = withLeading(rowsType, ShapedType::kDynamic);
  IntegerAttr ranksAttr = b.getI64IntegerAttr(ranks);

  // Out: the rows of each expert to its rank, the loads as split sizes.
  Value loads = ExpertLoadsOp::create(b, loc, countsType, gate.getRouting());
  auto out = AllToAllOp::create(b, loc, dynamicRows, countsType,
                                layer.dispatch.getDispatched(), loads, Value(),
                                ranksAttr);

  // The local experts on what arrived: one assignment per row.
  auto localRouting = RoutingType::get(b.getContext(), ShapedType::kDynamic,
                                       local, /*topK=*/1);
  auto unitWeights =
      RankedTensorType::get({ShapedType::kDynamic, 1}, b.getF32Type());
  auto routed = LocalRoutingOp::create(b, loc, unitWeights, localRouting,
                                       out.getReceivedCounts(), ranksAttr);
  Value rows = DispatchOp::create(b, loc, dynamicRows, out.getReceived(),
                                  routed.getRouting());
  Value outputs = ExpertsOp::create(
      b, loc, dynamicRows, rows, routed.getRouting(), layer.experts.getW1(),
      layer.experts.getW2(), layer.experts.getActivationAttr());
  Value results = CombineOp::create(b, loc, dynamicRows, outputs,
                                    routed.getWeights(), routed.getRouting());

  // Back: each row to its sender, in its place in expert order.
  // What comes back is what was sent: the loads, no exchange needed.
  auto back = AllToAllOp::create(b, loc, rowsType, countsType, results,
                                 out.getReceivedCounts(), loads, ranksAttr);
  layer.combine.getExpertOutMutable().assign(back.getReceived());
  layer.experts.erase();
  return success();
}

/// The training program's adjoint of a layer, per rank: the rows of x and
/// dy and the gate weight of each row travel to the experts' ranks (x is
/// sent again rather than kept from the forward: its [rows, H] would be a
/// residual), the local experts' backward runs on them, and the input and
/// gate-weight gradients of each row come back to their place in expert
/// order, where the dispatch's adjoint sums each token's rows (a combine
/// with unit weights) and the weight gradients return to their slots.
/// dw1 and dw2 are then complete for the local experts: every rank's rows
/// for them arrived.
LogicalResult makeBackwardExpertParallel(func::FuncOp func,
                                         ExpertsBackwardOp backward,
                                         int64_t ranks,
                                         llvm::DenseSet<Value> &sharded) {
  // The rows of a saved h are in this rank's expert order; the experts'
  // ranks would need them sent too. Place recomputation per rank instead.
  if (backward.getGateUp())
    return backward.emitOpError()
           << "reads a saved pre-activation (moe-place-recomputation): run "
              "moe-expert-parallel before placing recomputation";
  RoutingType routingType = backward.getRouting().getType();
  int64_t experts = routingType.getExperts();
  if (!routingType.hasStaticTokens())
    return backward.emitOpError()
           << "moe-expert-parallel: the training program across ranks needs "
              "a static token count";
  if (failed(shardArgument(func, backward, backward.getW1(), "w1", ranks,
                           sharded)) ||
      failed(shardArgument(func, backward, backward.getW2(), "w2", ranks,
                           sharded)))
    return failure();
  OpBuilder b(backward);
  Location loc = backward.getLoc();
  Value routing = backward.getRouting();
  auto xType = cast<RankedTensorType>(backward.getX().getType());
  int64_t tokens = routingType.getTokens(), topK = routingType.getTopK();
  auto rowsType = withLeading(xType, tokens * topK);
  auto dynamicRows = withLeading(xType, ShapedType::kDynamic);
  Type f32 = b.getF32Type();
  auto weightRows = RankedTensorType::get({tokens * topK, 1}, f32);
  auto dynamicWeightRows = RankedTensorType::get({ShapedType::kDynamic, 1}, f32);
  auto countsType = RankedTensorType::get({experts}, b.getI32Type());
  IntegerAttr ranksAttr = b.getI64IntegerAttr(ranks);

  Value rowsX = DispatchOp::create(b, loc, rowsType, backward.getX(), routing);
  Value rowsDy = DispatchOp::create(b, loc, rowsType, backward.getDy(), routing);
  Value rowsW = SlotsToRowsOp::create(b, loc, weightRows,
                                      backward.getWeights(), routing);
  Value loads = ExpertLoadsOp::create(b, loc, countsType, routing);
  auto sendX = AllToAllOp::create(b, loc, dynamicRows, countsType, rowsX,
                                  loads, Value(), ranksAttr);
  // dy and the weights travel with the same splits as x: their counts are
  // known from x's exchange.
  Value received = sendX.getReceivedCounts();
  auto sendDy = AllToAllOp::create(b, loc, dynamicRows, countsType, rowsDy,
                                   loads, received, ranksAttr);
  auto sendW = AllToAllOp::create(b, loc, dynamicWeightRows, countsType, rowsW,
                                  loads, received, ranksAttr);
  auto localRouting = RoutingType::get(b.getContext(), ShapedType::kDynamic,
                                       experts / ranks, /*topK=*/1);
  auto local = LocalRoutingOp::create(b, loc, dynamicWeightRows, localRouting,
                                      received, ranksAttr);
  auto w1Type = cast<RankedTensorType>(backward.getW1().getType());
  auto w2Type = cast<RankedTensorType>(backward.getW2().getType());
  auto localBackward = ExpertsBackwardOp::create(
      b, loc, TypeRange{dynamicRows, w1Type, w2Type, dynamicWeightRows},
      sendX.getReceived(), local.getRouting(), backward.getW1(),
      backward.getW2(), sendW.getReceived(), sendDy.getReceived(),
      /*gate_up=*/Value(), backward.getActivationAttr());
  auto backDx = AllToAllOp::create(b, loc, rowsType, countsType,
                                   localBackward.getDx(), received, loads,
                                   ranksAttr);
  auto backDw = AllToAllOp::create(b, loc, weightRows, countsType,
                                   localBackward.getDWeights(), received, loads,
                                   ranksAttr);
  auto slotsType = RankedTensorType::get({tokens, topK}, f32);
  Value ones = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(slotsType, b.getF32FloatAttr(1.0f)));
  Value dx = CombineOp::create(b, loc, backward.getDx().getType(),
                               backDx.getReceived(), ones, routing);
  Value dWeights = RowsToSlotsOp::create(b, loc, backward.getDWeights().getType(),
                                         backDw.getReceived(), routing);
  backward.getDx().replaceAllUsesWith(dx);
  backward.getDw1().replaceAllUsesWith(localBackward.getDw1());
  backward.getDw2().replaceAllUsesWith(localBackward.getDw2());
  backward.getDWeights().replaceAllUsesWith(dWeights);
  backward.erase();
  return success();
}

struct MoeExpertParallelPass
    : public moe::impl::MoeExpertParallelPassBase<MoeExpertParallelPass> {
  using MoeExpertParallelPassBase::MoeExpertParallelPassBase;

  void runOnOperation() override {
    if (ranks < 0) {
      getOperation()->emitError()
          << "moe-expert-parallel: ranks must be at least 0, got "
          << static_cast<int64_t>(ranks);
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      auto requested = func->getAttrOfType<IntegerAttr>(kEpRanksAttr);
      int64_t r = ranks > 0 ? int64_t(ranks)
                            : (requested ? requested.getInt() : 0);
      if (r == 0 || func.isExternal() || func->hasAttr(kExpertParallelAttr))
        continue;
      if (r < 1) {
        func.emitOpError() << kEpRanksAttr << " must be at least 1, got " << r;
        return signalPassFailure();
      }
      SmallVector<CombineOp> combines;
      func.walk([&](CombineOp op) { combines.push_back(op); });
      if (combines.empty() && !requested)
        continue;
      if (combines.empty()) {
        func.emitOpError() << "moe-expert-parallel: has no MoE layer (no "
                              "moe.combine) to make expert-parallel";
        return signalPassFailure();
      }
      llvm::DenseSet<Value> sharded;
      for (CombineOp combine : combines) {
        FailureOr<Layer> layer = matchLayer(combine);
        if (failed(layer) ||
            failed(makeExpertParallel(func, *layer, r, sharded)))
          return signalPassFailure();
      }
      // The training program (moe-generate-backward ran first).
      SmallVector<ExpertsBackwardOp> backwards;
      func.walk([&](ExpertsBackwardOp op) { backwards.push_back(op); });
      for (ExpertsBackwardOp op : backwards)
        if (failed(makeBackwardExpertParallel(func, op, r, sharded)))
          return signalPassFailure();
      // The aux loss counts the EP group's loads (Pangu's EP-group aux
      // loss): the rank's loads summed over all ranks.
      func.walk([&](GateBackwardOp op) {
        if (op.getAuxLoss().convertToDouble() <= 0.0)
          return;
        OpBuilder b(op);
        RoutingType routing = op.getRouting().getType();
        auto countsType =
            RankedTensorType::get({routing.getExperts()}, b.getI32Type());
        Value loads = ExpertLoadsOp::create(b, op.getLoc(), countsType,
                                            op.getRouting());
        Value group = AllReduceOp::create(b, op.getLoc(), countsType, loads,
                                          b.getI64IntegerAttr(r));
        op.getGroupLoadsMutable().assign(group);
        op.setGroupRanks(r);
      });
      // The arguments are shards now, and so are the training program's
      // dw1 and dw2: the signature says so.
      Operation *terminator = func.getBody().front().getTerminator();
      func.setFunctionType(FunctionType::get(
          func.getContext(), func.getBody().front().getArgumentTypes(),
          terminator->getOperandTypes()));
      // What moe-run and the metadata read: this is rank-local code.
      func->removeAttr(kEpRanksAttr);
      func->setAttr(kExpertParallelAttr,
                    IntegerAttr::get(IntegerType::get(func.getContext(), 64), r));
    }
  }
};

} // namespace
