//===- MoePlanMemory.cpp - Static liveness-based buffer planning ----------===//
//
// After bufferization, every intermediate buffer of static shape a function
// allocates (also inside its loops) becomes a view into one arena, allocated
// once per call. Buffers whose lifetimes do not overlap share bytes, so the
// arena is the peak of live intermediate memory (up to fragmentation), known
// at compile time.
//
// A training step's results (the gradients) are written late: dw1 by the
// last weight-gradient GEMM, after the whole forward and most of the
// backward. Until its first use a result's bytes are free, so intermediates
// that die before it (the forward's activation and accumulator, the
// backward's g) are placed inside it instead of the arena: mixtral's step
// holds 2.75 GiB of results, and its forward's 0.56 GiB then cost nothing.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/IR/MoeShapeRules.h"
#include "lib/Conversion/MoeToKernels/KernelBuilding.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPLANMEMORYPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr int64_t kAlignment = 64;
/// Buffers of kLargeBuffer bytes or more start at multiples of
/// kLargeAlignment (what cudaMalloc guarantees of the arena's base): a
/// [T·k, 2F] h at arena offset 64 put every 128-byte row segment across two
/// cache lines, and the kernels reading it by 16-byte copies (the weight
/// gradients, dx, the GLU backward) ran 2-9% slower on the H200 (2026-11-30
/// 17:37).
constexpr int64_t kLargeBuffer = 64 * 1024, kLargeAlignment = 256;

int64_t alignUp(int64_t value, int64_t alignment = kAlignment) {
  return (value + alignment - 1) / alignment * alignment;
}

int64_t alignmentOf(int64_t bytes) {
  return bytes >= kLargeBuffer ? kLargeAlignment : kAlignment;
}

/// A result buffer of a training step, allocated at the start of the call:
/// its bytes are free until `freeUntil`, the pre-order index of the first
/// top-level operation that uses it (or an alias of it).
struct ResultRegion {
  Operation *alloc;
  std::string name;
  int64_t bytes = 0;
  int64_t freeUntil = 0;
};

struct Buffer {
  Operation *alloc;
  std::string name;
  int64_t bytes = 0;
  /// Where it lives: the arena (-1) or that result region, at `offset`.
  int region = -1;
  int64_t offset = 0;
  int64_t first = 0, last = 0; // top-level op indices, inclusive (reported)
  /// The lifetime placement compares: pre-order op indices, inclusive, from
  /// the alloc to the end of its last user's subtree in the alloc's block,
  /// so that two buffers of one loop body (a tile of the batch) share bytes
  /// when their lifetimes in the body do not overlap.
  int64_t from = 0, to = 0;
  SmallVector<Operation *> deallocs;
};

/// Pre-order indices of every op of a function, and the last index of each
/// op's subtree.
struct OpOrder {
  DenseMap<Operation *, int64_t> pre, end;

  explicit OpOrder(func::FuncOp func) {
    int64_t index = 0;
    func.walk<WalkOrder::PreOrder>([&](Operation *op) { pre[op] = index++; });
    func.walk<WalkOrder::PostOrder>([&](Operation *op) {
      int64_t last = pre[op];
      for (Region &region : op->getRegions())
        for (Operation &child : region.getOps())
          last = std::max(last, end[&child]);
      end[op] = last;
    });
  }
};

/// The top-level operation of `body` that contains `op`.
Operation *topLevelAncestor(Block &body, Operation *op) {
  return body.findAncestorOpInBlock(*op);
}

/// Walks the buffer and every memref derived from it. Returns false if it
/// escapes the function (returned, passed to a call).
bool analyzeUses(Block &body, Value buffer,
                 const DenseMap<Operation *, int64_t> &position,
                 const OpOrder &order, Buffer &info) {
  Block *home = buffer.getDefiningOp()->getBlock();
  SmallVector<Value> worklist = {buffer};
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    for (OpOperand &use : value.getUses()) {
      Operation *user = use.getOwner();
      if (isa<func::ReturnOp, func::CallOp>(user))
        return false;
      if (isa<memref::DeallocOp>(user)) {
        info.deallocs.push_back(user);
        continue;
      }
      Operation *top = topLevelAncestor(body, user);
      Operation *local = home->findAncestorOpInBlock(*user);
      if (!top || !local)
        return false;
      info.last = std::max(info.last, position.lookup(top));
      info.to = std::max(info.to, order.end.lookup(local));
      // Any memref an op derives from the buffer is an alias of it.
      for (Value result : user->getResults())
        if (isa<MemRefType>(result.getType()))
          worklist.push_back(result);
    }
  }
  return true;
}

