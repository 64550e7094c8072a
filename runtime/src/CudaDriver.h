//===- CudaDriver.h - moert's view of the CUDA driver API -------*- C++ -*-===//
//
// moert builds with a C++ compiler alone: it never includes cuda.h nor links
// the CUDA toolkit. This header declares the few driver API types it uses
// (the driver's ABI, which NVIDIA keeps stable) and the loader that finds
// the entry points in libcuda.so.1 with dlopen/dlsym at the first need.
//
// The "deferred device error" is how the mgpu* functions that compiled CUDA
// artifacts call (Cuda.cpp) report failures: they return void or a handle,
// so the first failure is recorded in a process-wide slot, later mgpu* calls
// do nothing (those that release a resource still release it), and the
// runtime turns the slot into a moert error after dlopen and after each call.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_CUDADRIVER_H
#define MOERT_SRC_CUDADRIVER_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace moert {
namespace cuda {

//===--- Driver API types (cuda.h spells them the same) ---===//

using CUresult = int; ///< An enum in cuda.h; 0 is CUDA_SUCCESS.
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;

/// An exported device allocation (cuIpcGetMemHandle): 64 opaque bytes.
struct CUipcMemHandle {
  char reserved[64];
};
constexpr unsigned CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS = 1;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr int CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2;
constexpr unsigned CU_MEMORYTYPE_DEVICE = 2;
constexpr unsigned CU_MEMORYTYPE_UNIFIED = 4;
constexpr unsigned CU_STREAM_DEFAULT = 0; ///< Blocking: orders with stream 0.
constexpr unsigned CU_EVENT_DEFAULT = 0;
constexpr int CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4;
/// A launch attribute (cuLaunchKernelEx): an id, then 64 bytes of value.
struct CUlaunchAttribute {
  int id;
  char pad[4];
  union {
    char bytes[64];
    struct {
      unsigned x, y, z;
    } clusterDim;
  } value;
};
struct CUlaunchConfig {
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  CUstream hStream;
  CUlaunchAttribute *attrs;
  unsigned numAttrs;
};
static_assert(sizeof(CUlaunchAttribute) == 72, "cuda.h's layout");
/// Stream 0, the legacy default stream (the driver API without _ptsz).
const CUstream legacyStream = nullptr;

/// The driver entry points moert uses, resolved from libcuda.so.1.
struct Driver {
  CUresult (*cuInit)(unsigned flags);
  CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
  CUresult (*cuDeviceGetCount)(int *count);
  CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
  CUresult (*cuDeviceGetName)(char *name, int length, CUdevice device);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
  CUresult (*cuCtxSetCurrent)(CUcontext context);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuModuleLoadData)(CUmodule *module, const void *image);
  CUresult (*cuModuleUnload)(CUmodule module);
  CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module,
                                  const char *name);
  CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value);
  CUresult (*cuLaunchKernel)(CUfunction function, unsigned gridX,
                             unsigned gridY, unsigned gridZ, unsigned blockX,
                             unsigned blockY, unsigned blockZ,
                             unsigned sharedMemBytes, CUstream stream,
                             void **params, void **extra);
  /// CUDA 12 and later only (NULL before): launches with attributes, here
  /// the thread block clusters of sm_90a's multicasting GEMMs.
  CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *config,
                               CUfunction function, void **params,
                               void **extra);
  CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t bytes);
  CUresult (*cuMemFree)(CUdeviceptr pointer);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dest, const void *source, size_t bytes);
  CUresult (*cuMemcpyDtoH)(void *dest, CUdeviceptr source, size_t bytes);
  CUresult (*cuMemcpyAsync)(CUdeviceptr dest, CUdeviceptr source, size_t bytes,
                            CUstream stream);
  CUresult (*cuMemsetD32Async)(CUdeviceptr dest, unsigned value, size_t count,
                               CUstream stream);
  CUresult (*cuMemsetD16Async)(CUdeviceptr dest, unsigned short value,
                               size_t count, CUstream stream);
  CUresult (*cuPointerGetAttribute)(void *data, int attribute,
                                    CUdeviceptr pointer);
  CUresult (*cuStreamCreate)(CUstream *stream, unsigned flags);
  CUresult (*cuStreamSynchronize)(CUstream stream);
  CUresult (*cuStreamDestroy)(CUstream stream);
  CUresult (*cuStreamWaitEvent)(CUstream stream, CUevent event, unsigned flags);
  CUresult (*cuEventCreate)(CUevent *event, unsigned flags);
  CUresult (*cuEventRecord)(CUevent event, CUstream stream);
  CUresult (*cuEventSynchronize)(CUevent event);
  CUresult (*cuEventQuery)(CUevent event);
  CUresult (*cuEventElapsedTime)(float *milliseconds, CUevent start,
                                 CUevent end);
  CUresult (*cuEventDestroy)(CUevent event);
  /// CUDA 12 and later only (NULL before): a stream's id, unique for the
  /// process's lifetime, unlike its handle, which a new stream may reuse.
  CUresult (*cuStreamGetId)(CUstream stream, unsigned long long *id);
  /// CUDA IPC, for the all-to-all's staging buffers that the ranks of one
  /// node map (NcclCollectives.cpp); NULL where the driver lacks them.
  CUresult (*cuIpcGetMemHandle)(CUipcMemHandle *handle, CUdeviceptr pointer);
  CUresult (*cuIpcOpenMemHandle)(CUdeviceptr *pointer, CUipcMemHandle handle,
                                 unsigned flags);
  CUresult (*cuIpcCloseMemHandle)(CUdeviceptr pointer);
  CUresult (*cuGetErrorName)(CUresult error, const char **name);
  CUresult (*cuGetErrorString)(CUresult error, const char **text);
  /// CUDA 12 and later only: NULL on an older driver (sm_90a artifacts,
  /// which need it, do not run there anyway).
  CUresult (*cuTensorMapEncodeTiled)(
      void *tensorMap, int dataType, unsigned rank, void *globalAddress,
      const uint64_t *globalDim, const uint64_t *globalStrides,
      const unsigned *boxDim, const unsigned *elementStrides, int interleave,
      int swizzle, int l2Promotion, int oobFill);
};

