//===- MoePlaceRecomputation.cpp - Save or recompute, under a budget ------===//
//
// For every forward value the backward of a training step reads, decide
// whether the forward saves it or the backward recomputes it, minimizing
// the predicted time of the step (lib/Analysis/CostModel) subject to its
// planned peak of intermediate memory (moe-plan-memory) being at most the
// budget.
//
// The search is exact: every subset of the candidates is lowered, on a
// clone of the module, to planned buffers (the pipeline the target runs up
// to moe-plan-memory), so both the peak and the predicted time are those
// of the program the decision makes — no additive guess about how buffers
// overlap. Tighter budgets only remove subsets from the feasible set, so
// the predicted time never decreases as the budget shrinks.
//
// The candidates and what saving one means in IR (the kernels really read
// it; nothing is an attribute only):
//   gate_up (the experts' pre-activation h, [T*k, 2F], per chain; f32 on
//     the CPU, the layer's type on CUDA): moe.expert_gate_up after the
//     chain's forward, through a moe.save_for_backward into
//     moe.experts_backward's gate_up operand; fusion then makes the
//     forward's GLU GEMM store h as well, and the backward skips its
//     gate/up GEMM and writes dh over h;
//   router_probabilities (p, f32 [T, E], per gate): moe.router_probabilities
//     after the gate, through a moe.save_for_backward into
//     moe.gate_backward's probs operand; the router kernel stores p as it
//     routes and the router's backward skips its scores GEMM.
// The other values the backward reads are fixed, and the remarks say so:
// the router weights and routing metadata (O(T*k)) are always saved; the
// dispatched tokens and expert outputs are never formed (zero-buffer
// kernels read x and dy through the routing index); the activation is
// recomputed from h inside moek.grouped_glu_backward (elementwise, no GEMM).
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeOps.h"
#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Analysis/CostModel/CostModel.h"
#include "passes/MemoryBudget.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <limits>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPLACERECOMPUTATIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The attribute moe-generate-backward puts on training steps.
constexpr const char *kTrainingStepAttr = "moe.training_step";

/// At most this many candidates per function: 2^N lowerings.
constexpr unsigned kMaxCandidates = 8;

/// The forward value behind `v`: a residual's operand, else `v`.
Value forwardValue(Value v) {
  if (auto save = v.getDefiningOp<SaveForBackwardOp>())
    return save.getValues()[cast<OpResult>(v).getResultNumber()];
  return v;
}

/// One save-or-recompute decision: the pre-activation h of one chain, or
/// the router probabilities p of one gate.
struct Candidate {
  enum Kind { GateUp, RouterProbabilities } kind = GateUp;
  Operation *anchor = nullptr; ///< the backward op that reads the value
  GateOp gate;                 ///< the layer's gate (its order names it)
  SaveForBackwardOp gateSave;  ///< the gate's residuals (its `recomputed`)
  // GateUp: the chain and its backward.
  ExpertsBackwardOp expertsBackward;
  ExpertsOp experts;
  DispatchOp dispatch;
  CombineOp combine;
  // RouterProbabilities: the router's backward.
  GateBackwardOp gateBackward;
  std::string name;   ///< "gate_up", "router_probabilities[.layerN]"
  int64_t bytes = 0;  ///< the saved buffer (-1: dynamic)
};

/// The name a value has in `recomputed` lists and reports.
StringRef valueName(Candidate::Kind kind) {
  return kind == Candidate::GateUp ? "gate_up" : "router_probabilities";
}

/// Bytes of a [rows, cols] buffer of `elementBytes`; -1 when rows is
/// dynamic.
int64_t bufferBytes(int64_t rows, int64_t cols, int64_t elementBytes) {
  return ShapedType::isDynamic(rows) ? -1 : rows * cols * elementBytes;
}

