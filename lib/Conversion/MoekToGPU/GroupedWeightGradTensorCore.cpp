//===- GroupedWeightGradTensorCore.cpp - Varlen-K weight GEMMs on mma.sync ===//
//
// moek.grouped_weight_grad, dw[e] = sum over expert e's rows r of
// L(r)^T (x) R(r), as one gpu.launch of mma.sync m16n8k16 tiles (bf16/f16
// operands, f32 accumulation):
//
// - Grid: (ceil(M / BM), ceil(N / BN), experts of the chunk). A CTA owns ONE
//   output tile of ONE expert and walks that expert's rows [offsets[e],
//   offsets[e+1]) in K steps of BK: the reduction is the row dimension
//   (varlen-K), so the host never learns the counts. An expert with no rows
//   runs no step and stores its zero accumulators: dw[e] = 0.
// - Both operands are row buffers ([rows or T, M] and [rows or T, N]):
//   stage s holds BK rows of each, K-major ([BK][BM+pad] and [BK][BN+pad]),
//   copied by cp.async 16 bytes at a time in a kStages-deep pipeline; a row
//   is read through the owners map (token owners[r] / top_k) when that side
//   is gathered, so x[t] and dy[t] are never copied into expert order. Rows
//   past the expert's end and columns past M or N are zero-filled.
// - A = L^T is loaded with ldmatrix.trans from the [k][m] stage (each 8x8
//   block transposed gives mma.sync's row-major A fragment), B = R with
//   ldmatrix.trans as in the forward kernel.
// - The epilogue stores the accumulators into dw[e] (narrowed to dw's type).
// - Without offsets (the router's dw_gate = x^T ds): one group of every row,
//   its rows split into `slices` along the grid's z, each CTA adding its
//   slice's sum into the zeroed f32 dw with atomics, so that a few output
//   tiles still fill the chip.
//
// The grouped_matmul kernel (GroupedMatmulTensorCore.cpp) tiles rows of one
// expert with a fixed K; here K varies per expert and the output is a
// weight, so the tile schedule, the copy plan and the A fragments differ;
// the fragment registers and mma.sync are the same.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"
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

// 16-byte copies of 8 16-bit elements; rows padded by 16 bytes so that the
// 8 row addresses of an ldmatrix fall in distinct banks.
constexpr int64_t kChunk = 8, kPad = 8;
// The CTA tile: 128 x 128 outputs, 32 rows deep per stage, 4 stages, 8
// warps as 2 x 4, each 64 x 32 (4 x 4 mma tiles of 16 x 8). Shared memory:
// 4 * 32 * (136 + 136) * 2 = 69632 bytes, within every chip's limit.
constexpr int64_t kBM = kWeightGradTileRows, kBN = kWeightGradTileColumns;
constexpr int64_t kBK = 32, kStages = 4;
constexpr int64_t kWarpsM = 2, kWarpsN = 4, kThreads = 32 * kWarpsM * kWarpsN;
constexpr int64_t kWarpM = kBM / kWarpsM, kWarpN = kBN / kWarpsN;
constexpr int64_t kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;
constexpr int64_t kRowA = kBM + kPad, kRowB = kBN + kPad;
constexpr int64_t kStageBytesA = kBK * kRowA * 2, kStageBytesB = kBK * kRowB * 2;
constexpr int64_t kSharedBytes = kStages * (kStageBytesA + kStageBytesB);

struct WeightGradKernel {
  const TensorCoreWeightGrad &op;
  LoopBuilder &lb;
  ImplicitLocOpBuilder &b;
  Ix ix;
  Type element;
  int64_t outM, outN;
  Value zero, first;
  // Inside the launch.
  Value tid, lane, warpM, warpN, m0, n0, expert, begin, end, base;
  Value sharedA, sharedB;
  /// A thread's 16-byte copy: the stage row (k) and column it fills.
  struct Copy {
    Value row, column, columnValid;
  };
  SmallVector<Copy> copiesA, copiesB;

  WeightGradKernel(const TensorCoreWeightGrad &op, LoopBuilder &lb)
      : op(op), lb(lb), b(lb.builder()), ix{b, lb} {
    element = cast<MemRefType>(op.lhs.getType()).getElementType();
    outM = staticDim(op.dw, 1);
    outN = staticDim(op.dw, 2);
  }

  Value rowOf(Value e) {
    return asIndex(b, memref::LoadOp::create(b, op.offsets, ValueRange{e}));
  }

  /// The source row of operand `buffer` for grouped row r: through the
  /// owners map when that side is gathered, else r - base.
  Value sourceRow(Value r, bool gather) {
    if (!gather)
      return ix.sub(r, base);
    Value owner =
        asIndex(b, memref::LoadOp::create(b, op.owners, ValueRange{r}));
    return ix.div(owner, op.topK);
  }

