//===- BlockKernels.cpp - The block's ops as kernels on buffers -----------===//
//
// Every kernel is a linalg.generic on buffers, accumulating in f32; its
// buffers are named for the memory plan. Attention goes step by step:
//
//   q, k, v   = n * wq, n * wk, n * wv           f32 [B, L, heads*dh] ...
//   s         = q_h . k_g(h)^T (4-d views of q, k: [B, L, heads, dh])
//   m         = max over j <= i of s * scale     (causal)
//   s         = exp(s * scale - m), 0 past i     (in place)
//   l         = sum over j of s
//   o         = (s . v_g(h)) / l                 f32 [B, L, heads, dh]
//                 (rounded through a bf16/f16 storage type, in place)
//   out       = o * wo                           [B, L, H]
//
// with g(h) = h floordiv (heads / kv_heads), the key/value head of query
// head h. The scores are [B, heads, L, L]: a tile of the batch
// (moe-batch-tile-attention) is what keeps them small.
//
// The CUDA target lowers the ops to moek kernels instead: moek.rms_norm,
// the projections as moek.matmul (tensor cores for bf16/f16) and the core
// as moek.flash_attention (online softmax over key blocks), so attention's
// buffers are q, k, v, the heads' outputs and the output: no scores.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoeToKernels/BlockKernels.h"
#include "lib/Conversion/MoeToKernels/KernelBuilding.h"

#include "dialects/moek/IR/MoekDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Utils/Utils.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::moe;

namespace {

using BodyBuilder = function_ref<void(OpBuilder &, Location, ValueRange)>;

/// A linalg.generic on buffers over loops d0..d(n-1).
void generic(ImplicitLocOpBuilder &b, ValueRange inputs, ValueRange outputs,
             ArrayRef<AffineMap> maps, ArrayRef<utils::IteratorType> loops,
             BodyBuilder body) {
  linalg::GenericOp::create(b, TypeRange{}, inputs, outputs, maps, loops,
                            body);
}

/// `value` as f32 (an extension of bf16/f16, f32 as is).
Value toF32(OpBuilder &b, Location loc, Value value) {
  if (value.getType().isF32())
    return value;
  return arith::ExtFOp::create(b, loc, b.getF32Type(), value);
}

/// `value` (f32) as `element`.
Value fromF32(OpBuilder &b, Location loc, Value value, Type element) {
  if (element.isF32())
    return value;
  return arith::TruncFOp::create(b, loc, element, value);
}

/// The dynamic extents of `buffer`, as memref.alloc takes them for a buffer
/// whose leading dimensions are `buffer`'s first `count`.
SmallVector<Value> leadingDynamic(ImplicitLocOpBuilder &b, Value buffer,
                                  unsigned count) {
  SmallVector<Value> dynamic;
  auto type = cast<MemRefType>(buffer.getType());
  for (unsigned d = 0; d < count; ++d)
    if (type.isDynamicDim(d))
      dynamic.push_back(extentOf(b, buffer, d));
  return dynamic;
}

Value filled(ImplicitLocOpBuilder &b, Value buffer, double value) {
  Value v = arith::ConstantOp::create(b, b.getF32FloatAttr(float(value)));
  linalg::FillOp::create(b, v, buffer);
  return buffer;
}

AffineMap map(MLIRContext *context, unsigned dims,
              ArrayRef<AffineExpr> results) {
  return AffineMap::get(dims, 0, results, context);
}

/// out[..., c] = sum over k of a[..., k] * w[k, c] in f32, a [B, L, K].
void project(ImplicitLocOpBuilder &b, Value a, Value w, Value out) {
  MLIRContext *ctx = b.getContext();
  AffineExpr d0, d1, d2, d3; // b, l, c, k
  bindDims(ctx, d0, d1, d2, d3);
  using utils::IteratorType;
  generic(b, {a, w}, {out},
          {map(ctx, 4, {d0, d1, d3}), map(ctx, 4, {d3, d2}),
           map(ctx, 4, {d0, d1, d2})},
          {IteratorType::parallel, IteratorType::parallel,
           IteratorType::parallel, IteratorType::reduction},
          [](OpBuilder &nb, Location loc, ValueRange args) {
            Value product = arith::MulFOp::create(
                nb, loc, toF32(nb, loc, args[0]), toF32(nb, loc, args[1]));
            linalg::YieldOp::create(
                nb, loc, Value(arith::AddFOp::create(nb, loc, args[2], product)));
          });
}

/// [B, L, heads*dh] viewed as [B, L, heads, dh].
Value headsView(ImplicitLocOpBuilder &b, Value buffer, int64_t heads,
                int64_t headDim) {
  auto type = cast<MemRefType>(buffer.getType());
  SmallVector<int64_t> shape = {type.getDimSize(0), type.getDimSize(1), heads,
                                headDim};
  SmallVector<OpFoldResult> sizes;
  for (unsigned d = 0; d < 2; ++d)
    sizes.push_back(type.isDynamicDim(d) ? OpFoldResult(extentOf(b, buffer, d))
                                         : b.getIndexAttr(shape[d]));
  sizes.push_back(b.getIndexAttr(heads));
  sizes.push_back(b.getIndexAttr(headDim));
  return memref::ExpandShapeOp::create(
      b, MemRefType::get(shape, type.getElementType()), buffer,
      ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}}, sizes);
}

} // namespace

