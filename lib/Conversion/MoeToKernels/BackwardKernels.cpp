//===- BackwardKernels.cpp - moe training ops to moek kernels -------------===//

#include "lib/Conversion/MoeToKernels/BackwardKernels.h"

#include "dialects/moek/IR/MoekDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The dynamic token extent of a [T, ...] buffer, if any.
SmallVector<Value> tokenExtent(ImplicitLocOpBuilder &b, Value tokensBuffer) {
  if (!cast<MemRefType>(tokensBuffer.getType()).isDynamicDim(0))
    return {};
  return {extentOf(b, tokensBuffer, 0)};
}

void fillZero(ImplicitLocOpBuilder &b, Value buffer) {
  Type element = cast<MemRefType>(buffer.getType()).getElementType();
  linalg::FillOp::create(
      b, ValueRange{arith::ConstantOp::create(b, b.getZeroAttr(element))},
      ValueRange{buffer});
}

/// An f32 accumulator standing in for `result` (itself when f32): a bf16
/// gradient accumulated in bf16 would be rounded after every expert.
Value accumulatorFor(ImplicitLocOpBuilder &b, Value result,
                     ValueRange dynamic, StringRef name) {
  auto type = cast<MemRefType>(result.getType());
  if (type.getElementType().isF32())
    return result;
  return allocBuffer(b, type.getShape(), b.getF32Type(), dynamic, name);
}

/// The buffer behind `tensor` (made by asTensor from an allocation) when
/// the tensor has no other use than the one about to be replaced: its
/// bytes may then be written in place. Null otherwise.
Value soleBuffer(Value tensor) {
  if (!tensor || !tensor.hasOneUse())
    return {};
  auto toTensor = tensor.getDefiningOp<bufferization::ToTensorOp>();
  if (!toTensor || !toTensor->getResult(0).hasOneUse())
    return {};
  Value buffer = toTensor.getBuffer();
  if (!buffer.getDefiningOp<memref::AllocOp>())
    return {};
  return buffer;
}

/// Renames the buffer behind a tensor made by asTensor to `residuals.*`.
void markResidual(Value tensor) {
  auto toTensor = tensor.getDefiningOp<bufferization::ToTensorOp>();
  if (!toTensor)
    return;
  Operation *alloc = toTensor.getBuffer().getDefiningOp();
  if (!alloc)
    return;
  auto name = alloc->getAttrOfType<StringAttr>(kBufferNameAttr);
  StringRef suffix = name ? name.getValue().split('.').second : "value";
  alloc->setAttr(kBufferNameAttr,
                 StringAttr::get(alloc->getContext(),
                                 ("residuals." + suffix).str()));
}

} // namespace

