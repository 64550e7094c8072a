//===- KernelBodies.cpp - What CPU and GPU kernel lowerings share ---------===//

#include "lib/Conversion/MoekToLoops/KernelBodies.h"

#include "dialects/moe/IR/MoeShapeRules.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

namespace mlir::moek {

Value scratch(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape, Type element,
              ScratchPlace place) {
  auto type = MemRefType::get(shape, element);
  if (place == ScratchPlace::Stack)
    return memref::AllocaOp::create(b, type);
  auto alloc = memref::AllocOp::create(b, type);
  alloc->setAttr(kHeapScratchAttr, b.getUnitAttr());
  return alloc;
}

int64_t staticDim(Value buffer, int64_t dim) {
  return cast<MemRefType>(buffer.getType()).getDimSize(dim);
}

Value asIndex(ImplicitLocOpBuilder &b, Value i32) {
  return arith::IndexCastOp::create(b, b.getIndexType(), i32);
}

Value silu(LoopBuilder &lb, Value x) {
  ImplicitLocOpBuilder &b = lb.builder();
  // x * sigmoid(x) = x / (1 + exp(-x)). afn lets the GPU take ex2.approx
  // and div.approx (2 ulp) for libdevice's expf and the IEEE division
  // (4.5% off qwen3_30b_a3b's GLU GEMM on the H200, whose epilogue waits
  // on them); the CPU's exp and division stay as they are.
  auto afn = arith::FastMathFlags::afn;
  Value e = math::ExpOp::create(b, arith::NegFOp::create(b, x), afn);
  return arith::DivFOp::create(b, x, arith::AddFOp::create(b, lb.f32(1.0), e),
                               afn);
}

Value geluTanh(LoopBuilder &lb, Value x) {
  ImplicitLocOpBuilder &b = lb.builder();
  // 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3); tanh(u) is
  // written 1 - 2 / (exp(2u) + 1), which saturates correctly at both ends.
  Value x3 = arith::MulFOp::create(b, arith::MulFOp::create(b, x, x), x);
  Value inner = arith::AddFOp::create(
      b, x, arith::MulFOp::create(b, lb.f32(0.044715), x3));
  Value u = arith::MulFOp::create(b, lb.f32(0.7978845608028654), inner);
  // Approximate exp and division as in silu: an infinite or huge e2u still
  // gives tanh = 1.
  auto afn = arith::FastMathFlags::afn;
  Value e2u = math::ExpOp::create(b, arith::AddFOp::create(b, u, u), afn);
  Value tanh = arith::SubFOp::create(
      b, lb.f32(1.0),
      arith::DivFOp::create(b, lb.f32(2.0),
                            arith::AddFOp::create(b, e2u, lb.f32(1.0)), afn));
  Value half = arith::MulFOp::create(b, lb.f32(0.5), x);
  return arith::MulFOp::create(
      b, half, arith::AddFOp::create(b, lb.f32(1.0), tanh));
}

/// Among experts [0, count) with available[e] != 0, the index of the largest
/// key (ties to the lower index), or -1 if none is available.
Value argmaxAvailable(LoopBuilder &lb, Value keys, Value available,
                      Value count) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value none = lb.index(-1);
  SmallVector<Value> best = lb.forLoopCarrying(
      lb.index(0), count, ValueRange{none, lb.f32(0.0)},
      [&](Value e, ValueRange carried) -> SmallVector<Value> {
        Value bestIndex = carried[0], bestKey = carried[1];
        Value key = memref::LoadOp::create(b, keys, ValueRange{e});
        Value isAvailable = arith::CmpIOp::create(
            b, arith::CmpIPredicate::ne,
            memref::LoadOp::create(b, available, ValueRange{e}), lb.i32(0));
        Value noneYet = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                              bestIndex, none);
        // Strictly greater: an equal key never displaces a lower index.
        Value greater = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT,
                                              key, bestKey);
        Value take = arith::AndIOp::create(
            b, isAvailable, arith::OrIOp::create(b, noneYet, greater));
        return {arith::SelectOp::create(b, take, e, bestIndex),
                arith::SelectOp::create(b, take, key, bestKey)};
      });
  return best[0];
}

