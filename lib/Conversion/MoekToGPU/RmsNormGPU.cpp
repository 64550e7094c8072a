//===- RmsNormGPU.cpp - moek.rms_norm on CUDA -----------------------------===//
//
// A warp per row of x [T, H], 8 rows a CTA: lane l sums the squares of
// columns l, l + 32, ... in f32, a butterfly of shuffles gives every lane
// the row's sum, and each lane stores its columns x / sqrt(mean + eps) * g
// in the storage type (the CPU kernel's arithmetic, in its order).
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/BlockKernelsGPU.h"
#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"
#include "lib/Conversion/MoekToGPU/LaunchPerItem.h"
#include "lib/Conversion/MoekToGPU/WarpShuffle.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;

void mlir::moek::lowerRmsNormToGPU(RmsNormOp op, LoopBuilder &lb) {
  ImplicitLocOpBuilder &b = lb.builder();
  Ix ix{b, lb};
  Value x = op.getX(), g = op.getG(), out = op.getOut();
  int64_t hidden = cast<MemRefType>(x.getType()).getDimSize(1);
  // The whole warp shares its row: the shuffles run with every lane.
  launchWarpPerItem(lb, lb.dim(x, 0), [&](Value row, Value lane) {
    Value step = ix.c(32), end = ix.c(hidden);
    auto loop = scf::ForOp::create(b, lane, end, step, ValueRange{lb.f32(0.0)});
    {
      OpBuilder::InsertionGuard inner(b);
      b.setInsertionPointToStart(loop.getBody());
      Value v = lb.loadF32(x, {row, loop.getInductionVar()});
      scf::YieldOp::create(
          b, ValueRange{arith::AddFOp::create(b, loop.getRegionIterArgs()[0],
                                              arith::MulFOp::create(b, v, v))});
    }
    Value sum =
        butterflyReduce(b, loop.getResult(0), /*max=*/false, kWholeWarp);
    Value mean = arith::DivFOp::create(b, sum, lb.f32(double(hidden)));
    Value root = math::SqrtOp::create(
        b, arith::AddFOp::create(
               b, mean, lb.f32(float(op.getEpsilon().convertToDouble()))));
    auto columns = scf::ForOp::create(b, lane, end, step);
    OpBuilder::InsertionGuard inner(b);
    b.setInsertionPoint(columns.getBody()->getTerminator());
    Value h = columns.getInductionVar();
    Value scaled = arith::DivFOp::create(b, lb.loadF32(x, {row, h}), root);
    lb.storeF32(arith::MulFOp::create(b, scaled, lb.loadF32(g, {h})), out,
                {row, h});
  });
}
