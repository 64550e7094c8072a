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
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEBATCHTILEATTENTIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr const char *kTilesAttr = "moe.bta_tiles";

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
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      int64_t n = tiles;
      if (auto requested = func->getAttrOfType<IntegerAttr>(kTilesAttr)) {
        if (n == 0)
          n = requested.getInt();
        func->removeAttr(kTilesAttr);
      }
      if (n == 0 || n == 1)
        continue;
      if (n < 0) {
        func.emitOpError() << "moe-batch-tile-attention: " << kTilesAttr
                           << " must be positive, got " << n;
        return signalPassFailure();
      }
      SmallVector<AttentionOp> attentions;
      func.walk([&](AttentionOp op) { attentions.push_back(op); });
      for (AttentionOp op : attentions) {
        int64_t batch =
            cast<RankedTensorType>(op.getN().getType()).getDimSize(0);
        if (ShapedType::isDynamic(batch)) {
          op.emitRemark() << "moe-batch-tile-attention: not tiled: the batch "
                             "is dynamic";
          continue;
        }
        if (batch % n != 0) {
          op.emitOpError() << "moe-batch-tile-attention: " << n
                           << " tiles do not divide the batch of " << batch
                           << " sequences: every tile has batch/tiles "
                              "sequences";
          return signalPassFailure();
        }
        tileAttention(op, batch, n);
      }
    }
  }
};

} // namespace