/// The values of `func` that could be saved, layer by layer in program
/// order (a layer's router probabilities, then its pre-activation, saved
/// in the layer's storage type when `narrowSavedH`, else in f32).
SmallVector<Candidate> collectCandidates(func::FuncOp func, bool narrowSavedH) {
  SmallVector<Candidate> candidates;
  func.walk([&](ExpertsBackwardOp backward) {
    if (backward.getGateUp())
      return; // already saved (the pass ran before)
    Value routing = forwardValue(backward.getRouting());
    Value w1 = forwardValue(backward.getW1());
    Candidate c;
    c.kind = Candidate::GateUp;
    c.anchor = backward;
    c.expertsBackward = backward;
    c.gate = routing.getDefiningOp<GateOp>();
    c.gateSave = backward.getRouting().getDefiningOp<SaveForBackwardOp>();
    for (Operation *user : routing.getUsers()) {
      auto experts = dyn_cast<ExpertsOp>(user);
      if (!experts || experts.getW1() != w1 || !experts->hasOneUse())
        continue;
      c.experts = experts;
      c.dispatch = experts.getTokens().getDefiningOp<DispatchOp>();
      c.combine = dyn_cast<CombineOp>(*experts->getUsers().begin());
    }
    if (!c.gate || !c.experts || !c.dispatch || !c.combine)
      return;
    auto routingType = cast<RoutingType>(routing.getType());
    Type storage = backward.getX().getType().getElementType();
    c.bytes =
        bufferBytes(routingType.getDispatchedRows(),
                    backward.getW1().getType().getDimSize(2),
                    narrowSavedH ? storage.getIntOrFloatBitWidth() / 8 : 4);
    candidates.push_back(c);
  });
  func.walk([&](GateBackwardOp backward) {
    if (backward.getProbs())
      return;
    Candidate c;
    c.kind = Candidate::RouterProbabilities;
    c.anchor = backward;
    c.gateBackward = backward;
    c.gate = forwardValue(backward.getRouting()).getDefiningOp<GateOp>();
    c.gateSave = backward.getRouting().getDefiningOp<SaveForBackwardOp>();
    if (!c.gate)
      return;
    c.bytes = bufferBytes(c.gate.getX().getType().getDimSize(0),
                          c.gate.getNumExperts(), 4);
    candidates.push_back(c);
  });
  // Layers in program order (the backward visits them last to first), a
  // layer's router before its experts.
  llvm::sort(candidates, [](const Candidate &a, const Candidate &b) {
    if (a.gate != b.gate)
      return a.gate->isBeforeInBlock(b.gate);
    return a.kind == Candidate::RouterProbabilities &&
           b.kind == Candidate::GateUp;
  });
  SmallVector<GateOp> gates;
  for (const Candidate &c : candidates)
    if (gates.empty() || gates.back() != c.gate)
      gates.push_back(c.gate);
  for (Candidate &c : candidates) {
    c.name = valueName(c.kind).str();
    if (gates.size() > 1)
      c.name += ".layer" +
                std::to_string(llvm::find(gates, c.gate) - gates.begin());
  }
  return candidates;
}

/// The gate's residual list no longer says `value` is recomputed.
void markSaved(SaveForBackwardOp gateSave, StringRef value) {
  if (!gateSave)
    return;
  ArrayAttr recomputed = gateSave.getRecomputedAttr();
  if (!recomputed)
    return;
  SmallVector<Attribute> kept;
  for (Attribute name : recomputed)
    if (cast<StringAttr>(name).getValue() != value)
      kept.push_back(name);
  gateSave.setRecomputedAttr(ArrayAttr::get(gateSave.getContext(), kept));
}

