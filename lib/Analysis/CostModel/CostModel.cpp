//===- CostModel.cpp - Predicted kernel times of a planned program --------===//
//
// The work of each moek kernel from its buffers' shapes. Grouped kernels
// over a chunk of experts inside an scf.for loop still cover every routed
// row over the loop's iterations, so their work is the layer's and their
// launches the loop's trip count; anything else in a loop counts once per
// iteration. Tensor-core GEMMs also carry their CTA tiles per launch, so
// that the device prices them by waves (Waves.h): a launch of one expert's
// few dozen tiles costs a full wave of the chip.
//
//===----------------------------------------------------------------------===//

#include "lib/Analysis/CostModel/CostModel.h"
#include "lib/Analysis/CostModel/Waves.h"

#include "dialects/moek/IR/MoekDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/FileSystem.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moek;
using ::moe::cost::DeviceDescription;
using ::moe::cost::GemmTile;
using ::moe::cost::KernelWork;

namespace {

double elementBytes(Value buffer) {
  Type element = cast<ShapedType>(buffer.getType()).getElementType();
  return std::max<unsigned>(1, element.getIntOrFloatBitWidth() / 8);
}

bool isHalf(Value buffer) {
  Type element = cast<ShapedType>(buffer.getType()).getElementType();
  return element.isBF16() || element.isF16();
}

/// The bytes a tiled kernel reads again from memory: its tiles read
/// `tileReads` of a working set of `footprint` bytes (one expert's
/// operands); what exceeds one pass over it comes from the cache while the
/// working set fits, and in the share that does not fit otherwise (the
/// tiles' order spreads an operand's reuses over more than the cache
/// holds: mixtral's 235 MB expert weights against the H200's 60 MB).
double cacheMissBytes(const DeviceDescription &device, double footprint,
                      double tileReads) {
  if (device.l2Bytes <= 0 || footprint <= device.l2Bytes)
    return 0;
  double missed = 1.0 - device.l2Bytes / footprint;
  return std::max(0.0, tileReads - footprint) * missed;
}

/// Constant trip count of the scf.for loops around `op` (1 outside).
int64_t tripCount(Operation *op) {
  int64_t trips = 1;
  for (auto loop = op->getParentOfType<scf::ForOp>(); loop;
       loop = loop->getParentOfType<scf::ForOp>()) {
    auto lb = getConstantIntValue(loop.getLowerBound());
    auto ub = getConstantIntValue(loop.getUpperBound());
    auto step = getConstantIntValue(loop.getStep());
    if (lb && ub && step && *step > 0 && *ub > *lb)
      trips *= (*ub - *lb + *step - 1) / *step;
  }
  return trips;
}

/// What a kernel class is about: shapes to flops and bytes.
class WorkBuilder {
public:
  WorkBuilder(const DeviceDescription &device, double dynamicExtent)
      : device(device), dynamicExtent(dynamicExtent) {}

  /// Extent d of `buffer`; a dynamic one is `dynamicExtent`.
  double extent(Value buffer, unsigned d) const {
    int64_t e = cast<ShapedType>(buffer.getType()).getDimSize(d);
    return ShapedType::isDynamic(e) ? dynamicExtent : double(e);
  }

  double elements(Value buffer) const {
    auto type = cast<ShapedType>(buffer.getType());
    double n = 1;
    for (unsigned d = 0; d < type.getRank(); ++d)
      n *= extent(buffer, d);
    return n;
  }

  double bytesOf(Value buffer) const {
    return elements(buffer) * elementBytes(buffer);
  }

  /// The launches of `op` priced apart (profiles name them apart): the
  /// router backward's tensor-core products, else workOf's one, or none.
  std::vector<KernelWork> worksOf(Operation *op) {
    if (auto route = dyn_cast<RouteBackwardOp>(op)) {
      std::vector<KernelWork> products = routerProducts(route);
      if (!products.empty())
        return products;
    }
    std::optional<KernelWork> work = workOf(op);
    if (!work)
      return {};
    return {*work};
  }

