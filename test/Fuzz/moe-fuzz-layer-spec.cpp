//===- moe-fuzz-layer-spec.cpp - Fuzz layer specs and their programs ------===//
//
// The input is the text of a layer spec (`moe-run --layer SPEC`). parseLayerSpec
// (lib/Layer) may refuse it with a message; a spec it accepts must
//   - print (formatLayerSpec) to text that parses back to the same spec, and
//   - make (emitLayerProgram) a program that MLIR parses and verifies.
// Anything else is a finding: a spec the parser accepts is one the tools
// promise to compile, so a program that does not verify (the tools then
// blame the spec) is a bug of the spec checks or of the program text.
//
//===----------------------------------------------------------------------===//

#include "test/Fuzz/FuzzMlir.h"
#include "test/Fuzz/FuzzMutate.h"

#include "lib/Layer/LayerProgram.h"
#include "lib/Layer/LayerSpec.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

using moefuzz::fail;
using namespace moe::layer;

namespace {

constexpr size_t kMaxInputBytes = 4096;

bool sameSpec(const LayerSpec &a, const LayerSpec &b) {
  // Doubles compare by value: the shortest text round-trips exactly.
  return a.tokens == b.tokens && a.hidden == b.hidden && a.ffn == b.ffn &&
         a.experts == b.experts && a.topK == b.topK && a.router == b.router &&
         a.bias == b.bias && a.capacity == b.capacity &&
         a.normalize == b.normalize && a.scaling == b.scaling &&
         a.activation == b.activation && a.dtype == b.dtype &&
         a.dynamicTokens == b.dynamicTokens && a.nGroup == b.nGroup &&
         a.topkGroup == b.topkGroup && a.name == b.name;
}

} // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size,
                                          size_t maxSize, unsigned seed) {
  return moefuzz::mutateText(data, size, maxSize, seed);
}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  moefuzz::initialize();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputBytes)
    return -1;
  std::string text(reinterpret_cast<const char *>(data), size);

  LayerSpec spec;
  std::string error;
  if (!parseLayerSpec(text, spec, error)) {
    // A refusal says why, in one line.
    if (error.empty())
      fail("parseLayerSpec refused a spec without a message", "spec: " + text);
    if (error.find('\n') != std::string::npos)
      fail("parseLayerSpec's message is more than one line",
           "spec: " + text + "\nmessage: " + error);
    return 0;
  }

  // Invariants of an accepted spec (LayerSpec.h).
  for (int64_t dim : {spec.tokens, spec.hidden, spec.ffn, spec.experts,
                      spec.topK})
    if (dim < 1 || dim > kMaxLayerDim)
      fail("an accepted spec has a dimension out of range",
           "spec: " + text + "\ncanonical: " + formatLayerSpec(spec));
  if (spec.topK > spec.experts || !std::isfinite(spec.capacity) ||
      spec.capacity < 0 || !std::isfinite(spec.scaling) || spec.scaling <= 0)
    fail("an accepted spec breaks a rule of its own parser",
         "spec: " + text + "\ncanonical: " + formatLayerSpec(spec));

  // The canonical text parses back to the same spec.
  std::string canonical = formatLayerSpec(spec);
  LayerSpec reparsed;
  std::string reparseError;
  if (!parseLayerSpec(canonical, reparsed, reparseError))
    fail("the canonical text of an accepted spec does not parse",
         "spec: " + text + "\ncanonical: " + canonical +
             "\nerror: " + reparseError);
  if (!sameSpec(spec, reparsed))
    fail("the canonical text of a spec parses to a different spec",
         "spec: " + text + "\ncanonical: " + canonical +
             "\nreparsed: " + formatLayerSpec(reparsed));

  // Its program parses and verifies.
  std::string program = emitLayerProgram(spec);
  std::unique_ptr<mlir::MLIRContext> context = moefuzz::createContext();
  moefuzz::CapturedDiagnostics diagnostics(*context);
  if (!moefuzz::parseModule(*context, program, "layer-spec"))
    fail("the program of an accepted spec does not parse or verify",
         "spec: " + text + "\ncanonical: " + canonical + "\ndiagnostics:\n" +
             diagnostics.text() + "program:\n" + program);
  return 0;
}
