//===- MoekDialect.cpp - The MoE kernel dialect ---------------------------===//

#include "dialects/moek/IR/MoekDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::moek;

#include "dialects/moek/IR/MoekDialect.cpp.inc"
#include "dialects/moek/IR/MoekEnums.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/moek/IR/MoekOps.cpp.inc"

void MoekDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/moek/IR/MoekOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Verifiers: the buffer shapes each kernel relies on.
//===----------------------------------------------------------------------===//

static MemRefType memrefOf(Value value) {
  return cast<MemRefType>(value.getType());
}

/// `name` must be a rank-`rank` buffer (of `element`, when given).
static LogicalResult expectBuffer(Operation *op, StringRef name, Value value,
                                  int64_t rank, Type element = {}) {
  MemRefType type = memrefOf(value);
  if (type.getRank() != rank)
    return op->emitOpError() << name << " must be a rank-" << rank
                             << " buffer, got " << type;
  if (element && type.getElementType() != element)
    return op->emitOpError() << name << " must have element type " << element
                             << ", got " << type.getElementType();
  return success();
}

static bool sameExtent(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static LogicalResult expectExtent(Operation *op, StringRef what, int64_t a,
                                  StringRef other, int64_t b) {
  if (!sameExtent(a, b))
    return op->emitOpError() << what << " (" << a << ") does not match "
                             << other << " (" << b << ")";
  return success();
}

LogicalResult RouteOp::verify() {
  Builder b(getContext());
  if (failed(expectBuffer(*this, "x", getX(), 2)) ||
      failed(expectBuffer(*this, "w_gate", getWGate(), 2)) ||
      failed(expectBuffer(*this, "weights", getWeights(), 2, b.getF32Type())) ||
      failed(expectBuffer(*this, "indices", getIndices(), 2, b.getI32Type())))
    return failure();
  if (memrefOf(getWGate()).isDynamicDim(1))
    return emitOpError() << "w_gate must have a static number of experts";
  return expectExtent(*this, "weights dimension 1", memrefOf(getWeights()).getDimSize(1),
                      "top_k", getTopK());
}

LogicalResult RankAssignmentsOp::verify() {
  Builder b(getContext());
  if (failed(expectBuffer(*this, "indices", getIndices(), 2, b.getI32Type())) ||
      failed(expectBuffer(*this, "ranks", getRanks(), 2, b.getI32Type())) ||
      failed(expectBuffer(*this, "counts", getCounts(), 1, b.getI32Type())))
    return failure();
  if (memrefOf(getCounts()).isDynamicDim(0))
    return emitOpError() << "counts must have a static number of experts";
  return success();
}

LogicalResult ExclusiveScanOp::verify() {
  Builder b(getContext());
  if (failed(expectBuffer(*this, "counts", getCounts(), 1, b.getI32Type())) ||
      failed(expectBuffer(*this, "offsets", getOffsets(), 1, b.getI32Type())))
    return failure();
  int64_t experts = memrefOf(getCounts()).getDimSize(0);
  return expectExtent(*this, "offsets size", memrefOf(getOffsets()).getDimSize(0),
                      "experts + 1", ShapedType::isDynamic(experts)
                                         ? experts
                                         : experts + 1);
}

static LogicalResult verifyPlanInputs(Operation *op, Value indices,
                                      Value ranks, Value offsets) {
  Builder b(op->getContext());
  if (failed(expectBuffer(op, "indices", indices, 2, b.getI32Type())) ||
      failed(expectBuffer(op, "ranks", ranks, 2, b.getI32Type())) ||
      failed(expectBuffer(op, "offsets", offsets, 1, b.getI32Type())))
    return failure();
  return success();
}

LogicalResult AssignmentRowsOp::verify() {
  return failure(
      failed(verifyPlanInputs(*this, getIndices(), getRanks(), getOffsets())) ||
      failed(expectBuffer(*this, "rows", getRows(), 2,
                          Builder(getContext()).getI32Type())));
}

LogicalResult RowAssignmentsOp::verify() {
  return failure(
      failed(verifyPlanInputs(*this, getIndices(), getRanks(), getOffsets())) ||
      failed(expectBuffer(*this, "owners", getOwners(), 1,
                          Builder(getContext()).getI32Type())));
}

LogicalResult GatherRowsOp::verify() {
  return failure(failed(expectBuffer(*this, "x", getX(), 2)) ||
                 failed(expectBuffer(*this, "rows", getRows(), 2)) ||
                 failed(expectBuffer(*this, "out", getOut(), 2)));
}

LogicalResult GroupedMatmulOp::verify() {
  if (failed(expectBuffer(*this, "a", getA(), 2)) ||
      failed(expectBuffer(*this, "b", getB(), 3)) ||
      failed(expectBuffer(*this, "offsets", getOffsets(), 1)) ||
      failed(expectBuffer(*this, "c", getC(), 2)))
    return failure();
  if (static_cast<bool>(getFirstExpert()) != static_cast<bool>(getLastExpert()))
    return emitOpError() << "first_expert and last_expert go together";
  bool scatter = getEpilogue() == Epilogue::scatter_add;
  if ((getGather() || scatter) && !getOwners())
    return emitOpError() << "a gather prologue or a scatter_add epilogue "
                            "needs the owners map";
  if (scatter && !getWeights())
    return emitOpError() << "a scatter_add epilogue needs the weights";
  MemRefType b = memrefOf(getB());
  int64_t n = b.getDimSize(2);
  if (failed(expectExtent(*this, "a dimension 1 (K)",
                          memrefOf(getA()).getDimSize(1), "b dimension 1 (K)",
                          b.getDimSize(1))))
    return failure();
  bool glu = getEpilogue() == Epilogue::silu_glu ||
             getEpilogue() == Epilogue::gelu_glu;
  if (glu && n % 2 != 0)
    return emitOpError() << "a GLU epilogue needs an even N, got " << n;
  return expectExtent(*this, "c dimension 1", memrefOf(getC()).getDimSize(1),
                      glu ? "half of b dimension 2" : "b dimension 2",
                      glu ? n / 2 : n);
}

LogicalResult GluOp::verify() {
  if (failed(expectBuffer(*this, "h", getH(), 2)) ||
      failed(expectBuffer(*this, "out", getOut(), 2)))
    return failure();
  int64_t twoF = memrefOf(getH()).getDimSize(1);
  return expectExtent(*this, "out dimension 1", memrefOf(getOut()).getDimSize(1),
                      "half of h dimension 1", twoF / 2);
}

LogicalResult CombineRowsOp::verify() {
  return failure(
      failed(expectBuffer(*this, "expert_out", getExpertOut(), 2)) ||
      failed(expectBuffer(*this, "weights", getWeights(), 2)) ||
      failed(expectBuffer(*this, "rows", getRows(), 2)) ||
      failed(expectBuffer(*this, "y", getY(), 2)));
}

//===----------------------------------------------------------------------===//
// Backward kernels
//===----------------------------------------------------------------------===//

static LogicalResult expectExpertRange(Operation *op, Value first,
                                       Value last) {
  if (static_cast<bool>(first) != static_cast<bool>(last))
    return op->emitOpError() << "first_expert and last_expert go together";
  return success();
}

static int64_t extent(Value value, int64_t dim) {
  return memrefOf(value).getDimSize(dim);
}

LogicalResult ExpertLoadsOp::verify() {
  Builder b(getContext());
  if (failed(expectBuffer(*this, "offsets", getOffsets(), 1, b.getI32Type())) ||
      failed(expectBuffer(*this, "loads", getLoads(), 1, b.getI32Type())))
    return failure();
  int64_t experts = extent(getLoads(), 0);
  return expectExtent(*this, "offsets size", extent(getOffsets(), 0),
                      "experts + 1",
                      ShapedType::isDynamic(experts) ? experts : experts + 1);
}

LogicalResult GroupedGluBackwardOp::verify() {
  Builder b(getContext());
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  if (failed(expectBuffer(*this, "dy", getDy(), 2)) ||
      failed(expectBuffer(*this, "w2", getW2(), 3)) ||
      failed(expectBuffer(*this, "offsets", getOffsets(), 1, i32)) ||
      failed(expectBuffer(*this, "owners", getOwners(), 1, i32)) ||
      failed(expectBuffer(*this, "weights", getWeights(), 2, f32)) ||
      failed(expectBuffer(*this, "gate_up", getGateUp(), 2)) ||
      failed(expectBuffer(*this, "act", getAct(), 2)) ||
      failed(expectBuffer(*this, "dh", getDh(), 2)) ||
      failed(expectBuffer(*this, "d_weights", getDWeights(), 2, f32)) ||
      failed(expectExpertRange(*this, getFirstExpert(), getLastExpert())))
    return failure();
  int64_t ffn = extent(getW2(), 1);
  if (failed(expectExtent(*this, "dy dimension 1 (H)", extent(getDy(), 1),
                          "w2 dimension 2 (H)", extent(getW2(), 2))) ||
      failed(expectExtent(*this, "gate_up dimension 1 (2F)",
                          extent(getGateUp(), 1), "twice w2 dimension 1 (F)",
                          2 * ffn)) ||
      failed(expectExtent(*this, "dh dimension 1 (2F)", extent(getDh(), 1),
                          "twice w2 dimension 1 (F)", 2 * ffn)) ||
      failed(expectExtent(*this, "act dimension 1 (F)", extent(getAct(), 1),
                          "w2 dimension 1 (F)", ffn)) ||
      failed(expectExtent(*this, "weights dimension 1 (k)",
                          extent(getWeights(), 1), "top_k", getTopK())) ||
      failed(expectExtent(*this, "d_weights dimension 1 (k)",
                          extent(getDWeights(), 1), "top_k", getTopK())))
    return failure();
  return success();
}

LogicalResult GroupedWeightGradOp::verify() {
  Builder b(getContext());
  Type i32 = b.getI32Type();
  if (failed(expectBuffer(*this, "lhs", getLhs(), 2)) ||
      failed(expectBuffer(*this, "rhs", getRhs(), 2)) ||
      failed(expectBuffer(*this, "offsets", getOffsets(), 1, i32)) ||
      failed(expectBuffer(*this, "owners", getOwners(), 1, i32)) ||
      failed(expectBuffer(*this, "dw", getDw(), 3)) ||
      failed(expectExpertRange(*this, getFirstExpert(), getLastExpert())))
    return failure();
  if (getWeights() &&
      failed(expectBuffer(*this, "weights", getWeights(), 2, b.getF32Type())))
    return failure();
  if (getGatherLhs() && getGatherRhs())
    return emitOpError() << "gathers both lhs and rhs: one side of a weight "
                            "gradient is grouped rows";
  return failure(
      failed(expectExtent(*this, "lhs dimension 1", extent(getLhs(), 1),
                          "dw dimension 1", extent(getDw(), 1))) ||
      failed(expectExtent(*this, "rhs dimension 1", extent(getRhs(), 1),
                          "dw dimension 2", extent(getDw(), 2))));
}

LogicalResult GroupedInputGradOp::verify() {
  Builder b(getContext());
  Type i32 = b.getI32Type();
  if (failed(expectBuffer(*this, "a", getA(), 2)) ||
      failed(expectBuffer(*this, "b", getB(), 3)) ||
      failed(expectBuffer(*this, "offsets", getOffsets(), 1, i32)) ||
      failed(expectBuffer(*this, "owners", getOwners(), 1, i32)) ||
      failed(expectBuffer(*this, "dx", getDx(), 2, b.getF32Type())) ||
      failed(expectExpertRange(*this, getFirstExpert(), getLastExpert())))
    return failure();
  return failure(
      failed(expectExtent(*this, "a dimension 1 (N)", extent(getA(), 1),
                          "b dimension 2 (N)", extent(getB(), 2))) ||
      failed(expectExtent(*this, "dx dimension 1 (K)", extent(getDx(), 1),
                          "b dimension 1 (K)", extent(getB(), 1))));
}

LogicalResult RouteBackwardOp::verify() {
  Builder b(getContext());
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  if (failed(expectBuffer(*this, "x", getX(), 2)) ||
      failed(expectBuffer(*this, "w_gate", getWGate(), 2)) ||
      failed(expectBuffer(*this, "indices", getIndices(), 2, i32)) ||
      failed(expectBuffer(*this, "offsets", getOffsets(), 1, i32)) ||
      failed(expectBuffer(*this, "d_weights", getDWeights(), 2, f32)) ||
      failed(expectBuffer(*this, "dx", getDx(), 2, f32)) ||
      failed(expectBuffer(*this, "dw_gate", getDwGate(), 2, f32)) ||
      failed(expectBuffer(*this, "aux", getAux(), 0, f32)))
    return failure();
  if (memrefOf(getWGate()).isDynamicDim(1) ||
      memrefOf(getIndices()).isDynamicDim(1))
    return emitOpError() << "w_gate and indices must have a static number "
                            "of experts and slots";
  return failure(
      failed(expectExtent(*this, "offsets size", extent(getOffsets(), 0),
                          "experts + 1", extent(getWGate(), 1) + 1)) ||
      failed(expectExtent(*this, "dw_gate dimension 1 (E)",
                          extent(getDwGate(), 1), "w_gate dimension 1 (E)",
                          extent(getWGate(), 1))) ||
      failed(expectExtent(*this, "d_weights dimension 1 (k)",
                          extent(getDWeights(), 1), "indices dimension 1 (k)",
                          extent(getIndices(), 1))));
}
