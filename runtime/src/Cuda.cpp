//===- Cuda.cpp - The CUDA driver, loaded at run time, and the mgpu* ABI --===//
//
// The host code of a CUDA artifact (MLIR's gpu-to-llvm lowering) calls the
// mgpu* functions below and leaves them undefined: the process provides
// them, and libmoert.so exports them. They sit on the CUDA driver API, which
// moert finds in libcuda.so.1 at the first need, so that moert itself builds
// and runs without CUDA.
//
// Everything here may run from an artifact's global constructor or
// destructor (mgpuModuleLoad at dlopen, mgpuModuleUnload at dlclose, which
// can be at exit), so the process-wide state is trivially destructible:
// plain arrays, atomics and std::mutex.
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"
#include "Internal.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <vector>

using namespace moert;
using namespace moert::cuda;

namespace {

const char driverLibrary[] = "libcuda.so.1";

/// Static shared memory ends here; more must be opted into per function.
constexpr int32_t defaultSharedMemLimit = 48 * 1024;

/// The most devices whose primary contexts moert keeps.
constexpr int maxDevices = 64;

enum InitState { NotTried = 0, Ready = 1, Failed = 2 };

Driver table; // Filled once, under initMutex.
std::atomic<int> initState{NotTried};
std::mutex initMutex;
char initMessage[1024]; // Why the driver is unusable.
int deviceCount = 0;
CUcontext primaryContexts[maxDevices]; // Retained lazily, under initMutex.
std::atomic<int> defaultDevice{0};
/// The rank's index among the ranks of its machine (moert_comm_init), -1
/// for none; until mgpuSetDefaultDevice chooses, it picks the device.
std::atomic<int> localRank{-1};
std::atomic<bool> deviceChosen{false};

std::mutex deferredMutex;
std::atomic<bool> deferredSet{false};
char deferredMessage[1024];

/// Why entering the context failed on this thread, when it is not the
/// (process-wide) initMessage.
thread_local char enterMessage[1024];

/// Formats "CALL failed: NAME (TEXT)" into `buffer`.
void formatFailure(char *buffer, size_t size, const char *call,
                   CUresult result) {
  const char *name = nullptr, *text = nullptr;
  if (table.cuGetErrorName && table.cuGetErrorName(result, &name) != 0)
    name = nullptr;
  if (table.cuGetErrorString && table.cuGetErrorString(result, &text) != 0)
    text = nullptr;
  if (name && text)
    std::snprintf(buffer, size, "%s failed: %s (%s)", call, name, text);
  else if (name)
    std::snprintf(buffer, size, "%s failed: %s", call, name);
  else
    std::snprintf(buffer, size, "%s failed: CUDA error %d", call, result);
}

/// Resolves one entry point into `slot` (a function pointer of `table`).
bool resolve(void *library, void *slot, const char *name,
             const char *fallback = nullptr) {
  void *symbol = dlsym(library, name);
  if (!symbol && fallback)
    symbol = dlsym(library, fallback);
  if (!symbol) {
    std::snprintf(initMessage, sizeof(initMessage),
                  "the CUDA backend needs the NVIDIA driver: %s has no "
                  "symbol %s; the driver is too old or broken",
                  driverLibrary, name);
    return false;
  }
  std::memcpy(slot, &symbol, sizeof(symbol));
  return true;
}

/// Loads and initializes the driver. Runs once, under initMutex.
bool initialize() {
  // Never closed: unloading a driver that may hold contexts is unsafe.
  void *library = dlopen(driverLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *reason = dlerror();
    std::snprintf(initMessage, sizeof(initMessage),
                  "the CUDA backend needs the NVIDIA driver: cannot load %s: "
                  "%s; run on a machine with an NVIDIA GPU and driver, or "
                  "compile with --target=cpu",
                  driverLibrary, reason ? reason : "dlopen failed");
    return false;
  }
  // The error functions first, so that later failures can be described.
  bool ok =
      resolve(library, &table.cuGetErrorName, "cuGetErrorName") &&
      resolve(library, &table.cuGetErrorString, "cuGetErrorString") &&
      resolve(library, &table.cuInit, "cuInit") &&
      resolve(library, &table.cuDeviceGet, "cuDeviceGet") &&
      resolve(library, &table.cuDeviceGetCount, "cuDeviceGetCount") &&
      resolve(library, &table.cuDeviceGetAttribute, "cuDeviceGetAttribute") &&
      resolve(library, &table.cuDeviceGetName, "cuDeviceGetName") &&
      resolve(library, &table.cuDevicePrimaryCtxRetain,
              "cuDevicePrimaryCtxRetain") &&
      resolve(library, &table.cuCtxSetCurrent, "cuCtxSetCurrent") &&
      resolve(library, &table.cuCtxSynchronize, "cuCtxSynchronize") &&
      resolve(library, &table.cuModuleLoadData, "cuModuleLoadData") &&
      resolve(library, &table.cuModuleUnload, "cuModuleUnload") &&
      resolve(library, &table.cuModuleGetFunction, "cuModuleGetFunction") &&
      resolve(library, &table.cuFuncSetAttribute, "cuFuncSetAttribute") &&
      resolve(library, &table.cuLaunchKernel, "cuLaunchKernel") &&
      resolve(library, &table.cuMemAlloc, "cuMemAlloc_v2") &&
      resolve(library, &table.cuMemFree, "cuMemFree_v2") &&
      resolve(library, &table.cuMemcpyHtoD, "cuMemcpyHtoD_v2") &&
      resolve(library, &table.cuMemcpyDtoH, "cuMemcpyDtoH_v2") &&
      resolve(library, &table.cuMemcpyAsync, "cuMemcpyAsync") &&
      resolve(library, &table.cuMemsetD32Async, "cuMemsetD32Async") &&
      resolve(library, &table.cuMemsetD16Async, "cuMemsetD16Async") &&
      resolve(library, &table.cuPointerGetAttribute, "cuPointerGetAttribute") &&
      resolve(library, &table.cuStreamCreate, "cuStreamCreate") &&
      resolve(library, &table.cuStreamSynchronize, "cuStreamSynchronize") &&
      resolve(library, &table.cuStreamDestroy, "cuStreamDestroy_v2") &&
      resolve(library, &table.cuStreamWaitEvent, "cuStreamWaitEvent") &&
      resolve(library, &table.cuEventCreate, "cuEventCreate") &&
      resolve(library, &table.cuEventRecord, "cuEventRecord") &&
      resolve(library, &table.cuEventSynchronize, "cuEventSynchronize") &&
      resolve(library, &table.cuEventQuery, "cuEventQuery") &&
      // _v2 since CUDA 12.8 (what cuda.h now maps the name to); older
      // drivers have only the original, with the same signature.
      resolve(library, &table.cuEventElapsedTime, "cuEventElapsedTime_v2",
              "cuEventElapsedTime") &&
      resolve(library, &table.cuEventDestroy, "cuEventDestroy_v2");
  if (!ok)
    return false;
  // Optional: only artifacts with TMA kernels (sm_90a) call it.
  void *encode = dlsym(library, "cuTensorMapEncodeTiled");
  std::memcpy(&table.cuTensorMapEncodeTiled, &encode, sizeof(encode));
  // Optional: without them the CUDA all-to-all reads its split sizes on the
  // host.
  void *ipc[3] = {dlsym(library, "cuIpcGetMemHandle"),
                  dlsym(library, "cuIpcOpenMemHandle_v2"),
                  dlsym(library, "cuIpcCloseMemHandle")};
  if (!ipc[1])
    ipc[1] = dlsym(library, "cuIpcOpenMemHandle");
  std::memcpy(&table.cuIpcGetMemHandle, &ipc[0], sizeof(void *));
  std::memcpy(&table.cuIpcOpenMemHandle, &ipc[1], sizeof(void *));
  std::memcpy(&table.cuIpcCloseMemHandle, &ipc[2], sizeof(void *));
  // Optional (CUDA 12): only kernels launched in clusters call it.
  void *launchEx = dlsym(library, "cuLaunchKernelEx");
  std::memcpy(&table.cuLaunchKernelEx, &launchEx, sizeof(launchEx));
  // Optional: without it, freed blocks are reused only after their fence.
  void *streamId = dlsym(library, "cuStreamGetId");
  std::memcpy(&table.cuStreamGetId, &streamId, sizeof(streamId));

  char failure[512];
  CUresult result = table.cuInit(0);
  if (result != CUDA_SUCCESS) {
    formatFailure(failure, sizeof(failure), "cuInit", result);
    std::snprintf(initMessage, sizeof(initMessage),
                  "cannot initialize the CUDA driver: %s", failure);
    return false;
  }
  result = table.cuDeviceGetCount(&deviceCount);
  if (result != CUDA_SUCCESS) {
    formatFailure(failure, sizeof(failure), "cuDeviceGetCount", result);
    std::snprintf(initMessage, sizeof(initMessage),
                  "cannot count the CUDA devices: %s", failure);
    return false;
  }
  if (deviceCount <= 0) {
    std::snprintf(initMessage, sizeof(initMessage),
                  "no CUDA device found (cuDeviceGetCount returned %d)",
                  deviceCount);
    return false;
  }
  if (deviceCount > maxDevices)
    deviceCount = maxDevices;
  return true;
}

/// Initializes the driver once. NULL on success, else why it failed.
const char *initOnce() {
  int state = initState.load(std::memory_order_acquire);
  if (state == NotTried) {
    std::lock_guard<std::mutex> lock(initMutex);
    state = initState.load(std::memory_order_relaxed);
    if (state == NotTried) {
      state = initialize() ? Ready : Failed;
      initState.store(state, std::memory_order_release);
    }
  }
  return state == Ready ? nullptr : initMessage;
}

/// Initializes the driver and makes the current device's primary context
/// current on this thread. NULL on success, else why it failed.
const char *enterImpl(DeviceInfo *info) {
  if (const char *failure = initOnce())
    return failure;
  char failure[512];
  int ordinal = defaultDevice.load(std::memory_order_relaxed);
  // One GPU a rank: the local rank's, wrapping around the visible devices
  // (a launcher that gives each rank one visible device makes it device 0).
  if (int local = localRank.load(std::memory_order_relaxed);
      local >= 0 && !deviceChosen.load(std::memory_order_relaxed) &&
      deviceCount > 0)
    ordinal = local % deviceCount;
  CUdevice device = 0;
  CUcontext context = nullptr;
  {
    std::lock_guard<std::mutex> lock(initMutex);
    if (ordinal < 0 || ordinal >= deviceCount) {
      std::snprintf(enterMessage, sizeof(enterMessage),
                    "CUDA device %d does not exist (there %s %d)", ordinal,
                    deviceCount == 1 ? "is" : "are", deviceCount);
      return enterMessage;
    }
    CUresult result = table.cuDeviceGet(&device, ordinal);
    if (result != CUDA_SUCCESS) {
      formatFailure(failure, sizeof(failure), "cuDeviceGet", result);
      std::snprintf(enterMessage, sizeof(enterMessage), "%s", failure);
      return enterMessage;
    }
    if (!primaryContexts[ordinal]) {
      result =
          table.cuDevicePrimaryCtxRetain(&primaryContexts[ordinal], device);
      if (result != CUDA_SUCCESS) {
        primaryContexts[ordinal] = nullptr;
        formatFailure(failure, sizeof(failure), "cuDevicePrimaryCtxRetain",
                      result);
        std::snprintf(enterMessage, sizeof(enterMessage), "%s", failure);
        return enterMessage;
      }
    }
    context = primaryContexts[ordinal];
  }
  CUresult result = table.cuCtxSetCurrent(context);
  if (result != CUDA_SUCCESS) {
    formatFailure(enterMessage, sizeof(enterMessage), "cuCtxSetCurrent",
                  result);
    return enterMessage;
  }
  if (!info)
    return nullptr;
  info->device = device;
  const char *call = nullptr;
  if ((result = table.cuDeviceGetAttribute(
           &info->major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
           device)) != CUDA_SUCCESS ||
      (result = table.cuDeviceGetAttribute(
           &info->minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
           device)) != CUDA_SUCCESS)
    call = "cuDeviceGetAttribute";
  else if ((result = table.cuDeviceGetName(info->name, sizeof(info->name),
                                           device)) != CUDA_SUCCESS)
    call = "cuDeviceGetName";
  if (call) {
    formatFailure(enterMessage, sizeof(enterMessage), call, result);
    return enterMessage;
  }
  info->name[sizeof(info->name) - 1] = '\0';
  return nullptr;
}

//===--- Helpers of the mgpu* functions ---===//

/// Starts an mgpu* call that does work: NULL (do nothing) if a deferred
/// error is pending or the driver or context is unusable.
const Driver *beginWork() {
  if (deferredSet.load(std::memory_order_acquire))
    return nullptr;
  if (const char *failure = enterImpl(nullptr)) {
    recordDeferredError("%s", failure);
    return nullptr;
  }
  return &table;
}

/// Starts an mgpu* call that releases a resource: it runs even after a
/// deferred error, so that nothing leaks, but needs a working driver.
const Driver *beginRelease() {
  if (initState.load(std::memory_order_acquire) != Ready)
    return nullptr;
  if (const char *failure = enterImpl(nullptr)) {
    recordDeferredError("%s", failure);
    return nullptr;
  }
  return &table;
}

/// Records a failed driver call as the deferred error. True if it succeeded.
bool check(CUresult result, const char *call) {
  if (result == CUDA_SUCCESS)
    return true;
  char failure[512];
  formatFailure(failure, sizeof(failure), call, result);
  recordDeferredError("%s", failure);
  return false;
}

CUdeviceptr toDevice(const void *pointer) {
  return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(pointer));
}

} // namespace

