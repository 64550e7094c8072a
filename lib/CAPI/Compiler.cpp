//===- Compiler.cpp - The MoE-MLIR compiler C API -------------------------===//
//
// Wraps what moe-compile does (lib/Driver, lib/Layer, lib/Target) behind the
// C functions of include/moe-mlir-c/Compiler.h. Diagnostics are collected
// into the thread's last error instead of stderr, and no C++ exception
// crosses the C boundary.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir-c/Compiler.h"

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Driver/Driver.h"
#include "lib/Layer/LayerSpec.h"
#include "lib/Target/ArtifactCompiler.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

using namespace mlir;
namespace mc = mlir::moe;

struct moe_program {
  std::unique_ptr<MLIRContext> context;
  OwningOpRef<ModuleOp> module;
};

namespace {

thread_local std::string lastError;

int fail(std::string message) {
  // One message, no trailing newline, like the runtime's errors.
  while (!message.empty() && message.back() == '\n')
    message.pop_back();
  lastError = message.empty() ? "moe-compile: error: failed" : message;
  return 1;
}

/// Runs `body`, turning any C++ exception into an error.
template <typename Body> int guarded(Body &&body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail("moe-compile: error: out of memory");
  } catch (...) {
    return fail("moe-compile: error: internal error: unexpected exception");
  }
}

/// A malloc'ed copy that moe_string_free releases.
char *copyString(const std::string &text) {
  char *copy = static_cast<char *>(std::malloc(text.size() + 1));
  if (!copy)
    throw std::bad_alloc();
  std::memcpy(copy, text.data(), text.size() + 1);
  return copy;
}

int toolError(const std::string &message) {
  return fail("moe-compile: error: " + message);
}

/// Checks the options as moe-compile checks its flags, and turns them into
/// the compiler's.
int makeOptions(const moe_compile_options *in, mc::CompileOptions &out) {
  moe_compile_options defaults;
  moe_compile_options_init(&defaults);
  if (!in)
    in = &defaults;
  std::string error;
  FailureOr<mc::Target> target =
      mc::parseTarget(in->target ? in->target : "cpu", error);
  if (failed(target))
    return toolError(error);
  if (target->cuda) {
    error = mc::locateCudaToolkit(in->cuda_path ? in->cuda_path : "");
    if (!error.empty())
      return toolError(error);
  }
  if (in->opt_level < 0 || in->opt_level > 3)
    return toolError("-O" + std::to_string(in->opt_level) +
                     ": levels are 0 to 3");
  if (in->experts_per_chunk < 0)
    return toolError("experts_per_chunk must be at least 1 (or 0 for the "
                     "target's default)");
  if (in->cuda_tile) {
    if (!target->cuda)
      return toolError("cuda_tile needs a CUDA target (cuda:sm_90)");
    moek::TensorCoreTile tile;
    error = moek::TensorCoreTile::parse(in->cuda_tile, tile,
                                        target->maxSharedBytesPerBlock());
    if (!error.empty())
      return toolError("cuda_tile: " + error);
    out.tensorCoreTile = in->cuda_tile;
  }
  if (in->cuda_cluster) {
    if (std::string why = moek::checkGemmCluster(in->cuda_cluster);
        !why.empty())
      return toolError("cuda_cluster: " + why);
    if (!target->cuda)
      return toolError("cuda_cluster needs a CUDA target (cuda:sm_90a)");
    out.gemmCluster = in->cuda_cluster;
  }
  out.target = *target;
  out.optLevel = static_cast<unsigned>(in->opt_level);
  out.fusion = in->fusion != 0;
  out.expertsPerChunk = in->experts_per_chunk;
  out.backward = in->backward != 0;
  return 0;
}

/// A temporary file removed when this goes out of scope.
class TempFile {
public:
  ~TempFile() {
    if (!path.empty())
      llvm::sys::fs::remove(path);
  }
  int create(const char *suffix) {
    SmallString<128> name;
    if (std::error_code ec =
            llvm::sys::fs::createTemporaryFile("moe-capi", suffix, name))
      return toolError("cannot create a temporary file: " + ec.message());
    path = std::string(name);
    return 0;
  }
  int read(std::string &text) {
    auto buffer = llvm::MemoryBuffer::getFile(path);
    if (!buffer)
      return toolError("cannot read '" + path +
                       "': " + buffer.getError().message());
    text = (*buffer)->getBuffer().str();
    return 0;
  }
  std::string path;
};

/// Compiles a clone of the program (compileArtifact rewrites its module in
/// place), with diagnostics collected as the error.
int compileClone(const moe_program *program, mc::CompileOptions &options,
                 llvm::raw_ostream &textOut) {
  OwningOpRef<ModuleOp> clone(program->module.get().clone());
  std::string messages;
  mc::OneLineDiagnostics diagnostics(*program->context, "moe-compile",
                                      &messages);
  if (failed(mc::compileArtifact(*clone, options, textOut)) ||
      diagnostics.hadError())
    return fail(messages);
  return 0;
}

int checkProgram(const moe_program *program) {
  if (!program || !program->module)
    return fail("moe-compile: error: the program is NULL");
  return 0;
}

} // namespace

const char *moe_compiler_last_error(void) { return lastError.c_str(); }

void moe_string_free(char *text) { std::free(text); }

