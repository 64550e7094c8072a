//===- BackwardLoops.cpp - The backward kernels as loops ------------------===//

#include "lib/Conversion/MoekToLoops/BackwardLoops.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

namespace mlir::moek {

namespace {

Value load(ImplicitLocOpBuilder &b, Value buffer, ValueRange indices) {
  return memref::LoadOp::create(b, buffer, indices);
}

Value mul(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::MulFOp::create(b, x, y);
}

Value add(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::AddFOp::create(b, x, y);
}

Value sub(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::SubFOp::create(b, x, y);
}

/// The grouped rows of experts [first, last) of a kernel with `offsets`:
/// body(e, r, local) with local = r - offsets[first].
void forEachGroupedRow(LoopBuilder &lb, Value offsets, Value first, Value last,
                       function_ref<void(Value, Value, Value)> body) {
  ImplicitLocOpBuilder &b = lb.builder();
  auto rowOf = [&](Value e) { return asIndex(b, load(b, offsets, {e})); };
  Value base = rowOf(first);
  lb.forLoop(first, last, [&](Value e) {
    Value end = rowOf(arith::AddIOp::create(b, e, lb.index(1)));
    lb.forLoop(rowOf(e), end, [&](Value r) {
      body(e, r, arith::SubIOp::create(b, r, base));
    });
  });
}

/// 1 / max(T, 1) in f32, T the token count of `x`: a call with no tokens
/// has no loss.
Value inverseTokens(LoopBuilder &lb, Value x) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value tokensF = arith::UIToFPOp::create(
      b, b.getF32Type(),
      arith::IndexCastOp::create(b, b.getI64Type(), lb.dim(x, 0)));
  return arith::DivFOp::create(
      b, lb.f32(1.0), arith::MaximumFOp::create(b, tokensF, lb.f32(1.0)));
}

std::pair<Value, Value> expertRange(LoopBuilder &lb, Value first, Value last,
                                    int64_t experts) {
  return {first ? first : lb.index(0), last ? last : lb.index(experts)};
}

} // namespace

std::pair<Value, Value> activationAndSlope(LoopBuilder &lb, Value x,
                                           bool gelu) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value one = lb.f32(1.0);
  // Approximate exp and division, as the forward's silu and geluTanh take
  // them (ex2.approx, div.approx on the GPU; the CPU's stay exact).
  auto afn = arith::FastMathFlags::afn;
  if (!gelu) {
    // silu = x s, silu' = s (1 + x (1 - s)), s = sigmoid(x).
    Value e = math::ExpOp::create(b, arith::NegFOp::create(b, x), afn);
    Value s = arith::DivFOp::create(b, one, add(b, one, e), afn);
    Value slope = mul(b, s, add(b, one, mul(b, x, sub(b, one, s))));
    return {mul(b, x, s), slope};
  }
  // 0.5 x (1 + th), th = tanh(u), u = c (x + 0.044715 x^3);
  // derivative 0.5 (1 + th) + 0.5 x (1 - th^2) c (1 + 3 * 0.044715 x^2).
  Value c = lb.f32(0.7978845608028654);
  Value x2 = mul(b, x, x);
  Value u = mul(b, c, add(b, x, mul(b, lb.f32(0.044715), mul(b, x2, x))));
  Value e2u = math::ExpOp::create(b, add(b, u, u), afn);
  Value th = sub(b, one,
                 arith::DivFOp::create(b, lb.f32(2.0), add(b, e2u, one), afn));
  Value half = lb.f32(0.5);
  Value onePlus = add(b, one, th);
  Value value = mul(b, mul(b, half, x), onePlus);
  Value du = mul(b, c, add(b, one, mul(b, lb.f32(3.0 * 0.044715), x2)));
  Value slope = add(b, mul(b, half, onePlus),
                    mul(b, mul(b, mul(b, half, x), sub(b, one, mul(b, th, th))),
                        du));
  return {value, slope};
}