  /// The work of `op`, or nothing when it is not a kernel (constants,
  /// views, loops). `grouped` says its rows span all routed rows.
  std::optional<KernelWork> workOf(Operation *op) {
    bool tensorCores = device.matrixTflops > 0;
    return TypeSwitch<Operation *, std::optional<KernelWork>>(op)
        .Case([&](RouteOp o) {
          double t = extent(o.getX(), 0), h = extent(o.getX(), 1);
          double e = extent(o.getWGate(), 1), k = double(o.getTopK());
          // The scores GEMM, then per token: softmax / sigmoid and top-k.
          KernelWork w = named(op, "moek_route");
          w.flops = 2 * t * h * e + 8 * t * e;
          w.bytes = bytesOf(o.getX()) + bytesOf(o.getWGate()) + 2 * t * e * 4 +
                    t * k * 8;
          if (o.getProbs()) // saved for the backward
            w.bytes += bytesOf(o.getProbs());
          w.tensorCore = tensorCores && isHalf(o.getX());
          w.launches = tensorCores ? 2 : 1;
          return w;
        })
        .Case([&](RankAssignmentsOp o) {
          KernelWork w = named(op, "moek_rank_assignments");
          w.bytes = 3 * bytesOf(o.getIndices());
          // The rest of the plan, when the op makes it, in the same passes.
          for (Value derived : {o.getRows(), o.getOwners()})
            if (derived)
              w.bytes += bytesOf(derived);
          w.launches = tensorCores ? 3 : 1; // three passes on the GPU
          return w;
        })
        .Case<ExclusiveScanOp, AssignmentRowsOp, RowAssignmentsOp,
              moek::ExpertLoadsOp>([&](Operation *o) {
          KernelWork w = named(op, kernelName(op));
          for (Value operand : o->getOperands())
            if (isa<MemRefType>(operand.getType()))
              w.bytes += bytesOf(operand);
          return w;
        })
        .Case([&](GatherRowsOp o) {
          KernelWork w = named(op, "moek_gather_rows");
          w.bytes = 2 * bytesOf(o.getOut());
          return w;
        })
        .Case([&](GroupedMatmulOp o) { return groupedMatmul(o); })
        .Case([&](GluOp o) {
          KernelWork w = named(op, "moek_glu");
          w.bytes = bytesOf(o.getH()) + bytesOf(o.getOut());
          w.flops = 10 * elements(o.getOut());
          return w;
        })
        // The block's kernels on the GPU: the projections' GEMMs, RMSNorm
        // (two passes over x), the attention core (causal: half of the
        // L x L products, twice: Q K^T and P V; q, k, v read once).
        .Case([&](moek::MatmulOp o) {
          double m = extent(o.getA(), 0), k = extent(o.getA(), 1),
                 n = extent(o.getB(), 1);
          KernelWork w = named(op, "moek_matmul");
          w.flops = 2 * m * n * k;
          w.bytes = bytesOf(o.getA()) + bytesOf(o.getB()) + bytesOf(o.getC());
          w.tensorCore = tensorCores && isHalf(o.getA());
          return w;
        })
        .Case([&](moek::RmsNormOp o) {
          KernelWork w = named(op, "moek_rms_norm");
          w.flops = 4 * elements(o.getX());
          w.bytes = 2 * bytesOf(o.getX()) + bytesOf(o.getOut());
          return w;
        })
        .Case([&](FlashAttentionOp o) {
          double batch = extent(o.getQ(), 0), length = extent(o.getQ(), 1);
          double heads = double(o.getHeads()), dh = double(o.getHeadDim());
          // The GPU's mma.sync kernel takes a bf16/f16 output and a head
          // size that is a multiple of 16 up to 128 (the rule of
          // canLowerFlashAttentionToTensorCores), else the SIMT kernel.
          int64_t headDim = o.getHeadDim();
          bool mma = tensorCores && isHalf(o.getO()) && headDim % 16 == 0 &&
                     headDim <= 128;
          KernelWork w = named(op, mma ? "moek_flash_attention_mma"
                                       : "moek_flash_attention_simt");
          w.flops = 2 * 2 * batch * heads * (length * (length + 1) / 2) * dh;
          w.bytes = bytesOf(o.getQ()) + bytesOf(o.getK()) + bytesOf(o.getV()) +
                    bytesOf(o.getO());
          w.tensorCore = mma;
          return w;
        })
        .Case([&](CombineRowsOp o) {
          KernelWork w = named(op, "moek_combine_rows");
          w.bytes = bytesOf(o.getExpertOut()) + bytesOf(o.getY());
          w.flops = 2 * elements(o.getExpertOut());
          return w;
        })
        .Case([&](GroupedGluBackwardOp o) {
          // Elementwise per grouped row since g = dy w2^T is a GEMM of its
          // own: reads g and h, writes a and dh, <g, a> per row.
          double rows = elements(o.getOwners());
          double f = extent(o.getG(), 1);
          KernelWork w = named(op, "moek_grouped_glu_backward");
          w.flops = 20 * rows * f;
          w.bytes = rows * f * elementBytes(o.getG()) +
                    rows * 2 * f * elementBytes(o.getGateUp()) +
                    rows * f * elementBytes(o.getAct()) +
                    rows * 2 * f * elementBytes(o.getDh());
          return w;
        })
        .Case([&](GroupedWeightGradOp o) {
          double rows = elements(o.getOwners());
          double e = extent(o.getDw(), 0), m = extent(o.getDw(), 1),
                 n = extent(o.getDw(), 2);
          // The GPU's varlen-K tensor-core kernels take half operands of
          // one type, unweighted, with M and N multiples of 8 (the rule of
          // canLowerWeightGradToTensorCores); the rest is one thread per
          // output element. A device with a "grouped_weight_grad_warpgroup"
          // tile runs the sm_90a wgmma kernel (a kernel of that name), else
          // the mma.sync one.
          bool tensorCore =
              device.matrixTflops > 0 && isHalf(o.getLhs()) &&
              elementBytes(o.getLhs()) == elementBytes(o.getRhs()) &&
              isHalf(o.getRhs()) && !o.getWeights() && int64_t(m) % 8 == 0 &&
              int64_t(n) % 8 == 0;
          const GemmTile *tile = nullptr;
          if (tensorCore)
            tile = device.tileFor("grouped_weight_grad_warpgroup");
          KernelWork w = named(op, tile ? "moek_grouped_weight_grad_warpgroup"
                                        : "moek_grouped_weight_grad");
          if (tensorCore && !tile)
            tile = device.tileFor("grouped_weight_grad");
          w.tensorCore = tensorCore;
          w.flops = 2 * rows * m * n;
          w.bytes = rows * (m * elementBytes(o.getLhs()) +
                            n * elementBytes(o.getRhs())) +
                    e * m * n * elementBytes(o.getDw());
          // One output tile of each expert of the launch (a CTA each, or
          // a persistent CTA's turn), as deep as the expert's rows: the tile
          // count is fixed by the shapes.
          if (tile) {
            double perLaunch = expertsPerLaunch(op, e);
            w.tiles = std::ceil(m / tile->rows) * std::ceil(n / tile->columns) *
                      perLaunch;
            w.tileFlops = 2.0 * tile->rows * tile->columns * (rows / e);
            w.waveSlots = device.waveSlots(*tile);
            // Every output tile of an expert reads the expert's rows of
            // both operands, BM and BN columns of them.
            double depth = rows / e;
            double operands = depth * (m * elementBytes(o.getLhs()) +
                                       n * elementBytes(o.getRhs()));
            double tileReads =
                std::ceil(m / tile->rows) * std::ceil(n / tile->columns) *
                depth *
                (tile->rows * elementBytes(o.getLhs()) +
                 tile->columns * elementBytes(o.getRhs()));
            w.bytes += e * cacheMissBytes(device, operands, tileReads);
          }
          return w;
        })
        .Case([&](RouteBackwardOp o) {
          double t = extent(o.getX(), 0), h = extent(o.getX(), 1);
          double e = extent(o.getWGate(), 1);
          KernelWork w = named(op, "moek_route_backward");
          w.bytes = bytesOf(o.getX()) + bytesOf(o.getDx()) * 2 +
                    bytesOf(o.getWGate()) + bytesOf(o.getDwGate());
          if (o.getProbs())
            w.bytes += bytesOf(o.getProbs());
          if (tensorCores) {
            // The GPU: the scores by the router's tensor-core GEMM unless
            // the probabilities were saved (small beside the rest: counted
            // as its bytes), then SIMT launches for ds per token, dx += ds
            // w_gate^T and dw_gate = x^T ds: the two T*H*E products are the
            // time. Five launches (aux, ds, dx, dw_gate's zero and sum) and
            // the GEMM's. (With a bf16/f16 ds the products are tensor-core
            // launches of their own: routerProducts.)
            w.flops = 2 * 2 * t * h * e;
            w.bytes += 2 * t * e * 4;
            w.launches = 5;
            if (!o.getProbs()) {
              w.bytes += bytesOf(o.getX()) + t * e * 4;
              w.launches += 1;
            }
            return w;
          }
          // The CPU: scores recomputed per token (unless saved), then the
          // same two products.
          w.flops = (o.getProbs() ? 2 : 3) * 2 * t * h * e;
          return w;
        })
        // Collectives: the bytes that leave the rank. Routing spreads a
        // rank's rows evenly over the ranks, so (R - 1) / R of them go to
        // the others.
        .Case<moek::AllToAllOp, AllToAllStartOp>([&](Operation *o) {
          // The rows that travel: the smaller of the two row buffers, since
          // one of them may be a bound (R times the rows a rank sends) that
          // the counts never fill.
          Value rows = o->getOperand(0), received = o->getOperand(3);
          KernelWork w = collective(
              o, bytesOf(received) < bytesOf(rows) ? received : rows);
          w.allToAllOverheads = 1;
          return w;
        })
        .Case([&](moek::ExchangeCountsOp o) {
          return collective(op, o.getCounts());
        })
        .Case([&](moek::AllReduceOp o) { return collective(op, o.getIn()); })
        .Case([&](linalg::FillOp o) -> std::optional<KernelWork> {
          if (!isa<MemRefType>(o.getOutputs()[0].getType()))
            return std::nullopt;
          KernelWork w = named(op, "fill");
          w.bytes = bytesOf(o.getOutputs()[0]);
          return w;
        })
        .Case([&](linalg::MapOp o) -> std::optional<KernelWork> {
          if (!isa<MemRefType>(o.getInit().getType()))
            return std::nullopt;
          KernelWork w = named(op, "linalg_map");
          for (Value in : o.getInputs())
            w.bytes += bytesOf(in);
          w.bytes += bytesOf(o.getInit());
          return w;
        })
        // The block's kernels (RMSNorm, attention's steps): one pass over
        // the iteration space, its body's arithmetic per point, each buffer
        // moved once.
        .Case([&](linalg::GenericOp o) -> std::optional<KernelWork> {
          if (!o.hasPureBufferSemantics())
            return std::nullopt;
          KernelWork w = named(op, "linalg_generic");
          double points = 1;
          for (int64_t range : o.getStaticLoopRanges())
            points *= ShapedType::isDynamic(range) ? dynamicExtent
                                                   : double(range);
          double arithmetic = 0;
          for (Operation &inner : o.getBody()->without_terminator())
            if (isa<arith::ArithDialect, math::MathDialect>(
                    inner.getDialect()) &&
                !isa<arith::ConstantOp, arith::IndexCastOp>(inner))
              arithmetic += 1;
          w.flops = points * std::max(1.0, arithmetic);
          for (Value operand : o->getOperands())
            w.bytes += bytesOf(operand);
          return w;
        })
        .Case([&](memref::CopyOp o) {
          KernelWork w = named(op, "copy");
          w.bytes = 2 * bytesOf(o.getTarget());
          return w;
        })
        .Default([](Operation *) { return std::nullopt; });
  }

private:
  static std::string kernelName(Operation *op) {
    std::string name = op->getName().getStringRef().str();
    std::replace(name.begin(), name.end(), '.', '_');
    return name;
  }