int moe_program_parse(const char *irText, const char *sourceName,
                      moe_program **out) {
  return guarded([&] {
    if (!irText || !out)
      return fail("moe-compile: error: moe_program_parse needs IR text and "
                  "an output");
    *out = nullptr;
    auto program = std::make_unique<moe_program>();
    program->context = mc::createCompilerContext();
    std::string messages;
    {
      mc::OneLineDiagnostics diagnostics(*program->context, "moe-compile",
                                          &messages);
      program->module = mc::loadProgramText(
          *program->context, irText, sourceName ? sourceName : "<string>");
    }
    if (!program->module)
      return fail(messages);
    *out = program.release();
    return 0;
  });
}

int moe_program_from_layer_spec(const char *spec, moe_program **out) {
  return guarded([&] {
    if (!spec || !out)
      return fail("moe-compile: error: moe_program_from_layer_spec needs a "
                  "spec and an output");
    *out = nullptr;
    auto program = std::make_unique<moe_program>();
    program->context = mc::createCompilerContext();
    std::string messages, error;
    {
      mc::OneLineDiagnostics diagnostics(*program->context, "moe-compile",
                                          &messages);
      program->module = mc::loadLayerProgram(*program->context, spec, error);
    }
    if (!program->module)
      return fail(error.empty() ? messages : "moe-compile: error: " + error);
    *out = program.release();
    return 0;
  });
}

void moe_program_free(moe_program *program) {
  // The module must go before its context.
  if (program)
    program->module = nullptr;
  delete program;
}

int moe_program_print(const moe_program *program, char **text) {
  return guarded([&] {
    if (checkProgram(program))
      return 1;
    if (!text)
      return fail("moe-compile: error: moe_program_print: text is NULL");
    std::string printed;
    llvm::raw_string_ostream os(printed);
    program->module.get().print(os);
    *text = copyString(printed);
    return 0;
  });
}

int moe_layer_spec_canonical(const char *spec, char **canonical) {
  return guarded([&] {
    if (!spec || !canonical)
      return fail("moe-compile: error: moe_layer_spec_canonical needs a spec "
                  "and an output");
    ::moe::layer::LayerSpec parsed;
    std::string error;
    if (!::moe::layer::parseLayerSpec(spec, parsed, error))
      return toolError(error);
    *canonical = copyString(::moe::layer::formatLayerSpec(parsed));
    return 0;
  });
}

void moe_compile_options_init(moe_compile_options *options) {
  if (!options)
    return;
  options->target = "cpu";
  options->opt_level = 3;
  options->fusion = 1;
  options->experts_per_chunk = 0;
  options->cuda_tile = nullptr;
  options->cuda_path = nullptr;
  options->backward = 0;
  options->cuda_cluster = nullptr;
}

int moe_program_compile(const moe_program *program,
                        const moe_compile_options *options,
                        const char *outputPath, char **memoryReport) {
  return guarded([&] {
    if (checkProgram(program))
      return 1;
    if (!outputPath || !*outputPath)
      return toolError("an artifact needs an output path");
    mc::CompileOptions compile;
    if (makeOptions(options, compile))
      return 1;
    compile.emit = mc::EmitKind::Artifact;
    compile.outputPath = outputPath;
    TempFile report;
    if (memoryReport) {
      if (report.create("json"))
        return 1;
      compile.memoryReportPath = report.path;
    }
    if (compileClone(program, compile, llvm::nulls()))
      return 1;
    if (memoryReport) {
      std::string json;
      if (report.read(json))
        return 1;
      *memoryReport = copyString(json);
    }
    return 0;
  });
}

int moe_program_emit(const moe_program *program,
                     const moe_compile_options *options, moe_emit_kind kind,
                     char **text) {
  return guarded([&] {
    if (checkProgram(program))
      return 1;
    if (!text)
      return fail("moe-compile: error: moe_program_emit: text is NULL");
    mc::CompileOptions compile;
    if (makeOptions(options, compile))
      return 1;
    switch (kind) {
    case MOE_EMIT_MLIR:
      compile.emit = mc::EmitKind::Mlir;
      break;
    case MOE_EMIT_LLVM:
      compile.emit = mc::EmitKind::Llvm;
      break;
    case MOE_EMIT_PTX:
      if (!compile.target.cuda)
        return toolError("PTX needs a CUDA target (cuda:sm_90)");
      compile.emit = mc::EmitKind::Ptx;
      break;
    default:
      return toolError("unknown emit kind " +
                       std::to_string(static_cast<int>(kind)));
    }
    std::string printed;
    llvm::raw_string_ostream os(printed);
    if (compileClone(program, compile, os))
      return 1;
    os.flush();
    *text = copyString(printed);
    return 0;
  });
}

int moe_program_memory_report(const moe_program *program,
                              const moe_compile_options *options,
                              char **json) {
  return guarded([&] {
    if (checkProgram(program))
      return 1;
    if (!json)
      return fail("moe-compile: error: moe_program_memory_report: json is "
                  "NULL");
    mc::CompileOptions compile;
    if (makeOptions(options, compile))
      return 1;
    TempFile report;
    if (report.create("json"))
      return 1;
    compile.emit = mc::EmitKind::Artifact;
    compile.memoryReportPath = report.path;
    compile.planOnly = true;
    if (compileClone(program, compile, llvm::nulls()))
      return 1;
    std::string text;
    if (report.read(text))
      return 1;
    *json = copyString(text);
    return 0;
  });
}
