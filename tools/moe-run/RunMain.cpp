//===- RunMain.cpp - moe-run without the compiler -------------------------===//
//
//   moe-run PROGRAM.mlir|ARTIFACT.so [--entry NAME]
//   moe-run --layer SPEC [--backend=cpu|cuda] [--check] [--repeat N]
//   moe-run --layer SPEC --backward [--check]      (the training step)
//
// Exit status: 0 success, 1 a check beyond tolerance, 2 bad input.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/RunMain.h"
#include "tools/moe-run/RunSupport.h"

#include "lib/Layer/LayerProgram.h"
#include "lib/Layer/LayerSpec.h"
#include "lib/Target/CudaChip.h"
#include "moe-mlir/Runtime/moert.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <unistd.h>

using namespace moe::run;
namespace fs = std::filesystem;

namespace {

const char *kUsage =
    R"(OVERVIEW: MoE-MLIR runner: run a moe program and check it

USAGE: moe-run [options] <program.mlir | artifact.so>
       moe-run --layer SPEC [options]
       moe-run --block SPEC [options]

OPTIONS:
  --layer=SPEC          Run the layer a SPEC describes: a preset (tiny, mixtral,
                        qwen3_30b_a3b, olmoe) optionally followed by overrides,
                        or tokens=T,hidden=H,ffn=F,experts=E,top_k=K[,router=
                        softmax|sigmoid][,bias=0|1][,capacity=CF][,normalize=
                        0|1][,scaling=S][,activation=silu_glu|gelu_glu][,dtype=
                        f32|bf16][,dynamic=0|1][,n_group=G,topk_group=TG]
                        [,aux_loss=COEF][,ep=R][,overlap=N]; ep=R makes the per-rank
                        program of expert parallelism over R ranks: run it
                        with mpirun -n R moe-run ...; overlap=N pipelines
                        its all-to-alls with the experts over N chunks of
                        tokens (0: the cost model's choice)
  --block=SPEC          Run the transformer block a SPEC describes (attention,
                        then the MoE layer; CPU only for now): a preset
                        (qwen3_block, tiny_block) optionally followed by
                        overrides, or the layer's keys without tokens plus
                        batch=B,seq=L,heads=NH,kv_heads=NKV,head_dim=DH
                        [,bta_tiles=N]; arguments x, g1, wq, wk, wv, wo, g2,
                        w_gate, w1, w2[, bias]; results y, indices (--check:
                        against the reference block)
  --backward            Run the training step: arguments x, w_gate, w1, w2
                        [, bias], dy; results y, indices, dx, dw_gate, dw1,
                        dw2[, aux_loss], loads (--check: against the reference
                        backward, f32 1e-4, bf16 3e-2)
  --memory-budget=B     The planned peak of intermediate memory, BYTES,
                        PERCENT% or least (the smallest any choice reaches):
                        with --backward the training step's (PERCENT of the
                        save-everything peak; on CUDA least is the default),
                        the compiler deciding what to save and what to
                        recompute under it; with --block the fewest attention
                        tiles whose plan fits (PERCENT of the untiled peak),
                        and the MoE's row slices where none fits without
  --backend=B           Where to run: cpu (default), cuda (= cuda:sm_90),
                        cuda:sm_90a, cuda:sm_80; an artifact runs where it was compiled for
  --entry=NAME          The function to run (default: the only one, or moe_layer)
  --seed=N              Seed of the random inputs (default 1)
  --tokens=N            Extent of dynamic dimensions of random inputs
                        (default: the spec's tokens, else 16)
  --inputs=DIR          Read argument I from DIR/argI.npy instead
  --dump=DIR            Write DIR/argI.npy and DIR/resultI.npy
  --check               Compare with the naive reference; exit 1 beyond
                        tolerance (f32 1e-4, bf16 2e-2, f16 1e-2)
  --repeat=N            Time N runs after a warm-up and print the median (CUDA
                        events on the GPU), then the runs' spread: min, max,
                        the first and the last (a drift between them is the
                        clocks or the cache settling)
  --warmup=N            With --repeat: untimed runs before the timed ones
                        (default 1)
  --profile             CUDA: time each kernel (events around every launch)
                        over --repeat runs (default 10) and print them, the
                        most expensive first, then the cost model's
                        prediction beside the measured time of each kernel
  --no-fusion           Compile with the materializing lowering
  --device-split-sizes  CPU, expert parallelism: size the all-to-all's received
                        buffers by a bound, as CUDA always does (tests that
                        path without a GPU)
  --experts-per-chunk=N Zero-buffer fusion: experts whose GEMMs run together
                        (default 1 on the CPU, all experts on CUDA)
  --trace=PATH          Write a Chrome trace (JSON) of the run: a compute and a
                        communication lane per rank (the collectives and the
                        code between them; under mpirun one file for all ranks)
  --emit-mlir           Print the program a --layer SPEC makes and exit
  --help                This text
)";

int fail(const std::string &message) {
  std::cerr << "moe-run: error: " << message << "\n";
  return 2;
}

struct Options {
  std::string program, layerSpec, blockSpec, entry, inputsDir, dumpDir,
      backend, trace;
  std::string memoryBudget;
  bool haveSpec = false, haveBlock = false, haveTokens = false,
       haveBackend = false;
  bool check = false, noFusion = false, emitMlir = false, help = false;
  bool profile = false, backward = false, deviceSplitSizes = false;
  uint64_t seed = 1;
  int64_t tokens = -1, expertsPerChunk = 0, repeat = 0, warmup = 1;
  bool haveWarmup = false;
  bool haveExpertsPerChunk = false;
};

bool parseInteger(const std::string &text, int64_t &out) {
  if (text.empty())
    return false;
  char *end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0')
    return false;
  out = value;
  return true;
}

/// Parses argv; returns "" or a one-line error.
std::string parseOptions(int argc, char **argv, Options &o) {
  const std::map<std::string, bool> takesValue = {
      {"layer", true},         {"block", true},
      {"backend", true},       {"entry", true},
      {"seed", true},          {"tokens", true},
      {"inputs", true},        {"dump", true},
      {"repeat", true},        {"experts-per-chunk", true},
      {"warmup", true},        {"trace", true},
      {"check", false},        {"no-fusion", false},
      {"emit-mlir", false},    {"profile", false},
      {"help", false},         {"backward", false},
      {"memory-budget", true}, {"device-split-sizes", false}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("-", 0) != 0 || arg == "-") {
      if (!o.program.empty())
        return "more than one program given ('" + o.program + "', '" + arg +
               "')";
      o.program = arg;
      continue;
    }
    std::string name = arg.substr(arg.rfind("--", 0) == 0 ? 2 : 1), value;
    bool hasValue = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      hasValue = true;
    }
    auto known = takesValue.find(name);
    if (known == takesValue.end())
      return "unknown option '" + arg + "' (--help lists the options)";
    if (known->second && !hasValue) {
      if (i + 1 >= argc)
        return "option '--" + name + "' needs a value";
      value = argv[++i];
    } else if (!known->second && hasValue) {
      return "option '--" + name + "' takes no value";
    }
    int64_t number = 0;
    auto integer = [&](int64_t &out) -> std::string {
      if (!parseInteger(value, number))
        return "option '--" + name + "' needs an integer, got '" + value + "'";
      out = number;
      return "";
    };
    std::string error;
    if (name == "layer") {
      o.layerSpec = value;
      o.haveSpec = true;
    } else if (name == "block") {
      o.blockSpec = value;
      o.haveBlock = true;
    } else if (name == "backend") {
      o.backend = value;
      o.haveBackend = true;
    } else if (name == "entry") {
      o.entry = value;
    } else if (name == "seed") {
      // Any 64-bit unsigned value.
      char *end = nullptr;
      errno = 0;
      unsigned long long seed = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || value[0] == '-' || errno == ERANGE)
        error = "option '--seed' needs an unsigned 64-bit integer, got '" +
                value + "'";
      o.seed = seed;
    } else if (name == "tokens") {
      error = integer(o.tokens);
      o.haveTokens = true;
    } else if (name == "inputs") {
      o.inputsDir = value;
    } else if (name == "dump") {
      o.dumpDir = value;
    } else if (name == "trace") {
      o.trace = value;
    } else if (name == "repeat") {
      error = integer(o.repeat);
      if (error.empty() && o.repeat < 0)
        error = "--repeat must be non-negative";
    } else if (name == "warmup") {
      error = integer(o.warmup);
      o.haveWarmup = true;
      if (error.empty() && (o.warmup < 0 || o.warmup > 100000))
        error = "--warmup must be 0 to 100000";
    } else if (name == "experts-per-chunk") {
      error = integer(o.expertsPerChunk);
      o.haveExpertsPerChunk = true;
    } else if (name == "check") {
      o.check = true;
    } else if (name == "no-fusion") {
      o.noFusion = true;
    } else if (name == "device-split-sizes") {
      o.deviceSplitSizes = true;
    } else if (name == "emit-mlir") {
      o.emitMlir = true;
    } else if (name == "profile") {
      o.profile = true;
    } else if (name == "backward") {
      o.backward = true;
    } else if (name == "memory-budget") {
      o.memoryBudget = value;
    } else if (name == "help") {
      o.help = true;
    }
    if (!error.empty())
      return error;
  }
  return "";
}

