//===- moe-fuzz-artifact-metadata.cpp - Fuzz what moert trusts in artifacts ===//
//
// Two parsers of what an artifact file brings, on every input:
//
// - The metadata text an artifact exports as moe_artifact_metadata
//   (docs/ArtifactFormat.md; the input up to its first NUL, as the runtime
//   reads the C string). moert::parseMetadata (runtime/src/Metadata.cpp) may
//   refuse it with a message naming the artifact; metadata it accepts must
//   describe what the runtime's C API then reports: every function with as
//   many arg/result specs as it declares, ranks in range, dims non-negative
//   or dynamic, names unique, and the accessors agree with it.
//
// - The checks before dlopen (runtime/src/ArtifactValidation.cpp): the input
//   as a whole artifact file, and, when its first byte is 1, the rest of it
//   sealed as moe-compile seals (so that the ELF checks behind the checksum
//   are reached too). A file they accept must be sealed and have the ELF
//   header of a shared object for this machine; a file they refuse must make
//   moert_artifact_load fail with that reason, before dlopen (fuzzed bytes
//   are never given to dlopen).
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include "moe-mlir/Runtime/ArtifactSeal.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <elf.h>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

constexpr size_t kMaxInputBytes = 64 * 1024;

[[noreturn]] void fail(const std::string &what, const std::string &input) {
  std::fprintf(stderr, "==moe-fuzz== FINDING: %s\ninput:\n%s\n",
               what.c_str(), input.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string tempPath() {
  const char *dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/moe-fuzz-artifact-" +
         std::to_string(getpid()) + ".so";
}

const std::string &artifactPath() {
  static const std::string path = tempPath();
  return path;
}

void removeArtifact() { std::remove(artifactPath().c_str()); }

void fuzzArtifactFile(const unsigned char *bytes, size_t size) {
  std::string describe = "artifact file of " + std::to_string(size) + " bytes";
  std::string problem = moert::validateArtifactBytes(bytes, size);
  if (problem.empty()) {
    // Accepted: check independently what acceptance promises.
    Elf64_Ehdr header;
    if (!moert::seal::checkSealed(bytes, size).empty() ||
        size < sizeof(header) + moert::seal::kTrailerSize)
      fail("an unsealed file passed the artifact checks", describe);
    std::memcpy(&header, bytes, sizeof(header));
    if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
        header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_type != ET_DYN)
      fail("a file that is no 64-bit ELF shared object passed the artifact "
           "checks",
           describe);
    return; // Never dlopen fuzzed bytes.
  }
  // Refused: loading the file fails with that reason, before dlopen.
  const std::string &path = artifactPath();
  FILE *file = std::fopen(path.c_str(), "wb");
  if (!file)
    fail("cannot write the temporary file " + path, describe);
  bool written = std::fwrite(bytes, 1, size, file) == size;
  if (std::fclose(file) != 0 || !written)
    fail("cannot write the temporary file " + path, describe);
  moert_artifact *artifact = nullptr;
  if (moert_artifact_load(path.c_str(), &artifact) == 0 || artifact)
    fail("moert_artifact_load accepted a file the artifact checks refuse (" +
             problem + ")",
         describe);
  std::string error = moert_last_error();
  if (error.find(problem) == std::string::npos)
    fail("moert_artifact_load refused the file for another reason: " + error +
             " (the checks say: " + problem + ")",
         describe);
}

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

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  std::atexit(removeArtifact);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputBytes)
    return -1;
  // The input as an artifact file, and sealed.
  fuzzArtifactFile(data, size);
  if (size > 0 && data[0] == 1) {
    std::vector<unsigned char> sealed(data + 1, data + size);
    std::string trailer = moert::seal::makeTrailer(
        sealed.size(), moert::seal::fnv1a(sealed.data(), sealed.size()));
    sealed.insert(sealed.end(), trailer.begin(), trailer.end());
    fuzzArtifactFile(sealed.data(), sealed.size());
  }

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
