//===- MoekDialect.cpp - The MoE kernel dialect ---------------------------===//

#include "dialects/moek/IR/MoekDialect.h"
#include "dialects/moe/IR/MoeShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>
#include <cstdio>
#include <limits>

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
// Verifier helpers: every message names the operand and the rule. The
// lowerings index the buffers with these shapes unchecked, so every extent
// a kernel relies on is a rule here.
//===----------------------------------------------------------------------===//

static MemRefType memrefOf(Value value) {
  return cast<MemRefType>(value.getType());
}

static int64_t dim(Value value, unsigned index) {
  return memrefOf(value).getDimSize(index);
}

static std::string formatExtent(int64_t extent) {
  return ShapedType::isDynamic(extent) ? "?" : std::to_string(extent);
}

/// Doubles as a user wrote them (1.5, not 1.500000e+00).
static std::string formatNumber(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

/// a * b, dynamic if either is, saturated at the largest int64 on overflow:
/// every product is a number of assignments, which expectI32Rows bounds
/// (itself, or the extent it is compared with).
static int64_t product(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a) || ShapedType::isDynamic(b))
    return ShapedType::kDynamic;
  return moe::checkedMul(a, b).value_or(std::numeric_limits<int64_t>::max());
}

/// `name` must be a rank-`rank` buffer laid out as `layout`.
static LogicalResult expectBuffer(Operation *op, StringRef name, Value value,
                                  int64_t rank, StringRef layout) {
  MemRefType type = memrefOf(value);
  if (type.getRank() != rank)
    return op->emitOpError() << name << " must be a rank-" << rank << " buffer "
                             << layout << ", got " << type;
  // Checked size arithmetic, as for the moe ops: a buffer's size in bytes
  // fits in 64 bits, so every extent is below 2^62 and the rules' E + 1 and
  // 2 * F cannot overflow (found by moe-fuzz-ir: E = 2^63 - 1).
  std::optional<int64_t> elements = moe::checkedElementCount(type.getShape());
  if (!elements ||
      !moe::checkedByteCount(*elements,
                             moe::elementBitsForSizes(type.getElementType())))
    return op->emitOpError() << name << " (" << type
                             << ") is too large: its size in bytes does not "
                                "fit in 64 bits";
  return success();
}

static LogicalResult expectElement(Operation *op, StringRef name, Value value,
                                   Type expected) {
  Type element = memrefOf(value).getElementType();
  if (element != expected)
    return op->emitOpError() << name << " must have element type " << expected
                             << ", got " << element;
  return success();
}

/// Storage element types: f32, bf16, f16.
static LogicalResult expectStorageFloat(Operation *op, StringRef name,
                                        Value value) {
  Type element = memrefOf(value).getElementType();
  if (!element.isF32() && !element.isBF16() && !element.isF16())
    return op->emitOpError()
           << name << " must have element type f32, bf16 or f16, got "
           << element;
  return success();
}

/// `name` must have the element type of `refName`.
static LogicalResult expectSameElement(Operation *op, StringRef name,
                                       Value value, StringRef refName,
                                       Value ref) {
  Type element = memrefOf(value).getElementType();
  Type refElement = memrefOf(ref).getElementType();
  if (element != refElement)
    return op->emitOpError()
           << name << " has element type " << element << " but " << refName
           << " has " << refElement << ": mixed element types are not allowed";
  return success();
}

/// Weights are part of the model; the kernels size loops and scratch by
/// their extents.
static LogicalResult expectStaticShape(Operation *op, StringRef name,
                                       Value value, StringRef layout) {
  if (!memrefOf(value).hasStaticShape())
    return op->emitOpError() << name << " must have a static shape " << layout
                             << ", got " << value.getType();
  return success();
}

/// `what` (an extent of an operand) must agree with `expected`.
static LogicalResult expectExtent(Operation *op, StringRef what, int64_t actual,
                                  StringRef expectedWhat, int64_t expected) {
  if (!moe::extentsCompatible(actual, expected))
    return op->emitOpError()
           << what << " (" << formatExtent(actual) << ") does not match "
           << expectedWhat << " (" << formatExtent(expected) << ")";
  return success();
}

/// Ranks, grouped rows, offsets and owners are i32: the T*k assignments
/// (and their total in offsets[E]) must fit, as moe.gate's verifier and the
/// layer specs require.
static LogicalResult expectI32Rows(Operation *op, StringRef what,
                                   int64_t assignments) {
  if (!ShapedType::isDynamic(assignments) && assignments > moe::kMaxAssignments)
    return op->emitOpError()
           << what << " (" << assignments << ") exceeds the "
           << moe::kMaxAssignments
           << " assignments that the i32 routing metadata can index";
  return success();
}

/// `name` holds an i32 per assignment: [T, k].
static LogicalResult expectAssignments(Operation *op, StringRef name,
                                       Value value) {
  Builder b(op->getContext());
  return failure(failed(expectBuffer(op, name, value, 2, "[T, k]")) ||
                 failed(expectElement(op, name, value, b.getI32Type())));
}

/// `name` is an i32 [T, k] buffer of the shape of `refName`.
static LogicalResult expectAssignmentsLike(Operation *op, StringRef name,
                                           Value value, StringRef refName,
                                           Value ref) {
  if (failed(expectAssignments(op, name, value)) ||
      failed(expectExtent(op, (name + " dimension 0 (T)").str(), dim(value, 0),
                          (refName + " dimension 0 (T)").str(), dim(ref, 0))) ||
      failed(expectExtent(op, (name + " dimension 1 (k)").str(), dim(value, 1),
                          (refName + " dimension 1 (k)").str(), dim(ref, 1))))
    return failure();
  return success();
}

/// The kernels that loop over the k slots of a token take k from the type.
static LogicalResult expectStaticSlots(Operation *op, StringRef name,
                                       Value value) {
  if (memrefOf(value).isDynamicDim(1))
    return op->emitOpError() << name << " dimension 1 (k) must be static, got "
                             << value.getType();
  return success();
}

/// The number of assignments T*k of an [T, k] buffer.
static int64_t assignmentsOf(Value value) {
  return product(dim(value, 0), dim(value, 1));
}

