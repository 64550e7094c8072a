//===- BackwardKernelsGPU.cpp - The backward kernels as GPU kernels -------===//

#include "lib/Conversion/MoekToGPU/BackwardKernelsGPU.h"
#include "lib/Conversion/MoekToLoops/BackwardLoops.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace mlir::moe;

namespace mlir::moek {

namespace {

Value load(ImplicitLocOpBuilder &b, Value buffer, ValueRange indices) {
  return memref::LoadOp::create(b, buffer, indices);
}

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
  auto [first, last] = expertRange(lb, op.getFirstExpert(), op.getLastExpert(),
                                   staticDim(op.getW2(), 0));
  // One thread per row of the chunk's row buffers.
  launch(lb.dim(op.getGateUp(), 0), [&](Value local) {
    ifGroupedRow(lb, op.getOffsets(), first, last, local,
                 [&](Value e, Value r) { emitGluBackwardRow(lb, op, e, r, local); });
  });
}

void lowerGroupedWeightGradToGPU(GroupedWeightGradOp op, LoopBuilder &lb,
                                 LaunchPerItem launch) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value lhs = op.getLhs(), rhs = op.getRhs(), owners = op.getOwners();
  Value weights = op.getWeights(), dw = op.getDw(), offsets = op.getOffsets();
  int64_t experts = staticDim(dw, 0), depth = staticDim(dw, 1);
  int64_t width = staticDim(dw, 2);
  Value topK = lb.index(op.getTopK());
  auto [first, last] =
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

void lowerGroupedInputGradToGPU(GroupedInputGradOp op, LoopBuilder &lb,
                                LaunchPerItem launch) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value a = op.getA(), w = op.getB(), owners = op.getOwners(), dx = op.getDx();
  int64_t experts = staticDim(w, 0), depth = staticDim(w, 1);
  int64_t width = staticDim(w, 2);
  Value topK = lb.index(op.getTopK()), K = lb.index(depth);
  auto [first, last] =
      expertRange(lb, op.getFirstExpert(), op.getLastExpert(), experts);
  // One thread per (row, column of dx); rows of one token add atomically.
  launch(arith::MulIOp::create(b, lb.dim(a, 0), K), [&](Value item) {
    Value local = arith::DivUIOp::create(b, item, K);
    Value i = arith::RemUIOp::create(b, item, K);
    ifGroupedRow(lb, op.getOffsets(), first, last, local, [&](Value e, Value r) {
      Value owner = asIndex(b, load(b, owners, {r}));
      Value token = arith::DivUIOp::create(b, owner, topK);
      Value s = lb.forLoopCarrying(
          lb.index(0), lb.index(width), ValueRange{lb.f32(0.0)},
          [&](Value n, ValueRange acc) -> SmallVector<Value> {
            return {arith::AddFOp::create(
                b, acc[0],
                arith::MulFOp::create(b, lb.loadF32(a, {local, n}),
                                      lb.loadF32(w, {e, i, n})))};
          })[0];
      memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, s, dx,
                                  ValueRange{token, i});
    });
  });
}

void lowerRouteBackwardToGPU(RouteBackwardOp op, LoopBuilder &lb,
                             LaunchPerItem launch) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value dwGate = op.getDwGate(), aux = op.getAux();
  int64_t experts = staticDim(op.getWGate(), 1);
  Value E = lb.index(experts);
  // dw_gate and the aux loss start at zero; every token then adds to them.
  launch(arith::MulIOp::create(b, lb.dim(dwGate, 0), E), [&](Value item) {
    memref::StoreOp::create(b, lb.f32(0.0), dwGate,
                            ValueRange{arith::DivUIOp::create(b, item, E),
                                       arith::RemUIOp::create(b, item, E)});
  });
  launch(lb.index(1), [&](Value) {
    memref::StoreOp::create(b, lb.f32(0.0), aux, ValueRange{});
  });
  launch(lb.dim(op.getX(), 0), [&](Value t) {
    // Thread-private scratch: the token's probabilities and their gradient.
    Value p = scratch(b, {experts}, b.getF32Type(), ScratchPlace::Stack);
    Value dp = scratch(b, {experts}, b.getF32Type(), ScratchPlace::Stack);
    Value term =
        emitRouteBackwardToken(lb, op, p, dp, t, /*atomicWeightGrad=*/true);
    if (op.getAuxLoss().convertToDouble() > 0.0)
      memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, term, aux,
                                  ValueRange{});
  });
}

} // namespace mlir::moek
