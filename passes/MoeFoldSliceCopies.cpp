//===- MoeFoldSliceCopies.cpp - Copies of contiguous slices become views --===//
//
// moe-batch-tile-attention's loop reads each tile of the batch as a slice
// of the block's normalized rows and writes the tile's output into a slice
// of the whole batch's; the kernels take buffers of identity layout, so the
// lowering copies the input slice into a tile-sized buffer and the output
// buffer into its slice (`memref.copy`): two kernels a tile on the GPU, and
// two tile-sized buffers in the attention phase's peak. A slice of whole
// rows of a row-major buffer is contiguous, so the tile's buffer can be
// those bytes instead:
//
//   %rows = memref.alloc() : memref<1x64x2048xbf16>
//   memref.copy %slice, %rows          // %slice = subview %batch[%t, 0, 0]
//
// becomes `%rows = memref.view %batchBytes[%t * 262144][]`, where %batch
// itself becomes a view of `%batchBytes = memref.alloc() : memref<Nxi8>`
// (moe-plan-memory then places those bytes like any buffer). Both
// directions fold: a buffer only read after it is copied from the slice,
// and a buffer only copied into the slice after it is written; and only
// when nothing else touches the sliced buffer while the tile's buffer lives
// (written, for a copy in; at all, for a copy out), so every read sees the
// bytes the copy would have made, and when the slice starts at a multiple
// of 16 bytes wherever it is, as the kernels' vector accesses assume.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoeToKernels/KernelBuilding.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Dominance.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEFOLDSLICECOPIESPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// `buffer` and every memref derived from it by the ops that use it (views,
/// reshapes; a loop's results).
SmallVector<Value> aliasesOf(Value buffer) {
  SmallVector<Value> aliases = {buffer}, worklist = {buffer};
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    for (Operation *user : value.getUsers())
      for (Value result : user->getResults())
        if (isa<MemRefType>(result.getType())) {
          aliases.push_back(result);
          worklist.push_back(result);
        }
  }
  return aliases;
}

/// Whether `op` may write `value`: an op that does not say what it does
/// to its operands may (a loop, say, through its region's arguments, which
/// aliasesOf does not follow), unless it only makes a view.
bool mayWrite(Operation *op, Value value) {
  if (!isa<MemoryEffectOpInterface>(op))
    return !isa<ViewLikeOpInterface>(op);
  return hasEffect<MemoryEffects::Write, MemoryEffects::Free>(op, value);
}

/// The ops of `block` from `first` to `last` (inclusive) and everything
/// nested in them.
void forEachOpBetween(Operation *first, Operation *last,
                      function_ref<void(Operation *)> visit) {
  for (Operation *op = first; op; op = op->getNextNode()) {
    op->walk(visit);
    if (op == last)
      break;
  }
}

/// The alignment, in bytes, a tile's view keeps: the kernels' vector
/// accesses (cp.async, 16-byte loads and stores) assume their buffers'
/// rows start at multiples of 16 bytes, as allocations and the memory plan
/// guarantee.
constexpr int64_t kViewAlignment = 16;

/// The slice's offset into its source, in bytes, as terms: each of the
/// slice's offsets with the bytes one step of it moves.
SmallVector<std::pair<OpFoldResult, int64_t>>
byteOffsetTerms(memref::SubViewOp slice) {
  MemRefType source = slice.getSourceType();
  SmallVector<int64_t> strides = source.getStridesAndOffset().first;
  int64_t bytes = source.getElementTypeBitWidth() / 8;
  SmallVector<std::pair<OpFoldResult, int64_t>> terms;
  for (auto [offset, stride] : llvm::zip(slice.getMixedOffsets(), strides))
    terms.push_back({offset, stride * bytes});
  return terms;
}

/// Whether every offset the slice may take is a multiple of kViewAlignment
/// bytes into its source.
bool keepsAlignment(memref::SubViewOp slice) {
  for (auto [offset, step] : byteOffsetTerms(slice)) {
    std::optional<int64_t> known = getConstantIntValue(offset);
    if ((known ? *known * step : step) % kViewAlignment)
      return false;
  }
  return true;
}

/// One copy between a tile-sized buffer and a slice, and whether it folds.
struct SliceCopy {
  memref::CopyOp copy;
  memref::AllocOp tile;      ///< the tile-sized buffer
  memref::SubViewOp slice;   ///< the slice of `whole`
  /// The sliced buffer: an allocation, or the view of its bytes that an
  /// earlier fold made of it.
  TypedValue<MemRefType> whole;
  bool into = false;         ///< copy tile -> slice (else slice -> tile)
  /// aliasesOf(tile) and aliasesOf(whole), once a copy matches.
  SmallVector<Value> tileAliases, wholeAliases;

