//===- KernelBodies.h - What CPU and GPU kernel lowerings share -*- C++ -*-===//
//
// The arithmetic of the moek kernels, written once: activations, the
// router's per-token body, the capacity rule. moek-lower-to-loops runs these
// bodies in loops; moek-lower-to-gpu runs them one item per GPU thread.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_KERNELBODIES_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_KERNELBODIES_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// Where a kernel's scratch lives: on the stack (a GPU thread's private
/// memory) or on the heap (the CPU, where a large E or F must not overflow
/// the stack; the allocation is marked kHeapScratchAttr and its owner frees
/// it before the function returns).
enum class ScratchPlace { Stack, Heap };
constexpr llvm::StringLiteral kHeapScratchAttr = "moek.heap_scratch";

/// Scratch memory of a static shape.
Value scratch(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape, Type element,
              ScratchPlace place);
int64_t staticDim(Value buffer, int64_t dim);
Value asIndex(ImplicitLocOpBuilder &b, Value i32);

Value silu(moe::LoopBuilder &lb, Value x);
/// The tanh form of gelu.
Value geluTanh(moe::LoopBuilder &lb, Value x);
Value activate(moe::LoopBuilder &lb, Value gate, bool gelu);

/// Whether a grouped matmul's epilogue is a GLU (its N columns are the gate
/// and up halves, its output N / 2 wide).
inline bool isGlu(Epilogue epilogue) {
  return epilogue == Epilogue::silu_glu || epilogue == Epilogue::gelu_glu;
}

/// Among experts [0, count) with available[e] != 0, the index of the largest
/// key (ties to the lower index), or -1 if none is available.
Value argmaxAvailable(moe::LoopBuilder &lb, Value keys, Value available,
                      Value count);

/// C = min(T, max(1, ceil(cf*T*k/E))) as an index, the rule of
/// moe::expertCapacity; the dropless router gets C = T, which never binds.
Value emitCapacity(moe::LoopBuilder &lb, double cf, Value tokens, int64_t topK,
                   int64_t experts);

/// Per-token scratch of the router.
struct RouteScratch {
  Value probs, keys, available; // [E]
  Value groupKeys, groupFree;   // [n_group], when group-limited
};
RouteScratch makeRouteScratch(ImplicitLocOpBuilder &b, RouteOp op,
                              ScratchPlace place);

/// The router for token t: scores, probabilities, group limits, top-k into
/// indices[t, :] and weights[t, :]. With `scores` (an f32 [T, E] buffer), the
/// scores are read from scores[t, :] instead of computed from x and w_gate.
void emitRouteToken(moe::LoopBuilder &lb, RouteOp op, const RouteScratch &s,
                    Value t, Value scores = nullptr);

/// offsets[0] = 0, offsets[e+1] = offsets[e] + counts[e], in order (the
/// loops' scan, and the GPU's for many or dynamic experts, on one thread).
void emitExclusiveScan(moe::LoopBuilder &lb, Value counts, Value offsets);

/// The routing plan's buffers that its derived ones are made from:
/// indices and ranks [T, k], offsets [E+1].
struct RankedAssignments {
  Value indices, ranks, offsets;
};

/// The ranked assignments a derived-buffer op (moek.assignment_rows,
/// moek.row_assignments) reads.
template <typename DerivedOp>
RankedAssignments rankedAssignmentsOf(DerivedOp op) {
  return {op.getIndices(), op.getRanks(), op.getOffsets()};
}

/// The grouped row offsets[e] + rank of assignment (t, j), and whether it
/// was kept (rank >= 0). Its expert e is one of [0, E] (E: no expert's row
/// of a bound-sized received buffer), so offsets[e] is always in bounds.
std::pair<Value, Value> placeAssignment(moe::LoopBuilder &lb,
                                        const RankedAssignments &plan, Value t,
                                        Value j);

/// rows[t, j]: the grouped row of assignment (t, j), or -1 if dropped.
void emitAssignmentRow(moe::LoopBuilder &lb, const RankedAssignments &plan,
                       Value rows, Value t, Value j);

/// owners[row of (t, j)] = t*k + j when the assignment was kept.
void emitRowOwner(moe::LoopBuilder &lb, const RankedAssignments &plan,
                  Value owners, Value t, Value j);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_KERNELBODIES_H
