//===- GroupedMatmulTensorCore.h - Tensor-core grouped GEMM -----*- C++ -*-===//
//
// The CUDA lowering of moek.grouped_matmul on tensor cores (mma.sync
// m16n8k16, bf16/f16 operands, f32 accumulation), used by moek-lower-to-gpu
// in place of the SIMT kernel when it applies.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_GROUPEDMATMULTENSORCORE_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_GROUPEDMATMULTENSORCORE_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

#include <array>
#include <functional>
#include <string>

namespace mlir::scf {
class ForallOp;
} // namespace mlir::scf

namespace mlir::moek {

/// The CTA tile of the tensor-core kernel: BM rows x BN columns, BK deep
/// per pipeline stage, `stages` stages in flight, warpsM x warpsN warps.
/// The default, 128 x 256 x 32 in 4 stages, was the fastest of those tried
/// on an H100 (bench/RESULTS.md).
struct TensorCoreTile {
  int64_t bm = 128, bn = 256, bk = 32, stages = 4, warpsM = 2, warpsN = 4;

  /// moek.grouped_matmul_tile's `shape`: [BM, BN, BK, STAGES, WARPS_M,
  /// WARPS_N].
  std::array<int64_t, 6> shape() const {
    return {bm, bn, bk, stages, warpsM, warpsN};
  }

  /// "" if the kernel can use this tile on a chip with `maxSharedBytes` of
  /// shared memory per block, else which rule it breaks.
  std::string validate(int64_t maxSharedBytes) const;
  /// Parses "BMxBNxBKxSTAGES[xWARPSMxWARPSN]" into `out`: "" or the error.
  static std::string parse(llvm::StringRef text, TensorCoreTile &out,
                           int64_t maxSharedBytes);
};

/// The operands of one tensor-core GEMM launch: those of a
/// moek.grouped_matmul, or a plain GEMM c = a * b[0] when `offsets` is null
/// (one group made of every row of a).
struct FragmentTile;

struct TensorCoreGemm {
  Value a, b, c;
  Value offsets, owners, weights; // offsets null: one group of all rows
  Value firstExpert, lastExpert;  // null: all experts of b
  Epilogue epilogue = Epilogue::store;
  bool gather = false;
  /// b is [E, N, K] (K-contiguous) instead of [E, K, N].
  bool transposeB = false;
  /// The store epilogue adds into c instead of writing it: c += a b (a
  /// 16-bit c widened, added to in f32 and rounded once). Each output
  /// element has one owner thread, so no atomics.
  bool accumulate = false;
  /// A GLU epilogue also stores the accumulator, all N columns, here (the
  /// saved pre-activation h); null: it does not.
  Value preActivation;
  int64_t topK = 1;
  TensorCoreTile tile;
  /// The scatter-add epilogue adds four columns per red.add.v4.f32 (sm_90+).
  bool vectorAtomics = false;
  /// CTAs of a persistent grid (the sm_90a kernel): one per multiprocessor.
  int64_t multiprocessors = 132;
  /// The sm_90a kernel's thread block clusters: 2 pairs CTAs on adjacent row
  /// tiles of one expert and column tile, each loading half of b's k tile by
  /// TMA multicast into both; 1, no clusters.
  int64_t clusterSize = 1;
  /// Set: the epilogue, in place of emitAccumulatorEpilogue's (the router's
  /// top-k on its scores GEMM's accumulators); c is then not written.
  std::function<void(moe::LoopBuilder &, const FragmentTile &,
                     ArrayRef<Value>)>
      accumulatorEpilogue;