  /// The copy's shape, when its operands are a fresh buffer and a
  /// contiguous slice of another one of the function's buffers.
  static std::optional<SliceCopy>
  match(memref::CopyOp copy, const DenseMap<Value, Value> &bytesOf) {
    SliceCopy c;
    c.copy = copy;
    c.tile = copy.getTarget().getDefiningOp<memref::AllocOp>();
    c.slice = copy.getSource().getDefiningOp<memref::SubViewOp>();
    if (!c.tile || !c.slice) {
      c.into = true;
      c.tile = copy.getSource().getDefiningOp<memref::AllocOp>();
      c.slice = copy.getTarget().getDefiningOp<memref::SubViewOp>();
    }
    if (!c.tile || !c.slice)
      return std::nullopt;
    c.whole = c.slice.getSource();
    if ((!c.whole.getDefiningOp<memref::AllocOp>() &&
         !bytesOf.contains(c.whole)) ||
        c.tile->getBlock() != copy->getBlock())
      return std::nullopt;
    MemRefType tileType = c.tile.getType(), wholeType = c.whole.getType();
    MemRefType sliceType = c.slice.getType();
    if (!tileType.getLayout().isIdentity() || !tileType.hasStaticShape() ||
        !wholeType.getLayout().isIdentity() || !wholeType.hasStaticShape() ||
        tileType.getShape() != sliceType.getShape() ||
        tileType.getElementType() != wholeType.getElementType() ||
        wholeType.getElementTypeBitWidth() % 8 != 0 ||
        !memref::isStaticShapeAndContiguousRowMajor(sliceType) ||
        !keepsAlignment(c.slice))
      return std::nullopt;
    c.tileAliases = aliasesOf(c.tile.getResult());
    c.wholeAliases = aliasesOf(c.whole);
    return c;
  }

  /// The tile's uses other than the copy and its deallocation, in the
  /// copy's block: a copy in is the tile's first use and nothing writes
  /// the tile after it; a copy out is its last use.
  bool tileUsesAllow() {
    Block *block = copy->getBlock();
    for (Value alias : tileAliases)
      for (Operation *user : alias.getUsers()) {
        if (user == copy.getOperation() || isa<memref::DeallocOp>(user) ||
            isa<ViewLikeOpInterface>(user))
          continue;
        Operation *local = block->findAncestorOpInBlock(*user);
        if (!local)
          return false;
        bool afterCopy = copy->isBeforeInBlock(local);
        if (into ? afterCopy : (!afterCopy || mayWrite(user, alias)))
          return false;
      }
    return true;
  }

  /// The op of the copy's block that holds the tile's last use (a copy in)
  /// or its allocation (a copy out): the other end of the window in which
  /// the sliced buffer must keep the bytes the copy would move.
  Operation *windowEnd() {
    if (into)
      return tile;
    Operation *last = copy;
    Block *block = copy->getBlock();
    for (Value alias : tileAliases)
      for (Operation *user : alias.getUsers())
        if (Operation *local = block->findAncestorOpInBlock(*user))
          if (last->isBeforeInBlock(local) && !isa<memref::DeallocOp>(user))
            last = local;
    return last;
  }

  /// Nothing touches the sliced buffer inside the window (a copy out:
  /// from the tile's allocation to the copy), or writes it (a copy in: from
  /// the copy to the tile's last use), other than the slice and the copy.
  bool wholeUntouched() {
    DenseSet<Value> aliases(wholeAliases.begin(), wholeAliases.end());
    Operation *first = into ? windowEnd() : copy.getOperation();
    Operation *last = into ? copy.getOperation() : windowEnd();
    bool clean = true;
    forEachOpBetween(first, last, [&](Operation *op) {
      if (op == copy.getOperation() || op == slice.getOperation() ||
          isa<ViewLikeOpInterface>(op))
        return;
      for (Value operand : op->getOperands())
        if (aliases.contains(operand) && (into || mayWrite(op, operand)))
          clean = false;
    });
    return clean;
  }

  /// The function's buffers escape through its results and calls: their
  /// bytes are not the pass's to re-allocate.
  bool wholeIsIntermediate() {
    for (Value alias : wholeAliases)
      for (Operation *user : alias.getUsers())
        if (isa<func::ReturnOp, func::CallOp>(user))
          return false;
    return true;
  }
};

