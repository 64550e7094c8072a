//===- MoeOps.cpp - Operations of the moe dialect -------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "dialects/moe/IR/MoeShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::moe;

#include "dialects/moe/IR/MoeEnums.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/moe/IR/MoeOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Verifier helpers: every message names the operand and the rule.
//===----------------------------------------------------------------------===//

static std::string formatExtent(int64_t extent) {
  return ShapedType::isDynamic(extent) ? "?" : std::to_string(extent);
}

/// `name` must be a ranked tensor of `rank` dimensions laid out as `layout`,
/// whose size in bytes (its static extents) fits in 64 bits.
static LogicalResult verifyRank(Operation *op, StringRef name, Type type,
                                int64_t rank, StringRef layout) {
  auto tensor = cast<RankedTensorType>(type);
  if (tensor.getRank() != rank)
    return op->emitOpError() << name << " must be a rank-" << rank
                             << " tensor " << layout << ", got " << type;
  std::optional<int64_t> elements = checkedElementCount(tensor.getShape());
  if (!elements ||
      !checkedByteCount(*elements,
                        elementBitsForSizes(tensor.getElementType())))
    return op->emitOpError() << name << " (" << type
                             << ") is too large: its size in bytes does not "
                                "fit in 64 bits";
  return success();
}

static bool isStorageFloat(Type type) {
  return type.isF32() || type.isBF16() || type.isF16();
}

/// Storage element types: f32, bf16, f16.
static LogicalResult verifyStorageType(Operation *op, StringRef name,
                                       Type type) {
  Type element = cast<RankedTensorType>(type).getElementType();
  if (!isStorageFloat(element))
    return op->emitOpError() << name
                             << " must have element type f32, bf16 or f16, got "
                             << element;
  return success();
}

/// `name` must have the same element type as `refName`.
static LogicalResult verifySameElement(Operation *op, StringRef name,
                                       Type type, StringRef refName,
                                       Type refType) {
  Type element = cast<RankedTensorType>(type).getElementType();
  Type refElement = cast<RankedTensorType>(refType).getElementType();
  if (element != refElement)
    return op->emitOpError()
           << name << " has element type " << element << " but " << refName
           << " has " << refElement << ": mixed element types are not allowed";
  return success();
}

static LogicalResult verifyElement(Operation *op, StringRef name, Type type,
                                   Type expected) {
  Type element = cast<RankedTensorType>(type).getElementType();
  if (element != expected)
    return op->emitOpError() << name << " must have element type " << expected
                             << ", got " << element;
  return success();
}

/// `what` (an extent of an operand) must agree with `expected`.
static LogicalResult verifyExtent(Operation *op, StringRef what,
                                  int64_t actual, StringRef expectedWhat,
                                  int64_t expected) {
  if (!extentsCompatible(actual, expected))
    return op->emitOpError() << what << " (" << formatExtent(actual)
                             << ") does not match " << expectedWhat << " ("
                             << formatExtent(expected) << ")";
  return success();
}

/// Weights and biases are part of the model: only tokens may be dynamic.
static LogicalResult verifyStaticShape(Operation *op, StringRef name,
                                       Type type) {
  if (!cast<RankedTensorType>(type).hasStaticShape())
    return op->emitOpError() << name
                             << " must have a static shape (only the token "
                                "dimension may be dynamic), got "
                             << type;
  return success();
}

static int64_t dim(Value value, unsigned index) {
  return cast<RankedTensorType>(value.getType()).getDimSize(index);
}

//===----------------------------------------------------------------------===//
// GateOp
//===----------------------------------------------------------------------===//