  static KernelWork named(Operation *op, const std::string &name) {
    KernelWork w;
    w.name = name;
    w.op = op->getName().getStringRef().str();
    return w;
  }

  KernelWork collective(Operation *op, Value sent) const {
    // all_to_all_start is priced as the all_to_all it starts.
    std::string name = kernelName(op);
    if (StringRef(name).ends_with("_start"))
      name.resize(name.size() - std::string("_start").size());
    KernelWork w = named(op, name);
    double ranks = double(op->getAttrOfType<IntegerAttr>("ranks").getInt());
    w.bytes = bytesOf(sent) * (ranks - 1) / ranks;
    w.communication = true;
    return w;
  }

  KernelWork groupedMatmul(GroupedMatmulOp o) {
    Value a = o.getA(), b = o.getB(), c = o.getC();
    GroupedGemmShape shape;
    shape.topK = double(o.getTopK());
    // b is [E, K, N], or [E, N, K] with transpose_b (the weight as stored).
    bool transposed = o.getTransposeB();
    shape.experts = extent(b, 0);
    shape.expertsPerLaunch = expertsPerLaunch(o, shape.experts);
    shape.k = extent(b, transposed ? 2 : 1);
    shape.n = extent(b, transposed ? 1 : 2);
    // Routed rows: T*k through the owners map, else the rows of a.
    shape.rows = o.getOwners() ? elements(o.getOwners())
                 : o.getGather() ? extent(a, 0) * shape.topK
                                 : extent(a, 0);
    shape.aBytes = elementBytes(a);
    shape.bBytes = elementBytes(b);
    switch (o.getEpilogue()) {
    case Epilogue::store:
    case Epilogue::scatter_store: // each token's row, once
      shape.outBytes = shape.rows * shape.n * elementBytes(c);
      break;
    case Epilogue::silu_glu:
    case Epilogue::gelu_glu:
      shape.outBytes = shape.rows * shape.n / 2 * elementBytes(c);
      // The saved h, every column, beside the activation.
      if (Value h = o.getPreActivation())
        shape.outBytes += shape.rows * shape.n * elementBytes(h);
      break;
    case Epilogue::scatter_add: // read-modify-write of the f32 accumulator
      shape.outBytes = shape.rows * shape.n * 4 * 2;
      break;
    }
    KernelWork w = groupedMatmulWork(
        device,
        ("moek_grouped_matmul_" + stringifyEpilogue(o.getEpilogue()) +
         (transposed ? "_transposed_b" : ""))
            .str(),
        shape, isHalf(a));
    w.op = o->getName().getStringRef().str();
    return w;
  }

