//===- GroupedMatmulWarpgroup.cpp - sm_90a grouped GEMM (wgmma, TMA) ------===//
//
// moek.grouped_matmul on Hopper's warpgroup tensor cores, as one gpu.launch
// of 128 x 256 tiles (BM x BN), 64 deep per stage (BK: one 128-byte row of
// bf16/f16), 4 stages on an mbarrier ring (a plain GEMM no wider than 128,
// the router's scores: 128 x 128 tiles, 6 stages; StageLayout):
//
//   host:  map = tensor map of b, 128B swizzle: [E, K, N] in boxes
//          [1, 64, 64] (N-major), or, transposed, [E, N, K] in boxes
//          [1, 256, 64] (K-major)
//   grid:  persistent, min(tiles, SMs) CTAs; CTA c takes tiles c, c + grid,
//          ...; tile = (expert e, rows [r0, r0 + 128), columns [n0, n0 +
//          256)), scheduled on the device from the offsets, in bands of 16
//          row tiles walked column by column (rows fastest). For a grouped
//          matmul that loop is moek-tile-grouped-matmuls' (scf.forall over
//          the CTAs, scf.for over their tiles, moek.row_tile and
//          moek.grouped_matmul_tile), which lowerWarpgroupTileLoop clones
//          into the producer's and the consumers' branches; a plain GEMM
//          (no offsets: the router's scores, the block's projections) gets
//          the same walk from forEachTile
//   table: at the start, each CTA copies the experts' first rows into
//          shared memory and thread 0 sums their row tiles there; a tile's
//          expert is then a binary search of that table (a walk over every
//          expert's offsets per tile cost qwen3_30b_a3b's 128 experts about
//          10 us a tile, half the time of a K = 768 tile)
//   CTA:   384 threads = producer warpgroup 0 + consumer warpgroups 1, 2;
//          `it` counts the k tiles the CTA has gone through, over all its
//          tiles: stage s = it % S, round it / S (the mbarrier phase)
//   producer (setmaxnreg.dec 64), for every tile and k tile:
//     wait empty[s] (consumers done with round - 1)
//     thread 0: full[s].arrive.expect_tx(bytes of B); TMA b[e, k0:, n:]
//       (four boxes) or, transposed, b[e, n0:, k0:] (one box)
//     every thread: cp.async its 16-byte chunks of a's gathered rows into
//       the same 128B-swizzled layout; cp.async.mbarrier.arrive.noinc full[s]
//     (a not gathered and stores not staged: thread 0 alone, a's 128 rows
//       of the k tile by TMA too, on the same expect_tx; loadA)
//   consumers (setmaxnreg.inc 216), warpgroup g = rows 64 g .. 64 g + 63:
//     wait full[s]; fence.proxy.async (cp.async wrote A through the generic
//     proxy, wgmma reads it through the async proxy); 4 x wgmma m64n256k16
//     on descriptors; commit; wait until one group is in flight, then
//     arrive empty[previous s]
//   epilogue on the accumulators: that of the mma.sync kernel
//     (emitAccumulatorEpilogue): store, GLU or gate-weighted scatter-add,
//     while the producer already loads the CTA's next tile; a 16-bit store
//     or GLU output without h writes 16 bytes a lane (quad-transposed
//     fragments, emitQuadStores).
//     Staged (stagesStores: a store or GLU tile writing more than 1 KiB per
//     k step): the 16-bit outputs go through two swizzled 64 x 64 boxes in
//     shared memory a warpgroup, which its leader stores by TMA while the
//     warpgroup goes on (storeStaged, StagedStores).
//
//   clusters (op.clusterSize = 2 for grouped matmuls,
//     TensorCoreTarget::clusterSize): the grid is pairs of CTAs; a tile of the
//     schedule is two row tiles of one expert and column tile, one a CTA.
//     Each CTA's thread 0 loads half of b's k tile by TMA multicast into
//     both CTAs' stage (each completing on that CTA's full[s], which expects
//     all of B's bytes), so
//     b is read from L2 once for two row tiles; a consumer warp's lane 0
//     frees a stage in both CTAs (mapa + a remote mbarrier arrive), so
//     empty[s] counts every consumer warp of the pair. The CTAs wait for
//     each other (barrier.cluster) after the barriers' init and before they
//     exit; a CTA past its expert's rows runs the k loop for its partner and
//     stores nothing.
//
// Shared memory, from a 1024-byte aligned base (the swizzle repeats every
// 1024 bytes and wgmma's descriptors and TMA both assume that alignment):
// stage s = A [128 rows of m][128 B of k], then B: N-major, four 64-column
// chunks of [64 rows of k][128 B of n]; K-major (transposed b),
// [256 rows of n][128 B of k], laid out as A is. In every 128-byte row,
// 16-byte chunk j is stored at j ^ (row % 8). The mbarriers follow the
// stages, then the tile table: E + 1 first rows, then E + 1 row-tile
// prefix sums (i32).
//
// The tensor map and the cp.async copies are upstream nvgpu ops; the
// mbarriers, TMA copies, fences, setmaxnreg and wgmma are NVVM ops. The
// descriptors are built here rather than with nvgpu.warpgroup.mma, whose
// lowering (LLVM 22) supports only a K-major B. The forward's b is [K, N]
// row-major (N-major), which wgmma reads transposed (layout B = row); the
// backward's transposed b, [N, K] row-major, is wgmma's own K-major B
// (layout B = col), described like A. The async-proxy fence is the
// consumers': after their mbarrier wait they see the cp.async data, and the
// fence orders it before their own wgmma reads.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"
#include "lib/Conversion/MoekToGPU/WarpgroupMma.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

namespace {

constexpr int64_t kBM = 128, kBK = 64;
/// Columns of one N-major TMA box and of one swizzle atom's rows (128
/// bytes).
constexpr int64_t kChunkColumns = 64;
constexpr int64_t kRowBytes = 128;
constexpr int64_t kStageBytesA = kBM * kRowBytes;
/// N-major B: bn / kChunkColumns chunks of [kBK rows][128 B]. K-major B:
/// [bn rows][128 B], the same bytes.
constexpr int64_t kChunkBytesB = kBK * kRowBytes;

/// The tile's width and the ring's depth, and where things sit in shared
/// memory. 128 x 256 tiles, 4 stages of 48 KiB, for every GEMM but a plain
/// one (no groups) whose N is at most 128 (the router's scores, N = E):
/// there 128 x 128 tiles, whose wgmma m64n128 does no work on columns past
/// N, and 6 stages of 32 KiB, the same bytes in flight for a GEMM that
/// mostly streams a.
///
/// A grouped GEMM whose 16-bit output rows are in expert order (the store
/// and GLU epilogues) also has StagedStores::kBytes a consumer warpgroup
/// after the stages, for its TMA-store epilogue (staged), when they fit.
struct StageLayout {
  int64_t bn = 256, stages = 4;
  bool staged = false;