/// The kernels the cost model predicts, by the name of the op they come
/// from (a GPU lowering may split one into parts: moek_route_scores).
const char *const kPredictedKernels[] = {
    "moek_route", "moek_rank_assignments", "moek_exclusive_scan",
    "moek_assignment_rows", "moek_row_assignments", "moek_gather_rows",
    "moek_grouped_matmul_store", "moek_grouped_matmul_silu_glu",
    "moek_grouped_matmul_gelu_glu", "moek_grouped_matmul_scatter_add",
    "moek_grouped_matmul_scatter_store",
    // The backward's B-transposed GEMMs: rows of their own, not lumped with
    // the forward's.
    "moek_grouped_matmul_store_transposed_b",
    "moek_grouped_matmul_scatter_add_transposed_b", "moek_glu", "moek_combine_rows", "moek_expert_loads",
    // The weight gradients on mma.sync, or on sm_90a's wgmma kernel.
    "moek_grouped_glu_backward", "moek_grouped_weight_grad",
    "moek_grouped_weight_grad_warpgroup",
    "moek_grouped_input_grad", "moek_route_backward",
    // The router backward's tensor-core products (bf16/f16 layers).
    "moek_route_backward_dx", "moek_route_backward_dw_gate", "fill",
    "linalg_map", "copy"};

