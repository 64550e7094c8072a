//===- KernelBuilding.h - Building moek kernels from moe ops ----*- C++ -*-===//
//
// What moe-lower-to-kernels and moe-zero-buffer-fusion share: buffers for
// tensors, and the routing plan a lowered moe.gate leaves behind.
//
// Kernels work on buffers while the program around them is still on
// tensors: inputs are viewed with bufferization.to_buffer (read only),
// results are fresh memref.allocs wrapped back with bufferization.to_tensor,
// and one-shot bufferization joins the two later.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_KERNELBUILDING_H
#define MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_KERNELBUILDING_H

#include "dialects/moe/IR/MoeOps.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::moe {

/// The attribute that names a buffer `CATEGORY.NAME` for the memory plan.
constexpr const char *kBufferNameAttr = "moe.buffer";

/// A read-only buffer view of `tensor`.
Value readBuffer(ImplicitLocOpBuilder &b, Value tensor);

/// A fresh buffer of `shape` x `element`, dynamic extents from `dynamic`,
/// named `name` ("routing.weights") for the memory plan.
Value allocBuffer(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                  Type element, ValueRange dynamic, StringRef name);

/// The tensor a written buffer becomes.
Value asTensor(ImplicitLocOpBuilder &b, Value buffer);

/// accumulator = source, widened to f32 (a copy when both are f32).
void widenInto(ImplicitLocOpBuilder &b, Value source, Value accumulator);

/// result = accumulator, narrowed to the result's storage type (nothing when
/// they are the same buffer).
void narrowInto(ImplicitLocOpBuilder &b, Value accumulator, Value result);

/// Makes every named buffer of `root` whose dynamic sizes are now known
/// (constants, or dims of statically shaped buffers behind casts) static,
/// cast back to its type: the canonicalizer would fold them and drop their
/// names, which the memory plan reports.
void makeKnownAllocsStatic(Operation *root);

/// The extent `dim` of `buffer` as an index value.
Value extentOf(ImplicitLocOpBuilder &b, Value buffer, int64_t dim);

/// Calls `emit(first, last)` for the experts' chunks of `chunk` experts
/// each ([first, last) index values): once over all `experts` if a chunk
/// holds them all, else inside an scf.for over the chunks. The GEMMs of one
/// chunk run back to back on a buffer sized for it.
void forEachExpertChunk(ImplicitLocOpBuilder &b, int64_t experts,
                        int64_t chunk,
                        function_ref<void(Value first, Value last)> emit);

/// The routing plan of a lowered gate, as tensors: the selected experts
/// indices[T,k], each assignment's rank within its expert ranks[T,k] (-1
/// when dropped) and each expert's first grouped row offsets[E+1].
struct RoutingPlan {
  Value indices, ranks, offsets;
  int64_t topK = 0;
  int64_t experts = 0;
};

/// The rest of a routing plan once the selected experts `indices` are
/// written (shape `shape`, dynamic extents `dynamic`): each assignment's
/// rank within its expert (moek.rank_assignments, with `capacityFactor`;
/// its per-slice scratch with `scratchBuffers`), the `experts` loads and
/// their exclusive scan. Returns the routing value of `routingType` (the
/// unrealized_conversion_cast planOf reads back).
Value planRouting(ImplicitLocOpBuilder &b, Value indices,
                  ArrayRef<int64_t> shape, ValueRange dynamic, int64_t experts,
                  FloatAttr capacityFactor, bool scratchBuffers,
                  Type routingType);

/// Lowers `gate` to moek.route, moek.rank_assignments and
/// moek.exclusive_scan. Its routing result becomes an
/// unrealized_conversion_cast of (indices, ranks, offsets), which planOf
/// reads back.
/// With `scratchBuffers` the router gets an f32 [T, E] buffer for its scores
/// (the GPU's scores GEMM writes them) and the rank assignments their
/// per-slice counts (rankPartialsBuffer), allocated here so that the memory
/// plan counts them.
void lowerGateToKernels(GateOp gate, RewriterBase &rewriter,
                        bool scratchBuffers);

/// The i32 [ceil(T / 64), E] scratch of moek.rank_assignments over
/// `indices` [T, k] (T may be dynamic), named routing.rank_partials.
Value rankPartialsBuffer(ImplicitLocOpBuilder &b, Value indices,
                         int64_t experts);

/// Derives the buffers consumers need from routing plans, once each.
class RoutingPlans {
public:
  /// The plan behind `routing`, or an error on `user` when the routing does
  /// not come from a gate lowered in the same function.
  FailureOr<RoutingPlan> planOf(Operation *user, Value routing);

  /// rows[T,k]: the grouped row of each assignment (-1 when dropped).
  Value assignmentRows(RewriterBase &rewriter, Value routing);

  /// owners[T*k]: the assignment t*k+j on each grouped row (-1 if none).
  Value rowOwners(RewriterBase &rewriter, Value routing);

  /// Erases the plan casts; fails (with an error) where a routing value is
  /// used by anything but the lowered ops.
  LogicalResult eraseCasts(Operation *root, RewriterBase &rewriter);

private:
  llvm::DenseMap<Value, Value> rows, owners;
};

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_KERNELBUILDING_H
