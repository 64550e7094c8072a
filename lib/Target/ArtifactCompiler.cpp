//===- ArtifactCompiler.cpp - moe modules to artifacts --------------------===//

#include "lib/Target/ArtifactCompiler.h"
#include "lib/Analysis/CostModel/CostModel.h"
#include "lib/Target/CudaChip.h"
#include "lib/Target/ArtifactMetadata.h"
#include "lib/Target/EntryPoints.h"
#include "lib/Target/MemoryReport.h"
#include "lib/Target/OutputStreams.h"
#include "moe-mlir/Runtime/ArtifactSeal.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

#include <cstdlib>

using namespace mlir;
using namespace mlir::moe;

/// A target machine for the host, position independent (the artifact is a
/// shared object).
static std::unique_ptr<llvm::TargetMachine>
createHostTargetMachine(unsigned optLevel, std::string &error) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  llvm::SubtargetFeatures features;
  for (const auto &[feature, enabled] : llvm::sys::getHostCPUFeatures())
    features.AddFeature(feature, enabled);
  auto level = optLevel == 0   ? llvm::CodeGenOptLevel::None
               : optLevel == 1 ? llvm::CodeGenOptLevel::Less
               : optLevel == 2 ? llvm::CodeGenOptLevel::Default
                               : llvm::CodeGenOptLevel::Aggressive;
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
      triple, llvm::sys::getHostCPUName(), features.getString(),
      llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt, level));
}

/// Appends the checksum trailer that moert checks before it loads the
/// artifact (include/moe-mlir/Runtime/ArtifactSeal.h).
static LogicalResult sealArtifact(ModuleOp module, StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> linked =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!linked)
    return module.emitError() << "cannot read the linked artifact '" << path
                              << "': " << linked.getError().message();
  StringRef bytes = (*linked)->getBuffer();
  std::string trailer = ::moert::seal::makeTrailer(
      bytes.size(),
      ::moert::seal::fnv1a(reinterpret_cast<const unsigned char *>(bytes.data()),
                         bytes.size()));
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_Append);
  if (ec)
    return module.emitError() << "cannot seal the artifact '" << path
                              << "': " << ec.message();
  os << trailer;
  return finishOutput(module, os, "the artifact '" + path.str() + "'");
}

/// Links `object` into the shared object `output` with the system's C
/// compiler driver, which knows where libc and libm are.
static LogicalResult linkSharedObject(ModuleOp module, StringRef object,
                                      StringRef output) {
  llvm::ErrorOr<std::string> driver = llvm::sys::findProgramByName("cc");
  if (!driver)
    driver = llvm::sys::findProgramByName("gcc");
  if (!driver)
    return module.emitError()
           << "cannot link the artifact: no C compiler driver (cc or gcc) on "
              "PATH; install gcc";
  SmallVector<StringRef> args = {*driver, "-shared", "-o", output, object,
                                 "-lm"};
  // The linker's own words go into the one error line, not to stderr.
  SmallString<128> logPath;
  if (llvm::sys::fs::createTemporaryFile("moe-link", "log", logPath))
    logPath.clear();
  llvm::FileRemover removeLog(logPath);
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(logPath),
                                          StringRef(logPath)};
  std::string message;
  int status = llvm::sys::ExecuteAndWait(
      *driver, args, std::nullopt,
      logPath.empty() ? ArrayRef<std::optional<StringRef>>{}
                      : ArrayRef<std::optional<StringRef>>(redirects),
      0, 0, &message);
  if (status == 0)
    return sealArtifact(module, output);
  if (auto log = llvm::MemoryBuffer::getFile(logPath)) {
    StringRef first = (*log)->getBuffer().split('\n').first.trim();
    if (!first.empty())
      message = first.str();
  }
  return module.emitError() << "linking the artifact '" << output
                            << "' failed (" << *driver << " exit " << status
                            << ")" << (message.empty() ? "" : ": ") << message;
}