/// The expert offsets: i32 [E+1].
static LogicalResult expectOffsets(Operation *op, Value offsets) {
  Builder b(op->getContext());
  return failure(failed(expectBuffer(op, "offsets", offsets, 1, "[E+1]")) ||
                 failed(expectElement(op, "offsets", offsets, b.getI32Type())));
}

//===----------------------------------------------------------------------===//
// Routing
//===----------------------------------------------------------------------===//

/// A per-token, per-expert f32 [T, E] buffer of the router (the saved
/// probabilities, the scores), T that of `x`.
static LogicalResult expectTokenExperts(Operation *op, StringRef name,
                                        Value value, Value x,
                                        int64_t experts, Type element = {}) {
  Builder b(op->getContext());
  if (failed(expectBuffer(op, name, value, 2, "[T, E]")) ||
      failed(expectElement(op, name, value,
                           element ? element : b.getF32Type())) ||
      failed(expectExtent(op, (name + " dimension 0 (T)").str(),
                          dim(value, 0), "x dimension 0 (T)", dim(x, 0))) ||
      failed(expectExtent(op, (name + " dimension 1 (E)").str(),
                          dim(value, 1), "w_gate dimension 1 (E)", experts)))
    return failure();
  return success();
}

/// Saved router probabilities: f32 [T, E], T that of `x`.
static LogicalResult expectProbabilities(Operation *op, Value probs, Value x,
                                         int64_t experts) {
  return expectTokenExperts(op, "probs", probs, x, experts);
}

LogicalResult RouteOp::verify() {
  Operation *op = getOperation();
  Value x = getX(), wGate = getWGate();
  if (failed(expectBuffer(op, "x", x, 2, "[T, H]")) ||
      failed(expectStorageFloat(op, "x", x)) ||
      failed(expectBuffer(op, "w_gate", wGate, 2, "[H, E]")) ||
      failed(expectStaticShape(op, "w_gate", wGate, "[H, E]")) ||
      failed(expectSameElement(op, "w_gate", wGate, "x", x)) ||
      failed(expectExtent(op, "w_gate dimension 0 (H)", dim(wGate, 0),
                          "x dimension 1 (H)", dim(x, 1))))
    return failure();
  int64_t experts = dim(wGate, 1), topK = getTopK();

  // The router's attributes follow the rules of moe.gate's (no capacity:
  // that is moek.rank_assignments').
  moe::RouterConfig config;
  config.experts = experts;
  config.topK = topK;
  config.nGroup = getNGroup();
  config.topkGroup = getTopkGroup();
  config.scaling = getScaling().convertToDouble();
  if (failed(moe::verifyRouterConfig([&] { return emitOpError(); }, config)))
    return failure();

  if (Value bias = getBias()) {
    if (failed(expectBuffer(op, "bias", bias, 1, "[E]")) ||
        failed(expectExtent(op, "bias dimension 0 (E)", dim(bias, 0),
                            "the number of experts of w_gate", experts)))
      return failure();
    Type biasElement = memrefOf(bias).getElementType();
    Type xElement = memrefOf(x).getElementType();
    if (!biasElement.isF32() && biasElement != xElement)
      return emitOpError() << "bias must have element type f32 or that of x ("
                           << xElement << "), got " << biasElement;
  }

  Builder b(getContext());
  auto expectTokenSlots = [&](StringRef name, Value value,
                              Type element) -> LogicalResult {
    if (failed(expectBuffer(op, name, value, 2, "[T, k]")) ||
        failed(expectElement(op, name, value, element)) ||
        failed(expectExtent(op, (name + " dimension 0 (T)").str(),
                            dim(value, 0), "x dimension 0 (T)", dim(x, 0))) ||
        failed(expectExtent(op, (name + " dimension 1 (k)").str(),
                            dim(value, 1), "top_k", topK)))
      return failure();
    return success();
  };
  if (Value probs = getProbs())
    if (failed(expectProbabilities(op, probs, x, experts)))
      return failure();
  if (Value scores = getScores())
    if (failed(expectTokenExperts(op, "scores", scores, x, experts)))
      return failure();
  return failure(
      failed(expectTokenSlots("weights", getWeights(), b.getF32Type())) ||
      failed(expectTokenSlots("indices", getIndices(), b.getI32Type())));
}

/// owners: i32 [T*k], a row per assignment of `indices`.
static LogicalResult expectOwners(Operation *op, Value owners, Value indices) {
  Builder b(op->getContext());
  return failure(
      failed(expectBuffer(op, "owners", owners, 1, "[T*k]")) ||
      failed(expectElement(op, "owners", owners, b.getI32Type())) ||
      failed(expectExtent(op, "owners dimension 0 (T*k)", dim(owners, 0),
                          "the number of assignments of indices (T*k)",
                          assignmentsOf(indices))));
}

LogicalResult RankAssignmentsOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  Value indices = getIndices(), counts = getCounts();
  if (failed(expectAssignments(op, "indices", indices)) ||
      failed(expectStaticSlots(op, "indices", indices)) ||
      failed(expectI32Rows(op, "the number of assignments of indices (T*k)",
                           assignmentsOf(indices))) ||
      failed(
          expectAssignmentsLike(op, "ranks", getRanks(), "indices", indices)) ||
      failed(expectBuffer(op, "counts", counts, 1, "[E]")) ||
      failed(expectElement(op, "counts", counts, b.getI32Type())))
    return failure();
  if (memrefOf(counts).isDynamicDim(0))
    return emitOpError() << "counts must have a static number of experts";
  // A token picks an expert at most once.
  int64_t slots = dim(indices, 1), experts = dim(counts, 0);
  if (slots > experts)
    return emitOpError() << "indices dimension 1 (k) (" << slots
                         << ") exceeds the number of experts of counts ("
                         << experts << ")";
  double cf = getCapacityFactor().convertToDouble();
  if (!(cf >= 0.0) || std::isinf(cf))
    return emitOpError() << "capacity_factor (" << formatNumber(cf)
                         << ") must be finite and non-negative (0 is "
                            "dropless)";
  if (Value partials = getPartials()) {
    int64_t tokens = dim(indices, 0);
    int64_t slices = ShapedType::isDynamic(tokens)
                         ? ShapedType::kDynamic
                         : (tokens + kTokensPerSlice - 1) / kTokensPerSlice;
    if (failed(expectBuffer(op, "partials", partials, 2, "[S, E]")) ||
        failed(expectElement(op, "partials", partials, b.getI32Type())) ||
        failed(expectExtent(op, "partials dimension 0 (ceil(T / 64))",
                            dim(partials, 0), "slices of indices", slices)) ||
        failed(expectExtent(op, "partials dimension 1 (E)", dim(partials, 1),
                            "counts dimension 0 (E)", experts)))
      return failure();
  }
  // The rest of the plan, made with the ranks.
  Value offsets = getOffsets(), rows = getRows(), owners = getOwners();
  if ((rows || owners) && !offsets)
    return emitOpError() << (rows ? "rows" : "owners")
                         << " need offsets (a grouped row is its expert's "
                            "offset plus the rank)";
  if (offsets &&
      (failed(expectOffsets(op, offsets)) ||
       failed(expectExtent(op, "offsets dimension 0 (E+1)", dim(offsets, 0),
                           "counts dimension 0 (E) plus one", experts + 1))))
    return failure();
  if (rows &&
      failed(expectAssignmentsLike(op, "rows", rows, "indices", indices)))
    return failure();
  if (owners && failed(expectOwners(op, owners, indices)))
    return failure();
  return success();
}

