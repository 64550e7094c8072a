
//===- BackwardKernelsGPU.cpp - The backward kernels as GPU kernels -------===//

#include "lib/Conversion/MoekToGPU/BackwardKernelsGPU.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToGPU/VectorAccess.h"
#include "lib/Conversion/MoekToGPU/WarpShuffle.h"
#include "lib/Conversion/MoekToLoops/BackwardLoops.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::moe;

namespace mlir::moek {

namespace {

Value load(ImplicitLocOpBuilder &b, Value buffer, ValueRange indices) {
  return memref::LoadOp::create(b, buffer, indices);
}

/// The router's backward: tokens whose dx one thread computes (each read
/// of w_gate serves them all), and tokens a dw_gate thread reduces over.
constexpr int64_t kTokensPerThread = 8;
constexpr int64_t kTokensPerSlice = 512;

std::pair<Value, Value> expertRange(LoopBuilder &lb, Value first, Value last,
                                    int64_t experts) {
  return {first ? first : lb.index(0), last ? last : lb.index(experts)};
}

/// Runs body(e, r, local) for the grouped row `local` rows past
/// offsets[first], when that row belongs to experts [first, last). The
/// offsets live on the device, so the kernel reads them and finds e.
void ifGroupedRow(LoopBuilder &lb, Value offsets, Value first, Value last,
                  Value local, function_ref<void(Value, Value)> body) {
  ImplicitLocOpBuilder &b = lb.builder();
  auto rowOf = [&](Value e) { return asIndex(b, load(b, offsets, {e})); };
  Value r = arith::AddIOp::create(b, rowOf(first), local);
  lb.ifThen(
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult, r, rowOf(last)), [&] {
        // The expert whose group holds row r: the last e with offsets[e] <= r.
        Value e = lb.forLoopCarrying(
            first, last, ValueRange{first},
            [&](Value candidate, ValueRange c) -> SmallVector<Value> {
              Value starts = arith::CmpIOp::create(
                  b, arith::CmpIPredicate::ule, rowOf(candidate), r);
              return {arith::SelectOp::create(b, starts, candidate, c[0])};
            })[0];
        body(e, r);
      });
}

/// Names the launch just emitted before the builder's insertion point
/// (moek-lower-to-gpu prefixes the op's name).
void nameLastLaunch(ImplicitLocOpBuilder &b, StringRef part) {
  auto launch = cast<gpu::LaunchOp>(*std::prev(b.getInsertionPoint()));
  launch.setFunctionAttr(FlatSymbolRefAttr::get(b.getContext(), part));
}

/// Columns a lane of the GLU backward takes at once: 8 (a 16-byte load of a
/// 16-bit row) when F is static and a multiple of 8 and every row buffer is
/// dense; else 1.
int64_t gluBackwardWidth(GroupedGluBackwardOp op) {
  constexpr int64_t kWidth = 8;
  int64_t ffn = staticDim(op.getG(), 1);
  if (ShapedType::isDynamic(ffn) || ffn % kWidth != 0)
    return 1;
  for (Value rows : {op.getG(), op.getGateUp(), op.getAct(), op.getDh()}) {
    auto type = cast<MemRefType>(rows.getType());
    if (!type.getLayout().isIdentity() ||
        ShapedType::isDynamic(type.getDimSize(1)))
      return 1;
  }
  return kWidth;
}

/// `width` elements of `rows` at (row, column), widened to f32 scalars.
SmallVector<Value> loadRowSlice(ImplicitLocOpBuilder &b, Value rows, Value row,
                                Value column, int64_t width) {
  // Rows and allocations are 16-byte aligned, columns a multiple of width.
  SmallVector<Value> values = loadAdjacent(b, rows, {row, column}, width);
  for (Value &value : values)
    if (!value.getType().isF32())
      value = arith::ExtFOp::create(b, b.getF32Type(), value);
  return values;
}

/// Stores f32 `values` into `rows` at (row, column), rounded to its type.
void storeRowSlice(ImplicitLocOpBuilder &b, ArrayRef<Value> values, Value rows,
                   Value row, Value column) {
  Type element = cast<MemRefType>(rows.getType()).getElementType();
  SmallVector<Value> narrowed;
  for (Value value : values)
    narrowed.push_back(element.isF32()
                           ? value
                           : arith::TruncFOp::create(b, element, value));
  storeAdjacent(b, narrowed, rows, {row, column});
}

/// The terms of <g, a> over the lane's columns of one row: `width` columns
/// at a time from `lane * width`, every 32 * width-th.
Value emitGluBackwardLaneColumns(LoopBuilder &lb, GroupedGluBackwardOp op,
                                 Value local, Value lane, Value w,
                                 int64_t width) {
  ImplicitLocOpBuilder &b = lb.builder();
  int64_t ffn = staticDim(op.getG(), 1);
  bool gelu = op.getActivation() == moe::Activation::gelu_glu;
  Value start = arith::MulIOp::create(b, lane, lb.index(width));
  auto loop = scf::ForOp::create(b, start, lb.index(ffn),
                                 lb.index(32 * width),
                                 ValueRange{lb.f32(0.0)});
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value f = loop.getInductionVar();
  Value fUp = arith::AddIOp::create(b, f, lb.index(ffn));
  // Every load before any store: act may be g, dh may be gate_up.
  SmallVector<Value> g = loadRowSlice(b, op.getG(), local, f, width);
  SmallVector<Value> gate = loadRowSlice(b, op.getGateUp(), local, f, width);
  SmallVector<Value> up = loadRowSlice(b, op.getGateUp(), local, fUp, width);
  SmallVector<Value> act, dGate, dUp;
  Value sum = loop.getRegionIterArgs()[0];
  for (int64_t i = 0; i < width; ++i) {
    GluBackwardValues v = gluBackwardValues(lb, gelu, g[i], gate[i], up[i], w);
    act.push_back(v.weightedAct);
    dGate.push_back(v.dGate);
    dUp.push_back(v.dUp);
    sum = arith::AddFOp::create(b, sum, v.weightTerm);
  }
  storeRowSlice(b, act, op.getAct(), local, f);
  storeRowSlice(b, dGate, op.getDh(), local, f);
  storeRowSlice(b, dUp, op.getDh(), local, fUp);
  scf::YieldOp::create(b, ValueRange{sum});
  return loop.getResult(0);
}

/// The same with a lane per column: every 32nd, one element a load.
Value emitGluBackwardLaneElements(LoopBuilder &lb, GroupedGluBackwardOp op,
                                  Value local, Value lane, Value w) {
  ImplicitLocOpBuilder &b = lb.builder();
  auto loop = scf::ForOp::create(b, lane, lb.index(staticDim(op.getG(), 1)),
                                 lb.index(32), ValueRange{lb.f32(0.0)});
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value term =
      emitGluBackwardElement(lb, op, local, loop.getInductionVar(), w);
  scf::YieldOp::create(
      b, ValueRange{arith::AddFOp::create(b, loop.getRegionIterArgs()[0],
                                          term)});
  return loop.getResult(0);
}

} // namespace

