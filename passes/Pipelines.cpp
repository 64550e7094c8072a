//===- Pipelines.cpp - Named pipelines of MoE-MLIR ------------------------===//

#include "passes/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Affine/Transforms/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

#include <limits>

using namespace mlir;

/// What both targets share: moe ops to moek kernels on buffers (fused or
/// materializing), bufferization with ownership-based deallocation, and the
/// static memory plan of the host's buffers. `forGPU` makes the buffers the
/// GPU kernels need (narrow GEMM operands, the router's scores) before the
/// plan, so that it counts every one of them. `deviceSplitSizes` (always on
/// the GPU) sizes the all-to-all's received buffers without the host
/// reading a count.
static void buildPlannedKernelsPipeline(OpPassManager &pm, bool fusion,
                                        int64_t expertsPerChunk,
                                        StringRef epilogue, bool forGPU,
                                        bool deviceSplitSizes) {
  deviceSplitSizes |= forGPU;
  using namespace mlir::moe;
  // Elementwise arith/math on tensors around the layer (the block's
  // residual adds) become linalg, which bufferizes like everything else:
  // loops on the CPU, a kernel of a thread per element on the GPU.
  pm.addPass(createConvertElementwiseToLinalgPass());
  // A block's attention over the tiles of its batch it asks for
  // (moe.bta_tiles), before its kernels make the tile's buffers.
  pm.addPass(createMoeBatchTileAttentionPass());
  if (fusion) {
    MoeZeroBufferFusionPassOptions fusionOptions;
    fusionOptions.expertsPerChunk = expertsPerChunk;
    fusionOptions.epilogue = epilogue.str();
    fusionOptions.kernelScratchBuffers = forGPU;
    fusionOptions.deviceSplitSizes = deviceSplitSizes;
    pm.addPass(createMoeZeroBufferFusionPass(fusionOptions));
  }
  MoeLowerToKernelsPassOptions kernelOptions;
  kernelOptions.expertsPerChunk = expertsPerChunk;
  kernelOptions.narrowGemmOperands = forGPU;
  kernelOptions.kernelScratchBuffers = forGPU;
  kernelOptions.deviceSplitSizes = deviceSplitSizes;
  pm.addPass(createMoeLowerToKernelsPass(kernelOptions));
  pm.addPass(createCanonicalizerPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::BufferDeallocationPipelineOptions dealloc;
  bufferization::buildBufferDeallocationPipeline(pm, dealloc);
  // Clones (a function that returns its argument) become alloc + copy.
  pm.addPass(createConvertBufferizationToMemRefPass());
  // A tile of the batch reads and writes its slices in place, not through
  // copies (moe-batch-tile-attention's loop).
  pm.addNestedPass<func::FuncOp>(createMoeFoldSliceCopiesPass());
  pm.addNestedPass<func::FuncOp>(createMoePlanMemoryPass());
}

LogicalResult moe::runPlannedBuffersPipeline(ModuleOp module, StringRef target,
                                             int64_t expertsPerChunk,
                                             bool fusion, StringRef epilogue) {
  bool cpu = target == "cpu";
  int64_t chunk = expertsPerChunk > 0 ? expertsPerChunk
                  : cpu               ? 1
                                      : std::numeric_limits<int64_t>::max();
  PassManager pm(module.getContext());
  buildPlannedBuffersPipeline(pm, fusion, chunk, epilogue, cpu);
  return pm.run(module);
}

void moe::buildPlannedBuffersPipeline(OpPassManager &pm, bool fusion,
                                      int64_t expertsPerChunk,
                                      StringRef epilogue, bool cpu,
                                      bool deviceSplitSizes) {
  // As the target's pipeline plans them: the GPU narrows the backward's
  // GEMM operands and gives the router its scores buffer.
  buildPlannedKernelsPipeline(pm, fusion, expertsPerChunk, epilogue,
                              /*forGPU=*/!cpu, deviceSplitSizes);
}

/// On the GPU all experts' GEMMs share one launch by default: a launch per
/// expert leaves most of the GPU idle when experts get few rows each.
static int64_t gpuExpertsPerChunk(const moe::CUDAPipelineOptions &options) {
  return options.expertsPerChunk > 0 ? int64_t(options.expertsPerChunk)
                                     : std::numeric_limits<int64_t>::max();
}

void moe::buildPlannedGPUKernelsPipeline(OpPassManager &pm,
                                         const CUDAPipelineOptions &options) {
  // The backward's GEMMs on tensor cores read dh in the layer's type.
  buildPlannedKernelsPipeline(pm, options.fusion, gpuExpertsPerChunk(options),
                              options.epilogue, /*forGPU=*/true,
                              /*deviceSplitSizes=*/true);
}

void moe::buildKernelsToGPUPipeline(OpPassManager &pm,
                                    const CUDAPipelineOptions &options) {
  // The stages of the tensor-core GEMMs: their tile loops, then the kernels.
  MoekTileGroupedMatmulsPassOptions tiling;
  tiling.chip = options.chip;
  tiling.tensorCoreTile = options.tensorCoreTile;
  tiling.gemmCluster = options.gemmCluster;
  pm.addPass(createMoekTileGroupedMatmulsPass(tiling));
  MoekLowerToGPUPassOptions gpu;
  gpu.chip = options.chip;
  gpu.tensorCoreTile = options.tensorCoreTile;
  gpu.flashAttention = options.flashAttention;
  gpu.gemmCluster = options.gemmCluster;
  pm.addPass(createMoekLowerToGPUPass(gpu));
  pm.addPass(createMoePlaceBuffersOnGPUPass());
}

void moe::buildLowerToBuffersPipeline(OpPassManager &pm,
                                      const CPUPipelineOptions &options) {
  buildPlannedKernelsPipeline(pm, options.fusion, options.expertsPerChunk,
                              options.epilogue, /*forGPU=*/false,
                              options.deviceSplitSizes);
  pm.addPass(createMoekLowerToLoopsPass());
}

void moe::buildBuffersToLLVMPipeline(OpPassManager &pm) {
  // The runtime calls public functions through their C interface.
  pm.addNestedPass<func::FuncOp>(LLVM::createLLVMRequestCWrappersPass());
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(createSCFToControlFlowPass());
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true; // bf16 <-> f32 as integer ops: no libcalls
  pm.addPass(arith::createArithExpandOpsPass(expand));
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  // Allocations call the generic functions moert provides (and can poison),
  // not malloc directly.
  FinalizeMemRefToLLVMConversionPassOptions memrefToLLVM;
  memrefToLLVM.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefToLLVM));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

