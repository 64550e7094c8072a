//===- Artifact.cpp - Loading artifacts and calling their functions -------===//
//
// An artifact is a shared object made by moe-compile. moert opens it, reads
// its metadata, resolves one entry point per function, and calls them with
// memref descriptors built from moert tensors (docs/ArtifactFormat.md).
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <memory>
#include <sys/stat.h>

using namespace moert;

namespace {

const char metadataSymbol[] = "moe_artifact_metadata";
const char freeSymbol[] = "moe_artifact_free";
const char entryPrefix[] = "moe_entry_";

/// MLIR marks a memref of a global constant with this `allocated` pointer:
/// it was never allocated and must not be freed.
void *const mlirGlobalMarker = reinterpret_cast<void *>(0xdeadbeef);

/// The number of 64-bit words of a descriptor of rank `rank`.
size_t descriptorWords(int rank) { return 3 + 2 * static_cast<size_t>(rank); }

void *wordToPointer(int64_t word) {
  void *pointer;
  std::memcpy(&pointer, &word, sizeof(pointer));
  return pointer;
}

int64_t pointerToWord(const void *pointer) {
  int64_t word;
  std::memcpy(&word, &pointer, sizeof(word));
  return word;
}

int loadArtifact(const char *path, moert_artifact **out) {
  if (!path || !out) {
    setError("moert_artifact_load: NULL argument");
    return 1;
  }
  *out = nullptr;
  struct stat status;
  if (stat(path, &status) != 0) {
    setError("%s: cannot open artifact: %s", path, std::strerror(errno));
    return 1;
  }
  // dlopen searches the library path for a bare name; we mean the file.
  std::string file = std::strchr(path, '/') ? path : std::string("./") + path;
  auto artifact = std::make_unique<moert_artifact>();
  artifact->path = path;
  artifact->handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!artifact->handle) {
    const char *reason = dlerror();
    setError("%s: cannot load artifact: %s", path,
             reason ? reason : "dlopen failed");
    return 1;
  }

  auto *metadata =
      static_cast<const char *>(dlsym(artifact->handle, metadataSymbol));
  auto freeFn = reinterpret_cast<FreeFn>(dlsym(artifact->handle, freeSymbol));
  if (!metadata || !freeFn) {
    setError("%s is not a MoE-MLIR artifact: no symbol %s", path,
             metadata ? freeSymbol : metadataSymbol);
    return 1;
  }
  if (!parseMetadata(metadata, *artifact))
    return 1;
  for (moert_function &function : artifact->functions) {
    std::string symbol = entryPrefix + function.name;
    function.entry =
        reinterpret_cast<EntryFn>(dlsym(artifact->handle, symbol.c_str()));
    if (!function.entry) {
      setError("%s: the metadata declares function '%s' but there is no "
               "symbol %s",
               path, function.name.c_str(), symbol.c_str());
      return 1;
    }
    function.free = freeFn;
  }
  *out = artifact.release();
  return 0;
}

/// Checks argument `index` against the function's spec.
bool checkArgument(const moert_function &function, int index,
                   const moert_tensor *arg) {
  const char *name = function.name.c_str();
  const TensorSpec &spec = function.args[index];
  if (!arg) {
    setError("%s: argument %d is NULL", name, index);
    return false;
  }
  if (arg->dtype != spec.dtype) {
    setError("%s: argument %d has dtype %s but the function expects %s", name,
             index, moert_dtype_name(arg->dtype), moert_dtype_name(spec.dtype));
    return false;
  }
  if (arg->rank != spec.rank) {
    setError("%s: argument %d has rank %d (shape %s) but the function "
             "expects rank %d (%s)",
             name, index, arg->rank, formatShape(arg->rank, arg->dims).c_str(),
             spec.rank, formatShape(spec.rank, spec.dims).c_str());
    return false;
  }
  for (int d = 0; d < spec.rank; ++d) {
    if (spec.dims[d] != MOERT_DYNAMIC && spec.dims[d] != arg->dims[d]) {
      setError("%s: argument %d has shape %s but the function expects %s "
               "(dimension %d)",
               name, index, formatShape(arg->rank, arg->dims).c_str(),
               formatShape(spec.rank, spec.dims).c_str(), d);
      return false;
    }
  }
  return true;
}

/// Copies a strided view into a dense row-major buffer, walking the view in
/// row-major order. Any strides work: zero (broadcast), negative, gapped.
void copyStrided(char *dest, const char *base, int64_t offset, int rank,
                 const int64_t *sizes, const int64_t *strides,
                 size_t elementSize) {
  const char *start = base + offset * static_cast<int64_t>(elementSize);
  if (rank == 0) {
    std::memcpy(dest, start, elementSize);
    return;
  }
  int64_t index[MOERT_MAX_RANK] = {};
  int64_t inner = sizes[rank - 1], innerStride = strides[rank - 1];
  while (true) {
    int64_t outer = 0;
    for (int d = 0; d + 1 < rank; ++d)
      outer += index[d] * strides[d];
    const char *row = start + outer * static_cast<int64_t>(elementSize);
    if (innerStride == 1) { // A contiguous row: one copy.
      std::memcpy(dest, row, inner * elementSize);
      dest += inner * elementSize;
    } else {
      for (int64_t i = 0; i < inner; ++i, dest += elementSize)
        std::memcpy(dest,
                    row + i * innerStride * static_cast<int64_t>(elementSize),
                    elementSize);
    }
    // Advance the outer index like an odometer.
    int d = rank - 2;
    for (; d >= 0; --d) {
      if (++index[d] < sizes[d])
        break;
      index[d] = 0;
    }
    if (d < 0)
      return;
  }
}

