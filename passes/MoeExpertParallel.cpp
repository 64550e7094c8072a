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

#include "mlir/Dialect/Func/IR/FuncOps.h"
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
/// shard: its leading extent E becomes E/R.
LogicalResult shardArgument(func::FuncOp func, ExpertsOp experts, Value weight,
                            StringRef name, int64_t ranks) {
  auto argument = dyn_cast<BlockArgument>(weight);
  if (!argument || argument.getOwner()->getParentOp() != func)
    return experts.emitOpError()
           << "moe-expert-parallel: " << name
           << " must be an argument of the function: each rank receives "
              "only its experts' shard of it";
  auto type = cast<RankedTensorType>(weight.getType());
  // Another user would see the shard where it expects all E experts.
  if (!weight.hasOneUse())
    return experts.emitOpError()
           << "moe-expert-parallel: " << name
           << " has other uses than this layer's moe.experts; only the layer "
              "may see the shard that replaces it";
  argument.setType(withLeading(type, type.getDimSize(0) / ranks));
  return success();
}

LogicalResult makeExpertParallel(func::FuncOp func, Layer layer,
                                 int64_t ranks) {
  GateOp gate = layer.gate;
  int64_t experts = gate.getNumExperts();
  if (experts % ranks != 0)
    return gate.emitOpError()
           << "moe-expert-parallel: the experts (" << experts
           << ") must be divisible by the ranks (" << ranks
           << "): every rank holds E/R consecutive experts";
  int64_t local = experts / ranks;
  if (failed(shardArgument(func, layer.experts, layer.experts.getW1(), "w1",
                           ranks)) ||
      failed(shardArgument(func, layer.experts, layer.experts.getW2(), "w2",
                           ranks)))
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
                                layer.dispatch.getDispatched(), loads,
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
  auto back = AllToAllOp::create(b, loc, rowsType, countsType, results,
                                 out.getReceivedCounts(), ranksAttr);
  layer.combine.getExpertOutMutable().assign(back.getReceived());
  layer.experts.erase();
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
      if (func->hasAttr("moe.training_step")) {
        func.emitOpError()
            << "moe-expert-parallel: the training program across ranks is "
               "not supported yet (run the forward, or ep without --backward)";
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
      for (CombineOp combine : combines) {
        FailureOr<Layer> layer = matchLayer(combine);
        if (failed(layer) || failed(makeExpertParallel(func, *layer, r)))
          return signalPassFailure();
      }
      // The arguments are shards now: the signature says so.
      func.setFunctionType(FunctionType::get(
          func.getContext(), func.getBody().front().getArgumentTypes(),
          func.getResultTypes()));
      // What moe-run and the metadata read: this is rank-local code.
      func->removeAttr(kEpRanksAttr);
      func->setAttr(kExpertParallelAttr,
                    IntegerAttr::get(IntegerType::get(func.getContext(), 64), r));
    }
  }
};

} // namespace
