//===- moe-compile.cpp - moe IR to an artifact ----------------------------===//
//
//   moe-compile IN.mlir --target=cpu -o OUT.so
//   moe-compile --layer mixtral,tokens=64 --emit=mlir
//
// Every error is one line on stderr and exit status 2.
//
//===----------------------------------------------------------------------===//

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Driver/Driver.h"
#include "lib/Target/ArtifactCompiler.h"
#include "lib/Target/OutputStreams.h"
#include "passes/Passes.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "mlir/Support/FileUtilities.h"

using namespace mlir;
using namespace llvm;

static cl::OptionCategory category("moe-compile options");

static cl::opt<std::string> inputFile(cl::Positional,
                                      cl::desc("<program.mlir>"),
                                      cl::cat(category));
static cl::opt<std::string>
    layerSpec("layer",
              cl::desc("Compile the layer a SPEC describes instead of a file "
                       "(a preset: tiny, mixtral, qwen3_30b_a3b, olmoe; or "
                       "tokens=T,hidden=H,ffn=F,experts=E,top_k=K[,...]; "
                       "ep=R: the per-rank program of expert parallelism, "
                       "overlap=N: its all-to-alls pipelined over N chunks)"),
              cl::value_desc("SPEC"), cl::cat(category));
static cl::opt<std::string>
    blockSpec("block",
              cl::desc("Compile the transformer block a SPEC describes "
                       "(attention, then the MoE layer): a preset "
                       "(qwen3_block, tiny_block) or the layer's keys without "
                       "tokens plus batch=B,seq=L,heads=NH,kv_heads=NKV,"
                       "head_dim=DH[,bta_tiles=N]; CPU only for now; "
                       "--memory-budget chooses bta_tiles"),
              cl::value_desc("SPEC"), cl::cat(category));
static cl::opt<std::string> target(
    "target",
    cl::desc("Target: cpu (default), cuda:sm_90 (or cuda), cuda:sm_90a (wgmma, "
             "TMA), cuda:sm_80"),
    cl::init("cpu"), cl::cat(category));
static cl::opt<moe::EmitKind> emit(
    "emit", cl::desc("What to produce"), cl::init(moe::EmitKind::Artifact),
    cl::values(clEnumValN(moe::EmitKind::Mlir, "mlir",
                          "the LLVM-dialect module after the pipeline"),
               clEnumValN(moe::EmitKind::Llvm, "llvm",
                          "optimized LLVM IR"),
               clEnumValN(moe::EmitKind::Artifact, "artifact",
                          "a shared object for the moert runtime (default)"),
               clEnumValN(moe::EmitKind::Ptx, "ptx",
                          "the PTX of the GPU kernels (CUDA targets)")),
    cl::cat(category));
static cl::opt<std::string> outputFile("o", cl::desc("Output file"),
                                       cl::value_desc("path"),
                                       cl::cat(category));
static cl::opt<bool> noFusion(
    "no-fusion",
    cl::desc("Keep the materializing lowering (dispatched tokens and expert "
             "outputs as [T*k, H] buffers) instead of zero-buffer fusion"),
    cl::cat(category));
static cl::opt<bool> deviceSplitSizes(
    "device-split-sizes",
    cl::desc("Expert parallelism on the CPU: size the all-to-all's received "
             "buffers by a bound (R times the rows a rank sends) and mark the "
             "rows past the counts as no expert's, as CUDA always does, so "
             "that the host never reads a split size (tests that path "
             "without a GPU)"),
    cl::cat(category));
static cl::opt<std::string> epilogue(
    "epilogue",
    cl::desc("How expert outputs reach y: scatter_add (gate-weighted adds "
             "into an f32 accumulator), gather_sum (expert-order rows summed "
             "per token by a gather, no atomics) or auto (default: on CUDA "
             "without a memory budget the faster predicted, "
             "moe-choose-epilogue; else scatter_add)"),
    cl::init("auto"));
static cl::opt<std::string> dispatchRows(
    "dispatch",
    cl::desc("How the first grouped GEMM reads its rows: gather (default: "
             "each row's token from x, in the GEMM) or copy (a dispatched "
             "[T*k, H] copy of x's rows, read in order: by TMA on sm_90a; "
             "all experts in one launch), for measurement"),
    cl::init("gather"));
static cl::opt<int64_t> expertsPerChunk(
    "experts-per-chunk",
    cl::desc("Zero-buffer fusion: experts whose GEMMs run back to back (the "
             "activation buffer holds T*min(k, N) rows; default 1 on the CPU, "
             "all experts on CUDA)"),
    cl::init(0), cl::cat(category));
static cl::opt<std::string> reportMemory(
    "report-memory",
    cl::desc("Write the static memory plan as JSON (without -o: the report "
             "only, no code generated)"),
    cl::value_desc("PATH"), cl::cat(category));