Value activate(LoopBuilder &lb, Value gate, bool gelu) {
  return gelu ? geluTanh(lb, gate) : silu(lb, gate);
}

Value emitCapacity(LoopBuilder &lb, double cf, Value tokens, int64_t topK,
                   int64_t experts) {
  ImplicitLocOpBuilder &b = lb.builder();
  // An expert receives at most one assignment per token: T never binds.
  if (cf <= 0.0)
    return tokens;
  auto f64 = [&](double v) {
    return arith::ConstantOp::create(b, b.getF64FloatAttr(v));
  };
  Value t = arith::SIToFPOp::create(
      b, b.getF64Type(), arith::IndexCastOp::create(b, b.getI64Type(), tokens));
  // Evaluated in the order of expertCapacity: ((cf * T) * k) / E.
  Value exact = arith::DivFOp::create(
      b,
      arith::MulFOp::create(b, arith::MulFOp::create(b, f64(cf), t),
                            f64(static_cast<double>(topK))),
      f64(static_cast<double>(experts)));
  Value rounded = math::CeilOp::create(
      b, arith::SubFOp::create(b, exact, f64(kCapacityEpsilon)));
  // Clamped to T in double, before the conversion: a huge capacity factor
  // must neither overflow the integer nor wrap in the i32 metadata.
  Value clamped = arith::MinimumFOp::create(b, rounded, t);
  Value capacity = arith::IndexCastOp::create(
      b, b.getIndexType(), arith::FPToSIOp::create(b, b.getI64Type(), clamped));
  return arith::MaxSIOp::create(b, capacity, lb.index(1));
}

RouteScratch makeRouteScratch(ImplicitLocOpBuilder &b, RouteOp op,
                              ScratchPlace place) {
  int64_t experts = staticDim(op.getWGate(), 1);
  RouteScratch s;
  s.probs = scratch(b, {experts}, b.getF32Type(), place);
  s.keys = scratch(b, {experts}, b.getF32Type(), place);
  s.available = scratch(b, {experts}, b.getI32Type(), place);
  if (std::optional<int64_t> nGroup = op.getNGroup()) {
    s.groupKeys = scratch(b, {*nGroup}, b.getF32Type(), place);
    s.groupFree = scratch(b, {*nGroup}, b.getI32Type(), place);
  }
  return s;
}