void moe::buildLowerToCPUPipeline(OpPassManager &pm,
                                  const CPUPipelineOptions &options) {
  buildLowerToBuffersPipeline(pm, options);
  buildBuffersToLLVMPipeline(pm);
}

void moe::buildLowerToGPUBuffersPipeline(OpPassManager &pm,
                                         const CUDAPipelineOptions &options) {
  buildPlannedGPUKernelsPipeline(pm, options);
  buildKernelsToGPUPipeline(pm, options);
}

void moe::buildGPUToLLVMPipeline(OpPassManager &pm,
                                 const CUDAPipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(LLVM::createLLVMRequestCWrappersPass());
  // Kernels, allocations and frees go on one stream, chained by async
  // tokens, and the host waits once at the end of the call; without this
  // every launch gets its own stream and a host synchronization.
  pm.addPass(createGpuKernelOutliningPass());
  pm.addNestedPass<func::FuncOp>(createGpuAsyncRegionPass());
  pm.addNestedPass<func::FuncOp>(createMoeJoinGPUStreamsPass());
  gpu::GPUToNVVMPipelineOptions nvvm;
  nvvm.cubinChip = options.chip;
  // PTX 8.1 covers sm_90 and sm_80 and has the vector reductions of the
  // scatter-add epilogue (LLVM's default PTX version is older).
  nvvm.cubinFeatures = "+ptx81";
  nvvm.cubinFormat = options.format;
  nvvm.optLevel = 3;
  gpu::buildLowerToNVVMPassPipeline(pm, nvvm);
}

void moe::registerMoePipelines() {
  PassPipelineRegistration<CPUPipelineOptions>(
      "moe-lower-to-cpu",
      "Lower moe IR to the LLVM dialect for the CPU (kernels, loops, "
      "bufferization, memory plan, LLVM conversions)",
      buildLowerToCPUPipeline);
  PassPipelineRegistration<CUDAPipelineOptions>(
      "moe-lower-to-cuda",
      "Lower moe IR to GPU kernels (NVVM, serialized with ptxas) and host "
      "code in the LLVM dialect that calls the moert runtime",
      [](OpPassManager &pm, const CUDAPipelineOptions &options) {
        buildLowerToGPUBuffersPipeline(pm, options);
        buildGPUToLLVMPipeline(pm, options);
      });
  PassPipelineRegistration<>(
      "moe-lower-to-loops",
      "Lower moe ops to loops over buffers with the materializing lowering "
      "(moe-lower-to-kernels, then moek-lower-to-loops)",
      [](OpPassManager &pm) {
        pm.addPass(createMoeLowerToKernelsPass());
        pm.addPass(createMoekLowerToLoopsPass());
      });
}