  static TensorCoreGemm of(GroupedMatmulOp op);
  /// A tile's gemm: that of its grouped matmul, with the tile's CTA tile.
  static TensorCoreGemm of(GroupedMatmulTileOp op);
};

/// The cluster choices for the sm_90a GEMMs (moe-compile --cuda-cluster,
/// the C API's cuda_cluster, moek-lower-to-gpu's gemm-cluster): "" if
/// `choice` is auto, 1 or 2, else what is wrong with it.
std::string checkGemmCluster(llvm::StringRef choice);

/// Whether the tensor-core kernel handles `gemm`; if not, `why` (when given)
/// says which rule it misses and the SIMT kernel is the one to use. It needs
/// bf16 or f16 operands a and b of the same type, identity layouts, a
/// contraction depth K and an output width N (N/2 for a GLU) that are
/// multiples of 8, an f32 output for scatter_add and for an accumulating
/// store, and the nvgpu, vector, nvvm and llvm dialects loaded in the
/// context.
bool canLowerToTensorCores(const TensorCoreGemm &gemm, MLIRContext *context,
                           std::string *why = nullptr);

/// Emits the tensor-core kernel (one gpu.launch) for `gemm` at the builder's
/// insertion point. Precondition: canLowerToTensorCores(gemm).
void lowerToTensorCores(const TensorCoreGemm &gemm, moe::LoopBuilder &lb);

/// The grid of the mma.sync kernel, emitted as host code where the builder
/// is: an upper bound of the row tiles any routing needs (ceil(rows / BM)
/// plus the experts; moek.row_tile says which of them hold rows) by the
/// column tiles.
struct TensorCoreGrid {
  Value rowTiles, columnTiles;
};
TensorCoreGrid tensorCoreGrid(const TensorCoreGemm &gemm, moe::LoopBuilder &lb);

/// The threads and dynamic shared-memory bytes of a CTA of that kernel.
struct TensorCoreLaunchShape {
  int64_t threads, sharedBytes;
};
TensorCoreLaunchShape tensorCoreLaunchShape(const TensorCoreGemm &gemm);

/// One CTA tile of that kernel inside its launch (thread `tid`): the rows
/// [rowBegin, min(rowBegin + BM, rowEnd)) of `expert` (a moek.row_tile's
/// results, rowBegin < rowEnd) by column tile `columnTile`: the cp.async
/// pipeline, mma.sync and the epilogue. Every thread of the CTA must reach
/// it (barriers). Precondition: canLowerToTensorCores(gemm).
void emitTensorCoreTile(const TensorCoreGemm &gemm, moe::LoopBuilder &lb,
                        Value tid, Value expert, Value rowBegin, Value rowEnd,
                        Value columnTile);

/// The first `count` 32-bit registers of an ldmatrix result vector<Nx2xT>,
/// as mma.sync takes them: i32 for bf16, vector<2xf16> for f16.
SmallVector<Value> fragmentRegisters(ImplicitLocOpBuilder &b, Value fragment,
                                     int64_t count);

/// A row tile of the device-side schedule that both kernels share.
struct RowTile {
  Value expert, rowBegin, rowEnd;
};

/// The device-side tile schedule of a grouped matmul (the host never learns
/// the group sizes): expert e of [first, last) owns ceil(count_e / bm)
/// consecutive row tiles; returns the expert and rows [rowBegin, rowEnd) of
/// row tile `tile`, or rowBegin == rowEnd == 0 past the last tile. `rowOf(e)`
/// is where group e starts; `zero`, if given, is the index 0 to use.
RowTile scheduleRowTile(moe::LoopBuilder &lb, Value first, Value last,
                        Value tile, int64_t bm,
                        function_ref<Value(Value)> rowOf, Value zero = {});

/// Where a warp's accumulator fragments sit in the output, for the epilogue
/// that mma.sync (m16n8) and wgmma (m64nN: four warps of 16 rows) share:
/// fragment (mi, nj), element (h, p) of a lane is tile row
/// warpRow + 16 mi + 8 h + lane / 4 and output column
/// n0 + warpColumn + 8 nj + 2 (lane % 4) + p. For a GLU the first fragsN / 2
/// fragments are gate columns and the others the up columns that pair with
/// them.
struct FragmentTile {
  Value rowBegin; ///< the tile's first row (of the group's rows)
  Value rows;     ///< rows of the tile that exist (the rest are masked)
  Value base;     ///< the first row of the launch (a non-gathered a's row 0)
  Value n0;       ///< the tile's first output column
  Value lane, warpRow, warpColumn;
  int64_t fragsM, fragsN;
  /// A 16-bit store epilogue writes 16 bytes a lane (quad-transposed
  /// fragments, emitQuadStores) instead of 4.
  bool quadStores = false;
};

/// Two f32 values narrowed to `element` (bf16 or f16) as one i32, the
/// first in the low half (the lower address).
Value packPair(ImplicitLocOpBuilder &b, Type element, Value first,
               Value second);

/// Stores the row `row` (of a [rows, columns] 16-bit buffer at `base`, an
/// index address) of a warp's accumulator fragments, 16 bytes a lane: for
/// each block of four fragments (8 columns each), the lanes of a quad trade
/// their packed pairs (transposeQuad), so that the lane at quad position p
/// holds fragment 4 i + p's 8 columns and writes them at once, four lanes
/// 64 contiguous bytes, where a lane's own pairs would take four 4-byte
/// stores. `pair(f)` is the lane's two accumulators of fragment f,
/// `firstColumn` fragment 0's first column; fragments past `columns` are
/// not written, nor is anything when `valid` is false. Every lane of the
/// warp must execute it (shuffles); `fragments` is a multiple of 4, columns
/// of 8, the rows 16-byte aligned.
void emitQuadStores(moe::LoopBuilder &lb, Value base, Type element, Value row,
                    Value valid, Value firstColumn, Value columns, Value lane,
                    int64_t fragments,
                    function_ref<std::pair<Value, Value>(int64_t)> pair);

/// The store / GLU / gate-weighted scatter-add / scatter-store (top_k = 1)
/// epilogue on accumulators laid out as `tile` says,
/// (mi * fragsN + nj) * 4 + 2 h + p.
void emitAccumulatorEpilogue(const TensorCoreGemm &gemm, moe::LoopBuilder &lb,
                             const FragmentTile &tile, ArrayRef<Value> acc);

/// Whether the sm_90a kernel (wgmma, TMA) handles `gemm`: that of
/// canLowerToTensorCores, and a grouped matmul (with offsets) whose rows of b
/// are 16-byte aligned for the tensor map. `why` says which rule it misses.
bool canLowerToWarpgroupMma(const TensorCoreGemm &gemm, MLIRContext *context,
                            std::string *why = nullptr);

/// Emits the sm_90a kernel for `gemm` with its persistent tile loop built
/// in (the plain GEMMs: the router's scores, the block's projections): the
/// host creates b's tensor map, then one gpu.launch in which a producer
/// warpgroup loads b by TMA and gathers a's rows by cp.async into
/// 128B-swizzled stages on an mbarrier ring, and two consumer warpgroups
/// multiply with wgmma. Precondition: canLowerToWarpgroupMma(gemm).
void lowerToWarpgroupMma(const TensorCoreGemm &gemm, moe::LoopBuilder &lb);

/// The sm_90a kernel's persistent grid, emitted as host code where the
/// builder is: an upper bound of the schedule's row tiles (gemm.clusterSize
/// row tiles of 128 rows, of one expert each), the column tiles, and the
/// CTAs: one per tile up to one per multiprocessor, in whole clusters.
struct WarpgroupGrid {
  Value rowTiles, columnTiles, tiles, ctas;
};
WarpgroupGrid warpgroupGrid(const TensorCoreGemm &gemm, moe::LoopBuilder &lb);

/// The sm_90a kernel's CTA tile: 128 x 256, 64 deep (one 128-byte row of
/// bf16/f16) per stage, 4 stages, 8 warps of 16 rows (two consumer
/// warpgroups of 64 rows, each all 256 columns).
TensorCoreTile warpgroupTile();

/// Row tiles of a band of the sm_90a kernel's persistent tile order: 16 x
/// 128 rows, an expert's share of mixtral's 16384 routed rows, so that a
/// wave's CTAs read each b panel once between them.
constexpr int64_t kWarpgroupBandRowTiles = 16;

/// Tile `tile` of the persistent order over rowTiles x columnTiles, as
/// (row tile, column tile): bands of `bandRowTiles` row tiles, each walked
/// column tile by column tile with its row tiles fastest.
std::pair<Value, Value> bandedTile(ImplicitLocOpBuilder &b, Ix &ix, Value tile,
                                   Value rowTiles, Value columnTiles,
                                   int64_t bandRowTiles);

/// Lowers moek-tile-grouped-matmuls' sm_90a tile loop, `forall` (over the
/// CTAs) around the persistent loop of `tile`, whose gemm is `gemm`: the
/// host's tensor maps, then one launch of the forall's CTAs in clusters of
/// tile's cluster_size, whose producer and consumer warpgroups each run a
/// clone of the loop with moek.row_tile looked up in the CTA's tile table
/// and the tile lowered to their parts of it. Fails with a diagnostic on a
/// loop or tile that kernel cannot run.
LogicalResult lowerWarpgroupTileLoop(scf::ForallOp forall,
                                     GroupedMatmulTileOp tile,
                                     TensorCoreGemm gemm, moe::LoopBuilder &lb);

/// The output tile of one CTA of the weight-gradient kernel.
constexpr int64_t kWeightGradTileRows = 128, kWeightGradTileColumns = 128;

/// The operands of one varlen-K weight-gradient launch, dw[e] = sum over
/// group e's rows r of lhs(r)^T rhs(r): those of a
/// moek.grouped_weight_grad, or a plain dw[0] = lhs^T rhs when `offsets` is
/// null (one group of every row of lhs).
struct TensorCoreWeightGrad {
  Value lhs, rhs, dw;            ///< [rows or T, M], [rows or T, N], [E, M, N]
  Value offsets, owners, weights; ///< offsets null: one group of all rows
  Value firstExpert, lastExpert;  ///< null: all experts of dw
  bool gatherLhs = false, gatherRhs = false;
  int64_t topK = 1;
  /// Without offsets: CTAs split the rows into this many slices and each
  /// adds its slice's sum into dw (f32, zeroed before) atomically.
  int64_t slices = 1;
  /// CTAs of a persistent grid (the sm_90a kernel): one per multiprocessor.
  int64_t multiprocessors = 132;
  /// 2: the sm_90a kernel may pair CTAs on tiles that share the operand it
  /// loads by TMA (where those tiles come in twos); 1: single CTAs.
  int64_t clusterSize = 1;

