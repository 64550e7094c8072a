//===- MoeGenerateBackward.cpp - The training program of moe functions ----===//
//
// Reverse-mode differentiation of functions built of moe ops. Each public
// function becomes its training step: the forward as it was, one
// moe.save_for_backward per gate (the residuals), then the adjoint of each op
// in reverse program order, and the gradients returned after the results.
//
// The adjoint rules (one per op, below in `differentiate`):
//   moe.combine  -> moe.experts_backward for its dispatch -> experts ->
//                   combine chain as one unit: the per-op adjoints of
//                   dispatch and combine are [T*k, H] values, the buffers
//                   zero-buffer kernels exist to avoid;
//   moe.gate     -> moe.gate_backward (+ moe.expert_loads), which adds its
//                   part of dx to the chain's;
//   moe.dispatch, moe.experts -> covered by their chain's rule, an error
//                   anywhere else; any other op is an error.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEGENERATEBACKWARDPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The suffix of a training function's name.
constexpr const char *kTrainSuffix = "_train";
/// The unit attribute that marks a function as a training step.
constexpr const char *kTrainingStepAttr = "moe.training_step";

/// What the backward recomputes instead of saving (SonicMoE's default).
ArrayAttr recomputedValues(Builder &b) {
  return b.getStrArrayAttr({"dispatched_tokens", "gate_up", "activations",
                            "expert_outputs", "router_probabilities"});
}

/// Cotangents of forward values; a value used twice gets the sum.
class Cotangents {
public:
  explicit Cotangents(OpBuilder &b) : b(b) {}
  Value lookup(Value v) const { return map.lookup(v); }
  void set(Value v, Value cot) { map[v] = cot; }
  void add(Location loc, Value v, Value cot) {
    Value &slot = map[v];
    slot = slot ? arith::AddFOp::create(b, loc, slot, cot).getResult() : cot;
  }

private:
  OpBuilder &b;
  DenseMap<Value, Value> map;
};

struct GateResiduals {
  Value weights, routing;
};

