//===- LoopBuilder.h - Small helpers to emit loops over buffers -*- C++ -*-===//
//
// The moe lowerings write their kernels as loops over memrefs. These helpers
// keep that code close to the pseudo-code of the semantics it implements.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_LOOPBUILDER_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_LOOPBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::moe {

class LoopBuilder {
public:
  explicit LoopBuilder(ImplicitLocOpBuilder &b) : b(b) {}

  ImplicitLocOpBuilder &builder() { return b; }

  Value index(int64_t value) {
    return arith::ConstantIndexOp::create(b, value);
  }
  Value f32(double value) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(value));
  }
  Value i32(int64_t value) {
    return arith::ConstantOp::create(b, b.getI32IntegerAttr(value));
  }

  /// Loads `buffer[indices]` widened to f32 (the accumulation type).
  Value loadF32(Value buffer, ValueRange indices) {
    Value value = memref::LoadOp::create(b, buffer, indices);
    if (value.getType().isF32())
      return value;
    return arith::ExtFOp::create(b, b.getF32Type(), value);
  }

  /// Stores the f32 `value` into `buffer[indices]`, narrowed to its storage.
  void storeF32(Value value, Value buffer, ValueRange indices) {
    Type element = cast<MemRefType>(buffer.getType()).getElementType();
    if (element != value.getType())
      value = arith::TruncFOp::create(b, element, value);
    memref::StoreOp::create(b, value, buffer, indices);
  }

  /// Emits `for (i = lower; i < upper; ++i) body(i)`.
  void forLoop(Value lower, Value upper, function_ref<void(Value)> body) {
    auto loop = scf::ForOp::create(b, lower, upper, index(1));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    body(loop.getInductionVar());
  }

  /// Emits a loop that carries `init` and yields what `body` returns.
  SmallVector<Value>
  forLoopCarrying(Value lower, Value upper, ValueRange init,
                  function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto loop = scf::ForOp::create(b, lower, upper, index(1), init);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      SmallVector<Value> next =
          body(loop.getInductionVar(), loop.getRegionIterArgs());
      scf::YieldOp::create(b, next);
    }
    return SmallVector<Value>(loop.getResults());
  }

  /// Emits `if (condition) body()`.
  void ifThen(Value condition, function_ref<void()> body) {
    auto ifOp = scf::IfOp::create(b, condition, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    body();
  }

  /// Sets every element of a rank-1 or rank-2 buffer to `value`.
  void fill(Value buffer, Value value) {
    auto type = cast<MemRefType>(buffer.getType());
    Value zero = index(0);
    if (type.getRank() == 1) {
      forLoop(zero, dim(buffer, 0), [&](Value i) {
        memref::StoreOp::create(b, value, buffer, ValueRange{i});
      });
      return;
    }
    forLoop(zero, dim(buffer, 0), [&](Value i) {
      forLoop(zero, dim(buffer, 1), [&](Value j) {
        memref::StoreOp::create(b, value, buffer, ValueRange{i, j});
      });
    });
  }

  Value zeroOf(Type type) {
    return arith::ConstantOp::create(b, b.getZeroAttr(type));
  }

  Value dim(Value buffer, int64_t index) {
    return memref::DimOp::create(b, buffer, index);
  }

private:
  ImplicitLocOpBuilder &b;
};

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_LOOPBUILDER_H
