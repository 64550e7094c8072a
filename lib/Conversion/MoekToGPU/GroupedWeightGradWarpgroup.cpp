//===- GroupedWeightGradWarpgroup.cpp - sm_90a varlen-K weight GEMMs ------===//
//
// moek.grouped_weight_grad, dw[e] = sum over expert e's rows r of
// L(r)^T (x) R(r), on Hopper's warpgroup tensor cores, as one gpu.launch of
// 128 x 256 output tiles (BM x BN) reduced over the expert's rows 64 at a
// time (BK), kStages stages on an mbarrier ring:
//
//   grid:  persistent, min(tiles, SMs) CTAs; CTA c takes tiles c, c + grid,
//          ...; tile = (expert e, columns [m0, m0 + 128) of L, columns
//          [n0, n0 + 256) of R), an expert's tiles consecutive (the CTAs
//          side by side read the same rows), the side with fewer column
//          tiles fastest; the tile count is static, the rows per expert
//          (the reduction) are read from the offsets on the device. `it`
//          counts the k tiles the CTA has gone through, over all its tiles:
//          stage s = it % S, round it / S (the phase).
//   CTA:   384 threads = producer warpgroup 0 + consumer warpgroups 1, 2
//   producer (setmaxnreg.dec 64), for every tile and k tile, each thread:
//     load the owners of its 4 rows (a gathered side reads token
//     owners[r] / top_k), then wait empty[s] (consumers done with round - 1)
//     cp.async its 16-byte chunks of those rows of L and R, zero-filled past
//       the expert's last row and past M or N, into the 128B-swizzled
//       stage; cp.async.mbarrier.arrive.noinc full[s]
//     where one side is gathered and the other not (mixtral's dw1: x
//       gathered, dh in expert order; dw2: act, and dy gathered), thread 0
//       loads the other side by TMA instead (arrive.expect_tx on full[s],
//       one 64-row box a chunk); an expert's last k tile is then the box
//       of its last 64 rows, the rows before k0 in it (counted already)
//       zeros on the gathered side, so no other expert's row enters the
//       sum; an expert of fewer than 64 rows keeps cp.async for both
//       (thread 0 arrives without bytes). See tmaSide.
//   pairs (op.clusterSize = 2, with a side by TMA): clusters of two CTAs
//     on the two tiles that share that side's columns (dw1: adjacent m
//     tiles, both reading dh[:, n0:]; dw2: adjacent n tiles, both reading
//     a[:, m0:]); each CTA loads half of the side's chunks by TMA multicast
//     into both, so it is read from L2 once for two tiles. A consumer
//     warp's lane 0 frees a stage in both CTAs (mapa + a remote arrive at
//     CTA scope, as the grouped GEMM's pairs), so empty[s] counts every
//     consumer warp of the pair; the CTAs meet (barrier.cluster) after the
//     barriers' init and before they exit. Both walk the same tiles, hence
//     the same expert and k tiles, and take the same path for a small
//     expert (where nothing is multicast).
//   consumers (setmaxnreg.inc 216), warpgroup g = rows 64 g .. 64 g + 63 of
//   the tile:
//     wait full[s]; fence.proxy.async (cp.async wrote through the generic
//     proxy, wgmma reads through the async proxy); 4 x wgmma m64n256k16 on
//     descriptors, A and B both read transposed; commit; wait until one
//     group is in flight, then arrive empty[previous s]
//   epilogue: the accumulators into dw[e] (narrowed to dw's type, 16 bytes
//     a lane for a 16-bit dw: emitQuadStores); an expert without rows runs
//     no k tile and stores zeros.
//
// Both operands arrive MN-major: row r of L is contiguous along M (A's
// rows), row r of R along N, and r is the reduction index K. So a stage
// holds, for A and then B, 64-column chunks of [64 rows of k][128 B of m or
// n] (the layout of the forward's N-major B), and wgmma reads both
// transposed (layout A = col, B = row: imm-trans-a = imm-trans-b = 1, which
// 16-bit operands from shared memory allow). In every 128-byte row,
// 16-byte chunk j is stored at j ^ (row % 8). Shared memory from a 1024-byte
// aligned base: 4 stages of (2 + 4) x 8 KiB, then the mbarriers.
//
// The grouped GEMM (GroupedMatmulWarpgroup.cpp) tiles an expert's rows with a
// fixed K and loads its weights by TMA; here the rows are K and neither
// operand is a weight: a TMA box cannot stop at an expert's last row, hence
// the last k tile's shifted box above. The ring, the roles and the
// descriptors are the same.
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
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