  /// The router's backward with its products on tensor cores (a bf16/f16
  /// ds whose shapes the kernels take, as moek-lower-to-gpu decides):
  /// `moek_route_backward` for the per-token kernel (and the scores GEMM
  /// unless the probabilities were saved, counted as its bytes), then
  /// `moek_route_backward_dx` priced as the backward's B-transposed
  /// mma.sync store GEMM (the same kernel, one group of T rows, plus the
  /// read of the f32 dx it adds to) and `moek_route_backward_dw_gate` as the
  /// varlen-K weight gradient (its [H, E] tiles times the token slices that
  /// fill the chip). Nothing when the SIMT form runs.
  std::vector<KernelWork> routerProducts(RouteBackwardOp o) {
    double t = extent(o.getX(), 0), h = extent(o.getX(), 1);
    double e = extent(o.getWGate(), 1);
    if (device.matrixTflops <= 0 || !o.getDs() || !isHalf(o.getX()) ||
        !RouteBackwardOp::productsFitTensorCores(int64_t(h), int64_t(e)))
      return {};
    KernelWork token = named(o, "moek_route_backward");
    // Per token: its f32 scores in, ds out in the layer's type, the
    // E-long loops (softmax / sigmoid, its gradient, the aux term).
    token.flops = 16 * t * e;
    token.bytes = t * e * 4 + bytesOf(o.getDs()) + bytesOf(o.getDWeights()) +
                  bytesOf(o.getIndices());
    token.launches = 2; // the aux loss's zero, the tokens
    if (o.getProbs()) {
      token.bytes += bytesOf(o.getProbs());
    } else {
      token.bytes += bytesOf(o.getX()) + bytesOf(o.getWGate()) + t * e * 4;
      token.launches += 1;
    }

    KernelWork dx = named(o, "moek_route_backward_dx");
    dx.calibratedAs = "grouped_matmul_store_transposed_b";
    dx.tensorCore = true;
    dx.bytes = bytesOf(o.getDs()) + bytesOf(o.getWGate()) +
               2 * bytesOf(o.getDx());
    dx.flops = 2 * t * h * e;
    if (const GemmTile *tile = device.tileFor("grouped_matmul")) {
      dx.flops = 2 * std::ceil(t / tile->rows) * tile->rows * h * e;
      dx.tiles = std::ceil(t / tile->rows) * std::ceil(h / tile->columns);
      dx.tileFlops = 2.0 * tile->rows * tile->columns * e;
      dx.waveSlots = device.waveSlots(*tile);
    }

    KernelWork dw = named(o, "moek_route_backward_dw_gate");
    dw.calibratedAs = "grouped_weight_grad";
    dw.tensorCore = true;
    dw.flops = 2 * t * h * e;
    dw.bytes = bytesOf(o.getX()) + bytesOf(o.getDs()) + bytesOf(o.getDwGate());
    if (const GemmTile *tile = device.tileFor("grouped_weight_grad")) {
      double outputTiles =
          std::ceil(h / tile->rows) * std::ceil(e / tile->columns);
      int64_t slices = RouteBackwardOp::weightGradSlices(
          int64_t(outputTiles), device.multiprocessors);
      if (slices > 1) {
        // dw_gate zeroed, then every slice adds its tiles.
        dw.bytes += double(slices) * bytesOf(o.getDwGate());
        dw.launches += 1;
      }
      dw.tiles = outputTiles * double(slices);
      dw.tileFlops = 2.0 * tile->rows * tile->columns * (t / double(slices));
      dw.waveSlots = device.waveSlots(*tile);
    }
    return {token, dx, dw};
  }