FailureOr<mlir::moe::Target> mlir::moe::parseTarget(StringRef text, std::string &error) {
  Target target;
  if (text == "cpu")
    return target;
  std::string why;
  if (std::optional<::moe::target::CudaChip> chip =
          ::moe::target::CudaChip::parseTarget(text.str(), why)) {
    target.cuda = true;
    target.chip = chip->name();
    return target;
  }
  error = "unknown target '" + text.str() +
          "' (known: cpu, cuda:sm_90, cuda:sm_90a, cuda:sm_80; cuda means "
          "cuda:sm_90)";
  return failure();
}

std::string mlir::moe::locateCudaToolkit(StringRef cudaPath) {
  std::string root = cudaPath.str();
  if (root.empty())
    if (const char *home = std::getenv("CUDA_HOME"))
      root = home;
  if (root.empty())
    root = "/usr/local/cuda";
  SmallString<128> ptxas(root);
  llvm::sys::path::append(ptxas, "bin", "ptxas");
  if (!llvm::sys::fs::can_execute(ptxas)) {
    if (llvm::sys::findProgramByName("ptxas"))
      return "";
    return "a CUDA target needs the CUDA toolkit (ptxas, libdevice): not "
           "found in " +
           root + " or on PATH; pass --cuda-path=DIR";
  }
  // MLIR's NVVM serializer looks the toolkit up in CUDA_ROOT among others.
  ::setenv("CUDA_ROOT", root.c_str(), /*overwrite=*/1);
  return "";
}

/// Prints the PTX of every kernel module (serialized with format=isa).
static LogicalResult printKernelAssembly(ModuleOp module,
                                         llvm::raw_ostream &os) {
  bool any = false;
  for (auto binary : module.getOps<gpu::BinaryOp>()) {
    for (Attribute attr : binary.getObjects()) {
      auto object = cast<gpu::ObjectAttr>(attr);
      os << "// kernel module @" << binary.getSymName() << "\n"
         << object.getObject().getValue() << "\n";
      any = true;
    }
  }
  if (!any)
    return module.emitError() << "the module has no GPU kernels to print";
  return success();
}

/// Adds `attr recompute.*` lines (budget, planned peak, what is saved) to
/// the functions moe-place-recomputation placed: moe-run prints them.
static std::string addPlacementsToMetadata(ModuleOp module,
                                           StringRef metadata) {
  std::string out;
  llvm::raw_string_ostream os(out);
  std::string current;
  SmallVector<StringRef> lines;
  metadata.split(lines, '\n');
  for (StringRef line : lines) {
    if (line.starts_with("function "))
      current = line.drop_front(9).split(' ').first.str();
    if (line == "end")
      if (auto func = module.lookupSymbol<func::FuncOp>(current))
        if (auto placement =
                func->getAttrOfType<DictionaryAttr>("moe.recomputation")) {
          for (StringRef key : {"budget_bytes", "planned_peak_bytes",
                                "save_all_peak_bytes", "least_peak_bytes"})
            os << "attr recompute." << key << " "
               << placement.getAs<IntegerAttr>(key).getInt() << "\n";
          std::string saved;
          for (Attribute a : placement.getAs<ArrayAttr>("saved"))
            saved += (saved.empty() ? "" : ",") +
                     cast<DictionaryAttr>(a).getAs<StringAttr>("name").str();
          os << "attr recompute.saved " << (saved.empty() ? "-" : saved)
             << "\n";
        }
    if (!line.empty())
      os << line << "\n";
  }
  return out;
}