LogicalResult moe::lowerExpertsBackward(ExpertsBackwardOp op,
                                        RoutingPlans &plans,
                                        RewriterBase &rewriter,
                                        int64_t expertsPerChunk,
                                        bool narrowGemmOperands,
                                        WideGradients &wide) {
  FailureOr<RoutingPlan> plan = plans.planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  Value ownersTensor = plans.rowOwners(rewriter, op.getRouting());
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value x = readBuffer(b, op.getX());
  Value w1 = readBuffer(b, op.getW1());
  Value w2 = readBuffer(b, op.getW2());
  Value weights = readBuffer(b, op.getWeights());
  Value dy = readBuffer(b, op.getDy());
  Value offsets = readBuffer(b, plan->offsets);
  Value owners = readBuffer(b, ownersTensor);

  auto xType = cast<RankedTensorType>(op.getX().getType());
  int64_t tokens = xType.getDimSize(0);
  int64_t twoF = op.getW1().getType().getDimSize(2);
  int64_t experts = plan->experts, topK = plan->topK;
  // A saved pre-activation is indexed by grouped row from 0: with it, all
  // experts run as one chunk (its rows are already there, T*k of them).
  Value savedGateUp = op.getGateUp();
  int64_t chunk = savedGateUp ? experts
                              : std::min<int64_t>(
                                    std::max<int64_t>(expertsPerChunk, 1),
                                    experts);
  Type element = xType.getElementType(), f32 = b.getF32Type();
  SmallVector<Value> dynamicT = tokenExtent(b, x);

  // dx and its f32 accumulator: made before the chunks' loop, or, with all
  // experts in one chunk, just before the GEMM that first writes them, so
  // that they are not live beside h and g (qwen3_30b_a3b's least plan:
  // 192 MiB less).
  Value dx, dxAcc;
  auto makeDx = [&] {
    dx = allocBuffer(b, xType.getShape(), element, dynamicT,
                     "gradients.dx_experts");
    dxAcc = accumulatorFor(b, dx, dynamicT, "accumulators.dx");
    fillZero(b, dxAcc);
  };
  if (chunk < experts)
    makeDx();
  Value dw1 = allocBuffer(b, op.getW1().getType().getShape(), element, {},
                          "gradients.dw1");
  Value dw2 = allocBuffer(b, op.getW2().getType().getShape(), element, {},
                          "gradients.dw2");
  // Dropped assignments have no row: their gate-weight gradient stays 0.
  Value dWeights = allocBuffer(b, {tokens, topK}, f32, dynamicT,
                               "gradients.d_weights");
  fillZero(b, dWeights);

  // Per-chunk row buffers: a token picks an expert at most once, so a chunk
  // has at most T*min(k, chunk) rows. The CPU keeps them in f32; where
  // tensor cores read dh and the weighted a (the CUDA pipeline narrows GEMM
  // operands), h and g are stored in the layer's element type as well, as
  // the GEMMs that make them can write it, and dh and a overwrite them in
  // place as on the CPU: two bf16 buffers instead of four (qwen3_30b_a3b's
  // step: 576 MiB instead of 1.7 GiB).
  int64_t rowsPerToken = std::min(topK, chunk);
  SmallVector<Value> dynamicRows;
  if (!dynamicT.empty())
    dynamicRows.push_back(arith::MulIOp::create(
        b, dynamicT.front(), arith::ConstantIndexOp::create(b, rowsPerToken)));
  int64_t rows = ShapedType::isDynamic(tokens) ? ShapedType::kDynamic
                                               : tokens * rowsPerToken;
  Type rowType = narrowGemmOperands && !element.isF32() ? element : f32;
  // The saved h (the forward's, f32 or in the layer's type) is read
  // through a writable view.
  Value gateUp =
      savedGateUp
          ? bufferization::ToBufferOp::create(
                b,
                MemRefType::get({rows, twoF},
                                cast<RankedTensorType>(savedGateUp.getType())
                                    .getElementType()),
                savedGateUp, /*read_only=*/false)
                .getResult()
          : allocBuffer(b, {rows, twoF}, rowType, dynamicRows,
                        "activations.gate_up");
  // g = dy[t] . w2[e]^T first, then a over it in place: the GLU's backward
  // reads each element of g just before it writes a there.
  Value g = allocBuffer(b, {rows, twoF / 2}, rowType, dynamicRows,
                        "activations.glu");
  Value act = g;
  // dh overwrites h in place: each element of h is read once, just before
  // its gradient is written there, and h is not needed afterwards (so
  // saving h costs no second buffer). A saved h of another type than the
  // rows' (f32 beside narrowed GEMM operands) is the exception: dh gets a
  // buffer in the rows' type.
  Value dh = gateUp;
  if (cast<MemRefType>(gateUp.getType()).getElementType() != rowType)
    dh = allocBuffer(b, {rows, twoF}, rowType, dynamicRows,
                     "activations.gate_up_grad");

  auto emitChunk = [&](Value first, Value last) {
    // The gate/up projection, recomputed unless h was saved.
    if (!savedGateUp)
      moek::GroupedMatmulOp::create(b, x, w1, offsets, first, last, owners,
                                    Value(), gateUp, Value(),
                                    moek::Epilogue::store,
                                    /*gather=*/true, topK);
    // g = dy[t] . w2[e]^T: a grouped GEMM with B transposed whose rows are
    // the output gradients gathered through the owners map.
    auto gemmG = moek::GroupedMatmulOp::create(
        b, dy, w2, offsets, first, last, owners, Value(), g, Value(),
        moek::Epilogue::store, /*gather=*/true, topK);
    gemmG.setTransposeB(true);
    moek::GroupedGluBackwardOp::create(b, g, offsets, owners, weights,
                                       gateUp, first, last, act, dh, dWeights,
                                       op.getActivation(), topK);
    // dw2[e] = sum (w a)^T dy[t] (w a carries the routing weight).
    moek::GroupedWeightGradOp::create(b, act, dy, offsets, owners, Value(),
                                      first, last, dw2, /*gather_lhs=*/false,
                                      /*gather_rhs=*/true, topK);
    // dx[t] += dh . w1[e]^T, scattered into token order; dh carries the
    // routing weight already. Before dw1's GEMM, so that with one chunk
    // dx's f32 accumulator is done (narrowed) before dw1 is first written:
    // the memory plan can then keep it in dw1's bytes (moe-plan-memory),
    // and the router's backward adds its part to the narrowed dx (two
    // roundings, as autograd sums a bf16 input's two gradients) instead of
    // keeping the accumulator live beside h until then.
    if (!dxAcc)
      makeDx();
    auto gemmDx = moek::GroupedMatmulOp::create(
        b, dh, w1, offsets, first, last, owners, Value(), dxAcc, Value(),
        moek::Epilogue::scatter_add, /*gather=*/false, topK);
    gemmDx.setTransposeB(true);
    if (chunk == experts)
      narrowInto(b, dxAcc, dx);
    // dw1[e] = sum x[t]^T dh.
    moek::GroupedWeightGradOp::create(b, x, dh, offsets, owners, Value(), first,
                                      last, dw1, /*gather_lhs=*/true,
                                      /*gather_rhs=*/false, topK);
  };
  forEachExpertChunk(b, experts, chunk, emitChunk);
  if (chunk < experts)
    narrowInto(b, dxAcc, dx);
  Value dxTensor = asTensor(b, dx);
  if (dxAcc != dx && chunk < experts)
    wide[dxTensor] = dxAcc;
  rewriter.replaceOp(op, ValueRange{dxTensor, asTensor(b, dw1),
                                    asTensor(b, dw2), asTensor(b, dWeights)});
  return success();
}

