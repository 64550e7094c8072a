//===- MoeLowerToLoops.cpp - moe ops to loops over buffers ----------------===//
//
// Lowers moe.gate, moe.dispatch, moe.experts and moe.combine to scf loops
// over memrefs (arith/math for the arithmetic), wrapped back into tensors
// with bufferization.to_tensor so that one-shot bufferization takes it from
// there. This is the CPU reference lowering: it computes only the selected
// experts of each token (T*k expert rows), never all E experts for every
// token.
//
// The routing plan (!moe.routing) becomes two i32 tensors:
//   positions[T,k]  the dispatched row of each (token, slot), -1 if dropped;
//   offsets[E+1]    the first row of each expert (kept rows only).
// Between the gate's lowering and its users the plan travels as an
// unrealized_conversion_cast of those two tensors to !moe.routing.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "dialects/moe/IR/MoeShapeRules.h"
#include "lib/Conversion/MoeToLoops/LoopBuilder.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERTOLOOPSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The buffers of a routing plan, as tensors.
struct RoutingPlan {
  Value positions; // tensor<T x k x i32>
  Value offsets;   // tensor<(E+1) x i32>
};

MemRefType bufferTypeOf(Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  return MemRefType::get(type.getShape(), type.getElementType());
}

/// A read-only view of an input tensor.
Value readBuffer(ImplicitLocOpBuilder &b, Value tensor) {
  return bufferization::ToBufferOp::create(b, bufferTypeOf(tensor), tensor,
                                           /*read_only=*/true);
}

/// A fresh buffer for a result of `type`, dynamic extents from `dynamic`.
Value allocResult(ImplicitLocOpBuilder &b, RankedTensorType type,
                  ValueRange dynamic) {
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  return memref::AllocOp::create(b, memrefType, dynamic);
}

Value asTensor(ImplicitLocOpBuilder &b, Value buffer, Type tensorType) {
  return bufferization::ToTensorOp::create(b, tensorType, buffer,
                                           /*restrict=*/true,
                                           /*writable=*/true);
}

/// Scratch memory of a static shape, allocated once outside the loops.
Value scratch(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape, Type element) {
  return memref::AllocaOp::create(b, MemRefType::get(shape, element));
}

/// The dynamic extents of `type`, read from the same dimensions of `like`.
SmallVector<Value> dynamicExtents(LoopBuilder &lb, RankedTensorType type,
                                  Value likeBuffer) {
  SmallVector<Value> extents;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d))
      extents.push_back(lb.dim(likeBuffer, d));
  return extents;
}

Value silu(LoopBuilder &lb, Value x) {
  ImplicitLocOpBuilder &b = lb.builder();
  // x * sigmoid(x) = x / (1 + exp(-x))
  Value e = math::ExpOp::create(b, arith::NegFOp::create(b, x));
  return arith::DivFOp::create(b, x,
                               arith::AddFOp::create(b, lb.f32(1.0), e));
}

