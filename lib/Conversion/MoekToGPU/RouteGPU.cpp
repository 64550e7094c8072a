//===- RouteGPU.cpp - moek.route's per-token kernel on CUDA ---------------===//
//
// Where the sm_90a scores GEMM's consumer warp holds all of its rows'
// experts (E = 64 or 128, its 128 x 128 tiles), the GEMM's epilogue routes
// its rows itself (emitRouteFromAccumulators): the four lanes of a quad
// that hold a row's scores take the place of a warp below, their
// reductions butterflies of two shuffles, and the [T, E] scores are never
// written nor read back (qwen3_30b_a3b: 8 MiB each way, and the 16 us
// kernel below). Otherwise:
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

/// The code of a NaN key: below every number's (orderPreservingCode's
/// least, -inf's, is 0x007fffff), above an unavailable expert's 0.
constexpr int32_t kNaNCode = 1;

/// The f32 whose orderPreservingCode is `code` (a number's).
Value keyOfCode(ImplicitLocOpBuilder &b, Value code) {
  Type i32 = b.getI32Type();
  Value positive =
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, code,
                            arith::ConstantIntOp::create(b, i32, 0));
  Value bits = arith::SelectOp::create(
      b, positive,
      arith::AndIOp::create(b, code,
                            arith::ConstantIntOp::create(b, i32, 0x7fffffff)),
      arith::XOrIOp::create(b, code, arith::ConstantIntOp::create(b, i32, -1)));
  return arith::BitcastOp::create(b, b.getF32Type(), bits);
}

/// The lanes that route a token together and where its experts sit in
/// them: a warp (lane l keeps experts l, l + 32, ...: value i is expert
/// l + 32 i) or a quad of a tensor-core accumulator fragment (lane q of the
/// quad keeps columns 8 j + 2 q + p: value 2 j + p is expert 2 q + 8 j + p).
/// In both, value i's expert is the lane's first plus offset(i), and a
/// lane's experts ascend with i, as the lane-local argmax's ties need.
struct LaneGroup {
  ImplicitLocOpBuilder &b;
  int64_t lanes;  ///< 32 or 4
  Value position; ///< this lane's place in the group (i32)
  Value first;    ///< the group's first lane in the warp (i32)
  Value laneExpert; ///< the expert of this lane's value 0 (i32)

  Value i32(int64_t v) {
    return arith::ConstantIntOp::create(b, b.getI32Type(), v);
  }
  int64_t offset(int64_t i) const {
    return lanes == 32 ? 32 * i : 8 * (i / 2) + i % 2;
  }
  /// offset(i) of a value index i held in a register (i32).
  Value offset(Value i) {
    if (lanes == 32)
      return arith::MulIOp::create(b, i, i32(32));
    return arith::AddIOp::create(
        b, arith::MulIOp::create(b, arith::DivUIOp::create(b, i, i32(2)), i32(8)),
        arith::RemUIOp::create(b, i, i32(2)));
  }
  /// An i32 reduced over the group: one redux.sync for a warp, a butterfly
  /// of two shuffles for a quad.
  Value reduce(Value value, NVVM::ReduxKind kind) {
    if (lanes == 32)
      return redux(b, value, kind);
    return butterfly(b, value, {1, 2}, [&](Value mine, Value other) -> Value {
      switch (kind) {
      case NVVM::ReduxKind::UMAX:
        return arith::MaxUIOp::create(b, mine, other);
      case NVVM::ReduxKind::UMIN:
        return arith::MinUIOp::create(b, mine, other);
      default:
        return arith::OrIOp::create(b, mine, other);
      }
    });
  }
  /// The position of the lane keeping expert `e` (i32) and its value
  /// index there.
  std::pair<Value, Value> holder(Value e) {
    if (lanes == 32)
      return {arith::RemUIOp::create(b, e, i32(32)),
              arith::DivUIOp::create(b, e, i32(32))};
    Value inEight = arith::RemUIOp::create(b, e, i32(8));
    return {arith::DivUIOp::create(b, inEight, i32(2)),
            arith::AddIOp::create(
                b,
                arith::MulIOp::create(
                    b, arith::DivUIOp::create(b, e, i32(8)), i32(2)),
                arith::RemUIOp::create(b, e, i32(2)))};
  }
  /// `value` from the lane of the group at `holderPosition`.
  Value broadcast(Value value, Value holderPosition) {
    return gpu::ShuffleOp::create(
               b, value, arith::AddIOp::create(b, first, holderPosition),
               i32(32), gpu::ShuffleMode::IDX)
        .getShuffleResult();
  }
};

