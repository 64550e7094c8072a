//===- MoekLowerToLoops.cpp - moek kernels to loops over buffers ----------===//
//
// The CPU lowering of the kernel dialect: every moek op becomes scf.for
// loops over its buffers with arith/math arithmetic, accumulating in f32
// whatever the storage type. LLVM vectorizes the innermost loops, which run
// over contiguous rows.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeShapeRules.h"
#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEKLOWERTOLOOPSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

namespace {

/// Scratch memory of a static shape; callers allocate it outside loops.
Value scratch(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape, Type element) {
  return memref::AllocaOp::create(b, MemRefType::get(shape, element));
}

int64_t staticDim(Value buffer, int64_t dim) {
  return cast<MemRefType>(buffer.getType()).getDimSize(dim);
}

Value asIndex(ImplicitLocOpBuilder &b, Value i32) {
  return arith::IndexCastOp::create(b, b.getIndexType(), i32);
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
// Routing
//===----------------------------------------------------------------------===//

void lowerRoute(RouteOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value x = op.getX(), wGate = op.getWGate(), bias = op.getBias();
  Value weights = op.getWeights(), indices = op.getIndices();
  int64_t experts = staticDim(wGate, 1), topK = op.getTopK();
  int64_t hidden = staticDim(wGate, 0);
  Value zero = lb.index(0);
  Value tokens = lb.dim(x, 0);
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
    if (op.getNGroup().has_value()) {
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

}

/// Emits C = max(1, ceil(cf*T*k/E)) as an index, the rule of
/// expertCapacity; the dropless router gets C = T*k, which never binds.
Value emitCapacity(LoopBuilder &lb, double cf, Value tokens, int64_t topK,
                   int64_t experts) {
  ImplicitLocOpBuilder &b = lb.builder();
  if (cf <= 0.0)
    return arith::MulIOp::create(b, tokens, lb.index(topK));
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
  Value capacity = arith::IndexCastOp::create(
      b, b.getIndexType(), arith::FPToSIOp::create(b, b.getI64Type(), rounded));
  return arith::MaxSIOp::create(b, capacity, lb.index(1));
}

void lowerRankAssignments(RankAssignmentsOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value indices = op.getIndices(), ranks = op.getRanks(),
        counts = op.getCounts();
  int64_t topK = staticDim(indices, 1), experts = staticDim(counts, 0);
  Value zero = lb.index(0);
  Value tokens = lb.dim(indices, 0);
  Value capacity = arith::IndexCastOp::create(
      b, b.getI32Type(),
      emitCapacity(lb, op.getCapacityFactor().convertToDouble(), tokens, topK,
                   experts));
  lb.fill(counts, lb.i32(0));
  // In order of token, then slot: the rank is the count so far; beyond the
  // capacity the assignment is dropped (-1) and not counted.
  lb.forLoop(zero, tokens, [&](Value t) {
    lb.forLoop(zero, lb.index(topK), [&](Value j) {
      Value e = asIndex(b, memref::LoadOp::create(b, indices, ValueRange{t, j}));
      Value rank = memref::LoadOp::create(b, counts, ValueRange{e});
      Value kept =
          arith::CmpIOp::create(b, arith::CmpIPredicate::slt, rank, capacity);
      memref::StoreOp::create(b, arith::SelectOp::create(b, kept, rank, lb.i32(-1)),
                              ranks, ValueRange{t, j});
      Value counted = arith::AddIOp::create(b, rank, lb.i32(1));
      memref::StoreOp::create(b, arith::SelectOp::create(b, kept, counted, rank),
                              counts, ValueRange{e});
    });
  });
}

void lowerExclusiveScan(ExclusiveScanOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value counts = op.getCounts(), offsets = op.getOffsets();
  memref::StoreOp::create(b, lb.i32(0), offsets, ValueRange{lb.index(0)});
  lb.forLoop(lb.index(0), lb.dim(counts, 0), [&](Value e) {
    Value next = arith::AddIOp::create(b, e, lb.index(1));
    Value sum = arith::AddIOp::create(
        b, memref::LoadOp::create(b, offsets, ValueRange{e}),
        memref::LoadOp::create(b, counts, ValueRange{e}));
    memref::StoreOp::create(b, sum, offsets, ValueRange{next});
  });
}

/// Calls `body(t, j, row, kept)` for every assignment, where row is the
/// assignment's grouped row (meaningful when kept).
void forEachAssignment(LoopBuilder &lb, Value indices, Value ranks,
                       Value offsets,
                       function_ref<void(Value, Value, Value, Value)> body) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value zero = lb.index(0);
  lb.forLoop(zero, lb.dim(indices, 0), [&](Value t) {
    lb.forLoop(zero, lb.dim(indices, 1), [&](Value j) {
      Value rank = memref::LoadOp::create(b, ranks, ValueRange{t, j});
      Value e = asIndex(b, memref::LoadOp::create(b, indices, ValueRange{t, j}));
      Value start = memref::LoadOp::create(b, offsets, ValueRange{e});
      Value kept =
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, rank, lb.i32(0));
      body(t, j, arith::AddIOp::create(b, start, rank), kept);
    });
  });
}

void lowerAssignmentRows(AssignmentRowsOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  forEachAssignment(lb, op.getIndices(), op.getRanks(), op.getOffsets(),
                    [&](Value t, Value j, Value row, Value kept) {
                      memref::StoreOp::create(
                          b, arith::SelectOp::create(b, kept, row, lb.i32(-1)),
                          op.getRows(), ValueRange{t, j});
                    });
}

void lowerRowAssignments(RowAssignmentsOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value owners = op.getOwners();
  Value topK = lb.index(staticDim(op.getIndices(), 1));
  lb.fill(owners, lb.i32(-1));
  forEachAssignment(lb, op.getIndices(), op.getRanks(), op.getOffsets(),
                    [&](Value t, Value j, Value row, Value kept) {
                      lb.ifThen(kept, [&] {
                        Value flat = arith::AddIOp::create(
                            b, arith::MulIOp::create(b, t, topK), j);
                        memref::StoreOp::create(
                            b, arith::IndexCastOp::create(b, b.getI32Type(), flat),
                            owners, ValueRange{asIndex(b, row)});
                      });
                    });
}

//===----------------------------------------------------------------------===//
// Dispatch, experts, combine
//===----------------------------------------------------------------------===//

void lowerGatherRows(GatherRowsOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value x = op.getX(), rows = op.getRows(), out = op.getOut();
  Value zero = lb.index(0);
  // Rows no kept assignment owns stay zero.
  lb.fill(out, lb.zeroOf(cast<MemRefType>(out.getType()).getElementType()));
  Value hidden = lb.dim(x, 1);
  lb.forLoop(zero, lb.dim(rows, 0), [&](Value t) {
    lb.forLoop(zero, lb.dim(rows, 1), [&](Value j) {
      Value row = memref::LoadOp::create(b, rows, ValueRange{t, j});
      Value kept =
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row, lb.i32(0));
      lb.ifThen(kept, [&] {
        Value r = asIndex(b, row);
        lb.forLoop(zero, hidden, [&](Value h) {
          memref::StoreOp::create(b, memref::LoadOp::create(b, x, ValueRange{t, h}),
                                  out, ValueRange{r, h});
        });
      });
    });
  });
}

