//===- CollectivesGPU.cpp - Expert-parallel moek ops on the GPU -----------===//

#include "lib/Conversion/MoekToGPU/CollectivesGPU.h"
#include "lib/Conversion/MoekToLoops/CollectiveCalls.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moek;

bool moek::isCollectiveOp(Operation *op) {
  return isa<ExchangeCountsOp, AllToAllOp, AllToAllStartOp, AllToAllWaitOp,
             AllReduceOp, ReceivedAssignmentsOp, SlotsToRowsOp,
             RowsToSlotsOp>(op);
}

/// A thread per segment g: its rows start after those of segments < g (a
/// sum over at most G counts, which is small: G = E) and get g's local
/// expert and weight 1. Then a thread per row marks those past all the
/// segments (a buffer sized by a bound, not by the counts) as no expert's.
static void lowerReceivedAssignmentsToGPU(ReceivedAssignmentsOp op,
                                          moe::LoopBuilder &lb,
                                          LaunchPerItem launch) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value counts = op.getCounts();
  int64_t segments = cast<MemRefType>(counts.getType()).getDimSize(0);
  int64_t local = segments / op.getRanks();
  Value zero = lb.index(0);
  auto countAt = [&](Value h) {
    return arith::IndexCastOp::create(b, b.getIndexType(),
                                      memref::LoadOp::create(b, counts, h));
  };
  auto rowsBefore = [&](Value g) {
    return lb
        .forLoopCarrying(zero, g, ValueRange{zero},
                         [&](Value h, ValueRange sum) -> SmallVector<Value> {
                           return {arith::AddIOp::create(b, sum[0],
                                                         countAt(h))};
                         })
        .front();
  };
  launch(lb.index(segments), [&](Value g) {
    Value first = rowsBefore(g);
    Value end = arith::AddIOp::create(b, first, countAt(g));
    Value expert = arith::IndexCastOp::create(
        b, b.getI32Type(), arith::RemUIOp::create(b, g, lb.index(local)));
    Value one = lb.f32(1.0);
    lb.forLoop(first, end, [&](Value n) {
      memref::StoreOp::create(b, expert, op.getIndices(), ValueRange{n, zero});
      memref::StoreOp::create(b, one, op.getWeights(), ValueRange{n, zero});
    });
  });
  launch(lb.dim(op.getIndices(), 0), [&](Value n) {
    Value past = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, n,
                                       rowsBefore(lb.index(segments)));
    lb.ifThen(past, [&] {
      memref::StoreOp::create(b, lb.i32(local), op.getIndices(),
                              ValueRange{n, zero});
      memref::StoreOp::create(b, lb.f32(0.0), op.getWeights(),
                              ValueRange{n, zero});
    });
  });
}

/// Zeroes the [N, 1] or [T, k] `buffer`, a thread per element.
static void zeroFill(moe::LoopBuilder &lb, LaunchPerItem launch, Value buffer) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value rows = lb.dim(buffer, 0), cols = lb.dim(buffer, 1);
  launch(arith::MulIOp::create(b, rows, cols), [&](Value i) {
    memref::StoreOp::create(b, lb.f32(0.0), buffer,
                            ValueRange{arith::DivUIOp::create(b, i, cols),
                                       arith::RemUIOp::create(b, i, cols)});
  });
}

/// A thread per assignment slot (t, j) of `rows` [T, k] that was kept
/// (row >= 0): `body(t, j, row)`.
static void launchPerKeptSlot(moe::LoopBuilder &lb, LaunchPerItem launch,
                              Value rows,
                              function_ref<void(Value, Value, Value)> body) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value tokens = lb.dim(rows, 0), k = lb.dim(rows, 1);
  launch(arith::MulIOp::create(b, tokens, k), [&](Value i) {
    Value t = arith::DivUIOp::create(b, i, k);
    Value j = arith::RemUIOp::create(b, i, k);
    Value row = memref::LoadOp::create(b, rows, ValueRange{t, j});
    Value kept =
        arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row, lb.i32(0));
    lb.ifThen(kept, [&] {
      body(t, j, arith::IndexCastOp::create(b, b.getIndexType(), row));
    });
  });
}

void moek::lowerCollectiveToGPU(Operation *op, moe::LoopBuilder &lb,
                                LaunchPerItem launch) {
  ImplicitLocOpBuilder &b = lb.builder();
  constexpr CollectiveABI cuda = CollectiveABI::Cuda;
  TypeSwitch<Operation *>(op)
      .Case([&](ExchangeCountsOp o) { lowerExchangeCounts(o, b, cuda); })
      .Case([&](AllToAllOp o) { lowerAllToAll(o, b, cuda); })
      .Case([&](AllToAllStartOp o) { lowerAllToAllStart(o, b, cuda); })
      .Case([&](AllToAllWaitOp o) { lowerAllToAllWait(o, b, cuda); })
      .Case([&](AllReduceOp o) { lowerAllReduce(o, b, cuda); })
      .Case([&](ReceivedAssignmentsOp o) {
        lowerReceivedAssignmentsToGPU(o, lb, launch);
      })
      .Case([&](SlotsToRowsOp o) {
        zeroFill(lb, launch, o.getOut());
        launchPerKeptSlot(lb, launch, o.getRows(),
                          [&](Value t, Value j, Value row) {
                            Value v = memref::LoadOp::create(
                                b, o.getValues(), ValueRange{t, j});
                            memref::StoreOp::create(
                                b, v, o.getOut(), ValueRange{row, lb.index(0)});
                          });
      })
      .Case([&](RowsToSlotsOp o) {
        zeroFill(lb, launch, o.getValues());
        launchPerKeptSlot(lb, launch, o.getRows(),
                          [&](Value t, Value j, Value row) {
                            Value v = memref::LoadOp::create(
                                b, o.getIn(), ValueRange{row, lb.index(0)});
                            memref::StoreOp::create(b, v, o.getValues(),
                                                    ValueRange{t, j});
                          });
      });
}
