//===- CollectiveCalls.h - moek collectives as moert calls ------*- C++ -*-===//
//
// On the CPU a collective is a call of moert's versioned entry points
// (moert.h, "Communicators and collectives"), which run MPI_Alltoall(v)
// over the world mpirun made; the routing of the received rows is loops.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_COLLECTIVECALLS_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_COLLECTIVECALLS_H

#include "dialects/moek/IR/MoekDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::moek {

/// Whose entry points the calls name: the CPU's (moert_*_v1, MPI, host
/// pointers) or the CUDA backend's (moert_cuda_*_v1, NCCL, device
/// pointers). Both take the same arguments.
enum class CollectiveABI { Cpu, Cuda };

/// A call of moert_exchange_counts_v1.
void lowerExchangeCounts(ExchangeCountsOp op, ImplicitLocOpBuilder &b,
                         CollectiveABI abi = CollectiveABI::Cpu);
/// A call of moert_all_reduce_sum_i32_v1.
void lowerAllReduce(AllReduceOp op, ImplicitLocOpBuilder &b,
                    CollectiveABI abi = CollectiveABI::Cpu);
/// A call of moert_all_to_all_v1.
void lowerAllToAll(AllToAllOp op, ImplicitLocOpBuilder &b,
                   CollectiveABI abi = CollectiveABI::Cpu);
/// Calls of moert_all_to_all_start_v1 and moert_event_wait_v1.
void lowerAllToAllStart(AllToAllStartOp op, ImplicitLocOpBuilder &b,
                        CollectiveABI abi = CollectiveABI::Cpu);
void lowerAllToAllWait(AllToAllWaitOp op, ImplicitLocOpBuilder &b,
                       CollectiveABI abi = CollectiveABI::Cpu);
/// Loops: each segment's rows get its local expert and weight 1.
void lowerReceivedAssignments(ReceivedAssignmentsOp op,
                              ImplicitLocOpBuilder &b);

/// Loops over the assignments: values to and from their rows.
void lowerSlotsToRows(SlotsToRowsOp op, ImplicitLocOpBuilder &b);
void lowerRowsToSlots(RowsToSlotsOp op, ImplicitLocOpBuilder &b);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_COLLECTIVECALLS_H