/// The bytes of a statically shaped buffer of `type`, or none when they
/// overflow: the verifiers bound the operands, not every buffer the
/// lowerings derive from them ([T*k, 2F] may overflow where [T, H] and
/// [E, H, 2F] do not).
std::optional<int64_t> staticBytes(MemRefType type) {
  std::optional<int64_t> elements = checkedElementCount(type.getShape());
  return elements ? checkedByteCount(*elements,
                                     elementBitsForSizes(type.getElementType()))
                  : std::nullopt;
}

std::string bufferName(Operation *alloc, unsigned ordinal) {
  if (auto name = alloc->getAttrOfType<StringAttr>(kBufferNameAttr))
    return name.str();
  if (isa<memref::AllocaOp>(alloc))
    return "scratch.stack" + std::to_string(ordinal);
  return "other.buffer" + std::to_string(ordinal);
}

/// The lowest offset in `region` (-1: the arena) at which `buffer` overlaps
/// no placed buffer of that region whose lifetime overlaps its own.
int64_t firstFit(const Buffer &buffer, int region, ArrayRef<Buffer *> placed) {
  SmallVector<std::pair<int64_t, int64_t>> taken;
  for (Buffer *other : placed)
    if (other->region == region && other->from <= buffer.to &&
        buffer.from <= other->to)
      taken.push_back({other->offset, other->offset + other->bytes});
  llvm::sort(taken);
  int64_t alignment = alignmentOf(buffer.bytes);
  int64_t offset = 0;
  for (auto [begin, end] : taken) {
    if (offset + buffer.bytes <= begin)
      break;
    offset = std::max(offset, alignUp(end, alignment));
  }
  return offset;
}

/// First fit in the given order: each buffer in the first result region it
/// fits before that result's first use, else at the lowest offset of the
/// arena that overlaps no placed buffer whose lifetime overlaps its own.
int64_t placeInOrder(ArrayRef<Buffer *> order, ArrayRef<ResultRegion> regions) {
  SmallVector<Buffer *> placed;
  int64_t arena = 0;
  for (Buffer *buffer : order) {
    buffer->region = -1;
    for (auto [index, region] : llvm::enumerate(regions)) {
      if (buffer->to >= region.freeUntil)
        continue;
      int64_t offset = firstFit(*buffer, index, placed);
      if (offset + buffer->bytes <= region.bytes) {
        buffer->region = index;
        buffer->offset = offset;
        break;
      }
    }
    if (buffer->region < 0) {
      buffer->offset = firstFit(*buffer, -1, placed);
      arena = std::max(arena, buffer->offset + buffer->bytes);
    }
    placed.push_back(buffer);
  }
  return alignUp(arena);
}

/// Tries largest-first and earliest-first (the two orders first fit is
/// known to do well with) and keeps the smaller arena.
int64_t placeBuffers(MutableArrayRef<Buffer> buffers,
                     ArrayRef<ResultRegion> regions) {
  SmallVector<Buffer *> bySize, byStart;
  for (Buffer &b : buffers) {
    bySize.push_back(&b);
    byStart.push_back(&b);
  }
  llvm::stable_sort(bySize, [](const Buffer *a, const Buffer *b) {
    return a->bytes > b->bytes;
  });
  llvm::stable_sort(byStart, [](const Buffer *a, const Buffer *b) {
    return a->from < b->from || (a->from == b->from && a->bytes > b->bytes);
  });
  int64_t sizeArena = placeInOrder(bySize, regions);
  SmallVector<std::pair<int, int64_t>> sizePlaces;
  for (Buffer &b : buffers)
    sizePlaces.push_back({b.region, b.offset});
  int64_t startArena = placeInOrder(byStart, regions);
  if (startArena <= sizeArena)
    return startArena;
  for (auto [buffer, place] : llvm::zip(buffers, sizePlaces))
    std::tie(buffer.region, buffer.offset) = place;
  return sizeArena;
}