  static StageLayout of(const TensorCoreGemm &gemm);
  int64_t stageBytesB() const { return bn * kRowBytes; }
  int64_t stageBytes() const { return kStageBytesA + stageBytesB(); }
  int64_t stagingOffset() const { return stages * stageBytes(); }
  int64_t barrierOffset() const {
    return stagingOffset() + (staged ? 2 * StagedStores::kBytes : 0);
  }
  int64_t tableOffset() const { return barrierOffset() + 2 * stages * 8; }
  /// Slack for aligning the base to 1024 bytes, the stages, the staging,
  /// 2 x stages mbarriers, then the tile table of `experts`: two i32 arrays
  /// of E + 1.
  int64_t sharedBytes(int64_t experts) const {
    return 1024 + tableOffset() + 2 * 4 * (experts + 1);
  }
};
/// What one CTA may use on sm_90 (227 KiB).
constexpr int64_t kMaxSharedBytes = 227 * 1024;

/// Whether the epilogue's outputs leave by TMA stores: they can when they
/// are 16-bit rows in expert order, written (not added to), 16-byte
/// aligned, and for a GLU whole 128-column halves of its tiles (h's gate
/// columns do not run into its up columns); they pay when a tile writes
/// more than 1 KiB per k step (depth / 64 of them), so that the epilogue is
/// a large part of the tile. On the H200 (bench/RESULTS.md, 2026-11-30
/// 22:33-22:46) staging made the store GEMMs of K = 768 and 1024 4% faster
/// and the GLU GEMMs with h (96 KiB a tile, K = 2048 and 4096) 2-6%; the
/// GLU GEMMs without h (32 KiB, K = 2048: 1 KiB a k step) ran 1.5% faster
/// on olmoe and 3% slower on qwen3_30b_a3b, and mixtral's store GEMM (K =
/// 14336) no faster.
bool stagesStores(const TensorCoreGemm &gemm, int64_t outputs, int64_t depth) {
  auto is16Bit = [](Value buffer) {
    return cast<MemRefType>(buffer.getType())
               .getElementType()
               .getIntOrFloatBitWidth() == 16;
  };
  if (!gemm.offsets || gemm.accumulate || !is16Bit(gemm.c) || outputs % 8)
    return false;
  int64_t tileBytes = 0;
  if (gemm.epilogue == Epilogue::store)
    tileBytes = kBM * 256 * 2;
  else if (isGlu(gemm.epilogue) && outputs % 128 == 0 &&
           (!gemm.preActivation || is16Bit(gemm.preActivation)))
    tileBytes = kBM * 128 * 2 * (gemm.preActivation ? 3 : 1);
  int64_t kSteps = (depth + kBK - 1) / kBK;
  return tileBytes > 1024 * kSteps;
}

StageLayout StageLayout::of(const TensorCoreGemm &gemm) {
  auto bType = cast<MemRefType>(gemm.b.getType());
  int64_t width = bType.getDimSize(gemm.transposeB ? 1 : 2);
  if (!gemm.offsets && !isGlu(gemm.epilogue) && width <= 128)
    return {128, 6};
  StageLayout layout;
  int64_t outputs = isGlu(gemm.epilogue) ? width / 2 : width;
  int64_t depth = bType.getDimSize(gemm.transposeB ? 2 : 1);
  if (stagesStores(gemm, outputs, depth)) {
    StageLayout staged{layout.bn, layout.stages, /*staged=*/true};
    if (staged.sharedBytes(bType.getDimSize(0)) <= kMaxSharedBytes)
      return staged;
  }
  return layout;
}
/// 16-byte chunks of A per producer thread and stage.
constexpr int64_t kCopiesA = kBM * (kBK / 8) / kWarpgroup;

/// The sm_90a kernel under construction, one step a method: the host's
/// tensor map, the shared memory and its mbarriers, the persistent tile
/// loop, the producer's and the consumers' loops over k tiles.
struct WarpgroupKernel {
  const TensorCoreGemm &op;
  LoopBuilder &lb;
  ImplicitLocOpBuilder &b;
  Ix ix;
  Type element;
  int64_t depth, width, outputs;
  bool glu;
  /// b is [E, N, K]: K-major, wgmma's own B layout.
  bool kMajorB;
  /// Experts of b, and the first and last + 1 of this launch's range.
  int64_t experts;
  Value first, last;
  /// CTAs of a cluster (op.clusterSize): a tile of the schedule is then
  /// `cluster` row tiles of one expert and column tile, one a CTA, and each
  /// CTA loads 1 / cluster of b's k tile into all of them (TMA multicast).
  int64_t cluster;
  // Set inside the launch.
  Value tid, map, expert, rowBegin, rows, base, n0;
  /// With staged stores (layout.staged): the tensor maps of c and of the
  /// saved pre-activation h (null without one).
  Value cMap, hMap;
  /// a's tensor map where a's rows are not gathered (loadsAByTma): thread 0
  /// loads a tile's rows by TMA, 128 rows of 64 k a box, rows past the
  /// expert's (the next expert's) included: they only make accumulator
  /// rows that no epilogue stores.
  Value aMap;
  /// Not where the epilogue is staged: measured on the H200 (2026-12-01),
  /// a by TMA made mixtral's long-K store GEMM (register stores) 5% faster
  /// and qwen3_30b_a3b's and olmoe's short-K staged store GEMMs 4-5%
  /// slower, where the SM's TMA unit also carries the staged stores.
  bool loadsAByTma() const { return !op.gather && !layout.staged; }
  /// The CTA's rank in its cluster (0 without clusters) and the first row
  /// of the cluster's tile (a row of the expert, whatever this CTA's own
  /// `rows`).
  Value rank, tileBegin;
  Value sharedBase;  ///< i64 shared-window address of the aligned base
  Value sharedElems; ///< memref<Nxelement, workgroup> over the stages

  /// The tile's width (BN) and the ring's depth.
  StageLayout layout;
  int64_t bn, stages;

  WarpgroupKernel(const TensorCoreGemm &op, LoopBuilder &lb)
      : op(op), lb(lb), b(lb.builder()), ix{b, lb}, layout(StageLayout::of(op)),
        bn(layout.bn), stages(layout.stages) {
    auto bType = cast<MemRefType>(op.b.getType());
    element = bType.getElementType();
    kMajorB = op.transposeB;
    depth = bType.getDimSize(kMajorB ? 2 : 1);
    width = bType.getDimSize(kMajorB ? 1 : 2);
    glu = isGlu(op.epilogue);
    outputs = glu ? width / 2 : width;
    experts = bType.getDimSize(0);
    first = op.firstExpert ? op.firstExpert : ix.c(0);
    last = op.lastExpert ? op.lastExpert : ix.c(experts);
    cluster = op.clusterSize;
  }