namespace {

constexpr int64_t kBM = 128, kBN = 256, kBK = 64, kStages = 4;
/// One swizzle atom's row: 64 16-bit columns, 128 bytes; a chunk is 64
/// columns by BK rows.
constexpr int64_t kChunkColumns = 64, kRowBytes = 128;
constexpr int64_t kChunkBytes = kBK * kRowBytes;
constexpr int64_t kChunksA = kBM / kChunkColumns,
                  kChunksB = kBN / kChunkColumns;
constexpr int64_t kStageBytesA = kChunksA * kChunkBytes;
constexpr int64_t kStageBytes = (kChunksA + kChunksB) * kChunkBytes;
/// A 16-bit dw leaves through shared memory: each consumer warpgroup stages
/// half of its 64 x 256 tile rows at a time (two TMA boxes of 64 rows x 64
/// columns, 128B-swizzled like the stages), which TMA stores while the
/// warpgroup goes on to the next tile.
constexpr int64_t kStagingOffset = kStages * kStageBytes;
constexpr int64_t kStagingBytes = StagedStores::kBytes; // a warpgroup's
constexpr int64_t kBarrierOffset = kStagingOffset + 2 * kStagingBytes;
/// Slack for aligning the base to 1024 bytes, then 2 x kStages mbarriers:
/// 1024 + 196608 + 32768 + 64 bytes, within the 227 KiB (232448) a block may
/// have.
constexpr int64_t kSharedBytes = 1024 + kBarrierOffset + 2 * kStages * 8;
static_assert(kSharedBytes <= 232448, "over the 227 KiB of a block");
/// 16-byte chunks per 128-byte row; a producer thread copies chunk
/// tid % 8 of rows tid / 8 + 16 j, j < kRowsPerThread, of every chunk.
constexpr int64_t kPieces = kRowBytes / 16;
constexpr int64_t kRowsPerThread = kBK * kPieces / kWarpgroup;

struct WeightGradWarpgroupKernel {
  const TensorCoreWeightGrad &op;
  LoopBuilder &lb;
  ImplicitLocOpBuilder &b;
  Ix ix;
  Type element, dwElement;
  int64_t outM, outN, mTiles, nTiles;
  // Set inside the launch, per tile.
  Value tid, first, expert, begin, end, base, m0, n0;
  Value sharedBase;  ///< i64 shared-window address of the aligned base
  Value sharedElems; ///< memref<Nxelement, workgroup> over the stages
  /// dw's tensor map (made on the host) when dw is 16-bit: the epilogue
  /// stores by TMA (storeByTma); else null, and it stores from registers.
  Value dwMap;
  /// The side loaded by TMA: the one not gathered when the other is (the
  /// gathered side's zeros keep a shifted box's extra rows out of the sum,
  /// so with neither gathered both stay on cp.async).
  enum class Side { None, Lhs, Rhs };
  Side tmaSide = Side::None;
  Value sideMap; ///< tmaSide's tensor map: boxes of 64 rows x 64 columns
  /// CTAs of a cluster (1 or 2), paired along m (dh by TMA) or along n (a
  /// by TMA); the schedule's units are then pairs of tiles on that axis.
  int64_t cluster = 1;
  bool pairAlongM = false;
  int64_t mUnits, nUnits;
  Value rank; ///< the CTA's rank in its cluster (0 without clusters)