/// The results of `func` that intermediates may share: statically shaped
/// buffers allocated at the top level of the body and returned, largest
/// first, each with the first top-level operation that uses it.
SmallVector<ResultRegion> resultRegions(Block &body, const OpOrder &order) {
  SmallVector<ResultRegion> regions;
  auto ret = dyn_cast<func::ReturnOp>(body.getTerminator());
  if (!ret)
    return regions;
  DenseSet<Operation *> seen;
  for (Value result : ret.getOperands()) {
    auto alloc = result.getDefiningOp<memref::AllocOp>();
    if (!alloc || alloc->getBlock() != &body || !seen.insert(alloc).second)
      continue;
    MemRefType type = alloc.getType();
    if (!type.hasStaticShape() || !type.getLayout().isIdentity())
      continue;
    std::optional<int64_t> bytes = staticBytes(type);
    if (!bytes || *bytes < kAlignment)
      continue;
    ResultRegion region{alloc, bufferName(alloc, 0), *bytes,
                        order.end.lookup(ret)};
    SmallVector<Value> worklist = {alloc.getResult()};
    while (!worklist.empty()) {
      Value value = worklist.pop_back_val();
      for (Operation *user : value.getUsers()) {
        if (user == ret)
          continue;
        if (Operation *top = body.findAncestorOpInBlock(*user))
          region.freeUntil = std::min(region.freeUntil, order.pre.lookup(top));
        for (Value derived : user->getResults())
          if (isa<MemRefType>(derived.getType()))
            worklist.push_back(derived);
      }
    }
    regions.push_back(region);
  }
  llvm::stable_sort(regions, [](const ResultRegion &a, const ResultRegion &b) {
    return a.bytes > b.bytes;
  });
  return regions;
}

