//===- MoeOverlapCommunication.cpp - Pipelined all-to-all and experts -----===//
//
// A per-rank program (moe-expert-parallel's) spends its time in three
// steps that depend on each other: the rows go out, the local experts run,
// the results come back. Split into N chunks of tokens, the steps of
// different chunks are independent, so the program is laid out as a
// software pipeline:
//
//   phase A, each chunk c: route, dispatch, send the rows out (start)
//   phase B, each chunk c: local experts on chunk c's rows (wait for them),
//                          send the results back (start)
//   phase C, each chunk c: combine (wait for the results)
//
// Lowered, every all-to-all is a start on the runtime's communication stream
// and a wait just before the first use of what it receives
// (moe-lower-to-kernels), so chunk c+1's rows travel while chunk c is being
// routed, and chunk c-1's results travel back while chunk c's experts run:
// both directions overlap with compute. Dropless routing is per token, so
// the chunks compute exactly the layer; a capacity is per group of tokens,
// so a layer with one is left alone.
//
// The chunk count comes from the cost model unless given: per rank, C = the
// all-to-all time (both ways, the device's link) and P = the expert GEMMs'
// predicted time; N chunks cost about max(C, P) + min(C, P) / N + N o (o: a
// chunk's fixed cost, its collectives' latency and the host's waits for
// their counts), which is smallest near N = sqrt(min(C, P) / o).
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "lib/Analysis/CostModel/CostModel.h"
#include "lib/Analysis/CostModel/DeviceTable.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEOVERLAPCOMMUNICATIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr const char *kChunksAttr = "moe.overlap_chunks";

/// The per-rank layer moe-expert-parallel makes.
struct RankLayer {
  GateOp gate;
  DispatchOp dispatch;
  ExpertLoadsOp loads;
  AllToAllOp out;
  LocalRoutingOp local;
  DispatchOp localDispatch;
  ExpertsOp experts;
  CombineOp localCombine;
  AllToAllOp back;
  CombineOp combine;
};

FailureOr<RankLayer> matchRankLayer(CombineOp combine) {
  RankLayer l;
  l.combine = combine;
  l.back = combine.getExpertOut().getDefiningOp<AllToAllOp>();
  l.gate = combine.getRouting().getDefiningOp<GateOp>();
  if (!l.back || !l.gate)
    return failure();
  l.localCombine = l.back.getRows().getDefiningOp<CombineOp>();
  l.experts = l.localCombine
                  ? l.localCombine.getExpertOut().getDefiningOp<ExpertsOp>()
                  : ExpertsOp();
  l.localDispatch =
      l.experts ? l.experts.getTokens().getDefiningOp<DispatchOp>() : DispatchOp();
  l.local = l.localDispatch
                ? l.localDispatch.getRouting().getDefiningOp<LocalRoutingOp>()
                : LocalRoutingOp();
  l.out = l.local ? l.local.getCounts().getDefiningOp<AllToAllOp>()
                  : AllToAllOp();
  l.dispatch = l.out ? l.out.getRows().getDefiningOp<DispatchOp>() : DispatchOp();
  l.loads = l.out ? l.out.getCounts().getDefiningOp<ExpertLoadsOp>()
                  : ExpertLoadsOp();
  if (!l.out || !l.dispatch || !l.loads ||
      l.dispatch.getRouting() != l.gate.getRouting() ||
      combine.getWeights() != l.gate.getWeights())
    return failure();
  return l;
}

