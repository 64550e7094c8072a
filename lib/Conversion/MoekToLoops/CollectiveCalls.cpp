//===- CollectiveCalls.cpp - moek collectives as moert calls --------------===//

#include "lib/Conversion/MoekToLoops/CollectiveCalls.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::moek;

/// The declaration of moert's `name`, added to the module once. An
/// llvm.func, not a func.func: the C-interface wrappers the pipeline asks
/// for on every func.func would rename the callee (_mlir_ciface_...), and
/// these take plain pointers and integers, the C ABI itself.
static LLVM::LLVMFuncOp declareRuntimeFunction(Operation *from,
                                               StringRef name,
                                               LLVM::LLVMFunctionType type) {
  auto module = from->getParentOfType<ModuleOp>();
  if (auto existing = module.lookupSymbol<LLVM::LLVMFuncOp>(name))
    return existing;
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  return LLVM::LLVMFuncOp::create(b, from->getLoc(), name, type);
}

/// The address of a buffer's first element as an !llvm.ptr: moert takes
/// plain pointers (the verifier made sure the buffer is contiguous).
static Value pointerTo(ImplicitLocOpBuilder &b, Value buffer) {
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, buffer);
  auto [strided, offset] = cast<MemRefType>(buffer.getType())
                               .getStridesAndOffset();
  (void)strided;
  Value address = arith::IndexCastOp::create(b, b.getI64Type(), base);
  auto element = cast<MemRefType>(buffer.getType()).getElementType();
  int64_t bytes = (element.getIntOrFloatBitWidth() + 7) / 8;
  if (offset != 0) {
    // The offset of a view; dynamic offsets are refused by the verifier's
    // identity-layout rule, so this is static.
    address = arith::AddIOp::create(
        b, address,
        arith::ConstantOp::create(b, b.getI64IntegerAttr(offset * bytes)));
  }
  return LLVM::IntToPtrOp::create(b, LLVM::LLVMPointerType::get(b.getContext()),
                                  address);
}

/// "moert_<name>_v1" or "moert_cuda_<name>_v1".
static std::string entryPoint(CollectiveABI abi, StringRef name) {
  return (Twine(abi == CollectiveABI::Cuda ? "moert_cuda_" : "moert_") + name +
          "_v1")
      .str();
}

static Value i64(ImplicitLocOpBuilder &b, int64_t value) {
  return arith::ConstantOp::create(b, b.getI64IntegerAttr(value));
}

static Value extentAsI64(ImplicitLocOpBuilder &b, Value buffer, int64_t dim) {
  Value extent = memref::DimOp::create(b, buffer, dim);
  return arith::IndexCastOp::create(b, b.getI64Type(), extent);
}

/// A call of moert's entry point `name` on two i32 arrays of one length,
/// `in` and `out` (`int name(in, out, i64 length, i64 ranks)`), as the
/// count exchange and the all-reduce take them.
static void callOnCountArrays(Operation *op, ImplicitLocOpBuilder &b,
                              CollectiveABI abi, StringRef name, Value in,
                              Value out, int64_t ranks) {
  Type ptr = LLVM::LLVMPointerType::get(b.getContext());
  Type i64Type = b.getI64Type();
  auto type = LLVM::LLVMFunctionType::get(b.getI32Type(),
                                          {ptr, ptr, i64Type, i64Type});
  LLVM::LLVMFuncOp callee =
      declareRuntimeFunction(op, entryPoint(abi, name), type);
  int64_t length = cast<MemRefType>(in.getType()).getDimSize(0);
  LLVM::CallOp::create(b, callee,
                       ValueRange{pointerTo(b, in), pointerTo(b, out),
                                  i64(b, length), i64(b, ranks)});
}

void moek::lowerExchangeCounts(ExchangeCountsOp op, ImplicitLocOpBuilder &b,
                               CollectiveABI abi) {
  callOnCountArrays(op, b, abi, "exchange_counts", op.getCounts(),
                    op.getReceived(), op.getRanks());
}

/// A call of moert's all-to-all entry point `name` (the blocking one or the
/// start), which share their arguments; returns the call's result.
template <typename Op>
static Value callAllToAll(Op op, ImplicitLocOpBuilder &b, StringRef name,
                          Type result) {
  Type ptr = LLVM::LLVMPointerType::get(b.getContext());
  Type i64Type = b.getI64Type();
  auto type = LLVM::LLVMFunctionType::get(
      result, {ptr, ptr, i64Type, ptr, ptr, i64Type, i64Type, i64Type, i64Type});
  LLVM::LLVMFuncOp callee = declareRuntimeFunction(op, name, type);
  auto rowsType = cast<MemRefType>(op.getRows().getType());
  int64_t segments = cast<MemRefType>(op.getCounts().getType()).getDimSize(0);
  int64_t rowBytes = rowsType.getDimSize(1) *
                     ((rowsType.getElementTypeBitWidth() + 7) / 8);
  return LLVM::CallOp::create(
             b, callee,
             ValueRange{pointerTo(b, op.getRows()),
                        pointerTo(b, op.getCounts()),
                        extentAsI64(b, op.getRows(), 0),
                        pointerTo(b, op.getReceivedCounts()),
                        pointerTo(b, op.getReceived()),
                        extentAsI64(b, op.getReceived(), 0), i64(b, segments),
                        i64(b, op.getRanks()), i64(b, rowBytes)})
      .getResult();
}