  /// Experts of one launch: all of them, or a chunk's when a loop runs
  /// the chunks one launch each.
  static double expertsPerLaunch(Operation *op, double experts) {
    return std::ceil(experts / double(tripCount(op)));
  }

  const DeviceDescription &device;
  const double dynamicExtent;
};

} // namespace

/// The row tiles of a grouped GEMM: each expert of a launch owns
/// ceil(rows_e / tile rows), its rows binomial over the tokens (random
/// routing: mean mu = rows / E, variance mu (1 - k / E)), the last tile
/// half empty on average; times the column tiles.
static void setRowTiles(KernelWork &w, const DeviceDescription &device,
                        const GemmTile &tile, const GroupedGemmShape &s) {
  double mu = s.rows / s.experts, tm = double(tile.rows);
  double variance = mu * std::max(0.0, 1.0 - s.topK / s.experts);
  double rowTiles = s.expertsPerLaunch * (mu / tm + 0.5);
  // A ceiling adds about a uniform [0, 1) tile: variance 1/12.
  double rowTilesSd =
      std::sqrt(s.expertsPerLaunch * (variance / (tm * tm) + 1.0 / 12.0));
  double columnTiles = std::ceil(s.n / double(tile.columns));
  w.tiles = rowTiles * columnTiles;
  w.tilesSd = rowTilesSd * columnTiles;
  w.tileFlops = 2.0 * tm * double(tile.columns) * s.k;
  w.waveSlots = device.waveSlots(tile);
}

