//===- CompilerModule.cpp - moe_mlir._compiler, over the C API ------------===//
//
// The compiler half of the Python bindings: programs from IR text or layer
// specs, artifacts, emitted text and memory reports, all through
// include/moe-mlir-c/Compiler.h. Errors are moe_mlir._compiler.Error with
// the messages the tools print.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir-c/Compiler.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace nb = nanobind;

namespace {

struct CompilerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(int status) {
  if (status)
    throw CompilerError(moe_compiler_last_error());
}

/// Takes ownership of a string the C API returned.
std::string take(char *text) {
  std::unique_ptr<char, void (*)(char *)> owned(text, moe_string_free);
  return text ? std::string(text) : std::string();
}

/// The compile options as keyword arguments; the strings live as long as
/// this object.
struct Options {
  std::string target = "cpu";
  int optLevel = 3;
  bool fusion = true;
  int64_t expertsPerChunk = 0;
  std::optional<std::string> cudaTile, cudaPath, cudaCluster;
  bool backward = false;

  moe_compile_options get() const {
    moe_compile_options options;
    moe_compile_options_init(&options);
    options.target = target.c_str();
    options.opt_level = optLevel;
    options.fusion = fusion ? 1 : 0;
    options.experts_per_chunk = expertsPerChunk;
    options.cuda_tile = cudaTile ? cudaTile->c_str() : nullptr;
    options.cuda_path = cudaPath ? cudaPath->c_str() : nullptr;
    options.backward = backward ? 1 : 0;
    options.cuda_cluster = cudaCluster ? cudaCluster->c_str() : nullptr;
    return options;
  }
};

class Program {
public:
  static Program parse(const std::string &text,
                       const std::string &sourceName) {
    moe_program *raw = nullptr;
    check(moe_program_parse(text.c_str(), sourceName.c_str(), &raw));
    return Program(raw);
  }

  static Program fromLayerSpec(const std::string &spec) {
    moe_program *raw = nullptr;
    check(moe_program_from_layer_spec(spec.c_str(), &raw));
    return Program(raw);
  }

  std::string str() const {
    char *text = nullptr;
    check(moe_program_print(program.get(), &text));
    return take(text);
  }

  /// Writes the artifact; returns the memory plan (JSON) if asked for.
  std::optional<std::string> compile(const std::string &path,
                                     const Options &options,
                                     bool memoryReport) const {
    moe_compile_options raw = options.get();
    char *report = nullptr;
    int status;
    {
      nb::gil_scoped_release release;
      status = moe_program_compile(program.get(), &raw, path.c_str(),
                                   memoryReport ? &report : nullptr);
    }
    check(status);
    if (!memoryReport)
      return std::nullopt;
    return take(report);
  }

  std::string emit(const std::string &kind, const Options &options) const {
    moe_emit_kind emitKind;
    if (kind == "mlir")
      emitKind = MOE_EMIT_MLIR;
    else if (kind == "llvm")
      emitKind = MOE_EMIT_LLVM;
    else if (kind == "ptx")
      emitKind = MOE_EMIT_PTX;
    else
      throw CompilerError("emit: unknown kind '" + kind +
                          "' (mlir, llvm or ptx)");
    moe_compile_options raw = options.get();
    char *text = nullptr;
    int status;
    {
      nb::gil_scoped_release release;
      status = moe_program_emit(program.get(), &raw, emitKind, &text);
    }
    check(status);
    return take(text);
  }

  std::string memoryReport(const Options &options) const {
    moe_compile_options raw = options.get();
    char *json = nullptr;
    int status;
    {
      nb::gil_scoped_release release;
      status = moe_program_memory_report(program.get(), &raw, &json);
    }
    check(status);
    return take(json);
  }

private:
  explicit Program(moe_program *raw)
      : program(raw, moe_program_free) {}
  std::shared_ptr<moe_program> program;
};

} // namespace

NB_MODULE(_compiler, m) {
  m.doc() = "The MoE-MLIR compiler: moe programs to artifacts";
  nb::exception<CompilerError>(m, "Error", PyExc_ValueError);
  // Caches (moe_mlir.torch's compiled functions) still hold objects when
  // the interpreter exits; that is not a leak worth a report.
  nb::set_leak_warnings(false);

  nb::class_<Options>(m, "Options")
      .def(nb::init<>())
      .def_rw("target", &Options::target)
      .def_rw("opt_level", &Options::optLevel)
      .def_rw("fusion", &Options::fusion)
      .def_rw("experts_per_chunk", &Options::expertsPerChunk)
      .def_rw("cuda_tile", &Options::cudaTile)
      .def_rw("cuda_path", &Options::cudaPath)
      .def_rw("backward", &Options::backward)
      .def_rw("cuda_cluster", &Options::cudaCluster);

  nb::class_<Program>(m, "Program")
      .def_static("parse", &Program::parse, nb::arg("text"),
                  nb::arg("source_name") = "<string>")
      .def_static("from_layer_spec", &Program::fromLayerSpec, nb::arg("spec"))
      .def("__str__", &Program::str)
      .def("compile", &Program::compile, nb::arg("path"), nb::arg("options"),
           nb::arg("memory_report") = false)
      .def("emit", &Program::emit, nb::arg("kind"), nb::arg("options"))
      .def("memory_report", &Program::memoryReport, nb::arg("options"));

  m.def(
      "canonical_layer_spec",
      [](const std::string &spec) {
        char *canonical = nullptr;
        check(moe_layer_spec_canonical(spec.c_str(), &canonical));
        return take(canonical);
      },
      nb::arg("spec"), "Every key of a layer spec, in a fixed order");
}