LogicalResult ExclusiveScanOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  Value counts = getCounts(), offsets = getOffsets();
  if (failed(expectBuffer(op, "counts", counts, 1, "[E]")) ||
      failed(expectElement(op, "counts", counts, b.getI32Type())) ||
      failed(expectOffsets(op, offsets)))
    return failure();
  int64_t experts = dim(counts, 0);
  return expectExtent(op, "offsets dimension 0 (E+1)", dim(offsets, 0),
                      "counts dimension 0 (E) plus one",
                      ShapedType::isDynamic(experts) ? experts : experts + 1);
}

/// indices and ranks [T, k], offsets [E+1]: the routing plan.
static LogicalResult verifyPlanInputs(Operation *op, Value indices, Value ranks,
                                      Value offsets) {
  return failure(
      failed(expectAssignments(op, "indices", indices)) ||
      failed(expectI32Rows(op, "the number of assignments of indices (T*k)",
                           assignmentsOf(indices))) ||
      failed(expectAssignmentsLike(op, "ranks", ranks, "indices", indices)) ||
      failed(expectOffsets(op, offsets)));
}

LogicalResult AssignmentRowsOp::verify() {
  Operation *op = getOperation();
  return failure(
      failed(verifyPlanInputs(op, getIndices(), getRanks(), getOffsets())) ||
      failed(expectAssignmentsLike(op, "rows", getRows(), "indices",
                                   getIndices())));
}

LogicalResult RowAssignmentsOp::verify() {
  Operation *op = getOperation();
  Value indices = getIndices();
  return failure(
      failed(verifyPlanInputs(op, indices, getRanks(), getOffsets())) ||
      failed(expectStaticSlots(op, "indices", indices)) ||
      failed(expectOwners(op, getOwners(), indices)));
}

//===----------------------------------------------------------------------===//
// Dispatch, experts, combine
//===----------------------------------------------------------------------===//

LogicalResult GatherRowsOp::verify() {
  Operation *op = getOperation();
  Value x = getX(), rows = getRows(), out = getOut();
  return failure(
      failed(expectBuffer(op, "x", x, 2, "[T, H]")) ||
      failed(expectStorageFloat(op, "x", x)) ||
      failed(expectAssignments(op, "rows", rows)) ||
      failed(expectI32Rows(op, "the number of assignments of rows (T*k)",
                           assignmentsOf(rows))) ||
      failed(expectExtent(op, "rows dimension 0 (T)", dim(rows, 0),
                          "x dimension 0 (T)", dim(x, 0))) ||
      failed(expectBuffer(op, "out", out, 2, "[T*k, H]")) ||
      failed(expectSameElement(op, "out", out, "x", x)) ||
      failed(expectExtent(op, "out dimension 0 (T*k)", dim(out, 0),
                          "the number of assignments of rows (T*k)",
                          assignmentsOf(rows))) ||
      failed(expectExtent(op, "out dimension 1 (H)", dim(out, 1),
                          "x dimension 1 (H)", dim(x, 1))));
}

/// The expert range [first, last) must lie in [0, E] where it is constant.
template <typename OpT>
static LogicalResult verifyExpertRange(OpT op, int64_t experts) {
  if (!op.getFirstExpert())
    return success();
  APInt value;
  int64_t first = 0;
  if (matchPattern(op.getFirstExpert(), m_ConstantInt(&value))) {
    first = value.getSExtValue();
    if (first < 0 || first > experts)
      return op.emitOpError() << "first_expert (" << first
                              << ") must be between 0 and the number of "
                                 "experts of b ("
                              << experts << ")";
  }
  if (matchPattern(op.getLastExpert(), m_ConstantInt(&value))) {
    int64_t last = value.getSExtValue();
    if (last < first || last > experts)
      return op.emitOpError()
             << "last_expert (" << last << ") must be between first_expert ("
             << first << ") and the number of experts of b (" << experts << ")";
  }
  return success();
}