/// Makes the forward keep h for candidate `c` and its backward read it: in
/// the layer's storage type on CUDA, whose backward reads h in that type
/// anyway (half the bytes of f32 for bf16), else in f32 as the CPU's
/// backward rows are.
void saveGateUp(Candidate &c, bool narrowSavedH) {
  OpBuilder b(c.combine);
  b.setInsertionPointAfter(c.combine);
  Location loc = c.experts.getLoc();
  auto routing = cast<RoutingType>(c.experts.getRouting().getType());
  int64_t twoF = c.experts.getW1().getType().getDimSize(2);
  Type storage = c.dispatch.getX().getType().getElementType();
  auto hType = RankedTensorType::get({routing.getDispatchedRows(), twoF},
                                     narrowSavedH ? storage : b.getF32Type());
  auto h = ExpertGateUpOp::create(b, loc, hType, c.dispatch.getX(),
                                  c.experts.getRouting(), c.experts.getW1());
  auto save = SaveForBackwardOp::create(b, loc, ValueRange{h.getH()},
                                        ArrayAttr());
  c.expertsBackward.getGateUpMutable().assign(save.getSaved()[0]);
  markSaved(c.gateSave, "gate_up");
}

/// Makes the gate's router keep p for candidate `c` and the router's
/// backward read it.
void saveRouterProbabilities(Candidate &c) {
  OpBuilder b(c.gate);
  b.setInsertionPointAfter(c.gate);
  Location loc = c.gate.getLoc();
  auto pType = RankedTensorType::get(
      {c.gate.getX().getType().getDimSize(0), c.gate.getNumExperts()},
      b.getF32Type());
  auto p = RouterProbabilitiesOp::create(b, loc, pType, c.gate.getX(),
                                         c.gate.getWGate(),
                                         c.gate.getScoreFuncAttr());
  auto save = SaveForBackwardOp::create(b, loc, ValueRange{p.getProbs()},
                                        ArrayAttr());
  c.gateBackward.getProbsMutable().assign(save.getSaved()[0]);
  markSaved(c.gateSave, "router_probabilities");
}

void save(Candidate &c, bool narrowSavedH) {
  if (c.kind == Candidate::GateUp)
    saveGateUp(c, narrowSavedH);
  else
    saveRouterProbabilities(c);
}

/// The outcome of one placement, lowered.
struct Evaluation {
  int64_t peakBytes = 0;
  double predictedMs = 0;
};