static cl::opt<std::string> cudaPath(
    "cuda-path",
    cl::desc("CUDA toolkit whose ptxas makes the cubin (default: $CUDA_HOME, "
             "else /usr/local/cuda)"),
    cl::value_desc("DIR"), cl::cat(category));
static cl::opt<std::string> cudaTile(
    "cuda-tile",
    cl::desc("CTA tile of the CUDA tensor-core GEMMs, for tuning: "
             "BMxBNxBKxSTAGES[xWARPSMxWARPSN] (default 128x256x32x4x2x4)"),
    cl::value_desc("TILE"), cl::cat(category));
static cl::opt<std::string> flashAttention(
    "flash-attention",
    cl::desc("CUDA: the block's attention kernel: auto (tensor cores for a "
             "bf16/f16 block whose head size is a multiple of 16 up to 128, "
             "else SIMT; the default) or simt"),
    cl::value_desc("auto|simt"), cl::init("auto"), cl::cat(category));
static cl::opt<std::string> cudaCluster(
    "cuda-cluster",
    cl::desc("sm_90a: CTAs of the GEMMs' thread block clusters, which load "
             "the tile they share once for both by TMA multicast: auto "
             "(pairs for the grouped GEMMs, but the backward's that gathers "
             "dy's rows, and for the weight gradients; the default), 1 "
             "(none) or 2"),
    cl::value_desc("auto|1|2"), cl::init("auto"), cl::cat(category));
static cl::opt<bool> backward(
    "backward",
    cl::desc("Compile the training step (moe-generate-backward): F(args) "
             "becomes F_train(args, dy) -> (results, gradients, [aux], "
             "loads)"),
    cl::cat(category));
static cl::opt<std::string> memoryBudget(
    "memory-budget",
    cl::desc("The planned peak of intermediate memory to fit under, BYTES, "
             "PERCENT% or least (the smallest any choice reaches): with "
             "--backward the training step's recomputation is placed under "
             "it (PERCENT of the save-everything peak, "
             "moe-place-recomputation; on CUDA least is the default); with "
             "--block the fewest attention tiles that fit are chosen, and "
             "the MoE's row slices when no tile count fits without them "
             "(PERCENT of the untiled peak, moe-batch-tile-attention)"),
    cl::value_desc("BYTES|PERCENT%"), cl::cat(category));
static cl::opt<std::string> reportCost(
    "report-cost",
    cl::desc("Write the cost model's predicted time of every kernel as JSON "
             "(without -o: the report only, no code generated)"),
    cl::value_desc("PATH"), cl::cat(category));
static cl::opt<std::string> costDevice(
    "cost-device",
    cl::desc("The cost model's device (default: the target's: cpu, "
             "h200-sm90a for cuda:sm_90a, h200-sm90 for other CUDA targets)"),
    cl::value_desc("ID"), cl::cat(category));
static cl::opt<unsigned> optLevel("O", cl::desc("LLVM optimization level"),
                                  cl::init(3), cl::Prefix, cl::cat(category));

