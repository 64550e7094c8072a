//===- FlashAttentionTensorCore.cpp - moek.flash_attention, mma.sync ------===//
//
// Causal grouped-query attention on tensor cores, FlashAttention-2 style,
// for a bf16/f16 output with a head size dh that is a multiple of 16 and at
// most 128 (the output accumulators live in registers: dh / 2 a lane):
//
//   grid (ceil(L / 64), heads, B), 4 warps; CTA (x, h, b) owns queries
//   i0 = 64 qb .. i0 + 63 of head h of sequence b, qb = gridDim.x - 1 - x
//   (the heaviest blocks start first), warp w rows i0 + 16 w .. + 15, and
//   reads key/value head g = h * kv_heads / heads.
//   shared (the storage type, rows padded by 16 bytes for ldmatrix):
//     Q[64][dh], K[S][64][dh], V[S][64][dh]. q, k, v in the storage type
//     (what the CUDA pipeline makes) are copied by cp.async, 16 bytes a
//     copy, K and V double-buffered (S = 2): block j + 1's copies are in
//     flight while block j is multiplied. Other q, k, v (f32) are loaded 16
//     bytes at a time and rounded to the storage type as they are staged
//     (S = 1).
//   Q <- the block's rows; the warp's Q fragments (ldmatrix) stay in
//   registers.
//   for each key block j0 = 0, 64, ... below min(i0 + 64, L):
//     K, V <- the block's keys (0 past L), or wait for their copies and
//     start the next block's
//     S = Q K^T                 mma.sync m16n8k16, f32 (K read as B
//                               without .trans: it is [key][d])
//     S = S / sqrt(dh), -inf past the causal limit or L
//     m' = max(m, row max of S) (over the lane, then its quad's 4 lanes)
//     P = exp(S - m'); c = exp(m - m'); l = c l + row sum of P (per lane);
//     O = c O
//     O += P V                  P's accumulators become A fragments in
//                               registers (the m16n8 C layout is the m16k16
//                               A layout of two n tiles); V read with .trans
//   O / l (l summed over the quad) -> o
//
// Key 0 is in every query's first block, so m is finite from there on and
// no exp sees -inf - -inf.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/BlockKernelsGPU.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/WarpShuffle.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

namespace {

constexpr int64_t kQueries = 64; // BQ: 16 rows a warp
constexpr int64_t kKeys = 64;    // BK
constexpr int64_t kWarps = 4;
/// Shared rows are padded by 16 bytes so that an ldmatrix's 8 row
/// addresses fall in distinct banks.
constexpr int64_t kPad = 8;

struct MmaFlashKernel {
  FlashAttentionOp op;
  LoopBuilder &lb;
  ImplicitLocOpBuilder &b;
  Ix ix;
  int64_t heads, kvHeads, headDim;
  Type element; ///< the storage type: bf16 or f16
  Value batch, length;
  // Inside the launch.
  Value tid, lane, warp, bz, i0, qColumn, kvColumn;
  Value sharedQ, sharedK, sharedV;
  /// q, k, v are in the storage type: cp.async, K and V double-buffered.
  bool async = false;

  MmaFlashKernel(FlashAttentionOp op, LoopBuilder &lb)
      : op(op), lb(lb), b(lb.builder()), ix{b, lb}, heads(op.getHeads()),
        kvHeads(op.getKvHeads()), headDim(op.getHeadDim()),
        element(cast<MemRefType>(op.getO().getType()).getElementType()) {}

  int64_t row() const { return headDim + kPad; }
  int64_t kvStages() const { return async ? 2 : 1; }
  int64_t sharedBytes() const {
    return 2 * row() * (kQueries + 2 * kvStages() * kKeys);
  }
  int64_t tilesD() const { return headDim / 8; }   // n tiles of O
  int64_t chunksD() const { return headDim / 16; } // k chunks of Q K^T
  int64_t tilesK() const { return kKeys / 8; }     // n tiles of S