LogicalResult GateOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyRank(op, "x", getX().getType(), 2, "[T, H]")) ||
      failed(verifyStorageType(op, "x", getX().getType())) ||
      failed(verifyRank(op, "w_gate", getWGate().getType(), 2, "[H, E]")) ||
      failed(verifyStaticShape(op, "w_gate", getWGate().getType())) ||
      failed(verifySameElement(op, "w_gate", getWGate().getType(), "x",
                               getX().getType())))
    return failure();
  int64_t tokens = dim(getX(), 0), hidden = dim(getX(), 1);
  int64_t experts = dim(getWGate(), 1);
  if (failed(verifyExtent(op, "w_gate dimension 0 (H)", dim(getWGate(), 0),
                          "x dimension 1 (H)", hidden)))
    return failure();

  RouterConfig config;
  config.experts = experts;
  config.topK = getTopK();
  config.nGroup = getNGroup();
  config.topkGroup = getTopkGroup();
  config.capacityFactor = getCapacityFactor().convertToDouble();
  config.scaling = getScaling().convertToDouble();
  if (failed(verifyRouterConfig([&] { return emitOpError(); }, config)))
    return failure();
  if (!(getAuxLoss().convertToDouble() >= 0.0))
    return emitOpError() << "aux_loss must be a non-negative coefficient, got "
                         << getAuxLoss().convertToDouble();
  int64_t topK = getTopK();
  if (!ShapedType::isDynamic(tokens)) {
    std::optional<int64_t> assignments = checkedMul(tokens, topK);
    if (!assignments || *assignments > kMaxAssignments)
      return emitOpError() << "x dimension 0 (T = " << tokens
                           << ") times top_k (" << topK
                           << ") exceeds the 2147483647 assignments that the "
                              "i32 routing metadata can index";
  }

  if (Value bias = getBias()) {
    if (failed(verifyRank(op, "bias", bias.getType(), 1, "[E]")) ||
        failed(verifyExtent(op, "bias dimension 0 (E)", dim(bias, 0),
                            "the number of experts", experts)))
      return failure();
    Type biasElement = cast<RankedTensorType>(bias.getType()).getElementType();
    if (!biasElement.isF32() &&
        biasElement != getX().getType().getElementType())
      return emitOpError() << "bias must have element type f32 or that of x ("
                           << getX().getType().getElementType() << "), got "
                           << biasElement;
  }

  auto verifyTokenSlots = [&](StringRef name, Value value,
                              Type element) -> LogicalResult {
    if (failed(verifyRank(op, name, value.getType(), 2, "[T, k]")) ||
        failed(verifyExtent(op, (name + " dimension 0 (T)").str(),
                            dim(value, 0), "x dimension 0 (T)", tokens)) ||
        failed(verifyExtent(op, (name + " dimension 1 (k)").str(),
                            dim(value, 1), "top_k", topK)) ||
        failed(verifyElement(op, name, value.getType(), element)))
      return failure();
    return success();
  };
  Builder b(getContext());
  if (failed(verifyTokenSlots("weights", getWeights(), b.getF32Type())) ||
      failed(verifyTokenSlots("indices", getIndices(), b.getI32Type())))
    return failure();

  RoutingType routing = getRouting().getType();
  if (failed(verifyExtent(op, "routing tokens", routing.getTokens(),
                          "x dimension 0 (T)", tokens)) ||
      failed(verifyExtent(op, "routing experts", routing.getExperts(),
                          "the number of experts of w_gate", experts)) ||
      failed(verifyExtent(op, "routing top_k", routing.getTopK(), "top_k",
                          topK)))
    return failure();
  return success();
}

namespace {
/// Drops routing limits that cannot limit anything: a capacity of at least
/// T (cf >= E/k) and group-limited routing that keeps every group. Later
/// passes then see the simpler, dropless and ungrouped router.
struct DropInertRoutingLimits : OpRewritePattern<GateOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GateOp op,
                                PatternRewriter &rewriter) const override {
    double cf = op.getCapacityFactor().convertToDouble();
    bool inertCapacity =
        cf > 0.0 && !capacityCanDrop(cf, op.getTopK(), op.getNumExperts());
    bool inertGroups =
        op.isGroupLimited() && *op.getNGroup() == *op.getTopkGroup();
    if (!inertCapacity && !inertGroups)
      return failure();
    rewriter.modifyOpInPlace(op, [&] {
      if (inertCapacity)
        op.setCapacityFactor(llvm::APFloat(0.0));
      if (inertGroups) {
        op.removeNGroupAttr();
        op.removeTopkGroupAttr();
      }
    });
    return success();
  }
};
} // namespace

void GateOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                         MLIRContext *context) {
  patterns.add<DropInertRoutingLimits>(context);
}

//===----------------------------------------------------------------------===//
// DispatchOp
//===----------------------------------------------------------------------===//

LogicalResult DispatchOp::verify() {
  Operation *op = getOperation();
  RoutingType routing = getRouting().getType();
  if (failed(verifyRank(op, "x", getX().getType(), 2, "[T, H]")) ||
      failed(verifyStorageType(op, "x", getX().getType())) ||
      failed(verifyExtent(op, "x dimension 0 (T)", dim(getX(), 0),
                          "routing tokens", routing.getTokens())) ||
      failed(verifyRank(op, "result", getDispatched().getType(), 2,
                        "[T*k, H]")) ||
      failed(verifySameElement(op, "result", getDispatched().getType(), "x",
                               getX().getType())) ||
      failed(verifyExtent(op, "result dimension 1 (H)",
                          dim(getDispatched(), 1), "x dimension 1 (H)",
                          dim(getX(), 1))))
    return failure();
  int64_t tokens = ShapedType::isDynamic(routing.getTokens())
                       ? dim(getX(), 0)
                       : routing.getTokens();
  return verifyExtent(op, "result dimension 0 (T*k)", dim(getDispatched(), 0),
                      "tokens times top_k",
                      dispatchedRows(tokens, routing.getTopK()));
}