  Value i32(Value index) {
    return arith::IndexCastOp::create(b, b.getI32Type(), index);
  }
  Value i64(Value index) {
    return arith::IndexCastOp::create(b, b.getI64Type(), index);
  }
  /// An !llvm.ptr<3> to `offset` bytes past the aligned base.
  Value sharedPointer(Value offset) {
    Value address = arith::AddIOp::create(b, sharedBase, i64(offset));
    return LLVM::IntToPtrOp::create(
        b, LLVM::LLVMPointerType::get(b.getContext(), 3), address);
  }
  Value fullBarrier(Value stage) {
    return sharedPointer(ix.add(ix.mul(stage, 8), layout.barrierOffset()));
  }
  Value emptyBarrier(Value stage) {
    return sharedPointer(
        ix.add(ix.mul(stage, 8), layout.barrierOffset() + 8 * stages));
  }
  /// The tile table's entry j (relative to `first`): the expert's first row
  /// (rowStart) or the row tiles of the experts before it (tileStart).
  Value rowStartSlot(Value j) {
    return sharedPointer(ix.add(ix.mul(j, 4), layout.tableOffset()));
  }
  Value tileStartSlot(Value j) {
    return sharedPointer(
        ix.add(ix.mul(j, 4), layout.tableOffset() + 4 * (experts + 1)));
  }
  Value loadSlot(Value slot) {
    return asIndex(b, LLVM::LoadOp::create(b, b.getI32Type(), slot));
  }
  void storeSlot(Value value, Value slot) {
    LLVM::StoreOp::create(b, i32(value), slot);
  }
  /// Waits until the barrier's phase of parity `parity` has completed (the
  /// op loops on try_wait; 10 ms is the suspend-time hint of each try).
  void waitParity(Value barrier, Value parity) {
    NVVM::MBarrierTryWaitParityOp::create(b, barrier, i32(parity),
                                          lb.i32(10'000'000));
  }

  Value createTensorMap();
  RowTile scheduleFromTable(Value tile);
  void enterTile(Value tileExpert, Value tileRowBegin, Value rowEnd,
                 Value columnTile);
  void alignSharedMemory();
  void initBarriers();
  void buildTileTable();
  void forEachTile(Value rowTiles, Value columnTiles, Value numK,
                   function_ref<void(Value)> body);
  void produce(Value numK, Value it);
  void loadB(Value stage, Value stageOffset, Value k0, int64_t moreBytes = 0);
  void loadA(Value stage, Value stageOffset, Value k0);
  SmallVector<Value> consume(Value numK, Value it, Value group);
  StagedStores stagedStores(Value group) {
    return {b,
            ix,
            lb,
            sharedBase,
            ix.add(ix.mul(group, StagedStores::kBytes), layout.stagingOffset()),
            ix.rem(tid, kWarpgroup),
            group};
  }
  void storeStaged(ArrayRef<Value> acc, Value group);
  void createTensorMaps();
  void enterLaunch(Value grid);
  void emitRoles(function_ref<void(Value)> produceTiles,
                 function_ref<void(Value, Value, Value, Value)> consumeTiles);
  void consumeTile(Value numK, Value it, Value group, Value warp, Value lane);
  void cloneTileLoop(scf::ForallOp forall, Value numK,
                     function_ref<void(GroupedMatmulTileOp)> lowerTile);
  Value descriptor(Value byteOffset, int64_t leading, int64_t stride);
  Value kMajorDescriptor(Value rowsOffset, int64_t kk);
  Value descriptorB(Value stageOffset, int64_t kk);
};

/// b's tensor map (on the host), as an !llvm.ptr, into 128B-swizzled shared
/// memory: [E, K, N] read in boxes of [1, BK, 64], or a transposed b
/// [E, N, K] in boxes of [1, BN, BK] (a box side may be 256); boxes past K
/// or N are zero-filled.
Value WarpgroupKernel::createTensorMap() {
  SmallVector<int64_t, 3> boxShape{1, kBK, kChunkColumns};
  if (kMajorB)
    boxShape = {1, bn / cluster, kBK};
  return createSwizzledTensorMap(b, ix, op.b, boxShape,
                                 nvgpu::TensorMapL2PromoKind::L2PROMO_256B);
}

/// moek.row_tile from the tile table: row tile `tile` of the launch's
/// experts in order, whose rows are cluster x BM (a cluster's tile): its
/// expert, first row and the expert's end (past the last tile, the first
/// row is at or past the end). The expert is the last table entry e with
/// tileStart[e] <= tile (tileStart[0] = 0 and the sums never fall, so the
/// search's invariant tileStart[lo] <= tile < tileStart[hi] holds); an
/// expert without rows has tileStart[e] = tileStart[e + 1] and is never it.
RowTile WarpgroupKernel::scheduleFromTable(Value tile) {
  Value n = ix.sub(last, first);
  Value lo = ix.c(0), hi = ix.add(n, 1);
  // ceil(log2(E + 1)) halvings reach hi = lo + 1 from any n <= E.
  int64_t steps = llvm::Log2_64_Ceil(uint64_t(experts + 1));
  for (int64_t i = 0; i < steps; ++i) {
    Value mid = ix.div(ix.add(lo, hi), 2);
    Value open = ix.ult(ix.add(lo, 1), hi);
    Value atMid = loadSlot(tileStartSlot(mid));
    Value below =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ule, atMid, tile);
    Value above =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, atMid, tile);
    lo = ix.select(ix.both(open, below), mid, lo);
    hi = ix.select(ix.both(open, above), mid, hi);
  }
  // lo = n: past the last tile; its first row comes out at or past the end.
  Value next = arith::MinUIOp::create(b, ix.add(lo, 1), n);
  Value rowEnd = loadSlot(rowStartSlot(next));
  Value begin =
      ix.add(loadSlot(rowStartSlot(lo)),
             ix.mul(ix.sub(tile, loadSlot(tileStartSlot(lo))), cluster * kBM));
  return {ix.add(first, lo), begin, rowEnd};
}

/// moek.grouped_matmul_tile's part of the schedule: this CTA's rows
/// [tileRowBegin, min(tileRowBegin + BM, rowEnd)) of `tileExpert` (rows <=
/// 0 for a CTA of a cluster past its expert's rows) and column tile
/// `columnTile`: sets expert, rowBegin, rows, tileBegin (the cluster's first
/// row), base and n0.
void WarpgroupKernel::enterTile(Value tileExpert, Value tileRowBegin,
                                Value rowEnd, Value columnTile) {
  expert = tileExpert;
  rowBegin = tileRowBegin;
  tileBegin = cluster > 1 ? ix.sub(rowBegin, ix.mul(rank, kBM)) : rowBegin;
  rows = arith::MinSIOp::create(b, arith::SubIOp::create(b, rowEnd, rowBegin),
                                ix.c(kBM));
  base = loadSlot(rowStartSlot(ix.c(0)));
  n0 = ix.mul(columnTile, glu ? bn / 2 : bn);
}

/// Aligns the dynamic shared memory to 1024 bytes (sharedBase) and views the
/// stages as elements (sharedElems) for the cp.async copies.
void WarpgroupKernel::alignSharedMemory() {
  AlignedSharedMemory shared =
      alignDynamicSharedMemory(b, ix, element, layout.barrierOffset() / 2);
  sharedBase = shared.base;
  sharedElems = shared.elements;
}

