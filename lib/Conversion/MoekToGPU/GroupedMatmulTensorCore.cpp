//===- GroupedMatmulTensorCore.cpp - Tensor-core grouped GEMM on CUDA -----===//
//
// moek.grouped_matmul (or a plain GEMM: the router's scores) as one
// gpu.launch of warp-level tensor-core GEMM tiles, of a shape that is an
// option (TensorCoreTile; 128 x 256 x 32 in 4 stages by default):
//
// - Tile schedule (on the device, from the offsets): expert e owns
//   ceil(count_e / BM) consecutive row tiles of the grid's x dimension, so a
//   CTA computes BM rows of ONE expert's group times BN columns of b[e]
//   (grid.y). The host sizes grid.x as ceil(local rows / BM) + (last - first),
//   an upper bound of the tiles any routing needs; CTAs past the last tile
//   exit at once. Rows past the group's end are masked.
// - Operands are staged in shared memory (dynamic shared memory, 16-byte
//   aligned) by cp.async (nvgpu.device_async_copy) in a kStages-deep
//   pipeline; out-of-range 16-byte chunks (rows past the group, k past K,
//   columns past N) are zero-filled by the copy's source size, so they add 0.
//   A rows come from a[r - base], or through the row owners,
//   a[owners[r] / top_k] (gather prologue).
// - Fragments are loaded with ldmatrix (B transposed: b is [K, N] row-major),
//   and multiplied with mma.sync m16n8k16 (bf16 or f16, f32 accumulation).
//   With transpose_b (the backward's dy . w2^T and dh . w1^T), b[e] is
//   [N, K], K-contiguous: its stage is [BN][BK+pad] and ldmatrix loads it
//   without .trans, since mma.sync's B fragment is K-contiguous per column.
//   nvgpu.mma.sync cannot type bf16 operands in MLIR 22, so the mma is
//   nvvm.mma.sync on the fragments' 32-bit registers.
// - The epilogue works from the accumulator fragments: store; GLU, where the
//   CTA's BN columns of b are BN/2 gate columns [n0, n0 + BN/2) and the BN/2
//   up columns [F + n0, ...) laid out so that each thread holds gate f and up
//   F + f in the same accumulator slot; scatter_add with f32 atomics into
//   c[owners[r] / top_k] scaled by the routing weight (on sm_90 four
//   columns per 16-byte vector reduction, lanes trading accumulators).
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"
#include "lib/Conversion/MoekToGPU/WarpShuffle.h"
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

// 16-byte copies: 8 elements of 16 bits.
constexpr int64_t kChunk = 8;
// Shared rows are padded by 16 bytes so that the 8 row addresses of an
// ldmatrix fall in distinct banks.
constexpr int64_t kPad = 8;

/// The sizes a TensorCoreTile implies: a CTA computes BM rows x BN columns
/// of b, BK deep per pipeline stage, with warps in a warpsM x warpsN grid,
/// each warp (BM / warpsM) x (BN / warpsN) = fragsM x fragsN mma tiles of
/// 16 x 8.
/// A transposed b is staged as [BN][BK+pad] instead of [BK][BN+pad].
struct Geometry {
  explicit Geometry(const TensorCoreTile &tile, bool transposeB = false)
      : bm(tile.bm), bn(tile.bn), bk(tile.bk), stages(tile.stages),
        warpsM(tile.warpsM), warpsN(tile.warpsN),
        threads(32 * warpsM * warpsN), warpM(bm / warpsM), warpN(bn / warpsN),
        fragsM(warpM / 16), fragsN(warpN / 8), rowA(bk + kPad),
        rowB(transposeB ? bk + kPad : bn + kPad), stageBytesA(bm * rowA * 2),
        stageBytesB((transposeB ? bn : bk) * rowB * 2),
        sharedBytes(stages * (stageBytesA + stageBytesB)) {}

  int64_t bm, bn, bk, stages, warpsM, warpsN, threads, warpM, warpN, fragsM,
      fragsN, rowA, rowB, stageBytesA, stageBytesB, sharedBytes;
};

/// An instruction that writes memory and returns nothing, as inline PTX
/// (`text` with operands $0, $1, ...; `constraints` without the clobber).
void emitMemoryWrite(ImplicitLocOpBuilder &b, StringRef text,
                     StringRef constraints, ValueRange operands) {
  LLVM::InlineAsmOp::create(
      b, /*res=*/Type(), operands, b.getStringAttr(text),
      b.getStringAttr((constraints + ",~{memory}").str()),
      /*has_side_effects=*/b.getUnitAttr(),
      /*is_align_stack=*/UnitAttr(), LLVM::TailCallKindAttr(),
      /*asm_dialect=*/LLVM::AsmDialectAttr(), /*operand_attrs=*/ArrayAttr());
}

/// *(float4 *)address += values, atomically per element: PTX's vector
/// reduction (sm_90, PTX 8.1), which MLIR has no op for. The address is
/// generic and points to global memory, as the instruction allows.
void emitVectorReduction(ImplicitLocOpBuilder &b, Value address,
                         ArrayRef<Value> values) {
  SmallVector<Value> operands{address};
  operands.append(values.begin(), values.end());
  emitMemoryWrite(b, "red.relaxed.gpu.add.v4.f32 [$0], {$1, $2, $3, $4};",
                  "l,f,f,f,f", operands);
}

} // namespace

Value mlir::moek::packPair(ImplicitLocOpBuilder &b, Type element, Value first,
                           Value second) {
  Value vector = vector::FromElementsOp::create(
      b, VectorType::get({2}, element),
      ValueRange{arith::TruncFOp::create(b, element, first),
                 arith::TruncFOp::create(b, element, second)});
  return vector::ExtractOp::create(
      b,
      vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()),
                                vector),
      ArrayRef<int64_t>{0});
}