LogicalResult mlir::moe::lowerRmsNorm(RmsNormOp op, RewriterBase &rewriter) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  MLIRContext *ctx = b.getContext();
  Value x = readBuffer(b, op.getX()), g = readBuffer(b, op.getG());
  auto xType = cast<MemRefType>(x.getType());
  unsigned rank = xType.getRank();
  int64_t hidden = xType.getDimSize(rank - 1);
  double epsilon = op.getEpsilon().convertToDouble();
  Type element = xType.getElementType();

  // Sum of squares per row, then each element scaled by its row's factor.
  SmallVector<int64_t> rowShape(xType.getShape().drop_back());
  Value sums = filled(b,
                      allocBuffer(b, rowShape, b.getF32Type(),
                                  leadingDynamic(b, x, rank - 1),
                                  "block.rms_norm.sums"),
                      0.0);
  Value out = allocBuffer(b, xType.getShape(), element,
                          leadingDynamic(b, x, rank), "block.rms_norm");
  AffineMap all = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap rows = all.getMajorSubMap(rank - 1);
  AffineMap last = all.getMinorSubMap(1);
  SmallVector<utils::IteratorType> reduceLast(rank - 1,
                                              utils::IteratorType::parallel);
  reduceLast.push_back(utils::IteratorType::reduction);
  generic(b, {x}, {sums}, {all, rows}, reduceLast,
          [](OpBuilder &nb, Location loc, ValueRange args) {
            Value v = toF32(nb, loc, args[0]);
            Value square = arith::MulFOp::create(nb, loc, v, v);
            linalg::YieldOp::create(
                nb, loc, Value(arith::AddFOp::create(nb, loc, args[1], square)));
          });
  SmallVector<utils::IteratorType> parallel(rank,
                                            utils::IteratorType::parallel);
  generic(b, {x, sums, g}, {out}, {all, rows, last, all}, parallel,
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            auto f32 = [&](double v) {
              return arith::ConstantOp::create(nb, loc,
                                               nb.getF32FloatAttr(float(v)));
            };
            Value mean = arith::DivFOp::create(nb, loc, args[1],
                                               f32(double(hidden)));
            Value root = math::SqrtOp::create(
                nb, loc, arith::AddFOp::create(nb, loc, mean, f32(epsilon)));
            Value scaled = arith::DivFOp::create(
                nb, loc, toF32(nb, loc, args[0]), root);
            Value gained =
                arith::MulFOp::create(nb, loc, scaled, toF32(nb, loc, args[2]));
            linalg::YieldOp::create(nb, loc,
                                    fromF32(nb, loc, gained, element));
          });
  rewriter.replaceOp(op, asTensor(b, out));
  return success();
}