/// full[s]: the producer's 128 cp.async arrivals and thread 0's
/// arrive.expect_tx for the TMA bytes (all of the stage's B, whichever CTA
/// of the cluster loads it); empty[s]: every consumer thread, or in a
/// cluster every consumer warp of every CTA (a CTA's TMA writes the stage
/// in all of them).
void WarpgroupKernel::initBarriers() {
  int64_t releases =
      cluster > 1 ? cluster * 2 * (kWarpgroup / 32) : 2 * kWarpgroup;
  lb.ifThen(ix.ult(tid, 1), [&] {
    for (int64_t s = 0; s < stages; ++s) {
      // Thread 0's arrive.expect_tx, and with a gathered a every producer
      // thread's cp.async arrival.
      int64_t arrivals = loadsAByTma() ? 1 : kWarpgroup + 1;
      NVVM::MBarrierInitOp::create(b, fullBarrier(ix.c(s)), lb.i32(arrivals),
                                   Value());
      NVVM::MBarrierInitOp::create(b, emptyBarrier(ix.c(s)), lb.i32(releases),
                                   Value());
    }
    if (cluster > 1)
      NVVM::FenceMbarrierInitOp::create(b);
  });
  gpu::BarrierOp::create(b);
  // No CTA's multicast or remote arrival may reach a barrier of another
  // before that one is initialized.
  if (cluster > 1)
    syncCluster(b);
}

/// The tile table (every thread; ends with a barrier): rowStart[j] =
/// offsets[first + j] for j <= last - first, copied by all threads, then
/// tileStart[j] = the row tiles of experts first .. first + j - 1, summed by
/// thread 0 over shared memory (E steps once per CTA, where scanning the
/// offsets per tile took E global loads for every tile).
void WarpgroupKernel::buildTileTable() {
  Value n = ix.sub(last, first);
  if (op.offsets) {
    Value copies = ix.ceilDiv(ix.add(n, 1), kThreads);
    lb.forLoop(ix.c(0), copies, [&](Value i) {
      Value j = ix.add(tid, ix.mul(i, kThreads));
      lb.ifThen(ix.ult(j, ix.add(n, 1)), [&] {
        Value row =
            memref::LoadOp::create(b, op.offsets, ValueRange{ix.add(first, j)});
        storeSlot(asIndex(b, row), rowStartSlot(j));
      });
    });
  } else {
    // A plain GEMM (no offsets): one group of all of a's rows.
    lb.ifThen(ix.ult(tid, 1), [&] {
      storeSlot(ix.c(0), rowStartSlot(ix.c(0)));
      storeSlot(lb.dim(op.a, 0), rowStartSlot(ix.c(1)));
    });
  }
  gpu::BarrierOp::create(b);
  lb.ifThen(ix.ult(tid, 1), [&] {
    Value zero = ix.c(0);
    storeSlot(zero, tileStartSlot(zero));
    lb.forLoopCarrying(
        zero, n, ValueRange{zero, loadSlot(rowStartSlot(zero))},
        [&](Value j, ValueRange carried) -> SmallVector<Value> {
          Value end = loadSlot(rowStartSlot(ix.add(j, 1)));
          Value tiles = ix.add(
              carried[0], ix.ceilDiv(ix.sub(end, carried[1]), cluster * kBM));
          storeSlot(tiles, tileStartSlot(ix.add(j, 1)));
          return {tiles, end};
        });
  });
  gpu::BarrierOp::create(b);
}

/// The persistent tile loop of a plain GEMM (a grouped matmul's is
/// moek-tile-grouped-matmuls' loop, lowerWarpgroupTileLoop): this CTA's
/// tiles, blockIdx.x + i * gridDim.x in the banded order, those with rows
/// only; `body(it)` gets the count of k tiles before the tile.
void WarpgroupKernel::forEachTile(Value rowTiles, Value columnTiles,
                                  Value numK,
                                  function_ref<void(Value)> body) {
  Value tiles = arith::MulIOp::create(b, rowTiles, columnTiles);
  // A cluster's CTAs walk the same tiles.
  Value first = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value stride = gpu::GridDimOp::create(b, gpu::Dimension::x);
  if (cluster > 1) {
    first = ix.div(first, cluster);
    stride = ix.div(stride, cluster);
  }
  Value count = arith::CeilDivUIOp::create(b, ix.sub(tiles, first), stride);
  lb.forLoopCarrying(
      ix.c(0), count, ValueRange{ix.c(0)},
      [&](Value i, ValueRange carried) -> SmallVector<Value> {
        Value tile = ix.add(first, arith::MulIOp::create(b, i, stride));
        // Not structured bindings: the lambda below captures the column.
        std::pair<Value, Value> rowAndColumn =
            bandedTile(b, ix, tile, rowTiles, columnTiles,
                       kWarpgroupBandRowTiles / cluster);
        Value columnTile = rowAndColumn.second;
        RowTile scheduled = scheduleFromTable(rowAndColumn.first);
        Value hasRows = ix.ult(scheduled.rowBegin, scheduled.rowEnd);
        lb.ifThen(hasRows, [&] {
          enterTile(scheduled.expert,
                    cluster > 1 ? ix.add(scheduled.rowBegin, ix.mul(rank, kBM))
                                : scheduled.rowBegin,
                    scheduled.rowEnd, columnTile);
          body(carried[0]);
        });
        return {ix.select(hasRows, ix.add(carried[0], numK), carried[0])};
      });
}

/// The producer warpgroup's loop over the k tiles of one tile, the first
/// being the CTA's `it`-th.
void WarpgroupKernel::produce(Value numK, Value it) {
  // The producer's loop over the k tiles: each waits until its stage is
  // free, then `load(stage, stageOffset, k0)` fills it.
  auto forEachKTile = [&](function_ref<void(Value, Value, Value)> load) {
    lb.forLoop(ix.c(0), numK, [&](Value kt) {
      Value step = ix.add(it, kt);
      Value stage = ix.rem(step, stages), round = ix.div(step, stages);
      // Round r reuses the stage once the consumers finished round r - 1.
      lb.ifThen(ix.uge(step, ix.c(stages)), [&] {
        waitParity(emptyBarrier(stage), ix.rem(ix.add(round, 1), 2));
      });
      load(stage, ix.mul(stage, layout.stageBytes()), ix.mul(kt, kBK));
    });
  };
  if (loadsAByTma()) {
    // Thread 0 alone: a's and b's k tiles by TMA.
    lb.ifThen(ix.ult(tid, 1), [&] {
      forEachKTile([&](Value stage, Value stageOffset, Value k0) {
        loadB(stage, stageOffset, k0, /*moreBytes=*/kStageBytesA);
        loadA(stage, stageOffset, k0);
      });
    });
    return;
  }
  // Each thread's 16-byte chunks of A: row and chunk of the tile, source row.
  struct CopyA {
    Value row, chunk, source, valid;
  };
  SmallVector<CopyA> copies;
  for (int64_t i = 0; i < kCopiesA; ++i) {
    Value id = ix.add(tid, i * kWarpgroup);
    Value row = ix.div(id, kBK / 8), chunk = ix.rem(id, kBK / 8);
    Value valid =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, row, rows);
    // A masked row reads the cluster tile's first row, which exists (this
    // CTA's own rows may not, in a cluster).
    Value r = ix.select(valid, ix.add(rowBegin, row), tileBegin);
    Value source;
    if (op.gather) {
      Value owner =
          asIndex(b, memref::LoadOp::create(b, op.owners, ValueRange{r}));
      source = ix.div(owner, op.topK);
    } else {
      source = ix.sub(r, base);
    }
    copies.push_back({row, chunk, source, valid});
  }
  forEachKTile([&](Value stage, Value stageOffset, Value k0) {
    lb.ifThen(ix.ult(tid, 1), [&] { loadB(stage, stageOffset, k0); });
    // The gather: row r's chunk j lands at 128 r + 16 (j ^ (r % 8)).
    for (const CopyA &copy : copies) {
      Value k = ix.add(k0, ix.mul(copy.chunk, 8));
      Value ok = ix.both(copy.valid, ix.ult(k, ix.c(depth)));
      Value swizzled =
          arith::XOrIOp::create(b, copy.chunk, ix.rem(copy.row, 8));
      Value byte = ix.add(ix.add(stageOffset, ix.mul(copy.row, kRowBytes)),
                          ix.mul(swizzled, 16));
      nvgpu::DeviceAsyncCopyOp::create(
          b, sharedElems, ValueRange{ix.div(byte, 2)}, op.a,
          ValueRange{ix.select(ok, copy.source, 0), ix.select(ok, k, 0)},
          b.getIndexAttr(8), ix.select(ok, ix.c(8), 0), b.getUnitAttr());
    }
    NVVM::CpAsyncMBarrierArriveOp::create(b, fullBarrier(stage),
                                          /*noinc=*/true);
  });
}

