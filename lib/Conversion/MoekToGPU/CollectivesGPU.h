//===- CollectivesGPU.h - Expert-parallel moek ops on the GPU ---*- C++ -*-===//
//
// On the CUDA target the collectives are calls of moert's CUDA entry points
// (moert_cuda_*_v1: NCCL on the runtime's communication stream, device
// pointers), made from the host code between kernels; the routing of the
// received rows and the moves between assignment slots and rows are
// kernels of one thread per segment or per slot.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_COLLECTIVESGPU_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_COLLECTIVESGPU_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/BackwardKernelsGPU.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// Whether `op` is one of the collectives or their helpers lowered here.
bool isCollectiveOp(Operation *op);

/// Lowers `op` (isCollectiveOp): calls for the collectives, launches for
/// the rest.
void lowerCollectiveToGPU(Operation *op, moe::LoopBuilder &lb,
                          LaunchPerItem launch);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_COLLECTIVESGPU_H