/// One token as its group of lanes holds it: whether each of this lane's
/// values is one of the E experts, and its score (-inf past E). `exists` is
/// false for a row of a tile past the last token: it takes part in the
/// shuffles and stores nothing.
struct RoutedToken {
  Value token, exists;
  // Filled lane value by lane value after the token is made.
  SmallVector<Value> valid = {}, score = {};
};

/// A lane's largest code among `codes` (in ascending expert order) with the
/// lowest value index holding it, and that value's `payload` (may be
/// empty): a tree of pairwise maxima, 5 deep for 32 values, where a chain
/// kept each slot waiting on 32 dependent selects. The right side (higher
/// experts) wins only with a strictly larger code.
struct LaneBest {
  Value code, index, payload;
};
LaneBest laneBest(ImplicitLocOpBuilder &b, ArrayRef<Value> codes,
                  ArrayRef<Value> payload) {
  SmallVector<LaneBest> level;
  for (size_t i = 0; i < codes.size(); ++i)
    level.push_back({codes[i],
                     arith::ConstantIntOp::create(b, b.getI32Type(), i),
                     payload.empty() ? Value() : payload[i]});
  while (level.size() > 1) {
    SmallVector<LaneBest> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      const LaneBest &left = level[i], &right = level[i + 1];
      Value takeRight = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt,
                                              right.code, left.code);
      next.push_back(
          {arith::SelectOp::create(b, takeRight, right.code, left.code),
           arith::SelectOp::create(b, takeRight, right.index, left.index),
           left.payload ? Value(arith::SelectOp::create(
                              b, takeRight, right.payload, left.payload))
                        : Value()});
    }
    if (level.size() % 2)
      next.push_back(level.back());
    level = std::move(next);
  }
  return level.front();
}