/// Thread 0's part of a stage: the expected bytes of B on full[stage], then
/// B's k tile k0 by TMA, completing on the same mbarrier.
void WarpgroupKernel::loadB(Value stage, Value stageOffset, Value k0,
                            int64_t moreBytes) {
  NVVM::MBarrierArriveExpectTxOp::create(
      b, Type(), fullBarrier(stage), lb.i32(layout.stageBytesB() + moreBytes),
      NVVM::MemScopeKind::CTA, /*relaxed=*/false, Value());
  // In a cluster, into every CTA's stage (the same offsets there), each
  // completing on that CTA's full[stage].
  Value multicast;
  if (cluster > 1)
    multicast =
        arith::ConstantOp::create(b, b.getI16IntegerAttr((1 << cluster) - 1));
  // One box at `byteOffset` past the stage's B; coordinates innermost first.
  auto copy = [&](Value byteOffset, Value inner, Value outer) {
    // The CTA's own shared memory, addressed in the cluster's window
    // (address space 7), as the instruction's .shared::cluster form (PTX
    // 8.0) takes it.
    Value destination = LLVM::AddrSpaceCastOp::create(
        b, LLVM::LLVMPointerType::get(b.getContext(), 7),
        sharedPointer(ix.add(ix.add(stageOffset, kStageBytesA), byteOffset)));
    NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
        b, destination, map, ValueRange{i32(inner), i32(outer), i32(expert)},
        fullBarrier(stage), ValueRange{}, multicast, Value(),
        NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false, NVVM::CTAGroupKindAttr(),
        Value());
  };
  if (kMajorB) {
    // Rows n0 .. n0 + BN - 1 of b[e], k0 .. k0 + BK - 1 each; in a cluster,
    // the CTA of rank r loads the r-th of `cluster` slices of those rows.
    int64_t sliceRows = bn / cluster;
    copy(ix.mul(rank, sliceRows * kRowBytes), k0,
         ix.add(n0, ix.mul(rank, sliceRows)));
    return;
  }
  // The CTA of rank r loads chunks [r, r + 1) * chunksB / cluster.
  int64_t chunksB = bn / kChunkColumns, ownChunks = chunksB / cluster;
  for (int64_t i = 0; i < ownChunks; ++i) {
    Value j = ix.add(ix.mul(rank, ownChunks), i);
    // GLU: chunks [0, BN/128) are gate columns n0 + 64 j, the others the up
    // columns F + n0 + 64 (j - BN/128) that pair with them.
    Value column = ix.add(n0, ix.mul(j, kChunkColumns));
    if (glu) {
      Value up = ix.uge(j, ix.c(chunksB / 2));
      Value upColumn = ix.add(ix.add(n0, ix.mul(j, kChunkColumns)),
                              outputs - (chunksB / 2) * kChunkColumns);
      column = ix.select(up, upColumn, column);
    }
    copy(ix.mul(j, kChunkBytesB), column, k0);
  }
}

/// Thread 0, a not gathered: the tile's 128 rows of a, k0 .. k0 + 63, by TMA
/// into the stage's A (this CTA's own rows: no multicast), completing on
/// full[stage], whose expected bytes loadB counted. Rows past a's end and k
/// past K are zeros.
void WarpgroupKernel::loadA(Value stage, Value stageOffset, Value k0) {
  Value destination = LLVM::AddrSpaceCastOp::create(
      b, LLVM::LLVMPointerType::get(b.getContext(), 7),
      sharedPointer(stageOffset));
  NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
      b, destination, aMap, ValueRange{i32(k0), i32(ix.sub(rowBegin, base))},
      fullBarrier(stage), ValueRange{}, Value(), Value(),
      NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false, NVVM::CTAGroupKindAttr(),
      Value());
}

/// A wgmma shared-memory descriptor (wgmmaDescriptor) at `byteOffset` past
/// the aligned base.
Value WarpgroupKernel::descriptor(Value byteOffset, int64_t leading,
                                  int64_t stride) {
  return wgmmaDescriptor(b,
                         arith::AddIOp::create(b, sharedBase, i64(byteOffset)),
                         leading, stride);
}

/// The descriptor of a K-major operand (A; B when transposed) whose rows
/// start at `rowsOffset`, for its k16 step `kk`: the next 16 k are 32 bytes
/// further (within the swizzled row); 8-row groups are 1024 bytes apart.
Value WarpgroupKernel::kMajorDescriptor(Value rowsOffset, int64_t kk) {
  return descriptor(ix.add(rowsOffset, kk * 32), /*leading=*/16,
                    /*stride=*/1024);
}

/// B's descriptor for the k16 step `kk` of the stage at `stageOffset`.
Value WarpgroupKernel::descriptorB(Value stageOffset, int64_t kk) {
  Value stageB = ix.add(stageOffset, kStageBytesA);
  if (kMajorB)
    return kMajorDescriptor(stageB, kk);
  // N-major: the next 16 rows of k are 2048 bytes further; 64-column chunks
  // are kChunkBytesB apart (leading), 8-row groups 1024 (stride).
  return descriptor(ix.add(stageB, kk * 16 * kRowBytes),
                    /*leading=*/kChunkBytesB, /*stride=*/1024);
}