void lowerExpertLoads(ExpertLoadsOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value offsets = op.getOffsets(), loads = op.getLoads();
  lb.forLoop(lb.index(0), lb.dim(loads, 0), [&](Value e) {
    Value next = arith::AddIOp::create(b, e, lb.index(1));
    memref::StoreOp::create(
        b, arith::SubIOp::create(b, load(b, offsets, {next}), load(b, offsets, {e})),
        loads, ValueRange{e});
  });
}

GluBackwardRow gluBackwardRowOf(LoopBuilder &lb, GroupedGluBackwardOp op,
                                Value r) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value topK = lb.index(op.getTopK());
  Value owner = asIndex(b, load(b, op.getOwners(), {r}));
  Value t = arith::DivUIOp::create(b, owner, topK);
  Value j = arith::RemUIOp::create(b, owner, topK);
  return {t, j, lb.loadF32(op.getWeights(), {t, j})};
}

GluBackwardValues gluBackwardValues(LoopBuilder &lb, bool gelu, Value g,
                                    Value gate, Value up, Value w) {
  ImplicitLocOpBuilder &b = lb.builder();
  auto [value, slope] = activationAndSlope(lb, gate, gelu);
  Value a = mul(b, value, up);
  Value wg = mul(b, w, g);
  // act is weighted: dw2's GEMM then reads it as it is.
  return {mul(b, a, w), mul(b, mul(b, wg, up), slope), mul(b, wg, value),
          mul(b, g, a)};
}

Value emitGluBackwardElement(LoopBuilder &lb, GroupedGluBackwardOp op,
                             Value local, Value f, Value w) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value gate_up = op.getGateUp(), act = op.getAct(), dh = op.getDh();
  bool gelu = op.getActivation() == moe::Activation::gelu_glu;
  // g = dy[t] . w2[e, f, :], computed by the GEMM before; read before a is
  // written, which may be over it (act may be g).
  Value g = lb.loadF32(op.getG(), {local, f});
  Value fUp =
      arith::AddIOp::create(b, f, lb.index(staticDim(op.getG(), 1)));
  Value gate = lb.loadF32(gate_up, {local, f});
  Value up = lb.loadF32(gate_up, {local, fUp});
  GluBackwardValues v = gluBackwardValues(lb, gelu, g, gate, up, w);
  lb.storeF32(v.weightedAct, act, {local, f});
  lb.storeF32(v.dGate, dh, {local, f});
  lb.storeF32(v.dUp, dh, {local, fUp});
  return v.weightTerm;
}

void emitGluBackwardRow(LoopBuilder &lb, GroupedGluBackwardOp op, Value r,
                        Value local) {
  GluBackwardRow row = gluBackwardRowOf(lb, op, r);
  Value dot = lb.forLoopCarrying(
      lb.index(0), lb.index(staticDim(op.getG(), 1)), ValueRange{lb.f32(0.0)},
      [&](Value f, ValueRange carried) -> SmallVector<Value> {
        return {add(lb.builder(), carried[0],
                    emitGluBackwardElement(lb, op, local, f, row.w))};
      })[0];
  // dy[t] . o_j = <g, a>, o_j never formed.
  lb.storeF32(dot, op.getDWeights(), {row.t, row.j});
}

void lowerGroupedGluBackward(GroupedGluBackwardOp op,
                             ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  auto [first, last] = expertRange(lb, op.getFirstExpert(), op.getLastExpert(),
                                   staticDim(op.getOffsets(), 0) - 1);
  forEachGroupedRow(lb, op.getOffsets(), first, last,
                    [&](Value, Value r, Value local) {
                      emitGluBackwardRow(lb, op, r, local);
                    });
}