  WeightGradWarpgroupKernel(const TensorCoreWeightGrad &op, LoopBuilder &lb)
      : op(op), lb(lb), b(lb.builder()), ix{b, lb} {
    element = cast<MemRefType>(op.lhs.getType()).getElementType();
    dwElement = cast<MemRefType>(op.dw.getType()).getElementType();
    outM = staticDim(op.dw, 1);
    outN = staticDim(op.dw, 2);
    mTiles = (outM + kBM - 1) / kBM;
    nTiles = (outN + kBN - 1) / kBN;
    if (op.gatherLhs != op.gatherRhs)
      tmaSide = op.gatherLhs ? Side::Rhs : Side::Lhs;
    // Pairs where the tiles sharing the side's columns come in twos (every
    // preset); else single CTAs.
    pairAlongM = tmaSide == Side::Rhs;
    if (op.clusterSize == 2 && tmaSide != Side::None &&
        (pairAlongM ? mTiles : nTiles) % 2 == 0)
      cluster = 2;
    mUnits = cluster > 1 && pairAlongM ? mTiles / 2 : mTiles;
    nUnits = cluster > 1 && !pairAlongM ? nTiles / 2 : nTiles;
  }

  Value i32(Value index) {
    return arith::IndexCastOp::create(b, b.getI32Type(), index);
  }
  Value i64(Value index) {
    return arith::IndexCastOp::create(b, b.getI64Type(), index);
  }
  Value rowOf(Value e) {
    return asIndex(b, memref::LoadOp::create(b, op.offsets, ValueRange{e}));
  }
  /// An !llvm.ptr<3> to `offset` bytes past the aligned base.
  Value sharedPointer(Value offset) {
    Value address = arith::AddIOp::create(b, sharedBase, i64(offset));
    return LLVM::IntToPtrOp::create(
        b, LLVM::LLVMPointerType::get(b.getContext(), 3), address);
  }
  Value fullBarrier(Value stage) {
    return sharedPointer(ix.add(ix.mul(stage, 8), kBarrierOffset));
  }
  Value emptyBarrier(Value stage) {
    return sharedPointer(
        ix.add(ix.mul(stage, 8), kBarrierOffset + 8 * kStages));
  }
  /// Waits until the barrier's phase of parity `parity` has completed (10 ms
  /// is the suspend-time hint of each try).
  void waitParity(Value barrier, Value parity) {
    NVVM::MBarrierTryWaitParityOp::create(b, barrier, i32(parity),
                                          lb.i32(10'000'000));
  }
  /// A consumer thread is done with `stage` (in a pair, freed in both
  /// CTAs: either may multicast into it).
  void release(Value stage) {
    releaseStage(b, lb, ix, tid, emptyBarrier(stage), cluster);
  }
  /// The descriptor of the 64-column chunk at `byteOffset` (MN-major): the
  /// next chunk along M or N is kChunkBytes further (leading), 8-row groups
  /// of k 1024 bytes (stride).
  Value descriptor(Value byteOffset) {
    return wgmmaDescriptor(
        b, arith::AddIOp::create(b, sharedBase, i64(byteOffset)),
        /*leading=*/kChunkBytes, /*stride=*/1024);
  }