Value geluTanh(LoopBuilder &lb, Value x) {
  ImplicitLocOpBuilder &b = lb.builder();
  // 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3); tanh(u) is
  // written 1 - 2 / (exp(2u) + 1), which saturates correctly at both ends.
  Value x3 = arith::MulFOp::create(b, arith::MulFOp::create(b, x, x), x);
  Value inner = arith::AddFOp::create(
      b, x, arith::MulFOp::create(b, lb.f32(0.044715), x3));
  Value u = arith::MulFOp::create(b, lb.f32(0.7978845608028654), inner);
  Value e2u = math::ExpOp::create(b, arith::AddFOp::create(b, u, u));
  Value tanh = arith::SubFOp::create(
      b, lb.f32(1.0),
      arith::DivFOp::create(b, lb.f32(2.0),
                            arith::AddFOp::create(b, e2u, lb.f32(1.0))));
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

//===----------------------------------------------------------------------===//
// moe.gate
//===----------------------------------------------------------------------===//

/// Emits C = max(1, ceil(cf*T*k/E)) as an index, the rule of expertCapacity; the
/// dropless router gets C = T*k, which never binds.
Value emitCapacity(LoopBuilder &lb, GateOp op, Value tokens) {
  ImplicitLocOpBuilder &b = lb.builder();
  int64_t topK = op.getTopK(), experts = op.getNumExperts();
  double cf = op.getCapacityFactor().convertToDouble();
  if (cf <= 0.0)
    return arith::MulIOp::create(b, tokens, lb.index(topK));
  auto f64 = [&](double v) {
    return arith::ConstantOp::create(b, b.getF64FloatAttr(v));
  };
  Value t = arith::SIToFPOp::create(
      b, b.getF64Type(),
      arith::IndexCastOp::create(b, b.getI64Type(), tokens));
  Value exact = arith::DivFOp::create(
      b,
      arith::MulFOp::create(b, arith::MulFOp::create(b, f64(cf), t),
                            f64(static_cast<double>(topK))),
      f64(static_cast<double>(experts)));
  Value rounded = math::CeilOp::create(
      b, arith::SubFOp::create(b, exact, f64(kCapacityEpsilon)));
  Value capacity = arith::IndexCastOp::create(
      b, b.getIndexType(),
      arith::FPToSIOp::create(b, b.getI64Type(), rounded));
  return arith::MaxSIOp::create(b, capacity, lb.index(1));
}

void lowerGate(GateOp op, RewriterBase &rewriter) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  LoopBuilder lb(b);
  int64_t experts = op.getNumExperts(), topK = op.getTopK();
  int64_t hidden = op.getWGate().getType().getDimSize(0);
  Value zero = lb.index(0);

  Value x = readBuffer(b, op.getX());
  Value wGate = readBuffer(b, op.getWGate());
  Value bias = op.getBias() ? readBuffer(b, op.getBias()) : Value();
  Value tokens = lb.dim(x, 0);

  auto weightsType = cast<RankedTensorType>(op.getWeights().getType());
  auto indicesType = cast<RankedTensorType>(op.getIndices().getType());
  SmallVector<Value> tokenExtent = dynamicExtents(lb, weightsType, x);
  Value weights = allocResult(b, weightsType, tokenExtent);
  Value indices = allocResult(b, indicesType, tokenExtent);
  auto positionsType = RankedTensorType::get(
      {op.getX().getType().getDimSize(0), topK}, b.getI32Type());
  Value positions = allocResult(b, positionsType,
                                dynamicExtents(lb, positionsType, x));
  auto offsetsType = RankedTensorType::get({experts + 1}, b.getI32Type());
  Value offsets = allocResult(b, offsetsType, {});

  Value probs = scratch(b, {experts}, b.getF32Type());
  Value keys = scratch(b, {experts}, b.getF32Type());
  Value available = scratch(b, {experts}, b.getI32Type());
  Value numExperts = lb.index(experts);

  lb.forLoop(zero, tokens, [&](Value t) {
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
    if (op.isGroupLimited()) {
      int64_t nGroup = *op.getNGroup(), groupSize = experts / nGroup;
      Value groupKeys = scratch(b, {nGroup}, b.getF32Type());
      Value groupFree = scratch(b, {nGroup}, b.getI32Type());
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
  });

  // The routing plan. Pass 1: each assignment's rank within its expert, in
  // order of token then slot; beyond the capacity it is dropped (-1). The
  // offsets buffer counts kept assignments in offsets[e + 1] meanwhile.
  Value capacity = arith::IndexCastOp::create(b, b.getI32Type(),
                                              emitCapacity(lb, op, tokens));
  lb.fill(offsets, lb.i32(0));
  Value kSlots = lb.index(topK);
  lb.forLoop(zero, tokens, [&](Value t) {
    lb.forLoop(zero, kSlots, [&](Value j) {
      Value e = arith::IndexCastOp::create(
          b, b.getIndexType(),
          memref::LoadOp::create(b, indices, ValueRange{t, j}));
      Value slot = arith::AddIOp::create(b, e, lb.index(1));
      Value rank = memref::LoadOp::create(b, offsets, ValueRange{slot});
      Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, rank,
                                         capacity);
      memref::StoreOp::create(b,
                              arith::SelectOp::create(b, kept, rank, lb.i32(-1)),
                              positions, ValueRange{t, j});
      Value counted = arith::AddIOp::create(b, rank, lb.i32(1));
      memref::StoreOp::create(b,
                              arith::SelectOp::create(b, kept, counted, rank),
                              offsets, ValueRange{slot});
    });
  });
  // Exclusive prefix sum of the counts.
  lb.forLoop(lb.index(1), lb.index(experts + 1), [&](Value e) {
    Value previous = memref::LoadOp::create(
        b, offsets, ValueRange{arith::SubIOp::create(b, e, lb.index(1))});
    Value count = memref::LoadOp::create(b, offsets, ValueRange{e});
    memref::StoreOp::create(b, arith::AddIOp::create(b, previous, count),
                            offsets, ValueRange{e});
  });
  // Pass 2: ranks become rows.
  lb.forLoop(zero, tokens, [&](Value t) {
    lb.forLoop(zero, kSlots, [&](Value j) {
      Value rank = memref::LoadOp::create(b, positions, ValueRange{t, j});
      Value e = arith::IndexCastOp::create(
          b, b.getIndexType(),
          memref::LoadOp::create(b, indices, ValueRange{t, j}));
      Value start = memref::LoadOp::create(b, offsets, ValueRange{e});
      Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, rank,
                                         lb.i32(0));
      memref::StoreOp::create(
          b,
          arith::SelectOp::create(b, kept,
                                  arith::AddIOp::create(b, rank, start), rank),
          positions, ValueRange{t, j});
    });
  });

  RoutingPlan plan{asTensor(b, positions, positionsType),
                   asTensor(b, offsets, offsetsType)};
  Value routing = UnrealizedConversionCastOp::create(
                      b, op.getRouting().getType(),
                      ValueRange{plan.positions, plan.offsets})
                      .getResult(0);
  rewriter.replaceOp(op, ValueRange{asTensor(b, weights, weightsType),
                                    asTensor(b, indices, indicesType),
                                    routing});
}

