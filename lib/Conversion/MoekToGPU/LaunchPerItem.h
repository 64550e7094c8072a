//===- LaunchPerItem.h - A GPU kernel of one thread per item ---*- C++ -*-===//
//
// The simplest kernel shapes of the CUDA lowering, shared by moek-lower-to-gpu
// and moe-place-buffers-on-gpu (strided copies): a thread per item, and a
// warp per item.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_LAUNCHPERITEM_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_LAUNCHPERITEM_H

#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

namespace mlir::moek {

/// Threads per block of a kernel of one thread per item.
constexpr int64_t kThreadsPerBlock = 256;

/// Moves the builder into `launch`'s body, before the terminator it gives
/// the body: what is built next is the kernel. Callers keep an
/// InsertionGuard to come back to the host.
inline void enterLaunchBody(ImplicitLocOpBuilder &b, gpu::LaunchOp launch) {
  Block &entry = launch.getBody().front();
  b.setInsertionPointToStart(&entry);
  gpu::TerminatorOp::create(b);
  b.setInsertionPointToStart(&entry);
}

/// Runs `body(i)` for every i in [0, count), one GPU thread per item, as a
/// gpu.launch at the builder's insertion point. `part`, when given, names
/// the launch (the outlined kernel's name).
void launchPerItem(moe::LoopBuilder &lb, Value count,
                   function_ref<void(Value)> body, StringRef part = {},
                   int64_t threadsPerBlock = kThreadsPerBlock);

/// Runs `body(item, lane)` for every item in [0, count) on a warp of its
/// own, `itemsPerBlock` warps a block: every lane of a warp has the same
/// item (the warp is whole, so it may shuffle), `lane` in [0, 32).
void launchWarpPerItem(moe::LoopBuilder &lb, Value count,
                       function_ref<void(Value item, Value lane)> body,
                       int64_t itemsPerBlock = 8);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_LAUNCHPERITEM_H