  void emit();
  void viewSharedMemory();
  void stage(Value source, Value first, Value column, Value shared,
             ValueRange prefix, int64_t rows);
  void copyAsync(Value source, Value first, Value column, Value shared,
                 ValueRange prefix, int64_t rows);
  SmallVector<SmallVector<Value>> queryFragments();
  SmallVector<Value> attendKeyBlock(Value j0, Value kvStage,
                                    ArrayRef<SmallVector<Value>> queries,
                                    ValueRange carried);
  void storeOutputs(ArrayRef<Value> acc, ArrayRef<Value> sums);

  Value f32(double v) { return lb.f32(v); }
  /// d = a b + c on one m16n8k16 tile; returns d's four f32.
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bFragment,
                         ArrayRef<Value> c);
  /// Two rows' values reduced over the quad of lanes that holds a row.
  Value quadReduce(Value value, bool max);
  /// The 32-bit A register of two f32 (k and k + 1 of a row).
  Value pack(Value low, Value high);
};

void MmaFlashKernel::viewSharedMemory() {
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value shared = gpu::DynamicSharedMemoryOp::create(b, bytesType);
  auto view = [&](ArrayRef<int64_t> shape, int64_t offset) {
    auto type = MemRefType::get(shape, element, MemRefLayoutAttrInterface(),
                                workgroup);
    return memref::ViewOp::create(b, type, shared, ix.c(offset), ValueRange{});
  };
  int64_t S = kvStages();
  sharedQ = view({kQueries, row()}, 0);
  sharedK = view({S, kKeys, row()}, 2 * row() * kQueries);
  sharedV = view({S, kKeys, row()}, 2 * row() * (kQueries + S * kKeys));
}

/// shared[r][d] <- source[b, first + r, column + d] in the storage type for
/// r < rows (0 past L), 16 bytes of the source a load (4 f32 or 8 16-bit
/// values: dh is a multiple of 16 and rows start at multiples of dh, so
/// every load is aligned). A thread issues all its loads before it stores
/// any, so that they are in flight together: one scalar load an iteration
/// left each thread waiting on one load at a time (qwen3_block's attention
/// ran at 43 TFLOP/s on the H200).
void MmaFlashKernel::stage(Value source, Value first, Value column,
                           Value shared, ValueRange prefix, int64_t rows) {
  Type sourceElement = cast<MemRefType>(source.getType()).getElementType();
  int64_t width = 128 / sourceElement.getIntOrFloatBitWidth();
  int64_t perRow = headDim / width;
  int64_t vectors = rows * perRow, threads = 32 * kWarps;
  auto loadType = VectorType::get({width}, sourceElement);
  auto storeType = VectorType::get({width}, element);
  Value zeros = arith::ConstantOp::create(
      b, storeType,
      DenseElementsAttr::get(storeType, b.getZeroAttr(element)));
  Value last = ix.sub(length, ix.c(1));
  struct Piece {
    Value value, r, d, valid;
  };
  SmallVector<Piece> pieces;
  for (int64_t i = 0; i < (vectors + threads - 1) / threads; ++i) {
    Value v = ix.add(tid, i * threads);
    // Past the last vector (a tail when threads do not divide them): row 0
    // again, which exists, and not stored.
    Value inRange = ix.ult(v, ix.c(vectors));
    v = ix.select(inRange, v, 0);
    Value r = ix.div(v, perRow), d = ix.mul(ix.rem(v, perRow), width);
    Value i0Row = ix.add(first, r);
    Value safe = arith::MinUIOp::create(b, i0Row, last);
    Value value = vector::LoadOp::create(
        b, loadType, source, ValueRange{bz, safe, ix.add(column, d)},
        /*nontemporal=*/false, llvm::Align(16));
    if (sourceElement != element)
      value = arith::TruncFOp::create(b, storeType, value);
    value = arith::SelectOp::create(b, ix.ult(i0Row, length), value, zeros);
    pieces.push_back({value, r, d, inRange});
  }
  for (const Piece &piece : pieces) {
    auto store = [&] {
      SmallVector<Value> at(prefix);
      at.append({piece.r, piece.d});
      vector::StoreOp::create(b, piece.value, shared, at,
                              /*nontemporal=*/false,
                              llvm::Align(width * element.getIntOrFloatBitWidth() / 8));
    };
    if (vectors % threads == 0)
      store();
    else
      lb.ifThen(piece.valid, store);
  }
}