//===--- The interface of CudaDriver.h ---===//

const Driver *cuda::driver() {
  if (const char *failure = initOnce()) {
    setError("%s", failure);
    return nullptr;
  }
  return &table;
}

const Driver *cuda::enter(DeviceInfo *info) {
  if (const char *failure = enterImpl(info)) {
    setError("%s", failure);
    return nullptr;
  }
  return &table;
}

std::string cuda::describeFailure(const char *call, CUresult result) {
  char failure[512];
  formatFailure(failure, sizeof(failure), call, result);
  return failure;
}

void cuda::setDriverError(const char *prefix, const char *call,
                          CUresult result) {
  char failure[512];
  formatFailure(failure, sizeof(failure), call, result);
  setError("%s%s", prefix, failure);
}

MemoryKind cuda::memoryKind(const Driver &driver, const void *pointer) {
  unsigned type = 0;
  CUresult result = driver.cuPointerGetAttribute(
      &type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, toDevice(pointer));
  // Ordinary host memory is unknown to the driver: CUDA_ERROR_INVALID_VALUE.
  if (result == CUDA_ERROR_INVALID_VALUE)
    return MemoryKind::Host;
  if (result != CUDA_SUCCESS)
    return MemoryKind::Unknown;
  return type == CU_MEMORYTYPE_DEVICE || type == CU_MEMORYTYPE_UNIFIED
             ? MemoryKind::Device
             : MemoryKind::Host;
}