void lowerExpertLoadsToGPU(ExpertLoadsOp op, LoopBuilder &lb,
                           LaunchPerItem launch) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value offsets = op.getOffsets(), loads = op.getLoads();
  launch(lb.dim(loads, 0), [&](Value e) {
    Value next = arith::AddIOp::create(b, e, lb.index(1));
    memref::StoreOp::create(b,
                            arith::SubIOp::create(b, load(b, offsets, {next}),
                                                  load(b, offsets, {e})),
                            loads, ValueRange{e});
  });
}

void lowerGroupedGluBackwardToGPU(GroupedGluBackwardOp op, LoopBuilder &lb,
                                  LaunchPerItem launch) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value first, last; // captured below: not a structured binding
  std::tie(first, last) =
      expertRange(lb, op.getFirstExpert(), op.getLastExpert(),
                  staticDim(op.getOffsets(), 0) - 1);
  int64_t width = gluBackwardWidth(op);
  // One warp per row of the chunk's row buffers: the lanes take columns in
  // turn (coalesced; 16 bytes a lane where the rows allow), then add up
  // <g, a> by shuffles. All lanes of a warp share the row, so they agree on
  // every branch around the shuffles.
  launch(arith::MulIOp::create(b, lb.dim(op.getGateUp(), 0), lb.index(32)),
         [&](Value item) {
           Value local = arith::DivUIOp::create(b, item, lb.index(32));
           Value lane = arith::RemUIOp::create(b, item, lb.index(32));
           ifGroupedRow(lb, op.getOffsets(), first, last, local,
                        [&](Value, Value r) {
             GluBackwardRow row = gluBackwardRowOf(lb, op, r);
             Value partial =
                 width > 1 ? emitGluBackwardLaneColumns(lb, op, local, lane,
                                                        row.w, width)
                           : emitGluBackwardLaneElements(lb, op, local, lane,
                                                         row.w);
             Value dot = butterflyReduce(b, partial,
                                         /*max=*/false, kWholeWarp);
             // dy[t] . o_j = <g, a>, o_j never formed.
             lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                             lane, lb.index(0)),
                       [&] {
                         lb.storeF32(dot, op.getDWeights(), {row.t, row.j});
                       });
           });
         });
}