  void planCopies() {
    auto plan = [&](int64_t width, int64_t columns, Value origin,
                    SmallVector<Copy> &out) {
      for (int64_t i = 0; i < kBK * width / (kChunk * kThreads); ++i) {
        Value id = ix.add(tid, i * kThreads);
        Value row = ix.div(id, width / kChunk);
        Value column = ix.mul(ix.rem(id, width / kChunk), kChunk);
        out.push_back(
            {row, column, ix.ult(ix.add(origin, column), ix.c(columns))});
      }
    };
    plan(kBM, outM, m0, copiesA);
    plan(kBN, outN, n0, copiesB);
  }

  /// Stage `stage` <- rows [begin + kt BK, +BK) of both operands.
  Value issueStage(Value kt, Value stage) {
    UnitAttr bypassL1 = b.getUnitAttr();
    Value k0 = ix.add(begin, ix.mul(kt, kBK));
    SmallVector<Value> tokens;
    auto copy = [&](const Copy &c, Value buffer, bool gather, Value origin,
                    Value shared) {
      Value r = ix.add(k0, c.row);
      Value ok = ix.both(c.columnValid, ix.ult(r, end));
      // A masked copy reads the expert's first row (which exists: the
      // pipeline runs for experts with rows only) at column 0, and fills
      // zeros.
      Value source = sourceRow(ix.select(ok, r, begin), gather);
      tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
          b, shared, ValueRange{stage, c.row, c.column}, buffer,
          ValueRange{source, ix.select(ok, ix.add(origin, c.column), 0)},
          b.getIndexAttr(kChunk), ix.select(ok, ix.c(kChunk), 0), bypassL1));
    };
    for (const Copy &c : copiesA)
      copy(c, op.lhs, op.gatherLhs, m0, sharedA);
    for (const Copy &c : copiesB)
      copy(c, op.rhs, op.gatherRhs, n0, sharedB);
    return nvgpu::DeviceAsyncCreateGroupOp::create(b, tokens).getResult();
  }

  SmallVector<Value> multiplyStage(Value stage, ValueRange carried) {
    MLIRContext *context = b.getContext();
    NVVM::MMATypes mmaType =
        element.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    Type f32 = b.getF32Type();
    Type accumulatorType =
        LLVM::LLVMStructType::getLiteral(context, {f32, f32, f32, f32});
    auto fragmentType = VectorType::get({4, 2}, element);
    SmallVector<Value> sums(carried);
    Value quarter = ix.div(lane, 8), within = ix.rem(lane, 8);
    for (int64_t kk = 0; kk < kBK; kk += 16) {
      SmallVector<SmallVector<Value>> fragA, fragB(kFragsN);
      for (int64_t mi = 0; mi < kFragsM; ++mi) {
        // Matrices (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15),
        // (m 8-15, k 8-15) of the [k][m] stage, each transposed.
        Value row = ix.add(ix.add(within, kk), ix.mul(ix.div(quarter, 2), 8));
        Value column = ix.add(ix.add(ix.mul(warpM, kWarpM), mi * 16),
                              ix.mul(ix.rem(quarter, 2), 8));
        fragA.push_back(fragmentRegisters(
            b, nvgpu::LdMatrixOp::create(b, fragmentType, sharedA,
                                         ValueRange{stage, row, column},
                                         /*transpose=*/true, /*numTiles=*/4),
            4));
      }
      for (int64_t j = 0; j < kFragsN; j += 2) {
        // (k 0-7, j), (k 8-15, j), (k 0-7, j+1), (k 8-15, j+1).
        Value row = ix.add(ix.add(within, kk), ix.mul(ix.rem(quarter, 2), 8));
        Value column = ix.add(ix.add(ix.mul(warpN, kWarpN), j * 8),
                              ix.mul(ix.div(quarter, 2), 8));
        SmallVector<Value> regs = fragmentRegisters(
            b, nvgpu::LdMatrixOp::create(b, fragmentType, sharedB,
                                         ValueRange{stage, row, column},
                                         /*transpose=*/true, /*numTiles=*/4),
            4);
        fragB[j] = {regs[0], regs[1]};
        fragB[j + 1] = {regs[2], regs[3]};
      }
      for (int64_t mi = 0; mi < kFragsM; ++mi)
        for (int64_t nj = 0; nj < kFragsN; ++nj) {
          int64_t at = (mi * kFragsN + nj) * 4;
          Value d = NVVM::MmaOp::create(
              b, accumulatorType, fragA[mi], fragB[nj],
              ArrayRef<Value>(sums).slice(at, 4),
              ArrayRef<int64_t>{16, 8, 16}, std::nullopt, std::nullopt,
              std::array<NVVM::MMATypes, 2>{mmaType, mmaType},
              std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                             NVVM::MMALayout::col});
          for (int64_t i = 0; i < 4; ++i)
            sums[at + i] =
                LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{i});
        }
    }
    return sums;
  }

  /// The cp.async pipeline over the expert's ceil(rows / BK) steps.
  SmallVector<Value> pipeline() {
    Value steps = ix.ceilDiv(ix.sub(end, begin), kBK);
    Value group;
    for (int64_t s = 0; s < kStages - 1; ++s)
      group = issueStage(ix.c(s), ix.c(s));
    SmallVector<Value> init(kFragsM * kFragsN * 4, lb.f32(0.0));
    SmallVector<Value> acc = lb.forLoopCarrying(
        zero, steps, init,
        [&](Value kt, ValueRange carried) -> SmallVector<Value> {
          // Step kt has landed and every warp is done with the stage the
          // next copy overwrites.
          nvgpu::DeviceAsyncWaitOp::create(b, group,
                                           b.getI32IntegerAttr(kStages - 2));
          gpu::BarrierOp::create(b);
          Value ahead = ix.add(kt, kStages - 1);
          issueStage(ahead, ix.rem(ahead, kStages));
          return multiplyStage(ix.rem(kt, kStages), carried);
        });
    nvgpu::DeviceAsyncWaitOp::create(b, group, b.getI32IntegerAttr(0));
    return acc;
  }

  /// dw[e, m, n] = acc (+= atomically when slices share dw); every element
  /// of the tile inside [M, N] is written, zeros for an expert with no rows.
  void store(ArrayRef<Value> acc) {
    Value laneRow = ix.div(lane, 4), laneColumn = ix.mul(ix.rem(lane, 4), 2);
    for (int64_t mi = 0; mi < kFragsM; ++mi)
      for (int64_t h = 0; h < 2; ++h) {
        Value m = ix.add(ix.add(m0, ix.mul(warpM, kWarpM)),
                         ix.add(laneRow, mi * 16 + h * 8));
        lb.ifThen(ix.ult(m, outM), [&] {
          for (int64_t nj = 0; nj < kFragsN; ++nj) {
            // N is a multiple of 8: a fragment is wholly in or out.
            Value start = ix.add(ix.add(n0, ix.mul(warpN, kWarpN)), nj * 8);
            lb.ifThen(ix.ult(start, outN), [&] {
              for (int64_t p = 0; p < 2; ++p) {
                Value value = acc[(mi * kFragsN + nj) * 4 + h * 2 + p];
                SmallVector<Value> at = {
                    expert, m, ix.add(ix.add(start, laneColumn), p)};
                if (op.slices > 1)
                  memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf,
                                              value, op.dw, at);
                else
                  lb.storeF32(value, op.dw, at);
              }
            });
          }
        });
      }
  }
};

} // namespace

