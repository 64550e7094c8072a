//===- KernelBuilding.cpp - Building moek kernels from moe ops ------------===//

#include "lib/Conversion/MoeToKernels/KernelBuilding.h"

#include "dialects/moek/IR/MoekDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::moe;

void moe::widenInto(ImplicitLocOpBuilder &b, Value source, Value accumulator) {
  auto sourceType = cast<MemRefType>(source.getType());
  if (sourceType.getElementType() ==
      cast<MemRefType>(accumulator.getType()).getElementType()) {
    memref::CopyOp::create(b, source, accumulator);
    return;
  }
  linalg::MapOp::create(b, ValueRange{source}, accumulator,
                        [&](OpBuilder &nested, Location loc, ValueRange args) {
                          Value wide = arith::ExtFOp::create(
                              nested, loc, nested.getF32Type(), args[0]);
                          linalg::YieldOp::create(nested, loc, wide);
                        });
}

void moe::narrowInto(ImplicitLocOpBuilder &b, Value accumulator, Value result) {
  if (accumulator == result)
    return;
  Type element = cast<MemRefType>(result.getType()).getElementType();
  linalg::MapOp::create(b, ValueRange{accumulator}, result,
                        [&](OpBuilder &nested, Location loc, ValueRange args) {
                          Value narrow = arith::TruncFOp::create(
                              nested, loc, element, args[0]);
                          linalg::YieldOp::create(nested, loc, narrow);
                        });
}

Value moe::readBuffer(ImplicitLocOpBuilder &b, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  return bufferization::ToBufferOp::create(
      b, MemRefType::get(type.getShape(), type.getElementType()), tensor,
      /*read_only=*/true);
}

/// The value of an extent that is a constant, a dim of a value whose shape
/// is static along it behind casts and buffer/tensor conversions (a
/// bound-sized received buffer seen through its dynamic type), or a
/// product, sum or ceiling quotient of such.
static std::optional<int64_t> knownExtent(Value extent) {
  if (std::optional<int64_t> constant = getConstantIntValue(extent))
    return constant;
  auto both = [](Operation *op) -> std::optional<std::pair<int64_t, int64_t>> {
    std::optional<int64_t> lhs = knownExtent(op->getOperand(0));
    std::optional<int64_t> rhs = knownExtent(op->getOperand(1));
    if (!lhs || !rhs)
      return std::nullopt;
    return std::make_pair(*lhs, *rhs);
  };
  if (auto op = extent.getDefiningOp<arith::MulIOp>())
    if (auto v = both(op))
      return v->first * v->second;
  if (auto op = extent.getDefiningOp<arith::AddIOp>())
    if (auto v = both(op))
      return v->first + v->second;
  if (auto op = extent.getDefiningOp<arith::CeilDivUIOp>())
    if (auto v = both(op); v && v->second > 0)
      return (v->first + v->second - 1) / v->second;
  Value source;
  std::optional<int64_t> dim;
  if (auto d = extent.getDefiningOp<memref::DimOp>()) {
    source = d.getSource();
    dim = getConstantIntValue(d.getIndex());
  } else if (auto d = extent.getDefiningOp<tensor::DimOp>()) {
    source = d.getSource();
    dim = getConstantIntValue(d.getIndex());
  }
  if (!dim)
    return std::nullopt;
  while (source) {
    auto shaped = cast<ShapedType>(source.getType());
    if (!shaped.isDynamicDim(*dim))
      return shaped.getDimSize(*dim);
    Operation *def = source.getDefiningOp();
    if (auto c = dyn_cast_or_null<memref::CastOp>(def))
      source = c.getSource();
    else if (auto c = dyn_cast_or_null<tensor::CastOp>(def))
      source = c.getSource();
    else if (auto t = dyn_cast_or_null<bufferization::ToTensorOp>(def))
      source = t.getBuffer();
    else if (auto t = dyn_cast_or_null<bufferization::ToBufferOp>(def))
      source = t.getTensor();
    else
      return std::nullopt;
  }
  return std::nullopt;
}

Value moe::allocBuffer(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                       Type element, ValueRange dynamic, StringRef name) {
  auto alloc =
      memref::AllocOp::create(b, MemRefType::get(shape, element), dynamic);
  alloc->setAttr(kBufferNameAttr, b.getStringAttr(name));
  return alloc;
}