  void alignSharedMemory();
  void initBarriers();
  void scheduleTile(Value tile);
  Value numK() { return ix.ceilDiv(ix.sub(end, begin), kBK); }
  void forEachTile(Value tiles, function_ref<void(Value)> body);
  void produce(Value it);
  void loadSideByTma(Value stage, Value stageOffset, Value rowStart);
  SmallVector<Value> consume(Value it, Value group);
  void store(ArrayRef<Value> acc, Value group);
  void storeByTma(ArrayRef<Value> acc, Value group);
  StagedStores stagedStores(Value group) {
    return {b,
            ix,
            lb,
            sharedBase,
            ix.add(ix.mul(group, kStagingBytes), kStagingOffset),
            ix.rem(tid, kWarpgroup),
            group};
  }
};

/// Aligns the dynamic shared memory to 1024 bytes (the swizzle repeats every
/// 1024 bytes and the descriptors assume it): sharedBase, and sharedElems
/// over the stages for the cp.async copies.
void WeightGradWarpgroupKernel::alignSharedMemory() {
  AlignedSharedMemory shared =
      alignDynamicSharedMemory(b, ix, element, kBarrierOffset / 2);
  sharedBase = shared.base;
  sharedElems = shared.elements;
}

/// full[s]: the producer threads' 128 cp.async arrivals, and with a side
/// by TMA thread 0's arrive (with all of the side's bytes, whichever CTA of
/// the pair loads them, or without for a small expert); empty[s]: every
/// consumer thread, or in a pair every consumer warp of both CTAs.
void WeightGradWarpgroupKernel::initBarriers() {
  int64_t arrivals = kWarpgroup + (tmaSide == Side::None ? 0 : 1);
  int64_t releases =
      cluster > 1 ? cluster * 2 * (kWarpgroup / 32) : 2 * kWarpgroup;
  lb.ifThen(ix.ult(tid, 1), [&] {
    for (int64_t s = 0; s < kStages; ++s) {
      NVVM::MBarrierInitOp::create(b, fullBarrier(ix.c(s)), lb.i32(arrivals),
                                   Value());
      NVVM::MBarrierInitOp::create(b, emptyBarrier(ix.c(s)), lb.i32(releases),
                                   Value());
    }
    if (cluster > 1)
      NVVM::FenceMbarrierInitOp::create(b);
  });
  gpu::BarrierOp::create(b);
  // No multicast or remote arrival may reach the other CTA's barriers
  // before they are initialized.
  if (cluster > 1)
    syncCluster(b);
}

/// Unit `tile` = (expert first + tile / (mUnits nUnits), column units of L
/// and R; a unit is a tile, or in a pair two on the paired axis): sets
/// expert, its rows [begin, end), base, m0 and n0. The side with fewer
/// column tiles varies fastest, so that the CTAs running at once cover all
/// of it and a few tiles of the other: the smaller side's columns stay in
/// L2 while the larger side's stream through once (mixtral's dw1: 32 tiles
/// of x's H beside 112 of dh's 2F). Tiles, not units, decide: olmoe's
/// weight gradients measured 2% slower in pairs when the halved unit count
/// flipped the order, and 2% faster with the order kept (H200, 01:43 UTC).
void WeightGradWarpgroupKernel::scheduleTile(Value tile) {
  Value perExpert = ix.c(mUnits * nUnits);
  expert = ix.add(first, arith::DivUIOp::create(b, tile, perExpert));
  Value within = arith::RemUIOp::create(b, tile, perExpert);
  Value mUnit, nUnit;
  if (mTiles <= nTiles) {
    mUnit = ix.rem(within, mUnits);
    nUnit = ix.div(within, mUnits);
  } else {
    mUnit = ix.div(within, nUnits);
    nUnit = ix.rem(within, nUnits);
  }
  // In a pair, the CTA of rank r takes tile 2 u + r of the paired axis.
  if (cluster > 1 && pairAlongM)
    mUnit = ix.add(ix.mul(mUnit, cluster), rank);
  else if (cluster > 1)
    nUnit = ix.add(ix.mul(nUnit, cluster), rank);
  m0 = ix.mul(mUnit, kBM);
  n0 = ix.mul(nUnit, kBN);
  begin = rowOf(expert);
  end = rowOf(ix.add(expert, 1));
  base = rowOf(first);
}

/// The persistent tile loop: this CTA's tiles, blockIdx.x + i * gridDim.x;
/// `body(it)` gets the count of k tiles before the tile (an expert without
/// rows adds none).
void WeightGradWarpgroupKernel::forEachTile(Value tiles,
                                            function_ref<void(Value)> body) {
  Value start = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value stride = gpu::GridDimOp::create(b, gpu::Dimension::x);
  // A pair's CTAs walk the same units (blocks 2 c and 2 c + 1 are cluster c).
  if (cluster > 1) {
    start = ix.div(start, cluster);
    stride = ix.div(stride, cluster);
  }
  Value count = arith::CeilDivUIOp::create(b, ix.sub(tiles, start), stride);
  lb.forLoopCarrying(ix.c(0), count, ValueRange{ix.c(0)},
                     [&](Value i, ValueRange carried) -> SmallVector<Value> {
                       scheduleTile(
                           ix.add(start, arith::MulIOp::create(b, i, stride)));
                       body(carried[0]);
                       return {ix.add(carried[0], numK())};
                     });
}

/// The producer warpgroup's loop over the k tiles of one tile, the first
/// being the CTA's `it`-th.
void WeightGradWarpgroupKernel::produce(Value it) {
  // The columns this thread copies: chunk c of A (B) is columns m0 + 64 c
  // (n0 + 64 c) on; piece tid % 8 is 8 of them. M and N are multiples of 8,
  // so a piece is wholly inside or past the edge.
  Value piece = ix.rem(tid, kPieces);
  auto columnsOf = [&](int64_t chunks, Value origin, int64_t width) {
    SmallVector<std::pair<Value, Value>> columns;
    for (int64_t c = 0; c < chunks; ++c) {
      Value column =
          ix.add(origin, ix.add(ix.mul(piece, 8), c * kChunkColumns));
      columns.push_back({column, ix.ult(column, ix.c(width))});
    }
    return columns;
  };
  auto columnsA = columnsOf(kChunksA, m0, outM);
  auto columnsB = columnsOf(kChunksB, n0, outN);
  Value firstRow = ix.div(tid, kPieces);
  // With a side by TMA, an expert of 64 rows or more reads its last k tile
  // as the box of its last 64 rows; a smaller one is all cp.async.
  Value small = ix.ult(ix.sub(end, begin), ix.c(kBK));
  lb.forLoop(ix.c(0), numK(), [&](Value kt) {
    Value step = ix.add(it, kt);
    Value stage = ix.rem(step, kStages), round = ix.div(step, kStages);
    Value k0 = ix.add(begin, ix.mul(kt, kBK));
    // The stage's first row: k0, or for the last k tile of an expert whose
    // rows a TMA box covers, end - 64 (its rows before k0 made zero below).
    Value rowStart = k0;
    if (tmaSide != Side::None)
      rowStart = ix.select(
          small, k0,
          arith::MinUIOp::create(b, k0, ix.sub(end, ix.c(kBK))).getResult());
    // This thread's rows of the k tile, their owners loaded before the wait
    // for the stage so that the loads' latency hides behind it.
    struct Row {
      Value valid, token, local, inChunk;
    };
    SmallVector<Row> rows;
    for (int64_t j = 0; j < kRowsPerThread; ++j) {
      Value row = ix.add(firstRow, j * (kWarpgroup / kPieces));
      Value r = ix.add(rowStart, row);
      Value valid = ix.ult(r, end);
      if (tmaSide != Side::None)
        valid = ix.both(valid, ix.uge(r, k0));
      // A row past the expert's end reads its first row (which exists: the
      // expert has rows when there is a k tile), zero-filled. A gathered
      // side's row is token owners[r] / top_k.
      Value at = ix.select(valid, r, begin);
      Value token;
      if (op.gatherLhs || op.gatherRhs) {
        Value owner =
            asIndex(b, memref::LoadOp::create(b, op.owners, ValueRange{at}));
        token = ix.div(owner, op.topK);
      }
      // Row `row`'s piece lands at 128 row + 16 (piece ^ (row % 8)) of its
      // chunk.
      Value inChunk =
          ix.add(ix.mul(row, kRowBytes),
                 ix.mul(arith::XOrIOp::create(b, piece, ix.rem(row, 8)), 16));
      rows.push_back({valid, token, ix.sub(at, base), inChunk});
    }
    // Round r reuses the stage once the consumers finished round r - 1.
    lb.ifThen(ix.uge(step, ix.c(kStages)), [&] {
      waitParity(emptyBarrier(stage), ix.rem(ix.add(round, 1), 2));
    });
    Value stageOffset = ix.mul(stage, kStageBytes);
    if (tmaSide != Side::None)
      lb.ifThen(ix.ult(tid, 1), [&] {
        auto bySize = scf::IfOp::create(b, small, /*withElseRegion=*/true);
        OpBuilder::InsertionGuard inIf(b);
        b.setInsertionPoint(bySize.thenBlock()->getTerminator());
        NVVM::MBarrierArriveOp::create(b, Type(), fullBarrier(stage), Value(),
                                       NVVM::MemScopeKind::CTA,
                                       /*relaxed=*/false);
        b.setInsertionPoint(bySize.elseBlock()->getTerminator());
        loadSideByTma(stage, stageOffset, rowStart);
      });
    auto copySide = [&](Value buffer, bool gather, int64_t sideOffset,
                        ArrayRef<std::pair<Value, Value>> columns) {
      for (const Row &row : rows) {
        for (auto [c, column] : llvm::enumerate(columns)) {
          Value ok = ix.both(row.valid, column.second);
          Value byte = ix.add(ix.add(stageOffset, row.inChunk),
                              sideOffset + int64_t(c) * kChunkBytes);
          nvgpu::DeviceAsyncCopyOp::create(
              b, sharedElems, ValueRange{ix.div(byte, 2)}, buffer,
              ValueRange{gather ? row.token : row.local,
                         ix.select(ok, column.first, 0)},
              b.getIndexAttr(8), ix.select(ok, ix.c(8), 0), b.getUnitAttr());
        }
      }
    };
    auto copyLhs = [&] { copySide(op.lhs, op.gatherLhs, 0, columnsA); };
    auto copyRhs = [&] {
      copySide(op.rhs, op.gatherRhs, kStageBytesA, columnsB);
    };
    // The side by TMA comes by cp.async only for a small expert.
    if (tmaSide == Side::Lhs)
      lb.ifThen(small, copyLhs);
    else
      copyLhs();
    if (tmaSide == Side::Rhs)
      lb.ifThen(small, copyRhs);
    else
      copyRhs();
    NVVM::CpAsyncMBarrierArriveOp::create(b, fullBarrier(stage),
                                          /*noinc=*/true);
  });
}

/// Thread 0: tmaSide's rows rowStart .. rowStart + 63 of the tile's columns
/// into the stage, a box a 64-column chunk (columns past M or N are zeros),
/// completing on full[stage] with the bytes announced first.
void WeightGradWarpgroupKernel::loadSideByTma(Value stage, Value stageOffset,
                                              Value rowStart) {
  bool lhs = tmaSide == Side::Lhs;
  int64_t chunks = lhs ? kChunksA : kChunksB;
  NVVM::MBarrierArriveExpectTxOp::create(
      b, Type(), fullBarrier(stage), lb.i32(chunks * kChunkBytes),
      NVVM::MemScopeKind::CTA, /*relaxed=*/false, Value());
  Value origin = lhs ? m0 : n0;
  Value sideOffset = ix.add(stageOffset, lhs ? 0 : kStageBytesA);
  // In a pair, the CTA of rank r loads chunks [r, r + 1) * chunks / 2 into
  // both CTAs' stage (the same offsets there), each completing on that
  // CTA's full[stage].
  Value multicast;
  if (cluster > 1)
    multicast =
        arith::ConstantOp::create(b, b.getI16IntegerAttr((1 << cluster) - 1));
  int64_t ownChunks = chunks / cluster;
  for (int64_t i = 0; i < ownChunks; ++i) {
    Value c = ix.add(ix.mul(rank, ownChunks), i);
    // The CTA's own shared memory in the cluster window (address space 7),
    // as the .shared::cluster form takes it.
    Value destination = LLVM::AddrSpaceCastOp::create(
        b, LLVM::LLVMPointerType::get(b.getContext(), 7),
        sharedPointer(ix.add(sideOffset, ix.mul(c, kChunkBytes))));
    NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
        b, destination, sideMap,
        ValueRange{i32(ix.add(origin, ix.mul(c, kChunkColumns))),
                   i32(ix.sub(rowStart, base))},
        fullBarrier(stage), ValueRange{}, multicast, Value(),
        NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false, NVVM::CTAGroupKindAttr(),
        Value());
  }
}