//===----------------------------------------------------------------------===//
// ExpertsOp
//===----------------------------------------------------------------------===//

/// The experts' weights, as moe.experts, moe.expert_gate_up and
/// moe.experts_backward take them: w1 [E, H, 2F] and w2 [E, F, H] (w2 may
/// be absent), static, of the element type of `activations` (named
/// `activationsName`, whose dimension 1 is H), E the routing's experts, 2F
/// even and positive.
static LogicalResult verifyExpertWeights(Operation *op, RoutingType routing,
                                         Value w1, Value w2,
                                         StringRef activationsName,
                                         Value activations) {
  Type activationsType = activations.getType();
  if (failed(verifyRank(op, "w1", w1.getType(), 3, "[E, H, 2F]")) ||
      failed(verifyStaticShape(op, "w1", w1.getType())) ||
      failed(verifySameElement(op, "w1", w1.getType(), activationsName,
                               activationsType)) ||
      (w2 && (failed(verifyRank(op, "w2", w2.getType(), 3, "[E, F, H]")) ||
              failed(verifyStaticShape(op, "w2", w2.getType())) ||
              failed(verifySameElement(op, "w2", w2.getType(),
                                       activationsName, activationsType)))))
    return failure();
  std::string hiddenName = (activationsName + " dimension 1 (H)").str();
  int64_t hidden = dim(activations, 1);
  int64_t twoF = dim(w1, 2);
  if (w2 && (twoF % 2 != 0 || twoF == 0))
    return op->emitOpError() << "w1 dimension 2 (2F) must be even and "
                                "positive (gate and up halves), got "
                             << twoF;
  if (failed(verifyExtent(op, "w1 dimension 0 (E)", dim(w1, 0),
                          "routing experts", routing.getExperts())) ||
      failed(verifyExtent(op, "w1 dimension 1 (H)", dim(w1, 1), hiddenName,
                          hidden)))
    return failure();
  if (!w2)
    return success();
  return failure(
      failed(verifyExtent(op, "w2 dimension 0 (E)", dim(w2, 0),
                          "routing experts", routing.getExperts())) ||
      failed(verifyExtent(op, "w2 dimension 1 (F)", dim(w2, 1),
                          "half of w1 dimension 2 (2F)", twoF / 2)) ||
      failed(verifyExtent(op, "w2 dimension 2 (H)", dim(w2, 2), hiddenName,
                          hidden)));
}