void lowerGroupedWeightGradToGPU(GroupedWeightGradOp op, LoopBuilder &lb,
                                 LaunchPerItem launch, bool warpgroupMma,
                                 int64_t multiprocessors, int64_t clusterSize) {
  // bf16/f16 operands (the CUDA pipeline narrows dh and w a): tensor cores,
  // wgmma on sm_90a, else mma.sync.
  TensorCoreWeightGrad grad = TensorCoreWeightGrad::of(op);
  grad.multiprocessors = multiprocessors;
  grad.clusterSize = clusterSize;
  if (warpgroupMma && canLowerWeightGradToWarpgroupMma(grad, op.getContext())) {
    lowerWeightGradToWarpgroupMma(grad, lb);
    // moek_grouped_weight_grad_warpgroup: profiles and the cost model tell
    // it from the mma.sync kernel.
    nameLastLaunch(lb.builder(), "warpgroup");
    return;
  }
  if (canLowerWeightGradToTensorCores(grad, op.getContext())) {
    lowerWeightGradToTensorCores(grad, lb);
    return;
  }
  ImplicitLocOpBuilder &b = lb.builder();
  Value lhs = op.getLhs(), rhs = op.getRhs(), owners = op.getOwners();
  Value weights = op.getWeights(), dw = op.getDw(), offsets = op.getOffsets();
  int64_t experts = staticDim(dw, 0), depth = staticDim(dw, 1);
  int64_t width = staticDim(dw, 2);
  Value topK = lb.index(op.getTopK());
  Value first, last; // captured below: not a structured binding
  std::tie(first, last) =
      expertRange(lb, op.getFirstExpert(), op.getLastExpert(), experts);
  Value perExpert = lb.index(depth * width), N = lb.index(width);
  Value count = arith::MulIOp::create(
      b, arith::SubIOp::create(b, last, first), perExpert);
  // One thread per element dw[e, i, n], reducing over e's rows (varlen-K).
  launch(count, [&](Value item) {
    Value e = arith::AddIOp::create(
        b, first, arith::DivUIOp::create(b, item, perExpert));
    Value within = arith::RemUIOp::create(b, item, perExpert);
    Value i = arith::DivUIOp::create(b, within, N);
    Value n = arith::RemUIOp::create(b, within, N);
    auto rowOf = [&](Value x) { return asIndex(b, load(b, offsets, {x})); };
    Value base = rowOf(first);
    Value end = rowOf(arith::AddIOp::create(b, e, lb.index(1)));
    Value sum = lb.forLoopCarrying(
        rowOf(e), end, ValueRange{lb.f32(0.0)},
        [&](Value r, ValueRange acc) -> SmallVector<Value> {
          Value local = arith::SubIOp::create(b, r, base);
          Value owner = asIndex(b, load(b, owners, {r}));
          Value token = arith::DivUIOp::create(b, owner, topK);
          Value lv = lb.loadF32(lhs, {op.getGatherLhs() ? token : local, i});
          if (weights)
            lv = arith::MulFOp::create(
                b, lv,
                lb.loadF32(weights,
                           {token, arith::RemUIOp::create(b, owner, topK)}));
          Value rv = lb.loadF32(rhs, {op.getGatherRhs() ? token : local, n});
          return {arith::AddFOp::create(b, acc[0],
                                        arith::MulFOp::create(b, lv, rv))};
        })[0];
    lb.storeF32(sum, dw, {e, i, n});
  });
}

namespace {

/// [H, E] (identity layout) viewed as the one group [1, H, E] that the
/// tensor-core kernels take.
Value asOneGroup(ImplicitLocOpBuilder &b, Value matrix) {
  auto type = cast<MemRefType>(matrix.getType());
  return memref::ExpandShapeOp::create(
      b, ArrayRef<int64_t>{1, type.getDimSize(0), type.getDimSize(1)}, matrix,
      ArrayRef<ReassociationIndices>{{0, 1}, {2}});
}

/// The router's two products on tensor cores, from the rounded score
/// gradients ds [T, E]: dx[T, H] += ds . w_gate^T is the plain GEMM with b
/// = w_gate as [1, H, E] (K-contiguous: transpose_b) and an accumulating
/// store; dw_gate[H, E] = x^T ds the weight-gradient kernel with one group
/// of all T rows, split into slices that add into the zeroed dw_gate.
struct RouterProducts {
  TensorCoreGemm dx;
  TensorCoreWeightGrad dwGate;