/// The chunk count the cost model picks for `layer` over `ranks` ranks on
/// `device`: the divisor N of T, at most 16, that minimizes max(C, P) +
/// min(C, P) / N + N o. C is the two all-to-alls of T*k rows at the
/// device's link (LINK rows of the cost model's table: a = its cost per
/// collective, four a direction with the count exchange), o a chunk's fixed
/// cost (8 a and the two all-to-alls' overhead: staging, handshakes and the
/// SMs their copies take from the GEMMs beside them), P the local experts'
/// two grouped GEMMs over the T*k rows a rank receives on average, as the
/// cost model prices them
/// (groupedMatmulWork: the fitted scales, waves and cache re-reads of the
/// kernels the lowering emits).
int64_t chunksFromCostModel(RankLayer l, int64_t ranks,
                            const ::moe::cost::DeviceDescription &device,
                            std::string &why) {
  auto x = cast<RankedTensorType>(l.gate.getX().getType());
  auto w1 = cast<RankedTensorType>(l.experts.getW1().getType());
  int64_t tokens = x.getDimSize(0), hidden = x.getDimSize(1);
  int64_t topK = l.gate.getTopK();
  int64_t ffn = w1.getDimSize(2) / 2;
  double bytes = (x.getElementType().getIntOrFloatBitWidth() + 7) / 8;
  double latencyUs = device.collectiveUs;
  double bytesPerUs = std::max(device.linkGBs, 1e-9) * 1e3;
  double away = ranks > 1 ? double(ranks - 1) / double(ranks) : 1.0;
  double commUs = 2 * (4 * latencyUs + double(tokens * topK * hidden) *
                                           bytes * away / bytesPerUs);
  // The received rows have one expert each: the down GEMM stores them
  // (scatter_store), as moe-zero-buffer-fusion lowers the local experts.
  mlir::moe::GroupedGemmShape gateUp;
  gateUp.rows = double(tokens * topK);
  gateUp.experts = gateUp.expertsPerLaunch = double(w1.getDimSize(0));
  gateUp.aBytes = gateUp.bBytes = bytes;
  gateUp.k = double(hidden);
  gateUp.n = double(2 * ffn);
  gateUp.outBytes = gateUp.rows * double(ffn) * bytes;
  mlir::moe::GroupedGemmShape down = gateUp;
  down.k = double(ffn);
  down.n = double(hidden);
  down.outBytes = down.rows * double(hidden) * bytes;
  bool half = x.getElementType().isBF16() || x.getElementType().isF16();
  double computeUs =
      1e3 * (::moe::cost::predictMs(
                 device, mlir::moe::groupedMatmulWork(
                             device, "moek_grouped_matmul_silu_glu", gateUp,
                             half)) +
             ::moe::cost::predictMs(
                 device, mlir::moe::groupedMatmulWork(
                             device, "moek_grouped_matmul_scatter_store",
                             down, half)));
  // Each chunk's two all-to-alls (and their count exchanges) pay the
  // link's latency and the all-to-all's overhead each.
  double perChunkUs = 8 * latencyUs + 2 * device.allToAllOverheadUs;
  double overlapped = std::max(commUs, computeUs),
         exposed = std::min(commUs, computeUs);
  int64_t chunks = 1;
  double bestUs = overlapped + exposed + perChunkUs;
  for (int64_t n = 2; n <= std::min<int64_t>(tokens, 16); ++n) {
    double us = overlapped + exposed / double(n) + double(n) * perChunkUs;
    if (tokens % n == 0 && us < bestUs) {
      chunks = n;
      bestUs = us;
    }
  }
  why = "cost model, " + device.id + ": all-to-all ~" +
        std::to_string(int64_t(commUs)) + " us, expert GEMMs ~" +
        std::to_string(int64_t(computeUs)) + " us per rank, " +
        std::to_string(int64_t(perChunkUs)) +
        " us per chunk (collective latency, all-to-all overhead)";
  return chunks;
}

/// `type` with a leading extent of `from` (or from*k) scaled to `to`.
Type chunked(Type type, int64_t from, int64_t to) {
  if (auto routing = dyn_cast<RoutingType>(type))
    return RoutingType::get(type.getContext(), to, routing.getExperts(),
                            routing.getTopK());
  auto tensor = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(tensor.getShape());
  if (!shape.empty() && !ShapedType::isDynamic(shape[0]) && shape[0] % from == 0)
    shape[0] = shape[0] / from * to;
  return RankedTensorType::get(shape, tensor.getElementType());
}

/// Clones `op` with operands through `map`; the results listed in
/// `tokenResults` get their token extent scaled from T to the chunk's.
Operation *cloneChunk(OpBuilder &b, Operation *op, IRMapping &map,
                      int64_t tokens, int64_t chunkTokens,
                      ArrayRef<unsigned> tokenResults) {
  Operation *clone = b.clone(*op, map);
  for (unsigned i : tokenResults)
    clone->getResult(i).setType(
        chunked(clone->getResult(i).getType(), tokens, chunkTokens));
  return clone;
}