/// Loads libcuda.so.1 and initializes the driver, once per process. Returns
/// the entry points, or NULL after setting the moert error to why not (the
/// same reason on every call: a driver cannot appear later).
const Driver *driver();

/// The compute capability and name of the device moert runs on.
struct DeviceInfo {
  CUdevice device = 0;
  int major = 0, minor = 0;
  char name[200] = {}; ///< Truncated there; real names are far shorter.
};

/// Initializes the driver and makes the primary context of the current
/// device (0 unless mgpuSetDefaultDevice chose another) current on the
/// calling thread. Fills `info` if given. NULL and a moert error on failure.
const Driver *enter(DeviceInfo *info = nullptr);

/// The rank's index on its machine (an expert-parallel launch): from then
/// on the device is that index modulo the visible devices, unless
/// mgpuSetDefaultDevice chose one.
void setLocalRank(int rank);

/// "cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE (invalid argument)".
std::string describeFailure(const char *call, CUresult result);

/// Sets the moert error to describeFailure(call, result) with a prefix.
void setDriverError(const char *prefix, const char *call, CUresult result);

/// Where a pointer points, as far as the driver knows.
enum class MemoryKind {
  Host,    ///< Memory the driver does not know: ordinary host memory.
  Device,  ///< Device (or managed) memory: cuMemcpyDtoH reads it.
  Unknown, ///< The driver could not tell (say, after a fatal device error).
};
MemoryKind memoryKind(const Driver &driver, const void *pointer);

//===--- The deferred device error ---===//

/// Records `format` as the deferred device error unless one is recorded.
void recordDeferredError(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

/// Moves the deferred device error, if any, into `message` and clears it.
/// Returns whether there was one.
bool takeDeferredError(std::string &message);

/// Clears the deferred device error.
void clearDeferredError();

/// Held by the runtime around everything that runs CUDA artifact code
/// (loading, calling, timing), so that the process-wide deferred error
/// belongs to the operation that reads it.
std::mutex &deviceMutex();

//===--- Device memory cache ---===//
//
// Artifacts allocate their planned arena (and a few buffers) through
// mgpuMemAlloc at every call and free them through mgpuMemFree on a stream,
// before the device is done with them. moert keeps such blocks: a freed
// block is parked until the runtime has waited for the device after the
// call (recycleDeviceBlocks), then the next allocation that fits reuses it.
// Otherwise every call would pay cuMemAlloc/cuMemFree of hundreds of MiB
// (about a millisecond) and cuMemFree would wait for the device mid-call.

/// After the device finished all work of a call: parked blocks become free
/// for reuse.
void recycleDeviceBlocks();

/// While set on this thread, the artifact's mgpuStreamCreate returns
/// `stream` (the caller's, e.g. PyTorch's current stream; NULL is the
/// legacy default stream) instead of a new one, and mgpuStreamDestroy
/// leaves it alone: moert_function_call_device runs the artifact's work on
/// the caller's stream.
void setCallStream(CUstream stream);
void clearCallStream();
bool hasCallStream();
/// The stream the current call's compiled code queues on (the legacy
/// stream when no call has set one): what the collectives order against.
CUstream currentCallStream();

/// Frees a block the device no longer uses: back to the cache if
/// mgpuMemAlloc made it, else cuMemFree.
void releaseDeviceBlock(const Driver &driver, CUdeviceptr pointer);

/// For a call that does not wait for the device (moert_function_call_
/// device_owned): the blocks parked so far are reused once the work queued
/// on `stream` until now is done (an event recorded there), not at the
/// next wait for the device.
void fenceParkedBlocks(CUstream stream);

/// Makes the fenced blocks whose event has completed free for reuse;
/// cheap, called as a call starts.
void recycleFinishedBlocks();

/// Gives back a block the caller of moert_function_call_device_owned held:
/// work queued on `stream` (the stream the call ran on) may still read it,
/// so it is parked behind an event recorded there now; a block mgpuMemAlloc
/// did not make is freed (cuMemFree waits for the device).
void parkDeviceBlock(CUdeviceptr pointer, CUstream stream);

/// A device block from the cache (or cuMemAlloc), as mgpuMemAlloc gives
/// the artifacts; NULL and a deferred error on failure.
void *allocateDeviceBlock(size_t size);

/// Returns every cached block that is not in use to the driver.
void trimDeviceBlocks();

//===--- Kernel profile ---===//

/// GPU time of one kernel, summed over the launches of a profile.
struct KernelTotal {
  int64_t launches = 0;
  double milliseconds = 0;
};

/// From now on, every mgpuLaunchKernel is bracketed by two CUDA events on its
/// stream. The device mutex must be held until finishKernelProfile.
void startKernelProfile();

/// Stops recording, waits for the recorded launches and adds their times to
/// `totals` under each kernel's name. False, with the moert error set, if a
/// driver call failed.
bool finishKernelProfile(std::map<std::string, KernelTotal> &totals);

} // namespace cuda
} // namespace moert

#endif // MOERT_SRC_CUDADRIVER_H