void moek::lowerAllToAll(AllToAllOp op, ImplicitLocOpBuilder &b,
                         CollectiveABI abi) {
  callAllToAll(op, b, entryPoint(abi, "all_to_all"), b.getI32Type());
}

void moek::lowerAllToAllStart(AllToAllStartOp op, ImplicitLocOpBuilder &b,
                              CollectiveABI abi) {
  Value event =
      callAllToAll(op, b, entryPoint(abi, "all_to_all_start"), b.getI64Type());
  op.getEvent().replaceAllUsesWith(event);
}

void moek::lowerAllToAllWait(AllToAllWaitOp op, ImplicitLocOpBuilder &b,
                             CollectiveABI abi) {
  auto type = LLVM::LLVMFunctionType::get(b.getI32Type(), {b.getI64Type()});
  LLVM::LLVMFuncOp callee =
      declareRuntimeFunction(op, entryPoint(abi, "event_wait"), type);
  LLVM::CallOp::create(b, callee, ValueRange{op.getEvent()});
}

void moek::lowerReceivedAssignments(ReceivedAssignmentsOp op,
                                    ImplicitLocOpBuilder &b) {
  moe::LoopBuilder lb(b);
  Value counts = op.getCounts();
  int64_t segments = cast<MemRefType>(counts.getType()).getDimSize(0);
  int64_t local = segments / op.getRanks();
  Value zero = lb.index(0), one = lb.f32(1.0);
  // Segments in order; row n runs on across them. Rows past them (a
  // buffer sized by a bound) are no expert's.
  Value assigned = lb.forLoopCarrying(
      zero, lb.index(segments), ValueRange{zero},
      [&](Value g, ValueRange carried) -> SmallVector<Value> {
        Value expert = arith::IndexCastOp::create(
            b, b.getI32Type(),
            arith::RemUIOp::create(b, g, lb.index(local)));
        Value count = arith::IndexCastOp::create(
            b, b.getIndexType(), memref::LoadOp::create(b, counts, g));
        Value first = carried[0];
        Value end = arith::AddIOp::create(b, first, count);
        lb.forLoop(first, end, [&](Value n) {
          memref::StoreOp::create(b, expert, op.getIndices(),
                                  ValueRange{n, zero});
          memref::StoreOp::create(b, one, op.getWeights(), ValueRange{n, zero});
        });
        return {end};
      })[0];
  Value none = lb.i32(local);
  lb.forLoop(assigned, lb.dim(op.getIndices(), 0), [&](Value n) {
    memref::StoreOp::create(b, none, op.getIndices(), ValueRange{n, zero});
    memref::StoreOp::create(b, lb.f32(0.0), op.getWeights(),
                            ValueRange{n, zero});
  });
}

/// Runs `body(t, j, row)` for every kept assignment (row >= 0).
static void forEachKeptRow(moe::LoopBuilder &lb, Value rows,
                           function_ref<void(Value, Value, Value)> body) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value zero = lb.index(0);
  lb.forLoop(zero, lb.dim(rows, 0), [&](Value t) {
    lb.forLoop(zero, lb.dim(rows, 1), [&](Value j) {
      Value row = memref::LoadOp::create(b, rows, ValueRange{t, j});
      Value kept =
          arith::CmpIOp::create(b, arith::CmpIPredicate::sge, row, lb.i32(0));
      lb.ifThen(kept, [&] {
        body(t, j, arith::IndexCastOp::create(b, b.getIndexType(), row));
      });
    });
  });
}

void moek::lowerSlotsToRows(SlotsToRowsOp op, ImplicitLocOpBuilder &b) {
  moe::LoopBuilder lb(b);
  Value zero = lb.index(0);
  lb.fill(op.getOut(), lb.f32(0.0));
  forEachKeptRow(lb, op.getRows(), [&](Value t, Value j, Value row) {
    Value value = memref::LoadOp::create(b, op.getValues(), ValueRange{t, j});
    memref::StoreOp::create(b, value, op.getOut(), ValueRange{row, zero});
  });
}

void moek::lowerRowsToSlots(RowsToSlotsOp op, ImplicitLocOpBuilder &b) {
  moe::LoopBuilder lb(b);
  Value zero = lb.index(0);
  lb.fill(op.getValues(), lb.f32(0.0));
  forEachKeptRow(lb, op.getRows(), [&](Value t, Value j, Value row) {
    Value value = memref::LoadOp::create(b, op.getIn(), ValueRange{row, zero});
    memref::StoreOp::create(b, value, op.getValues(), ValueRange{t, j});
  });
}

void moek::lowerAllReduce(AllReduceOp op, ImplicitLocOpBuilder &b,
                          CollectiveABI abi) {
  callOnCountArrays(op, b, abi, "all_reduce_sum_i32", op.getIn(), op.getOut(),
                    op.getRanks());
}
