//===- MoePlaceBuffersOnGPU.cpp - Host buffers become device buffers ------===//
//
// On the CUDA target every buffer a function allocates is device memory:
// kernels read and write it, the host only passes it around. This pass turns
// the host's memref.alloc / memref.dealloc / memref.copy (those outside
// kernels) into their gpu dialect counterparts. They are made synchronous
// here; gpu-async-region (in the GPU-to-LLVM pipeline) puts them and the
// kernels on one stream, chained by async tokens.
//
// Constant arrays (memref.get_global) are host memory: each is copied to a
// device buffer where the host takes its address.
//
// One exception: host code may read a small count array (1-D i32 with a
// static size, such as the split sizes an expert-parallel all-to-all
// received and sums to size its buffer). The host region that reads it
// reads a host copy made right before it: a blocking device-to-host copy
// of a few bytes, the price of sizing buffers by data on the device.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPLACEBUFFERSONGPUPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// The most elements a count array read on the host may have.
constexpr int64_t kMaxHostCounts = 1 << 16;

/// A host load the pass stages through a host copy: of a 1-D i32 buffer of
/// static size (a count array).
bool isHostCountRead(Operation *op) {
  auto load = dyn_cast<memref::LoadOp>(op);
  if (!load)
    return false;
  auto type = load.getMemRefType();
  return type.getRank() == 1 && type.hasStaticShape() &&
         type.getElementType().isInteger(32) &&
         type.getDimSize(0) <= kMaxHostCounts;
}

/// The outermost host control flow (scf) around `op` in its function, or
/// `op` itself: the host copy is made before it and freed after it.
Operation *hostRegionOf(Operation *op) {
  Operation *anchor = op;
  while (Operation *parent = anchor->getParentOp()) {
    if (!isa<scf::ForOp, scf::IfOp, scf::WhileOp>(parent))
      break;
    anchor = parent;
  }
  return anchor;
}

/// Makes every staged count read load from a host copy of its buffer.
void stageHostCountReads(ArrayRef<memref::LoadOp> loads,
                         IRRewriter &rewriter) {
  llvm::DenseMap<std::pair<Value, Operation *>, Value> copies;
  for (memref::LoadOp load : loads) {
    Operation *anchor = hostRegionOf(load);
    Value &copy = copies[{load.getMemref(), anchor}];
    if (!copy) {
      ImplicitLocOpBuilder b(load.getLoc(), rewriter);
      b.setInsertionPoint(anchor);
      MemRefType type = load.getMemRefType();
      // The host copy is a plain array even when the count array is a view
      // of the planned arena.
      copy = memref::AllocOp::create(
          b, MemRefType::get(type.getShape(), type.getElementType()));
      Type token = gpu::AsyncTokenType::get(b.getContext());
      Value ready = gpu::WaitOp::create(b, token, ValueRange{}).getAsyncToken();
      auto done = gpu::MemcpyOp::create(b, token, ValueRange{ready}, copy,
                                        load.getMemref());
      gpu::WaitOp::create(b, Type(), ValueRange{done.getAsyncToken()});
      b.setInsertionPointAfter(anchor);
      memref::DeallocOp::create(b, copy);
    }
    rewriter.modifyOpInPlace(load,
                             [&] { load.getMemrefMutable().assign(copy); });
  }
}

/// Whether gpu.memcpy can do `copy`: the GPU runtime's memcpy takes the
/// extent of plain arrays (identity layouts) only.
bool isPlain(memref::CopyOp copy) {
  return cast<MemRefType>(copy.getSource().getType()).getLayout().isIdentity() &&
         cast<MemRefType>(copy.getTarget().getType()).getLayout().isIdentity();
}

