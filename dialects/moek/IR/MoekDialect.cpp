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
