//===- MoeBatchTileAttention.cpp - Attention over tiles of the batch ------===//
//
// Batch tiling on attention (BTA): each moe.attention on n[B, L, H] becomes
//
//   %init = tensor.empty() : tensor<BxLxH>
//   %out = scf.for %t = 0 to N iter_args(%acc = %init) {
//     %rows = tensor.extract_slice %n[t*B/N, 0, 0] [B/N, L, H] [1, 1, 1]
//     %o = moe.attention ... %rows ...       // on B/N sequences
//     scf.yield tensor.insert_slice %o into %acc[t*B/N, 0, 0] ...
//   }
//
// so that the tile's projections, scores and outputs are the loop body's
// and live one tile at a time, while the MoE after it still sees the whole
// batch. Attention is per sequence (causal within it), so any tiling of the
// batch computes exactly the untiled function.
//
// With a memory budget the pass chooses N: each N dividing B is lowered on
// a clone of the module to planned buffers (as moe-place-recomputation
// evaluates its placements), so the peak is the one the program will
// have, not a formula of attention's buffers beside the MoE's; N is the
// fewest tiles whose peak fits. The cost model's prediction of each
// candidate is reported beside it.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Analysis/CostModel/CostModel.h"
#include "passes/MemoryBudget.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <numeric>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEBATCHTILEATTENTIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr const char *kTilesAttr = "moe.bta_tiles";

/// Where no tile count fits a budget and the MoE's rows are not sliced
/// yet: its activation buffer, not attention's, may be what sets the peak.
std::string rowSlicesHint(func::FuncOp func) {
  if (func->hasAttr(kRowSlicesAttr))
    return "";
  return ", or slice the MoE's grouped rows (a block spec's row_slices=S, "
         "moe.row_slices) to shrink its activation buffer";
}

/// Rewrites `op` into the loop over `tiles` tiles of its batch `batch`.
void tileAttention(AttentionOp op, int64_t batch, int64_t tiles) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto nType = cast<RankedTensorType>(op.getN().getType());
  int64_t perTile = batch / tiles;
  SmallVector<int64_t> tileShape(nType.getShape());
  tileShape[0] = perTile;
  auto tileType = RankedTensorType::get(tileShape, nType.getElementType());

  Value init = tensor::EmptyOp::create(b, loc, nType.getShape(),
                                       nType.getElementType());
  Value lower = arith::ConstantIndexOp::create(b, loc, 0);
  Value upper = arith::ConstantIndexOp::create(b, loc, tiles);
  Value step = arith::ConstantIndexOp::create(b, loc, 1);
  auto loop = scf::ForOp::create(
      b, loc, lower, upper, step, ValueRange{init},
      [&](OpBuilder &body, Location loc, Value tile, ValueRange acc) {
        Value first = arith::MulIOp::create(
            body, loc, tile, arith::ConstantIndexOp::create(body, loc, perTile));
        SmallVector<OpFoldResult> offsets = {first, body.getIndexAttr(0),
                                             body.getIndexAttr(0)};
        SmallVector<OpFoldResult> sizes, strides(3, body.getIndexAttr(1));
        for (int64_t extent : tileShape)
          sizes.push_back(body.getIndexAttr(extent));
        Value rows = tensor::ExtractSliceOp::create(
            body, loc, tileType, op.getN(), offsets, sizes, strides);
        auto tileAttention = AttentionOp::create(
            body, loc, tileType, rows, op.getWq(), op.getWk(), op.getWv(),
            op.getWo(), op.getHeadsAttr(), op.getKvHeadsAttr());
        Value out = tensor::InsertSliceOp::create(
            body, loc, tileAttention.getOut(), acc[0], offsets, sizes, strides);
        scf::YieldOp::create(body, loc, out);
      });
  op.getOut().replaceAllUsesWith(loop.getResult(0));
  op.erase();
}