LogicalResult differentiate(func::FuncOp func) {
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  SmallVector<unsigned> differentiated;
  for (auto [i, value] : llvm::enumerate(ret.getOperands()))
    if (value.getDefiningOp<CombineOp>())
      differentiated.push_back(i);
  if (differentiated.empty())
    return func.emitError()
           << "moe-generate-backward: function '" << func.getSymName()
           << "' returns no moe.combine result, so it has no backward to "
              "generate";

  SmallVector<Operation *> forward;
  SmallVector<GateOp> gates;
  for (Operation &op : body.without_terminator()) {
    forward.push_back(&op);
    if (auto gate = dyn_cast<GateOp>(op))
      gates.push_back(gate);
  }

  OpBuilder b(ret);
  unsigned numForwardArgs = body.getNumArguments();
  Cotangents cot(b);
  for (unsigned i : differentiated) {
    Value y = ret.getOperand(i);
    cot.add(y.getLoc(), y, body.addArgument(y.getType(), y.getLoc()));
  }

  // The residuals: every value the backward reads from the forward, except
  // the function's own arguments, passes through here: per gate its weights
  // and routing plan, then any other operand of a rule computed by the
  // forward (a stacked layer's input is the previous layer's output).
  DenseMap<Operation *, GateResiduals> residuals;
  for (GateOp gate : gates) {
    auto save = SaveForBackwardOp::create(
        b, gate.getLoc(), ValueRange{gate.getWeights(), gate.getRouting()},
        recomputedValues(b));
    residuals[gate] = {save.getSaved()[0], save.getSaved()[1]};
  }
  llvm::SetVector<Value> computed;
  auto read = [&](Value v) {
    if (!isa<BlockArgument>(v))
      computed.insert(v);
  };
  for (Operation *op : forward) {
    if (auto gate = dyn_cast<GateOp>(op)) {
      read(gate.getX());
      read(gate.getWGate());
    } else if (auto dispatch = dyn_cast<DispatchOp>(op)) {
      read(dispatch.getX());
    } else if (auto experts = dyn_cast<ExpertsOp>(op)) {
      read(experts.getW1());
      read(experts.getW2());
    }
  }
  IRMapping saved;
  if (!computed.empty()) {
    auto save = SaveForBackwardOp::create(b, func.getLoc(),
                                          computed.getArrayRef(), ArrayAttr());
    for (auto [value, copy] : llvm::zip(computed, save.getSaved()))
      saved.map(value, copy);
  }
  // What a backward op reads for the forward value `v`.
  auto residual = [&](Value v) { return saved.lookupOrDefault(v); };

  llvm::DenseSet<Operation *> inChain;
  SmallVector<Value> aux, loads;
  for (Operation *op : llvm::reverse(forward)) {
    Location loc = op->getLoc();
    if (auto combine = dyn_cast<CombineOp>(op)) {
      Value dy = cot.lookup(combine.getY());
      if (!dy)
        continue; // y reaches no differentiated result
      auto experts = combine.getExpertOut().getDefiningOp<ExpertsOp>();
      auto dispatch =
          experts ? experts.getTokens().getDefiningOp<DispatchOp>() : nullptr;
      if (!dispatch)
        return combine.emitOpError()
               << "has no adjoint rule unless its expert_out comes from "
                  "moe.experts on tokens from moe.dispatch (the chain is "
                  "differentiated as one unit)";
      if (!experts->hasOneUse() || !dispatch->hasOneUse())
        return combine.emitOpError()
               << "cannot be differentiated: the dispatched tokens or the "
                  "expert outputs of its chain have other uses, whose "
                  "gradients the chain's adjoint would drop";
      auto gate = combine.getRouting().getDefiningOp<GateOp>();
      if (!gate || experts.getRouting() != combine.getRouting() ||
          dispatch.getRouting() != combine.getRouting() ||
          combine.getWeights() != gate.getWeights())
        return combine.emitOpError()
               << "cannot be differentiated: dispatch, experts and combine "
                  "must follow one moe.gate's routing and weights";
      inChain.insert(experts);
      inChain.insert(dispatch);
      GateResiduals plan = residuals.lookup(gate);
      auto backward = ExpertsBackwardOp::create(
          b, loc,
          TypeRange{dispatch.getX().getType(), experts.getW1().getType(),
                    experts.getW2().getType(), plan.weights.getType()},
          residual(dispatch.getX()), plan.routing, residual(experts.getW1()),
          residual(experts.getW2()), plan.weights, dy, /*gate_up=*/Value(),
          experts.getActivationAttr());
      cot.add(loc, dispatch.getX(), backward.getDx());
      cot.add(loc, experts.getW1(), backward.getDw1());
      cot.add(loc, experts.getW2(), backward.getDw2());
      cot.add(loc, gate.getWeights(), backward.getDWeights());
      continue;
    }
    if (isa<DispatchOp, ExpertsOp>(op)) {
      if (inChain.contains(op))
        continue;
      return op->emitOpError()
             << "has no adjoint rule outside a moe.dispatch -> moe.experts "
                "-> moe.combine chain";
    }
    if (auto gate = dyn_cast<GateOp>(op)) {
      GateResiduals plan = residuals.lookup(gate);
      double coef = gate.getAuxLoss().convertToDouble();
      Value dWeights = cot.lookup(gate.getWeights());
      if (!dWeights && coef > 0.0)
        return gate.emitOpError()
               << "has aux_loss > 0 but its weights reach no differentiated "
                  "result";
      if (dWeights) {
        Value dxIn = cot.lookup(gate.getX());
        auto backward = GateBackwardOp::create(
            b, loc,
            TypeRange{gate.getX().getType(), gate.getWGate().getType(),
                      RankedTensorType::get({}, b.getF32Type())},
            residual(gate.getX()), residual(gate.getWGate()), plan.routing,
            dWeights, dxIn, /*probs=*/Value(), /*group_loads=*/Value(),
            gate.getScoreFuncAttr(), gate.getNormalizeAttr(),
            gate.getScalingAttr(), gate.getAuxLossAttr());
        // The gate added the chain's dx (dx_in) to its own.
        cot.set(gate.getX(), backward.getDx());
        cot.add(loc, gate.getWGate(), backward.getDwGate());
        if (coef > 0.0)
          aux.push_back(backward.getAux());
      }
      int64_t experts = gate.getNumExperts();
      loads.push_back(ExpertLoadsOp::create(
          b, loc, RankedTensorType::get({experts}, b.getI32Type()),
          plan.routing));
      continue;
    }
    return op->emitOpError()
           << "has no adjoint rule: moe-generate-backward differentiates "
              "moe.gate and moe.dispatch -> moe.experts -> moe.combine "
              "chains only";
  }
  // Gates were visited in reverse; report aux and loads in program order.
  std::reverse(aux.begin(), aux.end());
  std::reverse(loads.begin(), loads.end());

  llvm::DenseSet<Value> biases;
  for (GateOp gate : gates)
    if (gate.getBias())
      biases.insert(gate.getBias());
  SmallVector<Value> results(ret.getOperands());
  for (unsigned i = 0; i < numForwardArgs; ++i) {
    Value arg = body.getArgument(i);
    if (biases.contains(arg))
      continue; // the bias steers selection only: no gradient
    if (Value grad = cot.lookup(arg))
      results.push_back(grad);
  }
  results.append(aux);
  results.append(loads);
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  func.setFunctionType(FunctionType::get(func.getContext(),
                                         body.getArgumentTypes(),
                                         ValueRange(results).getTypes()));
  func.setSymName((func.getSymName() + kTrainSuffix).str());
  // Tools tell a training step from a forward by this (artifact metadata).
  func->setAttr(kTrainingStepAttr, UnitAttr::get(func.getContext()));
  return success();
}

struct MoeGenerateBackwardPass
    : public moe::impl::MoeGenerateBackwardPassBase<MoeGenerateBackwardPass> {
  void runOnOperation() override {
    SmallVector<func::FuncOp> functions;
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (func.isPublic() && !func.isExternal())
        functions.push_back(func);
    for (func::FuncOp func : functions)
      if (failed(differentiate(func)))
        return signalPassFailure();
  }
};

} // namespace