/// The rules of moek.grouped_matmul, which its tile (moek.grouped_matmul_tile)
/// shares: the same operands and attributes.
template <typename OpT>
static LogicalResult verifyGroupedMatmulOperands(OpT self) {
  Operation *op = self.getOperation();
  Builder builder(self.getContext());
  auto emitOpError = [&] { return self.emitOpError(); };
  Value a = self.getA(), b = self.getB(), offsets = self.getOffsets(),
        c = self.getC();
  Value owners = self.getOwners(), weights = self.getWeights();
  bool transposeB = self.getTransposeB();
  StringRef bShape = transposeB ? "[E, N, K]" : "[E, K, N]";
  // The dimensions of b that hold K and N.
  unsigned kDim = transposeB ? 2 : 1, nDim = transposeB ? 1 : 2;
  if (failed(expectBuffer(op, "a", a, 2, "[rows, K]")) ||
      failed(expectStorageFloat(op, "a", a)) ||
      failed(expectBuffer(op, "b", b, 3, bShape)) ||
      failed(expectStaticShape(op, "b", b, bShape)))
    return failure();
  // An f32 a with a narrower b: the backward's f32 row buffers (dh) times a
  // weight, on the CPU.
  if (!cast<MemRefType>(a.getType()).getElementType().isF32() &&
      failed(expectSameElement(op, "b", b, "a", a)))
    return failure();
  if (failed(
          expectExtent(op, "a dimension 1 (K)", dim(a, 1),
                       transposeB ? "b dimension 2 (K)" : "b dimension 1 (K)",
                       dim(b, kDim))) ||
      failed(expectOffsets(op, offsets)) ||
      failed(expectExtent(op, "offsets dimension 0 (E+1)", dim(offsets, 0),
                          "b dimension 0 (E) plus one", dim(b, 0) + 1)) ||
      failed(expectBuffer(op, "c", c, 2, "[rows, N]")) ||
      failed(expectStorageFloat(op, "c", c)))
    return failure();
  int64_t experts = dim(b, 0), n = dim(b, nDim), topK = self.getTopK();

  if (static_cast<bool>(self.getFirstExpert()) !=
      static_cast<bool>(self.getLastExpert()))
    return emitOpError() << "first_expert and last_expert go together";
  if (failed(verifyExpertRange(self, experts)))
    return failure();
  // A token picks an expert at most once; owners / top_k is its token.
  if (topK < 1)
    return emitOpError() << "top_k (" << topK << ") must be at least 1";
  if (topK > experts)
    return emitOpError() << "top_k (" << topK
                         << ") exceeds the number of experts of b (" << experts
                         << ")";

  Epilogue epilogue = self.getEpilogue();
  bool storeScatter = epilogue == Epilogue::scatter_store;
  bool scatter = epilogue == Epilogue::scatter_add || storeScatter;
  bool glu = epilogue == Epilogue::silu_glu || epilogue == Epilogue::gelu_glu;
  if ((self.getGather() || scatter) && !owners)
    return emitOpError() << "a gather prologue or a scatter epilogue "
                            "needs the owners map";
  if (owners && !self.getGather() && !scatter)
    return emitOpError() << "owners is read only by a gather prologue or a "
                            "scatter epilogue";
  if (weights && !scatter)
    return emitOpError() << "weights are read only by a scatter epilogue";
  // Two rows of one token would both store c[t]: the last would win.
  if (storeScatter && topK != 1)
    return emitOpError() << "a scatter_store epilogue needs top_k = 1 (each "
                            "token one row), got top_k = "
                         << topK;

  if (glu && n % 2 != 0)
    return emitOpError() << "a GLU epilogue needs an even N, got " << n;
  if (Value h = self.getPreActivation()) {
    if (!glu)
      return emitOpError() << "pre_activation is written only by a GLU "
                              "epilogue, not by "
                           << stringifyEpilogue(epilogue);
    if (failed(expectBuffer(op, "pre_activation", h, 2, "[rows, N]")) ||
        failed(expectStorageFloat(op, "pre_activation", h)) ||
        failed(expectExtent(op, "pre_activation dimension 0 (rows)", dim(h, 0),
                            "c dimension 0 (rows)", dim(c, 0))) ||
        failed(expectExtent(
            op, "pre_activation dimension 1 (N)", dim(h, 1),
            transposeB ? "b dimension 1 (N)" : "b dimension 2 (N)", n)))
      return failure();
  }
  if (failed(expectExtent(
          op, "c dimension 1", dim(c, 1),
          glu ? (transposeB ? "half of b dimension 1 (N)"
                            : "half of b dimension 2 (N)")
              : (transposeB ? "b dimension 1 (N)" : "b dimension 2 (N)"),
          glu ? n / 2 : n)))
    return failure();

  if (owners &&
      (failed(expectBuffer(op, "owners", owners, 1, "[T*k]")) ||
       failed(expectElement(op, "owners", owners, builder.getI32Type())) ||
       failed(expectI32Rows(op, "owners dimension 0 (T*k)", dim(owners, 0)))))
    return failure();
  // The gather prologue reads token owners[r] / top_k of a.
  if (self.getGather() &&
      failed(expectExtent(op, "owners dimension 0 (T*k)", dim(owners, 0),
                          "a dimension 0 (T) times top_k",
                          product(dim(a, 0), topK))))
    return failure();
  // Without it, a and c hold the same grouped rows.
  if (!self.getGather() && !scatter &&
      failed(expectExtent(op, "c dimension 0 (rows)", dim(c, 0),
                          "a dimension 0 (rows)", dim(a, 0))))
    return failure();
  if (!scatter)
    return success();

  // The scatter-add accumulates weights[t, j] * row into c[t] in f32; the
  // scatter-store writes c[t] once, in c's own type.
  if ((!storeScatter &&
       failed(expectElement(op, "c", c, builder.getF32Type()))) ||
      failed(expectExtent(op, "owners dimension 0 (T*k)", dim(owners, 0),
                          "c dimension 0 (T) times top_k",
                          product(dim(c, 0), topK))))
    return failure();
  if (!weights)
    return success();
  if (failed(expectBuffer(op, "weights", weights, 2, "[T, k]")) ||
      failed(expectElement(op, "weights", weights, builder.getF32Type())) ||
      failed(expectExtent(op, "weights dimension 0 (T)", dim(weights, 0),
                          "c dimension 0 (T)", dim(c, 0))) ||
      failed(expectExtent(op, "weights dimension 1 (k)", dim(weights, 1),
                          "top_k", topK)))
    return failure();
  return success();
}

LogicalResult GroupedMatmulOp::verify() {
  return verifyGroupedMatmulOperands(*this);
}

LogicalResult GroupedMatmulTileOp::verify() {
  if (failed(verifyGroupedMatmulOperands(*this)))
    return failure();
  ArrayRef<int64_t> tile = getTile();
  if (tile.size() != 6 || llvm::any_of(tile, [](int64_t v) { return v < 1; }))
    return emitOpError() << "tile must be six positive sizes [BM, BN, BK, "
                            "STAGES, WARPS_M, WARPS_N], got "
                         << tile.size() << " values";
  // The count after the tile is the count before it plus its k tiles.
  if (static_cast<bool>(getKTilesBefore()) !=
      static_cast<bool>(getKTilesAfter()))
    return emitOpError() << "k_tiles (the k tiles before the tile) and the "
                            "result (those after it) go together";
  if (getClusterSize() < 1)
    return emitOpError() << "cluster_size (" << getClusterSize()
                         << ") must be at least 1";
  return success();
}

