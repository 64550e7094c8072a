//===- MoeLowerToKernels.cpp - moe ops to moek kernels, materializing -----===//
//
// The straightforward lowering, as today's frameworks run an MoE layer:
// dispatch copies every kept assignment's token into a [T*k, H] buffer in
// expert order, the experts run a grouped matmul into [T*k, 2F], the GLU
// into [T*k, F] and a second grouped matmul into [T*k, H], and combine
// gathers the weighted rows back. moe-zero-buffer-fusion, run before this
// pass, removes all of those buffers; this pass lowers whatever is left.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoeToKernels/BackwardKernels.h"
#include "lib/Conversion/MoeToKernels/BlockKernels.h"
#include "lib/Conversion/MoeToKernels/CollectiveKernels.h"
#include "lib/Conversion/MoeToKernels/KernelBuilding.h"

#include "dialects/moe/IR/MoeOps.h"
#include "dialects/moek/IR/MoekDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Utils/Utils.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERTOKERNELSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// [T*k, H]-like extents: the rows of `like` when dynamic.
SmallVector<Value> rowsExtent(ImplicitLocOpBuilder &b, int64_t rows,
                              Value like) {
  if (!ShapedType::isDynamic(rows))
    return {};
  return {extentOf(b, like, 0)};
}

Type elementOf(Value tensor) {
  return cast<RankedTensorType>(tensor.getType()).getElementType();
}

LogicalResult lowerDispatch(DispatchOp op, RoutingPlans &plans,
                            RewriterBase &rewriter) {
  if (failed(plans.planOf(op, op.getRouting())))
    return failure();
  Value rowsTensor = plans.assignmentRows(rewriter, op.getRouting());
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value x = readBuffer(b, op.getX());
  auto type = cast<RankedTensorType>(op.getDispatched().getType());
  SmallVector<Value> dynamic;
  if (type.isDynamicDim(0))
    dynamic.push_back(arith::MulIOp::create(
        b, extentOf(b, x, 0),
        arith::ConstantIndexOp::create(
            b, op.getRouting().getType().getTopK())));
  Value out = allocBuffer(b, type.getShape(), type.getElementType(), dynamic,
                          "dispatch.tokens");
  moek::GatherRowsOp::create(b, x, readBuffer(b, rowsTensor), out);
  rewriter.replaceOp(op, asTensor(b, out));
  return success();
}

LogicalResult lowerExperts(ExpertsOp op, RoutingPlans &plans,
                           RewriterBase &rewriter) {
  FailureOr<RoutingPlan> plan = plans.planOf(op, op.getRouting());
  if (failed(plan))
    return failure();
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value in = readBuffer(b, op.getTokens());
  Value w1 = readBuffer(b, op.getW1());
  Value w2 = readBuffer(b, op.getW2());
  Value offsets = readBuffer(b, plan->offsets);
  int64_t rows = op.getTokens().getType().getDimSize(0);
  int64_t twoF = op.getW1().getType().getDimSize(2);
  int64_t hidden = op.getW2().getType().getDimSize(2);
  Type element = elementOf(op.getTokens());
  SmallVector<Value> dynamic = rowsExtent(b, rows, in);

  // h = grouped x.w1 [T*k, 2F], a = act(gate) * up [T*k, F],
  // out = grouped a.w2 [T*k, H]; all three materialized.
  Value h = allocBuffer(b, {rows, twoF}, element, dynamic,
                        "activations.gate_up");
  moek::GroupedMatmulOp::create(b, in, w1, offsets, Value(), Value(), Value(),
                                Value(), h, Value(), moek::Epilogue::store,
                                /*gather=*/false, /*top_k=*/plan->topK);
  Value a = allocBuffer(b, {rows, twoF / 2}, element, dynamic,
                        "activations.glu");
  moek::GluOp::create(b, h, a, op.getActivation());
  Value out = allocBuffer(b, {rows, hidden}, element, dynamic,
                          "expert_outputs.rows");
  moek::GroupedMatmulOp::create(b, a, w2, offsets, Value(), Value(), Value(),
                                Value(), out, Value(), moek::Epilogue::store,
                                /*gather=*/false, /*top_k=*/plan->topK);
  rewriter.replaceOp(op, asTensor(b, out));
  return success();
}