/// Attention's input as a buffer. A tile of the batch (a slice that
/// moe-batch-tile-attention made) is copied into a named tile-sized buffer:
/// the kernels read whole buffers, and bufferization would make the same
/// copy nameless.
static Value readAttentionInput(ImplicitLocOpBuilder &b, AttentionOp op) {
  Value n = op.getN();
  if (!n.getDefiningOp<tensor::ExtractSliceOp>())
    return readBuffer(b, n);
  auto type = cast<RankedTensorType>(n.getType());
  SmallVector<Value> dynamicSizes =
      tensor::createDynamicDimValues(b, b.getLoc(), n);
  Value rows =
      asTensor(b, allocBuffer(b, type.getShape(), type.getElementType(),
                              dynamicSizes, "attention.rows"));
  rows =
      bufferization::MaterializeInDestinationOp::create(b, n, rows).getResult();
  return readBuffer(b, rows);
}

LogicalResult mlir::moe::lowerAttention(AttentionOp op,
                                        RewriterBase &rewriter) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  MLIRContext *ctx = b.getContext();
  using utils::IteratorType;
  const IteratorType par = IteratorType::parallel,
                     red = IteratorType::reduction;
  Value n = readAttentionInput(b, op);
  auto nType = cast<MemRefType>(n.getType());
  Type element = nType.getElementType(), f32 = b.getF32Type();
  int64_t batch = nType.getDimSize(0), length = nType.getDimSize(1),
          hidden = nType.getDimSize(2);
  // The scores are [B, heads, L, L]: a dynamic L would be two extents.
  if (ShapedType::isDynamic(length))
    return op.emitOpError()
           << "needs a static sequence length (n dimension 1) to lower: its "
              "scores are [B, heads, L, L]";
  int64_t heads = op.getHeads(), kvHeads = op.getKvHeads();
  int64_t headDim = op.getHeadDim(), group = heads / kvHeads;
  float scale = float(1.0 / std::sqrt(double(headDim)));
  SmallVector<Value> batchDynamic = leadingDynamic(b, n, 2);

  // The projections.
  auto projected = [&](Value weight, int64_t width, StringRef name) {
    Value out = filled(b,
                       allocBuffer(b, {batch, length, width}, f32,
                                   batchDynamic, name),
                       0.0);
    project(b, n, readBuffer(b, weight), out);
    return out;
  };
  Value q = projected(op.getWq(), heads * headDim, "attention.q");
  Value k = projected(op.getWk(), kvHeads * headDim, "attention.k");
  Value v = projected(op.getWv(), kvHeads * headDim, "attention.v");
  Value q4 = headsView(b, q, heads, headDim);
  Value k4 = headsView(b, k, kvHeads, headDim);
  Value v4 = headsView(b, v, kvHeads, headDim);

  // Loops b, h, i, j (and d): the query head h reads key/value head h / group.
  AffineExpr db, dh, di, dj, dd;
  bindDims(ctx, db, dh, di, dj, dd);
  AffineExpr kvHead = dh.floorDiv(group);
  Value scores = filled(b,
                        allocBuffer(b, {batch, heads, length, length}, f32,
                                    leadingDynamic(b, n, 1),
                                    "attention.scores"),
                        0.0);
  generic(b, {q4, k4}, {scores},
          {map(ctx, 5, {db, di, dh, dd}), map(ctx, 5, {db, dj, kvHead, dd}),
           map(ctx, 5, {db, dh, di, dj})},
          {par, par, par, par, red},
          [](OpBuilder &nb, Location loc, ValueRange args) {
            Value product = arith::MulFOp::create(nb, loc, args[0], args[1]);
            linalg::YieldOp::create(
                nb, loc, Value(arith::AddFOp::create(nb, loc, args[2], product)));
          });

  // The causal softmax over j <= i, its max and sum per row (b, h, i).
  auto causal = [](OpBuilder &nb, Location loc) {
    Value i = linalg::IndexOp::create(nb, loc, 2);
    Value j = linalg::IndexOp::create(nb, loc, 3);
    return arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ule, j, i);
  };
  auto constant = [](OpBuilder &nb, Location loc, float value) {
    return arith::ConstantOp::create(nb, loc, nb.getF32FloatAttr(value));
  };
  AffineMap rowMap4 = map(ctx, 4, {db, dh, di});
  AffineMap all4 = map(ctx, 4, {db, dh, di, dj});
  auto rowBuffer = [&](double init, StringRef name) {
    return filled(b,
                  allocBuffer(b, {batch, heads, length}, f32,
                              leadingDynamic(b, n, 1), name),
                  init);
  };
  Value rowMax = rowBuffer(-std::numeric_limits<double>::infinity(),
                           "attention.row_max");
  generic(b, {scores}, {rowMax}, {all4, rowMap4}, {par, par, par, red},
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value scaled =
                arith::MulFOp::create(nb, loc, args[0], constant(nb, loc, scale));
            Value masked = arith::SelectOp::create(
                nb, loc, causal(nb, loc), scaled,
                constant(nb, loc, -std::numeric_limits<float>::infinity()));
            linalg::YieldOp::create(
                nb, loc, Value(arith::MaximumFOp::create(nb, loc, args[1], masked)));
          });
  generic(b, {rowMax}, {scores}, {rowMap4, all4}, {par, par, par, par},
          [&](OpBuilder &nb, Location loc, ValueRange args) {
            Value scaled =
                arith::MulFOp::create(nb, loc, args[1], constant(nb, loc, scale));
            Value e = math::ExpOp::create(
                nb, loc, arith::SubFOp::create(nb, loc, scaled, args[0]));
            linalg::YieldOp::create(
                nb, loc,
                Value(arith::SelectOp::create(nb, loc, causal(nb, loc), e,
                                              constant(nb, loc, 0.0f))));
          });
  Value rowSum = rowBuffer(0.0, "attention.row_sum");
  generic(b, {scores}, {rowSum}, {all4, rowMap4}, {par, par, par, red},
          [](OpBuilder &nb, Location loc, ValueRange args) {
            linalg::YieldOp::create(
                nb, loc, Value(arith::AddFOp::create(nb, loc, args[1], args[0])));
          });

  // The heads' outputs o[b, i, h, d] = sum_j p[b, h, i, j] v[b, j, h/g, d].
  Value o = filled(b,
                   allocBuffer(b, {batch, length, heads * headDim}, f32,
                               batchDynamic, "attention.heads"),
                   0.0);
  Value o4 = headsView(b, o, heads, headDim);
  // Loops b, h, i, d, j here.
  AffineExpr eb, eh, ei, ed, ej;
  bindDims(ctx, eb, eh, ei, ed, ej);
  generic(b, {scores, v4, rowSum}, {o4},
          {map(ctx, 5, {eb, eh, ei, ej}),
           map(ctx, 5, {eb, ej, eh.floorDiv(group), ed}),
           map(ctx, 5, {eb, eh, ei}), map(ctx, 5, {eb, ei, eh, ed})},
          {par, par, par, par, red},
          [](OpBuilder &nb, Location loc, ValueRange args) {
            Value p = arith::DivFOp::create(nb, loc, args[0], args[2]);
            Value product = arith::MulFOp::create(nb, loc, p, args[1]);
            linalg::YieldOp::create(
                nb, loc, Value(arith::AddFOp::create(nb, loc, args[3], product)));
          });

  // The heads' outputs are the output projection's operand, which a narrow
  // storage type keeps rounded (the CUDA lowering stores them so, for its
  // tensor cores): round them in place, as the reference block does.
  if (!element.isF32()) {
    AffineMap all3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    generic(b, {}, {o}, {all3}, {par, par, par},
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              linalg::YieldOp::create(
                  nb, loc,
                  toF32(nb, loc, fromF32(nb, loc, args[0], element)));
            });
  }

  // The output projection, then the layer's element type.
  Value wide = filled(b,
                      allocBuffer(b, {batch, length, hidden}, f32,
                                  batchDynamic, "attention.out_f32"),
                      0.0);
  project(b, o, readBuffer(b, op.getWo()), wide);
  Value out = wide;
  if (!element.isF32()) {
    out = allocBuffer(b, {batch, length, hidden}, element, batchDynamic,
                      "attention.out");
    AffineMap all3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    generic(b, {wide}, {out}, {all3, all3}, {par, par, par},
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              linalg::YieldOp::create(nb, loc,
                                      fromF32(nb, loc, args[0], element));
            });
  }
  rewriter.replaceOp(op, asTensor(b, out));
  return success();
}

