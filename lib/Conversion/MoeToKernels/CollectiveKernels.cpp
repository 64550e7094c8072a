//===- CollectiveKernels.cpp - Expert-parallel moe ops to moek ------------===//

#include "lib/Conversion/MoeToKernels/CollectiveKernels.h"

#include "dialects/moek/IR/MoekDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::moe;

/// sum(counts) as an index: the rows the counts describe. O(G) on the host,
/// next to the O(rows * H) that move.
static Value sumOfCounts(ImplicitLocOpBuilder &b, Value counts) {
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value one = arith::ConstantIndexOp::create(b, 1);
  Value segments = extentOf(b, counts, 0);
  auto loop = scf::ForOp::create(b, zero, segments, one, ValueRange{zero});
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value count =
        memref::LoadOp::create(b, counts, ValueRange{loop.getInductionVar()});
    Value rows = arith::IndexCastOp::create(b, b.getIndexType(), count);
    scf::YieldOp::create(
        b, ValueRange{arith::AddIOp::create(b, loop.getRegionIterArgs()[0],
                                            rows)});
  }
  return loop.getResult(0);
}

/// The rows an all-to-all can receive without the host reading its counts:
/// R times the rows each rank sends, since the ranks have equal token
/// counts (ARCHITECTURE.md: rank r holds rows [r*T, (r+1)*T)).
static Value receivedBound(ImplicitLocOpBuilder &b, AllToAllOp op) {
  return arith::MulIOp::create(
      b, extentOf(b, readBuffer(b, op.getRows()), 0),
      arith::ConstantIndexOp::create(b, op.getRanks()));
}

/// The first op of `block` that uses `value` (directly or in a region),
/// or the block's terminator.
static Operation *firstUserInBlock(Value value, Block *block) {
  Operation *first = block->getTerminator();
  for (Operation *user : value.getUsers())
    if (Operation *ancestor = block->findAncestorOpInBlock(*user))
      if (ancestor->isBeforeInBlock(first))
        first = ancestor;
  return first;
}

void moe::lowerAllToAllToKernels(AllToAllOp op, RewriterBase &rewriter,
                                 bool deviceSplitSizes) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  auto countsType = cast<RankedTensorType>(op.getCounts().getType());
  auto receivedType = cast<RankedTensorType>(op.getReceived().getType());
  // The wait goes as late as the program allows: right before the first
  // use of the rows received (found before they are replaced). What runs
  // in between on the compute stream overlaps the transfer.
  Operation *firstUse = firstUserInBlock(op.getReceived(), op->getBlock());
  Value rows = readBuffer(b, op.getRows());
  Value counts = readBuffer(b, op.getCounts());
  Value receivedCounts, receivedCountsTensor;
  if (Value expected = op.getExpected()) {
    receivedCountsTensor = expected;
    receivedCounts = readBuffer(b, expected);
  } else {
    receivedCounts =
        allocBuffer(b, countsType.getShape(), countsType.getElementType(), {},
                    "collectives.received_counts");
    moek::ExchangeCountsOp::create(b, counts, receivedCounts,
                                   op.getRanksAttr());
    receivedCountsTensor = asTensor(b, receivedCounts);
  }
  SmallVector<Value> dynamic;
  if (receivedType.isDynamicDim(0))
    dynamic.push_back(deviceSplitSizes ? receivedBound(b, op)
                                       : sumOfCounts(b, receivedCounts));
  Value received =
      allocBuffer(b, receivedType.getShape(), receivedType.getElementType(),
                  dynamic, "collectives.received_rows");
  Value event = moek::AllToAllStartOp::create(b, b.getI64Type(), rows, counts,
                                              receivedCounts,
                                              received, op.getRanksAttr());
  Value receivedTensor = asTensor(b, received);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(firstUse);
    moek::AllToAllWaitOp::create(b, event, rows, received);
  }
  rewriter.replaceOp(op, ValueRange{receivedTensor, receivedCountsTensor});
}

void moe::lowerLocalRoutingToKernels(LocalRoutingOp op,
                                     RewriterBase &rewriter,
                                     bool scratchBuffers,
                                     bool deviceSplitSizes) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  int64_t local = op.getRouting().getType().getExperts();
  Type i32 = b.getI32Type();
  Value counts = readBuffer(b, op.getCounts());
  auto exchange = op.getCounts().getDefiningOp<AllToAllOp>();
  SmallVector<Value> rows{deviceSplitSizes && exchange
                              ? receivedBound(b, exchange)
                              : sumOfCounts(b, counts)};
  int64_t dynamic = ShapedType::kDynamic;
  Value indices =
      allocBuffer(b, {dynamic, 1}, i32, rows, "routing.received_indices");
  Value weights = allocBuffer(b, {dynamic, 1}, b.getF32Type(), rows,
                              "routing.received_weights");
  moek::ReceivedAssignmentsOp::create(b, counts, indices, weights,
                                      op.getRanksAttr());
  // Dropless: every received row is kept (capacity applied at the sender);
  // rows past the counts' sum (a bound-sized buffer) are no expert's.
  Value routing = planRouting(b, indices, {dynamic, 1}, rows, local,
                              b.getF64FloatAttr(0.0), scratchBuffers,
                              op.getRouting().getType());
  rewriter.replaceOp(op, ValueRange{asTensor(b, weights), routing});
}

LogicalResult moe::lowerSlotsToRows(SlotsToRowsOp op, RoutingPlans &plans,
                                    RewriterBase &rewriter) {
  if (failed(plans.planOf(op, op.getRouting())))
    return failure();
  Value rowsOf = plans.assignmentRows(rewriter, op.getRouting());
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value values = readBuffer(b, op.getValues());
  auto type = cast<RankedTensorType>(op.getRows().getType());
  SmallVector<Value> dynamic;
  if (type.isDynamicDim(0))
    dynamic.push_back(arith::MulIOp::create(
        b, extentOf(b, values, 0),
        arith::ConstantIndexOp::create(b,
                                       op.getRouting().getType().getTopK())));
  Value out = allocBuffer(b, type.getShape(), type.getElementType(), dynamic,
                          "dispatch.slot_values");
  moek::SlotsToRowsOp::create(b, values, readBuffer(b, rowsOf), out);
  rewriter.replaceOp(op, asTensor(b, out));
  return success();
}

LogicalResult moe::lowerRowsToSlots(RowsToSlotsOp op, RoutingPlans &plans,
                                    RewriterBase &rewriter) {
  if (failed(plans.planOf(op, op.getRouting())))
    return failure();
  Value rowsOf = plans.assignmentRows(rewriter, op.getRouting());
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value in = readBuffer(b, op.getRows());
  Value rows = readBuffer(b, rowsOf);
  auto type = cast<RankedTensorType>(op.getValues().getType());
  SmallVector<Value> dynamic;
  if (type.isDynamicDim(0))
    dynamic.push_back(extentOf(b, rows, 0));
  Value values = allocBuffer(b, type.getShape(), type.getElementType(),
                             dynamic, "gradients.slot_values");
  moek::RowsToSlotsOp::create(b, in, rows, values);
  rewriter.replaceOp(op, asTensor(b, values));
  return success();
}

void moe::lowerAllReduceToKernels(AllReduceOp op, RewriterBase &rewriter) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  auto type = cast<RankedTensorType>(op.getValue().getType());
  Value out = allocBuffer(b, type.getShape(), type.getElementType(), {},
                          "collectives.all_reduce");
  moek::AllReduceOp::create(b, readBuffer(b, op.getValue()), out,
                            op.getRanksAttr());
  rewriter.replaceOp(op, asTensor(b, out));
}
