//===- CostModelTest.cpp - The cost model against measured profiles -------===//
//
// The device table's lookups, and the model's prediction of the layers a
// recorded `moe-run --profile` measured (bench/logs/profile-*.json): each
// preset is compiled here to planned kernels as moe-compile does for the
// target, its kernels' predicted times are summed, and the layer time must
// be within 10% of the measurement (the bar), each kernel that takes
// at least 5% of the layer within `kernelTolerance` (smaller ones are
// launch-bound noise): 15% in the forward, 25% in the training step (one
// scale per kernel class over three presets whose varlen-K weight gradients
// differ per flop more than shapes, flops and bytes say).
// The forward and the training step of 2026-11-30 05:47 UTC are both fitted
// profiles: these are in-sample checks that the checked-in table still
// describes them. The training profile has both schedules (all experts a
// launch, and one, `chunk1`, priced by waves) at the least and the
// save-everything budget: each run is recompiled with its recorded schedule
// and budget. The profiles before it ran code sm_90a no longer emits (the
// GEMMs before their tile table and register split; the backward before it
// kept h and g in bf16): those steps are no longer checked, their logs stay
// in bench/logs/.
//===----------------------------------------------------------------------===//

#include "lib/Analysis/CostModel/CostModel.h"
#include "lib/Analysis/CostModel/Waves.h"
#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Driver/Driver.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>
#include <limits>
#include <map>

using namespace mlir;
using ::moe::cost::DeviceDescription;