LogicalResult RowTileOp::verify() {
  Operation *op = getOperation();
  if (failed(expectOffsets(op, getOffsets())))
    return failure();
  if (static_cast<bool>(getFirstExpert()) != static_cast<bool>(getLastExpert()))
    return emitOpError() << "first_expert and last_expert go together";
  if (getRowsPerTile() < 1)
    return emitOpError() << "rows_per_tile (" << getRowsPerTile()
                         << ") must be at least 1";
  return success();
}

LogicalResult GluOp::verify() {
  Operation *op = getOperation();
  Value h = getH(), out = getOut();
  if (failed(expectBuffer(op, "h", h, 2, "[rows, 2F]")) ||
      failed(expectStorageFloat(op, "h", h)) ||
      failed(expectBuffer(op, "out", out, 2, "[rows, F]")) ||
      failed(expectStorageFloat(op, "out", out)) ||
      failed(expectExtent(op, "out dimension 0 (rows)", dim(out, 0),
                          "h dimension 0 (rows)", dim(h, 0))))
    return failure();
  int64_t twoF = dim(h, 1);
  if (ShapedType::isDynamic(twoF))
    return success();
  if (twoF % 2 != 0)
    return emitOpError() << "h dimension 1 (2F) must be even (gate and up "
                            "halves), got "
                         << twoF;
  return expectExtent(op, "out dimension 1 (F)", dim(out, 1),
                      "half of h dimension 1 (2F)", twoF / 2);
}

LogicalResult CombineRowsOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  Value expertOut = getExpertOut(), weights = getWeights(), rows = getRows();
  Value y = getY();
  if (failed(expectBuffer(op, "expert_out", expertOut, 2, "[T*k, H]")) ||
      failed(expectStorageFloat(op, "expert_out", expertOut)) ||
      failed(expectBuffer(op, "weights", weights, 2, "[T, k]")) ||
      failed(expectElement(op, "weights", weights, b.getF32Type())) ||
      failed(expectAssignmentsLike(op, "rows", rows, "weights", weights)) ||
      failed(expectI32Rows(op, "the number of assignments of rows (T*k)",
                           assignmentsOf(rows))) ||
      failed(expectExtent(op, "expert_out dimension 0 (T*k)", dim(expertOut, 0),
                          "the number of assignments of rows (T*k)",
                          assignmentsOf(rows))) ||
      failed(expectBuffer(op, "y", y, 2, "[T, H]")) ||
      failed(expectStorageFloat(op, "y", y)) ||
      failed(expectExtent(op, "y dimension 0 (T)", dim(y, 0),
                          "weights dimension 0 (T)", dim(weights, 0))) ||
      failed(expectExtent(op, "y dimension 1 (H)", dim(y, 1),
                          "expert_out dimension 1 (H)", dim(expertOut, 1))))
    return failure();
  // The kernel accumulates a row of y in scratch of H elements.
  if (memrefOf(y).isDynamicDim(1))
    return emitOpError() << "y dimension 1 (H) must be static, got "
                         << y.getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Backward kernels
//===----------------------------------------------------------------------===//

static LogicalResult expectExpertRange(Operation *op, Value first, Value last) {
  if (static_cast<bool>(first) != static_cast<bool>(last))
    return op->emitOpError() << "first_expert and last_expert go together";
  return success();
}

/// The row-owners map: i32 [rows].
static LogicalResult expectOwners(Operation *op, Value owners) {
  Builder b(op->getContext());
  return failure(failed(expectBuffer(op, "owners", owners, 1, "[rows]")) ||
                 failed(expectElement(op, "owners", owners, b.getI32Type())));
}

/// f32 per (token, slot): [T, k].
static LogicalResult expectSlotsF32(Operation *op, StringRef name,
                                    Value value) {
  Builder b(op->getContext());
  return failure(failed(expectBuffer(op, name, value, 2, "[T, k]")) ||
                 failed(expectElement(op, name, value, b.getF32Type())));
}

LogicalResult ExpertLoadsOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  Value loads = getLoads();
  if (failed(expectOffsets(op, getOffsets())) ||
      failed(expectBuffer(op, "loads", loads, 1, "[E]")) ||
      failed(expectElement(op, "loads", loads, b.getI32Type())) ||
      failed(expectStaticShape(op, "loads", loads, "[E]")))
    return failure();
  return expectExtent(op, "offsets dimension 0 (E+1)", dim(getOffsets(), 0),
                      "loads dimension 0 plus one", dim(loads, 0) + 1);
}

LogicalResult GroupedGluBackwardOp::verify() {
  Operation *op = getOperation();
  Value g = getG(), gateUp = getGateUp();
  if (failed(expectBuffer(op, "g", g, 2, "[rows, F]")) ||
      failed(expectStorageFloat(op, "g", g)) ||
      failed(expectOffsets(op, getOffsets())) ||
      failed(expectOwners(op, getOwners())) ||
      failed(expectSlotsF32(op, "weights", getWeights())) ||
      failed(expectBuffer(op, "gate_up", gateUp, 2, "[rows, 2F]")) ||
      failed(expectBuffer(op, "act", getAct(), 2, "[rows, F]")) ||
      failed(expectStorageFloat(op, "act", getAct())) ||
      failed(expectBuffer(op, "dh", getDh(), 2, "[rows, 2F]")) ||
      failed(expectStorageFloat(op, "dh", getDh())) ||
      failed(expectSlotsF32(op, "d_weights", getDWeights())) ||
      failed(expectExpertRange(op, getFirstExpert(), getLastExpert())))
    return failure();
  int64_t ffn = dim(g, 1);
  if (ShapedType::isDynamic(ffn))
    return emitOpError() << "g dimension 1 (F) must be static";
  if (failed(expectExtent(op, "gate_up dimension 1 (2F)", dim(gateUp, 1),
                          "twice g dimension 1 (F)", 2 * ffn)) ||
      failed(expectExtent(op, "dh dimension 1 (2F)", dim(getDh(), 1),
                          "twice g dimension 1 (F)", 2 * ffn)) ||
      failed(expectExtent(op, "act dimension 1 (F)", dim(getAct(), 1),
                          "g dimension 1 (F)", ffn)) ||
      failed(expectExtent(op, "g dimension 0 (rows)", dim(g, 0),
                          "gate_up dimension 0 (rows)", dim(gateUp, 0))) ||
      failed(expectExtent(op, "act dimension 0 (rows)", dim(getAct(), 0),
                          "gate_up dimension 0 (rows)", dim(gateUp, 0))) ||
      failed(expectExtent(op, "dh dimension 0 (rows)", dim(getDh(), 0),
                          "gate_up dimension 0 (rows)", dim(gateUp, 0))) ||
      failed(expectExtent(op, "weights dimension 1 (k)", dim(getWeights(), 1),
                          "top_k", getTopK())) ||
      failed(expectExtent(op, "d_weights dimension 1 (k)",
                          dim(getDWeights(), 1), "top_k", getTopK())))
    return failure();
  return success();
}