namespace {

/// st.global.b32 of two f32 values narrowed to `element` (packPair) at
/// `address` (i64, 4-byte aligned).
void emitPackedStore(ImplicitLocOpBuilder &b, Value address, Type element,
                     Value first, Value second) {
  emitMemoryWrite(b, "st.global.b32 [$0], $1;", "l,r",
                  ValueRange{address, packPair(b, element, first, second)});
}

} // namespace

void mlir::moek::emitQuadStores(
    LoopBuilder &lb, Value base, Type element, Value row, Value valid,
    Value firstColumn, Value columns, Value lane, int64_t fragments,
    function_ref<std::pair<Value, Value>(int64_t)> pair) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value position = ix.rem(lane, 4);
  for (int64_t block = 0; block < fragments; block += 4) {
    SmallVector<Value> words;
    for (int64_t i = 0; i < 4; ++i) {
      auto [first, second] = pair(block + i);
      words.push_back(packPair(b, element, first, second));
    }
    // Lane p now holds fragment block + p's columns 2 i, 2 i + 1 at i.
    SmallVector<Value> mine = transposeQuad(b, position, words);
    Value start = ix.add(firstColumn, ix.mul(ix.add(position, block), 8));
    lb.ifThen(ix.both(valid, ix.ult(start, columns)), [&] {
      Value offset = ix.mul(
          ix.add(arith::MulIOp::create(b, row, columns).getResult(), start), 2);
      SmallVector<Value> operands{
          arith::IndexCastOp::create(b, b.getI64Type(), ix.add(base, offset))};
      operands.append(mine.begin(), mine.end());
      emitMemoryWrite(b, "st.global.v4.b32 [$0], {$1, $2, $3, $4};",
                      "l,r,r,r,r", operands);
    });
  }
}

SmallVector<Value> mlir::moek::fragmentRegisters(ImplicitLocOpBuilder &b,
                                                 Value fragment,
                                                 int64_t count) {
  auto type = cast<VectorType>(fragment.getType());
  Type element = type.getElementType();
  SmallVector<Value> registers;
  for (int64_t i = 0; i < count; ++i) {
    Value pair = vector::ExtractOp::create(b, fragment, ArrayRef<int64_t>{i});
    if (element.isBF16()) {
      Value word = vector::BitCastOp::create(
          b, VectorType::get({1}, b.getI32Type()), pair);
      pair = vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
    }
    registers.push_back(pair);
  }
  return registers;
}

std::string TensorCoreTile::validate(int64_t maxSharedBytes) const {
  if (bm < 1 || bn < 1 || bk < 1 || stages < 2 || warpsM < 1 || warpsN < 1)
    return "sizes must be positive and stages at least 2";
  if (bm % (16 * warpsM) != 0)
    return "BM must be a multiple of 16 x warpsM";
  if (bn % (32 * warpsN) != 0)
    return "BN must be a multiple of 32 x warpsN (B fragments load in pairs "
           "within each half of a GLU tile)";
  if (bk % 16 != 0)
    return "BK must be a multiple of 16";
  Geometry g(*this);
  // The backward's transposed-B GEMMs stage b as [BN][BK+pad]: the larger
  // of the two layouts must fit.
  int64_t sharedBytes =
      std::max(g.sharedBytes, Geometry(*this, /*transposeB=*/true).sharedBytes);
  if (g.threads > 1024)
    return "more than 1024 threads per CTA";
  if ((bm * bk) % (kChunk * g.threads) != 0 ||
      (bk * bn) % (kChunk * g.threads) != 0)
    return "each thread must copy whole 16-byte chunks of A and B per stage";
  if (sharedBytes > maxSharedBytes)
    return "needs " + std::to_string(sharedBytes) +
           " bytes of shared memory (the chip has at most " +
           std::to_string(maxSharedBytes) + " per block)";
  return "";
}

std::string TensorCoreTile::parse(StringRef text, TensorCoreTile &out,
                                  int64_t maxSharedBytes) {
  SmallVector<StringRef> parts;
  text.split(parts, 'x');
  SmallVector<int64_t> values;
  for (StringRef part : parts) {
    int64_t value;
    if (part.getAsInteger(10, value))
      return "'" + text.str() + "' is not BMxBNxBKxSTAGES[xWARPSMxWARPSN]";
    values.push_back(value);
  }
  if (values.size() != 4 && values.size() != 6)
    return "'" + text.str() + "' is not BMxBNxBKxSTAGES[xWARPSMxWARPSN]";
  TensorCoreTile tile;
  tile.bm = values[0];
  tile.bn = values[1];
  tile.bk = values[2];
  tile.stages = values[3];
  if (values.size() == 6) {
    tile.warpsM = values[4];
    tile.warpsN = values[5];
  }
  std::string why = tile.validate(maxSharedBytes);
  if (!why.empty())
    return "tile '" + text.str() + "': " + why;
  out = tile;
  return "";
}

/// The operands and attributes that moek.grouped_matmul and its tile share.
template <typename OpT>
static TensorCoreGemm gemmOf(OpT op) {
  TensorCoreGemm gemm;
  gemm.a = op.getA();
  gemm.b = op.getB();
  gemm.c = op.getC();
  gemm.offsets = op.getOffsets();
  gemm.owners = op.getOwners();
  gemm.weights = op.getWeights();
  gemm.firstExpert = op.getFirstExpert();
  gemm.lastExpert = op.getLastExpert();
  gemm.epilogue = op.getEpilogue();
  gemm.gather = op.getGather();
  gemm.transposeB = op.getTransposeB();
  gemm.topK = op.getTopK();
  gemm.preActivation = op.getPreActivation();
  return gemm;
}