/// Adds `attr bta.*` lines (the tiles chosen, the budget) to the functions
/// moe-batch-tile-attention fitted under a budget: moe-run prints them.
static std::string addTileChoicesToMetadata(ModuleOp module,
                                            StringRef metadata) {
  return addFunctionAttrsToMetadata(metadata, [&](StringRef function) {
    std::string attrs;
    auto func = module.lookupSymbol<func::FuncOp>(function);
    if (!func)
      return attrs;
    auto bta = func->getAttrOfType<DictionaryAttr>("moe.bta");
    if (!bta)
      return attrs;
    llvm::raw_string_ostream os(attrs);
    for (StringRef key : {"tiles", "row_slices", "batch", "budget_bytes",
                          "untiled_peak_bytes", "least_peak_bytes"})
      os << "attr bta." << key << " " << bta.getAs<IntegerAttr>(key).getInt()
         << "\n";
    os << "attr bta.reason " << bta.getAs<StringAttr>("reason").getValue()
       << "\n";
    return attrs;
  });
}

std::string mlir::moe::checkCostDevice(StringRef id) {
  if (::moe::cost::findDevice(id.str()))
    return "";
  return "no device '" + id.str() + "' in the cost model's table (have: " +
         llvm::join(::moe::cost::deviceIds(), ", ") + ")";
}

/// Whether a training step compiled without --memory-budget gets the
/// placement of the least planned peak (`least`) rather than
/// moe-generate-backward's: on CUDA with fusion, where all experts share a
/// launch, the recomputing backward already holds the [T*k, 2F] rows a
/// saved h needs, so the least peak saves h and is the faster step. Not for
/// programs the placement cannot plan: dynamic token counts, expert
/// parallelism.
static bool placesTrainingByDefault(ModuleOp module,
                                    const CompileOptions &options) {
  if (!options.target.cuda || !options.fusion)
    return false;
  bool plannable = true;
  module.walk([&](func::FuncOp func) {
    if (func->hasAttr("moe.ep_ranks") ||
        llvm::any_of(func.getArgumentTypes(), [](Type type) {
          auto shaped = dyn_cast<ShapedType>(type);
          return shaped && !shaped.hasStaticShape();
        }))
      plannable = false;
  });
  return plannable;
}