/// A consumer warpgroup's loop over the k tiles of one tile, the first being
/// the CTA's `it`-th: returns its 128 accumulators.
SmallVector<Value> WarpgroupKernel::consume(Value numK, Value it, Value group) {
  MLIRContext *context = b.getContext();
  int64_t accumulators = bn / 2;
  Type accumulatorType = wgmmaAccumulatorType(context, bn);
  Value init = LLVM::PoisonOp::create(b, accumulatorType);
  for (int64_t i = 0; i < accumulators; ++i)
    init =
        LLVM::InsertValueOp::create(b, init, lb.f32(0.0), ArrayRef<int64_t>{i});
  // wgmma's B is K x N: col is K-major (as stored), row N-major (read
  // transposed).
  NVVM::MMALayout layoutB =
      kMajorB ? NVVM::MMALayout::col : NVVM::MMALayout::row;
  auto release = [&](Value stage) {
    releaseStage(b, lb, ix, tid, emptyBarrier(stage), cluster);
  };
  Value rowsOffset = ix.mul(group, 64 * kRowBytes);
  Value result =
      lb.forLoopCarrying(
            ix.c(0), numK, ValueRange{init},
            [&](Value kt, ValueRange carried) -> SmallVector<Value> {
              Value step = ix.add(it, kt);
              Value stage = ix.rem(step, stages);
              waitParity(fullBarrier(stage), ix.rem(ix.div(step, stages), 2));
              // A arrived through cp.async (generic proxy); wgmma reads
              // through the async proxy.
              NVVM::FenceProxyOp::create(
                  b, NVVM::ProxyKind::async_shared,
                  NVVM::SharedSpaceAttr::get(context,
                                             NVVM::SharedSpace::shared_cta));
              NVVM::WgmmaFenceAlignedOp::create(b);
              Value acc = carried[0];
              Value stageOffset = ix.mul(stage, layout.stageBytes());
              for (int64_t kk = 0; kk < kBK / 16; ++kk) {
                Value descA =
                    kMajorDescriptor(ix.add(stageOffset, rowsOffset), kk);
                Value descB = descriptorB(stageOffset, kk);
                acc = wgmmaMultiply(b, acc, descA, descB, bn, element,
                                    NVVM::MMALayout::row, layoutB);
              }
              NVVM::WgmmaGroupSyncAlignedOp::create(b);
              // The previous k tile's wgmmas are done (this one's may run
              // on): its stage goes back to the producer.
              NVVM::WgmmaWaitGroupSyncOp::create(b, 1);
              lb.ifThen(ix.uge(kt, ix.c(1)), [&] {
                release(ix.rem(ix.add(step, stages - 1), stages));
              });
              return {acc};
            })
          .front();
  NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
  release(ix.rem(ix.add(ix.add(it, numK), stages - 1), stages));
  SmallVector<Value> acc;
  for (int64_t i = 0; i < accumulators; ++i)
    acc.push_back(
        LLVM::ExtractValueOp::create(b, result, ArrayRef<int64_t>{i}));
  return acc;
}

/// The staged epilogue (StagedStores): a store tile is two rounds of 128
/// columns (a round wholly past N is skipped), a GLU tile one round of its
/// 128 activations and, with h, one of the gate and one of the up columns.
/// A warpgroup whose 64 rows are all the expert's has TMA store the rounds
/// while it goes on; in an expert's last tile, where a box would run into
/// the next expert's rows, the warpgroup copies its rows out itself.
/// Accumulator 4 nj + 2 h + p of a lane is fragment nj (8 columns), row
/// half h, column p, as emitAccumulatorEpilogue reads them.
void WarpgroupKernel::storeStaged(ArrayRef<Value> acc, Value group) {
  StagedStores staged = stagedStores(group);
  Type cElement = cast<MemRefType>(op.c.getType()).getElementType();
  // The warpgroup's first row, as c's and h's row (c's row 0 is `base`).
  Value row = ix.sub(ix.add(rowBegin, ix.mul(group, 64)), base);
  Value groupRows = ix.sub(rows, ix.mul(group, 64));
  Value allRows =
      arith::CmpIOp::create(b, arith::CmpIPredicate::sge, groupRows, ix.c(64));
  auto pair = [&](Type element, int64_t fragment, int64_t h) {
    int64_t at = fragment * 4 + h * 2;
    return packPair(b, element, acc[at], acc[at + 1]);
  };
  auto round = [&](Value buffer, Value map, int64_t rowLength, Value columns,
                   Value columnLimit,
                   function_ref<Value(int64_t, int64_t)> word) {
    staged.round(word, [&] {
      auto branch = scf::IfOp::create(b, allRows, /*withElseRegion=*/true);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&branch.getThenRegion().front());
      staged.storeBoxes([&](int64_t box, Value source) {
        staged.storeBox(map, source,
                        {ix.add(columns, box * kChunkColumns), row});
      });
      b.setInsertionPointToStart(&branch.getElseRegion().front());
      // A warpgroup past the expert's rows (groupRows <= 0) copies none.
      staged.copyOut(memref::ExtractAlignedPointerAsIndexOp::create(b, buffer),
                     rowLength, row, groupRows, columns, columnLimit);
    });
  };
  if (!glu) {
    for (int64_t half = 0; half < 2; ++half) {
      Value columns = ix.add(n0, half * 128);
      lb.ifThen(ix.ult(columns, ix.c(outputs)), [&] {
        round(op.c, cMap, outputs, columns, ix.c(outputs),
              [&](int64_t f, int64_t h) {
                return pair(cElement, half * 16 + f, h);
              });
      });
    }
    return;
  }
  // GLU: fragments [0, 16) are the gate columns n0 + 8 f, [16, 32) the up
  // columns F + n0 + 8 f that pair with them.
  bool gelu = op.epilogue == Epilogue::gelu_glu;
  round(op.c, cMap, outputs, n0, ix.c(outputs), [&](int64_t f, int64_t h) {
    SmallVector<Value, 2> values;
    for (int64_t p = 0; p < 2; ++p)
      values.push_back(
          arith::MulFOp::create(b, activate(lb, acc[f * 4 + h * 2 + p], gelu),
                                acc[(f + 16) * 4 + h * 2 + p]));
    return packPair(b, cElement, values[0], values[1]);
  });
  if (!hMap)
    return;
  Type hElement = cast<MemRefType>(op.preActivation.getType()).getElementType();
  for (int64_t part = 0; part < 2; ++part)
    round(
        op.preActivation, hMap, width, ix.add(n0, part * outputs), ix.c(width),
        [&](int64_t f, int64_t h) { return pair(hElement, part * 16 + f, h); });
}

/// The host's part of the kernel: the tensor maps.
void WarpgroupKernel::createTensorMaps() {
  map = createTensorMap();
  if (loadsAByTma())
    aMap = createSwizzledTensorMap(b, ix, op.a, {kBM, kChunkColumns},
                                   nvgpu::TensorMapL2PromoKind::L2PROMO_256B);
  if (layout.staged) {
    cMap = createSwizzledTensorMap(b, ix, op.c, {64, kChunkColumns});
    if (glu && op.preActivation)
      hMap =
          createSwizzledTensorMap(b, ix, op.preActivation, {64, kChunkColumns});
  }
}