TensorCoreGemm mlir::moek::TensorCoreGemm::of(GroupedMatmulOp op) {
  return gemmOf(op);
}

TensorCoreGemm mlir::moek::TensorCoreGemm::of(GroupedMatmulTileOp op) {
  TensorCoreGemm gemm = gemmOf(op);
  ArrayRef<int64_t> tile = op.getTile();
  gemm.tile = {tile[0], tile[1], tile[2], tile[3], tile[4], tile[5]};
  return gemm;
}

std::string mlir::moek::checkGemmCluster(llvm::StringRef choice) {
  if (choice == "auto" || choice == "1" || choice == "2")
    return "";
  return ("'" + choice + "' is not auto, 1 or 2").str();
}

bool mlir::moek::canLowerToTensorCores(const TensorCoreGemm &op,
                                       MLIRContext *context, std::string *why) {
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
  auto aType = cast<MemRefType>(op.a.getType());
  auto bType = cast<MemRefType>(op.b.getType());
  auto cType = cast<MemRefType>(op.c.getType());
  Type element = aType.getElementType();
  if (!element.isBF16() && !element.isF16())
    return fail("operands are not bf16 or f16");
  if (bType.getElementType() != element)
    return fail("a and b have different element types");
  if (aType.getRank() != 2 || bType.getRank() != 3 || cType.getRank() != 2)
    return fail("unexpected ranks");
  if (!aType.getLayout().isIdentity() || !bType.getLayout().isIdentity() ||
      !cType.getLayout().isIdentity())
    return fail("a, b or c has a non-identity layout");
  if (op.preActivation &&
      !cast<MemRefType>(op.preActivation.getType()).getLayout().isIdentity())
    return fail("pre_activation has a non-identity layout");
  unsigned kDim = op.transposeB ? 2 : 1, nDim = op.transposeB ? 1 : 2;
  if (bType.isDynamicDim(1) || bType.isDynamicDim(2) ||
      aType.isDynamicDim(1) || aType.getDimSize(1) != bType.getDimSize(kDim))
    return fail("K or N is not static");
  int64_t depth = bType.getDimSize(kDim), width = bType.getDimSize(nDim);
  Epilogue epilogue = op.epilogue;
  bool glu = isGlu(epilogue);
  if (glu && op.transposeB)
    return fail("a GLU epilogue with b transposed");
  if (!op.offsets && bType.getDimSize(0) != 1)
    return fail("a GEMM without offsets has more than one group");
  if (depth % kChunk != 0)
    return fail("K is not a multiple of 8");
  if (width % (glu ? 2 * kChunk : kChunk) != 0)
    return fail("the output width is not a multiple of 8");
  if (!isa<FloatType>(cType.getElementType()))
    return fail("c is not a float buffer");
  if (epilogue == Epilogue::scatter_add && !cType.getElementType().isF32())
    return fail("scatter_add into a non-f32 buffer");
  if (op.accumulate && epilogue != Epilogue::store)
    return fail("an accumulating epilogue that is not a store");
  if ((op.gather || epilogue == Epilogue::scatter_add ||
       epilogue == Epilogue::scatter_store) &&
      !op.owners)
    return fail("no row owners");
  return true;
}

RowTile mlir::moek::scheduleRowTile(LoopBuilder &lb, Value first, Value last,
                                    Value tile, int64_t bm,
                                    function_ref<Value(Value)> rowOf,
                                    Value zero) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  if (!zero)
    zero = ix.c(0);
  // Carried: tiles before e, and the expert / first row / end of the hit.
  SmallVector<Value> hit = lb.forLoopCarrying(
      first, last, ValueRange{zero, zero, zero, zero},
      [&](Value e, ValueRange s) -> SmallVector<Value> {
        Value begin = rowOf(e), end = rowOf(ix.add(e, 1));
        Value next = ix.add(s[0], ix.ceilDiv(ix.sub(end, begin), bm));
        Value mine = ix.both(ix.uge(tile, s[0]), ix.ult(tile, next));
        Value start = ix.add(begin, ix.mul(ix.sub(tile, s[0]), bm));
        return {next, ix.select(mine, e, s[1]), ix.select(mine, start, s[2]),
                ix.select(mine, end, s[3])};
      });
  return {hit[1], hit[2], hit[3]};
}

namespace {

/// The mma.sync kernel under construction, one step a method, in the order
/// lowerToTensorCores calls them: the host's grid, the device-side tile
/// schedule, the shared-memory stages, each thread's copy plan, the
/// cp.async pipeline, the ldmatrix + mma.sync multiply of a stage, then the
/// shared epilogue (emitAccumulatorEpilogue).
struct MmaSyncKernel {
  const TensorCoreGemm &op;
  LoopBuilder &lb;
  ImplicitLocOpBuilder &b;
  Ix ix;
  const Geometry g;
  Type element;
  int64_t depth, width, outputs, tileOutputs;
  bool glu;
  Value zero, one, first, last, localRows;
  // Inside the launch.
  Value tid, tile, columnTile, expert, rowBegin, rowEnd, base, rows;
  Value lane, warpM, warpN, n0, sharedA, sharedB;
  /// Each thread's 16-byte copies, the same in every k tile.
  struct Copy {
    Value row, column, source, valid;
  };
  SmallVector<Copy> copiesA, copiesB;