/// One tile count (and row slices of the MoE), lowered.
struct Candidate {
  int64_t tiles = 1;
  int64_t slices = 1;
  int64_t peakBytes = 0;
  double predictedMs = 0;
};

/// The row slices a budget tries, fewest first, when no tile count fits
/// with the MoE's rows whole: each a launch more of both expert GEMMs.
constexpr int64_t kSliceChoices[] = {2, 3, 4, 6, 8};

std::string ms(double value) { return llvm::formatv("{0:f4}", value); }

/// "1 tile of 4 sequences", "4 tiles of 1 sequence".
std::string tilesOf(int64_t tiles, int64_t batch) {
  int64_t perTile = batch / tiles;
  return std::to_string(tiles) + (tiles == 1 ? " tile of " : " tiles of ") +
         std::to_string(perTile) +
         (perTile == 1 ? " sequence" : " sequences");
}

/// "2 tiles of 1 sequence, the MoE's rows in 3 slices".
std::string candidateText(const Candidate &c, int64_t batch) {
  std::string text = tilesOf(c.tiles, batch);
  if (c.slices > 1)
    text += ", the MoE's rows in " + std::to_string(c.slices) + " slices";
  return text;
}

struct MoeBatchTileAttentionPass
    : public mlir::moe::impl::MoeBatchTileAttentionPassBase<
          MoeBatchTileAttentionPass> {
  using MoeBatchTileAttentionPassBase::MoeBatchTileAttentionPassBase;

  void runOnOperation() override {
    if (tiles < 0) {
      getOperation()->emitError()
          << "moe-batch-tile-attention: tiles must be at least 0 (0: each "
             "function's moe.bta_tiles), got "
          << static_cast<int64_t>(tiles);
      return signalPassFailure();
    }
    if (!memoryBudget.empty())
      return chooseUnderBudget();
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      int64_t n = tiles;
      if (auto requested = func->getAttrOfType<IntegerAttr>(kTilesAttr)) {
        if (n == 0)
          n = requested.getInt();
        func->removeAttr(kTilesAttr);
      }
      if (failed(tileFunction(func, n)))
        return signalPassFailure();
    }
  }