//===----------------------------------------------------------------------===//
// moe.dispatch, moe.experts, moe.combine
//===----------------------------------------------------------------------===//

/// The plan a lowered gate attached to `routing`.
FailureOr<RoutingPlan> planOf(Operation *user, Value routing) {
  auto cast = routing.getDefiningOp<UnrealizedConversionCastOp>();
  if (!cast || cast.getNumOperands() != 2)
    return user->emitOpError()
           << "routing must be produced by a moe.gate in the same function "
              "to be lowered to loops";
  return RoutingPlan{cast.getOperand(0), cast.getOperand(1)};
}

LogicalResult lowerDispatch(DispatchOp op, RewriterBase &rewriter) {
  FailureOr<RoutingPlan> plan = planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  LoopBuilder lb(b);
  Value zero = lb.index(0);
  Value x = readBuffer(b, op.getX());
  Value positions = readBuffer(b, plan->positions);
  Value tokens = lb.dim(x, 0), hidden = lb.dim(x, 1);
  int64_t topK = op.getRouting().getType().getTopK();
  auto resultType = cast<RankedTensorType>(op.getDispatched().getType());
  SmallVector<Value> rows;
  if (resultType.isDynamicDim(0))
    rows.push_back(arith::MulIOp::create(b, tokens, lb.index(topK)));
  Value out = allocResult(b, resultType, rows);
  // Rows no kept assignment owns stay zero.
  lb.fill(out, lb.zeroOf(resultType.getElementType()));
  lb.forLoop(zero, tokens, [&](Value t) {
    lb.forLoop(zero, lb.index(topK), [&](Value j) {
      Value row = memref::LoadOp::create(b, positions, ValueRange{t, j});
      Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row,
                                         lb.i32(0));
      lb.ifThen(kept, [&] {
        Value r = arith::IndexCastOp::create(b, b.getIndexType(), row);
        lb.forLoop(zero, hidden, [&](Value h) {
          Value v = memref::LoadOp::create(b, x, ValueRange{t, h});
          memref::StoreOp::create(b, v, out, ValueRange{r, h});
        });
      });
    });
  });
  rewriter.replaceOp(op, asTensor(b, out, resultType));
  return success();
}