void cuda::recordDeferredError(const char *format, ...) {
  std::lock_guard<std::mutex> lock(deferredMutex);
  if (deferredSet.load(std::memory_order_relaxed))
    return;
  va_list args;
  va_start(args, format);
  std::vsnprintf(deferredMessage, sizeof(deferredMessage), format, args);
  va_end(args);
  deferredSet.store(true, std::memory_order_release);
}

bool cuda::takeDeferredError(std::string &message) {
  std::lock_guard<std::mutex> lock(deferredMutex);
  if (!deferredSet.load(std::memory_order_relaxed))
    return false;
  message = deferredMessage;
  deferredSet.store(false, std::memory_order_release);
  return true;
}

void cuda::clearDeferredError() {
  std::lock_guard<std::mutex> lock(deferredMutex);
  deferredSet.store(false, std::memory_order_release);
}

std::mutex &cuda::deviceMutex() {
  static std::mutex mutex; // Trivially destructible; never torn down early.
  return mutex;
}

//===--- The C API ---===//

int moert_cuda_device_name(char *buffer, size_t size) {
  if (!buffer || size == 0) {
    setError("moert_cuda_device_name: no buffer");
    return 1;
  }
  buffer[0] = '\0';
  DeviceInfo info;
  if (!cuda::enter(&info))
    return 1;
  int length = std::snprintf(buffer, size, "%s, sm_%d%d", info.name, info.major,
                             info.minor);
  if (length < 0 || static_cast<size_t>(length) >= size) {
    setError("moert_cuda_device_name: the buffer of %zu bytes is too small "
             "(%d are needed)",
             size, length + 1);
    return 1;
  }
  return 0;
}

//===--- Device memory cache ---===//