Value moe::rankPartialsBuffer(ImplicitLocOpBuilder &b, Value indices,
                              int64_t experts) {
  constexpr int64_t slice = moek::RankAssignmentsOp::kTokensPerSlice;
  int64_t tokens = cast<MemRefType>(indices.getType()).getDimSize(0);
  if (!ShapedType::isDynamic(tokens))
    return allocBuffer(b, {(tokens + slice - 1) / slice, experts},
                       b.getI32Type(), {}, "routing.rank_partials");
  Value slices = arith::CeilDivUIOp::create(
      b, extentOf(b, indices, 0), arith::ConstantIndexOp::create(b, slice));
  return allocBuffer(b, {ShapedType::kDynamic, experts}, b.getI32Type(),
                     {slices}, "routing.rank_partials");
}

Value moe::asTensor(ImplicitLocOpBuilder &b, Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  return bufferization::ToTensorOp::create(
      b, RankedTensorType::get(type.getShape(), type.getElementType()), buffer,
      /*restrict=*/true, /*writable=*/true);
}

Value moe::extentOf(ImplicitLocOpBuilder &b, Value buffer, int64_t dim) {
  return memref::DimOp::create(b, buffer, dim);
}

void moe::makeKnownAllocsStatic(Operation *root) {
  SmallVector<memref::AllocOp> allocs;
  root->walk([&](memref::AllocOp alloc) {
    if (!alloc.getDynamicSizes().empty() && alloc->hasAttr(kBufferNameAttr))
      allocs.push_back(alloc);
  });
  for (memref::AllocOp alloc : allocs) {
    if (!llvm::all_of(alloc.getDynamicSizes(),
                      [](Value v) { return knownExtent(v).has_value(); }))
      continue;
    // The static buffer, keeping the name, cast back to the type its users
    // have.
    MemRefType type = alloc.getType();
    SmallVector<int64_t> shape(type.getShape());
    auto sizes = alloc.getDynamicSizes().begin();
    for (int64_t &size : shape)
      if (ShapedType::isDynamic(size))
        size = *knownExtent(*sizes++);
    ImplicitLocOpBuilder b(alloc.getLoc(), alloc);
    auto known = memref::AllocOp::create(
        b, MemRefType::get(shape, type.getElementType()), ValueRange{});
    known->setAttr(kBufferNameAttr, alloc->getAttr(kBufferNameAttr));
    alloc.replaceAllUsesWith(
        memref::CastOp::create(b, type, known).getResult());
    alloc.erase();
  }
}

void moe::forEachExpertChunk(ImplicitLocOpBuilder &b, int64_t experts,
                             int64_t chunk,
                             function_ref<void(Value, Value)> emit) {
  Value numExperts = arith::ConstantIndexOp::create(b, experts);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  if (chunk >= experts)
    return emit(zero, numExperts);
  Value step = arith::ConstantIndexOp::create(b, chunk);
  auto loop = scf::ForOp::create(b, zero, numExperts, step);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  Value first = loop.getInductionVar();
  Value last = arith::MinSIOp::create(
      b, arith::AddIOp::create(b, first, step), numExperts);
  emit(first, last);
}

/// The dynamic extents of a [T, ...] buffer whose T is that of `tokens`.
static SmallVector<Value> tokenExtent(ImplicitLocOpBuilder &b, int64_t tokens,
                                      Value tokensBuffer) {
  if (!ShapedType::isDynamic(tokens))
    return {};
  return {extentOf(b, tokensBuffer, 0)};
}

Value moe::planRouting(ImplicitLocOpBuilder &b, Value indices,
                       ArrayRef<int64_t> shape, ValueRange dynamic,
                       int64_t experts, FloatAttr capacityFactor,
                       bool scratchBuffers, Type routingType) {
  Type i32 = b.getI32Type();
  Value ranks = allocBuffer(b, shape, i32, dynamic, "routing.ranks");
  Value counts = allocBuffer(b, {experts}, i32, {}, "routing.counts");
  Value partials =
      scratchBuffers ? rankPartialsBuffer(b, indices, experts) : Value();
  // The offsets with the ranks: on the GPU, the ranking's per-expert scan
  // also writes them (no launch of their own).
  Value offsets = allocBuffer(b, {experts + 1}, i32, {}, "routing.offsets");
  moek::RankAssignmentsOp::create(b, indices, ranks, counts, partials, offsets,
                                  /*rows=*/Value(), /*owners=*/Value(),
                                  capacityFactor);
  return UnrealizedConversionCastOp::create(
             b, routingType,
             ValueRange{asTensor(b, indices), asTensor(b, ranks),
                        asTensor(b, offsets)})
      .getResult(0);
}

