//===- FlashAttentionGPU.cpp - moek.flash_attention on CUDA ---------------===//
//
// Causal grouped-query attention, flash style (SIMT, f32 arithmetic):
//
//   grid (ceil(L / BQ), heads, B), 4 warps; CTA (qb, h, b) owns queries
//   i0 = qb * BQ .. i0 + BQ - 1 of head h of sequence b, and reads key/value
//   head g = h * kv_heads / heads.
//   shared: Q[BQ][dh] (scaled by 1/sqrt(dh)), Acc[BQ][dh], K[BK][dh + 1],
//           V[BK][dh], M[BQ], S[BQ] (running max and sum), all f32
//   Q <- q rows, Acc <- 0, M <- -inf, S <- 0
//   for each key block j0 = 0, BK, ... below min(i0 + BQ, L) (causal limit):
//     K, V <- the block's keys and values (0 past L); barrier
//     for each query r of the warp (r = warp, warp + 4, ...), lane = key:
//       s = Q[r] . K[lane], -inf where j0 + lane > i0 + r or past L
//       m = max(M[r], warp max of s); p = exp(s - m); c = exp(M[r] - m)
//       Acc[r][d] = c * Acc[r][d] + sum over keys of p * V[key][d] (a lane
//         per d = lane, lane + 32, ...; p broadcast by shuffles)
//       M[r] = m; S[r] = c * S[r] + warp sum of p
//     barrier
//   o[b, i0 + r, h * dh + d] = Acc[r][d] / S[r]
//
// Key 0 is in the first block of every query, so M is finite from the
// first block on and no exp sees -inf - -inf. A query's state belongs to
// one warp and each Acc element to one lane: only the K, V stages need the
// CTA's barriers. Nothing [L, L] exists: the memory is O(BQ dh + BK dh)
// per CTA.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/BlockKernelsGPU.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"
#include "lib/Conversion/MoekToGPU/WarpShuffle.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

namespace {

/// Keys per block: a lane per key.
constexpr int64_t kKeyBlock = 32;
constexpr int64_t kWarps = 4;
/// Shared memory a CTA should stay within: three CTAs share an H100/H200
/// SM (227 KiB).
constexpr int64_t kPreferredSharedBytes = 72 * 1024;

/// The sizes of one CTA's tile for head size dh.
struct FlashGeometry {
  int64_t headDim, queries;                    ///< dh, BQ
  int64_t rowK() const { return headDim + 1; } // padded: conflict-free
  int64_t floatsQ() const { return queries * headDim; }
  int64_t floatsK() const { return kKeyBlock * rowK(); }
  int64_t floatsV() const { return kKeyBlock * headDim; }
  int64_t sharedBytes() const {
    return 4 * (2 * floatsQ() + floatsK() + floatsV() + 2 * queries);
  }
  /// Output elements each lane keeps per query.
  int64_t perLane() const { return (headDim + 31) / 32; }
};

struct FlashAttentionKernel {
  FlashAttentionOp op;
  LoopBuilder &lb;
  ImplicitLocOpBuilder &b;
  Ix ix;
  FlashGeometry g;
  int64_t heads, kvHeads;
  Value length, batch;
  // Inside the launch.
  Value tid, lane, warp, bz, head, i0, qColumn, kvColumn;
  Value sharedQ, sharedAcc, sharedK, sharedV, sharedM, sharedS;

  FlashAttentionKernel(FlashAttentionOp op, LoopBuilder &lb, FlashGeometry g)
      : op(op), lb(lb), b(lb.builder()), ix{b, lb}, g(g), heads(op.getHeads()),
        kvHeads(op.getKvHeads()) {}

  Value f32(double v) { return lb.f32(v); }
  Value negInf() { return f32(-std::numeric_limits<double>::infinity()); }

