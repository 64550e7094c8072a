//===- ArtifactMetadata.cpp - The metadata text of an artifact ------------===//

#include "lib/Target/ArtifactMetadata.h"

#include "dialects/moe/IR/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe;

static std::optional<StringRef> dtypeName(Type element) {
  if (element.isF32())
    return StringRef("f32");
  if (element.isBF16())
    return StringRef("bf16");
  if (element.isF16())
    return StringRef("f16");
  if (element.isSignlessInteger(32))
    return StringRef("i32");
  if (element.isSignlessInteger(64))
    return StringRef("i64");
  return std::nullopt;
}

/// `KIND INDEX DTYPE RANK D0 D1 ...`
static LogicalResult describeValue(func::FuncOp func, StringRef kind,
                                   unsigned index, Type type,
                                   llvm::raw_ostream &os) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  std::optional<StringRef> dtype =
      tensor ? dtypeName(tensor.getElementType()) : std::nullopt;
  if (!dtype)
    return func.emitError() << "function '" << func.getSymName() << "' "
                            << kind << " " << index << " has type " << type
                            << ": an artifact passes only ranked tensors of "
                               "f32, bf16, f16, i32 or i64";
  os << kind << " " << index << " " << *dtype << " " << tensor.getRank();
  for (int64_t extent : tensor.getShape()) {
    if (ShapedType::isDynamic(extent))
      os << " ?";
    else
      os << " " << extent;
  }
  os << "\n";
  return success();
}

static int64_t argumentIndex(Value value) {
  auto arg = dyn_cast_or_null<BlockArgument>(value);
  if (!arg || !isa<func::FuncOp>(arg.getOwner()->getParentOp()))
    return -1;
  return arg.getArgNumber();
}

/// The result index of `value` in `ret`, or -1.
static int64_t resultIndex(func::ReturnOp ret, Value value) {
  if (!value)
    return -1;
  for (auto [i, operand] : llvm::enumerate(ret.getOperands()))
    if (operand == value)
      return i;
  return -1;
}

/// For a training function (moe-generate-backward's), where dy, the
/// gradients, the aux loss and the loads are.
/// What a per-rank training program's value stands for on the whole layer:
/// a received tensor is what its sender sent, a dispatch's rows are its
/// tokens'.
static Value acrossRanks(Value value) {
  for (;;) {
    if (auto send = value.getDefiningOp<AllToAllOp>())
      value = send.getRows();
    else if (auto dispatch = value.getDefiningOp<DispatchOp>())
      value = dispatch.getX();
    else if (auto slots = value.getDefiningOp<RowsToSlotsOp>())
      value = slots.getRows();
    else
      return value;
  }
}

static void describeTraining(func::FuncOp func, func::ReturnOp ret,
                             GateOp gate, ExpertsOp forward,
                             llvm::raw_ostream &os) {
  ExpertsBackwardOp experts;
  GateBackwardOp router;
  ExpertLoadsOp loads;
  func.walk([&](Operation *op) {
    if (auto e = dyn_cast<ExpertsBackwardOp>(op))
      experts = e;
    else if (auto g = dyn_cast<GateBackwardOp>(op))
      router = g;
    else if (auto l = dyn_cast<ExpertLoadsOp>(op))
      // The returned loads (expert parallelism adds others: split sizes).
      if (resultIndex(ret, l.getLoads()) >= 0)
        loads = l;
  });
  if (!experts || !router || !loads ||
      argumentIndex(acrossRanks(experts.getDy())) < 0)
    return;
  // The adjoints must be those of this layer, as the forward chain is (on a
  // rank, through what the other ranks sent).
  if (acrossRanks(experts.getX()) != gate.getX() ||
      experts.getW1() != forward.getW1() ||
      experts.getW2() != forward.getW2() || router.getX() != gate.getX() ||
      router.getWGate() != gate.getWGate() ||
      acrossRanks(router.getDWeights()) != experts.getDWeights())
    return;
  bool aux = gate.getAuxLoss().convertToDouble() > 0.0;
  os << "attr layer.backward 1\nattr layer.dy "
     << argumentIndex(acrossRanks(experts.getDy())) << "\nattr layer.dx "
     << resultIndex(ret, router.getDx()) << "\nattr layer.dw_gate "
     << resultIndex(ret, router.getDwGate()) << "\nattr layer.dw1 "
     << resultIndex(ret, experts.getDw1()) << "\nattr layer.dw2 "
     << resultIndex(ret, experts.getDw2()) << "\nattr layer.aux "
     << (aux ? resultIndex(ret, router.getAux()) : -1)
     << "\nattr layer.loads " << resultIndex(ret, loads.getLoads())
     << "\nattr layer.aux_loss ";
  os << llvm::format("%.17g", gate.getAuxLoss().convertToDouble()) << "\n";
}