/// A consumer warpgroup's loop over the k tiles of one tile, the first being
/// the CTA's `it`-th: returns its 128 accumulators (zeros without rows).
SmallVector<Value> WeightGradWarpgroupKernel::consume(Value it, Value group) {
  MLIRContext *context = b.getContext();
  constexpr int64_t kAccumulators = kBN / 2;
  Type accumulatorType = wgmmaAccumulatorType(context, kBN);
  Value init = LLVM::PoisonOp::create(b, accumulatorType);
  for (int64_t i = 0; i < kAccumulators; ++i)
    init =
        LLVM::InsertValueOp::create(b, init, lb.f32(0.0), ArrayRef<int64_t>{i});
  Value count = numK();
  // Warpgroup g's 64 rows of the tile are A's chunk g.
  Value chunkA = ix.mul(group, kChunkBytes);
  Value result =
      lb.forLoopCarrying(
            ix.c(0), count, ValueRange{init},
            [&](Value kt, ValueRange carried) -> SmallVector<Value> {
              Value step = ix.add(it, kt);
              Value stage = ix.rem(step, kStages);
              waitParity(fullBarrier(stage), ix.rem(ix.div(step, kStages), 2));
              // Both operands arrived through cp.async (generic proxy);
              // wgmma reads through the async proxy.
              NVVM::FenceProxyOp::create(
                  b, NVVM::ProxyKind::async_shared,
                  NVVM::SharedSpaceAttr::get(context,
                                             NVVM::SharedSpace::shared_cta));
              NVVM::WgmmaFenceAlignedOp::create(b);
              Value acc = carried[0];
              Value stageOffset = ix.mul(stage, kStageBytes);
              for (int64_t kk = 0; kk < kBK / 16; ++kk) {
                // The next 16 rows of k are 16 x 128 bytes further.
                Value rowsOffset = ix.add(stageOffset, kk * 16 * kRowBytes);
                Value descA = descriptor(ix.add(rowsOffset, chunkA));
                Value descB = descriptor(ix.add(rowsOffset, kStageBytesA));
                // A = L^T is M x K stored M-major (col: read transposed),
                // B = R is K x N stored N-major (row: read transposed).
                acc = wgmmaMultiply(b, acc, descA, descB, kBN, element,
                                    NVVM::MMALayout::col, NVVM::MMALayout::row);
              }
              NVVM::WgmmaGroupSyncAlignedOp::create(b);
              // The previous k tile's wgmmas are done (this one's may run
              // on): its stage goes back to the producer.
              NVVM::WgmmaWaitGroupSyncOp::create(b, 1);
              lb.ifThen(ix.uge(kt, ix.c(1)), [&] {
                release(ix.rem(ix.add(step, kStages - 1), kStages));
              });
              return {acc};
            })
          .front();
  NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
  // The last k tile's stage, if the tile had one.
  lb.ifThen(ix.uge(count, ix.c(1)), [&] {
    release(ix.rem(ix.add(ix.add(it, count), kStages - 1), kStages));
  });
  SmallVector<Value> acc;
  for (int64_t i = 0; i < kAccumulators; ++i)
    acc.push_back(
        LLVM::ExtractValueOp::create(b, result, ArrayRef<int64_t>{i}));
  return acc;
}

