//===- MoeTypes.h - Types of the moe dialect --------------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECTS_MOE_IR_MOETYPES_H
#define MOE_MLIR_DIALECTS_MOE_IR_MOETYPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Types.h"

#define GET_TYPEDEF_CLASSES
#include "dialects/moe/IR/MoeTypes.h.inc"

#endif // MOE_MLIR_DIALECTS_MOE_IR_MOETYPES_H