namespace {

constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;

std::mutex blocksMutex;
std::map<CUdeviceptr, size_t> liveBlocks; ///< Made by mgpuMemAlloc, in use.
std::vector<std::pair<CUdeviceptr, size_t>> parkedBlocks; ///< Freed in a call.
std::multimap<size_t, CUdeviceptr> idleBlocks; ///< Free, by size.
/// Parked blocks waiting for an event: free once the work before it is done.
struct FencedBlocks {
  CUevent event;
  /// The id of the stream the event is recorded on (0: unknown).
  unsigned long long streamId;
  std::vector<std::pair<CUdeviceptr, size_t>> blocks;
};

/// `stream`'s process-unique id, or 0 if the driver cannot tell.
unsigned long long streamIdOf(CUstream stream) {
  // The legacy default stream (handle 0, or CU_STREAM_LEGACY) lasts as long
  // as the context, and cuStreamGetId need not know its handles: one id of
  // its own. (The per-thread default stream's handle, 0x2, means another
  // stream on each thread: no id.)
  if (!stream || stream == reinterpret_cast<CUstream>(0x1))
    return ~0ull;
  unsigned long long id = 0;
  if (!table.cuStreamGetId || table.cuStreamGetId(stream, &id) != CUDA_SUCCESS)
    return 0;
  return id;
}
std::vector<FencedBlocks> fencedBlocks;
/// Bytes of liveBlocks, and their most since the last reset: the device
/// memory a call really holds (moert_device_memory_high_water).
int64_t liveBytes = 0, liveHighWater = 0;

/// Under blocksMutex: `pointer` of `size` bytes is in use now.
void markLive(CUdeviceptr pointer, size_t size) {
  liveBlocks[pointer] = size;
  liveBytes += static_cast<int64_t>(size);
  liveHighWater = std::max(liveHighWater, liveBytes);
}

/// Under blocksMutex: the live block `it` is no longer in use.
void markNotLive(std::map<CUdeviceptr, size_t>::iterator it) {
  liveBytes -= static_cast<int64_t>(it->second);
  liveBlocks.erase(it);
}

/// A cached block of at least `size` bytes (and at most twice that, so that
/// a small buffer does not pin a large one), or 0.
CUdeviceptr takeIdleBlock(size_t size) {
  std::lock_guard<std::mutex> lock(blocksMutex);
  auto it = idleBlocks.lower_bound(size);
  if (it == idleBlocks.end() || it->first / 2 > size)
    return 0;
  CUdeviceptr pointer = it->second;
  markLive(pointer, it->first);
  idleBlocks.erase(it);
  return pointer;
}

/// A block of at least `size` bytes (at most twice that) fenced on
/// `stream`, or 0. Work queued on that stream from now on runs after the
/// work the fence waits for, so it may use the block at once, as a caching
/// allocator reuses a block freed on the same stream: calls queued back to
/// back then share one arena instead of each allocating its own.
CUdeviceptr takeFencedBlock(size_t size, CUstream stream) {
  // By id, not handle: a stream destroyed with work pending may leave its
  // handle to a new stream that does not run after that work.
  unsigned long long id = streamIdOf(stream);
  if (id == 0)
    return 0;
  std::lock_guard<std::mutex> lock(blocksMutex);
  FencedBlocks *bestFence = nullptr;
  size_t bestIndex = 0;
  for (FencedBlocks &fenced : fencedBlocks) {
    if (fenced.streamId != id)
      continue;
    for (size_t i = 0; i < fenced.blocks.size(); ++i) {
      size_t blockSize = fenced.blocks[i].second;
      if (blockSize < size || blockSize / 2 > size)
        continue;
      if (!bestFence || blockSize < bestFence->blocks[bestIndex].second) {
        bestFence = &fenced;
        bestIndex = i;
      }
    }
  }
  if (!bestFence)
    return 0;
  auto [pointer, blockSize] = bestFence->blocks[bestIndex];
  bestFence->blocks.erase(bestFence->blocks.begin() + bestIndex);
  markLive(pointer, blockSize);
  return pointer;
}

/// Parks a block mgpuMemAlloc made until the runtime next waits for the
/// device (recycleDeviceBlocks); false for a block it did not make.
bool parkIfCached(CUdeviceptr pointer) {
  std::lock_guard<std::mutex> lock(blocksMutex);
  auto it = liveBlocks.find(pointer);
  if (it == liveBlocks.end())
    return false;
  parkedBlocks.emplace_back(it->first, it->second);
  markNotLive(it);
  return true;
}

void freeIdleBlocks() {
  std::lock_guard<std::mutex> lock(blocksMutex);
  for (const auto &[size, pointer] : idleBlocks)
    table.cuMemFree(pointer);
  idleBlocks.clear();
}

} // namespace

void cuda::recycleDeviceBlocks() {
  std::lock_guard<std::mutex> lock(blocksMutex);
  for (const auto &[pointer, size] : parkedBlocks)
    idleBlocks.emplace(size, pointer);
  parkedBlocks.clear();
  // The device is idle: every fence has passed.
  for (FencedBlocks &fenced : fencedBlocks) {
    for (const auto &[pointer, size] : fenced.blocks)
      idleBlocks.emplace(size, pointer);
    table.cuEventDestroy(fenced.event);
  }
  fencedBlocks.clear();
}

/// Parks `blocks` behind an event recorded on `stream` now. Without an
/// event (the driver refused one) they stay parked until the next wait
/// for the device. Called with blocksMutex held.
static void fenceLocked(std::vector<std::pair<CUdeviceptr, size_t>> blocks,
                        CUstream stream) {
  CUevent event = nullptr;
  if (table.cuEventCreate(&event, 0x2 /* CU_EVENT_DISABLE_TIMING */) !=
      CUDA_SUCCESS) {
    parkedBlocks.insert(parkedBlocks.end(), blocks.begin(), blocks.end());
    return;
  }
  if (table.cuEventRecord(event, stream) != CUDA_SUCCESS) {
    table.cuEventDestroy(event);
    parkedBlocks.insert(parkedBlocks.end(), blocks.begin(), blocks.end());
    return;
  }
  fencedBlocks.push_back({event, streamIdOf(stream), std::move(blocks)});
}

void cuda::fenceParkedBlocks(CUstream stream) {
  std::lock_guard<std::mutex> lock(blocksMutex);
  if (parkedBlocks.empty())
    return;
  std::vector<std::pair<CUdeviceptr, size_t>> blocks;
  blocks.swap(parkedBlocks);
  fenceLocked(std::move(blocks), stream);
}