LogicalResult moe::lowerGateBackward(GateBackwardOp op, RoutingPlans &plans,
                                     RewriterBase &rewriter,
                                     const WideGradients &wide,
                                     bool scratchBuffers) {
  FailureOr<RoutingPlan> plan = plans.planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value x = readBuffer(b, op.getX());
  Value wGate = readBuffer(b, op.getWGate());
  Value dWeights = readBuffer(b, op.getDWeights());
  Value indices = readBuffer(b, plan->indices);
  Value offsets = readBuffer(b, plan->offsets);
  auto xType = cast<RankedTensorType>(op.getX().getType());
  Type element = xType.getElementType();
  SmallVector<Value> dynamicT = tokenExtent(b, x);

  // The experts' f32 accumulator, when there is one, takes the router's
  // products before any rounding. Else dx itself does, in its own type:
  // route_backward adds each element's whole sum over E at once (widened,
  // added in f32, rounded once), as an f32 accumulator narrowed afterwards
  // would, without the [T, H] f32 buffer and its widening and narrowing.
  // Where the experts' dx is a buffer of its own that nothing else reads,
  // the router adds into it in place: it becomes the gradient.
  Value dxIn = op.getDxIn();
  Value wideIn = dxIn ? wide.lookup(dxIn) : Value();
  Value dx = wideIn ? Value() : soleBuffer(dxIn);
  bool inPlace = bool(dx);
  if (inPlace)
    dx.getDefiningOp()->setAttr("moe.buffer", b.getStringAttr("gradients.dx"));
  else
    dx = allocBuffer(b, xType.getShape(), element, dynamicT, "gradients.dx");
  Value dxAcc =
      wideIn ? accumulatorFor(b, dx, dynamicT, "accumulators.dx_router") : dx;
  if (wideIn)
    widenInto(b, wideIn, dxAcc);
  else if (dxIn && !inPlace)
    widenInto(b, readBuffer(b, dxIn), dxAcc);
  else if (!dxIn)
    fillZero(b, dxAcc);
  Value dwGate = allocBuffer(b, op.getWGate().getType().getShape(), element,
                             {}, "gradients.dw_gate");
  Value dwGateAcc = accumulatorFor(b, dwGate, {}, "accumulators.dw_gate");
  Value aux = allocBuffer(b, ArrayRef<int64_t>{}, b.getF32Type(), {}, "gradients.aux");
  // Saved probabilities spare the router's backward its scores GEMM.
  Value probs = op.getProbs() ? readBuffer(b, op.getProbs()) : Value();
  // Expert parallelism: the aux loss's f_e counts the EP group's loads, so
  // the router backward reads their offsets instead of the rank's.
  if (Value groupLoads = op.getGroupLoads()) {
    offsets = allocBuffer(b, {plan->experts + 1}, b.getI32Type(), {},
                          "routing.group_offsets");
    moek::ExclusiveScanOp::create(b, readBuffer(b, groupLoads), offsets);
  }
  // The GPU recomputes the scores by a GEMM and overwrites them with their
  // gradients: scratch the memory plan must see, so it is allocated here.
  Value scores = scratchBuffers
                     ? allocBuffer(b, {xType.getDimSize(0), plan->experts},
                                   b.getF32Type(), dynamicT,
                                   "gradients.router_scores")
                     : Value();
  // A bf16/f16 layer's products dx += ds . w_gate^T and dw_gate = x^T ds
  // run on tensor cores, which read ds in the layer's type: a buffer of its
  // own ([T, E], half the f32 scores'), not a view of the scores, whose row
  // t/2 (read by another token's thread) holds token t's bytes.
  int64_t hidden = xType.getDimSize(1);
  bool narrowDs = scratchBuffers && (element.isBF16() || element.isF16()) &&
                  moek::RouteBackwardOp::productsFitTensorCores(hidden,
                                                               plan->experts);
  Value ds = narrowDs ? allocBuffer(b, {xType.getDimSize(0), plan->experts},
                                    element, dynamicT, "gradients.router_ds")
                      : Value();
  moek::RouteBackwardOp::create(b, x, wGate, indices, offsets, dWeights, dxAcc,
                                dwGateAcc, aux, probs, scores, ds,
                                op.getScoreFuncAttr(),
                                op.getNormalizeAttr(), op.getScalingAttr(),
                                op.getAuxLossAttr(), op.getGroupRanksAttr());
  narrowInto(b, dxAcc, dx);
  narrowInto(b, dwGateAcc, dwGate);
  rewriter.replaceOp(op, ValueRange{asTensor(b, dx), asTensor(b, dwGate),
                                    asTensor(b, aux)});
  return success();
}