TensorCoreWeightGrad
mlir::moek::TensorCoreWeightGrad::of(GroupedWeightGradOp op) {
  TensorCoreWeightGrad grad;
  grad.lhs = op.getLhs();
  grad.rhs = op.getRhs();
  grad.dw = op.getDw();
  grad.offsets = op.getOffsets();
  grad.owners = op.getOwners();
  grad.weights = op.getWeights();
  grad.firstExpert = op.getFirstExpert();
  grad.lastExpert = op.getLastExpert();
  grad.gatherLhs = op.getGatherLhs();
  grad.gatherRhs = op.getGatherRhs();
  grad.topK = op.getTopK();
  return grad;
}

bool mlir::moek::canLowerWeightGradToTensorCores(
    const TensorCoreWeightGrad &op, MLIRContext *context, std::string *why) {
  auto fail = [&](const Twine &reason) {
    if (why)
      *why = reason.str();
    return false;
  };
  if (!context->getLoadedDialect<nvgpu::NVGPUDialect>() ||
      !context->getLoadedDialect<vector::VectorDialect>() ||
      !context->getLoadedDialect<NVVM::NVVMDialect>() ||
      !context->getLoadedDialect<LLVM::LLVMDialect>())
    return fail("the nvgpu, vector, nvvm and llvm dialects are not loaded");
  auto lhs = cast<MemRefType>(op.lhs.getType());
  auto rhs = cast<MemRefType>(op.rhs.getType());
  auto dw = cast<MemRefType>(op.dw.getType());
  Type element = lhs.getElementType();
  if (!element.isBF16() && !element.isF16())
    return fail("operands are not bf16 or f16");
  if (rhs.getElementType() != element)
    return fail("lhs and rhs have different element types");
  if (op.weights)
    return fail("a weighted product (the weight would scale K rows)");
  if (!lhs.getLayout().isIdentity() || !rhs.getLayout().isIdentity() ||
      !dw.getLayout().isIdentity())
    return fail("a non-identity layout");
  if (lhs.isDynamicDim(1) || rhs.isDynamicDim(1))
    return fail("M or N is not static");
  if (lhs.getDimSize(1) % kChunk != 0 || rhs.getDimSize(1) % kChunk != 0)
    return fail("M or N is not a multiple of 8");
  if (!op.offsets && (dw.getDimSize(0) != 1 || op.gatherLhs || op.gatherRhs))
    return fail("a product without offsets has one group and no gather");
  if (op.slices > 1 && (op.offsets || !dw.getElementType().isF32()))
    return fail("slices add into an f32 dw of one group");
  return true;
}