  void emit();
  void viewSharedMemory();
  void loadQueries();
  void loadKeyBlock(Value j0);
  void attendKeyBlock(Value j0);
  void storeOutputs();
  /// `body(first)` for first = start, start + step, ... below `end`.
  void strided(Value start, Value end, int64_t step,
               function_ref<void(Value)> body) {
    auto loop = scf::ForOp::create(b, start, end, ix.c(step));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    body(loop.getInductionVar());
  }
};

void FlashAttentionKernel::viewSharedMemory() {
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value shared = gpu::DynamicSharedMemoryOp::create(b, bytesType);
  int64_t offset = 0;
  auto view = [&](ArrayRef<int64_t> shape) {
    auto type = MemRefType::get(shape, b.getF32Type(),
                                MemRefLayoutAttrInterface(), workgroup);
    Value result =
        memref::ViewOp::create(b, type, shared, ix.c(offset), ValueRange{});
    int64_t floats = 1;
    for (int64_t extent : shape)
      floats *= extent;
    offset += 4 * floats;
    return result;
  };
  sharedQ = view({g.queries, g.headDim});
  sharedAcc = view({g.queries, g.headDim});
  sharedK = view({kKeyBlock, g.rowK()});
  sharedV = view({kKeyBlock, g.headDim});
  sharedM = view({g.queries});
  sharedS = view({g.queries});
}

/// Q <- the block's query rows times 1/sqrt(dh) (0 past L), Acc <- 0,
/// M <- -inf, S <- 0.
void FlashAttentionKernel::loadQueries() {
  Value scale = f32(1.0 / std::sqrt(double(g.headDim)));
  Value zero = f32(0.0);
  Value last = ix.sub(length, ix.c(1));
  strided(tid, ix.c(g.floatsQ()), 32 * kWarps, [&](Value e) {
    Value r = ix.div(e, g.headDim), d = ix.rem(e, g.headDim);
    Value i = ix.add(i0, r);
    Value valid = ix.ult(i, length);
    Value safe = arith::MinUIOp::create(b, i, last);
    Value value = arith::MulFOp::create(
        b, lb.loadF32(op.getQ(), {bz, safe, ix.add(qColumn, d)}), scale);
    memref::StoreOp::create(b, ix.select(valid, value, zero), sharedQ,
                            ValueRange{r, d});
    memref::StoreOp::create(b, zero, sharedAcc, ValueRange{r, d});
  });
  strided(tid, ix.c(g.queries), 32 * kWarps, [&](Value r) {
    memref::StoreOp::create(b, negInf(), sharedM, ValueRange{r});
    memref::StoreOp::create(b, zero, sharedS, ValueRange{r});
  });
}

/// K, V <- keys and values j0 .. j0 + BK - 1 of head g (0 past L).
void FlashAttentionKernel::loadKeyBlock(Value j0) {
  Value zero = f32(0.0);
  Value last = ix.sub(length, ix.c(1));
  strided(tid, ix.c(kKeyBlock * g.headDim), 32 * kWarps, [&](Value e) {
    Value key = ix.div(e, g.headDim), d = ix.rem(e, g.headDim);
    Value j = ix.add(j0, key);
    Value valid = ix.ult(j, length);
    Value safe = arith::MinUIOp::create(b, j, last);
    Value column = ix.add(kvColumn, d);
    Value k = lb.loadF32(op.getK(), {bz, safe, column});
    Value v = lb.loadF32(op.getV(), {bz, safe, column});
    memref::StoreOp::create(b, ix.select(valid, k, zero), sharedK,
                            ValueRange{key, d});
    memref::StoreOp::create(b, ix.select(valid, v, zero), sharedV,
                            ValueRange{key, d});
  });
}

/// The online softmax step of each of the warp's queries on the key block.
void FlashAttentionKernel::attendKeyBlock(Value j0) {
  strided(warp, ix.c(g.queries), kWarps, [&](Value r) {
    Value i = ix.add(i0, r);
    Value j = ix.add(j0, lane);
    // s = Q[r] . K[lane]: Q[r][d] is one address for the warp (a
    // broadcast), K's padded rows put the lanes in distinct banks.
    Value s = lb.forLoopCarrying(
        ix.c(0), ix.c(g.headDim), ValueRange{f32(0.0)},
        [&](Value d, ValueRange acc) -> SmallVector<Value> {
          Value product = arith::MulFOp::create(
              b, memref::LoadOp::create(b, sharedQ, ValueRange{r, d}),
              memref::LoadOp::create(b, sharedK, ValueRange{lane, d}));
          return {arith::AddFOp::create(b, acc[0], product)};
        })[0];
    Value valid =
        ix.both(arith::CmpIOp::create(b, arith::CmpIPredicate::ule, j, i),
                ix.ult(j, length));
    s = ix.select(valid, s, negInf());
    Value blockMax = butterflyReduce(b, s, /*max=*/true, kWholeWarp);
    Value oldMax = memref::LoadOp::create(b, sharedM, ValueRange{r});
    Value oldSum = memref::LoadOp::create(b, sharedS, ValueRange{r});
    Value newMax = arith::MaximumFOp::create(b, oldMax, blockMax);
    Value p = ix.select(
        valid, math::ExpOp::create(b, arith::SubFOp::create(b, s, newMax)),
        f32(0.0));
    Value blockSum = butterflyReduce(b, p, /*max=*/false, kWholeWarp);
    Value correction =
        math::ExpOp::create(b, arith::SubFOp::create(b, oldMax, newMax));

    // Acc[r][d] for the lane's columns d = lane + 32 t (clamped to dh - 1
    // for the load: every lane takes part in the shuffles).
    SmallVector<Value> columns, init;
    for (int64_t t = 0; t < g.perLane(); ++t) {
      Value d = ix.add(lane, 32 * t);
      columns.push_back(arith::MinUIOp::create(b, d, ix.c(g.headDim - 1)));
      init.push_back(arith::MulFOp::create(
          b, memref::LoadOp::create(b, sharedAcc, ValueRange{r, columns[t]}),
          correction));
    }
    SmallVector<Value> acc = lb.forLoopCarrying(
        ix.c(0), ix.c(kKeyBlock), init,
        [&](Value key, ValueRange carried) -> SmallVector<Value> {
          Value source = arith::IndexCastOp::create(b, b.getI32Type(), key);
          Value width = lb.i32(32);
          Value pj =
              gpu::ShuffleOp::create(b, p, source, width,
                                     gpu::ShuffleModeAttr::get(
                                         b.getContext(), gpu::ShuffleMode::IDX))
                  .getShuffleResult();
          SmallVector<Value> next;
          for (int64_t t = 0; t < g.perLane(); ++t) {
            Value v =
                memref::LoadOp::create(b, sharedV, ValueRange{key, columns[t]});
            next.push_back(arith::AddFOp::create(
                b, carried[t], arith::MulFOp::create(b, pj, v)));
          }
          return next;
        });
    for (int64_t t = 0; t < g.perLane(); ++t)
      lb.ifThen(ix.ult(ix.add(lane, 32 * t), g.headDim), [&] {
        memref::StoreOp::create(b, acc[t], sharedAcc,
                                ValueRange{r, columns[t]});
      });
    // Every lane has read M[r] and S[r] before the shuffles above.
    lb.ifThen(ix.ult(lane, 1), [&] {
      memref::StoreOp::create(b, newMax, sharedM, ValueRange{r});
      memref::StoreOp::create(
          b,
          arith::AddFOp::create(b, arith::MulFOp::create(b, oldSum, correction),
                                blockSum),
          sharedS, ValueRange{r});
    });
  });
}

/// o[b, i0 + r, h dh + d] = Acc[r][d] / S[r] for the queries before L.
void FlashAttentionKernel::storeOutputs() {
  strided(warp, ix.c(g.queries), kWarps, [&](Value r) {
    Value i = ix.add(i0, r);
    lb.ifThen(ix.ult(i, length), [&] {
      Value sum = memref::LoadOp::create(b, sharedS, ValueRange{r});
      strided(lane, ix.c(g.headDim), 32, [&](Value d) {
        Value value = arith::DivFOp::create(
            b, memref::LoadOp::create(b, sharedAcc, ValueRange{r, d}), sum);
        lb.storeF32(value, op.getO(), {bz, i, ix.add(qColumn, d)});
      });
    });
  });
}

void FlashAttentionKernel::emit() {
  Value q = op.getQ();
  batch = lb.dim(q, 0);
  length = lb.dim(q, 1);
  OpBuilder::InsertionGuard guard(b);
  gpu::LaunchOp launch =
      launchFlashAttentionGrid(lb, length, batch, g.queries, heads,
                               32 * kWarps, g.sharedBytes(), "simt");
  tid = launch.getThreadIds().x;
  lane = ix.rem(tid, 32);
  warp = ix.div(tid, 32);
  bz = launch.getBlockIds().z;
  head = launch.getBlockIds().y;
  i0 = flashQueryBlockStart(lb, launch, g.queries);
  // g = floor(h * kv_heads / heads).
  Value kvHead = ix.div(ix.mul(head, kvHeads), heads);
  qColumn = ix.mul(head, g.headDim);
  kvColumn = ix.mul(kvHead, g.headDim);
  // A uniform condition: every thread of the CTA takes the barriers or none.
  viewSharedMemory();
  lb.ifThen(ix.both(ix.ult(bz, batch), ix.ult(i0, length)), [&] {
    loadQueries();
    gpu::BarrierOp::create(b);
    Value keys = arith::MinUIOp::create(b, ix.add(i0, g.queries), length);
    Value blocks = ix.ceilDiv(keys, kKeyBlock);
    lb.forLoop(ix.c(0), blocks, [&](Value block) {
      Value j0 = ix.mul(block, kKeyBlock);
      loadKeyBlock(j0);
      gpu::BarrierOp::create(b);
      attendKeyBlock(j0);
      gpu::BarrierOp::create(b);
    });
    storeOutputs();
  });
}

} // namespace