/// dw[e, m, n] = acc for the warpgroup's 64 rows: accumulator
/// 4 nj + 2 h + p of a lane is tile row 64 g + 16 warp + 8 h + lane / 4,
/// column 8 nj + 2 (lane % 4) + p. Every element inside [M, N] is written,
/// narrowed to dw's type.
void WeightGradWarpgroupKernel::store(ArrayRef<Value> acc, Value group) {
  if (dwMap)
    return storeByTma(acc, group);
  Value local = ix.rem(tid, kWarpgroup);
  Value warp = ix.div(local, 32), lane = ix.rem(local, 32);
  Value rowBase = ix.add(ix.add(m0, ix.mul(group, 64)),
                         ix.add(ix.mul(warp, 16), ix.div(lane, 4)));
  Value columnBase = ix.add(n0, ix.mul(ix.rem(lane, 4), 2));
  // An f32 dw, an element at a time.
  for (int64_t h = 0; h < 2; ++h) {
    Value m = ix.add(rowBase, h * 8);
    lb.ifThen(ix.ult(m, outM), [&] {
      for (int64_t nj = 0; nj < kBN / 8; ++nj) {
        // N is a multiple of 8: a fragment is wholly in or out.
        lb.ifThen(ix.ult(ix.add(n0, nj * 8), outN), [&] {
          Value column = ix.add(columnBase, nj * 8);
          for (int64_t p = 0; p < 2; ++p)
            lb.storeF32(acc[nj * 4 + h * 2 + p], op.dw,
                        {expert, m, ix.add(column, p)});
        });
      }
    });
  }
}