void cuda::recycleFinishedBlocks() {
  std::lock_guard<std::mutex> lock(blocksMutex);
  // Fences complete in order on one stream, but calls may use several:
  // query each.
  auto done = std::remove_if(
      fencedBlocks.begin(), fencedBlocks.end(), [](FencedBlocks &fenced) {
        if (table.cuEventQuery(fenced.event) != CUDA_SUCCESS)
          return false;
        for (const auto &[pointer, size] : fenced.blocks)
          idleBlocks.emplace(size, pointer);
        table.cuEventDestroy(fenced.event);
        return true;
      });
  fencedBlocks.erase(done, fencedBlocks.end());
}

void cuda::releaseDeviceBlock(const Driver &driver, CUdeviceptr pointer) {
  {
    std::lock_guard<std::mutex> lock(blocksMutex);
    auto it = liveBlocks.find(pointer);
    if (it != liveBlocks.end()) {
      idleBlocks.emplace(it->second, pointer);
      markNotLive(it);
      return;
    }
  }
  driver.cuMemFree(pointer);
}

void cuda::parkDeviceBlock(CUdeviceptr pointer, CUstream stream) {
  const Driver *driver = beginRelease(); // Makes the context current.
  {
    std::lock_guard<std::mutex> lock(blocksMutex);
    auto it = liveBlocks.find(pointer);
    if (it != liveBlocks.end()) {
      std::vector<std::pair<CUdeviceptr, size_t>> block{{pointer, it->second}};
      markNotLive(it);
      if (driver)
        fenceLocked(std::move(block), stream);
      else
        parkedBlocks.push_back(block.front());
      return;
    }
  }
  if (driver)
    check(driver->cuMemFree(pointer), "cuMemFree");
}

extern "C" void *mgpuMemAlloc(uint64_t sizeBytes, void *stream,
                              bool isHostShared);

void *cuda::allocateDeviceBlock(size_t size) {
  return mgpuMemAlloc(size, nullptr, false);
}

void cuda::trimDeviceBlocks() {
  if (initState.load(std::memory_order_acquire) != Ready)
    return;
  recycleDeviceBlocks();
  freeIdleBlocks();
}

//===--- Kernel profile ---===//

namespace {

/// The name each CUfunction was looked up by, for profiles.
std::mutex functionNamesMutex;
std::map<CUfunction, std::string> functionNames;

/// One profiled launch: its events are recorded before and after it.
struct ProfiledLaunch {
  CUfunction function;
  CUevent start, stop;
};
// Touched only with the device mutex held (see startKernelProfile).
bool profiling = false;
std::vector<ProfiledLaunch> profiledLaunches;

std::string functionName(CUfunction function) {
  std::lock_guard<std::mutex> lock(functionNamesMutex);
  auto it = functionNames.find(function);
  return it == functionNames.end() ? "(unknown kernel)" : it->second;
}

} // namespace

void cuda::startKernelProfile() {
  profiling = true;
  profiledLaunches.clear();
}

bool cuda::finishKernelProfile(std::map<std::string, KernelTotal> &totals) {
  profiling = false;
  std::vector<ProfiledLaunch> launches;
  launches.swap(profiledLaunches);
  bool ok = true;
  for (const ProfiledLaunch &launch : launches) {
    float milliseconds = 0;
    CUresult result = CUDA_SUCCESS;
    const char *call = "cuEventSynchronize";
    if (ok && (result = table.cuEventSynchronize(launch.stop)) == CUDA_SUCCESS) {
      call = "cuEventElapsedTime";
      result = table.cuEventElapsedTime(&milliseconds, launch.start, launch.stop);
    }
    if (ok && result != CUDA_SUCCESS) {
      setDriverError("kernel profile: ", call, result);
      ok = false;
    }
    if (ok) {
      KernelTotal &total = totals[functionName(launch.function)];
      total.launches += 1;
      total.milliseconds += milliseconds;
    }
    table.cuEventDestroy(launch.start);
    table.cuEventDestroy(launch.stop);
  }
  return ok;
}

//===--- The mgpu* functions that compiled CUDA artifacts call ---===//
//
// Their signatures are those that MLIR's gpu-to-llvm lowering (LLVM 22)
// declares. None of them prints or aborts: see the deferred device error.

#define MGPU_EXPORT extern "C" __attribute__((visibility("default")))

MGPU_EXPORT void *mgpuModuleLoad(void *data, int64_t size) {
  (void)size; // A cubin or fatbin describes its own size.
  const Driver *driver = beginWork();
  if (!driver)
    return nullptr;
  CUmodule module = nullptr;
  if (!check(driver->cuModuleLoadData(&module, data), "cuModuleLoadData"))
    return nullptr;
  return module;
}

MGPU_EXPORT void mgpuModuleUnload(void *module) {
  if (!module)
    return;
  if (const Driver *driver = beginRelease())
    check(driver->cuModuleUnload(static_cast<CUmodule>(module)),
          "cuModuleUnload");
}

MGPU_EXPORT void *mgpuModuleGetFunction(void *module, const char *name) {
  const Driver *driver = beginWork();
  if (!driver)
    return nullptr;
  if (!module || !name) {
    recordDeferredError("mgpuModuleGetFunction: NULL %s",
                        module ? "name" : "module");
    return nullptr;
  }
  CUfunction function = nullptr;
  char call[320];
  std::snprintf(call, sizeof(call), "cuModuleGetFunction('%.256s')", name);
  if (!check(driver->cuModuleGetFunction(&function,
                                         static_cast<CUmodule>(module), name),
             call))
    return nullptr;
  std::lock_guard<std::mutex> lock(functionNamesMutex);
  functionNames[function] = name;
  return function;
}

namespace {
thread_local bool callStreamSet = false;
thread_local CUstream callStream = nullptr;
} // namespace