Value activate(LoopBuilder &lb, Value gate, bool gelu) {
  return gelu ? geluTanh(lb, gate) : silu(lb, gate);
}

void lowerGroupedMatmul(GroupedMatmulOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value a = op.getA(), w = op.getB(), offsets = op.getOffsets(), c = op.getC();
  Value owners = op.getOwners();
  int64_t experts = staticDim(w, 0), depth = staticDim(w, 1);
  int64_t width = staticDim(w, 2);
  Epilogue epilogue = op.getEpilogue();
  bool glu = epilogue == Epilogue::silu_glu || epilogue == Epilogue::gelu_glu;
  Value topK = lb.index(op.getTopK());
  Value zero = lb.index(0);
  Value first = op.getFirstExpert() ? op.getFirstExpert() : zero;
  Value last = op.getLastExpert() ? op.getLastExpert() : lb.index(experts);
  Value acc = scratch(b, {width}, b.getF32Type());
  Value K = lb.index(depth), N = lb.index(width), half = lb.index(width / 2);
  auto rowOf = [&](Value e) {
    return asIndex(b, memref::LoadOp::create(b, offsets, ValueRange{e}));
  };
  Value base = rowOf(first);

  lb.forLoop(first, last, [&](Value e) {
    Value begin = rowOf(e);
    Value end = rowOf(arith::AddIOp::create(b, e, lb.index(1)));
    lb.forLoop(begin, end, [&](Value r) {
      Value local = arith::SubIOp::create(b, r, base);
      Value owner =
          owners ? asIndex(b, memref::LoadOp::create(b, owners, ValueRange{r}))
                 : Value();
      // The gather prologue: the token itself, not a dispatched copy.
      Value src = op.getGather() ? arith::DivUIOp::create(b, owner, topK) : local;
      lb.fill(acc, lb.f32(0.0));
      lb.forLoop(zero, K, [&](Value k) {
        Value av = lb.loadF32(a, {src, k});
        lb.forLoop(zero, N, [&](Value n) {
          Value prev = memref::LoadOp::create(b, acc, ValueRange{n});
          Value prod = arith::MulFOp::create(b, av, lb.loadF32(w, {e, k, n}));
          memref::StoreOp::create(b, arith::AddFOp::create(b, prev, prod), acc,
                                  ValueRange{n});
        });
      });
      if (glu) {
        bool gelu = epilogue == Epilogue::gelu_glu;
        lb.forLoop(zero, half, [&](Value f) {
          Value g = memref::LoadOp::create(b, acc, ValueRange{f});
          Value up = memref::LoadOp::create(
              b, acc, ValueRange{arith::AddIOp::create(b, f, half)});
          lb.storeF32(arith::MulFOp::create(b, activate(lb, g, gelu), up), c,
                      {local, f});
        });
      } else if (epilogue == Epilogue::scatter_add) {
        // The scatter epilogue: weighted accumulation into token order.
        Value token = arith::DivUIOp::create(b, owner, topK);
        Value slot = arith::RemUIOp::create(b, owner, topK);
        Value weight =
            lb.loadF32(op.getWeights(), {token, slot});
        lb.forLoop(zero, N, [&](Value n) {
          Value prev = lb.loadF32(c, {token, n});
          Value term = arith::MulFOp::create(
              b, weight, memref::LoadOp::create(b, acc, ValueRange{n}));
          lb.storeF32(arith::AddFOp::create(b, prev, term), c, {token, n});
        });
      } else {
        lb.forLoop(zero, N, [&](Value n) {
          lb.storeF32(memref::LoadOp::create(b, acc, ValueRange{n}), c,
                      {local, n});
        });
      }
    });
  });
}

