//===- CPUTarget.cpp - Compile moe modules into CPU artifacts -------------===//

#include "lib/Target/CPU/CPUTarget.h"
#include "lib/Target/CPU/ArtifactMetadata.h"
#include "lib/Target/CPU/EntryPoints.h"
#include "lib/Target/CPU/MemoryReport.h"
#include "passes/Passes.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

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
    return success();
  if (auto log = llvm::MemoryBuffer::getFile(logPath)) {
    StringRef first = (*log)->getBuffer().split('\n').first.trim();
    if (!first.empty())
      message = first.str();
  }
  return module.emitError() << "linking the artifact '" << output
                            << "' failed (" << *driver << " exit " << status
                            << ")" << (message.empty() ? "" : ": ") << message;
}

LogicalResult moe::compileForCPU(ModuleOp module,
                                 const CPUCompileOptions &options,
                                 llvm::raw_ostream &textOut) {
  if (failed(verify(module)))
    return failure();
  FailureOr<std::string> metadata = buildArtifactMetadata(module, "cpu");
  if (failed(metadata))
    return failure();
  SmallVector<EntrySignature> entries = collectEntrySignatures(module);
  if (entries.empty())
    return module.emitError()
           << "the module has no public function to compile";

  CPUPipelineOptions pipeline;
  pipeline.fusion = options.fusion;
  pipeline.expertsPerChunk = options.expertsPerChunk;
  PassManager toBuffers(module.getContext());
  buildLowerToBuffersPipeline(toBuffers, pipeline);
  if (failed(toBuffers.run(module)))
    return failure();
  // The memory plan is known now; it travels in the metadata too.
  MemoryPlans plans = collectMemoryPlans(module);
  if (!options.memoryReportPath.empty() &&
      failed(writeMemoryReport(module, plans, options.memoryReportPath)))
    return failure();
  if (options.planOnly)
    return success();
  std::string fullMetadata = addMemoryPlansToMetadata(*metadata, plans);

  PassManager toLLVM(module.getContext());
  buildBuffersToLLVMPipeline(toLLVM);
  if (failed(toLLVM.run(module)))
    return failure();
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
  }
  return linkSharedObject(module, objectPath, options.outputPath);
}