Value mlir::moek::flashQueryBlockStart(moe::LoopBuilder &lb,
                                       gpu::LaunchOp launch, int64_t queries) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  // CTAs start in order of blockIdx.x first: in forward order the last to
  // start would be the longest, running on alone at the launch's end.
  Value last = ix.sub(launch.getGridSize().x, ix.c(1));
  return ix.mul(ix.sub(last, launch.getBlockIds().x), queries);
}

gpu::LaunchOp mlir::moek::launchFlashAttentionGrid(
    moe::LoopBuilder &lb, Value length, Value batch, int64_t queries,
    int64_t heads, int64_t threads, int64_t sharedBytes, StringRef name) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value one = ix.c(1);
  Value gridX = arith::MaxUIOp::create(b, ix.ceilDiv(length, queries), one);
  Value gridZ = arith::MaxUIOp::create(b, batch, one);
  auto launch = gpu::LaunchOp::create(b, gridX, ix.c(heads), gridZ,
                                      ix.c(threads), one, one,
                                      lb.i32(sharedBytes));
  launch.setFunctionAttr(FlatSymbolRefAttr::get(b.getContext(), name));
  enterLaunchBody(b, launch);
  return launch;
}

LogicalResult mlir::moek::lowerFlashAttentionToGPU(FlashAttentionOp op,
                                                   LoopBuilder &lb,
                                                   int64_t maxSharedBytes) {
  int64_t headDim = op.getHeadDim();
  if (headDim > kMaxFlashAttentionHeadDim)
    return op.emitOpError()
           << "head size " << headDim << " is past the "
           << kMaxFlashAttentionHeadDim
           << " the CUDA flash-attention kernel supports (head_dim <= "
           << kMaxFlashAttentionHeadDim
           << ": each lane keeps ceil(head_dim / 32) of a query's outputs)";
  // The largest query block (more queries share each K, V block) whose
  // tile leaves room for three CTAs an SM (12 warps to hide the latency of
  // shared memory); else the largest the chip takes at all.
  for (int64_t budget : {kPreferredSharedBytes, maxSharedBytes})
    for (int64_t queries : {64, 32, 16}) {
      FlashGeometry g{headDim, queries};
      if (g.sharedBytes() > std::min(budget, maxSharedBytes))
        continue;
      FlashAttentionKernel(op, lb, g).emit();
      return success();
    }
  return op.emitOpError() << "head size " << headDim
                          << " needs more shared memory than the chip's "
                          << maxSharedBytes << " bytes per block";
}