void moert::cuda::setCallStream(CUstream stream) {
  callStream = stream;
  callStreamSet = true;
}

void moert::cuda::clearCallStream() {
  callStream = nullptr;
  callStreamSet = false;
}

bool moert::cuda::hasCallStream() { return callStreamSet; }

CUstream moert::cuda::currentCallStream() {
  return callStreamSet ? callStream : legacyStream;
}

MGPU_EXPORT void *mgpuStreamCreate(void) {
  const Driver *driver = beginWork();
  if (!driver)
    return nullptr;
  if (callStreamSet)
    return callStream;
  CUstream stream = nullptr;
  // Blocking (flags 0): work on it orders with the legacy default stream,
  // so that events recorded on stream 0 around a call capture it.
  if (!check(driver->cuStreamCreate(&stream, CU_STREAM_DEFAULT),
             "cuStreamCreate"))
    return nullptr;
  return stream;
}

MGPU_EXPORT void mgpuStreamSynchronize(void *stream) {
  if (const Driver *driver = beginWork())
    check(driver->cuStreamSynchronize(static_cast<CUstream>(stream)),
          "cuStreamSynchronize");
}

MGPU_EXPORT void mgpuStreamDestroy(void *stream) {
  if (!stream || (callStreamSet && stream == callStream))
    return;
  if (const Driver *driver = beginRelease())
    check(driver->cuStreamDestroy(static_cast<CUstream>(stream)),
          "cuStreamDestroy");
}

MGPU_EXPORT void mgpuStreamWaitEvent(void *stream, void *event) {
  if (const Driver *driver = beginWork())
    check(driver->cuStreamWaitEvent(static_cast<CUstream>(stream),
                                    static_cast<CUevent>(event), 0),
          "cuStreamWaitEvent");
}

MGPU_EXPORT void *mgpuEventCreate(void) {
  const Driver *driver = beginWork();
  if (!driver)
    return nullptr;
  CUevent event = nullptr;
  if (!check(driver->cuEventCreate(&event, CU_EVENT_DEFAULT), "cuEventCreate"))
    return nullptr;
  return event;
}

MGPU_EXPORT void mgpuEventDestroy(void *event) {
  if (!event)
    return;
  if (const Driver *driver = beginRelease())
    check(driver->cuEventDestroy(static_cast<CUevent>(event)),
          "cuEventDestroy");
}

MGPU_EXPORT void mgpuEventSynchronize(void *event) {
  if (const Driver *driver = beginWork())
    check(driver->cuEventSynchronize(static_cast<CUevent>(event)),
          "cuEventSynchronize");
}

MGPU_EXPORT void mgpuEventRecord(void *event, void *stream) {
  if (const Driver *driver = beginWork())
    check(driver->cuEventRecord(static_cast<CUevent>(event),
                                static_cast<CUstream>(stream)),
          "cuEventRecord");
}

namespace {
/// What mgpuLaunchKernel and mgpuLaunchClusterKernel share: the checks of
/// the dimensions, the dynamic shared memory opt-in, the profile's events
/// around the launch. `cluster` is null for a plain launch; `name` is the
/// mgpu* entry point, for the messages.
void launchKernel(const char *name, void *function, const int64_t *cluster,
                  int64_t gridX, int64_t gridY, int64_t gridZ, int64_t blockX,
                  int64_t blockY, int64_t blockZ, int32_t sharedMemBytes,
                  void *stream, void **params, void **extra) {
  const Driver *driver = beginWork();
  if (!driver)
    return;
  if (!function) {
    recordDeferredError("%s: NULL function", name);
    return;
  }
  const int64_t single[3] = {1, 1, 1};
  const int64_t *clusterDims = cluster ? cluster : single;
  const int64_t dims[] = {gridX,          gridY,          gridZ,
                          blockX,         blockY,         blockZ,
                          clusterDims[0], clusterDims[1], clusterDims[2]};
  for (int64_t dim : dims)
    if (dim < 0 || dim > static_cast<int64_t>(UINT_MAX)) {
      recordDeferredError(
          "%s: launch dimension %lld is out "
          "of range (grid %lld x %lld x %lld, block %lld x "
          "%lld x %lld)",
          name, static_cast<long long>(dim), static_cast<long long>(gridX),
          static_cast<long long>(gridY), static_cast<long long>(gridZ),
          static_cast<long long>(blockX), static_cast<long long>(blockY),
          static_cast<long long>(blockZ));
      return;
    }
  if (sharedMemBytes < 0) {
    recordDeferredError("%s: negative shared memory size %d", name,
                        sharedMemBytes);
    return;
  }
  if (cluster && !driver->cuLaunchKernelEx) {
    recordDeferredError("%s: the driver has no cuLaunchKernelEx (CUDA 12 or "
                        "later launches thread block clusters)",
                        name);
    return;
  }
  auto *cuFunction = static_cast<CUfunction>(function);
  if (sharedMemBytes > defaultSharedMemLimit) {
    char call[128];
    std::snprintf(call, sizeof(call),
                  "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, %d)",
                  sharedMemBytes);
    if (!check(driver->cuFuncSetAttribute(
                   cuFunction, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                   sharedMemBytes),
               call))
      return;
  }
  ProfiledLaunch profiled{cuFunction, nullptr, nullptr};
  if (profiling) {
    if (!check(driver->cuEventCreate(&profiled.start, CU_EVENT_DEFAULT),
               "cuEventCreate") ||
        !check(driver->cuEventCreate(&profiled.stop, CU_EVENT_DEFAULT),
               "cuEventCreate")) {
      if (profiled.start)
        driver->cuEventDestroy(profiled.start);
      return;
    }
    // Owned by the profile from here on, recorded or not.
    profiledLaunches.push_back(profiled);
    if (!check(driver->cuEventRecord(profiled.start,
                                     static_cast<CUstream>(stream)),
               "cuEventRecord"))
      return;
  }
  bool launched;
  if (cluster) {
    CUlaunchAttribute attribute{};
    attribute.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attribute.value.clusterDim = {static_cast<unsigned>(cluster[0]),
                                  static_cast<unsigned>(cluster[1]),
                                  static_cast<unsigned>(cluster[2])};
    CUlaunchConfig config{};
    config.gridDimX = static_cast<unsigned>(gridX);
    config.gridDimY = static_cast<unsigned>(gridY);
    config.gridDimZ = static_cast<unsigned>(gridZ);
    config.blockDimX = static_cast<unsigned>(blockX);
    config.blockDimY = static_cast<unsigned>(blockY);
    config.blockDimZ = static_cast<unsigned>(blockZ);
    config.sharedMemBytes = static_cast<unsigned>(sharedMemBytes);
    config.hStream = static_cast<CUstream>(stream);
    config.attrs = &attribute;
    config.numAttrs = 1;
    char call[128];
    std::snprintf(
        call, sizeof(call), "cuLaunchKernelEx (clusters of %lld x %lld x %lld)",
        static_cast<long long>(cluster[0]), static_cast<long long>(cluster[1]),
        static_cast<long long>(cluster[2]));
    launched = check(
        driver->cuLaunchKernelEx(&config, cuFunction, params, extra), call);
  } else {
    launched =
        check(driver->cuLaunchKernel(
                  cuFunction, static_cast<unsigned>(gridX),
                  static_cast<unsigned>(gridY), static_cast<unsigned>(gridZ),
                  static_cast<unsigned>(blockX), static_cast<unsigned>(blockY),
                  static_cast<unsigned>(blockZ),
                  static_cast<unsigned>(sharedMemBytes),
                  static_cast<CUstream>(stream), params, extra),
              "cuLaunchKernel");
  }
  if (launched && profiling)
    check(driver->cuEventRecord(profiled.stop, static_cast<CUstream>(stream)),
          "cuEventRecord");
}
} // namespace