/// The predicted kernel a measured one belongs to: the longest name of
/// kPredictedKernels that is the measured name or a prefix of it before
/// '_'; "" for none.
std::string predictedGroupOf(const std::string &measured) {
  std::string best;
  for (const char *name : kPredictedKernels) {
    std::string n = name;
    bool matches = measured == n || (measured.rfind(n + "_", 0) == 0);
    if (matches && n.size() > best.size())
      best = n;
  }
  return best;
}

/// The cost model's prediction (artifact metadata `cost.*`) beside the
/// measured time of each kernel, grouped by the op the kernels come from.
std::string describePredictions(const moert_function *function,
                                const std::vector<moert_kernel_time> &kernels,
                                double measuredTotal) {
  const char *device = moert_function_attr(function, "cost.device");
  const char *total = moert_function_attr(function, "cost.predicted_ms");
  if (!device || !total)
    return "prediction: none (the artifact was compiled without the cost "
           "model)\n";
  std::map<std::string, double> measured;
  for (const moert_kernel_time &kernel : kernels)
    measured[predictedGroupOf(kernel.name)] += kernel.ms_per_run;
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line),
                "prediction (cost model, device %s): %s ms per call, %.3f ms "
                "of kernels measured\n   predicted    measured   ratio  "
                "kernel\n",
                device, total, measuredTotal);
  out << line;
  for (const char *name : kPredictedKernels) {
    const char *value =
        moert_function_attr(function, ("cost.kernel." + std::string(name))
                                          .c_str());
    auto seen = measured.find(name);
    if (!value && seen == measured.end())
      continue;
    double predicted = value ? std::strtod(value, nullptr) : 0.0;
    double got = seen == measured.end() ? 0.0 : seen->second;
    std::snprintf(line, sizeof(line), "  %10.3f  %10.3f  %6.2f  %s\n",
                  predicted, got, predicted > 0 ? got / predicted : 0.0, name);
    out << line;
  }
  if (auto other = measured.find(""); other != measured.end()) {
    std::snprintf(line, sizeof(line), "  %10s  %10.3f  %6s  (kernels the "
                  "model does not name)\n", "-", other->second, "-");
    out << line;
  }
  return out.str();
}

/// The device memory the checked run held: its own allocations at their
/// most, less the results (which outlive the call), against the plan and
/// the budget the artifact was compiled with.
std::string describeDeviceMemory(const moert_function *function,
                                 const std::vector<Tensor> &results) {
  int64_t highWater = moert_device_memory_high_water();
  int64_t resultBytes = 0;
  for (const Tensor &t : results) {
    int64_t n = 1;
    for (int d = 0; d < moert_tensor_rank(t.get()); ++d)
      n *= moert_tensor_dims(t.get())[d];
    resultBytes += n * static_cast<int64_t>(
                           moert_dtype_size(moert_tensor_dtype(t.get())));
  }
  std::string text = "device memory: high water " +
                     std::to_string(highWater) + " bytes of the call's own " +
                     "allocations, of which results " +
                     std::to_string(resultBytes) + " bytes; intermediates " +
                     std::to_string(highWater - resultBytes) + " bytes";
  if (const char *planned =
          moert_function_attr(function, "memory.peak_intermediate_bytes"))
    text += std::string(" (planned ") + planned + ")";
  if (const char *budget =
          moert_function_attr(function, "recompute.budget_bytes"))
    text += std::string("; memory budget ") + budget + " bytes";
  return text;
}

/// An ELF file: what moe-compile makes.
bool looksLikeSharedObject(const std::string &path) {
  char magic[4] = {0, 0, 0, 0};
  FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return false;
  size_t read = std::fread(magic, 1, 4, file);
  std::fclose(file);
  return read == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' &&
         magic[3] == 'F';
}

const moert_function *pickFunction(moert_artifact *artifact,
                                   const std::string &entry, bool backward,
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
  std::string layerName = moe::layer::kLayerFunctionName;
  if (backward)
    layerName += "_train";
  if (const moert_function *fn =
          moert_artifact_lookup(artifact, layerName.c_str()))
    return fn;
  error = "the artifact has " + std::to_string(count) +
          " functions; choose one with --entry NAME (";
  for (int i = 0; i < count; ++i)
    error += std::string(i ? ", " : "") +
             moert_function_name(moert_artifact_function(artifact, i));
  error += ")";
  return nullptr;
}

std::string joinSpecs(const std::vector<ValueSpec> &specs) {
  std::string text;
  for (size_t i = 0; i < specs.size(); ++i)
    text += (i ? ", " : "") + formatSpec(specs[i]);
  return text;
}

/// Removes a temporary artifact when the run ends.
struct TemporaryFile {
  std::string path;
  ~TemporaryFile() {
    if (!path.empty())
      std::remove(path.c_str());
  }
};