struct MoePlaceRecomputationPass
    : public mlir::moe::impl::MoePlaceRecomputationPassBase<
          MoePlaceRecomputationPass> {
  using MoePlaceRecomputationPassBase::MoePlaceRecomputationPassBase;

  void runOnOperation() override {
    if (memoryBudget.empty())
      return; // no budget: the default placement of moe-generate-backward
    std::string error;
    FailureOr<MemoryBudget> budget =
        parseMemoryBudget(memoryBudget, kSaveEverythingPeak, error);
    if (failed(budget)) {
      getOperation()->emitError()
          << "moe-place-recomputation: memory-budget " << error;
      return signalPassFailure();
    }
    std::string deviceId = costDevice.empty()
                               ? ::moe::cost::defaultDeviceFor(target)
                               : costDevice.getValue();
    device = ::moe::cost::findDevice(deviceId);
    if (!device) {
      getOperation()->emitError()
          << "moe-place-recomputation: no device '" << deviceId
          << "' in the cost model's table (have: "
          << llvm::join(::moe::cost::deviceIds(), ", ") << ")";
      return signalPassFailure();
    }
    if (target != "cpu" && !StringRef(target).starts_with("cuda")) {
      getOperation()->emitError()
          << "moe-place-recomputation: target '" << target
          << "' is not cpu or cuda[:sm_XY]";
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> steps;
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (func->hasAttr(kTrainingStepAttr))
        steps.push_back(func);
    if (steps.empty()) {
      getOperation()->emitError()
          << "moe-place-recomputation: the module has no training step "
             "(run moe-generate-backward first, or moe-compile --backward)";
      return signalPassFailure();
    }
    for (func::FuncOp func : steps)
      if (failed(place(func, *budget)))
        return signalPassFailure();
  }

private:
  static bool isGateUp(const Candidate &c) {
    return c.kind == Candidate::GateUp;
  }

  /// The candidates of `func` under the pass's options: without fusion the
  /// materializing forward has no GEMM that could store h (saving it would
  /// add one and never save time), so h is no candidate there.
  /// CUDA's backward reads h in the layer's storage type (it narrows the
  /// GEMMs' operands), so it saves h in that type; the CPU's keeps f32.
  bool narrowSavedH() const { return StringRef(target).starts_with("cuda"); }

  SmallVector<Candidate> candidatesOf(func::FuncOp func) {
    SmallVector<Candidate> candidates = collectCandidates(func, narrowSavedH());
    if (!fusion)
      llvm::erase_if(candidates, isGateUp);
    return candidates;
  }

  /// Lowers a clone of the module with the candidates in `mask` saved and
  /// returns the planned peak and predicted time of `funcName`.
  FailureOr<Evaluation> evaluate(StringRef funcName, unsigned mask) {
    OwningOpRef<ModuleOp> clone = getOperation().clone();
    auto func = clone->lookupSymbol<func::FuncOp>(funcName);
    SmallVector<Candidate> candidates = candidatesOf(func);
    for (auto [i, c] : llvm::enumerate(candidates))
      if (mask & (1u << i))
        save(c, narrowSavedH());
    if (failed(runPlannedBuffersPipeline(*clone, target, expertsPerChunk,
                                         fusion, epilogue)))
      return failure();
    func = clone->lookupSymbol<func::FuncOp>(funcName);
    std::optional<int64_t> peak = plannedPeakBytes(func);
    if (!peak)
      return func.emitError()
             << "moe-place-recomputation: the training step has no memory "
                "plan (its buffers have dynamic shapes?)";
    Evaluation e;
    e.peakBytes = *peak;
    e.predictedMs = estimateFunctionCost(func, *device).totalMs;
    return e;
  }

  LogicalResult place(func::FuncOp func, const MemoryBudget &budget) {
    SmallVector<Candidate> candidates = candidatesOf(func);
    if (!fusion &&
        llvm::any_of(collectCandidates(func, narrowSavedH()), isGateUp))
      func.emitRemark() << "recomputation placement: gate_up is no "
                           "candidate without moe-zero-buffer-fusion (the "
                           "materializing forward would compute h twice to "
                           "save it)";
    unsigned n = candidates.size();
    if (n > kMaxCandidates)
      return func.emitError()
             << "moe-place-recomputation: " << n
             << " candidates (one per layer) make 2^" << n
             << " placements to lower; at most " << kMaxCandidates
             << " are searched exactly: split the program into smaller "
                "functions";
    for (Candidate &c : candidates)
      if (c.bytes < 0)
        return c.anchor->emitError()
               << "moe-place-recomputation needs a static token count: the "
                  "memory plan of dynamic buffers is made at run time";

    // Every placement, lowered: 2^n evaluations (n <= 8).
    std::vector<Evaluation> all(size_t(1) << n);
    for (unsigned mask = 0; mask < all.size(); ++mask) {
      FailureOr<Evaluation> e = evaluate(func.getSymName(), mask);
      if (failed(e))
        return failure();
      all[mask] = *e;
    }
    unsigned everything = unsigned(all.size() - 1);
    int64_t saveAllPeak = all[everything].peakBytes;
    int64_t leastPeak = std::numeric_limits<int64_t>::max();
    unsigned leastMask = 0;
    for (unsigned mask = 0; mask < all.size(); ++mask)
      if (all[mask].peakBytes < leastPeak) {
        leastPeak = all[mask].peakBytes;
        leastMask = mask;
      }
    int64_t budgetBytes = budget.bytes(saveAllPeak, leastPeak);
    if (budgetBytes < leastPeak) {
      std::string how;
      for (auto [i, c] : llvm::enumerate(candidates))
        how += std::string(how.empty() ? "" : ", ") +
               (leastMask & (1u << i) ? "save " : "recompute ") + c.name;
      return func.emitError()
             << "memory budget " << budgetBytes << " bytes ("
             << formatBytes(budgetBytes) << ") is below the least planned "
             << "peak any placement reaches: " << leastPeak << " bytes ("
             << formatBytes(leastPeak) << (how.empty() ? "" : ", ")
             << how << "); give --memory-budget=" << leastPeak
             << " or more";
    }
    // The fastest feasible placement; on equal predictions the smaller
    // peak. A budget at or above the save-everything peak constrains
    // nothing: everything is saved unless the cost model predicts that
    // recomputing a value is faster (its remark says so). Forcing "save
    // everything" there instead would let a tighter budget predict a
    // faster step.
    unsigned best = 0;
    bool found = false;
    for (unsigned mask = 0; mask < all.size(); ++mask) {
      const Evaluation &e = all[mask];
      if (e.peakBytes > budgetBytes)
        continue;
      if (!found || e.predictedMs < all[best].predictedMs ||
          (e.predictedMs == all[best].predictedMs &&
           e.peakBytes < all[best].peakBytes)) {
        best = mask;
        found = true;
      }
    }

    Builder b(func.getContext());
    SmallVector<Attribute> saved, recomputed;
    for (auto [i, c] : llvm::enumerate(candidates)) {
      bool saveIt = best & (1u << i);
      // What recomputing this value costs, the others as decided.
      const Evaluation &with = all[best | (1u << i)];
      const Evaluation &without = all[best & ~(1u << i)];
      double recomputeMs = without.predictedMs - with.predictedMs;
      auto entry = b.getDictionaryAttr({
          b.getNamedAttr("name", b.getStringAttr(c.name)),
          b.getNamedAttr("bytes", b.getI64IntegerAttr(c.bytes)),
          b.getNamedAttr("peak_delta_bytes",
                         b.getI64IntegerAttr(with.peakBytes -
                                             without.peakBytes)),
          b.getNamedAttr("recompute_ms", b.getF64FloatAttr(recomputeMs)),
      });
      (saveIt ? saved : recomputed).push_back(entry);
      InFlightDiagnostic remark = c.anchor->emitRemark();
      if (saveIt)
        remark << "saves " << c.name << " (" << formatBytes(c.bytes)
               << "): recomputing it would cost "
               << llvm::formatv("{0:f3}", recomputeMs) << " ms";
      else
        remark << "recomputes " << c.name << " ("
               << llvm::formatv("{0:f3}", recomputeMs)
               << " ms): saving it would "
               << (with.peakBytes > budgetBytes
                       ? "raise the planned peak to " +
                             formatBytes(with.peakBytes) +
                             ", over the budget"
                       : std::string("not be faster"));
      if (saveIt)
        save(c, narrowSavedH());
    }
    func.emitRemark() << "recomputation placement: planned peak "
                      << formatBytes(all[best].peakBytes) << " of a budget of "
                      << formatBytes(budgetBytes) << " (save everything: "
                      << formatBytes(saveAllPeak) << ", least: "
                      << formatBytes(leastPeak) << "), predicted "
                      << llvm::formatv("{0:f3}", all[best].predictedMs)
                      << " ms on " << device->id
                      << "; always saved: router weights, routing metadata; "
                         "never formed: dispatched tokens, expert outputs; "
                         "recomputed in the backward's kernels: "
                         "activations";
    func->setAttr(
        "moe.recomputation",
        b.getDictionaryAttr({
            b.getNamedAttr("budget_bytes", b.getI64IntegerAttr(budgetBytes)),
            b.getNamedAttr("save_all_peak_bytes",
                           b.getI64IntegerAttr(saveAllPeak)),
            b.getNamedAttr("least_peak_bytes", b.getI64IntegerAttr(leastPeak)),
            b.getNamedAttr("planned_peak_bytes",
                           b.getI64IntegerAttr(all[best].peakBytes)),
            b.getNamedAttr("predicted_ms",
                           b.getF64FloatAttr(all[best].predictedMs)),
            b.getNamedAttr("device", b.getStringAttr(device->id)),
            b.getNamedAttr("saved", b.getArrayAttr(saved)),
            b.getNamedAttr("recomputed", b.getArrayAttr(recomputed)),
        }));
    return success();
  }

  const ::moe::cost::DeviceDescription *device = nullptr;
};

} // namespace