/// The probabilities and the top-k of `tokens`, each routed by `group`:
/// the softmax's max and sum and each slot's argmax are reductions over the
/// group, the selection that of the per-token body (KernelBodies.cpp's
/// argmaxAvailable: ties to the lower index, a NaN key taken only when it
/// is the first available). The lane at position p keeps slots p, p + G,
/// ... until the end, so that the group stores them in one go, normalized.
/// The tokens' slots are picked in one loop, for the latencies of their
/// reductions to overlap.
void routeTokens(RouteOp op, LoopBuilder &lb, LaneGroup &group,
                 MutableArrayRef<RoutedToken> tokens) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value bias = op.getBias(), weights = op.getWeights(),
        indices = op.getIndices();
  int64_t experts = staticDim(op.getWGate(), 1), topK = op.getTopK();
  int64_t perLane = tokens.front().score.size();
  int64_t slotsPerLane = (topK + group.lanes - 1) / group.lanes;
  Value zeroF = lb.f32(0.0);
  auto expertOf = [&](int64_t i) {
    return arith::AddIOp::create(b, group.laneExpert,
                                 group.i32(group.offset(i)));
  };
  // Approximate exp and division (ex2.approx, div.approx: 2 ulp), as the
  // GLU's activation: the kernel is bound by issue, and libdevice's expf
  // with an IEEE division cost about 20 instructions a score.
  auto afn = arith::FastMathFlags::afn;
  // A token's probabilities and the codes of its keys (order-preserving
  // u32, so that a slot's argmax is a reduction on integers: the group's
  // largest code, then the lowest expert holding it): 0 for an expert that
  // is not one or is taken, kNaNCode for a NaN key.
  SmallVector<SmallVector<Value>, 2> probs, codes;
  Value laneHasNaN = arith::ConstantOp::create(b, b.getBoolAttr(false));
  for (RoutedToken &token : tokens) {
    const SmallVector<Value> &score = token.score, &valid = token.valid;
    SmallVector<Value> p;
    if (op.getScoreFunc() == ScoreFunc::softmax) {
      ArrayRef<int32_t> offsets =
          ArrayRef<int32_t>(kWholeWarp).take_back(llvm::Log2_64(group.lanes));
      Value max = score[0];
      for (int64_t i = 1; i < perLane; ++i)
        max = arith::MaximumFOp::create(b, max, score[i]);
      max = butterflyReduce(b, max, /*max=*/true, offsets);
      Value sum = zeroF;
      SmallVector<Value> exps;
      for (int64_t i = 0; i < perLane; ++i) {
        Value ex = math::ExpOp::create(
            b, arith::SubFOp::create(b, score[i], max), afn);
        ex = arith::SelectOp::create(b, valid[i], ex, zeroF);
        exps.push_back(ex);
        sum = arith::AddFOp::create(b, sum, ex);
      }
      sum = butterflyReduce(b, sum, /*max=*/false, offsets);
      for (Value ex : exps)
        p.push_back(arith::DivFOp::create(b, ex, sum, afn));
    } else {
      for (Value s : score) {
        Value ex = math::ExpOp::create(b, arith::NegFOp::create(b, s), afn);
        p.push_back(arith::DivFOp::create(
            b, lb.f32(1.0), arith::AddFOp::create(b, lb.f32(1.0), ex), afn));
      }
    }
    SmallVector<Value> c;
    for (int64_t i = 0; i < perLane; ++i) {
      Value e = arith::IndexCastOp::create(b, b.getIndexType(), expertOf(i));
      // Saved for the backward (moe-place-recomputation), when asked.
      if (Value saved = op.getProbs())
        lb.ifThen(ix.both(token.exists, valid[i]), [&] {
          memref::StoreOp::create(b, p[i], saved, ValueRange{token.token, e});
        });
      Value key = p[i];
      if (bias)
        key = arith::AddFOp::create(
            b, key, lb.loadF32(bias, {ix.minu(e, experts - 1)}));
      Value isNaN = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, key, key);
      laneHasNaN = arith::OrIOp::create(b, laneHasNaN, ix.both(valid[i], isNaN));
      c.push_back(ix.select(
          valid[i],
          ix.select(isNaN, lb.i32(kNaNCode), orderPreservingCode(b, key)),
          lb.i32(0)));
    }
    probs.push_back(std::move(p));
    codes.push_back(std::move(c));
  }
  // Whether any of the warp's tokens has a NaN key: then every slot of the
  // warp's tokens takes the rule for them (the first available expert when
  // its key is NaN, or when no key is a number), which picks what the plain
  // rule picks for a token without NaN keys. Decided for the whole warp, so
  // that its lanes never part ways around their shuffles (shfl.sync wants
  // every lane of the warp at the same one), whatever quads route its rows;
  // and once, outside the slot loop, so that the plain loop's body is one
  // block the scheduler can interleave the tokens in.
  Value anyNaN = arith::CmpIOp::create(
      b, arith::CmpIPredicate::ne,
      redux(b, arith::ExtUIOp::create(b, b.getI32Type(), laneHasNaN),
            NVVM::ReduxKind::OR),
      lb.i32(0));

  // A token's state: its codes (perLane), the sum of the picked
  // probabilities, then the slots this lane keeps (slotsPerLane experts,
  // then as many probabilities).
  int64_t stateSize = perLane + 1 + 2 * slotsPerLane;
  SmallVector<Value> init;
  for (auto &c : codes) {
    llvm::append_range(init, c);
    init.push_back(zeroF);
    init.append(slotsPerLane, lb.i32(0));
    init.append(slotsPerLane, zeroF);
  }
  Value groupSize = group.i32(group.lanes);
  SmallVector<Type> stateTypes = llvm::to_vector(ValueRange(init).getTypes());
  auto slotLoop = [&](bool nanRule) {
    return lb.forLoopCarrying(
        ix.c(0), ix.c(topK), init,
        [&](Value j, ValueRange carried) -> SmallVector<Value> {
          Value j32 = arith::IndexCastOp::create(b, b.getI32Type(), j);
          // This lane keeps slot j as its slot j / G when j % G is its
          // place.
          Value keeps = arith::CmpIOp::create(
              b, arith::CmpIPredicate::eq,
              arith::RemUIOp::create(b, j32, groupSize), group.position);
          Value keptSlot = arith::DivUIOp::create(b, j32, groupSize);
          SmallVector<Value> next;
          for (size_t n = 0; n < tokens.size(); ++n) {
            ValueRange state = carried.slice(n * stateSize, stateSize);
            ValueRange code = state.take_front(perLane);
            Value sum = state[perLane];
            ValueRange slotExpert = state.slice(perLane + 1, slotsPerLane);
            ValueRange slotProb = state.take_back(slotsPerLane);
            // With a bias the key is not the probability: carry it.
            LaneBest best = laneBest(b, llvm::to_vector(code),
                                     bias ? ArrayRef<Value>(probs[n])
                                          : ArrayRef<Value>());
            Value bestExpert =
                arith::AddIOp::create(b, group.laneExpert, group.offset(best.index));
            Value groupCode = group.reduce(best.code, NVVM::ReduxKind::UMAX);
            Value holds = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                best.code, groupCode);
            Value largest = group.reduce(
                ix.select(holds, bestExpert, lb.i32(experts)),
                NVVM::ReduxKind::UMIN);
            Value winner, p;
            if (!nanRule) {
              // Every available key a number: the largest; its probability
              // the key itself without a bias.
              winner = largest;
              p = bias ? group.broadcast(best.payload,
                                         group.holder(winner).first)
                       : keyOfCode(b, groupCode);
            } else {
              // This lane's first available expert (E: none) and whether
              // its key is NaN.
              Value first = lb.i32(experts);
              Value firstNaN = arith::ConstantOp::create(b, b.getBoolAttr(false));
              for (int64_t i = perLane - 1; i >= 0; --i) {
                Value available = arith::CmpIOp::create(
                    b, arith::CmpIPredicate::ne, code[i], lb.i32(0));
                first = ix.select(available, expertOf(i), first);
                firstNaN = ix.select(
                    available,
                    arith::CmpIOp::create(b, arith::CmpIPredicate::eq, code[i],
                                          lb.i32(kNaNCode)),
                    firstNaN);
              }
              Value groupFirst = group.reduce(first, NVVM::ReduxKind::UMIN);
              Value firstIsNaN = ix.both(
                  firstNaN, arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                  first, groupFirst));
              Value nanFirst = group.reduce(
                  arith::ExtUIOp::create(b, b.getI32Type(), firstIsNaN),
                  NVVM::ReduxKind::OR);
              // The first available expert when its key is NaN or no key
              // is a number; else the largest key, lowest index on ties.
              Value useFirst = arith::OrIOp::create(
                  b,
                  arith::CmpIOp::create(b, arith::CmpIPredicate::ne, nanFirst,
                                        lb.i32(0)),
                  arith::CmpIOp::create(b, arith::CmpIPredicate::ule,
                                        groupCode, lb.i32(kNaNCode)));
              winner = ix.select(useFirst, groupFirst, largest);
              // Its probability, from the lane that keeps it.
              auto [holderPosition, valueIndex] = group.holder(winner);
              Value mine = probs[n][0];
              for (int64_t i = 1; i < perLane; ++i)
                mine = ix.select(
                    arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                          valueIndex, lb.i32(i)),
                    probs[n][i], mine);
              p = group.broadcast(mine, holderPosition);
            }
            // The winner is taken: its code 0 in the lane that keeps it.
            Value fromFirst = arith::SubIOp::create(b, winner, group.laneExpert);
            for (int64_t i = 0; i < perLane; ++i)
              next.push_back(ix.select(
                  arith::CmpIOp::create(b, arith::CmpIPredicate::eq, fromFirst,
                                        lb.i32(group.offset(i))),
                  lb.i32(0), code[i]));
            next.push_back(arith::AddFOp::create(b, sum, p));
            SmallVector<Value> isSlot;
            for (int64_t m = 0; m < slotsPerLane; ++m)
              isSlot.push_back(ix.both(
                  keeps, arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                               keptSlot, lb.i32(m))));
            for (int64_t m = 0; m < slotsPerLane; ++m)
              next.push_back(ix.select(isSlot[m], winner, slotExpert[m]));
            for (int64_t m = 0; m < slotsPerLane; ++m)
              next.push_back(ix.select(isSlot[m], p, slotProb[m]));
          }
          return next;
        });
  };
  auto rule = scf::IfOp::create(b, stateTypes, anyNaN, /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(rule.thenBlock());
    scf::YieldOp::create(b, slotLoop(/*nanRule=*/true));
    b.setInsertionPointToStart(rule.elseBlock());
    scf::YieldOp::create(b, slotLoop(/*nanRule=*/false));
  }
  ValueRange done = rule.getResults();
  // The weights scaled as the per-token body scales them.
  double scaling = op.getScaling().convertToDouble();
  Value position =
      arith::IndexCastOp::create(b, b.getIndexType(), group.position);
  for (size_t n = 0; n < tokens.size(); ++n) {
    const RoutedToken &token = tokens[n];
    ValueRange state = done.slice(n * stateSize, stateSize);
    Value factor = op.getNormalize() ? arith::DivFOp::create(
                                           b, lb.f32(scaling), state[perLane])
                                     : lb.f32(scaling);
    for (int64_t m = 0; m < slotsPerLane; ++m) {
      Value slot = ix.add(position, m * group.lanes);
      lb.ifThen(ix.both(token.exists, ix.ult(slot, topK)), [&] {
        memref::StoreOp::create(b, state[perLane + 1 + m], indices,
                                ValueRange{token.token, slot});
        memref::StoreOp::create(
            b,
            arith::MulFOp::create(b, state[perLane + 1 + slotsPerLane + m],
                                  factor),
            weights, ValueRange{token.token, slot});
      });
    }
  }
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
  int64_t experts = staticDim(op.getWGate(), 1);
  int64_t perLane = (experts + 31) / 32;
  // The whole warp shares its token: the shuffles run with every lane.
  launchWarpPerItem(lb, lb.dim(scores, 0), [&](Value t, Value lane) {
    RoutedToken token{t, arith::ConstantOp::create(b, b.getBoolAttr(true))};
    // This lane's experts; past E (E not a multiple of 32) they are
    // unavailable and add nothing.
    for (int64_t i = 0; i < perLane; ++i) {
      Value e = ix.add(lane, 32 * i);
      Value inRange = ix.ult(e, experts);
      Value s = memref::LoadOp::create(
          b, scores, ValueRange{t, ix.minu(e, experts - 1)});
      token.valid.push_back(inRange);
      token.score.push_back(
          arith::SelectOp::create(b, inRange, s, lb.f32(-INFINITY)));
    }
    Value lane32 = arith::IndexCastOp::create(b, b.getI32Type(), lane);
    LaneGroup warp{b, 32, lane32, lb.i32(0), lane32};
    routeTokens(op, lb, warp, token);
  });
}