/// Writes the Chrome trace of every rank to `path`: each rank its events to
/// PATH.rankR, then (after all have) rank 0 joins them into one file. The
/// ranks share a file system (one machine, or a shared directory).
std::string writeTrace(const std::string &path, int rank, int ranks) {
  std::string part = path + ".rank" + std::to_string(rank);
  if (moert_trace_write_events(part.c_str()) != 0)
    return std::string("--trace: ") + moert_last_error();
  double barrier = 0;
  if (moert_comm_allreduce_max_f64(&barrier, 1) != 0)
    return moert_last_error();
  if (rank != 0)
    return "";
  std::ofstream out(path);
  out << "{\"traceEvents\": [\n";
  bool first = true;
  for (int r = 0; r < ranks; ++r) {
    std::string name = path + ".rank" + std::to_string(r);
    std::ifstream in(name);
    if (!in)
      return "--trace: rank " + std::to_string(r) + "'s events are not in '" +
             name + "' (do the ranks share a file system?)";
    for (std::string line; std::getline(in, line);) {
      if (line.empty())
        continue;
      out << (first ? "" : ",\n") << line;
      first = false;
    }
    in.close();
    std::remove(name.c_str());
  }
  out << "\n]}\n";
  if (!out.good())
    return "--trace: cannot write '" + path + "'";
  return "";
}

/// What moe-run is doing, for the message when memory runs out.
const char *currentPhase = "starting";