void emitRouteToken(LoopBuilder &lb, RouteOp op, const RouteScratch &s,
                    Value t, Value scores) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value x = op.getX(), wGate = op.getWGate(), bias = op.getBias();
  Value weights = op.getWeights(), indices = op.getIndices();
  int64_t experts = staticDim(wGate, 1), topK = op.getTopK();
  int64_t hidden = staticDim(wGate, 0);
  Value zero = lb.index(0);
  Value probs = s.probs, keys = s.keys, available = s.available;
  Value numExperts = lb.index(experts);
  if (scores) {
    lb.forLoop(zero, numExperts, [&](Value e) {
      memref::StoreOp::create(
          b, memref::LoadOp::create(b, scores, ValueRange{t, e}), probs,
          ValueRange{e});
    });
  } else {
    // Scores s = x[t] . w_gate, accumulated in f32, row by row of w_gate.
    lb.fill(probs, lb.f32(0.0));
    lb.forLoop(zero, lb.index(hidden), [&](Value h) {
      Value xv = lb.loadF32(x, {t, h});
      lb.forLoop(zero, numExperts, [&](Value e) {
        Value acc = memref::LoadOp::create(b, probs, ValueRange{e});
        Value prod = arith::MulFOp::create(b, xv, lb.loadF32(wGate, {h, e}));
        memref::StoreOp::create(b, arith::AddFOp::create(b, acc, prod), probs,
                                ValueRange{e});
      });
    });
  }

  // Probabilities.
  if (op.getScoreFunc() == ScoreFunc::softmax) {
    Value max = lb.forLoopCarrying(
        zero, numExperts, ValueRange{lb.f32(-INFINITY)},
        [&](Value e, ValueRange c) -> SmallVector<Value> {
          Value s = memref::LoadOp::create(b, probs, ValueRange{e});
          return {arith::MaximumFOp::create(b, c[0], s)};
        })[0];
    Value sum = lb.forLoopCarrying(
        zero, numExperts, ValueRange{lb.f32(0.0)},
        [&](Value e, ValueRange c) -> SmallVector<Value> {
          Value s = memref::LoadOp::create(b, probs, ValueRange{e});
          Value ex = math::ExpOp::create(b, arith::SubFOp::create(b, s, max));
          memref::StoreOp::create(b, ex, probs, ValueRange{e});
          return {arith::AddFOp::create(b, c[0], ex)};
        })[0];
    lb.forLoop(zero, numExperts, [&](Value e) {
      Value ex = memref::LoadOp::create(b, probs, ValueRange{e});
      memref::StoreOp::create(b, arith::DivFOp::create(b, ex, sum), probs,
                              ValueRange{e});
    });
  } else {
    lb.forLoop(zero, numExperts, [&](Value e) {
      Value s = memref::LoadOp::create(b, probs, ValueRange{e});
      Value ex = math::ExpOp::create(b, arith::NegFOp::create(b, s));
      Value p = arith::DivFOp::create(
          b, lb.f32(1.0), arith::AddFOp::create(b, lb.f32(1.0), ex));
      memref::StoreOp::create(b, p, probs, ValueRange{e});
    });
  }

  // Saved for the backward (moe-place-recomputation), when asked.
  if (Value saved = op.getProbs())
    lb.forLoop(zero, numExperts, [&](Value e) {
      memref::StoreOp::create(
          b, memref::LoadOp::create(b, probs, ValueRange{e}), saved,
          ValueRange{t, e});
    });

  // Selection keys p + bias; every expert available to begin with.
  lb.forLoop(zero, numExperts, [&](Value e) {
    Value key = memref::LoadOp::create(b, probs, ValueRange{e});
    if (bias)
      key = arith::AddFOp::create(b, key, lb.loadF32(bias, {e}));
    memref::StoreOp::create(b, key, keys, ValueRange{e});
    memref::StoreOp::create(b, lb.i32(1), available, ValueRange{e});
  });

  // Group-limited routing: keep the experts of the topk_group groups whose
  // best key is largest.
  if (op.getNGroup().has_value()) {
    int64_t nGroup = *op.getNGroup(), groupSize = experts / nGroup;
    Value groupKeys = s.groupKeys, groupFree = s.groupFree;
    Value groups = lb.index(nGroup);
    lb.forLoop(zero, groups, [&](Value g) {
      Value first = arith::MulIOp::create(b, g, lb.index(groupSize));
      Value last = arith::AddIOp::create(b, first, lb.index(groupSize));
      Value best = lb.forLoopCarrying(
          first, last, ValueRange{lb.f32(-INFINITY)},
          [&](Value e, ValueRange c) -> SmallVector<Value> {
            Value k = memref::LoadOp::create(b, keys, ValueRange{e});
            return {arith::MaximumFOp::create(b, c[0], k)};
          })[0];
      memref::StoreOp::create(b, best, groupKeys, ValueRange{g});
      memref::StoreOp::create(b, lb.i32(1), groupFree, ValueRange{g});
    });
    // groupFree becomes 0 for chosen groups; the rest get masked out.
    lb.forLoop(zero, lb.index(*op.getTopkGroup()), [&](Value) {
      Value g = argmaxAvailable(lb, groupKeys, groupFree, groups);
      memref::StoreOp::create(b, lb.i32(0), groupFree, ValueRange{g});
    });
    lb.forLoop(zero, numExperts, [&](Value e) {
      Value g = arith::DivUIOp::create(b, e, lb.index(groupSize));
      Value notChosen = memref::LoadOp::create(b, groupFree, ValueRange{g});
      // available = 1 - notChosen
      memref::StoreOp::create(b, arith::SubIOp::create(b, lb.i32(1), notChosen),
                              available, ValueRange{e});
    });
  }

  // Top-k by repeated argmax; the weights are the probabilities.
  Value sum = lb.forLoopCarrying(
      zero, lb.index(topK), ValueRange{lb.f32(0.0)},
      [&](Value j, ValueRange c) -> SmallVector<Value> {
        Value e = argmaxAvailable(lb, keys, available, numExperts);
        memref::StoreOp::create(b, lb.i32(0), available, ValueRange{e});
        Value p = memref::LoadOp::create(b, probs, ValueRange{e});
        memref::StoreOp::create(
            b, arith::IndexCastOp::create(b, b.getI32Type(), e), indices,
            ValueRange{t, j});
        memref::StoreOp::create(b, p, weights, ValueRange{t, j});
        return {arith::AddFOp::create(b, c[0], p)};
      })[0];
  double scaling = op.getScaling().convertToDouble();
  Value factor = op.getNormalize()
                     ? arith::DivFOp::create(b, lb.f32(scaling), sum)
                     : lb.f32(scaling);
  lb.forLoop(zero, lb.index(topK), [&](Value j) {
    Value w = memref::LoadOp::create(b, weights, ValueRange{t, j});
    memref::StoreOp::create(b, arith::MulFOp::create(b, w, factor), weights,
                            ValueRange{t, j});
  });
}