LogicalResult ExpertsOp::verify() {
  Operation *op = getOperation();
  RoutingType routing = getRouting().getType();
  Type tokensType = getTokens().getType();
  if (failed(verifyRank(op, "tokens", tokensType, 2, "[T*k, H]")) ||
      failed(verifyStorageType(op, "tokens", tokensType)) ||
      failed(verifyExtent(op, "tokens dimension 0 (T*k)", dim(getTokens(), 0),
                          "routing tokens times top_k",
                          routing.getDispatchedRows())) ||
      failed(verifyExpertWeights(op, routing, getW1(), getW2(), "tokens",
                                 getTokens())) ||
      failed(verifyRank(op, "result", getOut().getType(), 2, "[T*k, H]")) ||
      failed(verifySameElement(op, "result", getOut().getType(), "tokens",
                               tokensType)) ||
      failed(verifyExtent(op, "result dimension 0 (T*k)", dim(getOut(), 0),
                          "tokens dimension 0 (T*k)", dim(getTokens(), 0))) ||
      failed(verifyExtent(op, "result dimension 1 (H)", dim(getOut(), 1),
                          "tokens dimension 1 (H)", dim(getTokens(), 1))))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// CombineOp
//===----------------------------------------------------------------------===//

LogicalResult CombineOp::verify() {
  Operation *op = getOperation();
  RoutingType routing = getRouting().getType();
  Type outType = getExpertOut().getType();
  Builder b(getContext());
  if (failed(verifyRank(op, "expert_out", outType, 2, "[T*k, H]")) ||
      failed(verifyStorageType(op, "expert_out", outType)) ||
      failed(verifyExtent(op, "expert_out dimension 0 (T*k)",
                          dim(getExpertOut(), 0), "routing tokens times top_k",
                          routing.getDispatchedRows())) ||
      failed(verifyRank(op, "weights", getWeights().getType(), 2, "[T, k]")) ||
      failed(verifyElement(op, "weights", getWeights().getType(),
                           b.getF32Type())) ||
      failed(verifyExtent(op, "weights dimension 0 (T)", dim(getWeights(), 0),
                          "routing tokens", routing.getTokens())) ||
      failed(verifyExtent(op, "weights dimension 1 (k)", dim(getWeights(), 1),
                          "routing top_k", routing.getTopK())) ||
      failed(verifyRank(op, "result", getY().getType(), 2, "[T, H]")) ||
      failed(verifySameElement(op, "result", getY().getType(), "expert_out",
                               outType)) ||
      failed(verifyExtent(op, "result dimension 0 (T)", dim(getY(), 0),
                          "weights dimension 0 (T)", dim(getWeights(), 0))) ||
      failed(verifyExtent(op, "result dimension 0 (T)", dim(getY(), 0),
                          "routing tokens", routing.getTokens())) ||
      failed(verifyExtent(op, "result dimension 1 (H)", dim(getY(), 1),
                          "expert_out dimension 1 (H)",
                          dim(getExpertOut(), 1))))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// SaveForBackwardOp
//===----------------------------------------------------------------------===//

LogicalResult SaveForBackwardOp::inferReturnTypes(
    MLIRContext *, std::optional<Location>, ValueRange operands,
    DictionaryAttr, OpaqueProperties, RegionRange,
    SmallVectorImpl<Type> &inferred) {
  // A residual is its operand: same type.
  llvm::append_range(inferred, operands.getTypes());
  return success();
}

LogicalResult SaveForBackwardOp::verify() {
  if (getValues().empty())
    return emitOpError() << "saves nothing: a residual list needs at least "
                            "one value";
  return success();
}

//===----------------------------------------------------------------------===//
// ExpertsBackwardOp
//===----------------------------------------------------------------------===//

/// `name` must have exactly the type of `refName`.
static LogicalResult verifySameType(Operation *op, StringRef name, Type type,
                                    StringRef refName, Type refType) {
  if (type != refType)
    return op->emitOpError() << name << " has type " << type << " but "
                             << refName << " has " << refType
                             << ": a gradient has the type of its value";
  return success();
}

/// weights-like [T, k] f32 operands of the backward ops.
static LogicalResult verifySlots(Operation *op, StringRef name, Value value,
                                 RoutingType routing, int64_t tokens) {
  Builder b(op->getContext());
  if (failed(verifyRank(op, name, value.getType(), 2, "[T, k]")) ||
      failed(verifyElement(op, name, value.getType(), b.getF32Type())) ||
      failed(verifyExtent(op, (name + " dimension 0 (T)").str(),
                          dim(value, 0), "x dimension 0 (T)", tokens)) ||
      failed(verifyExtent(op, (name + " dimension 1 (k)").str(),
                          dim(value, 1), "routing top_k", routing.getTopK())))
    return failure();
  return success();
}

/// A saved pre-activation: [T*k, 2F] in grouped row order, f32 or the
/// storage type of x.
static LogicalResult verifyGateUp(Operation *op, StringRef name, Value h,
                                  RoutingType routing, int64_t twoF, Value x) {
  Builder b(op->getContext());
  if (failed(verifyRank(op, name, h.getType(), 2, "[T*k, 2F]")))
    return failure();
  Type element = cast<RankedTensorType>(h.getType()).getElementType();
  Type storage = cast<RankedTensorType>(x.getType()).getElementType();
  if (element != b.getF32Type() && element != storage)
    return op->emitOpError()
           << name << " must have element type f32 or that of x (" << storage
           << "), got " << element;
  if (failed(verifyExtent(op, (name + " dimension 0 (T*k)").str(), dim(h, 0),
                          "routing tokens times top_k",
                          routing.getDispatchedRows())) ||
      failed(verifyExtent(op, (name + " dimension 1 (2F)").str(), dim(h, 1),
                          "w1 dimension 2 (2F)", twoF)))
    return failure();
  return success();
}

/// Router probabilities: f32 [T, E].
static LogicalResult verifyProbabilities(Operation *op, StringRef name,
                                         Value probs, int64_t tokens,
                                         int64_t experts) {
  Builder b(op->getContext());
  if (failed(verifyRank(op, name, probs.getType(), 2, "[T, E]")) ||
      failed(verifyElement(op, name, probs.getType(), b.getF32Type())) ||
      failed(verifyExtent(op, (name + " dimension 0 (T)").str(), dim(probs, 0),
                          "x dimension 0 (T)", tokens)) ||
      failed(verifyExtent(op, (name + " dimension 1 (E)").str(), dim(probs, 1),
                          "the number of experts", experts)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// RouterProbabilitiesOp
//===----------------------------------------------------------------------===//

LogicalResult RouterProbabilitiesOp::verify() {
  Operation *op = getOperation();
  Type xType = getX().getType();
  if (failed(verifyRank(op, "x", xType, 2, "[T, H]")) ||
      failed(verifyStorageType(op, "x", xType)) ||
      failed(verifyRank(op, "w_gate", getWGate().getType(), 2, "[H, E]")) ||
      failed(verifyStaticShape(op, "w_gate", getWGate().getType())) ||
      failed(verifySameElement(op, "w_gate", getWGate().getType(), "x",
                               xType)) ||
      failed(verifyExtent(op, "w_gate dimension 0 (H)", dim(getWGate(), 0),
                          "x dimension 1 (H)", dim(getX(), 1))))
    return failure();
  return verifyProbabilities(op, "result", getProbs(), dim(getX(), 0),
                             dim(getWGate(), 1));
}

//===----------------------------------------------------------------------===//
// ExpertGateUpOp
//===----------------------------------------------------------------------===//

LogicalResult ExpertGateUpOp::verify() {
  Operation *op = getOperation();
  RoutingType routing = getRouting().getType();
  Type xType = getX().getType();
  if (failed(verifyRank(op, "x", xType, 2, "[T, H]")) ||
      failed(verifyStorageType(op, "x", xType)) ||
      failed(verifyExtent(op, "x dimension 0 (T)", dim(getX(), 0),
                          "routing tokens", routing.getTokens())) ||
      failed(verifyExpertWeights(op, routing, getW1(), Value(), "x", getX())))
    return failure();
  return verifyGateUp(op, "result", getH(), routing, dim(getW1(), 2), getX());
}

LogicalResult ExpertsBackwardOp::verify() {
  Operation *op = getOperation();
  RoutingType routing = getRouting().getType();
  Type xType = getX().getType();
  if (failed(verifyRank(op, "x", xType, 2, "[T, H]")) ||
      failed(verifyStorageType(op, "x", xType)) ||
      failed(verifyExtent(op, "x dimension 0 (T)", dim(getX(), 0),
                          "routing tokens", routing.getTokens())) ||
      failed(verifyExpertWeights(op, routing, getW1(), getW2(), "x", getX())))
    return failure();
  int64_t tokens = dim(getX(), 0), hidden = dim(getX(), 1);
  int64_t twoF = dim(getW1(), 2);
  if (failed(verifySlots(op, "weights", getWeights(), routing, tokens)) ||
      failed(verifyRank(op, "dy", getDy().getType(), 2, "[T, H]")) ||
      failed(verifySameElement(op, "dy", getDy().getType(), "x", xType)) ||
      failed(verifyExtent(op, "dy dimension 0 (T)", dim(getDy(), 0),
                          "x dimension 0 (T)", tokens)) ||
      failed(verifyExtent(op, "dy dimension 1 (H)", dim(getDy(), 1),
                          "x dimension 1 (H)", hidden)) ||
      failed(verifySameType(op, "dx", getDx().getType(), "x", xType)) ||
      failed(verifySameType(op, "dw1", getDw1().getType(), "w1",
                            getW1().getType())) ||
      failed(verifySameType(op, "dw2", getDw2().getType(), "w2",
                            getW2().getType())) ||
      failed(verifySameType(op, "d_weights", getDWeights().getType(),
                            "weights", getWeights().getType())))
    return failure();
  if (Value gateUp = getGateUp())
    return verifyGateUp(op, "gate_up", gateUp, routing, twoF, getX());
  return success();
}

//===----------------------------------------------------------------------===//
// GateBackwardOp
//===----------------------------------------------------------------------===//

LogicalResult GateBackwardOp::verify() {
  Operation *op = getOperation();
  RoutingType routing = getRouting().getType();
  Type xType = getX().getType();
  if (failed(verifyRank(op, "x", xType, 2, "[T, H]")) ||
      failed(verifyStorageType(op, "x", xType)) ||
      failed(verifyExtent(op, "x dimension 0 (T)", dim(getX(), 0),
                          "routing tokens", routing.getTokens())) ||
      failed(verifyRank(op, "w_gate", getWGate().getType(), 2, "[H, E]")) ||
      failed(verifyStaticShape(op, "w_gate", getWGate().getType())) ||
      failed(verifySameElement(op, "w_gate", getWGate().getType(), "x",
                               xType)) ||
      failed(verifyExtent(op, "w_gate dimension 0 (H)", dim(getWGate(), 0),
                          "x dimension 1 (H)", dim(getX(), 1))) ||
      failed(verifyExtent(op, "w_gate dimension 1 (E)", dim(getWGate(), 1),
                          "routing experts", routing.getExperts())) ||
      failed(verifySlots(op, "d_weights", getDWeights(), routing,
                         dim(getX(), 0))) ||
      failed(verifySameType(op, "dx", getDx().getType(), "x", xType)) ||
      failed(verifySameType(op, "dw_gate", getDwGate().getType(), "w_gate",
                            getWGate().getType())))
    return failure();
  if (Value dxIn = getDxIn())
    if (failed(verifySameType(op, "dx_in", dxIn.getType(), "x", xType)))
      return failure();
  if (Value probs = getProbs())
    if (failed(verifyProbabilities(op, "probs", probs, dim(getX(), 0),
                                   routing.getExperts())))
      return failure();
  if (getGroupRanks() < 1)
    return emitOpError() << "group_ranks must be at least 1, got "
                         << getGroupRanks();
  if (Value loads = getGroupLoads()) {
    Builder b(getContext());
    if (failed(verifyRank(op, "group_loads", loads.getType(), 1, "[E]")) ||
        failed(verifyElement(op, "group_loads", loads.getType(),
                             b.getI32Type())) ||
        failed(verifyExtent(op, "group_loads dimension 0 (E)", dim(loads, 0),
                            "routing experts", routing.getExperts())))
      return failure();
  }
  auto aux = cast<RankedTensorType>(getAux().getType());
  if (aux.getRank() != 0 || !aux.getElementType().isF32())
    return emitOpError() << "aux must be a scalar tensor<f32>, got " << aux;
  if (!(getAuxLoss().convertToDouble() >= 0.0))
    return emitOpError() << "aux_loss must be a non-negative coefficient, got "
                         << getAuxLoss().convertToDouble();
  if (getScaling().convertToDouble() <= 0.0)
    return emitOpError() << "scaling must be positive, got "
                         << getScaling().convertToDouble();
  return success();
}

//===----------------------------------------------------------------------===//
// ExpertLoadsOp
//===----------------------------------------------------------------------===//

LogicalResult ExpertLoadsOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  if (failed(verifyRank(op, "loads", getLoads().getType(), 1, "[E]")) ||
      failed(verifyElement(op, "loads", getLoads().getType(),
                           b.getI32Type())) ||
      failed(verifyExtent(op, "loads dimension 0 (E)", dim(getLoads(), 0),
                          "routing experts",
                          getRouting().getType().getExperts())))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Expert parallelism
//===----------------------------------------------------------------------===//

/// `counts` of a collective over `ranks` ranks: i32 [G], G static and a
/// multiple of the ranks (each rank owns one block of G/R segments).
static LogicalResult verifySegmentCounts(Operation *op, StringRef name,
                                         Value counts, int64_t ranks) {
  Builder b(op->getContext());
  if (ranks < 1)
    return op->emitOpError() << "ranks must be at least 1, got " << ranks;
  if (failed(verifyRank(op, name, counts.getType(), 1, "[G]")) ||
      failed(verifyElement(op, name, counts.getType(), b.getI32Type())) ||
      failed(verifyStaticShape(op, name, counts.getType())))
    return failure();
  int64_t segments = dim(counts, 0);
  if (segments % ranks != 0)
    return op->emitOpError()
           << name << " has " << segments
           << " segments, which the ranks (" << ranks
           << ") do not divide: every rank owns the same number of segments";
  return success();
}

LogicalResult AllToAllOp::verify() {
  Operation *op = getOperation();
  int64_t ranks = getRanks();
  if (failed(verifySegmentCounts(op, "counts", getCounts(), ranks)) ||
      failed(verifyRank(op, "rows", getRows().getType(), 2, "[N, H]")) ||
      failed(verifyRank(op, "received", getReceived().getType(), 2,
                        "[M, H]")) ||
      failed(verifySameElement(op, "received", getReceived().getType(), "rows",
                               getRows().getType())))
    return failure();
  if (getReceivedCounts().getType() != getCounts().getType())
    return op->emitOpError()
           << "received_counts (" << getReceivedCounts().getType()
           << ") must have the type of counts (" << getCounts().getType()
           << ")";
  if (getExpected() && getExpected().getType() != getCounts().getType())
    return op->emitOpError()
           << "expected (" << getExpected().getType()
           << ") must have the type of counts (" << getCounts().getType()
           << ")";
  if (ShapedType::isDynamic(dim(getRows(), 1)))
    return op->emitOpError() << "rows dimension 1 (H) must be static: every "
                                "rank sends rows of the same size";
  // Rows travel as bytes: their elements need a size.
  Type element = cast<RankedTensorType>(getRows().getType()).getElementType();
  if (!element.isIntOrFloat())
    return op->emitOpError() << "rows must have an integer or floating-point "
                                "element type, got "
                             << element;
  return verifyExtent(op, "received dimension 1 (H)", dim(getReceived(), 1),
                      "rows dimension 1 (H)", dim(getRows(), 1));
}

LogicalResult LocalRoutingOp::verify() {
  Operation *op = getOperation();
  int64_t ranks = getRanks();
  if (failed(verifySegmentCounts(op, "counts", getCounts(), ranks)))
    return failure();
  int64_t local = dim(getCounts(), 0) / ranks;
  RoutingType routing = getRouting().getType();
  if (routing.getTopK() != 1)
    return op->emitOpError() << "routing must have top_k = 1 (each received "
                                "row is one assignment), got "
                             << routing.getTopK();
  if (routing.getExperts() != local)
    return op->emitOpError()
           << "routing experts (" << routing.getExperts()
           << ") must be the local experts, counts' segments per rank ("
           << local << ")";
  if (routing.hasStaticTokens())
    return op->emitOpError() << "routing tokens must be dynamic (?): the rows "
                                "received are known only at run time";
  Builder b(getContext());
  if (failed(verifyRank(op, "weights", getWeights().getType(), 2, "[N, 1]")) ||
      failed(verifyElement(op, "weights", getWeights().getType(),
                           b.getF32Type())))
    return failure();
  if (!ShapedType::isDynamic(dim(getWeights(), 0)) || dim(getWeights(), 1) != 1)
    return op->emitOpError() << "weights must be tensor<?x1xf32>, got "
                             << getWeights().getType();
  return success();
}

/// values [T, k] f32 and rows [T*k, 1] f32 of `routing`.
static LogicalResult verifySlotsAndRows(Operation *op, Value values,
                                        Value rows, RoutingType routing) {
  Builder b(op->getContext());
  if (failed(verifyRank(op, "values", values.getType(), 2, "[T, k]")) ||
      failed(verifyElement(op, "values", values.getType(), b.getF32Type())) ||
      failed(verifyRank(op, "rows", rows.getType(), 2, "[T*k, 1]")) ||
      failed(verifyElement(op, "rows", rows.getType(), b.getF32Type())))
    return failure();
  if (dim(rows, 1) != 1)
    return op->emitOpError() << "rows must have one column ([T*k, 1]), got "
                             << rows.getType();
  if (failed(verifyExtent(op, "values dimension 0 (T)", dim(values, 0),
                          "routing tokens", routing.getTokens())) ||
      failed(verifyExtent(op, "values dimension 1 (k)", dim(values, 1),
                          "routing top_k", routing.getTopK())) ||
      failed(verifyExtent(op, "rows dimension 0 (T*k)", dim(rows, 0),
                          "the routing's rows", routing.getDispatchedRows())))
    return failure();
  return success();
}

LogicalResult SlotsToRowsOp::verify() {
  return verifySlotsAndRows(getOperation(), getValues(), getRows(),
                            getRouting().getType());
}

LogicalResult RowsToSlotsOp::verify() {
  return verifySlotsAndRows(getOperation(), getValues(), getRows(),
                            getRouting().getType());
}

LogicalResult AllReduceOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  if (getRanks() < 1)
    return emitOpError() << "ranks must be at least 1, got " << getRanks();
  if (failed(verifyRank(op, "value", getValue().getType(), 1, "[N]")) ||
      failed(verifyElement(op, "value", getValue().getType(), b.getI32Type())) ||
      failed(verifyStaticShape(op, "value", getValue().getType())))
    return failure();
  if (getResult().getType() != getValue().getType())
    return emitOpError() << "result (" << getResult().getType()
                         << ") must have the type of value ("
                         << getValue().getType() << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// RmsNormOp
//===----------------------------------------------------------------------===//

LogicalResult RmsNormOp::verify() {
  Operation *op = getOperation();
  auto xType = cast<RankedTensorType>(getX().getType());
  if (xType.getRank() != 2 && xType.getRank() != 3)
    return emitOpError() << "x must be a rank-2 [T, H] or rank-3 [B, L, H] "
                            "tensor, got "
                         << xType;
  int64_t hidden = xType.getDimSize(xType.getRank() - 1);
  if (failed(verifyRank(op, "x", xType, xType.getRank(), "")) ||
      failed(verifyStorageType(op, "x", xType)) ||
      failed(verifyRank(op, "g", getG().getType(), 1, "[H]")) ||
      failed(verifyStaticShape(op, "g", getG().getType())) ||
      failed(verifySameElement(op, "g", getG().getType(), "x", xType)) ||
      failed(verifyExtent(op, "g dimension 0 (H)", dim(getG(), 0),
                          "x's last dimension (H)", hidden)))
    return failure();
  if (!(getEpsilon().convertToDouble() > 0.0))
    return emitOpError() << "epsilon must be positive, got "
                         << getEpsilon().convertToDouble();
  if (getOut().getType() != xType)
    return emitOpError() << "result type " << getOut().getType()
                         << " must be x's, " << xType;
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

int64_t AttentionOp::getHeadDim() { return dim(getWq(), 1) / getHeads(); }

LogicalResult AttentionOp::verify() {
  Operation *op = getOperation();
  Type nType = getN().getType();
  if (failed(verifyRank(op, "n", nType, 3, "[B, L, H]")) ||
      failed(verifyStorageType(op, "n", nType)))
    return failure();
  int64_t heads = getHeads(), kvHeads = getKvHeads();
  if (heads <= 0 || kvHeads <= 0)
    return emitOpError() << "heads (" << heads << ") and kv_heads ("
                         << kvHeads << ") must be positive";
  if (heads % kvHeads != 0)
    return emitOpError() << "heads (" << heads
                         << ") must be a multiple of kv_heads (" << kvHeads
                         << "): each key/value head serves heads/kv_heads "
                            "query heads";
  struct Weight {
    StringRef name, layout;
    Value value;
  };
  Weight weights[] = {{"wq", "[H, heads*dh]", getWq()},
                      {"wk", "[H, kv_heads*dh]", getWk()},
                      {"wv", "[H, kv_heads*dh]", getWv()},
                      {"wo", "[heads*dh, H]", getWo()}};
  for (const Weight &w : weights)
    if (failed(verifyRank(op, w.name, w.value.getType(), 2, w.layout)) ||
        failed(verifyStaticShape(op, w.name, w.value.getType())) ||
        failed(verifySameElement(op, w.name, w.value.getType(), "n", nType)))
      return failure();
  int64_t hidden = dim(getN(), 2);
  if (ShapedType::isDynamic(hidden))
    return emitOpError() << "n dimension 2 (H) must be static";
  int64_t qWidth = dim(getWq(), 1);
  if (qWidth % heads != 0)
    return emitOpError() << "wq dimension 1 (" << qWidth
                         << ") must be heads (" << heads
                         << ") times the head size";
  int64_t headDim = qWidth / heads;
  if (failed(verifyExtent(op, "wq dimension 0 (H)", dim(getWq(), 0),
                          "n dimension 2 (H)", hidden)) ||
      failed(verifyExtent(op, "wk dimension 0 (H)", dim(getWk(), 0),
                          "n dimension 2 (H)", hidden)) ||
      failed(verifyExtent(op, "wv dimension 0 (H)", dim(getWv(), 0),
                          "n dimension 2 (H)", hidden)) ||
      failed(verifyExtent(op, "wk dimension 1 (kv_heads*dh)", dim(getWk(), 1),
                          "kv_heads times wq's head size", kvHeads * headDim)) ||
      failed(verifyExtent(op, "wv dimension 1 (kv_heads*dh)", dim(getWv(), 1),
                          "kv_heads times wq's head size", kvHeads * headDim)) ||
      failed(verifyExtent(op, "wo dimension 0 (heads*dh)", dim(getWo(), 0),
                          "wq dimension 1 (heads*dh)", qWidth)) ||
      failed(verifyExtent(op, "wo dimension 1 (H)", dim(getWo(), 1),
                          "n dimension 2 (H)", hidden)))
    return failure();
  if (getOut().getType() != nType)
    return emitOpError() << "result type " << getOut().getType()
                         << " must be n's, " << nType;
  return success();
}