private:
  /// Tiles every attention of `func` over `n` tiles (0 or 1: none).
  LogicalResult tileFunction(func::FuncOp func, int64_t n) {
    if (n == 0 || n == 1)
      return success();
    if (n < 0)
      return func.emitOpError() << "moe-batch-tile-attention: " << kTilesAttr
                                << " must be positive, got " << n;
    SmallVector<AttentionOp> attentions;
    func.walk([&](AttentionOp op) { attentions.push_back(op); });
    for (AttentionOp op : attentions) {
      int64_t batch = cast<RankedTensorType>(op.getN().getType()).getDimSize(0);
      if (ShapedType::isDynamic(batch)) {
        op.emitRemark() << "moe-batch-tile-attention: not tiled: the batch "
                           "is dynamic";
        continue;
      }
      if (batch % n != 0)
        return op.emitOpError()
               << "moe-batch-tile-attention: " << n
               << " tiles do not divide the batch of " << batch
               << " sequences: every tile has batch/tiles sequences";
      tileAttention(op, batch, n);
    }
    return success();
  }

  /// memory-budget: every function with attention gets the fewest tiles
  /// whose planned peak fits.
  void chooseUnderBudget() {
    ModuleOp module = getOperation();
    std::string error;
    FailureOr<MemoryBudget> budget =
        parseMemoryBudget(memoryBudget, kUntiledPeak, error);
    if (failed(budget)) {
      module.emitError() << "moe-batch-tile-attention: memory-budget "
                         << error;
      return signalPassFailure();
    }
    if (target != "cpu" && !StringRef(target).starts_with("cuda")) {
      module.emitError() << "moe-batch-tile-attention: target '" << target
                         << "' is not cpu or cuda[:sm_XY]";
      return signalPassFailure();
    }
    std::string deviceId = costDevice.empty()
                               ? ::moe::cost::defaultDeviceFor(target)
                               : costDevice.getValue();
    device = ::moe::cost::findDevice(deviceId);
    if (!device) {
      module.emitError() << "moe-batch-tile-attention: no device '"
                         << deviceId << "' in the cost model's table (have: "
                         << llvm::join(::moe::cost::deviceIds(), ", ") << ")";
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> blocks;
    for (auto func : module.getOps<func::FuncOp>())
      if (func.walk([](AttentionOp) { return WalkResult::interrupt(); })
              .wasInterrupted())
        blocks.push_back(func);
    if (blocks.empty()) {
      module.emitError()
          << "moe-batch-tile-attention: memory-budget chooses the tiles of "
             "a block's attention, but the module has no moe.attention (a "
             "training step's budget needs --backward)";
      return signalPassFailure();
    }
    for (func::FuncOp func : blocks)
      if (failed(choose(func, *budget)))
        return signalPassFailure();
  }

  /// The planned peak and predicted time of `funcName` with its attention
  /// over `n` tiles (and the MoE's grouped rows in `slices` slices, when
  /// more than 1), lowered on a clone of the module.
  FailureOr<Candidate> evaluate(StringRef funcName, int64_t n,
                                int64_t slices) {
    OwningOpRef<ModuleOp> clone = getOperation().clone();
    auto func = clone->lookupSymbol<func::FuncOp>(funcName);
    if (slices > 1)
      func->setAttr(kRowSlicesAttr,
                    Builder(func.getContext()).getI64IntegerAttr(slices));
    if (failed(tileFunction(func, n)))
      return failure();
    if (failed(runPlannedBuffersPipeline(*clone, target, expertsPerChunk,
                                         fusion, epilogue)))
      return failure();
    func = clone->lookupSymbol<func::FuncOp>(funcName);
    std::optional<int64_t> peak = plannedPeakBytes(func);
    if (!peak)
      return getOperation()->emitError()
             << "moe-batch-tile-attention: @" << funcName
             << " has no memory plan to fit under the budget";
    Candidate c;
    c.tiles = n;
    c.slices = slices;
    c.peakBytes = *peak;
    c.predictedMs = estimateFunctionCost(func, *device).totalMs;
    return c;
  }

  LogicalResult choose(func::FuncOp func, const MemoryBudget &budget) {
    // What the spec asked for, if anything, is checked, not chosen.
    int64_t given = tiles;
    if (auto requested = func->getAttrOfType<IntegerAttr>(kTilesAttr)) {
      if (given == 0)
        given = requested.getInt();
      func->removeAttr(kTilesAttr);
    }
    // Every attention of the function is tiled alike: N divides each batch.
    int64_t batch = 0;
    WalkResult walk = func.walk([&](AttentionOp op) {
      int64_t b = cast<RankedTensorType>(op.getN().getType()).getDimSize(0);
      if (ShapedType::isDynamic(b)) {
        op.emitOpError() << "moe-batch-tile-attention: a memory budget needs "
                            "a static batch: the memory plan of dynamic "
                            "buffers is made at run time";
        return WalkResult::interrupt();
      }
      batch = std::gcd(batch, b);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
    if (given < 0 || (given > 0 && batch % given != 0))
      return tileFunction(func, given); // its error says why

    SmallVector<Candidate> candidates;
    // Every tile count, in increasing N, with the MoE's rows in `slices`
    // slices, appended to the candidates.
    auto evaluateTileCounts = [&](int64_t slices) -> LogicalResult {
      for (int64_t n = 1; n <= batch; ++n) {
        if (batch % n != 0)
          continue;
        FailureOr<Candidate> c = evaluate(func.getSymName(), n, slices);
        if (failed(c))
          return failure();
        candidates.push_back(*c);
      }
      return success();
    };
    // The first candidate from `from` on that fits: the fewest tiles.
    auto fewestFitting = [&](size_t from, int64_t budgetBytes) -> int64_t {
      for (size_t i = from; i < candidates.size(); ++i)
        if (candidates[i].peakBytes <= budgetBytes)
          return int64_t(i);
      return -1;
    };
    // N = 1 divides every batch: the untiled candidate comes first.
    if (failed(evaluateTileCounts(/*slices=*/1)) || candidates.empty())
      return failure();
    const Candidate untiled = candidates.front();
    int64_t leastPeak = untiled.peakBytes;
    for (const Candidate &c : candidates)
      leastPeak = std::min(leastPeak, c.peakBytes);
    int64_t budgetBytes = budget.bytes(untiled.peakBytes, leastPeak);
    int64_t fewestIndex = fewestFitting(0, budgetBytes);
    // None fits with the MoE's rows whole: where the spec leaves the row
    // slices to the compiler, the fewest slices with which a tile count
    // fits (the MoE's activation buffer is often what sets the peak).
    bool slicesTried = false;
    if (fewestIndex < 0 && given == 0 && mayChooseRowSlices(func)) {
      slicesTried = true;
      for (int64_t slices : kSliceChoices) {
        size_t from = candidates.size();
        if (failed(evaluateTileCounts(slices)))
          return failure();
        fewestIndex = fewestFitting(from, budgetBytes);
        if (fewestIndex >= 0)
          break;
      }
    }
    const Candidate *least = &candidates.front();
    for (const Candidate &c : candidates)
      if (c.peakBytes < least->peakBytes)
        least = &c;
    const Candidate *fewest =
        fewestIndex >= 0 ? &candidates[fewestIndex] : nullptr;
    for (const Candidate &c : candidates)
      func.emitRemark() << "batch tiling on attention: "
                        << candidateText(c, batch) << ": planned peak "
                        << c.peakBytes << " bytes (" << formatBytes(c.peakBytes)
                        << "), predicted " << ms(c.predictedMs) << " ms on "
                        << device->id << ", "
                        << (c.peakBytes <= budgetBytes ? "within" : "over")
                        << " the budget of " << budgetBytes << " bytes";

    const Candidate *chosen = fewest;
    std::string reason;
    if (given > 0) {
      const Candidate *asked = llvm::find_if(
          candidates, [&](const Candidate &c) { return c.tiles == given; });
      if (asked->peakBytes > budgetBytes) {
        InFlightDiagnostic diag = func.emitError();
        diag << "bta_tiles=" << given << " plans a peak of "
             << asked->peakBytes << " bytes (" << formatBytes(asked->peakBytes)
             << "), over the memory budget of " << budgetBytes << " bytes ("
             << formatBytes(budgetBytes) << "): ";
        if (fewest)
          diag << "the fewest tiles within it are " << fewest->tiles
               << " (leave bta_tiles out and the budget chooses them)";
        else
          diag << "no tile count fits; give --memory-budget="
               << least->peakBytes << " or more" << rowSlicesHint(func);
        return diag;
      }
      chosen = asked;
      reason = "given (bta_tiles), within the budget";
    } else if (!fewest) {
      return func.emitError()
             << "memory budget " << budgetBytes << " bytes ("
             << formatBytes(budgetBytes)
             << ") is below the least planned peak any tile count reaches"
             << (slicesTried ? " with the MoE's rows in up to " +
                                   std::to_string(kSliceChoices[std::size(
                                                      kSliceChoices) - 1]) +
                                   " slices"
                             : std::string())
             << ": " << least->peakBytes << " bytes ("
             << formatBytes(least->peakBytes) << ", "
             << candidateText(*least, batch) << "); give --memory-budget="
             << least->peakBytes << " or more"
             << (slicesTried ? std::string() : rowSlicesHint(func));
    } else if (chosen->tiles == 1) {
      reason = "the untiled peak fits the budget";
    } else {
      reason = "the fewest tiles whose planned peak fits the budget";
    }
    if (chosen->slices > 1)
      reason += llvm::formatv(" with the MoE's grouped rows in {0} slices, "
                              "the fewest slices with which a tile count fits",
                              chosen->slices)
                    .str();
    // The model is consulted, not obeyed: fewer, larger tiles keep the
    // GEMMs fed in ways the roofline does not see, so a faster prediction
    // for more tiles is reported rather than followed.
    std::string note;
    for (const Candidate &c : candidates)
      if (c.peakBytes <= budgetBytes && c.slices == chosen->slices &&
          c.tiles > chosen->tiles && c.predictedMs < chosen->predictedMs)
        note = llvm::formatv("; the cost model predicts {0} tiles faster "
                             "({1} ms)",
                             c.tiles, ms(c.predictedMs))
                   .str();
    func.emitRemark() << "batch tiling on attention: " << chosen->tiles
                      << (chosen->tiles == 1 ? " tile" : " tiles") << " ("
                      << reason << "): planned peak "
                      << formatBytes(chosen->peakBytes) << " of a budget of "
                      << formatBytes(budgetBytes) << " (untiled: "
                      << formatBytes(untiled.peakBytes) << ", least: "
                      << formatBytes(leastPeak) << "), predicted "
                      << ms(chosen->predictedMs) << " ms on " << device->id
                      << note;

    Builder b(func.getContext());
    SmallVector<Attribute> entries;
    for (const Candidate &c : candidates)
      entries.push_back(b.getDictionaryAttr({
          b.getNamedAttr("tiles", b.getI64IntegerAttr(c.tiles)),
          b.getNamedAttr("row_slices", b.getI64IntegerAttr(c.slices)),
          b.getNamedAttr("peak_intermediate_bytes",
                         b.getI64IntegerAttr(c.peakBytes)),
          b.getNamedAttr("predicted_ms", b.getF64FloatAttr(c.predictedMs)),
          b.getNamedAttr("fits", b.getBoolAttr(c.peakBytes <= budgetBytes)),
      }));
    func->setAttr(
        "moe.bta",
        b.getDictionaryAttr({
            b.getNamedAttr("tiles", b.getI64IntegerAttr(chosen->tiles)),
            b.getNamedAttr("batch", b.getI64IntegerAttr(batch)),
            b.getNamedAttr("reason", b.getStringAttr(reason)),
            b.getNamedAttr("budget_bytes", b.getI64IntegerAttr(budgetBytes)),
            b.getNamedAttr("untiled_peak_bytes",
                           b.getI64IntegerAttr(untiled.peakBytes)),
            b.getNamedAttr("least_peak_bytes", b.getI64IntegerAttr(leastPeak)),
            b.getNamedAttr("row_slices", b.getI64IntegerAttr(chosen->slices)),
            b.getNamedAttr("planned_peak_bytes",
                           b.getI64IntegerAttr(chosen->peakBytes)),
            b.getNamedAttr("predicted_ms",
                           b.getF64FloatAttr(chosen->predictedMs)),
            b.getNamedAttr("device", b.getStringAttr(device->id)),
            b.getNamedAttr("candidates", b.getArrayAttr(entries)),
        }));
    if (chosen->slices > 1)
      func->setAttr(kRowSlicesAttr, b.getI64IntegerAttr(chosen->slices));
    return tileFunction(func, chosen->tiles);
  }

  /// Whether the budget may slice `func`'s MoE rows: it has a MoE, the
  /// spec did not give them, and the pipeline fuses with an epilogue that
  /// can be sliced.
  bool mayChooseRowSlices(func::FuncOp func) {
    bool hasMoe =
        func.walk([](CombineOp) { return WalkResult::interrupt(); })
            .wasInterrupted();
    return hasMoe && !func->hasAttr(kRowSlicesAttr) && fusion &&
           epilogue != "gather_sum";
  }

  const ::moe::cost::DeviceDescription *device = nullptr;
};

} // namespace
