//===- MoeJoinGPUStreams.cpp - One stream across device-free host ops -----===//
//
// gpu-async-region makes the host wait for the device before every host op
// it cannot prove free of memory effects, then starts a new stream. Of the
// host ops the CUDA pipeline leaves between kernels, two kinds have effects
// yet need no wait: the tensor-map encoding of a TMA descriptor reads the
// buffer's address and shape, never its contents; and moert's CUDA
// collectives (moert_cuda_*_v1) order themselves on the device after the
// call's stream and order it after them, with events. This pass removes
// such waits and continues the stream they ended, and drops the wait
// before the function returns, which moert's call does itself (runEntry:
// it waits for the device, or fences the caller's stream). A call then only
// queues its work: the host reads no split size of an all-to-all.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEJOINGPUSTREAMSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// A call of one of moert's CUDA collectives, which run in stream order.
bool isStreamOrderedCollective(Operation *op) {
  auto call = dyn_cast<LLVM::CallOp>(op);
  std::optional<StringRef> callee = call ? call.getCallee() : std::nullopt;
  return callee && callee->starts_with("moert_cuda_") &&
         callee->ends_with("_v1");
}

/// A host op that need not wait for the device's pending work: free of
/// memory effects, an encoding of a descriptor from a buffer's metadata, or
/// a collective that waits on the device itself.
bool readsNoDeviceMemory(Operation *op) {
  return isa<nvgpu::TmaCreateDescriptorOp>(op) || isMemoryEffectFree(op) ||
         isStreamOrderedCollective(op);
}

/// Whether only ops free of memory effects separate `hostWait` from the
/// function's return.
bool endsTheCall(gpu::WaitOp hostWait) {
  for (Operation *op = hostWait->getNextNode(); op; op = op->getNextNode()) {
    if (isa<func::ReturnOp>(op))
      return true;
    if (!isMemoryEffectFree(op))
      return false;
  }
  return false;
}

/// The fresh stream (`gpu.wait async` with no dependencies) that follows
/// `hostWait` after ops that read no device memory, or null.
gpu::WaitOp freshStreamAfter(gpu::WaitOp hostWait) {
  for (Operation *op = hostWait->getNextNode(); op; op = op->getNextNode()) {
    if (auto wait = dyn_cast<gpu::WaitOp>(op))
      return wait.getAsyncToken() && wait.getAsyncDependencies().empty()
                 ? wait
                 : gpu::WaitOp();
    if (!readsNoDeviceMemory(op))
      return gpu::WaitOp();
  }
  return gpu::WaitOp();
}

struct MoeJoinGPUStreamsPass
    : public moe::impl::MoeJoinGPUStreamsPassBase<MoeJoinGPUStreamsPass> {
  void runOnOperation() override {
    SmallVector<gpu::WaitOp> hostWaits;
    getOperation().walk([&](gpu::WaitOp wait) {
      if (!wait.getAsyncToken() && wait.getAsyncDependencies().size() == 1)
        hostWaits.push_back(wait);
    });
    for (gpu::WaitOp hostWait : hostWaits) {
      // moert waits for the call's stream, or fences it, once the entry
      // returns (its ABI): a wait of the artifact's own there would only
      // keep a caller's stream from running ahead.
      if (endsTheCall(hostWait)) {
        hostWait->erase();
        continue;
      }
      gpu::WaitOp fresh = freshStreamAfter(hostWait);
      if (!fresh)
        continue;
      // The token comes before the wait, so it dominates the fresh
      // stream's uses.
      fresh.getAsyncToken().replaceAllUsesWith(
          hostWait.getAsyncDependencies().front());
      fresh->erase();
      hostWait->erase();
    }
  }
};

} // namespace