namespace {

TEST(DeviceTable, KnowsTheCalibratedDevices) {
  for (const char *id : {"h200-sm90a", "h200-sm90", "cpu"})
    EXPECT_NE(::moe::cost::findDevice(id), nullptr) << id;
  EXPECT_EQ(::moe::cost::findDevice("tpu"), nullptr);
  EXPECT_EQ(::moe::cost::defaultDeviceFor("cpu"), "cpu");
  EXPECT_EQ(::moe::cost::defaultDeviceFor("cuda:sm_90a"), "h200-sm90a");
  EXPECT_EQ(::moe::cost::defaultDeviceFor("cuda:sm_90"), "h200-sm90");
}

TEST(DeviceTable, FallsBackToTheDefaultClass) {
  const DeviceDescription *h200 = ::moe::cost::findDevice("h200-sm90a");
  ASSERT_NE(h200, nullptr);
  ::moe::cost::KernelCalibration unknown =
      h200->calibrationFor("no_such_kernel.tc");
  ::moe::cost::KernelCalibration fallback = h200->calibrationFor("default.tc");
  EXPECT_EQ(unknown.computeScale, fallback.computeScale);
  EXPECT_EQ(unknown.bytesScale, fallback.bytesScale);
}

TEST(DeviceTable, PredictionGrowsWithWork) {
  const DeviceDescription *h200 = ::moe::cost::findDevice("h200-sm90a");
  ::moe::cost::KernelWork small{"moek_glu", "moek.glu", 1e9, 1e8, 1, false};
  ::moe::cost::KernelWork large = small;
  large.flops *= 2;
  large.bytes *= 2;
  EXPECT_GT(::moe::cost::predictMs(*h200, large),
            ::moe::cost::predictMs(*h200, small));
  EXPECT_GT(::moe::cost::predictMs(*h200, small), 0.0);
}

/// The predicted cost of `spec` compiled for a CUDA target (fusion on;
/// all experts in one launch unless `expertsPerChunk`: moe-compile's
/// defaults there), its recomputation placed under `budgetBytes` if given.
/// `simtRouterProducts` prices the router backward's products as the SIMT
/// kernels that ran before they moved to tensor cores.
std::optional<mlir::moe::FunctionCost>
predict(const std::string &spec, bool backward,
        const DeviceDescription &device, int64_t expertsPerChunk = 0,
        std::optional<int64_t> budgetBytes = std::nullopt,
        bool simtRouterProducts = false) {
  int64_t chunk = expertsPerChunk > 0 ? expertsPerChunk
                                      : std::numeric_limits<int64_t>::max();
  std::unique_ptr<MLIRContext> context = mlir::moe::createCompilerContext();
  std::string error;
  OwningOpRef<ModuleOp> module = mlir::moe::loadLayerProgram(*context, spec, error);
  if (!module) {
    ADD_FAILURE() << spec << ": " << error;
    return std::nullopt;
  }
  PassManager pm(context.get());
  if (backward)
    pm.addPass(mlir::moe::createMoeGenerateBackwardPass());
  if (backward && budgetBytes) {
    mlir::moe::MoePlaceRecomputationPassOptions placement;
    placement.memoryBudget = std::to_string(*budgetBytes);
    placement.target = "cuda:sm_90a";
    placement.expertsPerChunk = expertsPerChunk;
    placement.costDevice = device.id;
    pm.addPass(mlir::moe::createMoePlaceRecomputationPass(placement));
  }
  mlir::moe::buildPlannedBuffersPipeline(pm, /*fusion=*/true, chunk,
                                         "scatter_add", /*cpu=*/false);
  if (failed(pm.run(*module))) {
    ADD_FAILURE() << spec << ": the pipeline failed";
    return std::nullopt;
  }
  // Without ds moek-lower-to-gpu keeps the SIMT products.
  if (simtRouterProducts)
    module->walk([](mlir::moek::RouteBackwardOp op) {
      op.getDsMutable().clear();
    });
  std::vector<mlir::moe::FunctionCost> costs =
      mlir::moe::estimateModuleCost(*module, device);
  if (costs.size() != 1) {
    ADD_FAILURE() << spec << ": " << costs.size() << " functions";
    return std::nullopt;
  }
  return costs.front();
}

/// Checks the recorded profile `file` against the model; `looserKernels`
/// names kernels the model is known to price worse, with their tolerance.
void expectProfilePredicted(
    const std::string &file, double kernelTolerance,
    const std::map<std::string, double> &looserKernels = {},
    llvm::function_ref<bool(llvm::StringRef)> emitsRun = nullptr) {
  std::string path = std::string(MOE_SOURCE_DIR) + "/bench/logs/" + file;
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer)) << "cannot read " << path;
  llvm::Expected<llvm::json::Value> parsed =
      llvm::json::parse((*buffer)->getBuffer());
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  const llvm::json::Object *root = parsed->getAsObject();
  std::string deviceId = root->getString("device")->str();
  const DeviceDescription *device = ::moe::cost::findDevice(deviceId);
  ASSERT_NE(device, nullptr) << deviceId;
  const llvm::json::Array *runs = root->getArray("runs");
  ASSERT_NE(runs, nullptr);
  ASSERT_GE(runs->size(), 3u);
  for (const llvm::json::Value &value : *runs) {
    const llvm::json::Object *run = value.getAsObject();
    // Messages name the run: the spec alone does not say its schedule.
    std::string spec = run->getString("name")->str();
    if (emitsRun && !emitsRun(spec))
      continue;
    bool backward = run->getBoolean("backward").value_or(false);
    int64_t chunk = run->getInteger("experts_per_chunk").value_or(0);
    std::optional<int64_t> budget = run->getInteger("memory_budget_bytes");
    std::optional<mlir::moe::FunctionCost> cost =
        predict(run->getString("spec")->str(), backward, *device, chunk,
                budget);
    ASSERT_TRUE(cost.has_value());
    double measured = *run->getNumber("layer_ms");
    double predicted = cost->totalMs;
    std::map<std::string, double> byName = cost->msByName();
    const llvm::json::Object *kernelsMs = run->getObject("kernels_ms");
    EXPECT_NEAR(predicted / measured, 1.0, 0.10)
        << spec << ": predicted " << predicted << " ms, measured " << measured
        << " ms";
    for (const auto &[name, ms] : *kernelsMs) {
      double kernelMeasured = *ms.getAsNumber();
      if (kernelMeasured < 0.05 * measured)
        continue;
      ASSERT_TRUE(byName.count(name.str())) << spec << ": no " << name.str();
      auto looser = looserKernels.find(name.str());
      double tolerance =
          looser == looserKernels.end() ? kernelTolerance : looser->second;
      EXPECT_NEAR(byName[name.str()] / kernelMeasured, 1.0, tolerance)
          << spec << " " << name.str() << ": predicted " << byName[name.str()]
          << " ms, measured " << kernelMeasured << " ms";
    }
  }
}