void moe::lowerGateToKernels(GateOp gate, RewriterBase &rewriter,
                             bool scratchBuffers) {
  ImplicitLocOpBuilder b(gate.getLoc(), rewriter);
  b.setInsertionPoint(gate);
  int64_t tokens = gate.getX().getType().getDimSize(0);
  int64_t topK = gate.getTopK(), experts = gate.getNumExperts();
  Type i32 = b.getI32Type();

  Value x = readBuffer(b, gate.getX());
  Value wGate = readBuffer(b, gate.getWGate());
  Value bias = gate.getBias() ? readBuffer(b, gate.getBias()) : Value();
  SmallVector<Value> dynamicT = tokenExtent(b, tokens, x);
  Value weights = allocBuffer(b, {tokens, topK}, b.getF32Type(), dynamicT,
                              "routing.weights");
  Value indices =
      allocBuffer(b, {tokens, topK}, i32, dynamicT, "routing.indices");
  // The saved probabilities (moe-place-recomputation), written by the router
  // as it routes: no kernel of their own.
  RouterProbabilitiesOp saved;
  for (Operation *user : gate.getX().getUsers())
    if (auto probs = dyn_cast<RouterProbabilitiesOp>(user))
      if (probs.getWGate() == gate.getWGate() &&
          probs.getScoreFunc() == gate.getScoreFunc())
        saved = probs;
  Value probs = saved ? allocBuffer(b, {tokens, experts}, b.getF32Type(),
                                    dynamicT, "activations.router_probs")
                      : Value();
  Value scores = scratchBuffers
                     ? allocBuffer(b, {tokens, experts}, b.getF32Type(),
                                   dynamicT, "routing.scores")
                     : Value();
  moek::RouteOp::create(b, x, wGate, bias, weights, indices, probs, scores,
                        gate.getScoreFuncAttr(), gate.getTopKAttr(),
                        gate.getNormalizeAttr(), gate.getScalingAttr(),
                        gate.getNGroupAttr(), gate.getTopkGroupAttr());

  Value routing = planRouting(b, indices, {tokens, topK}, dynamicT, experts,
                              gate.getCapacityFactorAttr(), scratchBuffers,
                              gate.getRouting().getType());
  Value indicesTensor =
      cast<UnrealizedConversionCastOp>(routing.getDefiningOp()).getOperand(0);
  if (saved)
    rewriter.replaceOp(saved, asTensor(b, probs));
  rewriter.replaceOp(gate, ValueRange{asTensor(b, weights), indicesTensor,
                                      routing});
}

/// The value a residual saved (the routing itself when not a residual).
static Value unsaved(Value routing) {
  if (auto save = routing.getDefiningOp<SaveForBackwardOp>())
    return save.getValues()[cast<OpResult>(routing).getResultNumber()];
  return routing;
}

FailureOr<RoutingPlan> RoutingPlans::planOf(Operation *user, Value routing) {
  auto cast = unsaved(routing).getDefiningOp<UnrealizedConversionCastOp>();
  if (!cast || cast.getNumOperands() != 3)
    return user->emitOpError()
           << "routing must be produced by a moe.gate in the same function "
              "to be lowered to loops";
  auto type = cast_if_present<RoutingType>(routing.getType());
  return RoutingPlan{cast.getOperand(0), cast.getOperand(1),
                     cast.getOperand(2), type.getTopK(), type.getExperts()};
}

/// The plan's moek.rank_assignments when it made the offsets and the
/// routing is the forward's own (not a saved residual, whose backward
/// derives its buffers after the residuals): the op that can write a
/// plan-derived buffer too.
static moek::RankAssignmentsOp rankingOf(Value routing) {
  if (routing.getDefiningOp<SaveForBackwardOp>())
    return {};
  auto cast = routing.getDefiningOp<UnrealizedConversionCastOp>();
  if (!cast)
    return {};
  auto ranks = cast.getOperand(1).getDefiningOp<bufferization::ToTensorOp>();
  if (!ranks)
    return {};
  for (Operation *user : ranks.getBuffer().getUsers())
    if (auto ranking = dyn_cast<moek::RankAssignmentsOp>(user))
      if (ranking.getRanks() == ranks.getBuffer() && ranking.getOffsets())
        return ranking;
  return {};
}