LogicalResult GroupedWeightGradOp::verify() {
  Operation *op = getOperation();
  Value dw = getDw();
  if (failed(expectBuffer(op, "lhs", getLhs(), 2, "[rows or T, K]")) ||
      failed(expectBuffer(op, "rhs", getRhs(), 2, "[rows or T, N]")) ||
      failed(expectOffsets(op, getOffsets())) ||
      failed(expectOwners(op, getOwners())) ||
      failed(expectBuffer(op, "dw", dw, 3, "[E, K, N]")) ||
      failed(expectStaticShape(op, "dw", dw, "[E, K, N]")) ||
      failed(expectStorageFloat(op, "dw", dw)) ||
      failed(expectExpertRange(op, getFirstExpert(), getLastExpert())))
    return failure();
  if (getWeights() && failed(expectSlotsF32(op, "weights", getWeights())))
    return failure();
  if (getGatherLhs() && getGatherRhs())
    return emitOpError() << "gathers both lhs and rhs: one side of a weight "
                            "gradient is grouped rows";
  return failure(failed(expectExtent(op, "lhs dimension 1", dim(getLhs(), 1),
                                     "dw dimension 1", dim(dw, 1))) ||
                 failed(expectExtent(op, "rhs dimension 1", dim(getRhs(), 1),
                                     "dw dimension 2", dim(dw, 2))));
}

/// The score gradients rounded for tensor cores: [T, E] in x's element
/// type, which must be bf16 or f16 (an f32 layer's products read the f32
/// scores).
static LogicalResult expectNarrowScoreGradients(Operation *op, Value ds,
                                                Value x, int64_t experts) {
  Type element = memrefOf(x).getElementType();
  if (!element.isBF16() && !element.isF16())
    return op->emitOpError()
           << "has ds but x has element type " << element
           << ": ds holds the score gradients rounded to a bf16 or f16 "
              "layer's type for tensor cores";
  return expectTokenExperts(op, "ds", ds, x, experts, element);
}

LogicalResult RouteBackwardOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  Type f32 = b.getF32Type();
  Value x = getX(), wGate = getWGate(), indices = getIndices();
  if (failed(expectBuffer(op, "x", x, 2, "[T, H]")) ||
      failed(expectStorageFloat(op, "x", x)) ||
      failed(expectBuffer(op, "w_gate", wGate, 2, "[H, E]")) ||
      failed(expectStaticShape(op, "w_gate", wGate, "[H, E]")) ||
      failed(expectSameElement(op, "w_gate", wGate, "x", x)) ||
      failed(expectAssignments(op, "indices", indices)) ||
      failed(expectStaticSlots(op, "indices", indices)) ||
      failed(expectOffsets(op, getOffsets())) ||
      failed(expectSlotsF32(op, "d_weights", getDWeights())) ||
      failed(expectBuffer(op, "dx", getDx(), 2, "[T, H]")) ||
      failed(expectBuffer(op, "dw_gate", getDwGate(), 2, "[H, E]")) ||
      failed(expectElement(op, "dw_gate", getDwGate(), f32)) ||
      failed(expectBuffer(op, "aux", getAux(), 0, "[]")) ||
      failed(expectElement(op, "aux", getAux(), f32)))
    return failure();
  // dx receives each element's sum over E in one addition, so it may be in
  // x's type (rounded once) as well as f32.
  Type dxElement = memrefOf(getDx()).getElementType();
  Type xElement = memrefOf(x).getElementType();
  if (dxElement != f32 && dxElement != xElement)
    return emitOpError() << "dx must have element type f32 or x's (" << xElement
                         << "), got " << dxElement;
  int64_t experts = dim(wGate, 1);
  return failure(
      failed(expectExtent(op, "w_gate dimension 0 (H)", dim(wGate, 0),
                          "x dimension 1 (H)", dim(x, 1))) ||
      failed(expectExtent(op, "offsets dimension 0 (E+1)", dim(getOffsets(), 0),
                          "experts + 1", experts + 1)) ||
      failed(expectExtent(op, "dw_gate dimension 1 (E)", dim(getDwGate(), 1),
                          "w_gate dimension 1 (E)", experts)) ||
      failed(expectExtent(op, "dx dimension 1 (H)", dim(getDx(), 1),
                          "x dimension 1 (H)", dim(x, 1))) ||
      failed(expectExtent(op, "d_weights dimension 1 (k)",
                          dim(getDWeights(), 1), "indices dimension 1 (k)",
                          dim(indices, 1))) ||
      (getProbs() && failed(expectProbabilities(op, getProbs(), x, experts))) ||
      (getScores() &&
       failed(expectTokenExperts(op, "scores", getScores(), x, experts))) ||
      (getDs() && failed(expectNarrowScoreGradients(op, getDs(), x, experts))));
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

/// i32 [G] segment counts, G static and divisible by the ranks.
static LogicalResult expectSegmentCounts(Operation *op, StringRef name,
                                         Value counts, int64_t ranks) {
  Builder b(op->getContext());
  if (ranks < 1)
    return op->emitOpError() << "ranks must be at least 1, got " << ranks;
  if (failed(expectBuffer(op, name, counts, 1, "[G]")) ||
      failed(expectElement(op, name, counts, b.getI32Type())) ||
      failed(expectStaticShape(op, name, counts, "[G]")))
    return failure();
  if (dim(counts, 0) % ranks != 0)
    return op->emitOpError()
           << name << " has " << dim(counts, 0)
           << " segments, which the ranks (" << ranks << ") do not divide";
  return success();
}

