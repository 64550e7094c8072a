//===- Artifact.cpp - Loading artifacts and calling their functions -------===//
//
// An artifact is a shared object made by moe-compile. moert opens it, reads
// its metadata, resolves one entry point per function, and calls them with
// memref descriptors built from moert tensors (docs/ArtifactFormat.md).
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"
#include "CommStream.h"
#include "Internal.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

/// The host code of a CUDA artifact leaves the mgpu* functions undefined
/// for libmoert.so to provide. dlopen resolves them only from the global
/// scope, which lacks libmoert.so if it was itself opened RTLD_LOCAL (as
/// Python's ctypes does): promote it, once.
void exposeMgpuFunctions() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&moert_artifact_load), &info) &&
        info.dli_fname) {
      if (void *self =
              dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL))
        dlclose(self); // Drops the reference NOLOAD took; the promotion stays.
    }
  });
}

/// Checks that the device can run the code of a `cuda:sm_XY` target.
bool checkCudaTarget(const moert_artifact &artifact) {
  const char *path = artifact.path.c_str();
  const std::string &target = artifact.target;
  // "cuda:sm_" then the compute capability's digits, then optionally 'a'
  // (arch-specific: X.Y only) or 'f' (family: like none here).
  size_t at = 8, digits = 0;
  while (at + digits < target.size() && target[at + digits] >= '0' &&
         target[at + digits] <= '9')
    ++digits;
  std::string suffix = target.substr(std::min(at + digits, target.size()));
  if (target.compare(0, at, "cuda:sm_") != 0 || digits < 2 || digits > 4 ||
      target[at] == '0' ||
      !(suffix.empty() || suffix == "a" || suffix == "f")) {
    setError("%s: unsupported CUDA target '%s' (expected cuda:sm_XY such as "
             "cuda:sm_90 or cuda:sm_80)",
             path, target.c_str());
    return false;
  }
  int capability = std::atoi(target.substr(at, digits).c_str());
  int wantMajor = capability / 10, wantMinor = capability % 10;
  const char *arch = target.c_str() + 5; // "sm_90"

  cuda::DeviceInfo device;
  if (!cuda::enter(&device)) {
    std::string reason = moert_last_error();
    setError("%s: %s", path, reason.c_str());
    return false;
  }
  bool older = device.major < wantMajor ||
               (device.major == wantMajor && device.minor < wantMinor);
  // Why the GPU cannot run the code, if it cannot.
  std::string wanted =
      std::to_string(wantMajor) + "." + std::to_string(wantMinor);
  std::string rule;
  if (older)
    rule = ", which is older";
  else if (device.major != wantMajor)
    rule = ": " + std::string(arch) + " code runs only on compute capability " +
           wanted + " up to " + std::to_string(wantMajor) +
           ".x, not on a newer major version";
  else if (suffix == "a" && device.minor != wantMinor)
    rule = ": " + std::string(arch) + " code runs only on compute capability " +
           wanted + " exactly";
  if (rule.empty())
    return true;
  setError("%s: the artifact was compiled for %s but the GPU, %s, is "
           "sm_%d%d (compute capability %d.%d)%s; recompile with "
           "--target=cuda:sm_%d%d",
           path, arch, device.name, device.major, device.minor, device.major,
           device.minor, rule.c_str(), device.major, device.minor);
  return false;
}