/// The persistent launch of `grid` CTAs (in clusters) and what every CTA
/// does before its roles part: the shared memory, its mbarriers and the tile
/// table. Leaves the builder in the launch body.
void WarpgroupKernel::enterLaunch(Value grid) {
  auto launch = launchPersistentGrid(
      b, ix, grid, kThreads, lb.i32(layout.sharedBytes(experts)), cluster);
  enterLaunchBody(b, launch);
  tid = launch.getThreadIds().x;
  rank = cluster > 1
             ? Value(gpu::ClusterBlockIdOp::create(b, gpu::Dimension::x))
             : ix.c(0);
  alignSharedMemory();
  initBarriers();
  buildTileTable();
}

/// The warpgroups' roles (emitWarpgroupRoles): `produceTiles(numK)` emits
/// the producer's walk over the tiles, `consumeTiles(numK, group, warp,
/// lane)` each consumer's, then its staged stores are drained.
void WarpgroupKernel::emitRoles(
    function_ref<void(Value)> produceTiles,
    function_ref<void(Value, Value, Value, Value)> consumeTiles) {
  Value numK = ix.c((depth + kBK - 1) / kBK);
  emitWarpgroupRoles(
      b, ix, tid, cluster, [&] { produceTiles(numK); },
      [&](Value group) {
        Value local = ix.rem(tid, kWarpgroup);
        consumeTiles(numK, group, ix.div(local, 32), ix.rem(local, 32));
        if (layout.staged)
          stagedStores(group).finish();
      });
}

/// A consumer warpgroup's part of the tile entered last (enterTile), the
/// CTA's k tiles before it being `it`: the k loop, then the epilogue.
void WarpgroupKernel::consumeTile(Value numK, Value it, Value group, Value warp,
                                  Value lane) {
  SmallVector<Value> acc = consume(numK, it, group);
  if (layout.staged)
    return storeStaged(acc, group);
  Value zero = ix.c(0);
  FragmentTile frame{rowBegin,
                     rows,
                     base,
                     n0,
                     lane,
                     ix.add(ix.mul(group, 64), ix.mul(warp, 16)),
                     /*warpColumn=*/zero,
                     /*fragsM=*/1,
                     /*fragsN=*/bn / 8,
                     /*quadStores=*/true};
  // In a cluster, a CTA past its expert's rows stores nothing.
  if (cluster == 1)
    return emitAccumulatorEpilogue(op, lb, frame, acc);
  lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, rows, zero),
            [&] { emitAccumulatorEpilogue(op, lb, frame, acc); });
}

/// Clones the body of `forall` (moek-tile-grouped-matmuls' persistent loop)
/// where the builder is, its CTA being blockIdx.x, and lowers the clone's
/// moek.row_tile from the tile table and its moek.grouped_matmul_tile by
/// `lowerTile(tile)` after enterTile; the tile's result (the k tiles
/// after it) is k_tiles_before + numK.
void WarpgroupKernel::cloneTileLoop(
    scf::ForallOp forall, Value numK,
    function_ref<void(GroupedMatmulTileOp)> lowerTile) {
  IRMapping mapping;
  mapping.map(forall.getInductionVar(0),
              gpu::BlockIdOp::create(b, gpu::Dimension::x));
  SmallVector<Operation *> clones;
  for (Operation &op : forall.getBody()->without_terminator())
    clones.push_back(b.clone(op, mapping));
  SmallVector<Operation *> stages;
  for (Operation *clone : clones)
    clone->walk([&](Operation *op) {
      if (isa<RowTileOp, GroupedMatmulTileOp>(op))
        stages.push_back(op);
    });
  OpBuilder::InsertionGuard guard(b);
  for (Operation *stage : stages) {
    b.setInsertionPoint(stage);
    if (auto schedule = dyn_cast<RowTileOp>(stage)) {
      RowTile hit = scheduleFromTable(schedule.getTile());
      stage->replaceAllUsesWith(
          ValueRange{hit.expert, hit.rowBegin, hit.rowEnd});
    } else {
      auto tile = cast<GroupedMatmulTileOp>(stage);
      enterTile(tile.getExpert(), tile.getRowBegin(), tile.getGroupEnd(),
                tile.getColumnTile());
      lowerTile(tile);
      tile.getKTilesAfter().replaceAllUsesWith(
          ix.add(tile.getKTilesBefore(), numK));
    }
    stage->erase();
  }
}

/// Whether `count` is the k-tile count of a persistent loop: an scf.for's
/// iteration argument that starts at 0 (the producer and the consumers
/// count the same tiles; from elsewhere they could not agree on the ring).
bool isZeroCounter(Value count) {
  auto argument = dyn_cast<BlockArgument>(count);
  auto loop = argument
                  ? dyn_cast<scf::ForOp>(argument.getOwner()->getParentOp())
                  : scf::ForOp();
  if (!loop || argument.getArgNumber() == 0)
    return false;
  Value init = loop.getInitArgs()[argument.getArgNumber() - 1];
  return matchPattern(init, m_Zero());
}

} // namespace

bool mlir::moek::canLowerToWarpgroupMma(const TensorCoreGemm &gemm,
                                        MLIRContext *context,
                                        std::string *why) {
  auto fail = [&](const Twine &reason) {
    if (why)
      *why = reason.str();
    return false;
  };
  if (!canLowerToTensorCores(gemm, context, why))
    return false;
  // Without offsets (a plain GEMM: the router's scores, a block's
  // projections) the tile table is one group of all of a's rows.
  if (!gemm.offsets && (gemm.gather || gemm.owners || gemm.weights))
    return fail("a gather or scatter needs the groups' offsets");
  auto bType = cast<MemRefType>(gemm.b.getType());
  // The tensor map's strides are multiples of 16 bytes: b's last dimension
  // (N, or K when b is transposed) is a multiple of 8 elements.
  if (bType.getDimSize(2) % 8 != 0)
    return fail(gemm.transposeB ? "K is not a multiple of 8"
                                : "N is not a multiple of 8");
  if (isGlu(gemm.epilogue) && (bType.getDimSize(2) / 2) % 8 != 0)
    return fail("F is not a multiple of 8");
  // A plain GEMM as narrow as mixtral's scores (N = 8) would read b in
  // boxes wider than b itself; it keeps mma.sync.
  if (!gemm.offsets && !gemm.transposeB && bType.getDimSize(2) % kChunkColumns)
    return fail("a plain GEMM's N is not a multiple of 64");
  if (StageLayout::of(gemm).sharedBytes(bType.getDimSize(0)) > kMaxSharedBytes)
    return fail("too many experts for the tile table in shared memory");
  return true;
}

TensorCoreTile mlir::moek::warpgroupTile() {
  TensorCoreTile tile;
  tile.bm = kBM;
  tile.bn = 256;
  tile.bk = kBK;
  tile.stages = 4;
  tile.warpsM = kBM / 16;
  tile.warpsN = 1;
  return tile;
}

