//===- MoekTileGroupedMatmuls.cpp - Per-CTA tile loops of grouped GEMMs ---===//
//
// The tiling stage of the tensor-core GEMM kernels: moek.grouped_matmul
// becomes an scf.forall over CTAs (mapped to GPU blocks) whose body asks
// moek.row_tile for a tile's expert and rows and computes the tile with
// moek.grouped_matmul_tile. For mma.sync, one CTA per tile; for sm_90a's
// warpgroup kernel, a persistent grid of at most one CTA per multiprocessor
// (in clusters), each walking its tiles in an scf.for. moek-lower-to-gpu
// lowers those loops.
//
//===----------------------------------------------------------------------===//

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/TensorCoreTarget.h"
#include "lib/Conversion/MoekToGPU/TileGroupedMatmuls.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"
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

scf::ForallOp mlir::moek::buildTensorCoreTileLoop(GroupedMatmulOp op,
                                                  const TensorCoreGemm &gemm,
                                                  ImplicitLocOpBuilder &b) {
  OpBuilder::InsertionGuard guard(b);
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
      b, /*k_tiles_after=*/Type(), op.getA(), op.getB(), op.getOffsets(),
      op.getFirstExpert(), op.getLastExpert(), op.getOwners(), op.getWeights(),
      op.getC(), op.getPreActivation(), schedule.getExpert(),
      schedule.getRowBegin(), schedule.getGroupEnd(), columnTile,
      /*k_tiles_before=*/Value(), op.getEpilogue(), op.getGather(),
      op.getTopK(), op.getTransposeB(), t.shape(),
      /*cluster_size=*/1);
  return forall;
}

scf::ForallOp mlir::moek::buildWarpgroupTileLoop(GroupedMatmulOp op,
                                                 const TensorCoreGemm &gemm,
                                                 ImplicitLocOpBuilder &b) {
  OpBuilder::InsertionGuard outer(b);
  int64_t cluster = gemm.clusterSize;
  mlir::moe::LoopBuilder lb(b);
  Ix ix{b, lb};
  const TensorCoreTile t = warpgroupTile();
  Value zero = ix.c(0);
  WarpgroupGrid warpgroups = warpgroupGrid(gemm, lb);
  Value rowTiles = warpgroups.rowTiles, columnTiles = warpgroups.columnTiles;
  Value tiles = warpgroups.tiles, grid = warpgroups.ctas;

  MLIRContext *context = op.getContext();
  auto forall = scf::ForallOp::create(
      b, ArrayRef<OpFoldResult>{grid}, ValueRange{},
      b.getArrayAttr(
          {gpu::GPUBlockMappingAttr::get(context, gpu::MappingId::DimX)}));
  b.setInsertionPointToStart(forall.getBody());
  Value cta = forall.getInductionVar(0);
  Value slot = cluster > 1 ? ix.div(cta, cluster) : cta;
  Value stride = cluster > 1 ? ix.div(grid, cluster) : grid;
  Value rank = cluster > 1 ? ix.rem(cta, cluster) : zero;
  Value count = arith::CeilDivUIOp::create(b, ix.sub(tiles, slot), stride);
  Type index = b.getIndexType();
  lb.forLoopCarrying(
      zero, count, ValueRange{zero},
      [&](Value i, ValueRange carried) -> SmallVector<Value> {
        Value kTilesBefore = carried[0];
        Value tile = ix.add(slot, arith::MulIOp::create(b, i, stride));
        auto [rowTile, columnTile] =
            bandedTile(b, ix, tile, rowTiles, columnTiles,
                       kWarpgroupBandRowTiles / cluster);
        auto schedule = RowTileOp::create(
            b, index, index, index, op.getOffsets(), rowTile,
            op.getFirstExpert(), op.getLastExpert(), cluster * t.bm);
        Value hasRows = ix.ult(schedule.getRowBegin(), schedule.getGroupEnd());
        auto ifRows = scf::IfOp::create(b, TypeRange{index}, hasRows,
                                        /*withElseRegion=*/true);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifRows.thenBlock());
        Value rowBegin =
            cluster > 1 ? ix.add(schedule.getRowBegin(), ix.mul(rank, t.bm))
                        : schedule.getRowBegin();
        auto computed = GroupedMatmulTileOp::create(
            b, index, op.getA(), op.getB(), op.getOffsets(),
            op.getFirstExpert(), op.getLastExpert(), op.getOwners(),
            op.getWeights(), op.getC(), op.getPreActivation(),
            schedule.getExpert(), rowBegin, schedule.getGroupEnd(), columnTile,
            kTilesBefore, op.getEpilogue(), op.getGather(), op.getTopK(),
            op.getTransposeB(), t.shape(), cluster);
        scf::YieldOp::create(b, computed.getKTilesAfter());
        b.setInsertionPointToStart(ifRows.elseBlock());
        scf::YieldOp::create(b, kTilesBefore);
        return {ifRows.getResult(0)};
      });
  return forall;
}

namespace {

struct MoekTileGroupedMatmulsPass
    : public mlir::moe::impl::MoekTileGroupedMatmulsPassBase<
          MoekTileGroupedMatmulsPass> {
  using MoekTileGroupedMatmulsPassBase::MoekTileGroupedMatmulsPassBase;

  void runOnOperation() override {
    std::optional<TensorCoreTarget> target = parseTensorCoreTarget(
        getOperation(), getArgument(), chip, tensorCoreTile, gemmCluster);
    if (!target)
      return signalPassFailure();
    SmallVector<GroupedMatmulOp> matmuls;
    getOperation()->walk([&](GroupedMatmulOp op) { matmuls.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (GroupedMatmulOp op : matmuls) {
      TensorCoreGemm gemm = TensorCoreGemm::of(op);
      gemm.tile = target->tile;
      gemm.clusterSize = target->clusterSize(gemm);
      gemm.multiprocessors = target->chip.multiprocessors();
      ImplicitLocOpBuilder b(op.getLoc(), rewriter);
      b.setInsertionPoint(op);
      if (target->chip.hasWarpgroupMma() &&
          canLowerToWarpgroupMma(gemm, op.getContext()))
        buildWarpgroupTileLoop(op, gemm, b);
      else if (canLowerToTensorCores(gemm, op.getContext()))
        buildTensorCoreTileLoop(op, gemm, b);
      else
        continue; // The SIMT kernel has no tiles.
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