  MmaSyncKernel(const TensorCoreGemm &op, LoopBuilder &lb)
      : op(op), lb(lb), b(lb.builder()), ix{b, lb},
        g(op.tile, op.transposeB) {
    auto bType = cast<MemRefType>(op.b.getType());
    element = bType.getElementType();
    depth = bType.getDimSize(op.transposeB ? 2 : 1);
    width = bType.getDimSize(op.transposeB ? 1 : 2);
    glu = isGlu(op.epilogue);
    // Output columns per row, and per CTA.
    outputs = glu ? width / 2 : width;
    tileOutputs = glu ? g.bn / 2 : g.bn;
  }

  /// Where group e starts; without offsets the one group is all of a.
  Value rowOf(Value e) {
    if (!op.offsets)
      return ix.select(ix.ult(e, one), zero, localRows);
    return asIndex(b, memref::LoadOp::create(b, op.offsets, ValueRange{e}));
  }

  void initBounds();
  TensorCoreGrid grid();
  gpu::LaunchOp launchGrid();
  void scheduleTile();
  void emitTile(Value tileExpert, Value tileRowBegin, Value tileRowEnd,
                Value tileColumn);
  void viewSharedMemory();
  void planCopies();
  Value issueStage(Value kt, Value stage);
  Value fragmentColumn(int64_t j);
  SmallVector<Value> multiplyStage(Value stage, ValueRange carried);
  SmallVector<Value> pipeline();
};

/// The experts' range and the local rows (of c for a gather, else of a),
/// where the builder is.
void MmaSyncKernel::initBounds() {
  int64_t experts = cast<MemRefType>(op.b.getType()).getDimSize(0);
  zero = ix.c(0);
  one = ix.c(1);
  first = op.firstExpert ? op.firstExpert : zero;
  last = op.lastExpert ? op.lastExpert : ix.c(experts);
  localRows = op.gather ? lb.dim(op.c, 0) : lb.dim(op.a, 0);
}

/// Host: an upper bound of the row tiles any routing needs (ceil(rows / BM)
/// + experts), and the column tiles.
TensorCoreGrid MmaSyncKernel::grid() {
  initBounds();
  Value span = arith::MaxSIOp::create(b, ix.sub(last, first), zero);
  Value rowTiles = ix.add(ix.ceilDiv(localRows, g.bm), span);
  return {arith::MaxUIOp::create(b, rowTiles, one),
          ix.c((outputs + tileOutputs - 1) / tileOutputs)};
}

/// Host: one CTA per tile of grid().
gpu::LaunchOp MmaSyncKernel::launchGrid() {
  TensorCoreGrid tiles = grid();
  Value sharedBytes = lb.i32(g.sharedBytes);
  return gpu::LaunchOp::create(b, tiles.rowTiles, tiles.columnTiles, one,
                               ix.c(g.threads), one, one, sharedBytes);
}

/// The CTA's row tile (grid.x) of the shared schedule.
void MmaSyncKernel::scheduleTile() {
  RowTile hit = scheduleRowTile(
      lb, first, last, tile, g.bm, [&](Value e) { return rowOf(e); }, zero);
  expert = hit.expert;
  rowBegin = hit.rowBegin;
  rowEnd = hit.rowEnd;
}

/// Shared memory: kStages A tiles [BM][BK+pad], then kStages B tiles
/// [BK][BN+pad] ([BN][BK+pad] for a transposed b).
void MmaSyncKernel::viewSharedMemory() {
  MLIRContext *context = b.getContext();
  auto workgroup =
      gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup);
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value shared = gpu::DynamicSharedMemoryOp::create(b, bytesType);
  auto sharedAType = MemRefType::get({g.stages, g.bm, g.rowA}, element,
                                     MemRefLayoutAttrInterface(), workgroup);
  auto sharedBType = MemRefType::get({g.stages, op.transposeB ? g.bn : g.bk,
                                      g.rowB},
                                     element,
                                     MemRefLayoutAttrInterface(), workgroup);
  sharedA = memref::ViewOp::create(b, sharedAType, shared, zero, ValueRange{});
  sharedB = memref::ViewOp::create(b, sharedBType, shared,
                                   ix.c(g.stages * g.stageBytesA),
                                   ValueRange{});
}

/// Each thread's chunks of A (through the row owners for a gather) and of
/// B (gate and up columns side by side for a GLU).
void MmaSyncKernel::planCopies() {
  for (int64_t i = 0; i < g.bm * g.bk / (kChunk * g.threads); ++i) {
    Value id = ix.add(tid, i * g.threads);
    Value row = ix.div(id, g.bk / kChunk);
    Value column = ix.mul(ix.rem(id, g.bk / kChunk), kChunk);
    Value valid = ix.ult(row, rows);
    // A masked row reads the group's first row, which exists.
    Value r = ix.add(rowBegin, ix.select(valid, row, 0));
    Value source;
    if (op.gather) {
      Value owner =
          asIndex(b, memref::LoadOp::create(b, op.owners, ValueRange{r}));
      source = ix.div(owner, op.topK);
    } else {
      source = ix.sub(r, base);
    }
    copiesA.push_back({row, column, source, valid});
  }
  for (int64_t i = 0; i < g.bk * g.bn / (kChunk * g.threads); ++i) {
    Value id = ix.add(tid, i * g.threads);
    if (op.transposeB) {
      // Shared row n holds column n0 + n of the output, K-contiguous; the
      // chunk's k offset (column) is added per stage.
      Value row = ix.div(id, g.bk / kChunk);
      Value column = ix.mul(ix.rem(id, g.bk / kChunk), kChunk);
      Value source = ix.add(n0, row);
      copiesB.push_back({row, column, source, ix.ult(source, width)});
      continue;
    }
    Value row = ix.div(id, g.bn / kChunk);
    Value column = ix.mul(ix.rem(id, g.bn / kChunk), kChunk);
    Value source, valid;
    if (glu) {
      // Shared columns [0, BN/2): gate n0 + j; [BN/2, BN): up F + n0 + j.
      Value up = ix.uge(column, ix.c(g.bn / 2));
      Value logical =
          ix.add(n0, ix.select(up, ix.sub(column, ix.c(g.bn / 2)), column));
      valid = ix.ult(logical, outputs);
      source = ix.add(logical, ix.select(up, ix.c(outputs), 0));
    } else {
      source = ix.add(n0, column);
      valid = ix.ult(source, width);
    }
    copiesB.push_back({row, column, source, valid});
  }
}