  static TensorCoreWeightGrad of(GroupedWeightGradOp op);
};

/// Whether the weight-gradient kernel handles `grad`
/// (GroupedWeightGradTensorCore.cpp): bf16 or f16 lhs and rhs of one type,
/// no weights (they would scale rows of the reduction), identity layouts,
/// M and N multiples of 8, an f32 dw when slices add into it, and the
/// nvgpu, vector, nvvm and llvm dialects loaded. `why` says which rule it
/// misses.
bool canLowerWeightGradToTensorCores(const TensorCoreWeightGrad &grad,
                                     MLIRContext *context,
                                     std::string *why = nullptr);
inline bool canLowerWeightGradToTensorCores(GroupedWeightGradOp op,
                                            std::string *why = nullptr) {
  return canLowerWeightGradToTensorCores(TensorCoreWeightGrad::of(op),
                                         op.getContext(), why);
}
/// Emits the varlen-K weight-gradient kernel: one CTA per 128 x 128 tile of
/// dw[e] per expert (per slice of the rows without offsets), walking its
/// rows in steps of 32 through a cp.async pipeline into mma.sync.
/// Precondition: canLowerWeightGradToTensorCores(grad).
void lowerWeightGradToTensorCores(const TensorCoreWeightGrad &grad,
                                  moe::LoopBuilder &lb);

/// Whether the sm_90a weight-gradient kernel (wgmma) handles `grad`: that of
/// canLowerWeightGradToTensorCores, grouped (with offsets) and not split
/// into slices (the router's dw_gate stays on mma.sync). `why` says which
/// rule it misses.
bool canLowerWeightGradToWarpgroupMma(const TensorCoreWeightGrad &grad,
                                      MLIRContext *context,
                                      std::string *why = nullptr);
/// Emits the sm_90a varlen-K weight-gradient kernel
/// (GroupedWeightGradWarpgroup.cpp): a persistent grid of 128 x 256 tiles of
/// dw[e], a producer warpgroup gathering both operands' rows by cp.async
/// into 128B-swizzled stages on an mbarrier ring, two consumer warpgroups
/// multiplying with wgmma (A and B read transposed). Precondition:
/// canLowerWeightGradToWarpgroupMma(grad).
void lowerWeightGradToWarpgroupMma(const TensorCoreWeightGrad &grad,
                                   moe::LoopBuilder &lb);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_GROUPEDMATMULTENSORCORE_H