/// The 16-bit epilogue through shared memory (StagedStores): a round for
/// each half of the tile's 256 columns, its two boxes stored by TMA while
/// the warpgroup goes on (mixtral's weight gradients ran 8% faster without
/// their register stores). A box's rows past M and columns past N are not
/// written; a half wholly past N is skipped.
void WeightGradWarpgroupKernel::storeByTma(ArrayRef<Value> acc, Value group) {
  StagedStores staged = stagedStores(group);
  constexpr int64_t kHalfFragments = kBN / 2 / 8;
  Value row = ix.add(m0, ix.mul(group, 64));
  for (int64_t half = 0; half < 2; ++half) {
    Value columns = ix.add(n0, half * (kBN / 2));
    lb.ifThen(ix.ult(columns, ix.c(outN)), [&] {
      staged.round(
          [&](int64_t f, int64_t h) {
            int64_t at = (half * kHalfFragments + f) * 4 + h * 2;
            return packPair(b, dwElement, acc[at], acc[at + 1]);
          },
          [&] {
            staged.storeBoxes([&](int64_t box, Value source) {
              staged.storeBox(
                  dwMap, source,
                  {ix.add(columns, box * kChunkColumns), row, expert});
            });
          });
    });
  }
}

} // namespace

bool mlir::moek::canLowerWeightGradToWarpgroupMma(
    const TensorCoreWeightGrad &op, MLIRContext *context, std::string *why) {
  auto fail = [&](const Twine &reason) {
    if (why)
      *why = reason.str();
    return false;
  };
  if (!canLowerWeightGradToTensorCores(op, context, why))
    return false;
  if (!op.offsets)
    return fail("not a grouped weight gradient (no offsets)");
  if (op.slices > 1)
    return fail("its rows are split into slices");
  return true;
}