/// Describes `func` as one MoE layer when it is exactly gate -> dispatch ->
/// experts -> combine on its own arguments with y returned: every link of
/// the chain is checked, so that moe-run --check never compares a program
/// that computes something else with the reference layer.
static void describeLayer(func::FuncOp func, llvm::raw_ostream &os) {
  SmallVector<GateOp> gates;
  SmallVector<DispatchOp> dispatches;
  SmallVector<CombineOp> combines;
  SmallVector<ExpertsOp> experts;
  func.walk([&](Operation *op) {
    if (auto g = dyn_cast<GateOp>(op))
      gates.push_back(g);
    else if (auto d = dyn_cast<DispatchOp>(op))
      dispatches.push_back(d);
    else if (auto c = dyn_cast<CombineOp>(op))
      combines.push_back(c);
    else if (auto e = dyn_cast<ExpertsOp>(op))
      experts.push_back(e);
  });
  // moe-expert-parallel's per-rank program has a second, local chain on the
  // received rows; the layer is the gate's own dispatch and combine, joined
  // by the all-to-all out, the local experts and the all-to-all back.
  auto epRanks = func->getAttrOfType<IntegerAttr>("moe.expert_parallel");
  // (Its training program has more: the backward's dispatches and the
  // combine of the dispatch's adjoint, on the saved routing.)
  if (gates.size() != 1 || experts.size() != 1 ||
      (!epRanks && (dispatches.size() != 1 || combines.size() != 1)))
    return;
  GateOp gate = gates.front();
  Value routing = gate.getRouting();
  DispatchOp dispatch;
  CombineOp combine;
  for (DispatchOp d : dispatches)
    if (d.getRouting() == routing)
      dispatch = d;
  for (CombineOp c : combines)
    if (c.getRouting() == routing)
      combine = c;
  ExpertsOp expert = experts.front();
  if (!dispatch || !combine)
    return;
  bool chained;
  if (epRanks) {
    auto back = combine.getExpertOut().getDefiningOp<AllToAllOp>();
    auto local = expert.getRouting().getDefiningOp<LocalRoutingOp>();
    auto out = local ? local.getCounts().getDefiningOp<AllToAllOp>()
                     : AllToAllOp();
    chained = dispatch.getX() == gate.getX() && back && out &&
              out.getRows() == dispatch.getDispatched() &&
              back.getCounts() == out.getReceivedCounts() &&
              combine.getWeights() == gate.getWeights();
  } else {
    chained = dispatch.getX() == gate.getX() &&
              expert.getTokens() == dispatch.getDispatched() &&
              expert.getRouting() == routing &&
              combine.getExpertOut() == expert.getOut() &&
              combine.getWeights() == gate.getWeights();
  }
  if (!chained)
    return;
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  int64_t yIndex = -1, indicesIndex = -1;
  for (auto [i, operand] : llvm::enumerate(ret.getOperands())) {
    if (operand == combine.getY() && yIndex < 0)
      yIndex = i;
    if (operand == gate.getIndices() && indicesIndex < 0)
      indicesIndex = i;
  }
  int64_t x = argumentIndex(gate.getX()), wGate = argumentIndex(gate.getWGate());
  int64_t w1 = argumentIndex(expert.getW1()), w2 = argumentIndex(expert.getW2());
  int64_t bias = gate.getBias() ? argumentIndex(gate.getBias()) : -1;
  if (yIndex < 0 || x < 0 || wGate < 0 || w1 < 0 || w2 < 0 ||
      (gate.getBias() && bias < 0))
    return;
  os << "attr layer.router " << stringifyScoreFunc(gate.getScoreFunc()) << "\n"
     << "attr layer.top_k " << gate.getTopK() << "\n"
     << "attr layer.normalize " << (gate.getNormalize() ? 1 : 0) << "\n"
     << "attr layer.scaling ";
  os << llvm::format("%.17g", gate.getScaling().convertToDouble())
     << "\nattr layer.capacity "
     << llvm::format("%.17g", gate.getCapacityFactor().convertToDouble())
     << "\nattr layer.n_group " << gate.getNGroup().value_or(0) << "\n"
     << "attr layer.topk_group " << gate.getTopkGroup().value_or(0) << "\n"
     << "attr layer.activation " << stringifyActivation(expert.getActivation())
     << "\n"
     << "attr layer.x " << x << "\nattr layer.w_gate " << wGate
     << "\nattr layer.w1 " << w1 << "\nattr layer.w2 " << w2
     << "\nattr layer.bias " << bias << "\nattr layer.y " << yIndex
     << "\nattr layer.indices " << indicesIndex << "\n";
  if (epRanks)
    os << "attr layer.ep_ranks " << epRanks.getInt() << "\nattr layer.experts "
       << gate.getNumExperts() << "\n";
  describeTraining(func, ret, gate, expert, os);
}

FailureOr<std::string> moe::buildArtifactMetadata(ModuleOp module,
                                                  StringRef target) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "moe-artifact 1\ntarget " << target << "\n";
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isPrivate() || func.isExternal())
      continue;
    FunctionType type = func.getFunctionType();
    os << "function " << func.getSymName() << " " << type.getNumInputs()
       << " " << type.getNumResults() << "\n";
    for (auto [i, input] : llvm::enumerate(type.getInputs()))
      if (failed(describeValue(func, "arg", i, input, os)))
        return failure();
    for (auto [i, result] : llvm::enumerate(type.getResults()))
      if (failed(describeValue(func, "result", i, result, os)))
        return failure();
    // moe-generate-backward's functions: moe-run --backward runs only these.
    if (func->hasAttr("moe.training_step"))
      os << "attr training_step 1\n";
    // A block's spec (moe::loadBlockProgram sets it): moe-run checks the
    // artifact against the reference block from it.
    if (auto spec = func->getAttrOfType<StringAttr>("moe.block_spec"))
      os << "attr block.spec " << spec.getValue() << "\n";
    describeLayer(func, os);
    os << "end\n";
  }
  return text;
}