/// The slice's first element's byte offset into its source.
Value byteOffset(OpBuilder &b, Location loc, memref::SubViewOp slice) {
  int64_t constantPart = 0;
  Value total;
  for (auto [offset, step] : byteOffsetTerms(slice)) {
    if (std::optional<int64_t> known = getConstantIntValue(offset)) {
      constantPart += *known * step;
      continue;
    }
    Value scaled =
        arith::MulIOp::create(b, loc, cast<Value>(offset),
                              arith::ConstantIndexOp::create(b, loc, step));
    total = total ? arith::AddIOp::create(b, loc, total, scaled) : scaled;
  }
  if (total && constantPart == 0)
    return total;
  Value constant = arith::ConstantIndexOp::create(b, loc, constantPart);
  return total ? arith::AddIOp::create(b, loc, total, constant) : constant;
}

struct MoeFoldSliceCopiesPass
    : public moe::impl::MoeFoldSliceCopiesPassBase<MoeFoldSliceCopiesPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    // The bytes each sliced buffer became (its view -> the bytes).
    DenseMap<Value, Value> bytesOf;
    // One fold at a time: a fold erases ops that other copies may name.
    while (std::optional<SliceCopy> c = findFoldable(func, bytesOf))
      fold(*c, bytesOf);
  }

  std::optional<SliceCopy> findFoldable(func::FuncOp func,
                                        const DenseMap<Value, Value> &bytesOf) {
    DominanceInfo dominance(func);
    std::optional<SliceCopy> found;
    func.walk([&](memref::CopyOp copy) {
      std::optional<SliceCopy> c = SliceCopy::match(copy, bytesOf);
      if (!c || !c->tileUsesAllow() || !c->wholeIsIntermediate() ||
          !c->wholeUntouched())
        return WalkResult::advance();
      // The view replaces the tile where it is allocated, so the slice's
      // offsets and the whole buffer must be defined there.
      if (!dominance.properlyDominates(c->whole, c->tile) ||
          llvm::any_of(c->slice.getOffsets(), [&](Value offset) {
            return !dominance.properlyDominates(offset, c->tile);
          }))
        return WalkResult::advance();
      found = c;
      return WalkResult::interrupt();
    });
    return found;
  }

  /// The sliced buffer becomes a view of its bytes, the tile a view of
  /// the slice's bytes, and the copy goes.
  void fold(SliceCopy &c, DenseMap<Value, Value> &bytesOf) {
    Value bytes = wholeAsBytes(c.whole, bytesOf);
    OpBuilder b(c.tile);
    Location loc = c.tile.getLoc();
    Value offset = byteOffset(b, loc, c.slice);
    auto view = memref::ViewOp::create(b, loc, c.tile.getType(), bytes,
                                       offset, ValueRange{});
    if (auto name = c.tile->getAttr(kBufferNameAttr))
      view->setAttr(kBufferNameAttr, name);
    for (Operation *user :
         llvm::to_vector(c.tile.getResult().getUsers()))
      if (isa<memref::DeallocOp>(user))
        user->erase();
    c.copy->erase();
    c.tile.getResult().replaceAllUsesWith(view.getResult());
    c.tile->erase();
    if (c.slice->use_empty())
      c.slice->erase();
  }

  /// `whole` as a view of `memref<N x i8>` bytes allocated where it was
  /// (once: later copies of slices of it reuse the bytes).
  Value wholeAsBytes(TypedValue<MemRefType> whole,
                     DenseMap<Value, Value> &bytesOf) {
    if (Value bytes = bytesOf.lookup(whole))
      return bytes;
    auto alloc = whole.getDefiningOp<memref::AllocOp>();
    OpBuilder b(alloc);
    Location loc = alloc.getLoc();
    MemRefType type = alloc.getType();
    int64_t size = type.getNumElements() * (type.getElementTypeBitWidth() / 8);
    auto bytes = memref::AllocOp::create(
        b, loc, MemRefType::get({size}, b.getI8Type()), ValueRange{},
        alloc.getAlignmentAttr());
    if (auto name = alloc->getAttr(kBufferNameAttr))
      bytes->setAttr(kBufferNameAttr, name);
    auto view = memref::ViewOp::create(
        b, loc, type, bytes, arith::ConstantIndexOp::create(b, loc, 0),
        ValueRange{});
    for (Operation *user : llvm::to_vector(alloc.getResult().getUsers()))
      if (auto dealloc = dyn_cast<memref::DeallocOp>(user))
        dealloc.getMemrefMutable().assign(bytes);
    alloc.getResult().replaceAllUsesWith(view.getResult());
    alloc->erase();
    bytesOf[view.getResult()] = bytes;
    return bytes;
  }
};

} // namespace