void mlir::moek::lowerWeightGradToTensorCores(const TensorCoreWeightGrad &op,
                                              LoopBuilder &lb) {
  WeightGradKernel k(op, lb);
  ImplicitLocOpBuilder &b = k.b;
  Ix &ix = k.ix;
  int64_t experts = staticDim(op.dw, 0);
  k.zero = ix.c(0);
  Value one = ix.c(1);
  k.first = op.firstExpert ? op.firstExpert : k.zero;
  Value last = op.lastExpert ? op.lastExpert : ix.c(experts);
  // Grid z: the chunk's experts, or the slices of the one group's rows.
  Value gridZ;
  if (op.offsets) {
    Value span = arith::MaxSIOp::create(b, ix.sub(last, k.first), k.zero);
    // An empty chunk still launches one (idle) CTA: grids are never empty.
    gridZ = arith::MaxUIOp::create(b, span, one);
  } else {
    gridZ = ix.c(op.slices);
  }
  // Without offsets: every slice's rows, a multiple of BK (the last one
  // shorter, or empty for few rows).
  Value rows = op.offsets ? Value() : lb.dim(op.lhs, 0);
  Value sliceRows =
      op.offsets ? Value()
                 : ix.mul(ix.ceilDiv(ix.ceilDiv(rows, op.slices), kBK), kBK);
  auto launch = gpu::LaunchOp::create(
      b, ix.c((k.outM + kBM - 1) / kBM), ix.c((k.outN + kBN - 1) / kBN), gridZ,
      ix.c(kThreads), one, one, lb.i32(kSharedBytes));
  OpBuilder::InsertionGuard guard(b);
  enterLaunchBody(b, launch);

  k.tid = launch.getThreadIds().x;
  k.expert = op.offsets ? ix.add(k.first, launch.getBlockIds().z) : k.zero;
  lb.ifThen(ix.ult(k.expert, last), [&] {
    k.m0 = ix.mul(launch.getBlockIds().x, kBM);
    k.n0 = ix.mul(launch.getBlockIds().y, kBN);
    if (op.offsets) {
      k.begin = k.rowOf(k.expert);
      k.end = k.rowOf(ix.add(k.expert, 1));
      k.base = k.rowOf(k.first);
    } else {
      Value start =
          arith::MulIOp::create(b, launch.getBlockIds().z, sliceRows);
      k.begin = arith::MinUIOp::create(b, start, rows);
      k.end = arith::MinUIOp::create(b, ix.add(start, sliceRows), rows);
      k.base = k.zero;
    }
    Value warp = ix.div(k.tid, 32);
    k.lane = ix.rem(k.tid, 32);
    k.warpM = ix.div(warp, kWarpsN);
    k.warpN = ix.rem(warp, kWarpsN);
    MLIRContext *context = b.getContext();
    auto workgroup =
        gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup);
    auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                     MemRefLayoutAttrInterface(), workgroup);
    Value shared = gpu::DynamicSharedMemoryOp::create(b, bytesType);
    k.sharedA = memref::ViewOp::create(
        b,
        MemRefType::get({kStages, kBK, kRowA}, k.element,
                        MemRefLayoutAttrInterface(), workgroup),
        shared, k.zero, ValueRange{});
    k.sharedB = memref::ViewOp::create(
        b,
        MemRefType::get({kStages, kBK, kRowB}, k.element,
                        MemRefLayoutAttrInterface(), workgroup),
        shared, ix.c(kStages * kStageBytesA), ValueRange{});
    k.planCopies();
    // Every thread of the CTA takes the same branch, so the pipeline's
    // barriers are safe; an expert with no rows writes zeros (and reads no
    // row: its group may start past the last owner); an empty slice adds
    // nothing.
    lb.ifThen(ix.ult(k.begin, k.end), [&] { k.store(k.pipeline()); });
    if (op.slices == 1)
      lb.ifThen(ix.uge(k.begin, k.end), [&] {
        k.store(SmallVector<Value>(kFragsM * kFragsN * 4, lb.f32(0.0)));
      });
  });
}