LogicalResult lowerExperts(ExpertsOp op, RewriterBase &rewriter) {
  FailureOr<RoutingPlan> plan = planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  LoopBuilder lb(b);
  Value zero = lb.index(0);
  auto w1Type = op.getW1().getType();
  int64_t experts = w1Type.getDimSize(0), hidden = w1Type.getDimSize(1);
  int64_t ffn = w1Type.getDimSize(2) / 2;

  Value in = readBuffer(b, op.getTokens());
  Value w1 = readBuffer(b, op.getW1());
  Value w2 = readBuffer(b, op.getW2());
  Value offsets = readBuffer(b, plan->offsets);
  auto resultType = cast<RankedTensorType>(op.getOut().getType());
  Value out = allocResult(b, resultType, dynamicExtents(lb, resultType, in));
  lb.fill(out, lb.zeroOf(resultType.getElementType()));

  Value gateUp = scratch(b, {2 * ffn}, b.getF32Type());
  Value acc = scratch(b, {hidden}, b.getF32Type());
  Value H = lb.index(hidden), F = lb.index(ffn), twoF = lb.index(2 * ffn);
  bool gelu = op.getActivation() == Activation::gelu_glu;

  lb.forLoop(zero, lb.index(experts), [&](Value e) {
    auto rowOf = [&](Value i) {
      return arith::IndexCastOp::create(
          b, b.getIndexType(), memref::LoadOp::create(b, offsets, ValueRange{i}));
    };
    Value first = rowOf(e);
    Value last = rowOf(arith::AddIOp::create(b, e, lb.index(1)));
    lb.forLoop(first, last, [&](Value r) {
      // h = row . w1[e]  (gate | up), f32 accumulation.
      lb.fill(gateUp, lb.f32(0.0));
      lb.forLoop(zero, H, [&](Value h) {
        Value xv = lb.loadF32(in, {r, h});
        lb.forLoop(zero, twoF, [&](Value c) {
          Value prev = memref::LoadOp::create(b, gateUp, ValueRange{c});
          Value prod = arith::MulFOp::create(b, xv, lb.loadF32(w1, {e, h, c}));
          memref::StoreOp::create(b, arith::AddFOp::create(b, prev, prod),
                                  gateUp, ValueRange{c});
        });
      });
      // out[r] = (act(gate) * up) . w2[e]
      lb.fill(acc, lb.f32(0.0));
      lb.forLoop(zero, F, [&](Value f) {
        Value g = memref::LoadOp::create(b, gateUp, ValueRange{f});
        Value up = memref::LoadOp::create(
            b, gateUp, ValueRange{arith::AddIOp::create(b, f, F)});
        Value a = arith::MulFOp::create(b, gelu ? geluTanh(lb, g) : silu(lb, g),
                                        up);
        lb.forLoop(zero, H, [&](Value h) {
          Value prev = memref::LoadOp::create(b, acc, ValueRange{h});
          Value prod = arith::MulFOp::create(b, a, lb.loadF32(w2, {e, f, h}));
          memref::StoreOp::create(b, arith::AddFOp::create(b, prev, prod), acc,
                                  ValueRange{h});
        });
      });
      lb.forLoop(zero, H, [&](Value h) {
        lb.storeF32(memref::LoadOp::create(b, acc, ValueRange{h}), out, {r, h});
      });
    });
  });
  rewriter.replaceOp(op, asTensor(b, out, resultType));
  return success();
}

