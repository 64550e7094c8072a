//===- MoeOps.h - Operations of the moe dialect -----------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECTS_MOE_IR_MOEOPS_H
#define MOE_MLIR_DIALECTS_MOE_IR_MOEOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/moe/IR/MoeDialect.h"
#include "dialects/moe/IR/MoeEnums.h.inc"
#include "dialects/moe/IR/MoeTypes.h"

#define GET_OP_CLASSES
#include "dialects/moe/IR/MoeOps.h.inc"

#endif // MOE_MLIR_DIALECTS_MOE_IR_MOEOPS_H