MGPU_EXPORT void mgpuLaunchKernel(void *function, int64_t gridX, int64_t gridY,
                                  int64_t gridZ, int64_t blockX, int64_t blockY,
                                  int64_t blockZ, int32_t sharedMemBytes,
                                  void *stream, void **params, void **extra,
                                  int64_t paramsCount) {
  (void)paramsCount;
  launchKernel("mgpuLaunchKernel", function, /*cluster=*/nullptr, gridX, gridY,
               gridZ, blockX, blockY, blockZ, sharedMemBytes, stream, params,
               extra);
}

/// A gpu.launch_func with `clusters in (...)` (MLIR 22 passes no params
/// count here): the grid in thread block clusters, by cuLaunchKernelEx.
MGPU_EXPORT void mgpuLaunchClusterKernel(void *function, int64_t clusterX,
                                         int64_t clusterY, int64_t clusterZ,
                                         int64_t gridX, int64_t gridY,
                                         int64_t gridZ, int64_t blockX,
                                         int64_t blockY, int64_t blockZ,
                                         int32_t sharedMemBytes, void *stream,
                                         void **params, void **extra) {
  const int64_t cluster[3] = {clusterX, clusterY, clusterZ};
  launchKernel("mgpuLaunchClusterKernel", function, cluster, gridX, gridY,
               gridZ, blockX, blockY, blockZ, sharedMemBytes, stream, params,
               extra);
}

MGPU_EXPORT void *mgpuMemAlloc(uint64_t sizeBytes, void *stream,
                               bool isHostShared) {
  (void)stream; // cuMemAlloc is not stream-ordered.
  const Driver *driver = beginWork();
  if (!driver)
    return nullptr;
  if (isHostShared) {
    recordDeferredError("mgpuMemAlloc: host-shared (managed) memory is not "
                        "supported by moert (%llu bytes asked for)",
                        static_cast<unsigned long long>(sizeBytes));
    return nullptr;
  }
  if (sizeBytes == 0)
    return nullptr; // As MLIR's own wrappers do.
  size_t size = static_cast<size_t>(sizeBytes);
  CUdeviceptr pointer = takeIdleBlock(size);
  if (!pointer)
    pointer = takeFencedBlock(size, static_cast<CUstream>(stream));
  if (!pointer) {
    CUresult result = driver->cuMemAlloc(&pointer, size);
    if (result == CUDA_ERROR_OUT_OF_MEMORY) {
      // Cached blocks may be what fills the device.
      freeIdleBlocks();
      result = driver->cuMemAlloc(&pointer, size);
    }
    char call[64];
    std::snprintf(call, sizeof(call), "cuMemAlloc(%llu bytes)",
                  static_cast<unsigned long long>(sizeBytes));
    if (!check(result, call))
      return nullptr;
    std::lock_guard<std::mutex> lock(blocksMutex);
    markLive(pointer, size);
  }
  // Poisoned on the stream of the call, ahead of the kernels that use it.
  if (poisonAllocations()) {
    auto callStream = static_cast<CUstream>(stream);
    if (!check(driver->cuMemsetD32Async(pointer, 0xFFFFFFFFu, size / 4,
                                        callStream),
               "cuMemsetD32Async (poisoning a new buffer)") ||
        (size % 4 >= 2 &&
         !check(driver->cuMemsetD16Async(pointer + size / 4 * 4, 0xFFFFu, 1,
                                         callStream),
                "cuMemsetD16Async (poisoning a new buffer)")))
      return nullptr;
  }
  return reinterpret_cast<void *>(static_cast<uintptr_t>(pointer));
}

MGPU_EXPORT void mgpuMemFree(void *pointer, void *stream) {
  (void)stream; // Parked until the call is over, so any stream is done.
  if (!pointer)
    return;
  if (parkIfCached(toDevice(pointer)))
    return;
  if (const Driver *driver = beginRelease())
    check(driver->cuMemFree(toDevice(pointer)), "cuMemFree");
}