int runUnguarded(int argc, char **argv, CompileHook compile) {
  Options o;
  if (std::string error = parseOptions(argc, argv, o); !error.empty())
    return fail(error);
  if (o.help) {
    std::cout << kUsage;
    return 0;
  }
  // Under mpirun every rank is a moe-run; rank 0 speaks for all of them
  // (errors still come from every rank, on stderr). On the GPU torchrun's
  // launch works too: NCCL's communicator meets at MASTER_ADDR.
  bool cudaBackend = o.haveBackend && o.backend.rfind("cuda", 0) == 0;
  if (moert_comm_init_launch(cudaBackend ? 1 : 0) != 0)
    return fail(moert_last_error());
  int rank = moert_comm_rank(), worldSize = moert_comm_size();
  static std::ostream silent(nullptr);
  std::streambuf *stdoutBuffer = std::cout.rdbuf();
  if (rank != 0)
    std::cout.rdbuf(silent.rdbuf());
  struct RestoreStdout {
    std::streambuf *buffer;
    ~RestoreStdout() { std::cout.rdbuf(buffer); }
  } restoreStdout{stdoutBuffer};
  if (int(o.haveSpec) + int(o.haveBlock) + int(!o.program.empty()) != 1)
    return fail("give either a program (.mlir or artifact), --layer SPEC or "
                "--block SPEC (exactly one)");
  moe::layer::LayerSpec spec;
  moe::layer::BlockSpec block;
  if (o.haveBlock) {
    std::string error;
    if (!moe::layer::parseBlockSpec(o.blockSpec, block, error))
      return fail(error);
    if (o.backward)
      return fail("--backward: the block has no training step yet (run "
                  "--layer SPEC --backward for the MoE layer's)");
    if (o.emitMlir) {
      std::cout << moe::layer::emitBlockProgram(block);
      return 0;
    }
  } else if (o.haveSpec) {
    std::string error;
    if (!moe::layer::parseLayerSpec(o.layerSpec, spec, error))
      return fail(error);
    if (o.emitMlir) {
      std::cout << moe::layer::emitLayerProgram(spec);
      return 0;
    }
  } else if (o.emitMlir) {
    return fail("--emit-mlir prints the program of a --layer or --block SPEC; "
                "a program file is its own IR");
  }
  std::error_code ec;
  if (!o.program.empty() && !fs::exists(o.program, ec))
    return fail("no such file: '" + o.program + "'");
  bool isProgram = fs::path(o.program).extension() == ".mlir";
  if (!o.program.empty() && !isProgram && !looksLikeSharedObject(o.program))
    return fail("'" + o.program +
                "' is neither a program (a .mlir file) nor an artifact (a "
                "shared object made by moe-compile)");
  if (o.haveTokens && o.tokens < 1)
    return fail("--tokens must be at least 1");
  if (o.haveExpertsPerChunk && o.expertsPerChunk < 1)
    return fail("--experts-per-chunk must be at least 1");
  if (o.haveWarmup && o.repeat == 0)
    return fail("--warmup needs --repeat N (the runs it warms up for)");
  if (!o.inputsDir.empty() && !fs::is_directory(o.inputsDir, ec))
    return fail("--inputs: '" + o.inputsDir + "' is not a directory");
  std::string backend = o.haveBackend ? o.backend : "cpu";
  if (backend != "cpu") {
    std::string why;
    std::optional<moe::target::CudaChip> chip =
        moe::target::CudaChip::parseTarget(backend, why);
    if (!chip)
      return fail("unknown backend '" + o.backend +
                  "' (known: cpu, cuda, cuda:sm_90, cuda:sm_90a, cuda:sm_80)");
    backend = "cuda:" + chip->name();
  }

  if (!o.memoryBudget.empty() && !o.backward && o.haveSpec)
    return fail("--memory-budget places the recomputation of the training "
                "step (add --backward) or chooses the attention tiles of a "
                "block (--block SPEC); a layer's forward has neither");
  if (!o.memoryBudget.empty() && !o.haveSpec && !o.haveBlock && !isProgram)
    return fail("--memory-budget applies when moe-run compiles (a program, "
                "--layer SPEC or --block SPEC); an artifact keeps the "
                "placement and tiles it was compiled with (moe-compile "
                "--memory-budget)");

  if (o.deviceSplitSizes && !o.haveSpec && !o.haveBlock && !isProgram)
    return fail("--device-split-sizes applies when moe-run compiles (a "
                "program, --layer SPEC or --block SPEC); an artifact keeps "
                "the buffers it was compiled with (moe-compile "
                "--device-split-sizes)");

  // Compile unless given an artifact.
  std::string artifactPath = o.program;
  TemporaryFile temporary;
  if (o.haveSpec || o.haveBlock || isProgram) {
    if (!compile)
      return fail("this moe-run was built without the compiler: compile the "
                  "program with moe-compile and run the artifact");
    char name[] = "/tmp/moe-run-XXXXXX.so";
    int fd = mkstemps(name, 3);
    if (fd < 0)
      return fail("cannot create a temporary artifact in /tmp");
    close(fd);
    temporary.path = artifactPath = name;
    CompileRequest request;
    request.programPath = o.haveSpec || o.haveBlock ? "" : o.program;
    request.layerSpec = o.layerSpec;
    request.blockSpec = o.blockSpec;
    request.target = backend;
    request.fusion = !o.noFusion;
    request.deviceSplitSizes = o.deviceSplitSizes;
    request.expertsPerChunk = o.expertsPerChunk;
    request.outputPath = artifactPath;
    request.backward = o.backward;
    request.memoryBudget = o.memoryBudget;
    if (int status = compile(request))
      return status;
  }

  // Errors about a temporary artifact name what the user gave instead.
  std::string shownName =
      o.haveSpec    ? "layer '" + o.layerSpec + "'"
      : o.haveBlock ? "block '" + o.blockSpec + "'"
                    : o.program;
  auto runtimeError = [&]() {
    std::string message = moert_last_error();
    if (temporary.path.empty())
      return message;
    for (size_t at = message.find(artifactPath); at != std::string::npos;
         at = message.find(artifactPath, at + shownName.size()))
      message.replace(at, artifactPath.size(), shownName);
    return message;
  };
  moert_artifact *artifact = nullptr;
  if (moert_artifact_load(artifactPath.c_str(), &artifact) != 0)
    return fail(runtimeError());
  std::unique_ptr<moert_artifact, void (*)(moert_artifact *)> artifactOwner(
      artifact, moert_artifact_unload);
  bool onGpu = moert_artifact_backend(artifact) == MOERT_BACKEND_CUDA;
  if (o.haveBackend && !o.haveSpec && !o.haveBlock && !isProgram &&
      onGpu != (backend != "cpu"))
    return fail("the artifact was compiled for " +
                std::string(moert_artifact_target(artifact)) +
                ", not --backend=" + o.backend);
  if (o.profile && !onGpu)
    return fail("--profile times CUDA kernels: run with --backend=cuda (or a "
                "CUDA artifact)");
  std::string error;
  const moert_function *function =
      pickFunction(artifact, o.entry, o.backward, error);
  if (!function)
    return fail(o.entry.empty() ? error : runtimeError());
  FunctionSpec fnSpec = describeFunction(function);
  std::optional<LayerInfo> layer = readLayerInfo(function);
  // An artifact of a block records its spec: --check runs the reference
  // block as --block SPEC does (a GPU machine has no compiler).
  bool checkBlock = o.haveBlock;
  if (!o.haveBlock)
    if (const char *recorded = moert_function_attr(function, "block.spec")) {
      std::string why;
      if (!moe::layer::parseBlockSpec(recorded, block, why))
        return fail("the artifact's block spec '" + std::string(recorded) +
                    "' does not parse: " + why);
      checkBlock = true;
    }
  if (o.backward && !moert_function_attr(function, "training_step"))
    return fail("--backward: function '" + fnSpec.name +
                "' has no backward (compile it with moe-compile --backward, "
                "or give the .mlir program or --layer SPEC)");

  // Expert parallelism: the program's ranks are the world's.
  int64_t epRanks = layer ? layer->epRanks : 0;
  if (epRanks > 0 && epRanks != worldSize)
    return fail("the program is the per-rank program of expert parallelism "
                "over " + std::to_string(epRanks) + " ranks (ep=" +
                std::to_string(epRanks) + ") but runs on " +
                std::to_string(worldSize) + ": launch it with mpirun -n " +
                std::to_string(epRanks) + " moe-run ...");
  if (epRanks == 0 && worldSize > 1)
    return fail("moe-run runs on " + std::to_string(worldSize) +
                " ranks, but the program is not expert-parallel: add ep=" +
                std::to_string(worldSize) +
                " to the layer spec (or run one rank without mpirun)");
  if (epRanks > 0 && !o.inputsDir.empty())
    return fail("--inputs with expert parallelism is not supported yet: the "
                "ranks make their inputs from --seed");

  if (o.haveSpec)
    std::cout << "layer " << spec.name << ": "
              << moe::layer::formatLayerSpec(spec) << "\n";
  if (checkBlock)
    std::cout << "block "
              << (o.haveBlock ? block.name : "(the artifact's spec)") << ": "
              << moe::layer::formatBlockSpec(block) << "\n";
  std::cout << "function " << fnSpec.name << "(" << joinSpecs(fnSpec.args)
            << ") -> (" << joinSpecs(fnSpec.results) << ")\n";
  if (onGpu) {
    char device[256];
    if (moert_cuda_device_name(device, sizeof(device)) != 0)
      return fail(moert_last_error());
    std::cout << "device: " << device << " (" << moert_artifact_target(artifact)
              << ")\n";
  }

  // Inputs.
  int64_t dynamicExtent =
      o.tokens > 0 ? o.tokens : (o.haveSpec ? spec.tokens : 16);
  bool anyDynamic = false;
  for (const ValueSpec &arg : fnSpec.args)
    for (int64_t d : arg.dims)
      anyDynamic |= d == MOERT_DYNAMIC;
  if (o.haveTokens && !anyDynamic)
    std::cout << "note: --tokens is ignored: no argument has a dynamic "
                 "dimension\n";
  std::vector<Tensor> args;
  // With expert parallelism, the whole layer's weights (the reference
  // needs them): every rank makes the same w1 and w2 of all E experts from
  // the seed and passes its own E/R to the program; the tokens differ by
  // rank, the router is the same everywhere.
  Tensor wholeW1, wholeW2;
  // The tokens and output gradients differ by rank (any rank can make any
  // other rank's: the reference of the training step needs them all).
  auto seedOf = [&](int arg, int ofRank) {
    uint64_t seed = o.seed * 1000003 + static_cast<uint64_t>(arg);
    if (epRanks > 0 && (arg == layer->x || (layer->backward && arg == layer->dy)))
      seed += static_cast<uint64_t>(ofRank) * 7919;
    return seed;
  };
  currentPhase = o.inputsDir.empty() ? "making random inputs" : "reading inputs";
  for (size_t i = 0; i < fnSpec.args.size(); ++i) {
    uint64_t seed = seedOf(static_cast<int>(i), rank);
    bool sharded = epRanks > 0 && (static_cast<int>(i) == layer->w1 ||
                                   static_cast<int>(i) == layer->w2);
    ValueSpec argSpec = fnSpec.args[i];
    if (sharded)
      argSpec.dims[0] = layer->experts;
    Tensor t = o.inputsDir.empty()
                   ? makeRandomInput(argSpec, dynamicExtent, seed,
                                     inputScale(fnSpec, layer ? &*layer : nullptr,
                                                static_cast<int>(i)),
                                     error)
                   : readInput(o.inputsDir, static_cast<int>(i),
                               fnSpec.args[i], error);
    if (!t)
      return fail(error);
    if (sharded) {
      Tensor shard = shardExperts(t.get(), rank, epRanks, error);
      if (!shard)
        return fail(error);
      (static_cast<int>(i) == layer->w1 ? wholeW1 : wholeW2) = std::move(t);
      t = std::move(shard);
    }
    args.push_back(std::move(t));
  }
  // dy must have y's shape, which is x's; a dynamic token count is only
  // known here.
  if (layer && layer->backward) {
    const moert_tensor *x = args[layer->x].get(), *dy = args[layer->dy].get();
    bool same = moert_tensor_rank(x) == moert_tensor_rank(dy);
    for (int d = 0; same && d < moert_tensor_rank(x); ++d)
      same = moert_tensor_dims(x)[d] == moert_tensor_dims(dy)[d];
    if (!same)
      return fail("dy (argument " + std::to_string(layer->dy) +
                  ") has shape " + formatShape(dy) + " but y has " +
                  formatShape(x) + ": dy must have y's shape [T, H]");
  }
  if (std::optional<std::string> memory = describeMemoryPlan(function))
    std::cout << *memory << "\n";
  if (std::optional<std::string> tiling = describeTileChoice(function))
    std::cout << *tiling << "\n";
  std::cout << "inputs: "
            << (o.inputsDir.empty()
                    ? "random normal, seed " + std::to_string(o.seed)
                    : "read from " + o.inputsDir)
            << "\n";
  if (epRanks > 0)
    std::cout << "expert parallelism: " << epRanks << " ranks, "
              << layer->experts / epRanks << " of " << layer->experts
              << " experts and " << moert_tensor_dims(args[layer->x].get())[0]
              << " tokens per rank; all-to-all over "
              << (onGpu ? "NCCL"
                  : worldSize > 1 ? "MPI"
                                  : "one rank (local copies)")
              << "\n";

  // One run for the results.
  currentPhase = "running the function";
  std::vector<moert_tensor *> rawArgs;
  for (Tensor &t : args)
    rawArgs.push_back(t.get());
  std::vector<moert_tensor *> rawResults(fnSpec.results.size(), nullptr);
  // Every buffer of this run starts as NaN, so an output element that no
  // kernel writes cannot pass the check; timing runs are not poisoned.
  moert_set_poison_allocations(1);
  moert_device_memory_reset_high_water();
  moert_comm_stats_reset();
  moert_trace_enable(!o.trace.empty());
  auto start = std::chrono::steady_clock::now();
  int status = moert_function_call(function, rawArgs.data(),
                                   static_cast<int>(rawArgs.size()),
                                   rawResults.data(),
                                   static_cast<int>(rawResults.size()));
  moert_set_poison_allocations(0);
  if (status != 0)
    return fail(runtimeError());
  double oneRunMs = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  std::vector<Tensor> results;
  for (moert_tensor *t : rawResults)
    results.emplace_back(t);
  if (onGpu)
    std::cout << describeDeviceMemory(function, results) << "\n";

  // What the communication stream did, and how much of it the compute
  // stream did not wait for (moe-overlap-communication hides it).
  auto printCommunication = [&](int runs) {
    moert_comm_stats stats;
    moert_comm_stats_get(&stats);
    if (epRanks == 0 || stats.collectives == 0)
      return;
    double busy = stats.busy_ms / runs, waited = stats.waited_ms / runs;
    double hidden = std::max(0.0, busy - waited);
    char text[256];
    std::snprintf(text, sizeof(text),
                  "communication: %.3f ms per run on the communication stream "
                  "(%lld collectives), %.3f ms of it hidden behind compute "
                  "(%.0f%%)%s\n",
                  busy, static_cast<long long>(stats.collectives / runs),
                  hidden, busy > 0 ? 100.0 * hidden / busy : 0.0,
                  runs > 1 ? " over the timed runs" : "");
    std::cout << text;
  };
  if (o.repeat == 0)
    printCommunication(1);

  if (layer && layer->indices >= 0) {
    int64_t experts = epRanks > 0
                          ? layer->experts
                          : moert_tensor_dims(args[layer->w1].get())[0];
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
    std::cout << line;
  }

  // Timing: a warm-up, then the median of N runs on the same inputs.
  int repeat = static_cast<int>(o.repeat);
  char line[256];
  if (repeat > 0) {
    std::vector<double> times(repeat);
    moert_comm_stats_reset();
    int warmup = static_cast<int>(o.warmup);
    if (moert_function_time(function, rawArgs.data(),
                            static_cast<int>(rawArgs.size()), warmup, repeat,
                            times.data()) != 0)
      return fail(runtimeError());
    printCommunication(repeat + warmup); // and the warm-up
    double firstRun = times.front(), lastRun = times.back();
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    std::snprintf(line, sizeof(line), "time: median %.3f ms over %d runs%s",
                  median, repeat, onGpu ? " (CUDA events)" : "");
    std::cout << line;
    if (layer) {
      // A training step: forward and backward, the backward counted as
      // twice the forward (the recomputed gate/up projection not counted).
      double flops = layerFlops(*layer, args) * (layer->backward ? 3.0 : 1.0);
      const char *what = layer->backward ? " of forward and backward" : "";
      if (onGpu)
        std::snprintf(line, sizeof(line), "; %.2f TFLOP/s (expert FLOPs%s)",
                      flops / (median * 1e9), what);
      else
        std::snprintf(line, sizeof(line), "; %.2f GFLOP/s (expert FLOPs%s)",
                      flops / (median * 1e6), what);
      std::cout << line;
    }
    std::cout << "\n";
    std::snprintf(line, sizeof(line),
                  "runs: min %.3f ms, max %.3f ms; first %.3f ms, last %.3f "
                  "ms (after %d warm-up run%s)\n",
                  times.front(), times.back(), firstRun, lastRun, warmup,
                  warmup == 1 ? "" : "s");
    std::cout << line;
  } else {
    std::snprintf(line, sizeof(line),
                  "time: %.3f ms (one run%s; --repeat N for a median)\n",
                  oneRunMs, onGpu ? ", with host-device copies" : "");
    std::cout << line;
  }

  if (o.profile) {
    int runs = repeat > 0 ? repeat : 10;
    std::vector<moert_kernel_time> kernels(64);
    int count = 0;
    if (moert_function_profile(function, rawArgs.data(),
                               static_cast<int>(rawArgs.size()), runs,
                               kernels.data(), static_cast<int>(kernels.size()),
                               &count) != 0)
      return fail(runtimeError());
    kernels.resize(std::min<size_t>(count, kernels.size()));
    double total = 0;
    for (const moert_kernel_time &kernel : kernels)
      total += kernel.ms_per_run;
    std::snprintf(line, sizeof(line),
                  "profile: %d kernels, %.3f ms of kernel time per run (mean "
                  "of %d runs)\n",
                  count, total, runs);
    std::cout << line << "     ms/run   share  launches  kernel\n";
    for (const moert_kernel_time &kernel : kernels) {
      std::snprintf(line, sizeof(line), "  %9.3f  %5.1f%%  %8.1f  %s\n",
                    kernel.ms_per_run,
                    total > 0 ? 100.0 * kernel.ms_per_run / total : 0.0,
                    kernel.launches_per_run, kernel.name);
      std::cout << line;
    }
    std::cout << describePredictions(function, kernels, total);
  }

  if (!o.trace.empty()) {
    moert_trace_enable(0);
    if (std::string error = writeTrace(o.trace, rank, worldSize);
        !error.empty())
      return fail(error);
    std::cout << "trace: " << o.trace << " (Chrome trace: chrome://tracing or "
              << "ui.perfetto.dev)\n";
  }

  if (!o.dumpDir.empty()) {
    // Each rank has its own inputs and results.
    if (epRanks > 0)
      o.dumpDir += "/rank" + std::to_string(rank);
    fs::create_directories(o.dumpDir, ec);
    if (ec)
      return fail("--dump: cannot create '" + o.dumpDir + "': " + ec.message());
    auto save = [&](moert_tensor *t, const std::string &name) {
      std::string path = o.dumpDir + "/" + name + ".npy";
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
    std::cout << "dumped " << args.size() << " inputs and " << results.size()
              << " results to " << o.dumpDir << "\n";
  }

  if (o.check && checkBlock) {
    currentPhase = "running the reference block";
    std::string why;
    std::optional<CheckOutcome> checked =
        checkBlockAgainstReference(block, args, results, why);
    if (!checked)
      return fail("--check: " + why);
    std::cout << "check against the naive reference block:\n";
    for (const std::string &l : checked->lines)
      std::cout << "  " << l << "\n";
    std::cout << (checked->passed ? "CHECK PASSED\n" : "CHECK FAILED\n");
    return checked->passed ? 0 : 1;
  }
  if (o.check) {
    if (!layer)
      return fail("--check needs a function that is one MoE layer (moe.gate, "
                  "dispatch, experts and combine on its arguments, y "
                  "returned); '" +
                  fnSpec.name + "' is not");
    currentPhase = "running the reference";
    std::string why;
    // The reference is the single-rank layer on this rank's tokens with all
    // E experts: dropless, its rows are this rank's rows of the layer on
    // the global batch; with a capacity, capacity is per rank's tokens.
    std::vector<Tensor> wholeArgs;
    const std::vector<Tensor> *checkedArgs = &args;
    if (epRanks > 0) {
      for (size_t i = 0; i < args.size(); ++i) {
        moert_tensor *source = static_cast<int>(i) == layer->w1
                                   ? wholeW1.get()
                               : static_cast<int>(i) == layer->w2
                                   ? wholeW2.get()
                                   : args[i].get();
        wholeArgs.emplace_back(moert_tensor_wrap(
            moert_tensor_dtype(source), moert_tensor_rank(source),
            moert_tensor_dims(source), moert_tensor_data(source)));
        if (!wholeArgs.back())
          return fail(moert_last_error());
      }
      checkedArgs = &wholeArgs;
    }
    RanksOfLayer ranksOfLayer;
    if (epRanks > 0 && layer->backward) {
      ranksOfLayer.rank = rank;
      ranksOfLayer.ranks = epRanks;
      for (int peer = 0; peer < epRanks; ++peer) {
        auto remake = [&](int arg) {
          Tensor t = makeRandomInput(
              fnSpec.args[arg], dynamicExtent, seedOf(arg, peer),
              inputScale(fnSpec, &*layer, arg), error);
          return t ? toFloats(t.get()) : std::vector<float>();
        };
        ranksOfLayer.xs.push_back(remake(layer->x));
        ranksOfLayer.dys.push_back(remake(layer->dy));
      }
    }
    std::optional<CheckOutcome> checked =
        layer->backward
            ? checkBackwardAgainstReference(
                  *layer, *checkedArgs, results, why,
                  epRanks > 0 ? &ranksOfLayer : nullptr)
            : checkAgainstReference(*layer, *checkedArgs, results, why);
    if (!checked)
      return fail("--check: " + why);
    CheckOutcome &outcome = *checked;
    if (epRanks > 0) {
      // A rank that fails says why on stderr; rank 0 gives the verdict of
      // all of them.
      if (!outcome.passed)
        for (const std::string &l : outcome.lines)
          std::cerr << "moe-run: rank " << rank << ": " << l << "\n";
      double failed = outcome.passed ? 0.0 : 1.0;
      if (moert_comm_allreduce_max_f64(&failed, 1) != 0)
        return fail(moert_last_error());
      outcome.passed = failed == 0.0;
      if (layer->backward)
        std::cout << "check of rank 0 of " << epRanks
                  << " against the reference backward (y, indices, dx, "
                     "dw_gate, loads: the rank's tokens; dw1, dw2: its "
                     "experts over every rank's tokens):\n";
      else
        std::cout << "check of rank 0 of " << epRanks
                  << " (every rank checks its tokens against the reference "
                     "layer with all experts):\n";
      for (const std::string &l : outcome.lines)
        std::cout << "  " << l << "\n";
      std::cout << (outcome.passed ? "all ranks passed\n"
                                   : "at least one rank failed\n");
      std::cout << (outcome.passed ? "CHECK PASSED\n" : "CHECK FAILED\n");
      return outcome.passed ? 0 : 1;
    }
    std::cout << (layer->backward
                      ? "check against the naive reference backward:\n"
                      : "check against the naive reference:\n");
    for (const std::string &l : outcome.lines)
      std::cout << "  " << l << "\n";
    if (!outcome.passed) {
      std::cout << "CHECK FAILED\n";
      return 1;
    }
    std::cout << "CHECK PASSED\n";
  }
  return 0;
}

} // namespace

int moe::run::runMain(int argc, char **argv, CompileHook compile) {
  // No exception leaves moe-run: each is the usual one-line error, exit 2.
  try {
    int status = runUnguarded(argc, argv, compile);
    // Every rank got here together (0, or 1 after the shared verdict):
    // MPI can finalize. After an error (2) a rank exits at once, so that
    // mpirun ends the ranks that wait for it in a collective.
    if (status != 2 && moert_comm_finalize() != 0)
      return fail(moert_last_error());
    return status;
  } catch (const std::bad_alloc &) {
    return fail(std::string("out of memory while ") + currentPhase +
                ": use smaller sizes (--layer SPEC, --tokens)");
  } catch (const std::exception &e) {
    return fail(std::string("internal error while ") + currentPhase + ": " +
                e.what());
  }
}
