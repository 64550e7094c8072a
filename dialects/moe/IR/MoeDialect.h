//===- MoeDialect.h - The moe dialect ---------------------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECTS_MOE_IR_MOEDIALECT_H
#define MOE_MLIR_DIALECTS_MOE_IR_MOEDIALECT_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "dialects/moe/IR/MoeDialect.h.inc"

#endif // MOE_MLIR_DIALECTS_MOE_IR_MOEDIALECT_H