/// Concatenates `parts` ([Tc, ...] each) into one [T, ...] tensor.
Value concatenate(OpBuilder &b, Location loc, ArrayRef<Value> parts,
                  RankedTensorType whole) {
  Value result = tensor::EmptyOp::create(b, loc, whole.getShape(),
                                         whole.getElementType());
  int64_t at = 0;
  for (Value part : parts) {
    auto type = cast<RankedTensorType>(part.getType());
    SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
    offsets[0] = b.getIndexAttr(at);
    SmallVector<OpFoldResult> sizes, strides(type.getRank(), b.getIndexAttr(1));
    for (int64_t d : type.getShape())
      sizes.push_back(b.getIndexAttr(d));
    result = tensor::InsertSliceOp::create(b, loc, part, result, offsets, sizes,
                                           strides);
    at += type.getDimSize(0);
  }
  return result;
}

LogicalResult overlap(RankLayer l, int64_t chunks, int64_t tokens) {
  int64_t chunkTokens = tokens / chunks;
  OpBuilder b(l.combine);
  Location loc = l.combine.getLoc();
  auto xType = cast<RankedTensorType>(l.gate.getX().getType());
  SmallVector<IRMapping> maps(chunks);
  SmallVector<Value> ys, indices;
  // Phase A: route, dispatch and send out every chunk.
  for (int64_t c = 0; c < chunks; ++c) {
    IRMapping &map = maps[c];
    SmallVector<OpFoldResult> offsets{b.getIndexAttr(c * chunkTokens),
                                      b.getIndexAttr(0)};
    SmallVector<OpFoldResult> sizes{b.getIndexAttr(chunkTokens),
                                    b.getIndexAttr(xType.getDimSize(1))};
    SmallVector<OpFoldResult> strides{b.getIndexAttr(1), b.getIndexAttr(1)};
    Value x = tensor::ExtractSliceOp::create(
        b, loc, cast<RankedTensorType>(chunked(xType, tokens, chunkTokens)),
        l.gate.getX(), offsets, sizes, strides);
    map.map(l.gate.getX(), x);
    // dispatch(x, r) reads x too: the same slice.
    cloneChunk(b, l.gate, map, tokens, chunkTokens, {0, 1, 2});
    cloneChunk(b, l.dispatch, map, tokens, chunkTokens, {0});
    cloneChunk(b, l.loads, map, tokens, chunkTokens, {});
    cloneChunk(b, l.out, map, tokens, chunkTokens, {});
  }
  // Phase B: each chunk's local experts, then its results go back.
  for (int64_t c = 0; c < chunks; ++c) {
    IRMapping &map = maps[c];
    for (Operation *op : {l.local.getOperation(), l.localDispatch.getOperation(),
                          l.experts.getOperation(),
                          l.localCombine.getOperation()})
      cloneChunk(b, op, map, tokens, chunkTokens, {});
    cloneChunk(b, l.back, map, tokens, chunkTokens, {0});
  }
  // Phase C: combine each chunk as its results arrive.
  for (int64_t c = 0; c < chunks; ++c) {
    Operation *y = cloneChunk(b, l.combine, maps[c], tokens, chunkTokens, {0});
    ys.push_back(y->getResult(0));
    indices.push_back(maps[c].lookup(l.gate.getIndices()));
  }
  l.combine.getY().replaceAllUsesWith(concatenate(
      b, loc, ys, cast<RankedTensorType>(l.combine.getY().getType())));
  if (!l.gate.getIndices().use_empty())
    l.gate.getIndices().replaceAllUsesWith(concatenate(
        b, loc, indices,
        cast<RankedTensorType>(l.gate.getIndices().getType())));
  for (Operation *op :
       {l.combine.getOperation(), l.back.getOperation(),
        l.localCombine.getOperation(), l.experts.getOperation(),
        l.localDispatch.getOperation(), l.local.getOperation(),
        l.out.getOperation(), l.loads.getOperation(),
        l.dispatch.getOperation(), l.gate.getOperation()})
    op->erase();
  return success();
}

