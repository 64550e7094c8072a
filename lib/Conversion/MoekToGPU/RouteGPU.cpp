//===- RouteGPU.cpp - moek.route's per-token kernel on CUDA ---------------===//
//
// A warp per token, 8 tokens a CTA (launchWarpPerItem). Lane l keeps the
// scores of experts l, l + 32, ... in registers; the softmax's max and sum
// are butterflies of shuffles, and each of the k slots is one argmax across
// the warp. The
// per-token body it replaces (KernelBodies.cpp) ran on one thread per token
// through 5 + k passes over E values in local memory: 56 us of
// qwen3_30b_a3b's 2.9 ms forward on the H200 (16K tokens, E = 128, k = 8).
//
// The selection is the per-token body's argmaxAvailable, exactly: the first
// available expert whose key is greater than every earlier one's, so a tie
// goes to the lower index, and a NaN key is taken only when it is the first
// available one (then nothing displaces it). Across lanes that is: if the
// first available key is NaN, it; else the largest non-NaN key, lowest index
// on ties; else (every available key NaN) the first available.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/RouteGPU.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"
#include "lib/Conversion/MoekToGPU/WarpShuffle.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

namespace {

/// An i32 `value` combined (min or max) across the warp.
Value butterflyInt(ImplicitLocOpBuilder &b, Value value, bool max) {
  return butterfly(b, value, kWholeWarp, [&](Value mine, Value other) {
    return max ? Value(arith::MaxSIOp::create(b, mine, other))
               : Value(arith::MinSIOp::create(b, mine, other));
  });
}

} // namespace

bool mlir::moek::canRouteByWarp(RouteOp op) {
  int64_t experts = staticDim(op.getWGate(), 1);
  return !op.getNGroup().has_value() && experts >= 1 &&
         experts <= 32 * kMaxRouteExpertsPerLane;
}