void lowerGlu(GluOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value h = op.getH(), out = op.getOut();
  bool gelu = op.getActivation() == moe::Activation::gelu_glu;
  Value zero = lb.index(0);
  Value half = lb.dim(out, 1);
  lb.forLoop(zero, lb.dim(h, 0), [&](Value r) {
    lb.forLoop(zero, half, [&](Value f) {
      Value g = lb.loadF32(h, {r, f});
      Value up = lb.loadF32(h, {r, arith::AddIOp::create(b, f, half)});
      lb.storeF32(arith::MulFOp::create(b, activate(lb, g, gelu), up), out,
                  {r, f});
    });
  });
}

void lowerCombineRows(CombineRowsOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value expertOut = op.getExpertOut(), weights = op.getWeights();
  Value rows = op.getRows(), y = op.getY();
  int64_t hidden = staticDim(y, 1);
  Value zero = lb.index(0), H = lb.index(hidden);
  Value acc = scratch(b, {hidden}, b.getF32Type());
  lb.forLoop(zero, lb.dim(rows, 0), [&](Value t) {
    lb.fill(acc, lb.f32(0.0));
    lb.forLoop(zero, lb.dim(rows, 1), [&](Value j) {
      Value row = memref::LoadOp::create(b, rows, ValueRange{t, j});
      Value kept =
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row, lb.i32(0));
      lb.ifThen(kept, [&] {
        Value r = asIndex(b, row);
        Value w = lb.loadF32(weights, {t, j});
        lb.forLoop(zero, H, [&](Value h) {
          Value prev = memref::LoadOp::create(b, acc, ValueRange{h});
          Value prod = arith::MulFOp::create(b, w, lb.loadF32(expertOut, {r, h}));
          memref::StoreOp::create(b, arith::AddFOp::create(b, prev, prod), acc,
                                  ValueRange{h});
        });
      });
    });
    lb.forLoop(zero, H, [&](Value h) {
      lb.storeF32(memref::LoadOp::create(b, acc, ValueRange{h}), y, {t, h});
    });
  });
}

struct MoekLowerToLoopsPass
    : public moe::impl::MoekLowerToLoopsPassBase<MoekLowerToLoopsPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    SmallVector<Operation *> kernels;
    getOperation()->walk([&](Operation *op) {
      if (isa<MoekDialect>(op->getDialect()))
        kernels.push_back(op);
    });
    for (Operation *op : kernels) {
      ImplicitLocOpBuilder b(op->getLoc(), rewriter);
      b.setInsertionPoint(op);
      TypeSwitch<Operation *>(op)
          .Case([&](RouteOp o) { lowerRoute(o, b); })
          .Case([&](RankAssignmentsOp o) { lowerRankAssignments(o, b); })
          .Case([&](ExclusiveScanOp o) { lowerExclusiveScan(o, b); })
          .Case([&](AssignmentRowsOp o) { lowerAssignmentRows(o, b); })
          .Case([&](RowAssignmentsOp o) { lowerRowAssignments(o, b); })
          .Case([&](GatherRowsOp o) { lowerGatherRows(o, b); })
          .Case([&](GroupedMatmulOp o) { lowerGroupedMatmul(o, b); })
          .Case([&](GluOp o) { lowerGlu(o, b); })
          .Case([&](CombineRowsOp o) { lowerCombineRows(o, b); });
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