namespace {

/// `buffer` ([T, H], or [B, L, H]) as the rows [B*L, H] a moek kernel takes.
Value rowsView(ImplicitLocOpBuilder &b, Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  if (type.getRank() == 2)
    return buffer;
  return memref::CollapseShapeOp::create(
      b, buffer, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
}

} // namespace

LogicalResult mlir::moe::lowerRmsNormToKernels(RmsNormOp op,
                                               RewriterBase &rewriter) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value x = readBuffer(b, op.getX()), g = readBuffer(b, op.getG());
  auto xType = cast<MemRefType>(x.getType());
  Value out =
      allocBuffer(b, xType.getShape(), xType.getElementType(),
                  leadingDynamic(b, x, xType.getRank()), "block.rms_norm");
  moek::RmsNormOp::create(b, rowsView(b, x), g, rowsView(b, out),
                          op.getEpsilon());
  rewriter.replaceOp(op, asTensor(b, out));
  return success();
}

LogicalResult mlir::moe::lowerAttentionToKernels(AttentionOp op,
                                                 RewriterBase &rewriter) {
  ImplicitLocOpBuilder b(op.getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value n = readAttentionInput(b, op);
  auto nType = cast<MemRefType>(n.getType());
  Type element = nType.getElementType();
  int64_t batch = nType.getDimSize(0), length = nType.getDimSize(1),
          hidden = nType.getDimSize(2);
  int64_t heads = op.getHeads(), kvHeads = op.getKvHeads();
  int64_t headDim = op.getHeadDim();
  SmallVector<Value> dynamic = leadingDynamic(b, n, 2);
  Value rows = rowsView(b, n);

  // q, k, v in the storage type, as FlashAttention and SDPA take them: the
  // tensor-core kernel rounds them to it for its operands anyway, and so it
  // can copy them into shared memory as they are (cp.async). Half the bytes
  // of f32; the CPU's loops keep f32.
  auto projected = [&](Value weight, int64_t width, StringRef name) {
    Value out = allocBuffer(b, {batch, length, width}, element, dynamic, name);
    moek::MatmulOp::create(b, rows, readBuffer(b, weight), rowsView(b, out));
    return out;
  };
  Value q = projected(op.getWq(), heads * headDim, "attention.q");
  Value k = projected(op.getWk(), kvHeads * headDim, "attention.k");
  Value v = projected(op.getWv(), kvHeads * headDim, "attention.v");
  // The heads' outputs in the storage type: the output projection's A
  // operand (tensor cores for bf16/f16).
  Value o = allocBuffer(b, {batch, length, heads * headDim}, element, dynamic,
                        "attention.heads");
  moek::FlashAttentionOp::create(b, q, k, v, o, heads, kvHeads);
  Value out = allocBuffer(b, {batch, length, hidden}, element, dynamic,
                          "attention.out");
  moek::MatmulOp::create(b, rowsView(b, o), readBuffer(b, op.getWo()),
                         rowsView(b, out));
  rewriter.replaceOp(op, asTensor(b, out));
  return success();
}