  /// The products of `op`, or nothing when it has no ds or a kernel does
  /// not take them (the SIMT kernels then read the f32 scores).
  static std::optional<RouterProducts> of(RouteBackwardOp op, LoopBuilder &lb,
                                          const TensorCoreTile &tile,
                                          int64_t multiprocessors) {
    Value ds = op.getDs();
    if (!ds)
      return std::nullopt;
    ImplicitLocOpBuilder &b = lb.builder();
    MLIRContext *context = op.getContext();
    RouterProducts products;
    TensorCoreGemm &gemm = products.dx;
    gemm.a = ds;
    gemm.c = op.getDx();
    gemm.transposeB = true;
    gemm.accumulate = true;
    gemm.tile = tile;
    TensorCoreWeightGrad &grad = products.dwGate;
    grad.lhs = op.getX();
    grad.rhs = ds;
    int64_t hidden = staticDim(op.getWGate(), 0);
    int64_t experts = staticDim(op.getWGate(), 1);
    int64_t outputTiles = ((hidden + kWeightGradTileRows - 1) /
                           kWeightGradTileRows) *
                          ((experts + kWeightGradTileColumns - 1) /
                           kWeightGradTileColumns);
    grad.slices = RouteBackwardOp::weightGradSlices(outputTiles,
                                                    multiprocessors);
    // The views are host ops: made only when both kernels apply.
    auto gateType = cast<MemRefType>(op.getWGate().getType());
    auto dwType = cast<MemRefType>(op.getDwGate().getType());
    if (!gateType.getLayout().isIdentity() || !dwType.getLayout().isIdentity())
      return std::nullopt;
    gemm.b = asOneGroup(b, op.getWGate());
    grad.dw = asOneGroup(b, op.getDwGate());
    if (!canLowerToTensorCores(gemm, context) ||
        !canLowerWeightGradToTensorCores(grad, context)) {
      gemm.b.getDefiningOp()->erase();
      grad.dw.getDefiningOp()->erase();
      return std::nullopt;
    }
    return products;
  }
};

} // namespace

