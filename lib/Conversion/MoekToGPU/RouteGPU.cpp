//===- RouteGPU.cpp - moek.route's per-token kernel on CUDA ---------------===//
//
// A warp per token, 8 tokens a CTA (launchWarpPerItem). Lane l keeps the
// scores of experts l, l + 32, ... in registers; the softmax's max and sum
// are butterflies of shuffles; each of the k slots is an argmax across the
// warp of redux.sync on integers (the keys as order-preserving codes: two
// when none of the token's keys is NaN, four when the rule for NaN keys
// applies) and one shuffle for the winner's probability, where a butterfly
// of (key, expert) pairs took 165 PTX instructions, 21 of them shuffles,
// which bounded the kernel by issue. Lane j keeps slot j (k <= 32) and the
// warp stores the slots at the end. The per-token body it replaces
// (KernelBodies.cpp) ran on one thread per token through 5 + k passes over
// E values in local memory: 56 us of qwen3_30b_a3b's 2.9 ms forward on the
// H200 (16K tokens, E = 128, k = 8); this kernel takes 17 us.
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
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

namespace {

/// An i32 `value` reduced across the whole warp by one redux.sync (sm_80
/// and later: every CUDA target here).
Value redux(ImplicitLocOpBuilder &b, Value value, NVVM::ReduxKind kind) {
  Value allLanes = arith::ConstantIntOp::create(b, b.getI32Type(), -1);
  return NVVM::ReduxOp::create(b, b.getI32Type(), value, kind, allLanes);
}

/// The bits of an f32 `key` (not NaN) as a u32 whose unsigned order is the
/// keys' order: negatives' bits flipped, positives' sign bit set. -0 is
/// made +0 first (x + 0 = +0 for x = -0), since the two compare equal and a
/// tie goes to the lower expert. No number codes to 0.
Value orderPreservingCode(ImplicitLocOpBuilder &b, Value key) {
  Type i32 = b.getI32Type();
  Value zero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0));
  Value bits =
      arith::BitcastOp::create(b, i32, arith::AddFOp::create(b, key, zero));
  Value negative =
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, bits,
                            arith::ConstantIntOp::create(b, i32, 0));
  Value flipped =
      arith::XOrIOp::create(b, bits, arith::ConstantIntOp::create(b, i32, -1));
  Value signed_ = arith::OrIOp::create(
      b, bits,
      arith::ConstantIntOp::create(b, i32, static_cast<int32_t>(0x80000000u)));
  return arith::SelectOp::create(b, negative, flipped, signed_);
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
    // Approximate exp and division (ex2.approx, div.approx: 2 ulp), as the
    // GLU's activation: the kernel is bound by issue, and libdevice's expf
    // with an IEEE division cost about 20 instructions a score.
    auto afn = arith::FastMathFlags::afn;
    SmallVector<Value> probs;
    if (op.getScoreFunc() == ScoreFunc::softmax) {
      Value max = score[0];
      for (int64_t i = 1; i < perLane; ++i)
        max = arith::MaximumFOp::create(b, max, score[i]);
      max = butterflyReduce(b, max, /*max=*/true, kWholeWarp);
      Value sum = zeroF;
      SmallVector<Value> exps;
      for (int64_t i = 0; i < perLane; ++i) {
        Value ex = math::ExpOp::create(
            b, arith::SubFOp::create(b, score[i], max), afn);
        ex = arith::SelectOp::create(b, valid[i], ex, zeroF);
        exps.push_back(ex);
        sum = arith::AddFOp::create(b, sum, ex);
      }
      sum = butterflyReduce(b, sum, /*max=*/false, kWholeWarp);
      for (Value ex : exps)
        probs.push_back(arith::DivFOp::create(b, ex, sum, afn));
    } else {
      for (Value s : score) {
        Value ex = math::ExpOp::create(b, arith::NegFOp::create(b, s), afn);
        probs.push_back(arith::DivFOp::create(
            b, lb.f32(1.0), arith::AddFOp::create(b, lb.f32(1.0), ex), afn));
      }
    }
    // Saved for the backward (moe-place-recomputation), when asked.
    if (Value saved = op.getProbs())
      for (int64_t i = 0; i < perLane; ++i)
        lb.ifThen(valid[i], [&] {
          memref::StoreOp::create(b, probs[i], saved,
                                  ValueRange{t, expert[i]});
        });
    // Each key as an order-preserving u32 code (0: unavailable or NaN), so
    // that a slot's argmax is redux.sync on integers: the warp's largest
    // code, then the lowest expert holding it.
    SmallVector<Value> code, keyIsNaN, expert32;
    for (int64_t i = 0; i < perLane; ++i) {
      Value key = probs[i];
      if (bias)
        key = arith::AddFOp::create(b, key, lb.loadF32(bias, {expert[i]}));
      keyIsNaN.push_back(
          arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, key, key));
      Value isNumber =
          arith::CmpFOp::create(b, arith::CmpFPredicate::ORD, key, key);
      expert32.push_back(i32(expert[i]));
      code.push_back(arith::SelectOp::create(b, ix.both(valid[i], isNumber),
                                             orderPreservingCode(b, key),
                                             lb.i32(0)));
    }

    // Whether any of the token's keys is NaN (the same for the whole warp).
    // Without one, a slot is the largest available code, lowest expert on
    // ties: two redux.sync, where the rule for NaN keys (the first
    // available expert when its key is NaN) takes two more.
    Value laneHasNaN = arith::ConstantOp::create(b, b.getBoolAttr(false));
    for (int64_t i = 0; i < perLane; ++i)
      laneHasNaN =
          arith::OrIOp::create(b, laneHasNaN, ix.both(valid[i], keyIsNaN[i]));
    Value anyNaN = arith::CmpIOp::create(
        b, arith::CmpIPredicate::ne,
        redux(b, arith::ExtUIOp::create(b, b.getI32Type(), laneHasNaN),
              NVVM::ReduxKind::OR),
        lb.i32(0));
    // Up to 32 slots, lane j keeps slot j's expert and probability until
    // the end, so that the warp stores them in one go, normalized; more
    // slots go out from lane 0 as they are picked and are scaled after.
    bool slotsInLanes = topK <= 32;
    SmallVector<Value> init(valid);
    init.push_back(zeroF);
    init.push_back(lb.i32(0));
    init.push_back(zeroF);
    SmallVector<Value> done = lb.forLoopCarrying(
        ix.c(0), ix.c(topK), init,
        [&](Value j, ValueRange carried) -> SmallVector<Value> {
          ValueRange available = carried.take_front(perLane);
          Value sum = carried[perLane];
          Value laneSlotExpert = carried[perLane + 1];
          Value laneSlotProb = carried[perLane + 2];
          // This lane's largest available code with the lowest expert
          // holding it (experts ascend with i).
          Value bestCode = lb.i32(0), best = lb.i32(experts);
          for (int64_t i = 0; i < perLane; ++i) {
            Value mine =
                arith::SelectOp::create(b, available[i], code[i], lb.i32(0));
            Value take = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt,
                                               mine, bestCode);
            bestCode = arith::SelectOp::create(b, take, mine, bestCode);
            best = arith::SelectOp::create(b, take, expert32[i], best);
          }
          auto largest = [&](Value warpCode) {
            Value holds = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                bestCode, warpCode);
            return redux(
                b, arith::SelectOp::create(b, holds, best, lb.i32(experts)),
                NVVM::ReduxKind::UMIN);
          };
          auto pick = scf::IfOp::create(b, TypeRange{b.getI32Type()}, anyNaN,
                                        /*withElseRegion=*/true);
          {
            OpBuilder::InsertionGuard inPick(b);
            b.setInsertionPointToStart(pick.thenBlock());
            // This lane's first available expert (E: none) with whether
            // its key is NaN.
            Value first = lb.i32(experts);
            Value firstNaN = arith::ConstantOp::create(b, b.getBoolAttr(false));
            for (int64_t i = perLane - 1; i >= 0; --i) {
              first =
                  arith::SelectOp::create(b, available[i], expert32[i], first);
              firstNaN = arith::SelectOp::create(b, available[i], keyIsNaN[i],
                                                 firstNaN);
            }
            Value warpFirst = redux(b, first, NVVM::ReduxKind::UMIN);
            Value firstIsNaN = arith::AndIOp::create(
                b, firstNaN,
                arith::CmpIOp::create(b, arith::CmpIPredicate::eq, first,
                                      warpFirst));
            Value nanFirst =
                redux(b, arith::ExtUIOp::create(b, b.getI32Type(), firstIsNaN),
                      NVVM::ReduxKind::OR);
            Value warpCode = redux(b, bestCode, NVVM::ReduxKind::UMAX);
            Value warpBest = largest(warpCode);
            // The first available expert when its key is NaN or no key is
            // a number; else the largest key, lowest index on ties.
            Value useFirst = arith::OrIOp::create(
                b,
                arith::CmpIOp::create(b, arith::CmpIPredicate::ne, nanFirst,
                                      lb.i32(0)),
                arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warpCode,
                                      lb.i32(0)));
            scf::YieldOp::create(b, ValueRange{arith::SelectOp::create(
                                        b, useFirst, warpFirst, warpBest)});
            // No NaN key: every available key has a code above 0, and a
            // slot always has an available expert (k <= E).
            b.setInsertionPointToStart(pick.elseBlock());
            scf::YieldOp::create(
                b,
                ValueRange{largest(redux(b, bestCode, NVVM::ReduxKind::UMAX))});
          }
          Value winner = pick.getResult(0);
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
          if (slotsInLanes) {
            Value keeps =
                arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, j);
            laneSlotExpert =
                arith::SelectOp::create(b, keeps, winner, laneSlotExpert);
            laneSlotProb = arith::SelectOp::create(b, keeps, p, laneSlotProb);
          } else {
            lb.ifThen(ix.ult(lane, 1), [&] {
              memref::StoreOp::create(b, winner, indices, ValueRange{t, j});
              memref::StoreOp::create(b, p, weights, ValueRange{t, j});
            });
          }
          SmallVector<Value> next;
          for (int64_t i = 0; i < perLane; ++i)
            next.push_back(arith::AndIOp::create(
                b, available[i],
                arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                      expert32[i], winner)));
          next.push_back(arith::AddFOp::create(b, sum, p));
          next.push_back(laneSlotExpert);
          next.push_back(laneSlotProb);
          return next;
        });
    // The weights scaled as the per-token body scales them.
    double scaling = op.getScaling().convertToDouble();
    Value factor = op.getNormalize() ? arith::DivFOp::create(b, lb.f32(scaling),
                                                             done[perLane])
                                     : lb.f32(scaling);
    if (slotsInLanes) {
      lb.ifThen(ix.ult(lane, topK), [&] {
        memref::StoreOp::create(b, done[perLane + 1], indices,
                                ValueRange{t, lane});
        memref::StoreOp::create(
            b, arith::MulFOp::create(b, done[perLane + 2], factor), weights,
            ValueRange{t, lane});
      });
      return;
    }
    lb.ifThen(ix.ult(lane, 1), [&] {
      lb.forLoop(ix.c(0), ix.c(topK), [&](Value j) {
        Value w = memref::LoadOp::create(b, weights, ValueRange{t, j});
        memref::StoreOp::create(b, arith::MulFOp::create(b, w, factor),
                                weights, ValueRange{t, j});
      });
    });
  });
}