/// Stage `stage` <- k tile `kt`; chunks out of range are zero-filled.
Value MmaSyncKernel::issueStage(Value kt, Value stage) {
  UnitAttr bypassL1 = b.getUnitAttr();
  Value k0 = ix.mul(kt, g.bk);
  SmallVector<Value> tokens;
  for (const Copy &copy : copiesA) {
    Value k = ix.add(k0, copy.column);
    Value ok = ix.both(copy.valid, ix.ult(k, depth));
    tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
        b, sharedA, ValueRange{stage, copy.row, copy.column}, op.a,
        ValueRange{ix.select(ok, copy.source, 0), ix.select(ok, k, 0)},
        b.getIndexAttr(kChunk), ix.select(ok, ix.c(kChunk), 0), bypassL1));
  }
  for (const Copy &copy : copiesB) {
    if (op.transposeB) {
      Value k = ix.add(k0, copy.column);
      Value ok = ix.both(copy.valid, ix.ult(k, depth));
      tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
          b, sharedB, ValueRange{stage, copy.row, copy.column}, op.b,
          ValueRange{expert, ix.select(ok, copy.source, 0),
                     ix.select(ok, k, 0)},
          b.getIndexAttr(kChunk), ix.select(ok, ix.c(kChunk), 0), bypassL1));
      continue;
    }
    Value k = ix.add(k0, copy.row);
    Value ok = ix.both(copy.valid, ix.ult(k, depth));
    tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
        b, sharedB, ValueRange{stage, copy.row, copy.column}, op.b,
        ValueRange{expert, ix.select(ok, k, 0),
                   ix.select(ok, copy.source, 0)},
        b.getIndexAttr(kChunk), ix.select(ok, ix.c(kChunk), 0), bypassL1));
  }
  return nvgpu::DeviceAsyncCreateGroupOp::create(b, tokens).getResult();
}

/// The shared column where the warp's n fragment j starts. For a GLU the
/// warp's first half of fragments are gate columns and the second half the
/// up columns that pair with them, element for element.
Value MmaSyncKernel::fragmentColumn(int64_t j) {
  if (!glu)
    return ix.add(ix.mul(warpN, g.warpN), j * 8);
  int64_t half = g.fragsN / 2;
  Value gateStart = ix.mul(warpN, g.warpN / 2);
  return j < half ? ix.add(gateStart, j * 8)
                  : ix.add(gateStart, g.bn / 2 + (j - half) * 8);
}