/// shared[prefix..., r, d] <- source[b, first + r, column + d] for r < rows
/// by cp.async, 16 bytes a copy (the source is in the storage type), rows
/// past L zero-filled (a source size of 0). Completes with the thread's
/// next commit group.
void MmaFlashKernel::copyAsync(Value source, Value first, Value column,
                               Value shared, ValueRange prefix,
                               int64_t rows) {
  int64_t width = 128 / element.getIntOrFloatBitWidth();
  int64_t perRow = headDim / width;
  int64_t vectors = rows * perRow, threads = 32 * kWarps;
  Value last = ix.sub(length, ix.c(1));
  for (int64_t i = 0; i < (vectors + threads - 1) / threads; ++i) {
    Value v = ix.add(tid, i * threads);
    auto copy = [&] {
      Value r = ix.div(v, perRow), d = ix.mul(ix.rem(v, perRow), width);
      Value i0Row = ix.add(first, r);
      Value safe = arith::MinUIOp::create(b, i0Row, last);
      SmallVector<Value> at(prefix);
      at.append({r, d});
      nvgpu::DeviceAsyncCopyOp::create(
          b, shared, at, source, ValueRange{bz, safe, ix.add(column, d)},
          b.getIndexAttr(width),
          ix.select(ix.ult(i0Row, length), ix.c(width), 0),
          /*bypassL1=*/b.getUnitAttr());
    };
    if (vectors % threads == 0)
      copy();
    else
      lb.ifThen(ix.ult(v, ix.c(vectors)), copy);
  }
}

/// The warp's 16 rows of Q as A fragments, one per 16 columns of dh.
SmallVector<SmallVector<Value>> MmaFlashKernel::queryFragments() {
  auto fragmentType = VectorType::get({4, 2}, element);
  SmallVector<SmallVector<Value>> fragments;
  // Lanes 0-15 address rows 0-15 at column k, lanes 16-31 at k + 8.
  Value r = ix.add(ix.mul(warp, 16), ix.rem(lane, 16));
  for (int64_t kd = 0; kd < chunksD(); ++kd) {
    Value column = ix.add(ix.mul(ix.div(lane, 16), 8), kd * 16);
    Value fragment = nvgpu::LdMatrixOp::create(
        b, fragmentType, sharedQ, ValueRange{r, column},
        /*transpose=*/false, /*numTiles=*/4);
    fragments.push_back(fragmentRegisters(b, fragment, 4));
  }
  return fragments;
}

SmallVector<Value> MmaFlashKernel::mma(ArrayRef<Value> a,
                                       ArrayRef<Value> bFragment,
                                       ArrayRef<Value> c) {
  NVVM::MMATypes type =
      element.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  Type f = b.getF32Type();
  Type accumulator =
      LLVM::LLVMStructType::getLiteral(b.getContext(), {f, f, f, f});
  Value d = NVVM::MmaOp::create(
      b, accumulator, a, bFragment, c, ArrayRef<int64_t>{16, 8, 16},
      std::nullopt, std::nullopt, std::array<NVVM::MMATypes, 2>{type, type},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value> out;
  for (int64_t i = 0; i < 4; ++i)
    out.push_back(LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{i}));
  return out;
}

Value MmaFlashKernel::quadReduce(Value value, bool max) {
  return butterflyReduce(b, value, max, {1, 2});
}

Value MmaFlashKernel::pack(Value low, Value high) {
  auto pairType = VectorType::get({2}, element);
  Value pair = vector::FromElementsOp::create(
      b, pairType,
      ValueRange{arith::TruncFOp::create(b, element, low),
                 arith::TruncFOp::create(b, element, high)});
  if (!element.isBF16())
    return pair; // f16: mma.sync takes vector<2xf16>
  Value word =
      vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), pair);
  return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
}