KernelWork mlir::moe::groupedMatmulWork(const DeviceDescription &device,
                                        std::string name,
                                        const GroupedGemmShape &s,
                                        bool halfOperands) {
  KernelWork w;
  w.name = std::move(name);
  w.op = "moek.grouped_matmul";
  w.tensorCore = device.matrixTflops > 0 && halfOperands &&
                 int64_t(s.k) % 8 == 0 && int64_t(s.n) % 8 == 0;
  // Each expert's last row tile is on average half empty: the tile shape's
  // efficiency on ragged groups (the wave term prices it too; this is the
  // flops the report shows).
  const GemmTile *tile = device.tileFor("grouped_matmul");
  double padded =
      s.rows + (w.tensorCore && tile ? s.experts * double(tile->rows) / 2.0
                                     : 0.0);
  w.flops = 2 * padded * s.k * s.n;
  w.bytes = s.rows * s.k * s.aBytes + s.experts * s.k * s.n * s.bBytes +
            s.outBytes;
  if (!tile || !w.tensorCore)
    return w;
  setRowTiles(w, device, *tile, s);
  // The expert's weight is read again beyond the cache by every tile
  // group that needs it: each row tile (column-first order), or each band
  // of row tiles that holds the expert's rows (about rowTiles / band + 1:
  // the bands do not start at an expert's first row).
  double weight = s.k * s.n * s.bBytes;
  double rowTiles = std::ceil(s.rows / s.experts / double(tile->rows));
  double reads = tile->bandRowTiles > 0
                     ? std::min(rowTiles,
                                rowTiles / double(tile->bandRowTiles) + 1.0)
                     : rowTiles;
  w.bytes += s.experts * cacheMissBytes(device, weight, reads * weight);
  return w;
}