/// The kernels of 2026-11-30 05:47 UTC: the backward keeps h and g in
/// bf16 (dh and the weighted a in place over them), the weight gradients'
/// warpgroups at 64 / 216 registers, the GEMMs' tile table. The table is
/// fitted to these profiles, both schedules at the least and the
/// save-everything budget. The GLU backward (SIMT, a warp a row) gets 50%:
/// at one expert per launch few rows a launch leave its loads serial, which
/// one bytes scale for both schedules cannot say.
TEST(CostModel, PredictsTheRecordedH200ForwardOf0547) {
  expectProfilePredicted("profile-h200-sm90a-forward-2026-11-30-0547.json",
                         0.15);
}

/// Of the training steps, those that still recompute h (one expert a
/// chunk at the least budget): the others saved an f32 h with a store GEMM,
/// then ran a GLU kernel, a forward the compiler no longer emits (its GLU
/// GEMM stores a bf16 h as well), or recorded a least budget that a plan
/// saving the bf16 h now fits (mixtral's all-experts step: 1.44 of 1.50
/// GiB).
TEST(CostModel, PredictsTheRecordedH200TrainingStepsOf0547) {
  expectProfilePredicted(
      "profile-h200-sm90a-training-2026-11-30-0547.json", 0.25,
      {{"moek_grouped_glu_backward", 0.5}},
      [](llvm::StringRef run) { return run.ends_with("-chunk1-min"); });
}

/// The kernels of 2026-11-30 14:39 UTC: the saved h in bf16, stored by the
/// forward's GLU GEMM, and results holding the intermediates that die
/// before they are written; every preset at its least and save-everything
/// budget (all experts per launch). Predicted with the 05:47 table, not
/// refitted: within 5% per step.
TEST(CostModel, PredictsTheRecordedH200TrainingStepsOf1439) {
  expectProfilePredicted("profile-h200-sm90a-training-2026-11-30-1439.json",
                         0.25, {{"moek_grouped_glu_backward", 0.5}});
}

/// One expert per launch: 128 launches of each grouped GEMM, each far
/// fewer tiles than the H200's 132 SMs, priced as a full wave each, so the
/// GEMMs cost more than with all experts in one launch.
TEST(CostModel, OneExpertPerLaunchCostsWholeWaves) {
  const DeviceDescription *h200 = ::moe::cost::findDevice("h200-sm90a");
  ASSERT_NE(h200, nullptr);
  std::optional<mlir::moe::FunctionCost> chunked =
      predict("qwen3_30b_a3b", /*backward=*/false, *h200, 1);
  std::optional<mlir::moe::FunctionCost> all =
      predict("qwen3_30b_a3b", /*backward=*/false, *h200);
  ASSERT_TRUE(chunked && all);
  std::map<std::string, double> chunkedMs = chunked->msByName(),
                                allMs = all->msByName();
  int gemms = 0;
  for (const mlir::moe::KernelEstimate &k : chunked->kernels) {
    if (k.work.name.rfind("moek_grouped_matmul", 0) != 0)
      continue;
    ++gemms;
    EXPECT_EQ(k.work.launches, 128) << k.work.name;
    // ~1024 rows of one expert: 8.5 row tiles x 6 or 8 column tiles.
    EXPECT_GT(k.work.tiles, 0.0) << k.work.name;
    EXPECT_LT(k.work.tiles, double(k.work.waveSlots)) << k.work.name;
    EXPECT_EQ(k.work.waveSlots, 132);
    EXPECT_NEAR(::moe::cost::expectedWaves(k.work.tiles, k.work.tilesSd,
                                           k.work.waveSlots),
                1.0, 1e-9);
    EXPECT_GT(chunkedMs[k.work.name], 1.5 * allMs[k.work.name])
        << k.work.name;
  }
  EXPECT_EQ(gemms, 2);
}