void lowerGroupedWeightGrad(GroupedWeightGradOp op, ImplicitLocOpBuilder &b,
                            ImplicitLocOpBuilder &hoisted) {
  LoopBuilder lb(b);
  Value lhs = op.getLhs(), rhs = op.getRhs(), owners = op.getOwners();
  Value weights = op.getWeights(), dw = op.getDw(), offsets = op.getOffsets();
  int64_t experts = staticDim(dw, 0), depth = staticDim(dw, 1);
  int64_t width = staticDim(dw, 2);
  Value topK = lb.index(op.getTopK()), zero = lb.index(0);
  Value K = lb.index(depth), N = lb.index(width);
  Value acc = scratch(hoisted, {width}, b.getF32Type(), ScratchPlace::Heap);
  auto [first, last] =
      expertRange(lb, op.getFirstExpert(), op.getLastExpert(), experts);
  auto rowOf = [&](Value e) { return asIndex(b, load(b, offsets, {e})); };
  Value base = rowOf(first);
  lb.forLoop(first, last, [&](Value e) {
    Value begin = rowOf(e);
    Value end = rowOf(arith::AddIOp::create(b, e, lb.index(1)));
    lb.forLoop(zero, K, [&](Value i) {
      lb.fill(acc, lb.f32(0.0));
      // The reduction runs over this expert's rows: varlen-K.
      lb.forLoop(begin, end, [&](Value r) {
        Value local = arith::SubIOp::create(b, r, base);
        Value owner = asIndex(b, load(b, owners, {r}));
        Value token = arith::DivUIOp::create(b, owner, topK);
        Value lrow = op.getGatherLhs() ? token : local;
        Value rrow = op.getGatherRhs() ? token : local;
        Value lv = lb.loadF32(lhs, {lrow, i});
        if (weights)
          lv = mul(b, lv,
                   lb.loadF32(weights,
                              {token, arith::RemUIOp::create(b, owner, topK)}));
        lb.forLoop(zero, N, [&](Value n) {
          Value prev = load(b, acc, {n});
          memref::StoreOp::create(b, add(b, prev, mul(b, lv, lb.loadF32(rhs, {rrow, n}))),
                                  acc, ValueRange{n});
        });
      });
      lb.forLoop(zero, N, [&](Value n) {
        lb.storeF32(load(b, acc, {n}), dw, {e, i, n});
      });
    });
  });
}