struct MoeOverlapCommunicationPass
    : public mlir::moe::impl::MoeOverlapCommunicationPassBase<
          MoeOverlapCommunicationPass> {
  using MoeOverlapCommunicationPassBase::MoeOverlapCommunicationPassBase;

  void runOnOperation() override {
    if (chunks < -1) {
      getOperation()->emitError()
          << "moe-overlap-communication: chunks must be at least 0 (0: the "
             "cost model; -1, the default: only where a function asks), got "
          << static_cast<int64_t>(chunks);
      return signalPassFailure();
    }
    device = ::moe::cost::findDevice(costDevice);
    if (!device) {
      getOperation()->emitError()
          << "moe-overlap-communication: no device '" << costDevice
          << "' in the cost model's table (have: "
          << llvm::join(::moe::cost::deviceIds(), ", ") << ")";
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      auto requested = func->getAttrOfType<IntegerAttr>(kChunksAttr);
      auto ranks = func->getAttrOfType<IntegerAttr>("moe.expert_parallel");
      if (!requested && !chunksGiven())
        continue;
      if (!ranks) {
        if (requested) {
          func.emitOpError() << "moe-overlap-communication: " << kChunksAttr
                             << " needs the per-rank program of "
                                "moe-expert-parallel (ep=R)";
          return signalPassFailure();
        }
        continue;
      }
      func->removeAttr(kChunksAttr);
      if (func->hasAttr("moe.training_step")) {
        func.emitRemark() << "moe-overlap-communication: not chunked: the "
                             "training program is not pipelined yet";
        continue;
      }
      SmallVector<CombineOp> combines;
      func.walk([&](CombineOp op) { combines.push_back(op); });
      for (CombineOp combine : combines) {
        FailureOr<RankLayer> layer = matchRankLayer(combine);
        if (failed(layer))
          continue; // a local combine, or not a per-rank layer
        int64_t tokens =
            cast<RankedTensorType>(layer->gate.getX().getType()).getDimSize(0);
        if (ShapedType::isDynamic(tokens)) {
          combine.emitRemark() << "moe-overlap-communication: not chunked: "
                                  "the token count is dynamic";
          continue;
        }
        if (layer->gate.getCapacityFactor().convertToDouble() > 0) {
          combine.emitRemark()
              << "moe-overlap-communication: not chunked: a capacity is per "
                 "group of tokens, so chunks would drop other assignments";
          continue;
        }
        Operation *layerOps[] = {layer->dispatch, layer->loads,
                                 layer->combine};
        bool routingLocal = llvm::all_of(
            layer->gate.getRouting().getUsers(),
            [&](Operation *user) { return llvm::is_contained(layerOps, user); });
        if (!layer->gate.getWeights().hasOneUse() || !routingLocal ||
            !layer->dispatch->hasOneUse()) {
          combine.emitRemark() << "moe-overlap-communication: not chunked: "
                                  "the routing has other uses";
          continue;
        }
        int64_t n = requested ? requested.getInt() : int64_t(chunks);
        if (chunksGiven() && chunks > 0)
          n = chunks;
        std::string why = "given";
        if (n == 0)
          n = chunksFromCostModel(*layer, ranks.getInt(), *device, why);
        if (n < 1 || tokens % n != 0) {
          combine.emitOpError() << "moe-overlap-communication: " << n
                                << " chunks do not divide the " << tokens
                                << " tokens";
          return signalPassFailure();
        }
        combine.emitRemark() << "moe-overlap-communication: " << n
                             << " chunks of " << tokens / n << " tokens ("
                             << why << ")";
        if (n == 1)
          continue;
        if (failed(overlap(*layer, n, tokens)))
          return signalPassFailure();
      }
    }
  }

  /// -1 (the default) leaves the chunks to each function's attribute; the
  /// option's presence cannot tell, since moe-compile sets cost-device.
  bool chunksGiven() { return chunks >= 0; }

  const ::moe::cost::DeviceDescription *device = nullptr;
};

} // namespace