struct MoePlanMemoryPass
    : public moe::impl::MoePlanMemoryPassBase<MoePlanMemoryPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal() || !func.getBody().hasOneBlock())
      return;
    Block &body = func.getBody().front();
    DenseMap<Operation *, int64_t> position;
    int64_t index = 0;
    for (Operation &op : body)
      position[&op] = index++;

    SmallVector<Buffer> buffers;
    SmallVector<std::string> unplanned;
    unsigned ordinal = 0;
    // The buffers end to end: an upper bound of every offset and the arena.
    int64_t totalBytes = 0;
    // Buffers inside a loop (a tile of moe-batch-tile-attention's) hold
    // their bytes for the whole loop: each iteration reuses them.
    OpOrder order(func);
    SmallVector<Operation *> allocs;
    func.walk([&](Operation *op) {
      if (isa<memref::AllocOp, memref::AllocaOp>(op))
        allocs.push_back(op);
    });
    for (Operation *allocOp : allocs) {
      Operation &op = *allocOp;
      auto type = cast<MemRefType>(op.getResult(0).getType());
      Buffer info;
      info.alloc = &op;
      info.name = bufferName(&op, ordinal++);
      Operation *top = topLevelAncestor(body, &op);
      if (!top)
        continue;
      info.first = info.last = position[top];
      info.from = info.to = order.pre.lookup(&op);
      if (!analyzeUses(body, op.getResult(0), position, order, info))
        continue; // a result or otherwise escaping: not an intermediate
      if (!type.hasStaticShape() || !type.getLayout().isIdentity()) {
        unplanned.push_back(info.name);
        continue;
      }
      std::optional<int64_t> bytes = staticBytes(type);
      std::optional<int64_t> total =
          bytes && *bytes <= INT64_MAX - kAlignment
              ? checkedAdd(totalBytes, alignUp(std::max<int64_t>(1, *bytes)))
              : std::nullopt;
      if (!total) {
        op.emitError() << "buffer '" << info.name << "' (" << type
                       << ") makes the intermediate memory of '"
                       << func.getSymName()
                       << "' more than 2^63 bytes: the sizes are too large";
        return signalPassFailure();
      }
      totalBytes = *total;
      info.bytes = std::max<int64_t>(1, *bytes);
      buffers.push_back(std::move(info));
    }
    if (buffers.empty() && unplanned.empty())
      return;

    // Only a training step's results are written late enough to be worth
    // sharing (a forward's y is the whole of its result).
    SmallVector<ResultRegion> regions;
    if (func->hasAttr("moe.training_step"))
      regions = resultRegions(body, order);
    int64_t arenaBytes = placeBuffers(buffers, regions);
    if (!buffers.empty())
      rewriteIntoArena(func, body, buffers, regions, arenaBytes);
    recordPlan(func, buffers, regions, unplanned, arenaBytes);
  }

  /// Allocates each result region that holds a buffer at the start of the
  /// call as bytes, the result a view of them; returns the bytes (null for
  /// a region left alone).
  SmallVector<Value> allocateRegions(OpBuilder &b, Location loc,
                                     ArrayRef<Buffer> buffers,
                                     ArrayRef<ResultRegion> regions) {
    SmallVector<Value> bytes(regions.size());
    for (const Buffer &buffer : buffers) {
      if (buffer.region < 0 || bytes[buffer.region])
        continue;
      const ResultRegion &region = regions[buffer.region];
      Value raw = memref::AllocOp::create(
          b, loc, MemRefType::get({region.bytes}, b.getI8Type()), ValueRange{},
          b.getI64IntegerAttr(kLargeAlignment));
      raw.getDefiningOp()->setAttr(kBufferNameAttr,
                                   b.getStringAttr(region.name));
      Value view = memref::ViewOp::create(
          b, loc, region.alloc->getResult(0).getType(), raw,
          arith::ConstantIndexOp::create(b, loc, 0), ValueRange{});
      region.alloc->getResult(0).replaceAllUsesWith(view);
      region.alloc->erase();
      bytes[buffer.region] = raw;
    }
    return bytes;
  }

  void rewriteIntoArena(func::FuncOp func, Block &body,
                        MutableArrayRef<Buffer> buffers,
                        ArrayRef<ResultRegion> regions, int64_t arenaBytes) {
    OpBuilder b = OpBuilder::atBlockBegin(&body);
    Location loc = func.getLoc();
    auto arenaType = MemRefType::get({arenaBytes}, b.getI8Type());
    Value arena = memref::AllocOp::create(b, loc, arenaType, ValueRange{},
                                          b.getI64IntegerAttr(kLargeAlignment));
    SmallVector<Value> regionBytes = allocateRegions(b, loc, buffers, regions);
    for (Buffer &buffer : buffers) {
      b.setInsertionPoint(buffer.alloc);
      Value offset = arith::ConstantIndexOp::create(b, loc, buffer.offset);
      Value view = memref::ViewOp::create(
          b, loc, buffer.alloc->getResult(0).getType(),
          buffer.region < 0 ? arena : regionBytes[buffer.region], offset,
          ValueRange{});
      for (Operation *dealloc : buffer.deallocs)
        dealloc->erase();
      buffer.alloc->getResult(0).replaceAllUsesWith(view);
      buffer.alloc->erase();
    }
    b.setInsertionPoint(body.getTerminator());
    memref::DeallocOp::create(b, loc, arena);
  }

  void recordPlan(func::FuncOp func, ArrayRef<Buffer> buffers,
                  ArrayRef<ResultRegion> regions,
                  ArrayRef<std::string> unplanned, int64_t arenaBytes) {
    Builder b(func.getContext());
    SmallVector<Attribute> entries;
    for (const Buffer &buffer : buffers) {
      StringRef name = buffer.name;
      SmallVector<NamedAttribute> entry = {
          b.getNamedAttr("name", b.getStringAttr(name)),
          b.getNamedAttr("category", b.getStringAttr(name.split('.').first)),
          b.getNamedAttr("bytes", b.getI64IntegerAttr(buffer.bytes)),
          b.getNamedAttr("offset", b.getI64IntegerAttr(buffer.offset)),
          b.getNamedAttr("live",
                         b.getDenseI64ArrayAttr({buffer.first, buffer.last})),
      };
      // Placed in a result's bytes before the result is written: offset
      // is into that result, and the buffer adds nothing to the peak.
      if (buffer.region >= 0)
        entry.push_back(b.getNamedAttr(
            "in_result", b.getStringAttr(regions[buffer.region].name)));
      entries.push_back(b.getDictionaryAttr(entry));
    }
    SmallVector<Attribute> dynamic;
    for (const std::string &name : unplanned)
      dynamic.push_back(b.getStringAttr(name));
    func->setAttr("moe.memory_plan",
                  b.getDictionaryAttr({
                      b.getNamedAttr("peak_intermediate_bytes",
                                     b.getI64IntegerAttr(arenaBytes)),
                      b.getNamedAttr("buffers", b.getArrayAttr(entries)),
                      b.getNamedAttr("unplanned_dynamic",
                                     b.getArrayAttr(dynamic)),
                  }));
  }
};

} // namespace

std::optional<int64_t> mlir::moe::plannedPeakBytes(func::FuncOp func) {
  auto plan = func->getAttrOfType<DictionaryAttr>("moe.memory_plan");
  if (!plan)
    return std::nullopt;
  auto peak = plan.getAs<IntegerAttr>("peak_intermediate_bytes");
  if (!peak)
    return std::nullopt;
  return peak.getInt();
}