struct TensorDeleter {
  void operator()(moert_tensor *tensor) const { moert_tensor_free(tensor); }
};
using TensorPtr = std::unique_ptr<moert_tensor, TensorDeleter>;

/// Frees the result memory of one call when it goes out of scope, however
/// the call ends: each distinct `allocated` pointer once, never one that an
/// argument owns or an MLIR global constant.
class ResultMemory {
public:
  ResultMemory(FreeFn freeFn, std::vector<const void *> argPointers,
               size_t numResults)
      : freeFn(freeFn), argPointers(std::move(argPointers)) {
    toFree.reserve(numResults); // So that add() never allocates.
  }
  ResultMemory(const ResultMemory &) = delete;
  ResultMemory &operator=(const ResultMemory &) = delete;

  void add(void *allocated) {
    auto seen = [&](const std::vector<const void *> &list) {
      for (const void *pointer : list)
        if (pointer == allocated)
          return true;
      return false;
    };
    if (!allocated || allocated == mlirGlobalMarker || seen(argPointers) ||
        seen(toFree))
      return;
    toFree.push_back(allocated);
  }

  ~ResultMemory() {
    for (const void *pointer : toFree)
      freeFn(const_cast<void *>(pointer));
  }

private:
  FreeFn freeFn;
  std::vector<const void *> argPointers;
  std::vector<const void *> toFree;
};

int callFunction(const moert_function *function, moert_tensor *const *args,
                 int numArgs, moert_tensor **results, int numResults) {
  if (!function) {
    setError("moert_function_call: the function is NULL");
    return 1;
  }
  const char *name = function->name.c_str();
  if (results)
    for (int i = 0; i < numResults; ++i)
      results[i] = nullptr;
  int expectedArgs = static_cast<int>(function->args.size());
  int expectedResults = static_cast<int>(function->results.size());
  if (numArgs != expectedArgs) {
    setError("%s: expected %d arguments, got %d", name, expectedArgs, numArgs);
    return 1;
  }
  if (numResults != expectedResults) {
    setError("%s: the function has %d results but room for %d was given", name,
             expectedResults, numResults);
    return 1;
  }
  if ((numArgs > 0 && !args) || (numResults > 0 && !results)) {
    setError("%s: %s is NULL", name, numArgs > 0 && !args ? "args" : "results");
    return 1;
  }
  for (int i = 0; i < numArgs; ++i)
    if (!checkArgument(*function, i, args[i]))
      return 1;

  // One descriptor per argument: the tensor's buffer, offset 0, row-major.
  std::vector<std::vector<int64_t>> argDescriptors(numArgs);
  std::vector<void *> argList(numArgs);
  std::vector<const void *> argPointers(numArgs);
  for (int i = 0; i < numArgs; ++i) {
    const moert_tensor *arg = args[i];
    std::vector<int64_t> &words = argDescriptors[i];
    words.assign(descriptorWords(arg->rank), 0);
    words[0] = words[1] = pointerToWord(arg->data);
    int64_t stride = 1;
    for (int d = arg->rank - 1; d >= 0; --d) {
      words[3 + d] = arg->dims[d];
      words[3 + arg->rank + d] = stride;
      stride *= arg->dims[d];
    }
    argList[i] = words.data();
    argPointers[i] = arg->data;
  }
  size_t resultWords = 0;
  for (const TensorSpec &spec : function->results)
    resultWords += descriptorWords(spec.rank);
  std::vector<int64_t> resultBuffer(resultWords, 0);
  std::vector<TensorPtr> made(numResults);
  ResultMemory memory(function->free, std::move(argPointers), numResults);

  function->entry(argList.data(), resultBuffer.data());

  // Take ownership of all result memory first, so that it is freed even if a
  // later result is rejected.
  for (size_t at = 0, r = 0; r < function->results.size(); ++r) {
    memory.add(wordToPointer(resultBuffer[at]));
    at += descriptorWords(function->results[r].rank);
  }
  const int64_t *words = resultBuffer.data();
  for (int r = 0; r < numResults; ++r) {
    const TensorSpec &spec = function->results[r];
    const char *aligned = static_cast<const char *>(wordToPointer(words[1]));
    int64_t offset = words[2];
    const int64_t *sizes = words + 3, *strides = words + 3 + spec.rank;
    words += descriptorWords(spec.rank);
    for (int d = 0; d < spec.rank; ++d) {
      if (sizes[d] < 0) {
        setError("%s: result %d has the negative size %lld in dimension %d",
                 name, r, static_cast<long long>(sizes[d]), d);
        return 1;
      }
      if (spec.dims[d] != MOERT_DYNAMIC && spec.dims[d] != sizes[d]) {
        setError("%s: result %d has shape %s but the function declares %s "
                 "(dimension %d)",
                 name, r, formatShape(spec.rank, sizes).c_str(),
                 formatShape(spec.rank, spec.dims).c_str(), d);
        return 1;
      }
    }
    made[r].reset(moert_tensor_create(spec.dtype, spec.rank, sizes));
    if (!made[r]) {
      std::string reason = moert_last_error();
      setError("%s: result %d: %s", name, r, reason.c_str());
      return 1;
    }
    if (made[r]->numElements == 0)
      continue;
    if (!aligned) {
      setError("%s: result %d has a NULL data pointer", name, r);
      return 1;
    }
    copyStrided(static_cast<char *>(made[r]->data), aligned, offset, spec.rank,
                sizes, strides, moert_dtype_size(spec.dtype));
  }
  for (int r = 0; r < numResults; ++r)
    results[r] = made[r].release();
  return 0;
}

} // namespace

