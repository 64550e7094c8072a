//===- BackwardLoops.h - The backward kernels as loops ----------*- C++ -*-===//
//
// moek-lower-to-loops for the training kernels: every grouped row reads its
// token and output gradient through the owners map, weight gradients reduce
// over each expert's rows (varlen-K), and the input gradient is added into
// token order; accumulation is f32.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_BACKWARDLOOPS_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_BACKWARDLOOPS_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// act(g) and act'(g) of a GLU's gate half, f32.
std::pair<Value, Value> activationAndSlope(moe::LoopBuilder &lb, Value gate,
                                           bool gelu);

/// Grouped row r of moek.grouped_glu_backward: its token t, slot j and
/// routing weight w (f32).
struct GluBackwardRow {
  Value t, j, w;
};
GluBackwardRow gluBackwardRowOf(moe::LoopBuilder &lb, GroupedGluBackwardOp op,
                                Value r);

/// The GLU backward of one column, f32: from g, the pre-activation's gate
/// and up halves and the routing weight w, the weighted activation w*a,
/// dh's two halves, and g*a (the term of the gate-weight gradient).
struct GluBackwardValues {
  Value weightedAct, dGate, dUp, weightTerm;
};
GluBackwardValues gluBackwardValues(moe::LoopBuilder &lb, bool gelu, Value g,
                                    Value gate, Value up, Value w);

/// Column f of the row at `local` in the row buffers: writes a and both
/// halves of dh, returns g * a (the term of the gate-weight gradient). The
/// CPU loops run it over the row; on the GPU a warp's lanes share a row.
Value emitGluBackwardElement(moe::LoopBuilder &lb, GroupedGluBackwardOp op,
                             Value local, Value f, Value w);

/// One grouped row r (at `local` in the row buffers), sequentially.
void emitGluBackwardRow(moe::LoopBuilder &lb, GroupedGluBackwardOp op, Value r,
                        Value local);

/// Token t of moek.route_backward, with per-token scratch p and dp [E]:
/// adds to dx[t] and dw_gate (atomically when `atomicWeightGrad`, for GPU
/// threads) and returns the token's share of the aux loss (f32).
/// With `scores` (f32 [T, E], x . w_gate computed before), the token reads
/// its scores there, writes its score gradients ds over them (or, with
/// `narrowDs` ([T, E], bf16/f16), rounded into that instead) and leaves dx
/// and dw_gate to the caller.
Value emitRouteBackwardToken(moe::LoopBuilder &lb, RouteBackwardOp op, Value p,
                             Value dp, Value t, bool atomicWeightGrad,
                             Value scores = {}, Value narrowDs = {});

void lowerExpertLoads(ExpertLoadsOp op, ImplicitLocOpBuilder &b);
void lowerGroupedGluBackward(GroupedGluBackwardOp op, ImplicitLocOpBuilder &b);
void lowerGroupedWeightGrad(GroupedWeightGradOp op, ImplicitLocOpBuilder &b,
                            ImplicitLocOpBuilder &hoisted);
void lowerRouteBackward(RouteBackwardOp op, ImplicitLocOpBuilder &b,
                        ImplicitLocOpBuilder &hoisted);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOLOOPS_BACKWARDLOOPS_H