/// A copy between views (a chunk of rows at an offset, as
/// moe-overlap-communication makes them) as a kernel of one thread per
/// element.
void copyByKernel(ImplicitLocOpBuilder &b, memref::CopyOp copy) {
  Value source = copy.getSource(), target = copy.getTarget();
  auto type = cast<MemRefType>(source.getType());
  moe::LoopBuilder lb(b);
  SmallVector<Value> dims;
  Value count = lb.index(1);
  for (int64_t d = 0; d < type.getRank(); ++d) {
    dims.push_back(memref::DimOp::create(b, source, d));
    count = arith::MulIOp::create(b, count, dims.back());
  }
  moek::launchPerItem(
      lb, count,
      [&](Value item) {
        // Row-major multi-index of `item`, innermost dimension last.
        SmallVector<Value> indices(dims.size());
        Value rest = item;
        for (int64_t d = int64_t(dims.size()) - 1; d >= 0; --d) {
          indices[d] = arith::RemUIOp::create(b, rest, dims[d]);
          rest = arith::DivUIOp::create(b, rest, dims[d]);
        }
        Value value = memref::LoadOp::create(b, source, indices);
        memref::StoreOp::create(b, value, target, indices);
      },
      "moe_copy");
}

/// Constant arrays (memref.get_global: unit weights, say) live in host
/// memory, which kernels cannot read: each becomes a device copy made where
/// the host takes its address and freed at the end of that block.
void copyConstantsToDevice(Operation *root, IRRewriter &rewriter) {
  SmallVector<memref::GetGlobalOp> globals;
  root->walk([&](memref::GetGlobalOp op) {
    if (!op->getParentOfType<gpu::LaunchOp>() &&
        !op->getParentOfType<gpu::GPUFuncOp>())
      globals.push_back(op);
  });
  for (memref::GetGlobalOp global : globals) {
    ImplicitLocOpBuilder b(global.getLoc(), rewriter);
    b.setInsertionPointAfter(global);
    Type token = gpu::AsyncTokenType::get(b.getContext());
    Value ready = gpu::WaitOp::create(b, token, ValueRange{}).getAsyncToken();
    auto device = gpu::AllocOp::create(b, global.getType(), token,
                                       ValueRange{ready}, ValueRange{},
                                       ValueRange{}, /*hostShared=*/false);
    auto copied = gpu::MemcpyOp::create(
        b, token, ValueRange{device.getAsyncToken()}, device.getMemref(),
        global.getResult());
    gpu::WaitOp::create(b, Type(), ValueRange{copied.getAsyncToken()});
    rewriter.replaceAllUsesExcept(global.getResult(), device.getMemref(),
                                  copied);
    b.setInsertionPoint(global->getBlock()->getTerminator());
    Value before = gpu::WaitOp::create(b, token, ValueRange{}).getAsyncToken();
    auto freed = gpu::DeallocOp::create(b, token, ValueRange{before},
                                        device.getMemref());
    gpu::WaitOp::create(b, Type(), ValueRange{freed.getAsyncToken()});
  }
}

struct MoePlaceBuffersOnGPUPass
    : public moe::impl::MoePlaceBuffersOnGPUPassBase<MoePlaceBuffersOnGPUPass> {
  void runOnOperation() override {
    // Every buffer is device memory now: host code may pass buffers around
    // but never touch their elements (count arrays aside: read from a host
    // copy).
    SmallVector<memref::LoadOp> countReads;
    WalkResult touched = getOperation()->walk([&](Operation *op) {
      if (isa<memref::LoadOp, memref::StoreOp>(op) &&
          !op->getParentOfType<gpu::LaunchOp>() &&
          !op->getParentOfType<gpu::GPUFuncOp>()) {
        if (isHostCountRead(op)) {
          countReads.push_back(cast<memref::LoadOp>(op));
          return WalkResult::advance();
        }
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
      } else if (auto copy = cast<memref::CopyOp>(op); !isPlain(copy)) {
        copyByKernel(b, copy);
        rewriter.eraseOp(copy);
      } else {
        gpu::MemcpyOp::create(b, /*asyncToken=*/Type(), ValueRange{},
                              copy.getTarget(), copy.getSource());
        rewriter.eraseOp(copy);
      }
    }
    // After the device buffers, so that the host copies stay host memory.
    stageHostCountReads(countReads, rewriter);
    copyConstantsToDevice(getOperation(), rewriter);
  }
};

} // namespace