/// The training step's kernels as the GPU runs them: the varlen-K weight
/// gradients and the B-transposed GEMMs on tensor cores (on sm_90a the
/// weight gradients a wgmma kernel of their own class, the B-transposed
/// GEMMs the forward's wgmma kernel priced as its classes; on sm_90
/// mma.sync, classes of their own), and the router's backward as its per-token kernel plus its
/// two products on tensor cores, priced by the classes of the kernels they
/// reuse.
TEST(CostModel, DescribesTheTensorCoreBackward) {
  const DeviceDescription *h200 = ::moe::cost::findDevice("h200-sm90a");
  ASSERT_NE(h200, nullptr);
  std::optional<mlir::moe::FunctionCost> cost =
      predict("qwen3_30b_a3b", /*backward=*/true, *h200);
  ASSERT_TRUE(cost.has_value());
  int weightGrads = 0, transposed = 0, routeBackward = 0;
  for (const mlir::moe::KernelEstimate &k : cost->kernels) {
    if (k.work.name == "moek_grouped_weight_grad_warpgroup") {
      // dw1 [128, 2048, 1536] and dw2 [128, 768, 2048]: the wgmma kernel's
      // 128 x 256 tiles of every expert, a class of its own (fitted to the
      // 23:49 profiles).
      ++weightGrads;
      EXPECT_TRUE(k.work.tensorCore);
      EXPECT_EQ(h200->classOf(k.work), "grouped_weight_grad_warpgroup.tc");
      EXPECT_EQ(::moe::cost::kernelClassOf(k.work),
                "grouped_weight_grad_warpgroup.tc");
      EXPECT_TRUE(k.work.tiles == 128.0 * 16 * 6 ||
                  k.work.tiles == 128.0 * 6 * 8)
          << k.work.tiles;
      EXPECT_EQ(k.work.waveSlots, 132);
    }
    if (size_t at = k.work.name.find("_transposed_b");
        at != std::string::npos) {
      ++transposed;
      EXPECT_TRUE(k.work.tensorCore) << k.work.name;
      std::string forward = k.work.name.substr(5, at - 5) + ".tc";
      EXPECT_EQ(h200->classOf(k.work), forward);
      EXPECT_EQ(::moe::cost::findDevice("h200-sm90")->classOf(k.work),
                ::moe::cost::kernelClassOf(k.work));
      EXPECT_NE(forward, ::moe::cost::kernelClassOf(k.work));
    }
    if (k.work.name == "moek_route_backward") {
      ++routeBackward;
      // Per token only: E-long loops, no product over H.
      EXPECT_FALSE(k.work.tensorCore);
      EXPECT_LT(k.work.flops, 2.0 * 16384 * 2048);
      EXPECT_EQ(k.work.launches, 3); // aux, scores GEMM, tokens
    }
    if (k.work.name == "moek_route_backward_dx") {
      ++routeBackward;
      // dx[T, H] += ds . w_gate^T (T = 16384, H = 2048, E = 128): 128 x 8
      // tiles of 128 x 256, the mma.sync store GEMM with B transposed.
      EXPECT_TRUE(k.work.tensorCore);
      EXPECT_EQ(::moe::cost::kernelClassOf(k.work),
                "grouped_matmul_store_transposed_b.tc");
      EXPECT_DOUBLE_EQ(k.work.flops, 2.0 * 16384 * 2048 * 128);
      EXPECT_DOUBLE_EQ(k.work.tiles, 128.0 * 8);
      EXPECT_EQ(k.work.launches, 1);
    }
    if (k.work.name == "moek_route_backward_dw_gate") {
      ++routeBackward;
      // dw_gate[H, E] = x^T ds: 16 tiles of 128 x 128, the tokens in 8
      // slices so that 128 CTAs fill one wave of the 132 SMs.
      EXPECT_TRUE(k.work.tensorCore);
      EXPECT_EQ(::moe::cost::kernelClassOf(k.work), "grouped_weight_grad.tc");
      EXPECT_DOUBLE_EQ(k.work.flops, 2.0 * 16384 * 2048 * 128);
      EXPECT_DOUBLE_EQ(k.work.tiles, 16.0 * 8);
      EXPECT_NEAR(::moe::cost::expectedWaves(k.work.tiles, k.work.tilesSd,
                                             k.work.waveSlots),
                  1.0, 1e-9);
      EXPECT_EQ(k.work.launches, 2); // dw_gate's zero, the product
    }
  }
  EXPECT_EQ(weightGrads, 2);
  EXPECT_EQ(transposed, 2);
  EXPECT_EQ(routeBackward, 3);
  // What they replace: the SIMT products, twice T*H*E flops at SIMT rates.
  std::optional<mlir::moe::FunctionCost> simt =
      predict("qwen3_30b_a3b", /*backward=*/true, *h200, 0, std::nullopt,
              /*simtRouterProducts=*/true);
  ASSERT_TRUE(simt.has_value());
  std::map<std::string, double> now = cost->msByName(),
                                before = simt->msByName();
  double router = now["moek_route_backward"] + now["moek_route_backward_dx"] +
                  now["moek_route_backward_dw_gate"];
  EXPECT_LT(router, 0.1 * before["moek_route_backward"]);
  EXPECT_EQ(before.count("moek_route_backward_dx"), 0u);
}