/// Checks the file before dlopen, which trusts it: its size, that it is a
/// shared object for this machine, and the checksum moe-compile sealed it
/// with. A truncated file would otherwise fault inside the loader.
bool validateArtifactFile(const char *path) {
  std::unique_ptr<FILE, int (*)(FILE *)> file(std::fopen(path, "rb"),
                                              std::fclose);
  if (!file) {
    setError("%s: cannot open artifact: %s", path, std::strerror(errno));
    return false;
  }
  std::vector<unsigned char> bytes;
  unsigned char block[1 << 16];
  for (size_t got; (got = std::fread(block, 1, sizeof(block), file.get()));)
    bytes.insert(bytes.end(), block, block + got);
  if (std::ferror(file.get())) {
    setError("%s: cannot read artifact: %s", path, std::strerror(errno));
    return false;
  }
  std::string problem = validateArtifactBytes(bytes.data(), bytes.size());
  if (!problem.empty()) {
    setError("%s is not a valid artifact: %s", path, problem.c_str());
    return false;
  }
  return true;
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
  if (!validateArtifactFile(path))
    return 1;
  // dlopen searches the library path for a bare name; we mean the file.
  std::string file = std::strchr(path, '/') ? path : std::string("./") + path;
  auto artifact = std::make_unique<moert_artifact>();
  artifact->path = path;
  exposeMgpuFunctions();
  // Declared after `artifact`, so released before a failed artifact closes
  // (a CUDA artifact's destructor takes the lock itself).
  std::unique_lock<std::mutex> deviceLock(cuda::deviceMutex());
  // The global constructors of a CUDA artifact load its GPU code at dlopen,
  // through mgpuModuleLoad, which initializes the driver and reports any
  // failure as the deferred device error.
  cuda::clearDeferredError();
  artifact->handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string deviceError;
  bool deviceFailed = cuda::takeDeferredError(deviceError);
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
  if (artifact->target.compare(0, 5, "cuda:") == 0) {
    artifact->backend = MOERT_BACKEND_CUDA;
    // The driver's own failure (no libcuda.so.1, no device) or a GPU that
    // cannot run the code says more than the module load it made fail.
    if (!checkCudaTarget(*artifact))
      return 1;
  }
  if (deviceFailed) {
    setError("%s: cannot load the artifact's GPU code: %s", path,
             deviceError.c_str());
    return 1;
  }
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
    function.backend = artifact->backend;
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

/// The device buffers that a CUDA call copies its arguments to, freed when
/// it goes out of scope.
class DeviceBuffers {
public:
  DeviceBuffers(const cuda::Driver &driver, size_t count) : driver(driver) {
    pointers.reserve(count); // So that upload() never throws after allocating.
  }
  DeviceBuffers(const DeviceBuffers &) = delete;
  DeviceBuffers &operator=(const DeviceBuffers &) = delete;
  ~DeviceBuffers() {
    for (cuda::CUdeviceptr pointer : pointers)
      driver.cuMemFree(pointer);
  }

  /// Copies argument `index` to a new device buffer. NULL and an error on
  /// failure.
  void *upload(const moert_function &function, int index,
               const moert_tensor &tensor) {
    // Cannot overflow: moert_tensor_create checked it.
    size_t bytes = static_cast<size_t>(tensor.numElements) *
                   moert_dtype_size(tensor.dtype);
    cuda::CUdeviceptr pointer = 0;
    // At least a byte: every argument gets a distinct, non-NULL pointer.
    cuda::CUresult result = driver.cuMemAlloc(&pointer, bytes ? bytes : 1);
    if (result != cuda::CUDA_SUCCESS) {
      std::string call = "cuMemAlloc(" + std::to_string(bytes) + " bytes)";
      fail(function, index, call.c_str(), result);
      return nullptr;
    }
    pointers.push_back(pointer);
    if (bytes > 0 && (result = driver.cuMemcpyHtoD(
                          pointer, tensor.data, bytes)) != cuda::CUDA_SUCCESS) {
      fail(function, index, "cuMemcpyHtoD", result);
      return nullptr;
    }
    return reinterpret_cast<void *>(static_cast<uintptr_t>(pointer));
  }

private:
  static void fail(const moert_function &function, int index, const char *call,
                   cuda::CUresult result) {
    std::string prefix = "function '" + function.name + "': argument " +
                         std::to_string(index) + ": ";
    cuda::setDriverError(prefix.c_str(), call, result);
  }

  const cuda::Driver &driver;
  std::vector<cuda::CUdeviceptr> pointers;
};

/// The memref descriptors of a call's arguments and what they point to.
struct Arguments {
  std::vector<std::vector<int64_t>> descriptors;
  std::vector<void *> list;           ///< What the entry takes.
  std::vector<const void *> pointers; ///< Each argument's data.
};

/// Builds one descriptor per argument: the tensor's buffer (or, given
/// `device`, a device copy of it), offset 0, row-major.
bool prepareArguments(const moert_function &function, moert_tensor *const *args,
                      int numArgs, DeviceBuffers *device, Arguments &out) {
  out.descriptors.resize(numArgs);
  out.list.resize(numArgs);
  out.pointers.resize(numArgs);
  for (int i = 0; i < numArgs; ++i) {
    const moert_tensor *arg = args[i];
    void *data = arg->data;
    if (device && !(data = device->upload(function, i, *arg)))
      return false;
    std::vector<int64_t> &words = out.descriptors[i];
    words.assign(descriptorWords(arg->rank), 0);
    words[0] = words[1] = pointerToWord(data);
    int64_t stride = 1;
    for (int d = arg->rank - 1; d >= 0; --d) {
      words[3 + d] = arg->dims[d];
      words[3 + arg->rank + d] = stride;
      stride *= arg->dims[d];
    }
    out.list[i] = words.data();
    out.pointers[i] = data;
  }
  return true;
}

/// Frees the result memory of one run of an entry when it goes out of
/// scope, however the run ends: each distinct `allocated` pointer once,
/// never one that an argument owns or an MLIR global constant. Host memory
/// goes to the artifact's free function; device memory (of a CUDA
/// function, told apart by the driver) to cuMemFree.
class ResultMemory {
public:
  ResultMemory(const moert_function &function, const cuda::Driver *driver,
               const std::vector<const void *> &argPointers)
      : freeFn(function.free), driver(driver), argPointers(argPointers) {
    toFree.reserve(function.results.size()); // So that add() never throws.
  }
  ResultMemory(const ResultMemory &) = delete;
  ResultMemory &operator=(const ResultMemory &) = delete;

  void add(void *allocated) {
    if (!allocated || allocated == mlirGlobalMarker)
      return;
    for (const void *pointer : argPointers)
      if (pointer == allocated)
        return;
    for (const Block &block : toFree)
      if (block.pointer == allocated)
        return;
    cuda::MemoryKind kind =
        driver ? cuda::memoryKind(*driver, allocated) : cuda::MemoryKind::Host;
    toFree.push_back({allocated, kind});
  }

  /// Takes `allocated` out of what the destructor frees (its block is the
  /// caller's now); false if it is not the call's own device memory.
  bool takeOver(const void *allocated) {
    for (auto it = toFree.begin(); it != toFree.end(); ++it)
      if (it->pointer == allocated && it->kind == cuda::MemoryKind::Device) {
        toFree.erase(it);
        return true;
      }
    return false;
  }

  /// For a call that does not wait for the device: device blocks left are
  /// parked behind `stream`'s work instead of freed at once.
  void fenceOn(cuda::CUstream stream) {
    fenced = true;
    fenceStream = stream;
  }

  ~ResultMemory() {
    for (const Block &block : toFree) {
      auto device = static_cast<cuda::CUdeviceptr>(
          reinterpret_cast<uintptr_t>(block.pointer));
      if (block.kind == cuda::MemoryKind::Host)
        freeFn(block.pointer);
      else if (block.kind == cuda::MemoryKind::Device && fenced)
        cuda::parkDeviceBlock(device, fenceStream);
      else if (block.kind == cuda::MemoryKind::Device)
        cuda::releaseDeviceBlock(*driver, device);
      // Unknown: the device failed fatally; freeing either way could crash.
    }
  }

private:
  struct Block {
    void *pointer;
    cuda::MemoryKind kind;
  };
  FreeFn freeFn;
  const cuda::Driver *driver; ///< NULL for a CPU function.
  bool fenced = false;
  cuda::CUstream fenceStream = cuda::legacyStream;
  const std::vector<const void *> &argPointers;
  std::vector<Block> toFree;
};

size_t resultWords(const moert_function &function) {
  size_t words = 0;
  for (const TensorSpec &spec : function.results)
    words += descriptorWords(spec.rank);
  return words;
}

/// The stream an artifact's work goes on for one call (see setCallStream);
/// restores the artifact's own streams when the call ends.
struct CallStreamScope {
  explicit CallStreamScope(cuda::CUstream stream) {
    cuda::setCallStream(stream);
  }
  ~CallStreamScope() { cuda::clearCallStream(); }
};

/// Runs the entry once. The results' descriptors land in `resultBuffer` and
/// their memory in `memory` (even if the run fails). `afterEntry` runs
/// right after the entry returns and yields a driver status (CUDA_SUCCESS
/// for none). For a CUDA function (`driver` set) the run then waits for the
/// device and turns any failure there into an error — unless `queueOnly`
/// (a call on the caller's stream, which only queues the work): then the
/// blocks the call freed are fenced on `stream`, and a kernel that fails on
/// the device shows at the caller's next synchronization.
template <typename AfterEntry>
bool runEntry(const moert_function &function, Arguments &arguments,
              std::vector<int64_t> &resultBuffer, ResultMemory &memory,
              const cuda::Driver *driver, AfterEntry &&afterEntry,
              bool queueOnly = false,
              cuda::CUstream stream = cuda::legacyStream) {
  std::fill(resultBuffer.begin(), resultBuffer.end(), 0);
  // A CUDA artifact queues its work on one stream and leaves the waiting
  // to the runtime (moe-join-gpu-streams drops its final wait, and with it
  // the destruction of a stream it made): a call without a caller's stream
  // runs on the legacy default stream, which the waits below cover.
  std::optional<CallStreamScope> ownStream;
  if (driver) {
    cuda::clearDeferredError();
    cuda::recycleFinishedBlocks();
    if (!cuda::hasCallStream())
      ownStream.emplace(cuda::legacyStream);
  }
  collectives::clearDeferredError();
  // The compute lane of the trace: the function's code between its calls
  // of the runtime's collectives (on CUDA the device's, between events on
  // the call's stream: the host only queues the work).
  if (driver)
    ncclcollectives::beginCall();
  else
    comm::beginCompute();
  function.entry(arguments.list.data(), resultBuffer.data());
  // The CUDA collectives ordered the compute stream on the device; their
  // completion (or a peer's failure) is known only here.
  if (driver)
    ncclcollectives::drain();
  else
    comm::endCompute("compute");
  cuda::CUresult status = afterEntry();

  // Take ownership of all result memory first, so that it is freed even if
  // the run or a later result is rejected.
  for (size_t at = 0, r = 0; r < function.results.size(); ++r) {
    memory.add(wordToPointer(resultBuffer[at]));
    at += descriptorWords(function.results[r].rank);
  }
  // A collective that failed left its buffers unwritten: the results are
  // not to be trusted.
  std::string collectiveError;
  if (collectives::takeDeferredError(collectiveError)) {
    setError("function '%s': a collective failed: %s", function.name.c_str(),
             collectiveError.c_str());
    return false;
  }
  if (!driver)
    return true;
  const char *call = "cuEventRecord";
  if (status == cuda::CUDA_SUCCESS && queueOnly) {
    cuda::fenceParkedBlocks(stream);
  } else if (status == cuda::CUDA_SUCCESS) {
    status = driver->cuCtxSynchronize();
    call = "cuCtxSynchronize";
    // The device is done with what the call freed: it can be reused.
    cuda::recycleDeviceBlocks();
  }
  // The first failure the artifact's mgpu* calls saw comes first.
  std::string deferred;
  if (cuda::takeDeferredError(deferred)) {
    setError("function '%s': a kernel failed: %s", function.name.c_str(),
             deferred.c_str());
    return false;
  }
  if (status != cuda::CUDA_SUCCESS) {
    std::string prefix = "function '" + function.name + "': a kernel failed: ";
    cuda::setDriverError(prefix.c_str(), call, status);
    return false;
  }
  return true;
}

/// Copies a strided view of device memory into the dense `dest`: the span
/// of memory the view touches comes over in one copy (straight into `dest`
/// if the view is dense and row-major), then copyStrided picks it apart.
bool copyFromDevice(const cuda::Driver &driver, const moert_function &function,
                    int index, char *dest, const char *aligned, int64_t offset,
                    int rank, const int64_t *sizes, const int64_t *strides,
                    size_t elementSize, int64_t numElements) {
  // The lowest and highest element the view touches (all sizes are >= 1).
  int64_t low = offset, high = offset, span, bytes;
  bool rowMajor = true;
  int64_t dense = 1;
  bool overflow = false;
  for (int d = rank - 1; d >= 0; --d) {
    int64_t extent;
    overflow |= __builtin_mul_overflow(sizes[d] - 1, strides[d], &extent);
    overflow |= extent < 0 ? __builtin_add_overflow(low, extent, &low)
                           : __builtin_add_overflow(high, extent, &high);
    if (sizes[d] != 1 && strides[d] != dense)
      rowMajor = false;
    dense *= sizes[d];
  }
  overflow |=
      __builtin_sub_overflow(high, low, &span) ||
      __builtin_add_overflow(span, 1, &span) ||
      __builtin_mul_overflow(span, static_cast<int64_t>(elementSize), &bytes);
  if (overflow) {
    setError("function '%s': result %d has a layout whose extent overflows "
             "(offset %lld)",
             function.name.c_str(), index, static_cast<long long>(offset));
    return false;
  }
  // Unsigned arithmetic: `low` may be negative with negative strides.
  cuda::CUdeviceptr source =
      static_cast<cuda::CUdeviceptr>(reinterpret_cast<uintptr_t>(aligned)) +
      static_cast<cuda::CUdeviceptr>(low) * elementSize;
  cuda::CUresult result;
  if (rowMajor) { // Then low == offset and span == numElements.
    result = driver.cuMemcpyDtoH(
        dest, source, static_cast<size_t>(numElements) * elementSize);
  } else {
    std::vector<char> staging(static_cast<size_t>(bytes));
    result = driver.cuMemcpyDtoH(staging.data(), source, staging.size());
    if (result == cuda::CUDA_SUCCESS)
      copyStrided(dest, staging.data(), offset - low, rank, sizes, strides,
                  elementSize);
  }
  if (result != cuda::CUDA_SUCCESS) {
    std::string prefix = "function '" + function.name + "': result " +
                         std::to_string(index) + ": ";
    cuda::setDriverError(prefix.c_str(), "cuMemcpyDtoH", result);
    return false;
  }
  return true;
}

/// Checks the results that the entry described in `resultBuffer` against
/// the function's specs and copies each into a new tensor of `made`.
bool copyResults(const moert_function &function, const cuda::Driver *driver,
                 const std::vector<int64_t> &resultBuffer,
                 std::vector<TensorPtr> &made) {
  const char *name = function.name.c_str();
  const int64_t *words = resultBuffer.data();
  for (size_t r = 0; r < function.results.size(); ++r) {
    const TensorSpec &spec = function.results[r];
    const char *aligned = static_cast<const char *>(wordToPointer(words[1]));
    int64_t offset = words[2];
    const int64_t *sizes = words + 3, *strides = words + 3 + spec.rank;
    words += descriptorWords(spec.rank);
    for (int d = 0; d < spec.rank; ++d) {
      if (sizes[d] < 0) {
        setError("%s: result %zu has the negative size %lld in dimension %d",
                 name, r, static_cast<long long>(sizes[d]), d);
        return false;
      }
      if (spec.dims[d] != MOERT_DYNAMIC && spec.dims[d] != sizes[d]) {
        setError("%s: result %zu has shape %s but the function declares %s "
                 "(dimension %d)",
                 name, r, formatShape(spec.rank, sizes).c_str(),
                 formatShape(spec.rank, spec.dims).c_str(), d);
        return false;
      }
    }
    made[r].reset(moert_tensor_create(spec.dtype, spec.rank, sizes));
    if (!made[r]) {
      std::string reason = moert_last_error();
      setError("%s: result %zu: %s", name, r, reason.c_str());
      return false;
    }
    if (made[r]->numElements == 0)
      continue;
    if (!aligned) {
      setError("%s: result %zu has a NULL data pointer", name, r);
      return false;
    }
    char *dest = static_cast<char *>(made[r]->data);
    size_t elementSize = moert_dtype_size(spec.dtype);
    cuda::MemoryKind kind =
        driver ? cuda::memoryKind(*driver, aligned) : cuda::MemoryKind::Host;
    if (kind == cuda::MemoryKind::Unknown) {
      setError("function '%s': result %zu: the CUDA driver cannot tell "
               "whether its data is in device or host memory",
               name, r);
      return false;
    }
    if (kind == cuda::MemoryKind::Device) {
      if (!copyFromDevice(*driver, function, static_cast<int>(r), dest, aligned,
                          offset, spec.rank, sizes, strides, elementSize,
                          made[r]->numElements))
        return false;
    } else {
      copyStrided(dest, aligned, offset, spec.rank, sizes, strides,
                  elementSize);
    }
  }
  return true;
}

/// Checks a call's arguments against the function. `what` names the API
/// entry for a NULL function.
bool checkArguments(const moert_function *function, moert_tensor *const *args,
                    int numArgs, const char *what) {
  if (!function) {
    setError("%s: the function is NULL", what);
    return false;
  }
  const char *name = function->name.c_str();
  int expectedArgs = static_cast<int>(function->args.size());
  if (numArgs != expectedArgs) {
    setError("%s: expected %d arguments, got %d", name, expectedArgs, numArgs);
    return false;
  }
  if (numArgs > 0 && !args) {
    setError("%s: args is NULL", name);
    return false;
  }
  for (int i = 0; i < numArgs; ++i)
    if (!checkArgument(*function, i, args[i]))
      return false;
  return true;
}

/// For a CUDA function: takes the process-wide device lock and makes the
/// device's context current on this thread. NULL (and `lock` untaken) for
/// a CPU function; false on failure.
bool enterDevice(const moert_function &function,
                 std::unique_lock<std::mutex> &lock,
                 const cuda::Driver *&driver) {
  driver = nullptr;
  if (function.backend != MOERT_BACKEND_CUDA)
    return true;
  lock = std::unique_lock<std::mutex>(cuda::deviceMutex());
  driver = cuda::enter();
  if (!driver) {
    std::string reason = moert_last_error();
    setError("function '%s': %s", function.name.c_str(), reason.c_str());
    return false;
  }
  return true;
}

int callFunction(const moert_function *function, moert_tensor *const *args,
                 int numArgs, moert_tensor **results, int numResults) {
  if (results)
    for (int i = 0; i < numResults; ++i)
      results[i] = nullptr;
  if (!checkArguments(function, args, numArgs, "moert_function_call"))
    return 1;
  const char *name = function->name.c_str();
  int expectedResults = static_cast<int>(function->results.size());
  if (numResults != expectedResults) {
    setError("%s: the function has %d results but room for %d was given", name,
             expectedResults, numResults);
    return 1;
  }
  if (numResults > 0 && !results) {
    setError("%s: results is NULL", name);
    return 1;
  }

  // Declaration order is release order, backwards: the lock outlives all
  // device memory of the call.
  std::unique_lock<std::mutex> deviceLock;
  const cuda::Driver *driver;
  if (!enterDevice(*function, deviceLock, driver))
    return 1;
  std::unique_ptr<DeviceBuffers> device;
  if (driver)
    device = std::make_unique<DeviceBuffers>(*driver, numArgs);
  Arguments arguments;
  if (!prepareArguments(*function, args, numArgs, device.get(), arguments))
    return 1;
  std::vector<int64_t> resultBuffer(resultWords(*function), 0);
  std::vector<TensorPtr> made(numResults);
  ResultMemory memory(*function, driver, arguments.pointers);
  if (!runEntry(*function, arguments, resultBuffer, memory, driver,
                [] { return cuda::CUDA_SUCCESS; }) ||
      !copyResults(*function, driver, resultBuffer, made))
    return 1;
  for (int r = 0; r < numResults; ++r)
    results[r] = made[r].release();
  return 0;
}

/// Wraps device tensors as moert tensors (no copy), so that the host-side
/// checks of moert_function_call apply to them unchanged.
bool wrapDeviceTensors(const moert_function &function,
                       const moert_device_tensor *tensors, int count,
                       const char *what, std::vector<TensorPtr> &out) {
  for (int i = 0; i < count; ++i) {
    const moert_device_tensor &tensor = tensors[i];
    if (!isValidDType(tensor.dtype) || tensor.rank < 0 ||
        tensor.rank > MOERT_MAX_RANK || !tensor.data) {
      setError("%s: %s %d: %s", function.name.c_str(), what, i,
               !tensor.data ? "its data is NULL"
                            : "invalid dtype or rank");
      return false;
    }
    out.emplace_back(moert_tensor_wrap(tensor.dtype, tensor.rank, tensor.dims,
                                       tensor.data));
    if (!out.back()) {
      std::string reason = moert_last_error();
      setError("%s: %s %d: %s", function.name.c_str(), what, i,
               reason.c_str());
      return false;
    }
  }
  return true;
}

/// Checks what the caller gave for each result against the function's
/// result specs (dtype, rank, static dimensions).
bool checkDeviceResults(const moert_function &function,
                        const std::vector<TensorPtr> &results) {
  const char *name = function.name.c_str();
  for (size_t r = 0; r < results.size(); ++r) {
    const TensorSpec &spec = function.results[r];
    const moert_tensor &given = *results[r];
    bool same = given.dtype == spec.dtype && given.rank == spec.rank;
    for (int d = 0; same && d < spec.rank; ++d)
      same = spec.dims[d] == MOERT_DYNAMIC || spec.dims[d] == given.dims[d];
    if (!same) {
      setError("%s: result %zu was given as %s%s but the function returns "
               "%s%s",
               name, r, moert_dtype_name(given.dtype),
               formatShape(given.rank, given.dims).c_str(),
               moert_dtype_name(spec.dtype),
               formatShape(spec.rank, spec.dims).c_str());
      return false;
    }
  }
  return true;
}

/// Copies each result the entry described into the caller's device buffer
/// on `stream`, after checking its actual shape and that it is dense.
bool copyResultsOnDevice(const moert_function &function,
                         const cuda::Driver &driver,
                         const std::vector<int64_t> &resultBuffer,
                         const std::vector<TensorPtr> &results,
                         cuda::CUstream stream) {
  const char *name = function.name.c_str();
  const int64_t *words = resultBuffer.data();
  for (size_t r = 0; r < results.size(); ++r) {
    const moert_tensor &dest = *results[r];
    const char *aligned = static_cast<const char *>(wordToPointer(words[1]));
    int64_t offset = words[2];
    const int64_t *sizes = words + 3, *strides = words + 3 + dest.rank;
    words += descriptorWords(dest.rank);
    int64_t dense = 1;
    for (int d = dest.rank - 1; d >= 0; --d) {
      if (sizes[d] != dest.dims[d]) {
        setError("%s: result %zu has shape %s but its buffer is %s", name, r,
                 formatShape(dest.rank, sizes).c_str(),
                 formatShape(dest.rank, dest.dims).c_str());
        return false;
      }
      if (sizes[d] != 1 && strides[d] != dense) {
        setError("%s: result %zu is not dense and row-major", name, r);
        return false;
      }
      dense *= sizes[d];
    }
    if (dense == 0)
      continue;
    size_t bytes = static_cast<size_t>(dense) * moert_dtype_size(dest.dtype);
    cuda::CUdeviceptr source =
        static_cast<cuda::CUdeviceptr>(reinterpret_cast<uintptr_t>(aligned)) +
        static_cast<cuda::CUdeviceptr>(offset) * moert_dtype_size(dest.dtype);
    cuda::CUresult status = driver.cuMemcpyAsync(
        static_cast<cuda::CUdeviceptr>(reinterpret_cast<uintptr_t>(dest.data)),
        source, bytes, stream);
    if (status != cuda::CUDA_SUCCESS) {
      std::string prefix = "function '" + function.name + "': result " +
                           std::to_string(r) + ": ";
      cuda::setDriverError(prefix.c_str(), "cuMemcpyAsync", status);
      return false;
    }
  }
  cuda::CUresult status = driver.cuStreamSynchronize(stream);
  if (status != cuda::CUDA_SUCCESS) {
    std::string prefix = "function '" + function.name + "': ";
    cuda::setDriverError(prefix.c_str(), "cuStreamSynchronize", status);
    return false;
  }
  return true;
}

/// Runs a CUDA function once on the caller's device buffers and stream:
/// the checks both forms of moert_function_call_device share, then
/// `checkResults()` (the caller's result buffers, where there are any),
/// then the entry; `finish(resultBuffer, memory, driver, stream)` takes the
/// results (copies them, or hands them over) before their memory is freed.
template <typename CheckResults, typename Finish>
int runOnCallerDevice(const moert_function *function, const char *what,
                      const moert_device_tensor *args, int numArgs,
                      int numResults, bool resultsGiven, void *stream,
                      bool queueOnly, CheckResults &&checkResults,
                      Finish &&finish) {
  if (!function) {
    setError("%s: the function is NULL", what);
    return 1;
  }
  const char *name = function->name.c_str();
  int expectedResults = static_cast<int>(function->results.size());
  if (numResults != expectedResults) {
    setError("%s: the function has %d results but %d buffers were given",
             name, expectedResults, numResults);
    return 1;
  }
  if ((numArgs > 0 && !args) || (numResults > 0 && !resultsGiven)) {
    setError("%s: %s is NULL", name, !resultsGiven ? "results" : "args");
    return 1;
  }
  std::vector<TensorPtr> wrappedArgs;
  if (numArgs < 0 || numArgs != static_cast<int>(function->args.size())) {
    setError("%s: expected %zu arguments, got %d", name,
             function->args.size(), numArgs);
    return 1;
  }
  if (!wrapDeviceTensors(*function, args, numArgs, "argument", wrappedArgs))
    return 1;
  std::vector<moert_tensor *> argList;
  for (TensorPtr &tensor : wrappedArgs)
    argList.push_back(tensor.get());
  if (!checkArguments(function, argList.data(), numArgs, what) ||
      !checkResults())
    return 1;
  // After the checks, so that they are testable without a GPU.
  if (function->backend != MOERT_BACKEND_CUDA) {
    setError("%s: a CPU function takes host tensors: call it with "
             "moert_function_call",
             name);
    return 1;
  }

  std::unique_lock<std::mutex> deviceLock;
  const cuda::Driver *driver;
  if (!enterDevice(*function, deviceLock, driver))
    return 1;
  auto callStream = static_cast<cuda::CUstream>(stream);
  CallStreamScope streamScope(callStream);
  // MOERT_WAIT_FOR_DEVICE=1 makes every call wait (as CUDA_LAUNCH_BLOCKING
  // does): a failing kernel then shows in the call that launched it.
  if (const char *wait = std::getenv("MOERT_WAIT_FOR_DEVICE"))
    queueOnly = queueOnly && std::strcmp(wait, "1") != 0;
  // The arguments' device pointers as they are: prepareArguments without
  // DeviceBuffers takes each tensor's data.
  Arguments arguments;
  if (!prepareArguments(*function, argList.data(), numArgs, nullptr,
                        arguments))
    return 1;
  std::vector<int64_t> resultBuffer(resultWords(*function), 0);
  ResultMemory memory(*function, driver, arguments.pointers);
  if (queueOnly)
    memory.fenceOn(callStream);
  if (!runEntry(*function, arguments, resultBuffer, memory, driver,
                [] { return cuda::CUDA_SUCCESS; }, queueOnly, callStream) ||
      !finish(resultBuffer, memory, *driver, callStream))
    return 1;
  return 0;
}

int callFunctionOnDevice(const moert_function *function,
                         const moert_device_tensor *args, int numArgs,
                         const moert_device_tensor *results, int numResults,
                         void *stream) {
  std::vector<TensorPtr> wrappedResults;
  return runOnCallerDevice(
      function, "moert_function_call_device", args, numArgs, numResults,
      results != nullptr, stream, /*queueOnly=*/false,
      [&] {
        return wrapDeviceTensors(*function, results, numResults, "result",
                                 wrappedResults) &&
               checkDeviceResults(*function, wrappedResults);
      },
      [&](const std::vector<int64_t> &resultBuffer, ResultMemory &,
          const cuda::Driver &driver, cuda::CUstream callStream) {
        return copyResultsOnDevice(*function, driver, resultBuffer,
                                   wrappedResults, callStream);
      });
}

/// The device block behind results of moert_function_call_device_owned:
/// results that share a block share its owner, which gives the block back
/// when the last of them is released.
struct DeviceResultOwner {
  cuda::CUdeviceptr block;
  cuda::CUstream stream; ///< The call's: the block is fenced there.
  std::atomic<int> references;
};

/// Hands each result's own device memory to the caller (no copy). A result
/// whose memory the call does not own (an argument returned as it is, a
/// constant) is copied into a fresh block, so that every owner is moert's.
bool handOverResults(const moert_function &function,
                     const cuda::Driver &driver,
                     const std::vector<int64_t> &resultBuffer,
                     ResultMemory &memory, moert_device_result *results,
                     cuda::CUstream stream) {
  const char *name = function.name.c_str();
  std::vector<DeviceResultOwner *> owners;
  // On failure the caller gets nothing: what was handed over goes back.
  auto fail = [&] {
    for (DeviceResultOwner *owner : owners)
      moert_device_result_release(owner);
    for (size_t r = 0; r < function.results.size(); ++r)
      results[r].owner = nullptr;
    return false;
  };
  const int64_t *words = resultBuffer.data();
  for (size_t r = 0; r < function.results.size(); ++r) {
    int rank = function.results[r].rank;
    moert_dtype dtype = function.results[r].dtype;
    void *allocated = wordToPointer(words[0]);
    const char *aligned = static_cast<const char *>(wordToPointer(words[1]));
    int64_t offset = words[2];
    const int64_t *sizes = words + 3, *strides = words + 3 + rank;
    words += descriptorWords(rank);
    moert_device_result &out = results[r];
    out.tensor.dtype = dtype;
    out.tensor.rank = rank;
    int64_t dense = 1;
    for (int d = rank - 1; d >= 0; --d) {
      if (sizes[d] != 1 && strides[d] != dense) {
        setError("%s: result %zu is not dense and row-major", name, r);
        return fail();
      }
      out.tensor.dims[d] = sizes[d];
      dense *= sizes[d];
    }
    size_t bytes = static_cast<size_t>(dense) * moert_dtype_size(dtype);
    char *data = const_cast<char *>(aligned) +
                 offset * static_cast<int64_t>(moert_dtype_size(dtype));
    DeviceResultOwner *owner = nullptr;
    if (memory.takeOver(allocated)) {
      owner = new DeviceResultOwner{
          static_cast<cuda::CUdeviceptr>(reinterpret_cast<uintptr_t>(allocated)),
          stream, {1}};
    } else {
      for (DeviceResultOwner *earlier : owners)
        if (reinterpret_cast<void *>(earlier->block) == allocated) {
          owner = earlier;
          owner->references.fetch_add(1);
        }
    }
    if (!owner) { // Not the call's own memory: a copy the caller owns.
      void *block = cuda::allocateDeviceBlock(bytes ? bytes : 1);
      if (!block || (bytes && driver.cuMemcpyAsync(
                                  reinterpret_cast<uintptr_t>(block),
                                  reinterpret_cast<uintptr_t>(data), bytes,
                                  stream) != cuda::CUDA_SUCCESS)) {
        setError("%s: result %zu: cannot copy it into a buffer of its own "
                 "(%zu bytes)",
                 name, r, bytes);
        return fail();
      }
      owner = new DeviceResultOwner{reinterpret_cast<uintptr_t>(block),
                                    stream, {1}};
      data = static_cast<char *>(block);
    }
    owners.push_back(owner);
    out.tensor.data = data;
    out.owner = owner;
  }
  return true; // Any copies are queued on the call's stream, in order.
}

int callFunctionOnDeviceOwned(const moert_function *function,
                              const moert_device_tensor *args, int numArgs,
                              moert_device_result *results, int numResults,
                              void *stream) {
  return runOnCallerDevice(
      function, "moert_function_call_device_owned", args, numArgs,
      numResults, results != nullptr, stream, /*queueOnly=*/true,
      [] { return true; },
      [&](const std::vector<int64_t> &resultBuffer, ResultMemory &memory,
          const cuda::Driver &driver, cuda::CUstream callStream) {
        return handOverResults(*function, driver, resultBuffer, memory,
                               results, callStream);
      });
}

/// Two CUDA events, destroyed when they go out of scope.
class EventPair {
public:
  explicit EventPair(const cuda::Driver &driver) : driver(driver) {}
  EventPair(const EventPair &) = delete;
  EventPair &operator=(const EventPair &) = delete;
  ~EventPair() {
    if (start)
      driver.cuEventDestroy(start);
    if (stop)
      driver.cuEventDestroy(stop);
  }
  cuda::CUresult create() {
    cuda::CUresult result =
        driver.cuEventCreate(&start, cuda::CU_EVENT_DEFAULT);
    if (result == cuda::CUDA_SUCCESS)
      result = driver.cuEventCreate(&stop, cuda::CU_EVENT_DEFAULT);
    return result;
  }

  const cuda::Driver &driver;
  cuda::CUevent start = nullptr, stop = nullptr;
};

int timeFunction(const moert_function *function, moert_tensor *const *args,
                 int numArgs, int warmup, int repeat, double *times) {
  if (!checkArguments(function, args, numArgs, "moert_function_time"))
    return 1;
  const char *name = function->name.c_str();
  if (warmup < 0 || repeat < 1) {
    setError("%s: cannot time %d warm-up and %d timed runs (want warmup >= "
             "0 and repeat >= 1)",
             name, warmup, repeat);
    return 1;
  }
  if (!times) {
    setError("%s: times_ms is NULL", name);
    return 1;
  }

  std::unique_lock<std::mutex> deviceLock;
  const cuda::Driver *driver;
  if (!enterDevice(*function, deviceLock, driver))
    return 1;
  std::unique_ptr<DeviceBuffers> device;
  std::unique_ptr<EventPair> events;
  if (driver) {
    device = std::make_unique<DeviceBuffers>(*driver, numArgs);
    events = std::make_unique<EventPair>(*driver);
    if (cuda::CUresult result = events->create()) {
      std::string prefix = "function '" + function->name + "': ";
      cuda::setDriverError(prefix.c_str(), "cuEventCreate", result);
      return 1;
    }
  }
  Arguments arguments;
  if (!prepareArguments(*function, args, numArgs, device.get(), arguments))
    return 1;
  std::vector<int64_t> resultBuffer(resultWords(*function), 0);

  using Clock = std::chrono::steady_clock;
  int64_t runs = static_cast<int64_t>(warmup) + repeat;
  for (int64_t run = 0; run < runs; ++run) {
    ResultMemory memory(*function, driver, arguments.pointers);
    double milliseconds = 0;
    if (driver) {
      cuda::CUresult result =
          driver->cuEventRecord(events->start, cuda::legacyStream);
      if (result != cuda::CUDA_SUCCESS) {
        std::string prefix = "function '" + function->name + "': ";
        cuda::setDriverError(prefix.c_str(), "cuEventRecord", result);
        return 1;
      }
      if (!runEntry(*function, arguments, resultBuffer, memory, driver, [&] {
            return driver->cuEventRecord(events->stop, cuda::legacyStream);
          }))
        return 1;
      float elapsed = 0;
      result =
          driver->cuEventElapsedTime(&elapsed, events->start, events->stop);
      if (result != cuda::CUDA_SUCCESS) {
        std::string prefix = "function '" + function->name + "': ";
        cuda::setDriverError(prefix.c_str(), "cuEventElapsedTime", result);
        return 1;
      }
      milliseconds = elapsed;
    } else {
      Clock::time_point begin = Clock::now(), end;
      runEntry(*function, arguments, resultBuffer, memory, driver, [&] {
        end = Clock::now();
        return cuda::CUDA_SUCCESS;
      });
      milliseconds =
          std::chrono::duration<double, std::milli>(end - begin).count();
    }
    if (run >= warmup)
      times[run - warmup] = milliseconds;
  }
  return 0;
}

int profileFunction(const moert_function *function, moert_tensor *const *args,
                    int numArgs, int repeat, moert_kernel_time *entries,
                    int capacity, int *count) {
  if (!checkArguments(function, args, numArgs, "moert_function_profile"))
    return 1;
  const char *name = function->name.c_str();
  if (function->backend != MOERT_BACKEND_CUDA) {
    setError("%s: only CUDA functions can be profiled (this one runs on the "
             "CPU)",
             name);
    return 1;
  }
  if (repeat < 1 || capacity < 0 || !count || (capacity > 0 && !entries)) {
    setError("%s: cannot profile %d runs into %d entries%s (want repeat >= 1, "
             "capacity >= 0, entries and count not NULL)",
             name, repeat, capacity, count ? "" : " with count NULL");
    return 1;
  }

  std::unique_lock<std::mutex> deviceLock;
  const cuda::Driver *driver;
  if (!enterDevice(*function, deviceLock, driver))
    return 1;
  DeviceBuffers device(*driver, numArgs);
  Arguments arguments;
  if (!prepareArguments(*function, args, numArgs, &device, arguments))
    return 1;
  std::vector<int64_t> resultBuffer(resultWords(*function), 0);

  std::map<std::string, cuda::KernelTotal> totals;
  for (int run = 0; run <= repeat; ++run) {
    ResultMemory memory(*function, driver, arguments.pointers);
    // Run 0 warms up (module loads, first-touch costs) unprofiled.
    if (run > 0)
      cuda::startKernelProfile();
    bool ran = runEntry(*function, arguments, resultBuffer, memory, driver,
                        [] { return cuda::CUDA_SUCCESS; });
    if (run > 0 && !cuda::finishKernelProfile(totals) && ran) {
      std::string reason = moert_last_error();
      setError("function '%s': %s", name, reason.c_str());
      return 1;
    }
    if (!ran)
      return 1;
  }

  std::vector<std::pair<std::string, cuda::KernelTotal>> kernels(
      totals.begin(), totals.end());
  std::stable_sort(kernels.begin(), kernels.end(),
                   [](const auto &x, const auto &y) {
                     return x.second.milliseconds > y.second.milliseconds;
                   });
  *count = static_cast<int>(kernels.size());
  for (int i = 0; i < capacity && i < *count; ++i) {
    moert_kernel_time &entry = entries[i];
    std::snprintf(entry.name, sizeof(entry.name), "%s",
                  kernels[i].first.c_str());
    entry.launches_per_run =
        static_cast<double>(kernels[i].second.launches) / repeat;
    entry.ms_per_run = kernels[i].second.milliseconds / repeat;
  }
  return 0;
}

} // namespace