/// The order: bands of `bandRowTiles` row tiles, each walked column tile by
/// column tile with its row tiles fastest, so that the CTAs running at once
/// (a wave: a band's rows times a few columns) share both the band's a rows
/// and those columns' b panels. Column-first alone re-reads an expert's
/// whole b for each of its row tiles (mixtral: 235 MB, four times the L2, 16
/// times); row-first re-reads all of a for every column.
std::pair<Value, Value> mlir::moek::bandedTile(ImplicitLocOpBuilder &b, Ix &ix,
                                               Value tile, Value rowTiles,
                                               Value columnTiles,
                                               int64_t bandRowTiles) {
  Value bandTiles = ix.mul(columnTiles, bandRowTiles);
  Value band = arith::DivUIOp::create(b, tile, bandTiles);
  Value inBand = arith::RemUIOp::create(b, tile, bandTiles);
  // The last band may hold fewer row tiles.
  Value bandRow = ix.mul(band, bandRowTiles);
  Value bandRows = ix.minu(ix.sub(rowTiles, bandRow), bandRowTiles);
  return {ix.add(bandRow, arith::RemUIOp::create(b, inBand, bandRows)),
          arith::DivUIOp::create(b, inBand, bandRows)};
}

LogicalResult mlir::moek::lowerWarpgroupTileLoop(scf::ForallOp forall,
                                                 GroupedMatmulTileOp tile,
                                                 TensorCoreGemm gemm,
                                                 LoopBuilder &lb) {
  MLIRContext *context = forall.getContext();
  std::string why;
  gemm.clusterSize = tile.getClusterSize();
  if (!canLowerToWarpgroupMma(gemm, context, &why))
    return tile.emitOpError() << "cannot run on the sm_90a kernel: " << why;
  if (tile.getTile() != ArrayRef<int64_t>(warpgroupTile().shape()))
    return tile.emitOpError()
           << "has a tile the sm_90a kernel cannot run: it computes 128 x 256 "
              "tiles 64 deep in 4 stages with 8 warps of 16 rows (shape [128, "
              "256, 64, 4, 8, 1])";
  if (gemm.clusterSize > 2)
    return tile.emitOpError() << "has cluster_size " << gemm.clusterSize
                              << "; the sm_90a kernel pairs at most 2 CTAs";
  if (forall.getRank() != 1 || !forall.isNormalized())
    return forall.emitOpError()
           << "is a persistent tile loop the sm_90a kernel cannot lower: it "
              "takes one dimension (the CTAs) from 0 in steps of 1";
  // The producer and the consumers each run the loop: nothing in it may
  // write memory but the tile, and every schedule must be the tile's.
  WalkResult walk = forall.getBody()->walk([&](Operation *op) {
    if (auto schedule = dyn_cast<RowTileOp>(op)) {
      if (schedule.getOffsets() != gemm.offsets ||
          schedule.getFirstExpert() != gemm.firstExpert ||
          schedule.getLastExpert() != gemm.lastExpert ||
          int64_t(schedule.getRowsPerTile()) != gemm.clusterSize * kBM) {
        schedule.emitOpError()
            << "is not the schedule of its loop's tile: the sm_90a kernel "
               "looks row tiles up in a table of the tile's offsets and "
               "experts, "
            << gemm.clusterSize * kBM << " rows (cluster_size x 128) a tile";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    }
    if (isa<GroupedMatmulTileOp>(op) ||
        op->hasTrait<OpTrait::HasRecursiveMemoryEffects>() ||
        isMemoryEffectFree(op))
      return WalkResult::advance();
    op->emitOpError() << "has memory effects inside an sm_90a tile loop, "
                         "whose producer and consumer warpgroups each run "
                         "the loop";
    return WalkResult::interrupt();
  });
  if (walk.wasInterrupted())
    return failure();
  if (!tile.getKTilesBefore() || !isZeroCounter(tile.getKTilesBefore()))
    return tile.emitOpError()
           << "needs k_tiles, the k tiles its CTA computed before it, carried "
              "by the persistent loop from 0 (moek-tile-grouped-matmuls' "
              "loop)";

  WarpgroupKernel k(gemm, lb);
  ImplicitLocOpBuilder &b = k.b;
  k.createTensorMaps();
  Value grid = getValueOrCreateConstantIndexOp(
      b, b.getLoc(), forall.getMixedUpperBound().front());
  OpBuilder::InsertionGuard guard(b);
  k.enterLaunch(grid);
  k.emitRoles(
      [&](Value numK) {
        k.cloneTileLoop(forall, numK, [&](GroupedMatmulTileOp t) {
          k.produce(numK, t.getKTilesBefore());
        });
      },
      [&](Value numK, Value group, Value warp, Value lane) {
        k.cloneTileLoop(forall, numK, [&](GroupedMatmulTileOp t) {
          k.consumeTile(numK, t.getKTilesBefore(), group, warp, lane);
        });
      });
  return success();
}

WarpgroupGrid mlir::moek::warpgroupGrid(const TensorCoreGemm &gemm,
                                        LoopBuilder &lb) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  auto bType = cast<MemRefType>(gemm.b.getType());
  int64_t width = bType.getDimSize(gemm.transposeB ? 1 : 2);
  bool glu = isGlu(gemm.epilogue);
  int64_t outputs = glu ? width / 2 : width, bn = StageLayout::of(gemm).bn;
  int64_t tileOutputs = glu ? bn / 2 : bn, cluster = gemm.clusterSize;
  Value zero = ix.c(0);
  Value first = gemm.firstExpert ? gemm.firstExpert : zero;
  Value last = gemm.lastExpert ? gemm.lastExpert : ix.c(bType.getDimSize(0));
  Value localRows = gemm.gather ? lb.dim(gemm.c, 0) : lb.dim(gemm.a, 0);
  Value span = arith::MaxSIOp::create(b, ix.sub(last, first), zero);
  WarpgroupGrid grid;
  grid.rowTiles = ix.add(ix.ceilDiv(localRows, cluster * kBM), span);
  grid.columnTiles = ix.c((outputs + tileOutputs - 1) / tileOutputs);
  grid.tiles = arith::MulIOp::create(b, grid.rowTiles, grid.columnTiles);
  Value clusters = arith::MaxUIOp::create(
      b, ix.minu(grid.tiles, gemm.multiprocessors / cluster), ix.c(1));
  grid.ctas = cluster > 1 ? ix.mul(clusters, cluster) : clusters;
  return grid;
}

void mlir::moek::lowerToWarpgroupMma(const TensorCoreGemm &op,
                                     LoopBuilder &lb) {
  WarpgroupKernel k(op, lb);
  ImplicitLocOpBuilder &b = k.b;

  // Host: the tensor maps and the grid.
  k.createTensorMaps();
  WarpgroupGrid grid = warpgroupGrid(op, lb);
  Value rowTiles = grid.rowTiles, columnTiles = grid.columnTiles;
  OpBuilder::InsertionGuard guard(b);
  k.enterLaunch(grid.ctas);
  k.emitRoles(
      [&](Value numK) {
        k.forEachTile(rowTiles, columnTiles, numK,
                      [&](Value it) { k.produce(numK, it); });
      },
      [&](Value numK, Value group, Value warp, Value lane) {
        k.forEachTile(rowTiles, columnTiles, numK, [&](Value it) {
          k.consumeTile(numK, it, group, warp, lane);
        });
      });
}