/// The runtime moves a collective's buffers as bytes from their base
/// pointers: they must be contiguous, in row-major order.
static LogicalResult expectContiguous(Operation *op, StringRef name,
                                      Value value) {
  if (!memrefOf(value).getLayout().isIdentity())
    return op->emitOpError() << name
                             << " must have the identity layout (contiguous "
                                "rows), got "
                             << value.getType();
  return success();
}

LogicalResult ExchangeCountsOp::verify() {
  Operation *op = getOperation();
  if (failed(expectSegmentCounts(op, "counts", getCounts(), getRanks())) ||
      failed(expectContiguous(op, "counts", getCounts())) ||
      failed(expectContiguous(op, "received", getReceived())))
    return failure();
  if (getReceived().getType() != getCounts().getType())
    return op->emitOpError() << "received (" << getReceived().getType()
                             << ") must have the type of counts ("
                             << getCounts().getType() << ")";
  return success();
}

/// The operands of an all-to-all, moek.all_to_all's and
/// moek.all_to_all_start's: counts per rank, rows [N, H] sent and received
/// [M, H] (contiguous, one element type of a known size, H static), and
/// received_counts of counts' type.
static LogicalResult expectAllToAllOperands(Operation *op, Value counts,
                                            int64_t ranks, Value rows,
                                            Value received,
                                            Value receivedCounts) {
  if (failed(expectSegmentCounts(op, "counts", counts, ranks)) ||
      failed(expectBuffer(op, "rows", rows, 2, "[N, H]")) ||
      failed(expectBuffer(op, "received", received, 2, "[M, H]")) ||
      failed(expectSameElement(op, "received", received, "rows", rows)) ||
      failed(expectContiguous(op, "rows", rows)) ||
      failed(expectContiguous(op, "received", received)))
    return failure();
  if (receivedCounts.getType() != counts.getType())
    return op->emitOpError()
           << "received_counts (" << receivedCounts.getType()
           << ") must have the type of counts (" << counts.getType() << ")";
  if (ShapedType::isDynamic(dim(rows, 1)))
    return op->emitOpError() << "rows dimension 1 (H) must be static";
  // The runtime moves rows as bytes: their elements need a size.
  if (!memrefOf(rows).getElementType().isIntOrFloat())
    return op->emitOpError() << "rows must have an integer or floating-point "
                                "element type, got "
                             << memrefOf(rows).getElementType();
  return expectExtent(op, "received dimension 1 (H)", dim(received, 1),
                      "rows dimension 1 (H)", dim(rows, 1));
}

LogicalResult AllToAllOp::verify() {
  return expectAllToAllOperands(getOperation(), getCounts(), getRanks(),
                                getRows(), getReceived(), getReceivedCounts());
}

LogicalResult ReceivedAssignmentsOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  if (failed(expectSegmentCounts(op, "counts", getCounts(), getRanks())) ||
      failed(expectBuffer(op, "indices", getIndices(), 2, "[N, 1]")) ||
      failed(expectElement(op, "indices", getIndices(), b.getI32Type())) ||
      failed(expectBuffer(op, "weights", getWeights(), 2, "[N, 1]")) ||
      failed(expectElement(op, "weights", getWeights(), b.getF32Type())))
    return failure();
  if (dim(getIndices(), 1) != 1 || dim(getWeights(), 1) != 1)
    return op->emitOpError() << "indices and weights must have one slot "
                                "([N, 1]: top_k = 1)";
  return expectExtent(op, "weights dimension 0 (N)", dim(getWeights(), 0),
                      "indices dimension 0 (N)", dim(getIndices(), 0));
}

/// values [T, k] f32, rows [T, k] i32 (assignment rows), a [T*k, 1] f32
/// buffer in row order.
static LogicalResult expectSlotsAndRowBuffer(Operation *op, Value values,
                                             Value rows, Value rowBuffer,
                                             StringRef rowName) {
  Builder b(op->getContext());
  if (failed(expectBuffer(op, "values", values, 2, "[T, k]")) ||
      failed(expectElement(op, "values", values, b.getF32Type())) ||
      failed(expectBuffer(op, "rows", rows, 2, "[T, k]")) ||
      failed(expectElement(op, "rows", rows, b.getI32Type())) ||
      failed(expectBuffer(op, rowName, rowBuffer, 2, "[T*k, 1]")) ||
      failed(expectElement(op, rowName, rowBuffer, b.getF32Type())))
    return failure();
  if (dim(rowBuffer, 1) != 1)
    return op->emitOpError()
           << rowName << " must have one column, got " << rowBuffer.getType();
  if (failed(expectExtent(op, "rows dimension 0 (T)", dim(rows, 0),
                          "values dimension 0 (T)", dim(values, 0))) ||
      failed(expectExtent(op, "rows dimension 1 (k)", dim(rows, 1),
                          "values dimension 1 (k)", dim(values, 1))))
    return failure();
  return expectExtent(op, (rowName + " dimension 0 (T*k)").str(),
                      dim(rowBuffer, 0), "T*k",
                      product(dim(values, 0), dim(values, 1)));
}

LogicalResult SlotsToRowsOp::verify() {
  return expectSlotsAndRowBuffer(getOperation(), getValues(), getRows(),
                                 getOut(), "out");
}

LogicalResult RowsToSlotsOp::verify() {
  return expectSlotsAndRowBuffer(getOperation(), getValues(), getRows(),
                                 getIn(), "in");
}

LogicalResult AllToAllStartOp::verify() {
  return expectAllToAllOperands(getOperation(), getCounts(), getRanks(),
                                getRows(), getReceived(), getReceivedCounts());
}

LogicalResult AllToAllWaitOp::verify() {
  auto start = getEvent().getDefiningOp<AllToAllStartOp>();
  if (start &&
      (start.getRows() != getRows() || start.getReceived() != getReceived()))
    return emitOpError() << "must name the buffers of the all_to_all_start "
                            "that made its event (rows and received)";
  return success();
}