moert_artifact::~moert_artifact() {
  if (!handle)
    return;
  if (backend != MOERT_BACKEND_CUDA) {
    dlclose(handle);
    return;
  }
  // The artifact's destructor unloads its GPU code through mgpuModuleUnload:
  // keep what it may report from the deferred error of a call in flight.
  std::lock_guard<std::mutex> lock(cuda::deviceMutex());
  dlclose(handle);
  cuda::clearDeferredError();
  cuda::trimDeviceBlocks();
}

int moert_artifact_load(const char *path, moert_artifact **out) {
  return guarded(1, [&] { return loadArtifact(path, out); });
}

void moert_artifact_unload(moert_artifact *artifact) { delete artifact; }

const char *moert_artifact_target(const moert_artifact *artifact) {
  return artifact ? artifact->target.c_str() : nullptr;
}

moert_backend moert_artifact_backend(const moert_artifact *artifact) {
  return artifact ? artifact->backend : MOERT_BACKEND_CPU;
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

int moert_function_call_device(const moert_function *function,
                               const moert_device_tensor *args, int num_args,
                               const moert_device_tensor *results,
                               int num_results, void *stream) {
  return guarded(1, [&] {
    return callFunctionOnDevice(function, args, num_args, results,
                                num_results, stream);
  });
}

int moert_function_call_device_owned(const moert_function *function,
                                     const moert_device_tensor *args,
                                     int num_args,
                                     moert_device_result *results,
                                     int num_results, void *stream) {
  return guarded(1, [&] {
    return callFunctionOnDeviceOwned(function, args, num_args, results,
                                     num_results, stream);
  });
}

void moert_device_result_release(void *owner) {
  auto *result = static_cast<DeviceResultOwner *>(owner);
  if (!result || result->references.fetch_sub(1) != 1)
    return;
  cuda::parkDeviceBlock(result->block, result->stream);
  delete result;
}

int moert_function_time(const moert_function *function,
                        moert_tensor *const *args, int num_args, int warmup,
                        int repeat, double *times_ms) {
  return guarded(1, [&] {
    return timeFunction(function, args, num_args, warmup, repeat, times_ms);
  });
}

int moert_function_profile(const moert_function *function,
                           moert_tensor *const *args, int num_args, int repeat,
                           moert_kernel_time *entries, int capacity,
                           int *count) {
  return guarded(1, [&] {
    return profileFunction(function, args, num_args, repeat, entries, capacity,
                           count);
  });
}