LogicalResult lowerCombine(CombineOp op, RewriterBase &rewriter) {
  FailureOr<RoutingPlan> plan = planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  LoopBuilder lb(b);
  Value zero = lb.index(0);
  Value expertOut = readBuffer(b, op.getExpertOut());
  Value weights = readBuffer(b, op.getWeights());
  Value positions = readBuffer(b, plan->positions);
  int64_t hidden = op.getExpertOut().getType().getDimSize(1);
  int64_t topK = op.getRouting().getType().getTopK();
  auto resultType = cast<RankedTensorType>(op.getY().getType());
  Value out =
      allocResult(b, resultType, dynamicExtents(lb, resultType, weights));
  Value acc = scratch(b, {hidden}, b.getF32Type());
  Value H = lb.index(hidden);

  lb.forLoop(zero, lb.dim(weights, 0), [&](Value t) {
    lb.fill(acc, lb.f32(0.0));
    lb.forLoop(zero, lb.index(topK), [&](Value j) {
      Value row = memref::LoadOp::create(b, positions, ValueRange{t, j});
      Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row,
                                         lb.i32(0));
      lb.ifThen(kept, [&] {
        Value r = arith::IndexCastOp::create(b, b.getIndexType(), row);
        Value w = memref::LoadOp::create(b, weights, ValueRange{t, j});
        lb.forLoop(zero, H, [&](Value h) {
          Value prev = memref::LoadOp::create(b, acc, ValueRange{h});
          Value prod = arith::MulFOp::create(b, w, lb.loadF32(expertOut, {r, h}));
          memref::StoreOp::create(b, arith::AddFOp::create(b, prev, prod), acc,
                                  ValueRange{h});
        });
      });
    });
    lb.forLoop(zero, H, [&](Value h) {
      lb.storeF32(memref::LoadOp::create(b, acc, ValueRange{h}), out, {t, h});
    });
  });
  rewriter.replaceOp(op, asTensor(b, out, resultType));
  return success();
}

struct MoeLowerToLoopsPass
    : public moe::impl::MoeLowerToLoopsPassBase<MoeLowerToLoopsPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    // Gates first, so that every consumer finds its routing plan.
    SmallVector<GateOp> gates;
    getOperation()->walk([&](GateOp op) { gates.push_back(op); });
    for (GateOp op : gates)
      lowerGate(op, rewriter);

    SmallVector<Operation *> users;
    getOperation()->walk([&](Operation *op) {
      if (isa<DispatchOp, ExpertsOp, CombineOp>(op))
        users.push_back(op);
    });
    for (Operation *op : users) {
      LogicalResult result =
          TypeSwitch<Operation *, LogicalResult>(op)
              .Case([&](DispatchOp o) { return lowerDispatch(o, rewriter); })
              .Case([&](ExpertsOp o) { return lowerExperts(o, rewriter); })
              .Case([&](CombineOp o) { return lowerCombine(o, rewriter); });
      if (failed(result))
        return signalPassFailure();
    }

    // The plan's casts are dead once every user is lowered; a routing value
    // that is still used (returned, passed to a call) cannot be lowered.
    WalkResult walk = getOperation()->walk([&](UnrealizedConversionCastOp c) {
      if (!isa<RoutingType>(c.getResult(0).getType()))
        return WalkResult::advance();
      if (!c->use_empty()) {
        c->getUses().begin()->getOwner()->emitOpError()
            << "uses a !moe.routing value, which only moe.dispatch, "
               "moe.experts and moe.combine can consume when lowering to loops";
        return WalkResult::interrupt();
      }
      rewriter.eraseOp(c);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