LogicalResult lowerCombine(CombineOp op, RoutingPlans &plans,
                           RewriterBase &rewriter) {
  if (failed(plans.planOf(op, op.getRouting())))
    return failure();
  Value rowsTensor = plans.assignmentRows(rewriter, op.getRouting());
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value expertOut = readBuffer(b, op.getExpertOut());
  Value weights = readBuffer(b, op.getWeights());
  auto type = cast<RankedTensorType>(op.getY().getType());
  Value y = allocBuffer(b, type.getShape(), type.getElementType(),
                        rowsExtent(b, type.getDimSize(0), weights),
                        "result.y");
  moek::CombineRowsOp::create(b, expertOut, weights,
                              readBuffer(b, rowsTensor), y);
  rewriter.replaceOp(op, asTensor(b, y));
  return success();
}

struct MoeLowerToKernelsPass
    : public moe::impl::MoeLowerToKernelsPassBase<MoeLowerToKernelsPass> {
  using MoeLowerToKernelsPassBase::MoeLowerToKernelsPassBase;

  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    // The caller's arguments are read-only (moert and PyTorch hand in their
    // own tensors): one-shot bufferization must not compute into them, as it
    // would for a residual add of the block (x + attention, in place in x).
    getOperation()->walk([&](func::FuncOp func) {
      if (func.isExternal())
        return;
      for (unsigned i = 0; i < func.getNumArguments(); ++i)
        if (isa<TensorType>(func.getArgument(i).getType()))
          func.setArgAttr(i, "bufferization.writable",
                          rewriter.getBoolAttr(false));
    });
    // An elementwise op computing into an argument (the block's residual
    // add h = x + attention, after convert-elementwise-to-linalg) gets a
    // named buffer instead, which bufferization would otherwise make
    // nameless (the plan's "other").
    getOperation()->walk([&](linalg::GenericOp op) {
      if (op.getNumDpsInits() != 1 || op->getNumResults() != 1)
        return;
      OpOperand *init = op.getDpsInitOperand(0);
      auto argument = dyn_cast<BlockArgument>(init->get());
      if (!argument || !isa<func::FuncOp>(argument.getOwner()->getParentOp()) ||
          op.payloadUsesValueFromOperand(init))
        return;
      auto type = cast<RankedTensorType>(argument.getType());
      ImplicitLocOpBuilder b(op.getLoc(), rewriter);
      b.setInsertionPoint(op);
      SmallVector<Value> dynamicSizes =
          tensor::createDynamicDimValues(b, b.getLoc(), argument);
      init->set(
          asTensor(b, allocBuffer(b, type.getShape(), type.getElementType(),
                                  dynamicSizes, "block.residual")));
    });
    // The buffer that the tiles of a batch-tiled attention fill (a loop's
    // tensor.empty init, from moe-batch-tile-attention) is named too.
    getOperation()->walk([&](tensor::EmptyOp empty) {
      if (!empty->hasOneUse())
        return;
      auto loop = dyn_cast<scf::ForOp>(*empty->getUsers().begin());
      if (!loop || !llvm::is_contained(loop.getInitArgs(), empty.getResult()))
        return;
      bool tilesAttention = false;
      loop.getBody()->walk([&](AttentionOp) { tilesAttention = true; });
      if (!tilesAttention)
        return;
      ImplicitLocOpBuilder b(empty.getLoc(), rewriter);
      b.setInsertionPoint(empty);
      Value named = asTensor(b, allocBuffer(b, empty.getType().getShape(),
                                            empty.getType().getElementType(),
                                            empty.getDynamicSizes(),
                                            "block.attention_out"));
      rewriter.replaceOp(empty, named);
    });
    // Gates first, so that every consumer finds its routing plan.
    SmallVector<GateOp> gates;
    getOperation()->walk([&](GateOp op) { gates.push_back(op); });
    for (GateOp op : gates)
      lowerGateToKernels(op, rewriter, kernelScratchBuffers);
    // The routing of received rows (expert parallelism) is a plan like a
    // gate's; the collectives need nothing but their operands.
    SmallVector<LocalRoutingOp> localRoutings;
    getOperation()->walk(
        [&](LocalRoutingOp op) { localRoutings.push_back(op); });
    for (LocalRoutingOp op : localRoutings)
      lowerLocalRoutingToKernels(op, rewriter, kernelScratchBuffers,
                                 deviceSplitSizes);
    SmallVector<AllToAllOp> collectives;
    getOperation()->walk([&](AllToAllOp op) { collectives.push_back(op); });
    for (AllToAllOp op : collectives)
      lowerAllToAllToKernels(op, rewriter, deviceSplitSizes);
    SmallVector<AllReduceOp> reductions;
    getOperation()->walk([&](AllReduceOp op) { reductions.push_back(op); });
    for (AllReduceOp op : reductions)
      lowerAllReduceToKernels(op, rewriter);

    // The received buffers' bounds are known now: what fusion sized by
    // them keeps its name through canonicalization.
    makeKnownAllocsStatic(getOperation());

    RoutingPlans plans;
    WideGradients wide;
    SmallVector<Operation *> users;
    getOperation()->walk([&](Operation *op) {
      if (isa<DispatchOp, ExpertsOp, CombineOp, ExpertsBackwardOp,
              GateBackwardOp, ExpertLoadsOp, ExpertGateUpOp,
              RouterProbabilitiesOp, SlotsToRowsOp, RowsToSlotsOp, RmsNormOp,
              AttentionOp>(op))
        users.push_back(op);
    });
    for (Operation *op : users) {
      LogicalResult result =
          TypeSwitch<Operation *, LogicalResult>(op)
              .Case([&](DispatchOp o) { return lowerDispatch(o, plans, rewriter); })
              .Case([&](ExpertsOp o) { return lowerExperts(o, plans, rewriter); })
              .Case([&](CombineOp o) { return lowerCombine(o, plans, rewriter); })
              .Case([&](ExpertsBackwardOp o) {
                return lowerExpertsBackward(o, plans, rewriter,
                                            expertsPerChunk,
                                            narrowGemmOperands, wide);
              })
              .Case([&](GateBackwardOp o) {
                return lowerGateBackward(o, plans, rewriter, wide,
                                         kernelScratchBuffers);
              })
              .Case([&](ExpertLoadsOp o) {
                return lowerExpertLoads(o, plans, rewriter);
              })
              .Case([&](ExpertGateUpOp o) {
                return lowerExpertGateUp(o, plans, rewriter);
              })
              .Case([&](RouterProbabilitiesOp o) {
                // Its gate's router writes it (lowerGateToKernels); one
                // left here has no gate to write it.
                return o.emitOpError()
                       << "has no moe.gate on the same x, w_gate and score "
                          "function to compute it: router probabilities are "
                          "written by the gate's router kernel";
              })
              .Case([&](SlotsToRowsOp o) {
                return lowerSlotsToRows(o, plans, rewriter);
              })
              .Case([&](RowsToSlotsOp o) {
                return lowerRowsToSlots(o, plans, rewriter);
              })
              .Case([&](RmsNormOp o) {
                // The GPU pipeline (which asks for kernel scratch buffers)
                // runs the moek kernels; the CPU its linalg loops.
                return kernelScratchBuffers
                           ? lowerRmsNormToKernels(o, rewriter)
                           : lowerRmsNorm(o, rewriter);
              })
              .Case([&](AttentionOp o) {
                return kernelScratchBuffers
                           ? lowerAttentionToKernels(o, rewriter)
                           : lowerAttention(o, rewriter);
              });
      if (failed(result))
        return signalPassFailure();
    }
    // The residuals last: their users have found the plan through them.
    SmallVector<SaveForBackwardOp> saves;
    getOperation()->walk([&](SaveForBackwardOp op) { saves.push_back(op); });
    for (SaveForBackwardOp op : saves)
      lowerSaveForBackward(op, rewriter);
    if (failed(plans.eraseCasts(getOperation(), rewriter)))
      return signalPassFailure();
    // As in moe-zero-buffer-fusion: kernels whose buffers break the kernel
    // dialect's rules (sizes past 64 bits) fail this pass with the rule.
    if (failed(verify(getOperation())))
      signalPassFailure();
  }
};

} // namespace
