//===- MoePlaceBuffersOnGPU.cpp - Host buffers become device buffers ------===//
//
// On the CUDA target every buffer a function allocates is device memory:
// kernels read and write it, the host only passes it around. This pass turns
// the host's memref.alloc / memref.dealloc / memref.copy (those outside
// kernels) into their gpu dialect counterparts. They are made synchronous
// here; gpu-async-region (in the GPU-to-LLVM pipeline) puts them and the
// kernels on one stream, chained by async tokens.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPLACEBUFFERSONGPUPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

struct MoePlaceBuffersOnGPUPass
    : public moe::impl::MoePlaceBuffersOnGPUPassBase<MoePlaceBuffersOnGPUPass> {
  void runOnOperation() override {
    // Every buffer is device memory now: host code may pass buffers around
    // but never touch their elements.
    WalkResult touched = getOperation()->walk([&](Operation *op) {
      if (isa<memref::LoadOp, memref::StoreOp>(op) &&
          !op->getParentOfType<gpu::LaunchOp>() &&
          !op->getParentOfType<gpu::GPUFuncOp>()) {
        op->emitOpError() << "accesses a buffer from host code, but on the "
                             "CUDA target every buffer lives on the device";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (touched.wasInterrupted())
      return signalPassFailure();
    SmallVector<Operation *> hostOps;
    getOperation()->walk([&](Operation *op) {
      if (isa<memref::AllocOp, memref::DeallocOp, memref::CopyOp>(op) &&
          !op->getParentOfType<gpu::LaunchOp>())
        hostOps.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : hostOps) {
      ImplicitLocOpBuilder b(op->getLoc(), rewriter);
      b.setInsertionPoint(op);
      // Synchronous gpu ops: gpu-async-region later chains them with the
      // kernels on one stream, so that the host never waits mid-call.
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        auto device = gpu::AllocOp::create(
            b, alloc.getType(), /*asyncToken=*/Type(), ValueRange{},
            alloc.getDynamicSizes(), alloc.getSymbolOperands(),
            /*hostShared=*/false);
        rewriter.replaceOp(alloc, device.getMemref());
      } else if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
        gpu::DeallocOp::create(b, /*asyncToken=*/Type(), ValueRange{},
                               dealloc.getMemref());
        rewriter.eraseOp(dealloc);
      } else {
        auto copy = cast<memref::CopyOp>(op);
        gpu::MemcpyOp::create(b, /*asyncToken=*/Type(), ValueRange{},
                              copy.getTarget(), copy.getSource());
        rewriter.eraseOp(copy);
      }
    }
  }
};

} // namespace