void mlir::moek::lowerWeightGradToWarpgroupMma(const TensorCoreWeightGrad &op,
                                               LoopBuilder &lb) {
  WeightGradWarpgroupKernel k(op, lb);
  ImplicitLocOpBuilder &b = k.b;
  Ix &ix = k.ix;
  Value zero = ix.c(0), one = ix.c(1);
  int64_t experts = staticDim(op.dw, 0);

  // Host: every (expert, column tile of L, column tile of R) is a tile; the
  // rows each reduces over are known on the device only.
  Value first = op.firstExpert ? op.firstExpert : zero;
  Value last = op.lastExpert ? op.lastExpert : ix.c(experts);
  Value span = arith::MaxSIOp::create(b, ix.sub(last, first), zero);
  // The schedule's units: tiles, or in pairs two tiles each.
  int64_t cluster = k.cluster;
  Value tiles = ix.mul(span, k.mUnits * k.nUnits);
  Value clusters = arith::MaxUIOp::create(
      b, arith::MinUIOp::create(b, tiles, ix.c(op.multiprocessors / cluster)),
      one);
  Value grid = cluster > 1 ? ix.mul(clusters, cluster) : clusters;
  // A 16-bit dw is stored by TMA (N is then a multiple of 8: its rows are
  // 16-byte aligned, as the map needs).
  Value dwMap =
      k.dwElement.isF32()
          ? Value()
          : createSwizzledTensorMap(b, ix, op.dw, {1, 64, kChunkColumns});
  using Side = WeightGradWarpgroupKernel::Side;
  Value sideMap = k.tmaSide == Side::None
                      ? Value()
                      : createSwizzledTensorMap(
                            b, ix, k.tmaSide == Side::Lhs ? op.lhs : op.rhs,
                            {kBK, kChunkColumns},
                            nvgpu::TensorMapL2PromoKind::L2PROMO_256B);
  auto launch = launchPersistentGrid(b, ix, grid, kThreads,
                                     lb.i32(kSharedBytes), cluster);
  OpBuilder::InsertionGuard guard(b);
  enterLaunchBody(b, launch);

  k.tid = launch.getThreadIds().x;
  k.rank = cluster > 1
               ? Value(gpu::ClusterBlockIdOp::create(b, gpu::Dimension::x))
               : zero;
  k.first = first;
  k.dwMap = dwMap;
  k.sideMap = sideMap;
  k.alignSharedMemory();
  k.initBarriers();
  emitWarpgroupRoles(
      b, ix, k.tid, cluster,
      [&] { k.forEachTile(tiles, [&](Value it) { k.produce(it); }); },
      [&](Value group) {
        k.forEachTile(tiles,
                      [&](Value it) { k.store(k.consume(it, group), group); });
        if (dwMap)
          k.stagedStores(group).finish();
      });
}
