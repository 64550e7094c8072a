//===- MoeChooseEpilogue.cpp - How expert outputs reach y, by time -----===//
//
// Zero-buffer fusion can bring the second grouped GEMM's rows back to token
// order two ways: `scatter_add` (each row, times its gate weight, added into
// an f32 accumulator of y: the least memory, atomics on every element) or
// `gather_sum` (rows stored in expert order, then a gather sums each
// token's k rows: no atomics, T*k*H more bytes of activations). Which is
// faster depends on the shape: with a short K (qwen3_30b_a3b's F = 768) the
// atomics are a large share of the GEMM; with mixtral's F = 14336 they are
// not, and the extra pass over T*k*H rows is.
//
// This pass lowers a clone of the module once per epilogue to planned
// buffers (the target's pipeline up to moe-plan-memory, as
// moe-place-recomputation evaluates its placements), predicts each with the
// cost model and keeps the faster one, unless it is faster by less than
// kMinGain: then the one with the smaller planned peak. The choice is the
// module's `moe.epilogue` attribute, which the compilation's pipeline takes
// as the fusion's epilogue; remarks give every candidate's prediction and
// peak, then the choice and why. Under a memory budget (within-peak) a
// candidate that peaks above scatter_add is never taken. A function with
// row slices (moe.row_slices) takes scatter_add: only it is sliced.
//
//===----------------------------------------------------------------------===//

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Analysis/CostModel/CostModel.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOECHOOSEEPILOGUEPASS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// A faster prediction by less than this share is within the cost model's
/// error (bench/RESULTS.md: layers within 8%, kernels within 11%): the
/// smaller planned peak wins then.
constexpr double kMinGain = 0.03;

struct Evaluation {
  StringRef epilogue;
  double predictedMs = 0;
  int64_t peakBytes = 0;
};

struct MoeChooseEpiloguePass
    : public mlir::moe::impl::MoeChooseEpiloguePassBase<MoeChooseEpiloguePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (target != "cpu" && !StringRef(target).starts_with("cuda")) {
      module.emitError() << "moe-choose-epilogue: target '" << target
                         << "' is not cpu or cuda[:sm_XY]";
      return signalPassFailure();
    }
    std::string deviceId = costDevice.empty()
                               ? ::moe::cost::defaultDeviceFor(target)
                               : costDevice.getValue();
    const ::moe::cost::DeviceDescription *device =
        ::moe::cost::findDevice(deviceId);
    if (!device) {
      module.emitError() << "moe-choose-epilogue: no device '" << deviceId
                         << "' in the cost model's table (have: "
                         << llvm::join(::moe::cost::deviceIds(), ", ") << ")";
      return signalPassFailure();
    }
    // Row slices bound the scatter epilogue's activation buffer; gather_sum
    // would keep all T*k rows, so a function that asks for them decides.
    bool sliced = false;
    module.walk([&](FunctionOpInterface function) {
      if (auto slices = function->getAttrOfType<IntegerAttr>(kRowSlicesAttr))
        sliced |= slices.getInt() > 1;
    });
    if (sliced) {
      module->setAttr("moe.epilogue",
                      StringAttr::get(module.getContext(), "scatter_add"));
      module.emitRemark() << "moe-choose-epilogue: scatter_add (the program "
                             "asks for row slices: moe.row_slices)";
      return;
    }
    SmallVector<Evaluation> candidates;
    for (StringRef epilogue : {"scatter_add", "gather_sum"}) {
      FailureOr<Evaluation> e = evaluate(epilogue, *device);
      if (failed(e))
        return signalPassFailure();
      module.emitRemark() << llvm::formatv(
          "moe-choose-epilogue: {0}: predicted {1:F3} ms on {2}, planned "
          "peak {3} bytes",
          epilogue, e->predictedMs, device->id, e->peakBytes);
      candidates.push_back(*e);
    }
    const Evaluation &scatter = candidates[0], &gather = candidates[1];
    const Evaluation *fast = &scatter, *slow = &gather;
    if (gather.predictedMs < scatter.predictedMs)
      std::swap(fast, slow);
    const Evaluation *chosen = fast;
    std::string why = llvm::formatv("predicted {0:P0} faster",
                                    1.0 - fast->predictedMs / slow->predictedMs)
                          .str();
    if (withinPeak && gather.peakBytes > scatter.peakBytes) {
      chosen = &scatter;
      why = "the memory budget: gather_sum's planned peak is larger";
    } else if (fast->predictedMs > (1.0 - kMinGain) * slow->predictedMs &&
               slow->peakBytes < fast->peakBytes) {
      chosen = slow;
      why = llvm::formatv("the smaller planned peak: the other is predicted "
                          "faster by less than {0:P0}",
                          kMinGain)
                .str();
    }
    module->setAttr("moe.epilogue",
                    StringAttr::get(module.getContext(), chosen->epilogue));
    module.emitRemark() << "moe-choose-epilogue: " << chosen->epilogue << " ("
                        << why << ")";
  }

private:
  /// Lowers a clone of the module with `epilogue` to planned buffers: the
  /// predicted time of its public functions and their largest planned peak.
  FailureOr<Evaluation>
  evaluate(StringRef epilogue, const ::moe::cost::DeviceDescription &device) {
    OwningOpRef<ModuleOp> clone = getOperation().clone();
    if (failed(runPlannedBuffersPipeline(*clone, target, expertsPerChunk,
                                         /*fusion=*/true, epilogue)))
      return failure();
    Evaluation e;
    e.epilogue = epilogue;
    for (const FunctionCost &cost : estimateModuleCost(*clone, device))
      e.predictedMs += cost.totalMs;
    for (auto func : clone->getOps<func::FuncOp>())
      if (std::optional<int64_t> peak = plannedPeakBytes(func))
        e.peakBytes = std::max(e.peakBytes, *peak);
    return e;
  }
};

} // namespace