MGPU_EXPORT void mgpuMemcpy(void *dest, void *source, size_t sizeBytes,
                            void *stream) {
  if (sizeBytes == 0)
    return;
  // With unified addressing the driver tells host and device pointers apart.
  if (const Driver *driver = beginWork())
    check(driver->cuMemcpyAsync(toDevice(dest), toDevice(source), sizeBytes,
                                static_cast<CUstream>(stream)),
          "cuMemcpyAsync");
}

MGPU_EXPORT void mgpuMemset32(void *dest, unsigned int value, size_t count,
                              void *stream) {
  if (count == 0)
    return;
  if (const Driver *driver = beginWork())
    check(driver->cuMemsetD32Async(toDevice(dest), value, count,
                                   static_cast<CUstream>(stream)),
          "cuMemsetD32Async");
}

MGPU_EXPORT void mgpuMemset16(void *dest, unsigned short value, size_t count,
                              void *stream) {
  if (count == 0)
    return;
  if (const Driver *driver = beginWork())
    check(driver->cuMemsetD16Async(toDevice(dest), value, count,
                                   static_cast<CUstream>(stream)),
          "cuMemsetD16Async");
}

/// The tensor map (TMA descriptor) of a strided memref, in device memory, as
/// MLIR's nvgpu-to-nvvm lowering asks for it (LLVM 22): `descriptor` points
/// to the ranked memref descriptor {allocated, aligned, offset, sizes[rank],
/// strides[rank]}, `box` holds the box sizes outermost first. Tensor maps
/// depend only on the buffer and the box, and a layer asks for the same
/// ones at every call, so each distinct map is copied to the device once
/// and kept.
MGPU_EXPORT void *mgpuTensorMapEncodeTiledMemref(
    int64_t rank, void *descriptor, int64_t dataType, int64_t interleave,
    int64_t swizzle, int64_t l2Promotion, int64_t oobFill,
    const int64_t *box) {
  const Driver *driver = beginWork();
  if (!driver)
    return nullptr;
  if (!driver->cuTensorMapEncodeTiled) {
    recordDeferredError("mgpuTensorMapEncodeTiledMemref: the driver has no "
                        "cuTensorMapEncodeTiled (CUDA 12 or later needed)");
    return nullptr;
  }
  // Element sizes of CUtensorMapDataType 0..12.
  static const int elementBytes[] = {1, 2, 4, 4, 8, 8, 2, 4, 8, 2, 4, 4, 4};
  if (rank < 1 || rank > 5 || dataType < 0 || dataType > 12 || !descriptor ||
      !box) {
    recordDeferredError("mgpuTensorMapEncodeTiledMemref: bad arguments "
                        "(rank %lld, data type %lld)",
                        static_cast<long long>(rank),
                        static_cast<long long>(dataType));
    return nullptr;
  }
  struct Header {
    char *allocated, *aligned;
    int64_t offset;
  };
  const auto *header = static_cast<const Header *>(descriptor);
  const auto *sizes = reinterpret_cast<const int64_t *>(header + 1);
  const int64_t *strides = sizes + rank;
  int bytes = elementBytes[dataType];
  // The driver wants the innermost dimension first.
  uint64_t dims[5], byteStrides[5];
  unsigned boxDims[5], elementStrides[5];
  for (int64_t i = 0; i < rank; ++i) {
    dims[i] = static_cast<uint64_t>(sizes[rank - 1 - i]);
    byteStrides[i] = static_cast<uint64_t>(strides[rank - 1 - i]) * bytes;
    boxDims[i] = static_cast<unsigned>(box[rank - 1 - i]);
    elementStrides[i] = 1;
  }
  alignas(64) unsigned char map[128] = {};
  char *address = header->aligned + header->offset * bytes;
  char call[160];
  std::snprintf(call, sizeof(call),
                "cuTensorMapEncodeTiled(rank %lld, inner dim %llu, box %u)",
                static_cast<long long>(rank),
                static_cast<unsigned long long>(dims[0]), boxDims[0]);
  // globalStrides omits the innermost dimension's (the element size).
  if (!check(driver->cuTensorMapEncodeTiled(
                 map, static_cast<int>(dataType), static_cast<unsigned>(rank),
                 address, dims, byteStrides + 1, boxDims, elementStrides,
                 static_cast<int>(interleave), static_cast<int>(swizzle),
                 static_cast<int>(l2Promotion), static_cast<int>(oobFill)),
             call))
    return nullptr;
  static std::mutex mapsMutex;
  static std::map<std::string, CUdeviceptr> maps;
  std::string key(reinterpret_cast<const char *>(map), sizeof(map));
  std::lock_guard<std::mutex> lock(mapsMutex);
  auto found = maps.find(key);
  if (found != maps.end())
    return reinterpret_cast<void *>(static_cast<uintptr_t>(found->second));
  CUdeviceptr device = 0;
  if (!check(driver->cuMemAlloc(&device, sizeof(map)), "cuMemAlloc") ||
      !check(driver->cuMemcpyHtoD(device, map, sizeof(map)), "cuMemcpyHtoD"))
    return nullptr;
  maps.emplace(std::move(key), device);
  return reinterpret_cast<void *>(static_cast<uintptr_t>(device));
}

MGPU_EXPORT void mgpuSetDefaultDevice(int32_t device) {
  defaultDevice.store(device, std::memory_order_relaxed);
  deviceChosen.store(true, std::memory_order_relaxed);
}

void moert::cuda::setLocalRank(int rank) {
  localRank.store(rank, std::memory_order_relaxed);
}

int64_t moert_device_memory_high_water(void) {
  std::lock_guard<std::mutex> lock(blocksMutex);
  return liveHighWater;
}

void moert_device_memory_reset_high_water(void) {
  std::lock_guard<std::mutex> lock(blocksMutex);
  liveHighWater = liveBytes;
}
