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
#include "lib/Conversion/MoekToLoops/BackwardLoops.h"
#include "lib/Conversion/MoekToLoops/CollectiveCalls.h"
#include "lib/Conversion/MoekToLoops/KernelBodies.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
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

//===----------------------------------------------------------------------===//
// Routing
//===----------------------------------------------------------------------===//

void lowerRoute(RouteOp op, ImplicitLocOpBuilder &b,
                ImplicitLocOpBuilder &hoisted) {
  LoopBuilder lb(b);
  RouteScratch s = makeRouteScratch(hoisted, op, ScratchPlace::Heap);
  lb.forLoop(lb.index(0), lb.dim(op.getX(), 0),
             [&](Value t) { emitRouteToken(lb, op, s, t); });
}

/// Runs `body(t, j)` for every assignment, in order of token, then slot.
void forEachAssignment(LoopBuilder &lb, Value indices,
                       function_ref<void(Value, Value)> body) {
  Value zero = lb.index(0);
  lb.forLoop(zero, lb.dim(indices, 0), [&](Value t) {
    lb.forLoop(zero, lb.dim(indices, 1), [&](Value j) { body(t, j); });
  });
}

void emitAssignmentRows(LoopBuilder &lb, const RankedAssignments &plan,
                        Value rows) {
  forEachAssignment(lb, plan.indices, [&](Value t, Value j) {
    emitAssignmentRow(lb, plan, rows, t, j);
  });
}

void emitRowAssignments(LoopBuilder &lb, const RankedAssignments &plan,
                        Value owners) {
  lb.fill(owners, lb.i32(-1));
  forEachAssignment(lb, plan.indices, [&](Value t, Value j) {
    emitRowOwner(lb, plan, owners, t, j);
  });
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
  // capacity the assignment is dropped (-1) and not counted. An index
  // outside [0, E) is no expert's: rank -1, nothing counted.
  lb.forLoop(zero, tokens, [&](Value t) {
    lb.forLoop(zero, lb.index(topK), [&](Value j) {
      Value index = memref::LoadOp::create(b, indices, ValueRange{t, j});
      memref::StoreOp::create(b, lb.i32(-1), ranks, ValueRange{t, j});
      Value isExpert = arith::CmpIOp::create(b, arith::CmpIPredicate::ult,
                                             index, lb.i32(experts));
      lb.ifThen(isExpert, [&] {
        Value e = asIndex(b, index);
        Value rank = memref::LoadOp::create(b, counts, ValueRange{e});
        Value kept = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, rank,
                                           capacity);
        memref::StoreOp::create(
            b, arith::SelectOp::create(b, kept, rank, lb.i32(-1)), ranks,
            ValueRange{t, j});
        Value counted = arith::AddIOp::create(b, rank, lb.i32(1));
        memref::StoreOp::create(
            b, arith::SelectOp::create(b, kept, counted, rank), counts,
            ValueRange{e});
      });
    });
  });
  // The rest of the plan, when the op makes it.
  RankedAssignments plan{indices, ranks, op.getOffsets()};
  if (!plan.offsets)
    return;
  emitExclusiveScan(lb, counts, plan.offsets);
  if (Value rows = op.getRows())
    emitAssignmentRows(lb, plan, rows);
  if (Value owners = op.getOwners())
    emitRowAssignments(lb, plan, owners);
}

//===----------------------------------------------------------------------===//
// Dispatch, experts, combine
//===----------------------------------------------------------------------===//

/// Runs `body(r)` if assignment (t, j) was kept, r being its grouped row
/// rows[t, j] (-1 for a dropped assignment).
void ifKept(LoopBuilder &lb, Value rows, Value t, Value j,
            function_ref<void(Value)> body) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value row = memref::LoadOp::create(b, rows, ValueRange{t, j});
  Value kept =
      arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row, lb.i32(0));
  lb.ifThen(kept, [&] { body(asIndex(b, row)); });
}

void lowerGatherRows(GatherRowsOp op, ImplicitLocOpBuilder &b) {
  LoopBuilder lb(b);
  Value x = op.getX(), rows = op.getRows(), out = op.getOut();
  Value zero = lb.index(0);
  // Rows no kept assignment owns stay zero.
  lb.fill(out, lb.zeroOf(cast<MemRefType>(out.getType()).getElementType()));
  Value hidden = lb.dim(x, 1);
  lb.forLoop(zero, lb.dim(rows, 0), [&](Value t) {
    lb.forLoop(zero, lb.dim(rows, 1), [&](Value j) {
      ifKept(lb, rows, t, j, [&](Value r) {
        lb.forLoop(zero, hidden, [&](Value h) {
          memref::StoreOp::create(b, memref::LoadOp::create(b, x, ValueRange{t, h}),
                                  out, ValueRange{r, h});
        });
      });
    });
  });
}

