//===- MoekDialect.h - The MoE kernel dialect -------------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECTS_MOEK_IR_MOEKDIALECT_H
#define MOE_MLIR_DIALECTS_MOEK_IR_MOEKDIALECT_H

#include "dialects/moe/IR/MoeOps.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/moek/IR/MoekDialect.h.inc"
#include "dialects/moek/IR/MoekEnums.h.inc"

#define GET_OP_CLASSES
#include "dialects/moek/IR/MoekOps.h.inc"

#endif // MOE_MLIR_DIALECTS_MOEK_IR_MOEKDIALECT_H