Value emitRouteBackwardToken(LoopBuilder &lb, RouteBackwardOp op, Value p,
                             Value dp, Value t, bool atomicWeightGrad,
                             Value scores, Value narrowDs) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value x = op.getX(), wGate = op.getWGate(), indices = op.getIndices();
  Value offsets = op.getOffsets(), dWeights = op.getDWeights();
  Value dx = op.getDx(), dwGate = op.getDwGate();
  int64_t experts = staticDim(wGate, 1), hidden = staticDim(wGate, 0);
  int64_t topK = staticDim(indices, 1);
  double coef = op.getAuxLoss().convertToDouble();
  double scaling = op.getScaling().convertToDouble();
  bool softmax = op.getScoreFunc() == moe::ScoreFunc::softmax;
  Type f32 = b.getF32Type();
  Value zero = lb.index(0), E = lb.index(experts), H = lb.index(hidden);
  Value K = lb.index(topK);
  Value invT = inverseTokens(lb, x);

  if (Value saved = op.getProbs()) {
    // The forward saved them: no scores to recompute.
    lb.forLoop(zero, E, [&](Value e) {
      memref::StoreOp::create(
          b, memref::LoadOp::create(b, saved, ValueRange{t, e}), p,
          ValueRange{e});
    });
  } else {
    // Scores and probabilities, recomputed (not a residual): here, or by
    // the GEMM that filled `scores`.
    if (scores) {
      lb.forLoop(zero, E, [&](Value e) {
        memref::StoreOp::create(b, load(b, scores, {t, e}), p, ValueRange{e});
      });
    } else {
      lb.fill(p, lb.f32(0.0));
      lb.forLoop(zero, H, [&](Value h) {
        Value xv = lb.loadF32(x, {t, h});
        lb.forLoop(zero, E, [&](Value e) {
          memref::StoreOp::create(
              b,
              add(b, load(b, p, {e}), mul(b, xv, lb.loadF32(wGate, {h, e}))),
              p, ValueRange{e});
        });
      });
    }
    if (softmax) {
      Value max = lb.forLoopCarrying(
          zero, E, ValueRange{lb.f32(-INFINITY)},
          [&](Value e, ValueRange c) -> SmallVector<Value> {
            return {arith::MaximumFOp::create(b, c[0], load(b, p, {e}))};
          })[0];
      Value sum = lb.forLoopCarrying(
          zero, E, ValueRange{lb.f32(0.0)},
          [&](Value e, ValueRange c) -> SmallVector<Value> {
            Value ex = math::ExpOp::create(b, sub(b, load(b, p, {e}), max));
            memref::StoreOp::create(b, ex, p, ValueRange{e});
            return {add(b, c[0], ex)};
          })[0];
      lb.forLoop(zero, E, [&](Value e) {
        memref::StoreOp::create(
            b, arith::DivFOp::create(b, load(b, p, {e}), sum), p,
            ValueRange{e});
      });
    } else {
      lb.forLoop(zero, E, [&](Value e) {
        Value ex =
            math::ExpOp::create(b, arith::NegFOp::create(b, load(b, p, {e})));
        memref::StoreOp::create(
            b, arith::DivFOp::create(b, lb.f32(1.0), add(b, lb.f32(1.0), ex)),
            p, ValueRange{e});
      });
    }
  }

  // Through scaling and normalization to dp over the selected experts.
  lb.fill(dp, lb.f32(0.0));
  // d w_j / d p_i = (delta_ij - p_j / S) / S when normalized, with the
  // ratios p_j / S: k = 1 (ratio exactly 1) gives exactly 0.
  Value sum = lb.forLoopCarrying(
      zero, K, ValueRange{lb.f32(0.0)},
      [&](Value j, ValueRange c) -> SmallVector<Value> {
        Value e = asIndex(b, load(b, indices, {t, j}));
        return {add(b, c[0], load(b, p, {e}))};
      })[0];
  Value cross = lb.forLoopCarrying(
      zero, K, ValueRange{lb.f32(0.0)},
      [&](Value j, ValueRange c) -> SmallVector<Value> {
        Value e = asIndex(b, load(b, indices, {t, j}));
        Value ratio = arith::DivFOp::create(b, load(b, p, {e}), sum);
        return {add(b, c[0], mul(b, load(b, dWeights, {t, j}), ratio))};
      })[0];
  lb.forLoop(zero, K, [&](Value j) {
    Value e = asIndex(b, load(b, indices, {t, j}));
    Value d = load(b, dWeights, {t, j});
    if (op.getNormalize())
      d = arith::DivFOp::create(b, sub(b, d, cross), sum);
    memref::StoreOp::create(
        b, add(b, load(b, dp, {e}), mul(b, lb.f32(scaling), d)), dp,
        ValueRange{e});
  });

  // The load-balancing loss: COEF * E * f_e / T joins dp[t, e], and the
  // token adds COEF * E * sum_e f_e p[t, e] / T to the loss.
  Value aux = lb.f32(0.0);
  if (coef > 0.0) {
    Value scale = mul(b, lb.f32(coef * double(experts)), invT);
    aux = lb.forLoopCarrying(
        zero, E, ValueRange{aux},
        [&](Value e, ValueRange c) -> SmallVector<Value> {
          Value next = arith::AddIOp::create(b, e, lb.index(1));
          Value count = arith::SubIOp::create(b, load(b, offsets, {next}),
                                              load(b, offsets, {e}));
          // f_e = loads / (group_ranks*T*k): the EP group's loads when
          // the offsets are the group's.
          Value f = mul(b, arith::SIToFPOp::create(b, f32, count),
                        arith::DivFOp::create(
                            b, invT,
                            lb.f32(double(topK) *
                                   double(op.getGroupRanks()))));
          memref::StoreOp::create(b, add(b, load(b, dp, {e}), mul(b, scale, f)),
                                  dp, ValueRange{e});
          return {add(b, c[0], mul(b, scale, mul(b, f, load(b, p, {e}))))};
        })[0];
  }

  // Through the score function: dp becomes ds.
  if (softmax) {
    Value dot = lb.forLoopCarrying(
        zero, E, ValueRange{lb.f32(0.0)},
        [&](Value e, ValueRange c) -> SmallVector<Value> {
          return {add(b, c[0], mul(b, load(b, p, {e}), load(b, dp, {e})))};
        })[0];
    lb.forLoop(zero, E, [&](Value e) {
      memref::StoreOp::create(
          b, mul(b, load(b, p, {e}), sub(b, load(b, dp, {e}), dot)), dp,
          ValueRange{e});
    });
  } else {
    lb.forLoop(zero, E, [&](Value e) {
      Value pe = load(b, p, {e});
      memref::StoreOp::create(
          b, mul(b, load(b, dp, {e}), mul(b, pe, sub(b, lb.f32(1.0), pe))), dp,
          ValueRange{e});
    });
  }

  // Rounded for the tensor cores' products, which read nothing else.
  if (narrowDs) {
    lb.forLoop(zero, E, [&](Value e) {
      lb.storeF32(load(b, dp, {e}), narrowDs, {t, e});
    });
    return aux;
  }
  // With `scores`, ds replaces the token's scores there; the products with
  // x and w_gate run as kernels of their own.
  if (scores) {
    lb.forLoop(zero, E, [&](Value e) {
      memref::StoreOp::create(b, load(b, dp, {e}), scores, ValueRange{t, e});
    });
    return aux;
  }
  // s = x[t] . w_gate: dx[t] += ds . w_gate^T (token t's row is its own),
  // dw_gate += x[t]^T ds (shared by all tokens: atomics on the GPU).
  lb.forLoop(zero, H, [&](Value h) {
    Value xv = lb.loadF32(x, {t, h});
    Value s = lb.forLoopCarrying(
        zero, E, ValueRange{lb.f32(0.0)},
        [&](Value e, ValueRange c) -> SmallVector<Value> {
          Value ds = load(b, dp, {e});
          Value term = mul(b, xv, ds);
          if (atomicWeightGrad)
            memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, term,
                                        dwGate, ValueRange{h, e});
          else
            memref::StoreOp::create(b, add(b, load(b, dwGate, {h, e}), term),
                                    dwGate, ValueRange{h, e});
          return {add(b, c[0], mul(b, lb.loadF32(wGate, {h, e}), ds))};
        })[0];
    lb.storeF32(add(b, lb.loadF32(dx, {t, h}), s), dx, {t, h});
  });
  return aux;
}

void lowerRouteBackward(RouteBackwardOp op, ImplicitLocOpBuilder &b,
                        ImplicitLocOpBuilder &hoisted) {
  LoopBuilder lb(b);
  int64_t experts = staticDim(op.getWGate(), 1);
  Type f32 = b.getF32Type();
  Value p = scratch(hoisted, {experts}, f32, ScratchPlace::Heap);
  Value dp = scratch(hoisted, {experts}, f32, ScratchPlace::Heap);
  lb.fill(op.getDwGate(), lb.f32(0.0));
  Value aux = lb.forLoopCarrying(
      lb.index(0), lb.dim(op.getX(), 0), ValueRange{lb.f32(0.0)},
      [&](Value t, ValueRange carried) -> SmallVector<Value> {
        Value term = emitRouteBackwardToken(lb, op, p, dp, t,
                                            /*atomicWeightGrad=*/false);
        return {add(b, carried[0], term)};
      })[0];
  memref::StoreOp::create(b, aux, op.getAux(), ValueRange{});
}

} // namespace mlir::moek
