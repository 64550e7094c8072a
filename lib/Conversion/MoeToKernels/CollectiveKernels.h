//===- CollectiveKernels.h - Expert-parallel moe ops to moek ----*- C++ -*-===//
//
// The lowering of what moe-expert-parallel makes: moe.all_to_all becomes the
// exchange of its split sizes and the payload all-to-all into a buffer sized
// by them; moe.local_routing becomes the routing plan of the received rows
// (the same plan a lowered moe.gate leaves, so the local experts lower and
// fuse like any layer).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_COLLECTIVEKERNELS_H
#define MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_COLLECTIVEKERNELS_H

#include "lib/Conversion/MoeToKernels/KernelBuilding.h"

namespace mlir::moe {

/// moek.exchange_counts, then moek.all_to_all into a buffer of the received
/// rows: the static capacity of the result, else the sum of the received
/// counts or, with `deviceSplitSizes`, receivedBound (the host reads no
/// count).
void lowerAllToAllToKernels(AllToAllOp op, RewriterBase &rewriter,
                            bool deviceSplitSizes);

/// moek.received_assignments (indices, unit weights), then the routing-plan
/// kernels of a gate: rank_assignments (dropless) and exclusive_scan. The
/// routing result becomes the plan cast RoutingPlans::planOf reads. With
/// `scratchBuffers`, rank_assignments gets its GPU scratch (planned). With
/// `deviceSplitSizes` and counts from a moe.all_to_all, the plan covers
/// that all-to-all's receivedBound rows, those past the counts no expert's.
void lowerLocalRoutingToKernels(LocalRoutingOp op, RewriterBase &rewriter,
                                bool scratchBuffers, bool deviceSplitSizes);

/// moek.all_reduce into a fresh buffer.
void lowerAllReduceToKernels(AllReduceOp op, RewriterBase &rewriter);

/// moek.slots_to_rows / moek.rows_to_slots through the assignment rows of
/// the routing plan.
LogicalResult lowerSlotsToRows(SlotsToRowsOp op, RoutingPlans &plans,
                               RewriterBase &rewriter);
LogicalResult lowerRowsToSlots(RowsToSlotsOp op, RoutingPlans &plans,
                               RewriterBase &rewriter);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_COLLECTIVEKERNELS_H