/// sm_90 (mma.sync) keeps the varlen-K mma.sync weight gradients: their own
/// name, class and 128 x 128 tiles.
TEST(CostModel, MmaSyncWeightGradientsOnSm90) {
  const DeviceDescription *h200 = ::moe::cost::findDevice("h200-sm90");
  ASSERT_NE(h200, nullptr);
  std::optional<mlir::moe::FunctionCost> cost =
      predict("qwen3_30b_a3b", /*backward=*/true, *h200);
  ASSERT_TRUE(cost.has_value());
  int weightGrads = 0;
  for (const mlir::moe::KernelEstimate &k : cost->kernels) {
    EXPECT_NE(k.work.name, "moek_grouped_weight_grad_warpgroup");
    if (k.work.name != "moek_grouped_weight_grad")
      continue;
    ++weightGrads;
    EXPECT_EQ(h200->classOf(k.work), "grouped_weight_grad.tc");
    EXPECT_TRUE(k.work.tiles == 128.0 * 16 * 12 ||
                k.work.tiles == 128.0 * 6 * 16)
        << k.work.tiles;
  }
  EXPECT_EQ(weightGrads, 2);
}

/// The CPU cost of the block `spec` (planned buffers, as moe-compile plans
/// them for the CPU).
std::optional<mlir::moe::FunctionCost> predictBlock(const std::string &spec) {
  std::unique_ptr<MLIRContext> context = mlir::moe::createCompilerContext();
  std::string error;
  OwningOpRef<ModuleOp> module =
      mlir::moe::loadBlockProgram(*context, spec, error);
  if (!module) {
    ADD_FAILURE() << spec << ": " << error;
    return std::nullopt;
  }
  PassManager pm(context.get());
  mlir::moe::buildPlannedBuffersPipeline(pm, /*fusion=*/true, 1, "scatter_add",
                                         /*cpu=*/true);
  if (failed(pm.run(*module))) {
    ADD_FAILURE() << spec << ": the pipeline failed";
    return std::nullopt;
  }
  return mlir::moe::estimateModuleCost(*module, *::moe::cost::findDevice("cpu"))
      .front();
}

/// The block's kernels (linalg.generic) are priced, and a tile loop's once
/// per tile: the same arithmetic over 4 tiles as untiled, 4 times the
/// attention's launches, the weights read once per tile — so more tiles
/// never predict less time, which moe-batch-tile-attention's choice under a
/// memory budget relies on to report each candidate.
TEST(CostModel, PricesTheBlocksKernelsPerTile) {
  std::optional<mlir::moe::FunctionCost> untiled =
      predictBlock("tiny_block,batch=4,seq=32");
  std::optional<mlir::moe::FunctionCost> tiled =
      predictBlock("tiny_block,batch=4,seq=32,bta_tiles=4");
  ASSERT_TRUE(untiled && tiled);
  auto sum = [](const mlir::moe::FunctionCost &cost) {
    double flops = 0, bytes = 0;
    int64_t launches = 0;
    for (const mlir::moe::KernelEstimate &k : cost.kernels)
      if (k.work.name == "linalg_generic") {
        flops += k.work.flops;
        bytes += k.work.bytes;
        launches += k.work.launches;
      }
    return std::make_tuple(flops, bytes, launches);
  };
  auto [flops1, bytes1, launches1] = sum(*untiled);
  auto [flops4, bytes4, launches4] = sum(*tiled);
  EXPECT_GT(launches1, 0);
  // q = n wq alone: B*L*(NH*dh)*H points, a multiply and an add each.
  EXPECT_GE(flops1, 2.0 * 4 * 32 * 32 * 32);
  EXPECT_DOUBLE_EQ(flops4, flops1);
  EXPECT_GT(bytes4, bytes1);
  EXPECT_GT(launches4, launches1);
  EXPECT_GT(tiled->totalMs, untiled->totalMs);
}

} // namespace
