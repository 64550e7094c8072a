//===- RouteGPU.h - The router's per-token kernel on CUDA -------*- C++ -*-===//
//
// moek.route after its scores GEMM: in the GEMM's own epilogue where a
// warp's tile of the sm_90a kernel spans every expert, else a warp per
// token (RouteGPU.cpp) where the experts fit in the lanes' registers, else
// the shared per-token body (KernelBodies.cpp) on a thread per token.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_ROUTEGPU_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_ROUTEGPU_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// The most experts a lane of the warp kernel keeps: 8, so E <= 256.
constexpr int64_t kMaxRouteExpertsPerLane = 8;

/// Whether the warp kernel takes `op`: E <= 32 * kMaxRouteExpertsPerLane
/// and no group-limited routing (whose two-level selection stays on the
/// per-token body).
bool canRouteByWarp(RouteOp op);

/// The probabilities and the top-k of every token from `scores` (f32
/// [T, E]), a warp per token: lane l keeps experts l, l + 32, ...; the
/// softmax's max and sum and each slot's argmax are butterflies of
/// shuffles. Selects what the per-token body selects (ties and NaN keys
/// included); the softmax's sum is added in another order, so the weights
/// may differ from the CPU's in the last bits.
void lowerRouteByWarp(RouteOp op, moe::LoopBuilder &lb, Value scores);

/// The most slots the scores GEMM's epilogue routes (each lane of a quad
/// keeps a quarter of them in registers until the end).
constexpr int64_t kMaxEpilogueSlots = 16;

/// Whether the scores GEMM's epilogue can route `op`'s tokens itself, a
/// warp's tile spanning `columns` of the scores: the warp kernel's rules,
/// all E experts in those columns and at most kMaxEpilogueSlots slots.
bool canRouteInScoresEpilogue(RouteOp op, int64_t columns);

/// The router's top-k in the scores GEMM's epilogue, on its f32
/// accumulators (laid out as `tile` says, one warp's tile spanning every
/// expert): a quad of lanes routes each row together, as a warp routes a
/// token in lowerRouteByWarp, with the same selection; the scores never go
/// to memory. Rows past `tile.rows` store nothing.
void emitRouteFromAccumulators(RouteOp op, moe::LoopBuilder &lb,
                               const FragmentTile &tile, ArrayRef<Value> acc);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_ROUTEGPU_H
