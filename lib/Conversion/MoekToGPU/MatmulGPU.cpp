//===- MatmulGPU.cpp - moek.matmul on CUDA --------------------------------===//
//
// Attention's projections are dense GEMMs, [B*L, H] . [H, N]. For bf16/f16
// they are the grouped matmul's tensor-core kernels with one group of every
// row, as the router's scores GEMM is: the weight viewed as [1, K, N] and no
// offsets; on sm_90a the wgmma + TMA kernel (its tile table then holds the
// one group), elsewhere mma.sync m16n8k16 (f32 accumulation). f32, or K or
// N not a multiple of 8: a thread per output element.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/BlockKernelsGPU.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

void mlir::moek::lowerMatmulToGPU(MatmulOp op, LoopBuilder &lb,
                                  const TensorCoreTile &tile, bool warpgroupMma,
                                  int64_t multiprocessors) {
  ImplicitLocOpBuilder &b = lb.builder();
  Value a = op.getA(), w = op.getB(), c = op.getC();
  auto wType = cast<MemRefType>(w.getType());
  int64_t depth = wType.getDimSize(0), width = wType.getDimSize(1);

  TensorCoreGemm gemm;
  gemm.a = a;
  gemm.c = c;
  gemm.tile = tile;
  if (wType.getLayout().isIdentity())
    gemm.b = memref::ExpandShapeOp::create(
        b, ArrayRef<int64_t>{1, depth, width}, w,
        ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  gemm.multiprocessors = multiprocessors;
  if (gemm.b && warpgroupMma && canLowerToWarpgroupMma(gemm, b.getContext())) {
    lowerToWarpgroupMma(gemm, lb);
    return;
  }
  if (gemm.b && canLowerToTensorCores(gemm, b.getContext())) {
    lowerToTensorCores(gemm, lb);
    return;
  }
  if (gemm.b)
    gemm.b.getDefiningOp()->erase();
  Value rows = lb.dim(a, 0), columns = lb.index(width);
  launchPerItem(lb, arith::MulIOp::create(b, rows, columns), [&](Value item) {
    Value m = arith::DivUIOp::create(b, item, columns);
    Value n = arith::RemUIOp::create(b, item, columns);
    Value sum = lb.forLoopCarrying(
        lb.index(0), lb.index(depth), ValueRange{lb.f32(0.0)},
        [&](Value k, ValueRange acc) -> SmallVector<Value> {
          Value product = arith::MulFOp::create(b, lb.loadF32(a, {m, k}),
                                                lb.loadF32(w, {k, n}));
          return {arith::AddFOp::create(b, acc[0], product)};
        })[0];
    lb.storeF32(sum, c, {m, n});
  });
}