namespace {

/// What a dynamic row count of `func` is assumed to be: in a per-rank
/// program of expert parallelism (moe.expert_parallel) the rows a rank
/// receives, and sends back, which random routing makes T*k on average
/// (each of the R ranks sends T*k/R of its assignments to every rank);
/// elsewhere kAssumedDynamicExtent.
double expectedDynamicExtent(func::FuncOp func) {
  if (!func->hasAttr("moe.expert_parallel"))
    return double(kAssumedDynamicExtent);
  double extent = 0;
  func.walk([&](RouteOp route) {
    int64_t tokens = cast<ShapedType>(route.getX().getType()).getDimSize(0);
    if (!ShapedType::isDynamic(tokens))
      extent = double(tokens) * double(route.getTopK());
  });
  return extent > 0 ? extent : double(kAssumedDynamicExtent);
}

bool isGroupedKernel(Operation *op) {
  return isa<GroupedMatmulOp, GroupedGluBackwardOp, GroupedWeightGradOp>(op);
}

} // namespace

std::map<std::string, double> FunctionCost::msByName() const {
  std::map<std::string, double> byName;
  for (const KernelEstimate &k : kernels)
    byName[k.work.name] += k.ms;
  return byName;
}

FunctionCost mlir::moe::estimateFunctionCost(func::FuncOp func,
                                       const DeviceDescription &device) {
  FunctionCost cost;
  cost.function = func.getSymName().str();
  cost.dynamicExtent = expectedDynamicExtent(func);
  WorkBuilder builder(device, cost.dynamicExtent);
  // Two lanes, as the runtime runs them: the kernels one after another on
  // the compute stream (time `now`), the collectives one after another on
  // the communication stream (free at `linkFree`). A started all-to-all
  // runs beside the kernels issued before its wait, behind the transfers
  // started before it; a blocking collective stops the compute lane.
  double now = 0, linkFree = 0;
  llvm::DenseMap<Value, std::pair<size_t, double>> started; // event: index, end
  func.walk([&](Operation *op) {
    if (auto wait = dyn_cast<AllToAllWaitOp>(op)) {
      auto it = started.find(wait.getEvent());
      if (it != started.end()) {
        CollectiveEstimate &c = cost.collectives[it->second.first];
        double exposed = std::max(0.0, it->second.second - now);
        c.hiddenMs = std::max(0.0, c.ms - exposed);
        now += exposed;
      }
      return;
    }
    int64_t trips = tripCount(op);
    for (KernelWork &work : builder.worksOf(op)) {
      if (isGroupedKernel(op)) {
        work.launches *= trips; // work already spans every chunk's rows
      } else {
        work.launches *= trips;
        work.flops *= trips;
        work.bytes *= trips;
      }
      double ms = ::moe::cost::predictMs(device, work);
      if (!work.communication) {
        now += ms;
        cost.kernelMs += ms;
        cost.kernels.push_back(KernelEstimate{work, ms});
        continue;
      }
      // What the all-to-all costs the compute lane beyond its transfer.
      double overheadMs = double(work.launches * work.allToAllOverheads) *
                          device.allToAllOverheadUs * 1e-3;
      now += overheadMs;
      cost.allToAllOverheadMs += overheadMs;
      double end = std::max(now, linkFree) + ms;
      linkFree = end;
      cost.communicationMs += ms;
      if (auto start = dyn_cast<AllToAllStartOp>(op))
        started[start.getEvent()] = {cost.collectives.size(), end};
      else
        now = end;
      cost.collectives.push_back(CollectiveEstimate{work, ms, 0});
    }
  });
  for (const CollectiveEstimate &c : cost.collectives)
    cost.hiddenMs += c.hiddenMs;
  cost.totalMs = now + device.syncUs * 1e-3;
  return cost;
}

