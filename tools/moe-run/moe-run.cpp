//===- moe-run.cpp - Run a moe program on the CPU and check it ------------===//
//
//   moe-run PROGRAM.mlir|ARTIFACT.so [--entry NAME]
//   moe-run --layer SPEC [--check] [--repeat N] [--seed N]
//
// Compiles what it is given (unless it is an artifact already), loads it with
// the moert runtime, makes or reads inputs, runs, and reports routing
// statistics, time and the error against the naive reference.
// Exit status: 0 success, 1 a check beyond tolerance, 2 bad input.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/RunSupport.h"

#include "lib/Driver/Driver.h"
#include "lib/Layer/LayerProgram.h"
#include "lib/Layer/LayerSpec.h"
#include "lib/Target/ArtifactCompiler.h"
#include "moe-mlir/Runtime/moert.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

using namespace llvm;
using namespace moe::run;

static cl::OptionCategory category("moe-run options");
static cl::opt<std::string> program(cl::Positional,
                                    cl::desc("<program.mlir | artifact.so>"),
                                    cl::cat(category));
static cl::opt<std::string> layerSpec(
    "layer",
    cl::desc("Run the layer a SPEC describes: a preset (tiny, mixtral, "
             "qwen3_30b_a3b, olmoe) optionally followed by overrides, or "
             "tokens=T,hidden=H,ffn=F,experts=E,top_k=K[,router=softmax|"
             "sigmoid][,bias=0|1][,capacity=CF][,normalize=0|1][,scaling=S]"
             "[,activation=silu_glu|gelu_glu][,dtype=f32|bf16][,dynamic=0|1]"
             "[,n_group=G,topk_group=TG]"),
    cl::value_desc("SPEC"), cl::cat(category));
static cl::opt<std::string> entry("entry",
                                  cl::desc("The function to run (default: the "
                                           "only one, or moe_layer)"),
                                  cl::value_desc("NAME"), cl::cat(category));
static cl::opt<uint64_t> seed("seed", cl::desc("Seed of the random inputs"),
                              cl::init(1), cl::cat(category));
static cl::opt<int64_t> tokens(
    "tokens",
    cl::desc("Extent of dynamic dimensions of random inputs (default: the "
             "spec's tokens, else 16)"),
    cl::init(-1), cl::cat(category));
static cl::opt<std::string> inputsDir(
    "inputs", cl::desc("Read argument I from DIR/argI.npy instead"),
    cl::value_desc("DIR"), cl::cat(category));
static cl::opt<std::string> dumpDir(
    "dump", cl::desc("Write DIR/argI.npy and DIR/resultI.npy"),
    cl::value_desc("DIR"), cl::cat(category));
static cl::opt<bool> check(
    "check",
    cl::desc("Compare with the naive reference; exit 1 beyond tolerance "
             "(f32 1e-4, bf16 2e-2, f16 1e-2)"),
    cl::cat(category));
static cl::opt<unsigned> repeat(
    "repeat", cl::desc("Time N runs (after one warm-up) and print the median"),
    cl::init(0), cl::cat(category));
static cl::opt<bool> noFusion(
    "no-fusion",
    cl::desc("Compile with the materializing lowering instead of zero-buffer "
             "fusion"),
    cl::cat(category));
static cl::opt<int64_t> expertsPerChunk(
    "experts-per-chunk",
    cl::desc("Zero-buffer fusion: experts whose GEMMs run back to back"),
    cl::init(1), cl::cat(category));
static cl::opt<bool> emitMlir("emit-mlir",
                              cl::desc("Print the program a --layer SPEC "
                                       "makes and exit"),
                              cl::cat(category));

/// An ELF file: what moe-compile makes.
static bool looksLikeSharedObject(StringRef path) {
  char magic[4] = {0, 0, 0, 0};
  FILE *file = std::fopen(path.str().c_str(), "rb");
  if (!file)
    return false;
  size_t read = std::fread(magic, 1, 4, file);
  std::fclose(file);
  return read == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' &&
         magic[3] == 'F';
}

static int fail(const Twine &message) {
  errs() << "moe-run: error: " << message << "\n";
  return 2;
}

/// Compiles the program (a file or a spec) into a temporary artifact.
static int compileToTemporary(SmallString<128> &artifactPath) {
  std::unique_ptr<mlir::MLIRContext> context = mlir::moe::createCompilerContext();
  mlir::moe::OneLineDiagnostics diagnostics(*context, "moe-run");
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (layerSpec.getNumOccurrences()) {
    std::string error;
    module = mlir::moe::loadLayerProgram(*context, layerSpec, error);
    if (!module)
      return fail(error);
  } else {
    module = mlir::moe::loadProgramFile(*context, program);
    if (!module)
      return 2;
  }
  if (std::error_code ec = sys::fs::createTemporaryFile("moe-run", "so",
                                                        artifactPath))
    return fail("cannot create a temporary artifact: " + ec.message());
  mlir::moe::CompileOptions options;
  options.outputPath = std::string(artifactPath);
  options.fusion = !noFusion;
  options.expertsPerChunk = expertsPerChunk;
  if (failed(mlir::moe::compileArtifact(*module, options, outs())))
    return 2;
  return 0;
}

