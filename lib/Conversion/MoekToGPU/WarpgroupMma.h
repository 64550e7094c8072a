//===- WarpgroupMma.h - wgmma pieces both sm_90a kernels use ----*- C++ -*-===//
//
// The shared-memory descriptor and the m64nNk16 multiply of Hopper's
// warpgroup MMA, as the grouped GEMM (GroupedMatmulWarpgroup.cpp) and the
// varlen-K weight gradient (GroupedWeightGradWarpgroup.cpp) build them:
// 16-bit operands from 128B-swizzled shared memory, f32 accumulators.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPGROUPMMA_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPGROUPMMA_H

#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::moek {

/// A wgmma shared-memory descriptor for the operand at `address` (i64, the
/// shared window): start address, leading and stride byte offsets (16-byte
/// units, 14 bits each), 128-byte swizzle (mode 1). K-major: leading 16,
/// stride 1024 (8-row groups). MN-major: leading = bytes between 64-element
/// chunks of M or N, stride 1024 (8 rows of k).
inline Value wgmmaDescriptor(ImplicitLocOpBuilder &b, Value address,
                             int64_t leading, int64_t stride) {
  auto constant = [&](int64_t v) {
    return arith::ConstantOp::create(b, b.getI64IntegerAttr(v));
  };
  Value start = arith::AndIOp::create(
      b, arith::ShRUIOp::create(b, address, constant(4)), constant(0x3FFF));
  uint64_t fixed = (uint64_t(leading >> 4) << 16) |
                   (uint64_t(stride >> 4) << 32) | (uint64_t(1) << 62);
  return arith::OrIOp::create(b, start, constant(int64_t(fixed)));
}

/// The f32 accumulators of one wgmma m64nN, an !llvm.struct of n / 2 f32.
/// The wgmma kernels' dynamic shared memory aligned up to 1024 bytes (the
/// 128B swizzle repeats every 1024 bytes and the descriptors assume it):
/// its address as i64, and its first `count` values of `element` as a view
/// for the cp.async copies.
struct AlignedSharedMemory {
  Value base;
  Value elements;
};
inline AlignedSharedMemory
alignDynamicSharedMemory(ImplicitLocOpBuilder &b, Ix &ix, Type element,
                         int64_t count) {
  MLIRContext *context = b.getContext();
  auto workgroup =
      gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup);
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value shared = gpu::DynamicSharedMemoryOp::create(b, bytesType);
  Value address = memref::ExtractAlignedPointerAsIndexOp::create(b, shared);
  Value shift = ix.sub(ix.mul(ix.ceilDiv(address, 1024), 1024), address);
  Value base =
      arith::IndexCastOp::create(b, b.getI64Type(), ix.add(address, shift));
  auto elementsType = MemRefType::get({count}, element,
                                      MemRefLayoutAttrInterface(), workgroup);
  Value elements =
      memref::ViewOp::create(b, elementsType, shared, shift, ValueRange{});
  return {base, elements};
}

inline Type wgmmaAccumulatorType(MLIRContext *context, int64_t n) {
  return LLVM::LLVMStructType::getLiteral(
      context, SmallVector<Type>(n / 2, Float32Type::get(context)));
}

/// `acc` += A (x) B for one k16 step: wgmma.mma_async m64nNk16, bf16 or
/// f16 (`element`) operands from descriptors, f32 accumulation. A layout
/// `row` for A and `col` for B is K-major (as wgmma reads them); the other
/// is MN-major, read transposed (the instruction's imm-trans-a / -b).
inline Value wgmmaMultiply(ImplicitLocOpBuilder &b, Value acc, Value descA,
                           Value descB, int64_t n, Type element,
                           NVVM::MMALayout layoutA, NVVM::MMALayout layoutB) {
  MLIRContext *context = b.getContext();
  NVVM::WGMMATypes type =
      element.isBF16() ? NVVM::WGMMATypes::bf16 : NVVM::WGMMATypes::f16;
  return NVVM::WgmmaMmaAsyncOp::create(
      b, acc.getType(), acc, descA, descB,
      NVVM::MMAShapeAttr::get(context, 64, n, 16),
      NVVM::WGMMATypesAttr::get(context, type),
      NVVM::WGMMATypesAttr::get(context, type),
      NVVM::WGMMATypesAttr::get(context, NVVM::WGMMATypes::f32),
      NVVM::WGMMAScaleOutAttr::get(context, NVVM::WGMMAScaleOut::one),
      NVVM::WGMMAScaleInAttr::get(context, NVVM::WGMMAScaleIn::one),
      NVVM::WGMMAScaleInAttr::get(context, NVVM::WGMMAScaleIn::one),
      NVVM::MMALayoutAttr::get(context, layoutA),
      NVVM::MMALayoutAttr::get(context, layoutB), NVVM::MMAIntOverflowAttr());
}

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPGROUPMMA_H