std::vector<FunctionCost>
mlir::moe::estimateModuleCost(ModuleOp module, const DeviceDescription &device) {
  std::vector<FunctionCost> costs;
  for (auto func : module.getOps<func::FuncOp>())
    if (func.isPublic() && !func.isExternal())
      costs.push_back(estimateFunctionCost(func, device));
  return costs;
}

static llvm::json::Object costJson(const FunctionCost &cost,
                                   const DeviceDescription &device) {
  llvm::json::Array kernels;
  for (const KernelEstimate &k : cost.kernels)
    kernels.push_back(llvm::json::Object{
        {"name", k.work.name},
        {"op", k.work.op},
        {"class", device.classOf(k.work)},
        {"flops", k.work.flops},
        {"bytes", k.work.bytes},
        {"launches", k.work.launches},
        {"tensor_core", k.work.tensorCore},
        // The wave term (0 when none): what the compute term prices.
        {"tiles_per_launch", k.work.tiles},
        {"wave_slots", k.work.waveSlots},
        {"waves_per_launch",
         ::moe::cost::expectedWaves(k.work.tiles, k.work.tilesSd,
                                    k.work.waveSlots)},
        {"wave_flops", ::moe::cost::waveFlops(k.work)},
        {"predicted_ms", k.ms},
    });
  llvm::json::Array collectives;
  for (const CollectiveEstimate &c : cost.collectives)
    collectives.push_back(llvm::json::Object{
        {"name", c.work.name},
        {"op", c.work.op},
        {"bytes", c.work.bytes},
        {"launches", c.work.launches},
        {"predicted_ms", c.ms},
        {"hidden_ms", c.hiddenMs},
    });
  return llvm::json::Object{
      {"total_ms", cost.totalMs},
      {"kernel_ms", cost.kernelMs},
      {"sync_ms", device.syncUs * 1e-3},
      {"communication_ms", cost.communicationMs},
      {"hidden_ms", cost.hiddenMs},
      {"all_to_all_overhead_ms", cost.allToAllOverheadMs},
      {"assumed_dynamic_extent", cost.dynamicExtent},
      {"kernels", std::move(kernels)},
      {"collectives", std::move(collectives)},
  };
}

LogicalResult mlir::moe::writeCostReport(ModuleOp module,
                                   ArrayRef<FunctionCost> costs,
                                   const DeviceDescription &device,
                                   StringRef path) {
  llvm::json::Object functions;
  for (const FunctionCost &cost : costs)
    functions[cost.function] = costJson(cost, device);
  llvm::json::Object root{
      {"device", device.id},
      {"device_description", device.description},
      {"assumed_dynamic_extent", kAssumedDynamicExtent},
      {"functions", std::move(functions)},
  };
  if (!costs.empty()) {
    llvm::json::Object first = costJson(costs.front(), device);
    root["total_ms"] = std::move(first["total_ms"]);
    root["kernels"] = std::move(first["kernels"]);
  }
  std::error_code error;
  llvm::raw_fd_ostream os(path, error, llvm::sys::fs::OF_Text);
  if (error)
    return module.emitError() << "cannot write the cost report '" << path
                              << "': " << error.message();
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  os.close();
  if (os.has_error())
    return module.emitError() << "cannot write the cost report '" << path
                              << "': " << os.error().message();
  return success();
}