static const moert_function *pickFunction(moert_artifact *artifact,
                                          std::string &error) {
  if (!entry.empty()) {
    const moert_function *fn = moert_artifact_lookup(artifact, entry.c_str());
    if (!fn)
      error = moert_last_error();
    return fn;
  }
  int count = moert_artifact_num_functions(artifact);
  if (count == 1)
    return moert_artifact_function(artifact, 0);
  if (const moert_function *fn =
          moert_artifact_lookup(artifact, moe::layer::kLayerFunctionName))
    return fn;
  error = "the artifact has " + std::to_string(count) +
          " functions; choose one with --entry NAME (";
  for (int i = 0; i < count; ++i)
    error += std::string(i ? ", " : "") +
             moert_function_name(moert_artifact_function(artifact, i));
  error += ")";
  return nullptr;
}

static std::string joinSpecs(const std::vector<ValueSpec> &specs) {
  std::string text;
  for (size_t i = 0; i < specs.size(); ++i)
    text += (i ? ", " : "") + formatSpec(specs[i]);
  return text;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  if (!cl::ParseCommandLineOptions(
          argc, argv,
          "MoE-MLIR runner: run a moe program on the CPU and check it\n",
          &errs()))
    return 2;

  bool fromSpec = layerSpec.getNumOccurrences() > 0;
  if (fromSpec == !program.empty())
    return fail("give either a program (.mlir or artifact) or --layer SPEC "
                "(exactly one)");
  moe::layer::LayerSpec spec;
  if (fromSpec) {
    std::string error;
    if (!moe::layer::parseLayerSpec(layerSpec.getValue(), spec, error))
      return fail(error);
    if (emitMlir) {
      outs() << moe::layer::emitLayerProgram(spec);
      return 0;
    }
  } else if (emitMlir) {
    return fail("--emit-mlir prints the program of a --layer SPEC; a program "
                "file is its own IR");
  }
  if (!program.empty() && !sys::fs::exists(program))
    return fail("no such file: '" + program + "'");
  bool isProgram = sys::path::extension(program) == ".mlir";
  if (!program.empty() && !isProgram && !looksLikeSharedObject(program))
    return fail("'" + program +
                "' is neither a program (a .mlir file) nor an artifact (a "
                "shared object made by moe-compile)");
  if (tokens.getNumOccurrences() && tokens < 1)
    return fail("--tokens must be at least 1");
  if (expertsPerChunk < 1)
    return fail("--experts-per-chunk must be at least 1");
  if (!inputsDir.empty() && !sys::fs::is_directory(inputsDir))
    return fail("--inputs: '" + inputsDir + "' is not a directory");

  // Compile unless given an artifact.
  SmallString<128> artifactPath(program.getValue());
  std::optional<FileRemover> removeArtifact;
  if (fromSpec || isProgram) {
    if (int status = compileToTemporary(artifactPath))
      return status;
    removeArtifact.emplace(artifactPath);
  }

  moert_artifact *artifact = nullptr;
  // Errors about a temporary artifact name what the user gave instead.
  std::string shownName =
      fromSpec ? "layer '" + layerSpec + "'" : program.getValue();
  auto runtimeError = [&]() {
    std::string message = moert_last_error();
    if (!removeArtifact)
      return message;
    std::string temporary(artifactPath.str());
    for (size_t at = message.find(temporary); at != std::string::npos;
         at = message.find(temporary, at + shownName.size()))
      message.replace(at, temporary.size(), shownName);
    return message;
  };
  if (moert_artifact_load(artifactPath.c_str(), &artifact) != 0)
    return fail(runtimeError());
  std::unique_ptr<moert_artifact, void (*)(moert_artifact *)> artifactOwner(
      artifact, moert_artifact_unload);
  std::string error;
  const moert_function *function = pickFunction(artifact, error);
  if (!function)
    return fail(entry.empty() ? error : runtimeError());
  FunctionSpec fnSpec = describeFunction(function);
  std::optional<LayerInfo> layer = readLayerInfo(function);

  if (fromSpec)
    outs() << "layer " << spec.name << ": " << moe::layer::formatLayerSpec(spec)
           << "\n";
  outs() << "function " << fnSpec.name << "(" << joinSpecs(fnSpec.args)
         << ") -> (" << joinSpecs(fnSpec.results) << ")\n";

  // Inputs.
  int64_t dynamicExtent =
      tokens > 0 ? tokens.getValue() : (fromSpec ? spec.tokens : 16);
  bool anyDynamic = false;
  for (const ValueSpec &arg : fnSpec.args)
    for (int64_t d : arg.dims)
      anyDynamic |= d == MOERT_DYNAMIC;
  if (tokens.getNumOccurrences() && !anyDynamic)
    outs() << "note: --tokens is ignored: no argument has a dynamic "
              "dimension\n";
  std::vector<Tensor> args;
  for (size_t i = 0; i < fnSpec.args.size(); ++i) {
    Tensor t = inputsDir.empty()
                   ? makeRandomInput(fnSpec.args[i], dynamicExtent,
                                     seed * 1000003 + i,
                                     inputScale(fnSpec, layer ? &*layer : nullptr,
                                                static_cast<int>(i)),
                                     error)
                   : readInput(inputsDir, static_cast<int>(i), fnSpec.args[i],
                               error);
    if (!t)
      return fail(error);
    args.push_back(std::move(t));
  }
  if (std::optional<std::string> memory = describeMemoryPlan(function))
    outs() << *memory << "\n";
  outs() << "inputs: "
         << (inputsDir.empty() ? "random normal, seed " + std::to_string(seed)
                               : "read from " + inputsDir)
         << "\n";

  // Run (one warm-up when timing).
  std::vector<moert_tensor *> rawArgs;
  for (Tensor &t : args)
    rawArgs.push_back(t.get());
  std::vector<Tensor> results;
  std::vector<double> times;
  unsigned runs = std::max(1u, repeat.getValue() + (repeat > 0 ? 1 : 0));
  for (unsigned r = 0; r < runs; ++r) {
    std::vector<moert_tensor *> rawResults(fnSpec.results.size(), nullptr);
    auto start = std::chrono::steady_clock::now();
    int status = moert_function_call(function, rawArgs.data(),
                                     static_cast<int>(rawArgs.size()),
                                     rawResults.data(),
                                     static_cast<int>(rawResults.size()));
    auto stop = std::chrono::steady_clock::now();
    if (status != 0)
      return fail(runtimeError());
    results.clear();
    for (moert_tensor *t : rawResults)
      results.emplace_back(t);
    if (repeat == 0 || r > 0)
      times.push_back(std::chrono::duration<double, std::milli>(stop - start)
                          .count());
  }

  if (layer && layer->indices >= 0) {
    int64_t experts = moert_tensor_dims(args[layer->w1].get())[0];
    RoutingStats stats =
        routingStats(*layer, results[layer->indices].get(), experts);
    char line[256];
    std::snprintf(line, sizeof(line),
                  "routing: %lld assignments over %lld experts; tokens per "
                  "expert min %lld / mean %.2f / max %lld; %lld experts "
                  "empty; %lld dropped\n",
                  (long long)stats.assignments, (long long)stats.experts,
                  (long long)stats.minLoad, stats.meanLoad,
                  (long long)stats.maxLoad, (long long)stats.emptyExperts,
                  (long long)stats.dropped);
    outs() << line;
  }

  std::sort(times.begin(), times.end());
  double median = times[times.size() / 2];
  char line[256];
  if (repeat > 0) {
    std::snprintf(line, sizeof(line), "time: median %.3f ms over %u runs",
                  median, repeat.getValue());
    outs() << line;
    if (layer) {
      std::snprintf(line, sizeof(line), "; %.2f GFLOP/s (expert FLOPs)",
                    layerFlops(*layer, args) / (median * 1e6));
      outs() << line;
    }
    outs() << "\n";
  } else {
    std::snprintf(line, sizeof(line),
                  "time: %.3f ms (one run; --repeat N for a median)\n", median);
    outs() << line;
  }

  if (!dumpDir.empty()) {
    if (std::error_code ec = sys::fs::create_directories(dumpDir))
      return fail("--dump: cannot create '" + dumpDir + "': " + ec.message());
    auto save = [&](moert_tensor *t, const std::string &name) {
      std::string path = dumpDir + "/" + name + ".npy";
      if (moert_tensor_save_npy(t, path.c_str()) != 0) {
        error = moert_last_error();
        return false;
      }
      return true;
    };
    for (size_t i = 0; i < args.size(); ++i)
      if (!save(args[i].get(), "arg" + std::to_string(i)))
        return fail(error);
    for (size_t i = 0; i < results.size(); ++i)
      if (!save(results[i].get(), "result" + std::to_string(i)))
        return fail(error);
    outs() << "dumped " << args.size() << " inputs and " << results.size()
           << " results to " << dumpDir << "\n";
  }

  if (check) {
    if (!layer)
      return fail("--check needs a function that is one MoE layer (moe.gate, "
                  "dispatch, experts and combine on its arguments, y "
                  "returned); '" +
                  fnSpec.name + "' is not");
    CheckOutcome outcome = checkAgainstReference(*layer, args, results);
    outs() << "check against the naive reference:\n";
    for (const std::string &l : outcome.lines)
      outs() << "  " << l << "\n";
    if (!outcome.passed) {
      outs() << "CHECK FAILED\n";
      return 1;
    }
    outs() << "CHECK PASSED\n";
  }
  return 0;
}