static int fail(const Twine &message) {
  errs() << "moe-compile: error: " << message << "\n";
  return 2;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  moe::installToolErrorHandlers("moe-compile");
  cl::HideUnrelatedOptions(category);
  if (!cl::ParseCommandLineOptions(
          argc, argv, "MoE-MLIR compiler: moe IR to an artifact\n", &errs()))
    return 2;

  std::string targetError;
  FailureOr<moe::Target> parsedTarget = moe::parseTarget(target, targetError);
  if (failed(parsedTarget))
    return fail(targetError);
  if (emit == moe::EmitKind::Ptx && !parsedTarget->cuda)
    return fail("--emit=ptx needs a CUDA target (--target=cuda:sm_90)");
  if (parsedTarget->cuda) {
    std::string error = moe::locateCudaToolkit(cudaPath);
    if (!error.empty())
      return fail(error);
  }
  bool fromLayer = layerSpec.getNumOccurrences() > 0;
  bool fromBlock = blockSpec.getNumOccurrences() > 0;
  if (int(fromLayer) + int(fromBlock) + int(!inputFile.empty()) != 1)
    return fail("give either a program file, --layer SPEC or --block SPEC "
                "(exactly one)");
  bool planOnly = emit == moe::EmitKind::Artifact && outputFile.empty() &&
                  (!reportMemory.empty() || !reportCost.empty());
  if (emit == moe::EmitKind::Artifact && outputFile.empty() && !planOnly)
    return fail("an artifact needs an output path: add -o OUT.so (or "
                "--emit=mlir|llvm to print IR, or --report-memory=PATH, or "
                "--report-cost=PATH)");
  // A layer's forward has nothing a budget could change; a program file
  // without --backward may hold a block (the compiler says if it does not).
  if (memoryBudget.getNumOccurrences() && !backward && fromLayer)
    return fail("--memory-budget places the recomputation of the training "
                "step (add --backward) or chooses the attention tiles of a "
                "block (--block SPEC); a layer's forward has neither");
  if (memoryBudget.getNumOccurrences()) {
    std::string error = moe::checkMemoryBudget(
        memoryBudget,
        backward ? moe::kSaveEverythingPeak : moe::kUntiledPeak);
    if (!error.empty())
      return fail("--memory-budget: " + error);
  }
  if (costDevice.getNumOccurrences()) {
    std::string error = moe::checkCostDevice(costDevice);
    if (!error.empty())
      return fail("--cost-device: " + error);
  }
  if (expertsPerChunk.getNumOccurrences() && expertsPerChunk < 1)
    return fail("--experts-per-chunk must be at least 1");
  if (dispatchRows != "gather" && dispatchRows != "copy")
    return fail("--dispatch: '" + dispatchRows + "' is not gather or copy");
  if (dispatchRows == "copy" && noFusion)
    return fail("--dispatch=copy chooses how zero-buffer fusion's first "
                "GEMM reads its rows; --no-fusion always copies them");
  if (dispatchRows == "copy" && expertsPerChunk.getNumOccurrences())
    return fail("--dispatch=copy runs all experts in one launch (its copy "
                "holds all T*k rows); leave out --experts-per-chunk");
  if (epilogue != "auto" && epilogue != "scatter_add" &&
      epilogue != "gather_sum")
    return fail("--epilogue: '" + epilogue + "' is not auto, scatter_add or "
                "gather_sum");
  if (optLevel > 3)
    return fail("-O" + Twine(optLevel.getValue()) + ": levels are 0 to 3");
  if (cudaTile.getNumOccurrences()) {
    if (!parsedTarget->cuda)
      return fail("--cuda-tile needs a CUDA target (--target=cuda:sm_90)");
    moek::TensorCoreTile tile;
    std::string error = moek::TensorCoreTile::parse(
        cudaTile, tile, parsedTarget->maxSharedBytesPerBlock());
    if (!error.empty())
      return fail("--cuda-tile: " + error);
  }

  if (flashAttention != "auto" && flashAttention != "simt")
    return fail("--flash-attention: '" + flashAttention +
                "' is not auto or simt");
  if (flashAttention.getNumOccurrences() && !parsedTarget->cuda)
    return fail("--flash-attention needs a CUDA target (--target=cuda:sm_90)");

  if (std::string why = moek::checkGemmCluster(cudaCluster); !why.empty())
    return fail("--cuda-cluster: " + why);
  if (cudaCluster.getNumOccurrences() && !parsedTarget->cuda)
    return fail("--cuda-cluster needs a CUDA target (--target=cuda:sm_90a)");

  std::unique_ptr<MLIRContext> context = moe::createCompilerContext();
  moe::OneLineDiagnostics diagnostics(*context, "moe-compile");
  OwningOpRef<ModuleOp> module;
  if (fromLayer || fromBlock) {
    std::string error;
    module = fromLayer ? moe::loadLayerProgram(*context, layerSpec, error)
                       : moe::loadBlockProgram(*context, blockSpec, error);
    if (!module)
      return fail(error.empty() ? "invalid spec" : error);
  } else {
    module = moe::loadProgramFile(*context, inputFile);
    if (!module)
      return 2;
  }

  moe::CompileOptions options;
  options.target = *parsedTarget;
  options.emit = emit;
  options.optLevel = optLevel;
  options.outputPath = outputFile;
  options.fusion = !noFusion;
  options.deviceSplitSizes = deviceSplitSizes;
  options.expertsPerChunk = expertsPerChunk;
  options.epilogue = epilogue;
  options.dispatch = dispatchRows;
  options.explainEpilogue = epilogue.getNumOccurrences() > 0;
  if (cudaTile.getNumOccurrences())
    options.tensorCoreTile = cudaTile;
  options.flashAttention = flashAttention;
  options.gemmCluster = cudaCluster;
  options.memoryReportPath = reportMemory;
  options.planOnly = planOnly;
  options.backward = backward;
  options.memoryBudget = memoryBudget;
  options.costReportPath = reportCost;
  options.costDevice = costDevice;
  if (emit == moe::EmitKind::Artifact)
    return failed(moe::compileArtifact(*module, options, outs())) ? 2 : 0;

  std::string message;
  std::unique_ptr<ToolOutputFile> out =
      openOutputFile(outputFile.empty() ? std::string("-") : outputFile.getValue(), &message);
  if (!out)
    return fail(message);
  if (failed(moe::compileArtifact(*module, options, out->os())) ||
      failed(moe::finishOutput(*module, out->os(),
                               "'" + out->getFilename().str() + "'")))
    return 2;
  out->keep();
  return 0;
}
