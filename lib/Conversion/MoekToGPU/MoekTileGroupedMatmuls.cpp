//===- MoekTileGroupedMatmuls.cpp - Per-CTA tile loops of grouped GEMMs ---===//
//
// The tiling stage of the tensor-core GEMM kernels: moek.grouped_matmul
// becomes an scf.forall over its CTA tiles (mapped to GPU blocks) whose body
// asks moek.row_tile for the tile's expert and rows and computes the tile
// with moek.grouped_matmul_tile. moek-lower-to-gpu lowers that loop.
//
//===----------------------------------------------------------------------===//

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToGPU/TensorCoreTarget.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEKTILEGROUPEDMATMULSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moek;

namespace {

/// Replaces `op` by its tile loop (the mma.sync kernel's tiles).
void tileGroupedMatmul(GroupedMatmulOp op, const TensorCoreGemm &gemm,
                       RewriterBase &rewriter) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  mlir::moe::LoopBuilder lb(b);
  TensorCoreGrid grid = tensorCoreGrid(gemm, lb);
  MLIRContext *context = op.getContext();
  ArrayAttr mapping = b.getArrayAttr(
      {gpu::GPUBlockMappingAttr::get(context, gpu::MappingId::DimX),
       gpu::GPUBlockMappingAttr::get(context, gpu::MappingId::DimY)});
  auto forall = scf::ForallOp::create(
      b, ArrayRef<OpFoldResult>{grid.rowTiles, grid.columnTiles},
      ValueRange{}, mapping);
  b.setInsertionPointToStart(forall.getBody());
  Value rowTile = forall.getInductionVar(0);
  Value columnTile = forall.getInductionVar(1);
  Type index = b.getIndexType();
  auto schedule = RowTileOp::create(b, index, index, index, op.getOffsets(),
                                    rowTile, op.getFirstExpert(),
                                    op.getLastExpert(), gemm.tile.bm);
  Value hasRows =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult,
                            schedule.getRowBegin(), schedule.getGroupEnd());
  auto ifRows = scf::IfOp::create(b, hasRows, /*withElseRegion=*/false);
  b.setInsertionPointToStart(ifRows.thenBlock());
  const TensorCoreTile &t = gemm.tile;
  GroupedMatmulTileOp::create(
      b, op.getA(), op.getB(), op.getOffsets(), op.getFirstExpert(),
      op.getLastExpert(), op.getOwners(), op.getWeights(), op.getC(),
      op.getPreActivation(), schedule.getExpert(), schedule.getRowBegin(),
      schedule.getGroupEnd(), columnTile, op.getEpilogue(), op.getGather(),
      op.getTopK(), op.getTransposeB(),
      ArrayRef<int64_t>{t.bm, t.bn, t.bk, t.stages, t.warpsM, t.warpsN});
  rewriter.eraseOp(op);
}

struct MoekTileGroupedMatmulsPass
    : public mlir::moe::impl::MoekTileGroupedMatmulsPassBase<
          MoekTileGroupedMatmulsPass> {
  using MoekTileGroupedMatmulsPassBase::MoekTileGroupedMatmulsPassBase;

  void runOnOperation() override {
    std::optional<TensorCoreTarget> target = parseTensorCoreTarget(
        getOperation(), getArgument(), chip, tensorCoreTile);
    if (!target)
      return signalPassFailure();
    SmallVector<GroupedMatmulOp> matmuls;
    getOperation()->walk([&](GroupedMatmulOp op) { matmuls.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (GroupedMatmulOp op : matmuls) {
      TensorCoreGemm gemm = TensorCoreGemm::of(op);
      gemm.tile = target->tile;
      // The warpgroup kernel keeps its own persistent loop; the SIMT kernel
      // has no tiles.
      if (target->chip.hasWarpgroupMma() &&
          canLowerToWarpgroupMma(gemm, op.getContext()))
        continue;
      if (!canLowerToTensorCores(gemm, op.getContext()))
        continue;
      tileGroupedMatmul(op, gemm, rewriter);
    }
  }
};

} // namespace