moert_artifact::~moert_artifact() {
  if (handle)
    dlclose(handle);
}

int moert_artifact_load(const char *path, moert_artifact **out) {
  return guarded(1, [&] { return loadArtifact(path, out); });
}

void moert_artifact_unload(moert_artifact *artifact) { delete artifact; }

const char *moert_artifact_target(const moert_artifact *artifact) {
  return artifact ? artifact->target.c_str() : nullptr;
}

int moert_artifact_num_functions(const moert_artifact *artifact) {
  return artifact ? static_cast<int>(artifact->functions.size()) : 0;
}

const moert_function *moert_artifact_function(const moert_artifact *artifact,
                                              int index) {
  int count = moert_artifact_num_functions(artifact);
  if (index < 0 || index >= count) {
    setError("function index %d is out of range (the artifact has %d)", index,
             count);
    return nullptr;
  }
  return &artifact->functions[index];
}

const moert_function *moert_artifact_lookup(const moert_artifact *artifact,
                                            const char *name) {
  if (!artifact || !name) {
    setError("moert_artifact_lookup: NULL argument");
    return nullptr;
  }
  return guarded<const moert_function *>(
      nullptr, [&]() -> const moert_function * {
        std::string available;
        for (const moert_function &function : artifact->functions) {
          if (function.name == name)
            return &function;
          available += (available.empty() ? "" : ", ") + function.name;
        }
        setError("%s: no function '%s' (the functions are: %s)",
                 artifact->path.c_str(), name,
                 available.empty() ? "none" : available.c_str());
        return nullptr;
      });
}

const char *moert_function_name(const moert_function *function) {
  return function ? function->name.c_str() : nullptr;
}

int moert_function_num_args(const moert_function *function) {
  return function ? static_cast<int>(function->args.size()) : 0;
}

int moert_function_num_results(const moert_function *function) {
  return function ? static_cast<int>(function->results.size()) : 0;
}

namespace {
int getSpec(const moert_function *function, bool isArg, int index,
            moert_dtype *dtype, int *rank, int64_t *dims) {
  if (!function) {
    setError("moert_function_%s_spec: the function is NULL",
             isArg ? "arg" : "result");
    return 1;
  }
  const auto &specs = isArg ? function->args : function->results;
  if (index < 0 || index >= static_cast<int>(specs.size())) {
    setError("%s: %s index %d is out of range (it has %zu)",
             function->name.c_str(), isArg ? "argument" : "result", index,
             specs.size());
    return 1;
  }
  const TensorSpec &spec = specs[index];
  if (dtype)
    *dtype = spec.dtype;
  if (rank)
    *rank = spec.rank;
  if (dims)
    std::memcpy(dims, spec.dims, sizeof(int64_t) * spec.rank);
  return 0;
}
} // namespace

int moert_function_arg_spec(const moert_function *function, int index,
                            moert_dtype *dtype, int *rank, int64_t *dims) {
  return getSpec(function, true, index, dtype, rank, dims);
}

int moert_function_result_spec(const moert_function *function, int index,
                               moert_dtype *dtype, int *rank, int64_t *dims) {
  return getSpec(function, false, index, dtype, rank, dims);
}

const char *moert_function_attr(const moert_function *function,
                                const char *key) {
  if (!function || !key)
    return nullptr;
  for (const auto &attr : function->attrs)
    if (attr.first == key)
      return attr.second.c_str();
  return nullptr;
}

int moert_function_call(const moert_function *function,
                        moert_tensor *const *args, int num_args,
                        moert_tensor **results, int num_results) {
  return guarded(1, [&] {
    return callFunction(function, args, num_args, results, num_results);
  });
}
