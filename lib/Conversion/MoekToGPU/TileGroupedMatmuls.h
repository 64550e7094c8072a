//===- TileGroupedMatmuls.h - The tensor-core GEMMs' tile loops -*- C++ -*-===//
//
// The loops that moek-tile-grouped-matmuls makes of a moek.grouped_matmul,
// also built in place by moek-lower-to-gpu for one it meets untiled.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TILEGROUPEDMATMULS_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TILEGROUPEDMATMULS_H

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::moek {

/// The mma.sync kernel's tile loop of `op`, where the builder is: an
/// scf.forall over (an upper bound of the row tiles, the column tiles)
/// mapped to GPU blocks, each asking moek.row_tile for its rows and
/// computing them with moek.grouped_matmul_tile. `op` stays.
scf::ForallOp buildTensorCoreTileLoop(GroupedMatmulOp op,
                                      const TensorCoreGemm &gemm,
                                      ImplicitLocOpBuilder &b);

/// The sm_90a kernel's persistent tile loop of `op`, where the builder is:
/// on the host, an upper bound of the schedule's row tiles
/// (gemm.clusterSize row tiles of one expert each) times the column tiles,
/// and a grid of at most one CTA per multiprocessor (gemm.multiprocessors),
/// in clusters; an scf.forall over the CTAs mapped to GPU blocks, in which
/// each cluster walks tiles slot, slot + clusters, ... in the banded order
/// (bandedTile) and its CTA of rank r computes the r-th row tile of each.
/// The walk carries the k tiles the CTA has computed. `op` stays.
/// Precondition: canLowerToWarpgroupMma(gemm).
scf::ForallOp buildWarpgroupTileLoop(GroupedMatmulOp op,
                                     const TensorCoreGemm &gemm,
                                     ImplicitLocOpBuilder &b);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TILEGROUPEDMATMULS_H