void lowerRouteBackwardToGPU(RouteBackwardOp op, LoopBuilder &lb,
                             LaunchPerItem launch, Value scores,
                             const TensorCoreTile &tile,
                             int64_t multiprocessors) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value x = op.getX(), wGate = op.getWGate();
  Value dx = op.getDx(), dwGate = op.getDwGate(), aux = op.getAux();
  int64_t hidden = staticDim(wGate, 0), experts = staticDim(wGate, 1);
  Value E = lb.index(experts), H = lb.index(hidden), zero = lb.index(0);
  Value tokens = lb.dim(x, 0);
  std::optional<RouterProducts> products =
      RouterProducts::of(op, lb, tile, multiprocessors);
  // The aux loss starts at zero; every token then adds to it.
  launch(lb.index(1), [&](Value) {
    memref::StoreOp::create(b, lb.f32(0.0), aux, ValueRange{});
  });
  // A thread per token, from its scores (x . w_gate, computed by a GEMM
  // before) to its score gradients ds, written over them, or rounded into
  // the op's ds for the tensor cores: only E-long loops.
  launch(tokens, [&](Value t) {
    // Thread-private scratch: the token's probabilities and their gradient.
    Value p = scratch(b, {experts}, b.getF32Type(), ScratchPlace::Stack);
    Value dp = scratch(b, {experts}, b.getF32Type(), ScratchPlace::Stack);
    Value term = emitRouteBackwardToken(
        lb, op, p, dp, t, /*atomicWeightGrad=*/true, scores,
        products ? op.getDs() : Value());
    if (op.getAuxLoss().convertToDouble() > 0.0)
      memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, term, aux,
                                  ValueRange{});
  });
  if (products) {
    lowerToTensorCores(products->dx, lb);
    nameLastLaunch(b, "dx");
    if (products->dwGate.slices > 1)
      launch(arith::MulIOp::create(b, lb.dim(dwGate, 0), E), [&](Value item) {
        memref::StoreOp::create(b, lb.f32(0.0), dwGate,
                                ValueRange{arith::DivUIOp::create(b, item, E),
                                           arith::RemUIOp::create(b, item, E)});
      });
    lowerWeightGradToTensorCores(products->dwGate, lb);
    nameLastLaunch(b, "dw_gate");
    return;
  }
  // dx[t, h] += ds[t] . w_gate[h]: a thread per h and group of tokens, the
  // lanes of a warp on consecutive h (ds broadcast). A warp's reads of
  // w_gate[h, e] touch 32 rows at once, so each one serves the group's
  // tokens.
  Value one = lb.index(1);
  Value lastToken = arith::SubIOp::create(b, tokens, one);
  Value tokenGroups = arith::DivUIOp::create(
      b, arith::AddIOp::create(b, tokens, lb.index(kTokensPerThread - 1)),
      lb.index(kTokensPerThread));
  launch(arith::MulIOp::create(b, tokenGroups, H), [&](Value item) {
    Value first = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, item, H), lb.index(kTokensPerThread));
    Value h = arith::RemUIOp::create(b, item, H);
    SmallVector<Value> rows, valid;
    for (int64_t i = 0; i < kTokensPerThread; ++i) {
      Value t = arith::AddIOp::create(b, first, lb.index(i));
      valid.push_back(
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, t, tokens));
      // Past the last token: read the last one (a thread exists, so there
      // is one) and store nothing.
      rows.push_back(arith::MinUIOp::create(b, t, lastToken));
    }
    SmallVector<Value> init(kTokensPerThread, lb.f32(0.0));
    SmallVector<Value> sums = lb.forLoopCarrying(
        zero, E, init, [&](Value e, ValueRange acc) -> SmallVector<Value> {
          Value w = lb.loadF32(wGate, {h, e});
          SmallVector<Value> next;
          for (int64_t i = 0; i < kTokensPerThread; ++i) {
            Value ds = memref::LoadOp::create(b, scores, ValueRange{rows[i], e});
            next.push_back(arith::AddFOp::create(
                b, acc[i], arith::MulFOp::create(b, ds, w)));
          }
          return next;
        });
    for (int64_t i = 0; i < kTokensPerThread; ++i)
      lb.ifThen(valid[i], [&] {
        Value prev = lb.loadF32(dx, {rows[i], h});
        lb.storeF32(arith::AddFOp::create(b, prev, sums[i]), dx, {rows[i], h});
      });
  });
  // dw_gate[h, e] = sum_t x[t, h] ds[t, e]: a thread per (slice of tokens,
  // four experts where E allows, h), the lanes of a warp on consecutive h
  // (x coalesced, ds broadcast), each adding its slice's sum once: a few
  // atomics per element instead of one per token, and enough threads to
  // hide the loads' latency.
  launch(arith::MulIOp::create(b, lb.dim(dwGate, 0), E), [&](Value item) {
    memref::StoreOp::create(b, lb.f32(0.0), dwGate,
                            ValueRange{arith::DivUIOp::create(b, item, E),
                                       arith::RemUIOp::create(b, item, E)});
  });
  int64_t perThread = experts % 4 == 0 ? 4 : 1;
  Value groups = lb.index(experts / perThread);
  Value perSlice = arith::MulIOp::create(b, groups, H);
  Value slices = arith::DivUIOp::create(
      b, arith::AddIOp::create(b, tokens, lb.index(kTokensPerSlice - 1)),
      lb.index(kTokensPerSlice));
  launch(arith::MulIOp::create(b, slices, perSlice), [&](Value item) {
    Value slice = arith::DivUIOp::create(b, item, perSlice);
    Value rest = arith::RemUIOp::create(b, item, perSlice);
    Value e0 = arith::MulIOp::create(b, arith::DivUIOp::create(b, rest, H),
                                     lb.index(perThread));
    Value h = arith::RemUIOp::create(b, rest, H);
    Value begin = arith::MulIOp::create(b, slice, lb.index(kTokensPerSlice));
    Value end = arith::MinUIOp::create(
        b, arith::AddIOp::create(b, begin, lb.index(kTokensPerSlice)), tokens);
    SmallVector<Value> init(perThread, lb.f32(0.0));
    SmallVector<Value> sums = lb.forLoopCarrying(
        begin, end, init, [&](Value t, ValueRange acc) -> SmallVector<Value> {
          Value xv = lb.loadF32(x, {t, h});
          SmallVector<Value> next;
          for (int64_t i = 0; i < perThread; ++i) {
            Value e = arith::AddIOp::create(b, e0, lb.index(i));
            Value ds = memref::LoadOp::create(b, scores, ValueRange{t, e});
            next.push_back(arith::AddFOp::create(
                b, acc[i], arith::MulFOp::create(b, xv, ds)));
          }
          return next;
        });
    for (int64_t i = 0; i < perThread; ++i)
      memref::AtomicRMWOp::create(
          b, arith::AtomicRMWKind::addf, sums[i], dwGate,
          ValueRange{h, arith::AddIOp::create(b, e0, lb.index(i))});
  });
}

} // namespace mlir::moek