/// Emits a plan-derived buffer: written by the plan's ranking where it can
/// (rankingOf; `attach` adds the buffer to it), else by a KernelOp right
/// after the plan, so that it dominates every consumer, or for a saved
/// routing right after the residuals, so that the backward derives its own
/// (O(T*k), cheaper to recompute than to keep).
template <typename KernelOp>
static Value derive(
    RewriterBase &rewriter, Value routing, ArrayRef<int64_t> shape,
    StringRef name,
    function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, Value)> dynamicOf,
    function_ref<void(moek::RankAssignmentsOp, Value)> attach) {
  auto cast = unsaved(routing).getDefiningOp<UnrealizedConversionCastOp>();
  ImplicitLocOpBuilder b(cast.getLoc(), rewriter);
  if (moek::RankAssignmentsOp ranking = rankingOf(routing)) {
    b.setInsertionPoint(ranking);
    Value out = allocBuffer(b, shape, b.getI32Type(),
                            dynamicOf(b, ranking.getIndices()), name);
    rewriter.modifyOpInPlace(ranking, [&] { attach(ranking, out); });
    b.setInsertionPointAfter(cast);
    return asTensor(b, out);
  }
  if (Operation *save = routing.getDefiningOp<SaveForBackwardOp>())
    b.setInsertionPointAfter(save);
  else
    b.setInsertionPointAfter(cast);
  Value indices = readBuffer(b, cast.getOperand(0));
  Value ranks = readBuffer(b, cast.getOperand(1));
  Value offsets = readBuffer(b, cast.getOperand(2));
  Value out =
      allocBuffer(b, shape, b.getI32Type(), dynamicOf(b, indices), name);
  KernelOp::create(b, indices, ranks, offsets, out);
  return asTensor(b, out);
}

Value RoutingPlans::assignmentRows(RewriterBase &rewriter, Value routing) {
  Value &cached = rows[routing];
  if (!cached) {
    auto type = cast<RoutingType>(routing.getType());
    cached = derive<moek::AssignmentRowsOp>(
        rewriter, routing, {type.getTokens(), type.getTopK()},
        "routing.assignment_rows",
        [&](ImplicitLocOpBuilder &b, Value indices) {
          return tokenExtent(b, type.getTokens(), indices);
        },
        [](moek::RankAssignmentsOp ranking, Value rows) {
          ranking.getRowsMutable().assign(rows);
        });
  }
  return cached;
}

Value RoutingPlans::rowOwners(RewriterBase &rewriter, Value routing) {
  Value &cached = owners[routing];
  if (!cached) {
    auto type = cast<RoutingType>(routing.getType());
    cached = derive<moek::RowAssignmentsOp>(
        rewriter, routing, {type.getDispatchedRows()}, "routing.row_owners",
        [&](ImplicitLocOpBuilder &b, Value indices) -> SmallVector<Value> {
          if (type.hasStaticTokens())
            return {};
          return {arith::MulIOp::create(
              b, extentOf(b, indices, 0),
              arith::ConstantIndexOp::create(b, type.getTopK()))};
        },
        [](moek::RankAssignmentsOp ranking, Value owners) {
          ranking.getOwnersMutable().assign(owners);
        });
  }
  return cached;
}

LogicalResult RoutingPlans::eraseCasts(Operation *root,
                                       RewriterBase &rewriter) {
  WalkResult walk = root->walk([&](UnrealizedConversionCastOp c) {
    if (c->getNumResults() != 1 || !isa<RoutingType>(c.getResult(0).getType()))
      return WalkResult::advance();
    if (!c->use_empty()) {
      c->getUses().begin()->getOwner()->emitOpError()
          << "uses a !moe.routing value, which only moe.dispatch, "
             "moe.experts, moe.combine and the backward ops can consume when "
             "lowering to loops";
      return WalkResult::interrupt();
    }
    rewriter.eraseOp(c);
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}