LogicalResult mlir::moe::compileArtifact(ModuleOp module,
                                 const CompileOptions &options,
                                 llvm::raw_ostream &textOut) {
  if (failed(verify(module)))
    return failure();
  std::string costDeviceId = options.costDevice.empty()
                                 ? ::moe::cost::defaultDeviceFor(
                                       options.target.name())
                                 : options.costDevice;
  const ::moe::cost::DeviceDescription *costDevice =
      ::moe::cost::findDevice(costDeviceId);
  if (!costDevice)
    return module.emitError()
           << "no device '" << costDeviceId << "' in the cost model's table "
           << "(have: " << llvm::join(::moe::cost::deviceIds(), ", ") << ")";
  // The fusion reads how GEMM 1 reads its rows from the module.
  if (options.dispatch != "gather")
    module->setAttr("moe.dispatch",
                    StringAttr::get(module.getContext(), options.dispatch));
  std::string memoryBudget = options.memoryBudget;
  if (memoryBudget.empty() && options.backward &&
      placesTrainingByDefault(module, options)) {
    memoryBudget = "least";
    module.emitRemark() << "no --memory-budget: on CUDA the training step "
                           "takes the least planned peak "
                           "(--memory-budget=least), at its fastest placement";
  }
  // On the CPU (whose cost model is too coarse to tell them apart), without
  // fusion and under a block's memory budget, auto is the epilogue with the
  // least memory. A CUDA training step's recomputation is placed under its
  // budget for scatter_add, then takes gather_sum where that is faster and
  // peaks no higher (moe-choose-epilogue's within-peak).
  std::string epilogue = options.epilogue;
  bool budgeted = !memoryBudget.empty();
  if (epilogue == "auto" && (!options.target.cuda || !options.fusion ||
                             (budgeted && !options.backward)))
    epilogue = "scatter_add";
  std::string placedEpilogue = epilogue == "auto" ? "scatter_add" : epilogue;
  // A budget without --backward chooses the tiles of a block's attention
  // (the pass says so when the module has none); with it, the training
  // step's recomputation.
  // Both searches plan their candidates as this compilation will.
  auto underBudget = [&](auto passOptions) {
    passOptions.memoryBudget = memoryBudget;
    passOptions.target = options.target.name();
    passOptions.expertsPerChunk = options.expertsPerChunk;
    passOptions.fusion = options.fusion;
    passOptions.epilogue = placedEpilogue;
    passOptions.costDevice = costDeviceId;
    return passOptions;
  };
  if (!options.memoryBudget.empty() && !options.backward) {
    PassManager tiling(module.getContext());
    tiling.addPass(createMoeBatchTileAttentionPass(
        underBudget(MoeBatchTileAttentionPassOptions())));
    if (failed(tiling.run(module)))
      return failure();
  }
  if (options.backward) {
    PassManager training(module.getContext());
    training.addPass(createMoeGenerateBackwardPass());
    if (!memoryBudget.empty())
      training.addPass(createMoePlaceRecomputationPass(
          underBudget(MoePlaceRecomputationPassOptions())));
    if (failed(training.run(module)))
      return failure();
  }
  // Functions that ask for expert parallelism (moe.ep_ranks, as a layer
  // spec's ep=R makes them) become their per-rank program before anything
  // reads their signature: the metadata describes the rank's shards.
  {
    PassManager parallel(module.getContext());
    parallel.addPass(createMoeExpertParallelPass());
    if (failed(parallel.run(module)))
      return failure();
  }
  FailureOr<std::string> metadata =
      buildArtifactMetadata(module, options.target.name());
  if (failed(metadata))
    return failure();
  // The chunked pipeline of the per-rank layers that ask for it
  // (overlap=N): after the metadata, which describes the layer it computes.
  {
    PassManager overlap(module.getContext());
    MoeOverlapCommunicationPassOptions chunking;
    chunking.costDevice = costDeviceId;
    overlap.addPass(createMoeOverlapCommunicationPass(chunking));
    if (failed(overlap.run(module)))
      return failure();
  }
  // The epilogue, for the program as the pipeline will see it.
  if (epilogue == "auto") {
    PassManager choosing(module.getContext());
    MoeChooseEpiloguePassOptions choice;
    choice.target = options.target.name();
    choice.expertsPerChunk = options.expertsPerChunk;
    choice.costDevice = costDeviceId;
    choice.withinPeak = budgeted;
    choosing.addPass(createMoeChooseEpiloguePass(choice));
    // The remarks only when asked for: every default CUDA compile chooses.
    ScopedDiagnosticHandler quiet(module.getContext(), [&](Diagnostic &d) {
      return success(!options.explainEpilogue &&
                     d.getSeverity() == DiagnosticSeverity::Remark);
    });
    if (failed(choosing.run(module)))
      return failure();
    epilogue =
        module->getAttrOfType<StringAttr>("moe.epilogue").getValue().str();
  }
  SmallVector<EntrySignature> entries = collectEntrySignatures(module);
  if (entries.empty())
    return module.emitError()
           << "the module has no public function to compile";

  CPUPipelineOptions cpu;
  cpu.fusion = options.fusion;
  cpu.expertsPerChunk = options.expertsPerChunk > 0 ? options.expertsPerChunk : 1;
  CUDAPipelineOptions cuda;
  cuda.fusion = options.fusion;
  cuda.expertsPerChunk = options.expertsPerChunk;
  cpu.epilogue = epilogue;
  cuda.epilogue = epilogue;
  cuda.chip = options.target.chip;
  if (!options.tensorCoreTile.empty())
    cuda.tensorCoreTile = options.tensorCoreTile;
  cuda.flashAttention = options.flashAttention;
  cuda.gemmCluster = options.gemmCluster;
  cuda.format = options.emit == EmitKind::Ptx ? "isa" : "bin";
  // Planned moek kernels first: the memory plan and the cost model read
  // them (on CUDA, before they become gpu.launch kernels).
  PassManager toKernels(module.getContext());
  if (options.target.cuda)
    buildPlannedGPUKernelsPipeline(toKernels, cuda);
  else
    buildPlannedBuffersPipeline(toKernels, cpu.fusion, cpu.expertsPerChunk,
                                cpu.epilogue, /*cpu=*/true,
                                options.deviceSplitSizes);
  if (failed(toKernels.run(module)))
    return failure();
  // The memory plan is known now; it travels in the metadata too.
  MemoryPlans plans = collectMemoryPlans(module);
  if (!options.memoryReportPath.empty() &&
      failed(writeMemoryReport(module, plans, options.memoryReportPath)))
    return failure();
  // The predicted kernel times, from the same planned kernels.
  std::vector<FunctionCost> costs = estimateModuleCost(module, *costDevice);
  if (!options.costReportPath.empty() &&
      failed(writeCostReport(module, costs, *costDevice,
                             options.costReportPath)))
    return failure();
  if (options.planOnly)
    return success();
  PassManager toBuffers(module.getContext());
  if (options.target.cuda)
    buildKernelsToGPUPipeline(toBuffers, cuda);
  else
    toBuffers.addPass(createMoekLowerToLoopsPass());
  if (failed(toBuffers.run(module)))
    return failure();
  std::string fullMetadata = addTileChoicesToMetadata(
      module,
      addPlacementsToMetadata(
          module, addCostsToMetadata(addMemoryPlansToMetadata(*metadata, plans),
                                     costs, *costDevice)));

  PassManager toLLVM(module.getContext());
  if (options.target.cuda)
    buildGPUToLLVMPipeline(toLLVM, cuda);
  else
    buildBuffersToLLVMPipeline(toLLVM);
  if (failed(toLLVM.run(module)))
    return failure();
  if (options.emit == EmitKind::Ptx)
    return printKernelAssembly(module, textOut);
  if (failed(addArtifactEntryPoints(module, entries, fullMetadata)))
    return failure();
  if (options.emit == EmitKind::Mlir) {
    module.print(textOut);
    return success();
  }

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext, "moe-artifact");
  if (!llvmModule)
    return module.emitError() << "translation to LLVM IR failed";
  std::string error;
  std::unique_ptr<llvm::TargetMachine> machine =
      createHostTargetMachine(options.optLevel, error);
  if (!machine)
    return module.emitError() << "no LLVM target for this host: " << error;
  llvmModule->setTargetTriple(machine->getTargetTriple());
  llvmModule->setDataLayout(machine->createDataLayout());
  if (llvm::Error err = makeOptimizingTransformer(options.optLevel, 0,
                                                  machine.get())(
          llvmModule.get()))
    return module.emitError() << "LLVM optimization failed: "
                              << llvm::toString(std::move(err));
  if (options.emit == EmitKind::Llvm) {
    llvmModule->print(textOut, nullptr);
    return success();
  }

  // Object file in a temporary, then the shared object.
  SmallString<128> objectPath;
  int fd;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile(
          "moe-artifact", "o", fd, objectPath))
    return module.emitError() << "cannot create a temporary object file: "
                              << ec.message();
  llvm::FileRemover removeObject(objectPath);
  {
    llvm::raw_fd_ostream objectStream(fd, /*shouldClose=*/true);
    llvm::legacy::PassManager codegen;
    if (machine->addPassesToEmitFile(codegen, objectStream, nullptr,
                                     llvm::CodeGenFileType::ObjectFile))
      return module.emitError() << "this LLVM target cannot emit objects";
    codegen.run(*llvmModule);
    if (failed(finishOutput(module, objectStream,
                            "the object file '" + objectPath.str().str() + "'")))
      return failure();
  }
  return linkSharedObject(module, objectPath, options.outputPath);
}

int64_t mlir::moe::Target::maxSharedBytesPerBlock() const {
  std::string why;
  std::optional<::moe::target::CudaChip> parsed =
      ::moe::target::CudaChip::parse(chip, why);
  return parsed ? parsed->maxSharedBytesPerBlock() : 0;
}