/// One key block: carried are O (tilesD x 4 f32), m (2 rows) and the
/// lane's partial l (2 rows).
SmallVector<Value>
MmaFlashKernel::attendKeyBlock(Value j0, Value kvStage,
                               ArrayRef<SmallVector<Value>> queries,
                               ValueRange carried) {
  auto fragmentType = VectorType::get({4, 2}, element);
  Value quarter = ix.div(lane, 8);
  // S = Q K^T: K's rows are keys (n), its columns d (k): B fragments
  // without .trans, two n tiles an ldmatrix.x4.
  SmallVector<SmallVector<Value>> s(tilesK(), SmallVector<Value>(4, f32(0.0)));
  for (int64_t kd = 0; kd < chunksD(); ++kd)
    for (int64_t nj = 0; nj < tilesK(); nj += 2) {
      Value key = ix.add(ix.add(ix.mul(ix.div(quarter, 2), 8), nj * 8),
                         ix.rem(lane, 8));
      Value column = ix.add(ix.mul(ix.rem(quarter, 2), 8), kd * 16);
      Value fragment = nvgpu::LdMatrixOp::create(
          b, fragmentType, sharedK, ValueRange{kvStage, key, column},
          /*transpose=*/false, /*numTiles=*/4);
      SmallVector<Value> regs = fragmentRegisters(b, fragment, 4);
      s[nj] = mma(queries[kd], {regs[0], regs[1]}, s[nj]);
      s[nj + 1] = mma(queries[kd], {regs[2], regs[3]}, s[nj + 1]);
    }

  // The lane's rows (g and g + 8 of the warp's 16) and its columns.
  Value group = ix.div(lane, 4), pairColumn = ix.mul(ix.rem(lane, 4), 2);
  Value rowBase = ix.add(ix.add(i0, ix.mul(warp, 16)), group);
  Value rows[2] = {rowBase, ix.add(rowBase, 8)};
  Value scale = f32(1.0 / std::sqrt(double(headDim)));
  Value negInf = f32(-std::numeric_limits<double>::infinity());
  SmallVector<SmallVector<Value>> valid(tilesK(), SmallVector<Value>(4));
  Value blockMax[2] = {negInf, negInf};
  for (int64_t nj = 0; nj < tilesK(); ++nj)
    for (int64_t c = 0; c < 4; ++c) {
      Value key = ix.add(ix.add(j0, nj * 8), ix.add(pairColumn, c % 2));
      valid[nj][c] = ix.both(
          arith::CmpIOp::create(b, arith::CmpIPredicate::ule, key, rows[c / 2]),
          ix.ult(key, length));
      s[nj][c] = ix.select(valid[nj][c],
                           arith::MulFOp::create(b, s[nj][c], scale), negInf);
      blockMax[c / 2] = arith::MaximumFOp::create(b, blockMax[c / 2], s[nj][c]);
    }
  int64_t accCount = tilesD() * 4;
  ValueRange acc = carried.take_front(accCount);
  Value newMax[2], correction[2], sums[2];
  for (int h = 0; h < 2; ++h) {
    Value oldMax = carried[accCount + h];
    newMax[h] =
        arith::MaximumFOp::create(b, oldMax, quadReduce(blockMax[h], true));
    correction[h] =
        math::ExpOp::create(b, arith::SubFOp::create(b, oldMax, newMax[h]));
    sums[h] =
        arith::MulFOp::create(b, carried[accCount + 2 + h], correction[h]);
  }
  // P = exp(S - m'), 0 where masked.
  for (int64_t nj = 0; nj < tilesK(); ++nj)
    for (int64_t c = 0; c < 4; ++c) {
      Value p = math::ExpOp::create(
          b, arith::SubFOp::create(b, s[nj][c], newMax[c / 2]));
      s[nj][c] = ix.select(valid[nj][c], p, f32(0.0));
      sums[c / 2] = arith::AddFOp::create(b, sums[c / 2], s[nj][c]);
    }
  SmallVector<Value> o;
  for (int64_t i = 0; i < accCount; ++i)
    o.push_back(arith::MulFOp::create(b, acc[i], correction[(i % 4) / 2]));

  // O += P V: P's accumulators of n tiles 2kc and 2kc + 1 are the A
  // fragment of keys 16 kc .. 16 kc + 15; V is [key][d] = [k][n], read with
  // .trans, two d tiles an ldmatrix.x4.
  for (int64_t kc = 0; kc < kKeys / 16; ++kc) {
    SmallVector<Value> a = {pack(s[2 * kc][0], s[2 * kc][1]),
                            pack(s[2 * kc][2], s[2 * kc][3]),
                            pack(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                            pack(s[2 * kc + 1][2], s[2 * kc + 1][3])};
    for (int64_t dj = 0; dj < tilesD(); dj += 2) {
      Value key = ix.add(ix.add(ix.mul(ix.rem(quarter, 2), 8), kc * 16),
                         ix.rem(lane, 8));
      Value column = ix.add(ix.mul(ix.div(quarter, 2), 8), dj * 8);
      Value fragment = nvgpu::LdMatrixOp::create(
          b, fragmentType, sharedV, ValueRange{kvStage, key, column},
          /*transpose=*/true, /*numTiles=*/4);
      SmallVector<Value> regs = fragmentRegisters(b, fragment, 4);
      for (int64_t t = 0; t < 2; ++t) {
        ArrayRef<Value> c = ArrayRef<Value>(o).slice((dj + t) * 4, 4);
        SmallVector<Value> d = mma(a, {regs[2 * t], regs[2 * t + 1]}, c);
        std::copy(d.begin(), d.end(), o.begin() + (dj + t) * 4);
      }
    }
  }
  o.append({newMax[0], newMax[1], sums[0], sums[1]});
  return o;
}

/// o[b, row, h dh + column] = O / l for the lane's rows before L.
void MmaFlashKernel::storeOutputs(ArrayRef<Value> acc, ArrayRef<Value> sums) {
  Value group = ix.div(lane, 4), pairColumn = ix.mul(ix.rem(lane, 4), 2);
  Value rowBase = ix.add(ix.add(i0, ix.mul(warp, 16)), group);
  for (int h = 0; h < 2; ++h) {
    Value i = ix.add(rowBase, 8 * h);
    Value total = quadReduce(sums[h], false);
    lb.ifThen(ix.ult(i, length), [&] {
      for (int64_t dj = 0; dj < tilesD(); ++dj)
        for (int64_t p = 0; p < 2; ++p) {
          Value column = ix.add(qColumn, ix.add(pairColumn, dj * 8 + p));
          lb.storeF32(arith::DivFOp::create(b, acc[dj * 4 + 2 * h + p], total),
                      op.getO(), {bz, i, column});
        }
    });
  }
}

void MmaFlashKernel::emit() {
  Value q = op.getQ();
  batch = lb.dim(q, 0);
  length = lb.dim(q, 1);
  auto sourceType = [](Value v) {
    return cast<MemRefType>(v.getType()).getElementType();
  };
  async = sourceType(op.getQ()) == element &&
          sourceType(op.getK()) == element && sourceType(op.getV()) == element;
  OpBuilder::InsertionGuard guard(b);
  gpu::LaunchOp launch = launchFlashAttentionGrid(
      lb, length, batch, kQueries, heads, 32 * kWarps, sharedBytes(), "mma");
  tid = launch.getThreadIds().x;
  lane = ix.rem(tid, 32);
  warp = ix.div(tid, 32);
  bz = launch.getBlockIds().z;
  i0 = flashQueryBlockStart(lb, launch, kQueries);
  Value head = launch.getBlockIds().y;
  Value kvHead = ix.div(ix.mul(head, kvHeads), heads);
  qColumn = ix.mul(head, headDim);
  kvColumn = ix.mul(kvHead, headDim);
  viewSharedMemory();
  // K and V of key block j0 into stage s (by copies in flight, or staged).
  auto keysAndValues = [&](Value j0, Value s) {
    if (async) {
      copyAsync(op.getK(), j0, kvColumn, sharedK, s, kKeys);
      copyAsync(op.getV(), j0, kvColumn, sharedV, s, kKeys);
    } else {
      stage(op.getK(), j0, kvColumn, sharedK, s, kKeys);
      stage(op.getV(), j0, kvColumn, sharedV, s, kKeys);
    }
  };
  // A uniform condition: every thread of the CTA takes the barriers or none.
  lb.ifThen(ix.both(ix.ult(bz, batch), ix.ult(i0, length)), [&] {
    Value keys = arith::MinUIOp::create(b, ix.add(i0, kQueries), length);
    Value blocks = ix.ceilDiv(keys, kKeys);
    if (async) {
      // Q, then block 0's K and V: two commit groups; Q's first.
      copyAsync(op.getQ(), i0, qColumn, sharedQ, ValueRange{}, kQueries);
      NVVM::CpAsyncCommitGroupOp::create(b);
      keysAndValues(ix.c(0), ix.c(0));
      NVVM::CpAsyncCommitGroupOp::create(b);
      NVVM::CpAsyncWaitGroupOp::create(b, 1);
    } else {
      stage(op.getQ(), i0, qColumn, sharedQ, ValueRange{}, kQueries);
    }
    gpu::BarrierOp::create(b);
    SmallVector<SmallVector<Value>> queries = queryFragments();
    SmallVector<Value> init(tilesD() * 4, f32(0.0));
    Value negInf = f32(-std::numeric_limits<double>::infinity());
    init.append({negInf, negInf, f32(0.0), f32(0.0)});
    SmallVector<Value> state = lb.forLoopCarrying(
        ix.c(0), blocks, init,
        [&](Value block, ValueRange carried) -> SmallVector<Value> {
          Value j0 = ix.mul(block, kKeys);
          Value s = ix.c(0);
          if (async) {
            // Block + 1's copies go out before block's are waited for (a
            // group is committed every iteration, empty after the last
            // block, so that "all but the newest" is always block's).
            s = ix.rem(block, 2);
            lb.ifThen(ix.ult(ix.add(block, 1), blocks), [&] {
              keysAndValues(ix.add(j0, kKeys), ix.rem(ix.add(block, 1), 2));
            });
            NVVM::CpAsyncCommitGroupOp::create(b);
            NVVM::CpAsyncWaitGroupOp::create(b, 1);
          } else {
            // Every warp is done with the previous block's K and V.
            gpu::BarrierOp::create(b);
            keysAndValues(j0, s);
          }
          gpu::BarrierOp::create(b);
          SmallVector<Value> next = attendKeyBlock(j0, s, queries, carried);
          if (async) // every warp is done with stage s before it is refilled
            gpu::BarrierOp::create(b);
          return next;
        });
    if (async)
      NVVM::CpAsyncWaitGroupOp::create(b, 0);
    int64_t accCount = tilesD() * 4;
    storeOutputs(ArrayRef<Value>(state).take_front(accCount),
                 ArrayRef<Value>(state).slice(accCount + 2, 2));
  });
}

} // namespace

bool mlir::moek::canLowerFlashAttentionToTensorCores(FlashAttentionOp op,
                                                     std::string *why) {
  auto fail = [&](const char *rule) {
    if (why)
      *why = rule;
    return false;
  };
  Type element = cast<MemRefType>(op.getO().getType()).getElementType();
  if (!element.isBF16() && !element.isF16())
    return fail("o must be bf16 or f16 (mma.sync's operand types)");
  int64_t headDim = op.getHeadDim();
  if (headDim % 16 != 0 || headDim > kMaxTensorCoreHeadDim)
    return fail("the head size must be a multiple of 16 and at most 128");
  MLIRContext *context = op.getContext();
  if (!context->getLoadedDialect<nvgpu::NVGPUDialect>() ||
      !context->getLoadedDialect<NVVM::NVVMDialect>() ||
      !context->getLoadedDialect<vector::VectorDialect>() ||
      !context->getLoadedDialect<LLVM::LLVMDialect>())
    return fail("the nvgpu, nvvm, vector and llvm dialects must be loaded");
  return true;
}

void mlir::moek::lowerFlashAttentionToTensorCores(FlashAttentionOp op,
                                                  LoopBuilder &lb) {
  MmaFlashKernel(op, lb).emit();
}