LogicalResult moe::lowerExpertLoads(ExpertLoadsOp op, RoutingPlans &plans,
                                    RewriterBase &rewriter) {
  FailureOr<RoutingPlan> plan = plans.planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value loads = allocBuffer(b, {plan->experts}, b.getI32Type(), {},
                            "gradients.loads");
  moek::ExpertLoadsOp::create(b, readBuffer(b, plan->offsets), loads);
  rewriter.replaceOp(op, asTensor(b, loads));
  return success();
}

LogicalResult moe::lowerExpertGateUp(ExpertGateUpOp op, RoutingPlans &plans,
                                     RewriterBase &rewriter) {
  FailureOr<RoutingPlan> plan = plans.planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  Value ownersTensor = plans.rowOwners(rewriter, op.getRouting());
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value x = readBuffer(b, op.getX());
  Value h = allocGateUp(b, op, *plan, x);
  moek::GroupedMatmulOp::create(
      b, x, readBuffer(b, op.getW1()), readBuffer(b, plan->offsets),
      arith::ConstantIndexOp::create(b, 0),
      arith::ConstantIndexOp::create(b, plan->experts),
      readBuffer(b, ownersTensor), Value(), h, Value(), moek::Epilogue::store,
      /*gather=*/true, plan->topK);
  rewriter.replaceOp(op, asTensor(b, h));
  return success();
}

Value moe::allocGateUp(ImplicitLocOpBuilder &b, ExpertGateUpOp op,
                       const RoutingPlan &plan, Value x) {
  auto type = cast<RankedTensorType>(op.getH().getType());
  SmallVector<Value> dynamicRows;
  if (type.isDynamicDim(0))
    dynamicRows.push_back(arith::MulIOp::create(
        b, extentOf(b, x, 0), arith::ConstantIndexOp::create(b, plan.topK)));
  return allocBuffer(b, type.getShape(), type.getElementType(), dynamicRows,
                     "activations.gate_up");
}

void moe::lowerSaveForBackward(SaveForBackwardOp op, RewriterBase &rewriter) {
  for (Value value : op.getValues()) {
    if (auto cast = value.getDefiningOp<UnrealizedConversionCastOp>()) {
      for (Value part : cast.getOperands())
        markResidual(part);
      continue;
    }
    markResidual(value);
  }
  rewriter.replaceOp(op, op.getValues());
}