/// The warp's fragments of one stage (ldmatrix; b transposed) into its
/// accumulators (mma.sync m16n8k16).
SmallVector<Value> MmaSyncKernel::multiplyStage(Value stage,
                                                ValueRange carried) {
  MLIRContext *context = b.getContext();
  NVVM::MMATypes mmaType =
      element.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  Type f32 = b.getF32Type();
  Type accumulatorType =
      LLVM::LLVMStructType::getLiteral(context, {f32, f32, f32, f32});
  auto fragmentType = VectorType::get({4, 2}, element);
  SmallVector<Value> sums(carried);
  for (int64_t kk = 0; kk < g.bk; kk += 16) {
    SmallVector<SmallVector<Value>> fragA, fragB(g.fragsN);
    for (int64_t mi = 0; mi < g.fragsM; ++mi) {
      // Lanes 0-15 address rows 0-15 at k, lanes 16-31 at k + 8.
      Value row = ix.add(ix.add(ix.mul(warpM, g.warpM), mi * 16),
                         ix.rem(lane, 16));
      Value column = ix.add(ix.mul(ix.div(lane, 16), 8), kk);
      Value fragment = nvgpu::LdMatrixOp::create(
          b, fragmentType, sharedA, ValueRange{stage, row, column},
          /*transpose=*/false, /*numTiles=*/4);
      fragA.push_back(fragmentRegisters(b, fragment, 4));
    }
    for (int64_t j = 0; j < g.fragsN; j += 2) {
      // Matrices: (k 0-7, j), (k 8-15, j), (k 0-7, j+1), (k 8-15, j+1).
      Value quarter = ix.div(lane, 8);
      Value kOffset = ix.add(ix.mul(ix.rem(quarter, 2), 8), kk);
      Value nOffset =
          ix.add(fragmentColumn(j), ix.mul(ix.div(quarter, 2), 8));
      Value row, column;
      if (op.transposeB) {
        // The stage is [n][k]: lane l addresses row n = column j (or j+1)
        // + l % 8 at k or k + 8; an untransposed 8x8 load then gives each
        // lane the two k-adjacent values of one n, B's fragment layout.
        row = ix.add(nOffset, ix.rem(lane, 8));
        column = kOffset;
      } else {
        row = ix.add(kOffset, ix.rem(lane, 8));
        column = nOffset;
      }
      Value fragment = nvgpu::LdMatrixOp::create(
          b, fragmentType, sharedB, ValueRange{stage, row, column},
          /*transpose=*/!op.transposeB, /*numTiles=*/4);
      SmallVector<Value> regs = fragmentRegisters(b, fragment, 4);
      fragB[j] = {regs[0], regs[1]};
      fragB[j + 1] = {regs[2], regs[3]};
    }
    for (int64_t mi = 0; mi < g.fragsM; ++mi)
      for (int64_t nj = 0; nj < g.fragsN; ++nj) {
        int64_t at = (mi * g.fragsN + nj) * 4;
        ArrayRef<Value> sum = ArrayRef<Value>(sums).slice(at, 4);
        Value d = NVVM::MmaOp::create(
            b, accumulatorType, fragA[mi], fragB[nj], sum,
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

/// The cp.async pipeline: kStages - 1 tiles in flight ahead of the one
/// being multiplied. Returns the accumulators.
SmallVector<Value> MmaSyncKernel::pipeline() {
  // Prologue: the first kStages - 1 tiles in flight.
  Value group;
  for (int64_t s = 0; s < g.stages - 1; ++s)
    group = issueStage(ix.c(s), ix.c(s));
  int64_t numK = (depth + g.bk - 1) / g.bk;
  SmallVector<Value> init(g.fragsM * g.fragsN * 4, lb.f32(0.0));
  SmallVector<Value> acc = lb.forLoopCarrying(
      zero, ix.c(numK), init,
      [&](Value kt, ValueRange carried) -> SmallVector<Value> {
        // Tile kt has landed (at most kStages - 2 younger groups pending)
        // and every warp is done with the stage the next copy overwrites.
        nvgpu::DeviceAsyncWaitOp::create(b, group,
                                         b.getI32IntegerAttr(g.stages - 2));
        gpu::BarrierOp::create(b);
        Value ahead = ix.add(kt, g.stages - 1);
        issueStage(ahead, ix.rem(ahead, g.stages));
        return multiplyStage(ix.rem(kt, g.stages), carried);
      });
  // No copy is left in flight when the CTA exits.
  nvgpu::DeviceAsyncWaitOp::create(b, group, b.getI32IntegerAttr(0));
  return acc;
}

/// The CTA's tile: rows [tileRowBegin, min(tileRowBegin + BM, tileRowEnd))
/// of `tileExpert` by column tile `tileColumn`; tid and the bounds are set.
void MmaSyncKernel::emitTile(Value tileExpert, Value tileRowBegin,
                             Value tileRowEnd, Value tileColumn) {
  expert = tileExpert;
  rowBegin = tileRowBegin;
  rowEnd = tileRowEnd;
  columnTile = tileColumn;
  base = rowOf(first);
  rows = ix.minu(ix.sub(rowEnd, rowBegin), g.bm);
  Value warp = ix.div(tid, 32);
  lane = ix.rem(tid, 32);
  warpM = ix.div(warp, g.warpsN);
  warpN = ix.rem(warp, g.warpsN);
  n0 = ix.mul(columnTile, tileOutputs);
  viewSharedMemory();
  planCopies();
  SmallVector<Value> acc = pipeline();
  FragmentTile frame{rowBegin, rows, base, n0, lane, ix.mul(warpM, g.warpM),
                     ix.mul(warpN, glu ? g.warpN / 2 : g.warpN), g.fragsM,
                     g.fragsN};
  emitAccumulatorEpilogue(op, lb, frame, acc);
}

} // namespace

void mlir::moek::lowerToTensorCores(const TensorCoreGemm &op,
                                    LoopBuilder &lb) {
  MmaSyncKernel k(op, lb);
  ImplicitLocOpBuilder &b = k.b;
  gpu::LaunchOp launch = k.launchGrid();
  OpBuilder::InsertionGuard guard(b);
  enterLaunchBody(b, launch);

  k.tid = launch.getThreadIds().x;
  k.tile = launch.getBlockIds().x;
  k.scheduleTile();
  // Every thread of a CTA takes the same branch: barriers inside are safe.
  lb.ifThen(k.ix.ult(k.rowBegin, k.rowEnd), [&] {
    k.emitTile(k.expert, k.rowBegin, k.rowEnd, launch.getBlockIds().y);
  });
}

TensorCoreGrid mlir::moek::tensorCoreGrid(const TensorCoreGemm &gemm,
                                          LoopBuilder &lb) {
  return MmaSyncKernel(gemm, lb).grid();
}

TensorCoreLaunchShape
mlir::moek::tensorCoreLaunchShape(const TensorCoreGemm &gemm) {
  Geometry g(gemm.tile, gemm.transposeB);
  return {g.threads, g.sharedBytes};
}

void mlir::moek::emitTensorCoreTile(const TensorCoreGemm &gemm,
                                    LoopBuilder &lb, Value tid, Value expert,
                                    Value rowBegin, Value rowEnd,
                                    Value columnTile) {
  MmaSyncKernel k(gemm, lb);
  // A tile's gemm has offsets: rowOf reads them, not the local rows.
  k.zero = k.ix.c(0);
  k.first = gemm.firstExpert ? gemm.firstExpert : k.zero;
  k.tid = tid;
  k.emitTile(expert, rowBegin, rowEnd, columnTile);
}

void mlir::moek::emitAccumulatorEpilogue(const TensorCoreGemm &op,
                                         LoopBuilder &lb,
                                         const FragmentTile &tile,
                                         ArrayRef<Value> acc) {
  if (op.accumulatorEpilogue)
    return op.accumulatorEpilogue(lb, tile, acc);
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value c = op.c, owners = op.owners, weights = op.weights;
  Value lane = tile.lane, rows = tile.rows, rowBegin = tile.rowBegin;
  Value base = tile.base, n0 = tile.n0;
  const int64_t kFragsM = tile.fragsM, kFragsN = tile.fragsN;
  Epilogue epilogue = op.epilogue;
  bool glu = isGlu(epilogue);
  bool scatterStore = epilogue == Epilogue::scatter_store;
  bool scatter = epilogue == Epilogue::scatter_add || scatterStore;
  int64_t width =
      cast<MemRefType>(op.b.getType()).getDimSize(op.transposeB ? 1 : 2);
  int64_t outputs = glu ? width / 2 : width;
  int64_t topK = op.topK;

  // Accumulator element (h, p) of fragment (mi, nj) is row
  // 16 mi + 8 h + lane / 4, column 8 nj + 2 (lane % 4) + p of the warp tile.
  Value laneRow = ix.div(lane, 4), laneColumn = ix.mul(ix.rem(lane, 4), 2);
  bool gelu = epilogue == Epilogue::gelu_glu;
  if (epilogue == Epilogue::scatter_add && op.vectorAtomics) {
    // Lanes l and l ^ 1 trade halves of their accumulators so that each
    // holds four adjacent columns of one row (the even lane row 8 h + q
    // with h = 0, the odd lane h = 1) and adds them with one 16-byte
    // reduction: a quarter of the scalar atomics. Columns start at a
    // multiple of 4 and rows are a multiple of 8 floats long, so with c
    // 16-byte aligned (allocations and the memory plan are) every
    // address is.
    Value cBase = memref::ExtractAlignedPointerAsIndexOp::create(b, c);
    Value odd = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                      ix.rem(lane, 2), ix.c(0));
    Value quadColumn = ix.mul(ix.div(ix.rem(lane, 4), 2), 4);
    for (int64_t mi = 0; mi < kFragsM; ++mi) {
      Value row = ix.add(ix.add(tile.warpRow, mi * 16),
                         ix.add(laneRow, ix.select(odd, ix.c(8), 0)));
      Value valid = ix.ult(row, rows);
      // A masked row reads the group's first row's owner, which exists.
      Value r = ix.add(rowBegin, ix.select(valid, row, 0));
      Value owner =
          asIndex(b, memref::LoadOp::create(b, owners, ValueRange{r}));
      Value token = ix.div(owner, topK);
      // Without weights the weight is 1 (the backward's dh carries it).
      Value weight =
          weights ? lb.loadF32(weights, {token, ix.rem(owner, topK)})
                  : Value();
      for (int64_t nj = 0; nj < kFragsN; ++nj) {
        int64_t at = (mi * kFragsN + nj) * 4;
        // Accumulators: [at, at + 1] row q, [at + 2, at + 3] row q + 8.
        SmallVector<Value> mine, theirs;
        for (int64_t p = 0; p < 2; ++p) {
          Value send = arith::SelectOp::create(b, odd, acc[at + p],
                                               acc[at + 2 + p]);
          theirs.push_back(gpu::ShuffleOp::create(b, send, 1, 32,
                                                  gpu::ShuffleMode::XOR)
                               .getShuffleResult());
          mine.push_back(arith::SelectOp::create(b, odd, acc[at + 2 + p],
                                                 acc[at + p]));
        }
        // The even lane has columns 0-1 and receives 2-3; the odd lane
        // receives 0-1 and has 2-3.
        SmallVector<Value> quad;
        for (int64_t i = 0; i < 4; ++i) {
          Value first = i < 2 ? mine[i] : theirs[i - 2];
          Value second = i < 2 ? theirs[i] : mine[i - 2];
          Value value = arith::SelectOp::create(b, odd, second, first);
          quad.push_back(weight ? arith::MulFOp::create(b, weight, value)
                                : value);
        }
        Value start = ix.add(ix.add(n0, tile.warpColumn), nj * 8);
        lb.ifThen(ix.both(valid, ix.ult(start, outputs)), [&] {
          Value element = ix.add(ix.mul(token, outputs),
                                 ix.add(start, quadColumn));
          Value address = ix.add(cBase, ix.mul(element, 4));
          emitVectorReduction(
              b, arith::IndexCastOp::create(b, b.getI64Type(), address),
              quad);
        });
      }
    }
    return;
  }
  // A 16-bit output written (not added to) takes packed stores.
  Type cElement = cast<MemRefType>(c.getType()).getElementType();
  bool packedStores = cElement.getIntOrFloatBitWidth() == 16 &&
                      !op.accumulate &&
                      (glu || scatterStore || epilogue == Epilogue::store);
  Value cBase = packedStores
                    ? memref::ExtractAlignedPointerAsIndexOp::create(b, c)
                          .getResult()
                    : Value();
  // A store, or a GLU without its saved h, 16 bytes a lane: a GLU's gate
  // fragments are the first half, each pairing with the up fragment
  // fragsN / 2 further.
  int64_t quadFragments = glu ? kFragsN / 2 : kFragsN;
  if (tile.quadStores && packedStores && quadFragments % 4 == 0 &&
      (epilogue == Epilogue::store || (glu && !op.preActivation))) {
    for (int64_t mi = 0; mi < kFragsM; ++mi)
      for (int64_t h = 0; h < 2; ++h) {
        Value row = ix.add(ix.add(tile.warpRow, mi * 16 + h * 8), laneRow);
        Value valid = ix.ult(row, rows);
        // A masked row computes an address it does not store to.
        Value local = ix.sub(ix.add(rowBegin, ix.select(valid, row, 0)), base);
        emitQuadStores(lb, cBase, cElement, local, valid,
                       ix.add(n0, tile.warpColumn), ix.c(outputs), lane,
                       quadFragments, [&](int64_t nj) {
                         int64_t at = (mi * kFragsN + nj) * 4 + h * 2;
                         if (!glu)
                           return std::make_pair(acc[at], acc[at + 1]);
                         int64_t up = at + (kFragsN / 2) * 4;
                         auto activated = [&](int64_t p) -> Value {
                           return arith::MulFOp::create(
                               b, activate(lb, acc[at + p], gelu), acc[up + p]);
                         };
                         return std::make_pair(activated(0), activated(1));
                       });
      }
    return;
  }
  // The saved pre-activation: the lane's gate and up columns of fragment
  // (mi, nj) as they are, packed in pairs when 16-bit (as c's stores are).
  Value preActivation = glu ? op.preActivation : Value();
  Type hElement =
      preActivation ? cast<MemRefType>(preActivation.getType()).getElementType()
                    : Type();
  bool packedH = preActivation && hElement.getIntOrFloatBitWidth() == 16;
  Value hBase =
      packedH ? memref::ExtractAlignedPointerAsIndexOp::create(b, preActivation)
                    .getResult()
              : Value();
  auto storePreActivation = [&](int64_t mi, int64_t nj, int64_t half,
                                Value local, Value start) {
    for (int64_t part = 0; part < 2; ++part) {
      // part 0: gate columns `start`, part 1: the up columns F + start.
      int64_t fragment = mi * kFragsN + nj + part * (kFragsN / 2);
      Value column = ix.add(ix.add(start, laneColumn), part * outputs);
      Value first = acc[fragment * 4 + half * 2],
            second = acc[fragment * 4 + half * 2 + 1];
      if (!packedH) {
        lb.storeF32(first, preActivation, {local, column});
        lb.storeF32(second, preActivation, {local, ix.add(column, 1)});
        continue;
      }
      Value element = ix.add(ix.mul(local, width), column);
      emitPackedStore(b,
                      arith::IndexCastOp::create(
                          b, b.getI64Type(), ix.add(hBase, ix.mul(element, 2))),
                      hElement, first, second);
    }
  };
  for (int64_t mi = 0; mi < kFragsM; ++mi)
    for (int64_t h = 0; h < 2; ++h) {
      Value row = ix.add(ix.add(tile.warpRow, mi * 16 + h * 8),
                         laneRow);
      lb.ifThen(ix.ult(row, rows), [&] {
        Value r = ix.add(rowBegin, row);
        Value local = ix.sub(r, base);
        Value token, weight;
        if (scatter) {
          Value owner =
              asIndex(b, memref::LoadOp::create(b, owners, ValueRange{r}));
          token = ix.div(owner, topK);
          if (weights)
            weight = lb.loadF32(weights, {token, ix.rem(owner, topK)});
        }
        int64_t fragments = glu ? kFragsN / 2 : kFragsN;
        for (int64_t nj = 0; nj < fragments; ++nj) {
          // The fragment's first output column; N (or F) is a multiple of
          // 8, so the fragment is wholly in range or wholly out.
          Value start = ix.add(ix.add(n0, tile.warpColumn), nj * 8);
          lb.ifThen(ix.ult(start, outputs), [&] {
            if (preActivation)
              storePreActivation(mi, nj, h, local, start);
            if (packedStores) {
              // The lane's two adjacent columns as one 32-bit store of two
              // 16-bit values (half the store instructions of an element
              // each; the column is even and rows are a multiple of 8
              // elements, so the address is 4-byte aligned).
              SmallVector<Value> pair;
              for (int64_t p = 0; p < 2; ++p) {
                Value value = acc[(mi * kFragsN + nj) * 4 + h * 2 + p];
                if (glu)
                  value = arith::MulFOp::create(
                      b, activate(lb, value, gelu),
                      acc[(mi * kFragsN + nj + kFragsN / 2) * 4 + h * 2 + p]);
                else if (weight)
                  value = arith::MulFOp::create(b, weight, value);
                pair.push_back(value);
              }
              Value row = scatterStore ? token : local;
              Value element = ix.add(ix.mul(row, outputs),
                                     ix.add(start, laneColumn));
              emitPackedStore(
                  b,
                  arith::IndexCastOp::create(b, b.getI64Type(),
                                             ix.add(cBase, ix.mul(element, 2))),
                  cElement, pair[0], pair[1]);
              return;
            }
            for (int64_t p = 0; p < 2; ++p) {
              Value column = ix.add(ix.add(start, laneColumn), p);
              Value value = acc[(mi * kFragsN + nj) * 4 + h * 2 + p];
              if (glu) {
                Value up =
                    acc[(mi * kFragsN + nj + kFragsN / 2) * 4 + h * 2 + p];
                lb.storeF32(arith::MulFOp::create(
                                b, activate(lb, value, gelu), up),
                            c, {local, column});
              } else if (scatterStore) {
                // top_k = 1: the token's only row, in c's type.
                lb.storeF32(weight ? arith::MulFOp::create(b, weight, value)
                                   : value,
                            c, {token, column});
              } else if (scatter) {
                memref::AtomicRMWOp::create(
                    b, arith::AtomicRMWKind::addf,
                    weight ? arith::MulFOp::create(b, weight, value) : value,
                    c, ValueRange{token, column});
              } else if (op.accumulate) {
                // A 16-bit c is widened, added to and rounded once.
                Value prev = lb.loadF32(c, {local, column});
                lb.storeF32(arith::AddFOp::create(b, prev, value), c,
                            {local, column});
              } else {
                lb.storeF32(value, c, {local, column});
              }
            }
          });
        }
      });
    }
}