bool mlir::moek::canRouteInScoresEpilogue(RouteOp op, int64_t columns) {
  int64_t experts = staticDim(op.getWGate(), 1);
  return canRouteByWarp(op) && experts <= columns &&
         op.getTopK() <= kMaxEpilogueSlots;
}

void mlir::moek::emitRouteFromAccumulators(RouteOp op, LoopBuilder &lb,
                                           const FragmentTile &tile,
                                           ArrayRef<Value> acc) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  int64_t experts = staticDim(op.getWGate(), 1);
  // Lane q of a quad keeps columns 8 nj + 2 q + p of rows lane / 4 and
  // lane / 4 + 8 of each 16-row fragment mi: value 2 nj + p of a row.
  Value quadPosition = ix.rem(tile.lane, 4);
  Value laneRow = ix.div(tile.lane, 4);
  Value position = arith::IndexCastOp::create(b, b.getI32Type(), quadPosition);
  LaneGroup quad{
      b, 4, position,
      arith::IndexCastOp::create(b, b.getI32Type(), ix.mul(laneRow, 4)),
      arith::MulIOp::create(b, position, lb.i32(2))};
  SmallVector<RoutedToken, 2> tokens;
  for (int64_t mi = 0; mi < tile.fragsM; ++mi)
    for (int64_t h = 0; h < 2; ++h) {
      Value row = ix.add(ix.add(tile.warpRow, laneRow), 16 * mi + 8 * h);
      RoutedToken token{
          ix.sub(ix.add(tile.rowBegin, row), tile.base),
          arith::CmpIOp::create(b, arith::CmpIPredicate::slt, row, tile.rows)};
      for (int64_t nj = 0; nj < tile.fragsN; ++nj)
        for (int64_t p = 0; p < 2; ++p) {
          Value e = ix.add(ix.add(ix.mul(quadPosition, 2), 8 * nj), p);
          Value inRange = ix.ult(e, experts);
          token.valid.push_back(inRange);
          token.score.push_back(arith::SelectOp::create(
              b, inRange, acc[(mi * tile.fragsN + nj) * 4 + 2 * h + p],
              lb.f32(-INFINITY)));
        }
      tokens.push_back(std::move(token));
    }
  routeTokens(op, lb, quad, tokens);
}