void emitExclusiveScan(LoopBuilder &lb, Value counts, Value offsets) {
  ImplicitLocOpBuilder &b = lb.builder();
  memref::StoreOp::create(b, lb.i32(0), offsets, ValueRange{lb.index(0)});
  lb.forLoop(lb.index(0), lb.dim(counts, 0), [&](Value e) {
    Value next = arith::AddIOp::create(b, e, lb.index(1));
    Value sum = arith::AddIOp::create(
        b, memref::LoadOp::create(b, offsets, ValueRange{e}),
        memref::LoadOp::create(b, counts, ValueRange{e}));
    memref::StoreOp::create(b, sum, offsets, ValueRange{next});
  });
}

std::pair<Value, Value> placeAssignment(LoopBuilder &lb,
                                        const RankedAssignments &plan, Value t,
                                        Value j) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value rank = memref::LoadOp::create(b, plan.ranks, ValueRange{t, j});
  Value e =
      asIndex(b, memref::LoadOp::create(b, plan.indices, ValueRange{t, j}));
  Value start = memref::LoadOp::create(b, plan.offsets, ValueRange{e});
  Value kept =
      arith::CmpIOp::create(b, arith::CmpIPredicate::sge, rank, lb.i32(0));
  return {arith::AddIOp::create(b, start, rank), kept};
}

void emitAssignmentRow(LoopBuilder &lb, const RankedAssignments &plan,
                       Value rows, Value t, Value j) {
  ImplicitLocOpBuilder &b = lb.builder();
  auto [row, kept] = placeAssignment(lb, plan, t, j);
  memref::StoreOp::create(b, arith::SelectOp::create(b, kept, row, lb.i32(-1)),
                          rows, ValueRange{t, j});
}

void emitRowOwner(LoopBuilder &lb, const RankedAssignments &plan, Value owners,
                  Value t, Value j) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value row, kept; // captured below: not a structured binding
  std::tie(row, kept) = placeAssignment(lb, plan, t, j);
  Value topK = lb.index(staticDim(plan.indices, 1));
  lb.ifThen(kept, [&] {
    Value flat =
        arith::AddIOp::create(b, arith::MulIOp::create(b, t, topK), j);
    memref::StoreOp::create(b,
                            arith::IndexCastOp::create(b, b.getI32Type(), flat),
                            owners, ValueRange{asIndex(b, row)});
  });
}

} // namespace mlir::moek
