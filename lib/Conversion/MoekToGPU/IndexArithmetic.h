//===- IndexArithmetic.h - Index arithmetic for GPU kernels ---*- C++ -*-===//
//
// A thin layer over arith ops on an ImplicitLocOpBuilder, so that the kernels'
// lane, row and address arithmetic reads like the formulas it implements.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_INDEXARITHMETIC_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_INDEXARITHMETIC_H

#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

namespace mlir::moek {

/// Index arithmetic on an ImplicitLocOpBuilder, to keep the kernel readable.
struct Ix {
  ImplicitLocOpBuilder &b;
  moe::LoopBuilder &lb;

  Value c(int64_t v) { return lb.index(v); }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value add(Value x, int64_t y) { return y ? add(x, c(y)) : x; }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value mul(Value x, int64_t y) { return arith::MulIOp::create(b, x, c(y)); }
  Value div(Value x, int64_t y) { return arith::DivUIOp::create(b, x, c(y)); }
  Value rem(Value x, int64_t y) { return arith::RemUIOp::create(b, x, c(y)); }
  Value ceilDiv(Value x, int64_t y) {
    return arith::CeilDivUIOp::create(b, x, c(y));
  }
  Value minu(Value x, int64_t y) { return arith::MinUIOp::create(b, x, c(y)); }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
  }
  Value ult(Value x, int64_t y) { return ult(x, c(y)); }
  Value uge(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::uge, x, y);
  }
  Value both(Value x, Value y) { return arith::AndIOp::create(b, x, y); }
  Value select(Value cond, Value x, Value y) {
    return arith::SelectOp::create(b, cond, x, y);
  }
  Value select(Value cond, Value x, int64_t y) { return select(cond, x, c(y)); }
};

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_INDEXARITHMETIC_H
