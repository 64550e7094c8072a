//===- moe-fuzz-artifact-metadata.cpp - Fuzz the artifact metadata parser -===//
//
// The input is the text an artifact exports as moe_artifact_metadata
// (docs/ArtifactFormat.md; up to the first NUL, as the runtime reads the C
// string). moert::parseMetadata (runtime/src/Metadata.cpp) may refuse it with
// a message naming the line; metadata it accepts must describe what the
// runtime's C API then reports: every function with as many arg/result
// specs as it declares, ranks in range, dims non-negative or dynamic, names
// unique, and the accessors agree with it.
//
// TODO(#9): the artifact loader's validation before dlopen (size, format, a
// checksum written by moe-compile) is not on main yet. When it lands in
// runtime/src/Artifact.cpp, fuzz it on arbitrary bytes in
// fuzzArtifactBytes() below (an input whose first line is not
// "moe-artifact" is a good split), and never dlopen fuzzed bytes.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace {

constexpr size_t kMaxInputBytes = 64 * 1024;

[[noreturn]] void fail(const std::string &what, const std::string &input) {
  std::fprintf(stderr, "==moe-fuzz== FINDING: %s\nmetadata:\n%s\n",
               what.c_str(), input.c_str());
  std::fflush(stderr);
  std::abort();
}

/// TODO(#9): the pre-dlopen validation of an artifact file, once it exists.
void fuzzArtifactBytes(const uint8_t *, size_t) {}

void checkSpecs(const moert_function *function, bool results,
                const std::string &input) {
  int count = results ? moert_function_num_results(function)
                      : moert_function_num_args(function);
  if (count < 0)
    fail("a function has a negative argument or result count", input);
  for (int i = 0; i <= count; ++i) {
    moert_dtype dtype;
    int rank = -1;
    int64_t dims[MOERT_MAX_RANK];
    int status = results ? moert_function_result_spec(function, i, &dtype,
                                                      &rank, dims)
                         : moert_function_arg_spec(function, i, &dtype, &rank,
                                                   dims);
    if (i == count) { // One past the end is an error, not a read.
      if (status == 0)
        fail("a spec one past the last index was returned", input);
      continue;
    }
    if (status != 0)
      fail(std::string("a declared spec cannot be read: ") +
               moert_last_error(),
           input);
    if (rank < 0 || rank > MOERT_MAX_RANK)
      fail("a spec has rank " + std::to_string(rank), input);
    if (!moert_dtype_name(dtype) || moert_dtype_size(dtype) == 0)
      fail("a spec has an invalid dtype", input);
    for (int d = 0; d < rank; ++d)
      if (dims[d] < 0 && dims[d] != MOERT_DYNAMIC)
        fail("a spec has a negative static dimension", input);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputBytes)
    return -1;
  fuzzArtifactBytes(data, size);
  std::string text(reinterpret_cast<const char *>(data), size);
  std::string input = text.c_str(); // What the runtime sees.

  moert_artifact artifact;
  artifact.path = "fuzz.so";
  if (!moert::parseMetadata(input.c_str(), artifact)) {
    const char *error = moert_last_error();
    if (!*error)
      fail("refused metadata without a message", input);
    if (std::strncmp(error, "fuzz.so: metadata", 17) != 0)
      fail(std::string("an error that does not name the artifact and the "
                       "metadata: ") +
               error,
           input);
    return 0;
  }

  // Accepted: a header and a target were there; functions are complete.
  if (artifact.target.empty())
    fail("accepted metadata without a target", input);
  if (moert_artifact_target(&artifact) != artifact.target.c_str())
    fail("moert_artifact_target disagrees with the metadata", input);
  int count = moert_artifact_num_functions(&artifact);
  if (count != static_cast<int>(artifact.functions.size()))
    fail("moert_artifact_num_functions disagrees with the metadata", input);
  std::set<std::string> names;
  for (int i = 0; i < count; ++i) {
    const moert_function *function = moert_artifact_function(&artifact, i);
    if (!function)
      fail("a declared function cannot be read", input);
    if (!names.insert(function->name).second)
      fail("two functions named '" + function->name + "' were accepted",
           input);
    if (function->name.empty())
      fail("a function without a name was accepted", input);
    if (moert_artifact_lookup(&artifact, function->name.c_str()) != function)
      fail("looking up '" + function->name + "' finds another function",
           input);
    checkSpecs(function, false, input);
    checkSpecs(function, true, input);
    std::set<std::string> keys;
    for (const auto &[key, value] : function->attrs) {
      if (!keys.insert(key).second)
        fail("a duplicate attr '" + key + "' was accepted", input);
      const char *found = moert_function_attr(function, key.c_str());
      if (!found || value != found)
        fail("moert_function_attr('" + key + "') disagrees with the metadata",
             input);
    }
  }
  if (moert_artifact_function(&artifact, count) ||
      moert_artifact_function(&artifact, -1))
    fail("a function index out of range was answered", input);
  return 0;
}
