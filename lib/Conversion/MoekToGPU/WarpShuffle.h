//===- WarpShuffle.h - Reductions across a warp's lanes ---------*- C++ -*-===//
//
// The XOR-butterfly reduction the GPU kernels share: attention's row max and
// sum (a warp's, or an mma.sync quad's), RMSNorm's sum of squares, the GLU
// backward's <g, a>; and the quad transpose of the GEMMs' 16-byte stores.
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

/// A 4 x 4 transpose across the lanes of a quad (lanes 4q .. 4q + 3, all
/// active): the lane at `quadPosition` p (an index, lane % 4) holds
/// `values[i]`, i = 0..3 (i32 or f32), and gets back lane i's `values[p]` at
/// i. Two butterfly steps (offsets 1, then 2), each trading two values: for
/// the pairs i and i | bit, the lane whose p has `bit` keeps the high one
/// and takes its partner's low one in place of its own, the other the
/// reverse.
inline SmallVector<Value> transposeQuad(ImplicitLocOpBuilder &b,
                                        Value quadPosition,
                                        ArrayRef<Value> values) {
  SmallVector<Value> v(values.begin(), values.end());
  for (int32_t bit : {1, 2}) {
    Value high = arith::CmpIOp::create(
        b, arith::CmpIPredicate::ne,
        arith::AndIOp::create(b, quadPosition,
                              arith::ConstantIndexOp::create(b, bit)),
        arith::ConstantIndexOp::create(b, 0));
    for (int32_t low = 0; low < 4; ++low) {
      if (low & bit)
        continue;
      int32_t up = low | bit;
      Value send = arith::SelectOp::create(b, high, v[low], v[up]);
      Value received =
          gpu::ShuffleOp::create(b, send, bit, 32, gpu::ShuffleMode::XOR)
              .getShuffleResult();
      v[low] = arith::SelectOp::create(b, high, received, v[low]);
      v[up] = arith::SelectOp::create(b, high, v[up], received);
    }
  }
  return v;
}

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPSHUFFLE_H