void lowerGroupedMatmul(GroupedMatmulOp op, ImplicitLocOpBuilder &b,
                        ImplicitLocOpBuilder &hoisted) {
  LoopBuilder lb(b);
  Value a = op.getA(), w = op.getB(), offsets = op.getOffsets(), c = op.getC();
  Value owners = op.getOwners();
  bool transposeB = op.getTransposeB();
  int64_t experts = staticDim(w, 0);
  int64_t depth = staticDim(w, transposeB ? 2 : 1);
  int64_t width = staticDim(w, transposeB ? 1 : 2);
  Epilogue epilogue = op.getEpilogue();
  bool glu = isGlu(epilogue);
  Value topK = lb.index(op.getTopK());
  Value zero = lb.index(0);
  Value first = op.getFirstExpert() ? op.getFirstExpert() : zero;
  Value last = op.getLastExpert() ? op.getLastExpert() : lb.index(experts);
  Value acc = scratch(hoisted, {width}, b.getF32Type(), ScratchPlace::Heap);
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
      if (transposeB) {
        // b[e] is [N, K]: one dot product along contiguous K per column,
        // reduced with reassoc so that LLVM vectorizes it (the sum's order
        // changes; it stays an f32 sum).
        auto flags = arith::FastMathFlagsAttr::get(
            b.getContext(),
            arith::FastMathFlags::reassoc | arith::FastMathFlags::contract);
        lb.forLoop(zero, N, [&](Value n) {
          Value sum = lb.forLoopCarrying(
              zero, K, ValueRange{lb.f32(0.0)},
              [&](Value k, ValueRange carried) -> SmallVector<Value> {
                Value prod = arith::MulFOp::create(
                    b, lb.loadF32(a, {src, k}), lb.loadF32(w, {e, n, k}),
                    flags);
                return {arith::AddFOp::create(b, carried[0], prod, flags)};
              })[0];
          memref::StoreOp::create(b, sum, acc, ValueRange{n});
        });
      } else {
        lb.fill(acc, lb.f32(0.0));
        lb.forLoop(zero, K, [&](Value k) {
          Value av = lb.loadF32(a, {src, k});
          lb.forLoop(zero, N, [&](Value n) {
            Value prev = memref::LoadOp::create(b, acc, ValueRange{n});
            Value prod =
                arith::MulFOp::create(b, av, lb.loadF32(w, {e, k, n}));
            memref::StoreOp::create(b, arith::AddFOp::create(b, prev, prod),
                                    acc, ValueRange{n});
          });
        });
      }
      if (glu) {
        bool gelu = epilogue == Epilogue::gelu_glu;
        Value preActivation = op.getPreActivation();
        lb.forLoop(zero, half, [&](Value f) {
          Value g = memref::LoadOp::create(b, acc, ValueRange{f});
          Value upColumn = arith::AddIOp::create(b, f, half);
          Value up = memref::LoadOp::create(b, acc, ValueRange{upColumn});
          lb.storeF32(arith::MulFOp::create(b, activate(lb, g, gelu), up), c,
                      {local, f});
          if (preActivation) {
            lb.storeF32(g, preActivation, {local, f});
            lb.storeF32(up, preActivation, {local, upColumn});
          }
        });
      } else if (epilogue == Epilogue::scatter_add ||
                 epilogue == Epilogue::scatter_store) {
        // The scatter epilogues: weighted rows into token order, added to
        // the f32 accumulator, or (top_k = 1: one row a token) stored.
        bool add = epilogue == Epilogue::scatter_add;
        Value token = arith::DivUIOp::create(b, owner, topK);
        Value slot = arith::RemUIOp::create(b, owner, topK);
        // Without weights the weight is 1 (dh already carries it).
        Value weight = op.getWeights()
                           ? lb.loadF32(op.getWeights(), {token, slot})
                           : Value();
        lb.forLoop(zero, N, [&](Value n) {
          Value term = memref::LoadOp::create(b, acc, ValueRange{n});
          if (weight)
            term = arith::MulFOp::create(b, weight, term);
          if (add)
            term = arith::AddFOp::create(b, lb.loadF32(c, {token, n}), term);
          lb.storeF32(term, c, {token, n});
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

void lowerCombineRows(CombineRowsOp op, ImplicitLocOpBuilder &b,
                      ImplicitLocOpBuilder &hoisted) {
  LoopBuilder lb(b);
  Value expertOut = op.getExpertOut(), weights = op.getWeights();
  Value rows = op.getRows(), y = op.getY();
  int64_t hidden = staticDim(y, 1);
  Value zero = lb.index(0), H = lb.index(hidden);
  Value acc = scratch(hoisted, {hidden}, b.getF32Type(), ScratchPlace::Heap);
  lb.forLoop(zero, lb.dim(rows, 0), [&](Value t) {
    lb.fill(acc, lb.f32(0.0));
    lb.forLoop(zero, lb.dim(rows, 1), [&](Value j) {
      ifKept(lb, rows, t, j, [&](Value r) {
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

/// Frees the heap scratch the kernels allocated at the entry of `func`
/// before each of its returns.
void freeHeapScratch(func::FuncOp func, IRRewriter &rewriter) {
  // Declarations (the runtime's collectives) have no body and no scratch.
  if (func.isExternal())
    return;
  SmallVector<memref::AllocOp> allocs;
  for (auto alloc : func.getBody().front().getOps<memref::AllocOp>())
    if (alloc->hasAttr(kHeapScratchAttr))
      allocs.push_back(alloc);
  if (allocs.empty())
    return;
  func.walk([&](func::ReturnOp ret) {
    rewriter.setInsertionPoint(ret);
    for (memref::AllocOp alloc : allocs)
      memref::DeallocOp::create(rewriter, ret.getLoc(), alloc);
  });
  for (memref::AllocOp alloc : allocs)
    alloc->removeAttr(kHeapScratchAttr);
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
      // Scratch goes to the function's entry: allocated once, however deep
      // in loops the kernel sits.
      auto func = op->getParentOfType<func::FuncOp>();
      if (!func) {
        op->emitOpError() << "must be inside a func.func to be lowered to "
                             "loops (its scratch goes to the function entry)";
        return signalPassFailure();
      }
      ImplicitLocOpBuilder hoisted(op->getLoc(), &getContext());
      hoisted.setInsertionPointToStart(&func.getBody().front());
      bool lowered =
          TypeSwitch<Operation *, bool>(op)
              .Case([&](RouteOp o) { return lowerRoute(o, b, hoisted), true; })
              .Case([&](RankAssignmentsOp o) {
                return lowerRankAssignments(o, b), true;
              })
              .Case([&](ExclusiveScanOp o) {
                LoopBuilder lb(b);
                return emitExclusiveScan(lb, o.getCounts(), o.getOffsets()),
                       true;
              })
              .Case([&](AssignmentRowsOp o) {
                LoopBuilder lb(b);
                return emitAssignmentRows(lb, rankedAssignmentsOf(o),
                                          o.getRows()),
                       true;
              })
              .Case([&](RowAssignmentsOp o) {
                LoopBuilder lb(b);
                return emitRowAssignments(lb, rankedAssignmentsOf(o),
                                          o.getOwners()),
                       true;
              })
              .Case([&](GatherRowsOp o) { return lowerGatherRows(o, b), true; })
              .Case([&](GroupedMatmulOp o) {
                return lowerGroupedMatmul(o, b, hoisted), true;
              })
              .Case([&](GluOp o) { return lowerGlu(o, b), true; })
              .Case([&](CombineRowsOp o) {
                return lowerCombineRows(o, b, hoisted), true;
              })
              .Case([&](moek::ExpertLoadsOp o) {
                return lowerExpertLoads(o, b), true;
              })
              .Case([&](GroupedGluBackwardOp o) {
                return lowerGroupedGluBackward(o, b), true;
              })
              .Case([&](GroupedWeightGradOp o) {
                return lowerGroupedWeightGrad(o, b, hoisted), true;
              })
              .Case([&](RouteBackwardOp o) {
                return lowerRouteBackward(o, b, hoisted), true;
              })
              .Case([&](moek::AllReduceOp o) {
                return lowerAllReduce(o, b), true;
              })
              .Case([&](ExchangeCountsOp o) {
                return lowerExchangeCounts(o, b), true;
              })
              .Case(
                  [&](moek::AllToAllOp o) { return lowerAllToAll(o, b), true; })
              .Case([&](AllToAllStartOp o) {
                return lowerAllToAllStart(o, b), true;
              })
              .Case([&](AllToAllWaitOp o) {
                return lowerAllToAllWait(o, b), true;
              })
              .Case([&](ReceivedAssignmentsOp o) {
                return lowerReceivedAssignments(o, b), true;
              })
              .Case([&](moek::SlotsToRowsOp o) {
                return lowerSlotsToRows(o, b), true;
              })
              .Case([&](moek::RowsToSlotsOp o) {
                return lowerRowsToSlots(o, b), true;
              })
              .Default([](Operation *) { return false; });
      // A kernel nobody lowers must fail the pass, never be dropped.
      if (!lowered) {
        op->emitOpError() << "has no lowering to loops (moek-lower-to-loops "
                             "handles route, rank_assignments, "
                             "exclusive_scan, assignment_rows, "
                             "row_assignments, gather_rows, grouped_matmul, "
                             "glu, combine_rows, the backward kernels, "
                             "exchange_counts, all_reduce, all_to_all, "
                             "all_to_all_start, all_to_all_wait, "
                             "received_assignments, slots_to_rows and "
                             "rows_to_slots)";
        return signalPassFailure();
      }
      rewriter.eraseOp(op);
    }
    getOperation()->walk(
        [&](func::FuncOp func) { freeHeapScratch(func, rewriter); });
  }
};

} // namespace