void mlir::moek::lowerRouteByWarp(RouteOp op, LoopBuilder &lb, Value scores) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value bias = op.getBias(), weights = op.getWeights(),
        indices = op.getIndices();
  int64_t experts = staticDim(op.getWGate(), 1), topK = op.getTopK();
  int64_t perLane = (experts + 31) / 32;
  auto i32 = [&](Value index) {
    return arith::IndexCastOp::create(b, b.getI32Type(), index);
  };
  // The whole warp shares its token: the shuffles run with every lane.
  launchWarpPerItem(lb, lb.dim(scores, 0), [&](Value t, Value lane) {
    Value minusInf = lb.f32(-INFINITY), zeroF = lb.f32(0.0);
    // This lane's experts; past E (E not a multiple of 32) they are
    // unavailable and add nothing.
    SmallVector<Value> expert, valid, score;
    for (int64_t i = 0; i < perLane; ++i) {
      Value e = ix.add(lane, 32 * i);
      Value inRange = ix.ult(e, experts);
      Value safe = ix.minu(e, experts - 1);
      Value s = memref::LoadOp::create(b, scores, ValueRange{t, safe});
      expert.push_back(safe);
      valid.push_back(inRange);
      score.push_back(arith::SelectOp::create(b, inRange, s, minusInf));
    }
    SmallVector<Value> probs;
    if (op.getScoreFunc() == ScoreFunc::softmax) {
      Value max = score[0];
      for (int64_t i = 1; i < perLane; ++i)
        max = arith::MaximumFOp::create(b, max, score[i]);
      max = butterflyReduce(b, max, /*max=*/true, kWholeWarp);
      Value sum = zeroF;
      SmallVector<Value> exps;
      for (int64_t i = 0; i < perLane; ++i) {
        Value ex = math::ExpOp::create(b, arith::SubFOp::create(b, score[i], max));
        ex = arith::SelectOp::create(b, valid[i], ex, zeroF);
        exps.push_back(ex);
        sum = arith::AddFOp::create(b, sum, ex);
      }
      sum = butterflyReduce(b, sum, /*max=*/false, kWholeWarp);
      for (Value ex : exps)
        probs.push_back(arith::DivFOp::create(b, ex, sum));
    } else {
      for (Value s : score) {
        Value ex = math::ExpOp::create(b, arith::NegFOp::create(b, s));
        probs.push_back(arith::DivFOp::create(
            b, lb.f32(1.0), arith::AddFOp::create(b, lb.f32(1.0), ex)));
      }
    }
    // Saved for the backward (moe-place-recomputation), when asked.
    if (Value saved = op.getProbs())
      for (int64_t i = 0; i < perLane; ++i)
        lb.ifThen(valid[i], [&] {
          memref::StoreOp::create(b, probs[i], saved,
                                  ValueRange{t, expert[i]});
        });
    SmallVector<Value> keys, keyIsNaN, expert32;
    for (int64_t i = 0; i < perLane; ++i) {
      Value key = probs[i];
      if (bias)
        key = arith::AddFOp::create(b, key, lb.loadF32(bias, {expert[i]}));
      keys.push_back(key);
      keyIsNaN.push_back(
          arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, key, key));
      expert32.push_back(i32(expert[i]));
    }

    SmallVector<Value> init(valid);
    init.push_back(zeroF);
    SmallVector<Value> done = lb.forLoopCarrying(
        ix.c(0), ix.c(topK), init,
        [&](Value j, ValueRange carried) -> SmallVector<Value> {
          ValueRange available = carried.take_front(perLane);
          Value sum = carried[perLane];
          // The first available expert of this lane (E: none) and whether
          // its key is NaN; then the warp's first.
          Value first = lb.i32(experts);
          Value firstNaN = arith::ConstantOp::create(b, b.getBoolAttr(false));
          for (int64_t i = perLane - 1; i >= 0; --i) {
            first = arith::SelectOp::create(b, available[i], expert32[i], first);
            firstNaN =
                arith::SelectOp::create(b, available[i], keyIsNaN[i], firstNaN);
          }
          Value warpFirst = butterflyInt(b, first, /*max=*/false);
          Value firstIsNaN = arith::AndIOp::create(
              b, firstNaN,
              arith::CmpIOp::create(b, arith::CmpIPredicate::eq, first,
                                    warpFirst));
          Value nanFirst = butterflyInt(
              b, arith::ExtUIOp::create(b, b.getI32Type(), firstIsNaN),
              /*max=*/true);
          // The largest non-NaN key, lowest index on ties (-1: none).
          Value best = lb.i32(-1), bestKey = zeroF;
          auto better = [&](Value e, Value key, Value thanE, Value thanKey) {
            Value none = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                               thanE, lb.i32(-1));
            Value greater = arith::CmpFOp::create(
                b, arith::CmpFPredicate::OGT, key, thanKey);
            Value tieLower = arith::AndIOp::create(
                b,
                arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, key,
                                      thanKey),
                arith::CmpIOp::create(b, arith::CmpIPredicate::slt, e, thanE));
            return arith::OrIOp::create(
                b, none, arith::OrIOp::create(b, greater, tieLower));
          };
          for (int64_t i = 0; i < perLane; ++i) {
            Value candidate = arith::AndIOp::create(
                b, available[i],
                arith::XOrIOp::create(
                    b, keyIsNaN[i],
                    arith::ConstantOp::create(b, b.getBoolAttr(true))));
            Value take = arith::AndIOp::create(
                b, candidate, better(expert32[i], keys[i], best, bestKey));
            best = arith::SelectOp::create(b, take, expert32[i], best);
            bestKey = arith::SelectOp::create(b, take, keys[i], bestKey);
          }
          for (int32_t offset : kWholeWarp) {
            Value otherE = gpu::ShuffleOp::create(b, best, offset, 32,
                                                  gpu::ShuffleMode::XOR)
                               .getShuffleResult();
            Value otherKey = gpu::ShuffleOp::create(b, bestKey, offset, 32,
                                                    gpu::ShuffleMode::XOR)
                                 .getShuffleResult();
            Value some = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                               otherE, lb.i32(-1));
            Value take = arith::AndIOp::create(
                b, some, better(otherE, otherKey, best, bestKey));
            best = arith::SelectOp::create(b, take, otherE, best);
            bestKey = arith::SelectOp::create(b, take, otherKey, bestKey);
          }
          Value useFirst = arith::OrIOp::create(
              b,
              arith::CmpIOp::create(b, arith::CmpIPredicate::ne, nanFirst,
                                    lb.i32(0)),
              arith::CmpIOp::create(b, arith::CmpIPredicate::eq, best,
                                    lb.i32(-1)));
          Value winner = arith::SelectOp::create(b, useFirst, warpFirst, best);
          // Its probability, from the lane that keeps it.
          Value slot = arith::DivUIOp::create(b, winner, lb.i32(32));
          Value mine = probs[0];
          for (int64_t i = 1; i < perLane; ++i)
            mine = arith::SelectOp::create(
                b,
                arith::CmpIOp::create(b, arith::CmpIPredicate::eq, slot,
                                      lb.i32(i)),
                probs[i], mine);
          Value p = gpu::ShuffleOp::create(
                        b, mine, arith::RemUIOp::create(b, winner, lb.i32(32)),
                        lb.i32(32),
                        gpu::ShuffleModeAttr::get(b.getContext(),
                                                  gpu::ShuffleMode::IDX))
                        .getShuffleResult();
          lb.ifThen(ix.ult(lane, 1), [&] {
            memref::StoreOp::create(b, winner, indices, ValueRange{t, j});
            memref::StoreOp::create(b, p, weights, ValueRange{t, j});
          });
          SmallVector<Value> next;
          for (int64_t i = 0; i < perLane; ++i)
            next.push_back(arith::AndIOp::create(
                b, available[i],
                arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                      expert32[i], winner)));
          next.push_back(arith::AddFOp::create(b, sum, p));
          return next;
        });
    // The weights scaled as the per-token body scales them.
    double scaling = op.getScaling().convertToDouble();
    Value factor = op.getNormalize()
                       ? arith::DivFOp::create(b, lb.f32(scaling), done.back())
                       : lb.f32(scaling);
    lb.ifThen(ix.ult(lane, 1), [&] {
      lb.forLoop(ix.c(0), ix.c(topK), [&](Value j) {
        Value w = memref::LoadOp::create(b, weights, ValueRange{t, j});
        memref::StoreOp::create(b, arith::MulFOp::create(b, w, factor),
                                weights, ValueRange{t, j});
      });
    });
  });
}