LogicalResult AllReduceOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  if (getRanks() < 1)
    return emitOpError() << "ranks must be at least 1, got " << getRanks();
  if (failed(expectBuffer(op, "in", getIn(), 1, "[N]")) ||
      failed(expectElement(op, "in", getIn(), b.getI32Type())) ||
      failed(expectStaticShape(op, "in", getIn(), "[N]")) ||
      failed(expectContiguous(op, "in", getIn())) ||
      failed(expectContiguous(op, "out", getOut())))
    return failure();
  if (getOut().getType() != getIn().getType())
    return emitOpError() << "out (" << getOut().getType()
                         << ") must have the type of in (" << getIn().getType()
                         << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// The block's kernels
//===----------------------------------------------------------------------===//

/// Dimension `index` of `name` must be static: the kernel sizes its loops
/// by it.
static LogicalResult expectStaticDim(Operation *op, StringRef name, Value value,
                                     unsigned index) {
  if (memrefOf(value).isDynamicDim(index))
    return op->emitOpError() << name << " dimension " << index
                             << " must be static, got " << value.getType();
  return success();
}

LogicalResult MatmulOp::verify() {
  Operation *op = getOperation();
  Value a = getA(), b = getB(), c = getC();
  if (failed(expectBuffer(op, "a", a, 2, "[M, K]")) ||
      failed(expectStorageFloat(op, "a", a)) ||
      failed(expectBuffer(op, "b", b, 2, "[K, N]")) ||
      failed(expectStaticShape(op, "b", b, "[K, N]")) ||
      failed(expectSameElement(op, "b", b, "a", a)) ||
      failed(expectBuffer(op, "c", c, 2, "[M, N]")) ||
      failed(expectExtent(op, "b dimension 0 (K)", dim(b, 0),
                          "a dimension 1 (K)", dim(a, 1))) ||
      failed(expectExtent(op, "c dimension 0 (M)", dim(c, 0),
                          "a dimension 0 (M)", dim(a, 0))) ||
      failed(expectExtent(op, "c dimension 1 (N)", dim(c, 1),
                          "b dimension 1 (N)", dim(b, 1))))
    return failure();
  Type element = memrefOf(c).getElementType();
  if (!element.isF32() && element != memrefOf(a).getElementType())
    return emitOpError() << "c must have element type f32 or that of a ("
                         << memrefOf(a).getElementType() << "), got "
                         << element;
  return success();
}

LogicalResult RmsNormOp::verify() {
  Operation *op = getOperation();
  Value x = getX(), g = getG(), out = getOut();
  if (failed(expectBuffer(op, "x", x, 2, "[T, H]")) ||
      failed(expectStorageFloat(op, "x", x)) ||
      failed(expectBuffer(op, "g", g, 1, "[H]")) ||
      failed(expectStaticShape(op, "g", g, "[H]")) ||
      failed(expectSameElement(op, "g", g, "x", x)) ||
      failed(expectBuffer(op, "out", out, 2, "[T, H]")) ||
      failed(expectSameElement(op, "out", out, "x", x)) ||
      failed(expectExtent(op, "x dimension 1 (H)", dim(x, 1),
                          "g dimension 0 (H)", dim(g, 0))) ||
      failed(expectExtent(op, "out dimension 0 (T)", dim(out, 0),
                          "x dimension 0 (T)", dim(x, 0))) ||
      failed(expectExtent(op, "out dimension 1 (H)", dim(out, 1),
                          "x dimension 1 (H)", dim(x, 1))))
    return failure();
  if (memrefOf(x).isDynamicDim(1))
    return emitOpError() << "x dimension 1 (H) must be static, got "
                         << x.getType();
  double epsilon = getEpsilon().convertToDouble();
  if (!(epsilon > 0) || !std::isfinite(epsilon))
    return emitOpError() << "epsilon must be positive and finite, got "
                         << formatNumber(epsilon);
  return success();
}

int64_t FlashAttentionOp::getHeadDim() { return dim(getQ(), 2) / getHeads(); }

LogicalResult FlashAttentionOp::verify() {
  Operation *op = getOperation();
  Value q = getQ(), k = getK(), v = getV(), o = getO();
  int64_t heads = getHeads(), kvHeads = getKvHeads();
  if (failed(expectBuffer(op, "q", q, 3, "[B, L, heads*dh]")) ||
      failed(expectBuffer(op, "k", k, 3, "[B, L, kv_heads*dh]")) ||
      failed(expectBuffer(op, "v", v, 3, "[B, L, kv_heads*dh]")) ||
      failed(expectBuffer(op, "o", o, 3, "[B, L, heads*dh]")) ||
      failed(expectStorageFloat(op, "o", o)))
    return failure();
  Type storage = memrefOf(o).getElementType();
  for (auto [name, value] :
       {std::pair<StringRef, Value>{"q", q}, {"k", k}, {"v", v}}) {
    Type element = memrefOf(value).getElementType();
    if (!element.isF32() && element != storage)
      return emitOpError() << name << " must have element type f32 or that of "
                           << "o (" << storage << "), got " << element;
    if (failed(expectExtent(op, (name + " dimension 0 (B)").str(),
                            dim(value, 0), "o dimension 0 (B)", dim(o, 0))) ||
        failed(expectExtent(op, (name + " dimension 1 (L)").str(),
                            dim(value, 1), "o dimension 1 (L)", dim(o, 1))) ||
        failed(expectStaticDim(op, name, value, 2)))
      return failure();
  }
  if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0)
    return emitOpError() << "heads (" << heads << ") must be a positive "
                         << "multiple of kv_heads (" << kvHeads
                         << "): each key/value head serves a group of query "
                            "heads";
  int64_t width = dim(q, 2);
  if (width % heads != 0 || width == 0)
    return emitOpError() << "q dimension 2 (" << width
                         << ") must be a positive multiple of heads (" << heads
                         << "): heads*dh";
  int64_t headDim = width / heads;
  if (failed(expectExtent(op, "k dimension 2 (kv_heads*dh)", dim(k, 2),
                          "kv_heads*dh", kvHeads * headDim)) ||
      failed(expectExtent(op, "v dimension 2 (kv_heads*dh)", dim(v, 2),
                          "kv_heads*dh", kvHeads * headDim)) ||
      failed(expectExtent(op, "o dimension 2 (heads*dh)", dim(o, 2),
                          "q dimension 2 (heads*dh)", width)))
    return failure();
  return success();
}
