//===- WarpShuffle.h - Reductions across a warp's lanes ---------*- C++ -*-===//
//
// The XOR-butterfly reduction the GPU kernels share: attention's row max and
// sum (a warp's, or an mma.sync quad's), RMSNorm's sum of squares, the GLU
// backward's <g, a>.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPSHUFFLE_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPSHUFFLE_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::moek {

/// The lane offsets that reduce over a whole warp.
constexpr int32_t kWholeWarp[] = {16, 8, 4, 2, 1};

/// `value` combined by `combine(mine, other)` with that of every lane whose
/// index differs from this one's only in the bits of `offsets`, in their
/// order: afterwards all those lanes hold the same result (for a
/// commutative, associative `combine`).
template <typename Combine>
Value butterfly(ImplicitLocOpBuilder &b, Value value,
                ArrayRef<int32_t> offsets, Combine &&combine) {
  for (int32_t offset : offsets) {
    Value other =
        gpu::ShuffleOp::create(b, value, offset, 32, gpu::ShuffleMode::XOR)
            .getShuffleResult();
    value = combine(value, other);
  }
  return value;
}

/// An f32 `value`'s max or sum over the lanes of `offsets` (butterfly).
inline Value butterflyReduce(ImplicitLocOpBuilder &b, Value value, bool max,
                             ArrayRef<int32_t> offsets) {
  return butterfly(b, value, offsets, [&](Value mine, Value other) {
    return max ? Value(arith::MaximumFOp::create(b, mine, other))
               : Value(arith::AddFOp::create(b, mine, other));
  });
}

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPSHUFFLE_H
