//===- CudaTest.cpp - Tests of the CUDA backend ---------------------------===//
//
// Runs the fake CUDA artifacts of cuda_fake_artifact.c and the mgpu*
// functions that libmoert.so exports. Where there is no usable CUDA driver
// and device, the tests that need one are skipped and those of the failure
// paths run; with a GPU it is the other way round.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <regex>
#include <thread>
#include <vector>

// The mgpu* functions, as MLIR's gpu-to-llvm lowering declares them.
extern "C" {
void *mgpuStreamCreate(void);
void mgpuStreamSynchronize(void *stream);
void mgpuStreamDestroy(void *stream);
void mgpuStreamWaitEvent(void *stream, void *event);
void *mgpuEventCreate(void);
void mgpuEventDestroy(void *event);
void mgpuEventSynchronize(void *event);
void mgpuEventRecord(void *event, void *stream);
void mgpuLaunchKernel(void *function, int64_t gridX, int64_t gridY,
                      int64_t gridZ, int64_t blockX, int64_t blockY,
                      int64_t blockZ, int32_t sharedMemBytes, void *stream,
                      void **params, void **extra, int64_t paramsCount);
void mgpuLaunchClusterKernel(void *function, int64_t clusterX, int64_t clusterY,
                             int64_t clusterZ, int64_t gridX, int64_t gridY,
                             int64_t gridZ, int64_t blockX, int64_t blockY,
                             int64_t blockZ, int32_t sharedMemBytes,
                             void *stream, void **params, void **extra);
void *mgpuModuleGetFunction(void *module, const char *name);
void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared);
void mgpuMemFree(void *pointer, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream);
void mgpuMemset32(void *dst, unsigned int value, size_t count, void *stream);
void mgpuMemset16(void *dst, unsigned short value, size_t count, void *stream);
void *mgpuTensorMapEncodeTiledMemref(int64_t rank, void *descriptor,
                                     int64_t dataType, int64_t interleave,
                                     int64_t swizzle, int64_t l2Promotion,
                                     int64_t oobFill, const int64_t *box);
}

using namespace moert_test;

namespace {

/// A rank-3 strided memref descriptor, as MLIR lays it out.
struct Descriptor3 {
  void *allocated, *aligned;
  int64_t offset, sizes[3], strides[3];
};

/// The tensor map of a bf16 [4, 64, 128] buffer in boxes of `box`, 128-byte
/// swizzle, zero fill (CUtensorMapDataType 9 is bf16).
void *encodeBf16Map(void *buffer, const int64_t (&box)[3]) {
  Descriptor3 d{buffer, buffer, 0, {4, 64, 128}, {64 * 128, 128, 1}};
  return mgpuTensorMapEncodeTiledMemref(3, &d, /*dataType=*/9,
                                        /*interleave=*/0, /*swizzle=*/3,
                                        /*l2Promotion=*/0, /*oobFill=*/0, box);
}

/// Why CUDA artifacts cannot run here, or "" if they can.
std::string cudaUnavailable() {
  char name[320];
  if (moert_cuda_device_name(name, sizeof(name)) == 0)
    return "";
  return moert_last_error();
}

/// The device's compute capability as major * 10 + minor, from
/// moert_cuda_device_name's "NAME, sm_XY".
int deviceCapability() {
  char name[320];
  if (moert_cuda_device_name(name, sizeof(name)) != 0)
    return -1;
  std::cmatch match;
  if (!std::regex_search(name, match, std::regex(", sm_([0-9]+)$")))
    return -1;
  return std::stoi(match[1].str());
}

#define SKIP_WITHOUT_CUDA()                                                    \
  do {                                                                         \
    std::string why = cudaUnavailable();                                       \
    if (!why.empty())                                                          \
      GTEST_SKIP() << "no CUDA driver/device: " << why;                        \
  } while (0)

#define SKIP_WITH_CUDA()                                                       \
  do {                                                                         \
    if (cudaUnavailable().empty())                                             \
      GTEST_SKIP() << "a CUDA driver and device are present";                  \
  } while (0)


/// Loading the CPU fake artifact works (and clears any deferred error that
/// earlier mgpu* calls left).
void expectCpuArtifactStillWorks() {
  moert_artifact *artifact = nullptr;
  ASSERT_EQ(moert_artifact_load(FAKE_ARTIFACT, &artifact), 0)
      << moert_last_error();
  TensorPtr x = makeTensor<float>(MOERT_F32, {2}, {1.0f, 2.0f});
  moert_tensor *args[] = {x.get()};
  moert_tensor *results[2] = {};
  EXPECT_EQ(moert_function_call(moert_artifact_lookup(artifact, "echo"), args,
                                1, results, 2),
            0)
      << moert_last_error();
  moert_tensor_free(results[0]);
  moert_tensor_free(results[1]);
  moert_artifact_unload(artifact);
}

//===--- Everywhere ---===//

TEST(Cuda, AnUnsupportedTargetIsAnError) {
  moert_artifact *artifact = nullptr;
  EXPECT_NE(moert_artifact_load(CUDA_BADTARGET_ARTIFACT, &artifact), 0);
  EXPECT_EQ(artifact, nullptr);
  EXPECT_TRUE(errorContains(std::string(CUDA_BADTARGET_ARTIFACT) +
                            ": unsupported CUDA target 'cuda:gfx90a' "
                            "(expected cuda:sm_XY"));
  expectCpuArtifactStillWorks();
}

TEST(Cuda, DeviceNameNeedsABuffer) {
  EXPECT_NE(moert_cuda_device_name(nullptr, 64), 0);
  EXPECT_TRUE(errorContains("moert_cuda_device_name: no buffer"));
  char small[4] = "xyz";
  EXPECT_NE(moert_cuda_device_name(small, 0), 0);
  EXPECT_STREQ(small, "xyz");
}

TEST(Cuda, CpuArtifactsAreCpu) {
  moert_artifact *artifact = nullptr;
  ASSERT_EQ(moert_artifact_load(FAKE_ARTIFACT, &artifact), 0);
  EXPECT_EQ(moert_artifact_backend(artifact), MOERT_BACKEND_CPU);
  moert_artifact_unload(artifact);
  EXPECT_EQ(moert_artifact_backend(nullptr), MOERT_BACKEND_CPU);
}

//===--- Without a driver or device ---===//

TEST(CudaUnavailable, ACudaArtifactFailsToLoadAndSaysWhy) {
  SKIP_WITH_CUDA();
  std::string why = cudaUnavailable();
  // What this machine lacks: the driver, a device, or a working driver.
  EXPECT_TRUE(why.find("the CUDA backend needs the NVIDIA driver") == 0 ||
              why.find("no CUDA device found") == 0 ||
              why.find("cannot initialize the CUDA driver") == 0)
      << why;
  if (why.find("cannot load libcuda.so.1") != std::string::npos) {
    EXPECT_NE(why.find("; run on a machine with an NVIDIA GPU and driver, or "
                       "compile with --target=cpu"),
              std::string::npos)
        << why;
  }
  for (const char *path :
       {CUDA_GARBAGE_ARTIFACT, CUDA_FAKE_ARTIFACT, CUDA_SM80_ARTIFACT}) {
    moert_artifact *artifact = reinterpret_cast<moert_artifact *>(&why);
    EXPECT_NE(moert_artifact_load(path, &artifact), 0) << path;
    EXPECT_EQ(artifact, nullptr);
    EXPECT_EQ(std::string(moert_last_error()), std::string(path) + ": " + why);
  }
  expectCpuArtifactStillWorks();
}

TEST(CudaUnavailable, DeviceNameIsAnError) {
  SKIP_WITH_CUDA();
  char name[320] = "stale";
  EXPECT_NE(moert_cuda_device_name(name, sizeof(name)), 0);
  EXPECT_STREQ(name, "");
  EXPECT_FALSE(std::string(moert_last_error()).empty());
}

TEST(CudaUnavailable, MgpuCallsDoNothing) {
  SKIP_WITH_CUDA();
  EXPECT_EQ(mgpuMemAlloc(64, nullptr, false), nullptr);
  EXPECT_EQ(mgpuStreamCreate(), nullptr);
  EXPECT_EQ(mgpuEventCreate(), nullptr);
  EXPECT_EQ(mgpuModuleGetFunction(nullptr, "f"), nullptr);
  int host[4] = {1, 2, 3, 4}, copy[4] = {};
  mgpuMemcpy(copy, host, sizeof(host), nullptr);
  mgpuMemset32(copy, 7, 4, nullptr);
  mgpuMemset16(copy, 7, 4, nullptr);
  EXPECT_EQ(copy[0], 0);
  mgpuLaunchKernel(nullptr, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  mgpuLaunchClusterKernel(nullptr, 2, 1, 1, 2, 1, 1, 1, 1, 1, 0, nullptr,
                          nullptr, nullptr);
  mgpuStreamSynchronize(nullptr);
  mgpuStreamWaitEvent(nullptr, nullptr);
  mgpuEventRecord(nullptr, nullptr);
  mgpuEventSynchronize(nullptr);
  mgpuEventDestroy(nullptr);
  mgpuStreamDestroy(nullptr);
  mgpuMemFree(nullptr, nullptr);
  int64_t box[3] = {1, 64, 64};
  EXPECT_EQ(encodeBf16Map(copy, box), nullptr);
  expectCpuArtifactStillWorks();
}

//===--- With a driver and device ---===//

TEST(CudaDevice, NameAndCapability) {
  SKIP_WITHOUT_CUDA();
  char name[320];
  ASSERT_EQ(moert_cuda_device_name(name, sizeof(name)), 0);
  EXPECT_TRUE(std::regex_search(name, std::regex("^.+, sm_[0-9]+$"))) << name;
  EXPECT_GT(deviceCapability(), 0);
  char tiny[8];
  EXPECT_NE(moert_cuda_device_name(tiny, sizeof(tiny)), 0);
  EXPECT_TRUE(errorContains("the buffer of 8 bytes is too small"));
}

// While poisoning is on, a new device buffer reads as 0xFF bytes (NaN in
// every float type), including a 2-byte tail; off again, it is left alone.
TEST(CudaDevice, PoisonedAllocations) {
  SKIP_WITHOUT_CUDA();
  constexpr size_t bytes = 4 * 257 + 2;
  void *stream = mgpuStreamCreate();
  ASSERT_NE(stream, nullptr);
  moert_set_poison_allocations(1);
  auto *device = static_cast<uint8_t *>(mgpuMemAlloc(bytes, stream, false));
  moert_set_poison_allocations(0);
  ASSERT_NE(device, nullptr);
  std::vector<uint8_t> host(bytes, 0);
  mgpuMemcpy(host.data(), device, bytes, stream);
  mgpuStreamSynchronize(stream);
  EXPECT_EQ(host, std::vector<uint8_t>(bytes, 0xFF));
  mgpuMemFree(device, stream);
  mgpuStreamDestroy(stream);
}

TEST(CudaDevice, MgpuMemoryRoundTrip) {
  SKIP_WITHOUT_CUDA();
  constexpr size_t n = 1000;
  void *stream = mgpuStreamCreate();
  ASSERT_NE(stream, nullptr);
  auto *device = static_cast<uint32_t *>(mgpuMemAlloc(n * 4, stream, false));
  ASSERT_NE(device, nullptr);
  EXPECT_EQ(mgpuMemAlloc(0, stream, false), nullptr) << "as MLIR's wrappers";

  // memset32, then device to host.
  std::vector<uint32_t> host(n, 0);
  mgpuMemset32(device, 0xa5a5f00du, n, stream);
  mgpuMemcpy(host.data(), device, n * 4, stream);
  mgpuStreamSynchronize(stream);
  EXPECT_EQ(host, std::vector<uint32_t>(n, 0xa5a5f00du));

  // Host to device, memset16 on a part, device to host, on another stream
  // that waits for an event of the first.
  std::vector<uint32_t> values(n);
  for (size_t i = 0; i < n; ++i)
    values[i] = static_cast<uint32_t>(i * 2654435761u);
  mgpuMemcpy(device, values.data(), n * 4, stream);
  mgpuMemset16(device + 10, 0x1234, 4, stream); // Elements 10 and 11.
  void *event = mgpuEventCreate();
  ASSERT_NE(event, nullptr);
  mgpuEventRecord(event, stream);
  void *other = mgpuStreamCreate();
  ASSERT_NE(other, nullptr);
  mgpuStreamWaitEvent(other, event);
  std::vector<uint32_t> back(n, 0);
  mgpuMemcpy(back.data(), device, n * 4, other);
  mgpuStreamSynchronize(other);
  mgpuEventSynchronize(event);
  values[10] = values[11] = 0x12341234u;
  EXPECT_EQ(back, values);

  // An event recorded on stream 0 after work on a blocking stream.
  void *done = mgpuEventCreate();
  mgpuMemset32(device, 0, n, stream);
  mgpuEventRecord(done, nullptr);
  mgpuEventSynchronize(done);
  mgpuMemcpy(back.data(), device, n * 4, nullptr);
  mgpuStreamSynchronize(nullptr);
  EXPECT_EQ(back, std::vector<uint32_t>(n, 0));

  mgpuEventDestroy(done);
  mgpuEventDestroy(event);
  mgpuStreamDestroy(other);
  mgpuMemFree(device, stream);
  mgpuStreamDestroy(stream);
  expectCpuArtifactStillWorks();
}

TEST(CudaDevice, TensorMapsAreEncodedOnceEach) {
  SKIP_WITHOUT_CUDA();
  void *buffer = mgpuMemAlloc(4 * 64 * 128 * 2, nullptr, false);
  ASSERT_NE(buffer, nullptr);
  void *map = encodeBf16Map(buffer, {1, 64, 64});
  ASSERT_NE(map, nullptr) << moert_last_error();
  // The same map again: the same device copy; another box: another map.
  EXPECT_EQ(encodeBf16Map(buffer, {1, 64, 64}), map);
  void *other = encodeBf16Map(buffer, {1, 32, 64});
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other, map);
  // The map is in device memory and not empty.
  unsigned char bytes[128] = {};
  mgpuMemcpy(bytes, map, sizeof(bytes), nullptr);
  mgpuStreamSynchronize(nullptr);
  EXPECT_NE(std::count(bytes, bytes + 128, 0), 128);
  // A box the driver refuses (256 rows at most) is an error, not a map.
  EXPECT_EQ(encodeBf16Map(buffer, {1, 512, 64}), nullptr);
  mgpuMemFree(buffer, nullptr);
  expectCpuArtifactStillWorks();
}

TEST(CudaDevice, GpuCodeTheDriverRejectsFailsTheLoad) {
  SKIP_WITHOUT_CUDA();
  moert_artifact *artifact = nullptr;
  EXPECT_NE(moert_artifact_load(CUDA_GARBAGE_ARTIFACT, &artifact), 0);
  EXPECT_EQ(artifact, nullptr);
  EXPECT_TRUE(errorContains(std::string(CUDA_GARBAGE_ARTIFACT) +
                            ": cannot load the artifact's GPU code: "
                            "cuModuleLoadData failed: CUDA_ERROR_"));
  expectCpuArtifactStillWorks();
}

class CudaArtifact : public FakeArtifactTest {
protected:
  void SetUp() override {
    SKIP_WITHOUT_CUDA();
    if (moert_artifact_load(CUDA_FAKE_ARTIFACT, &artifact) != 0) {
      std::string why = moert_last_error();
      if (why.find("recompile with") != std::string::npos)
        GTEST_SKIP() << "the fake CUDA artifact is for sm_90: " << why;
      FAIL() << why;
    }
    openFreeCounter(CUDA_FAKE_ARTIFACT);
  }

  /// Calls `name` (bad_launch, bad_cluster) on five elements: the call
  /// fails, leaves no result and its error says `why`; a call after it works.
  void expectFailedLaunch(const char *name, const char *why) {
    TensorPtr x = makeTensor<float>(MOERT_F32, {5}, {1, 2, 3, 4, 5});
    moert_tensor *args[] = {x.get()};
    moert_tensor *result = reinterpret_cast<moert_tensor *>(this);
    EXPECT_NE(moert_function_call(lookup(name), args, 1, &result, 1), 0);
    EXPECT_EQ(result, nullptr);
    EXPECT_TRUE(errorContains(why)) << moert_last_error();
    checkAdd("add", 10);
  }

  /// Calls add or add_big_smem on n random elements and checks the sum.
  void checkAdd(const char *name, int64_t n) {
    std::mt19937 rng(static_cast<unsigned>(n));
    std::uniform_real_distribution<float> real(-10.0f, 10.0f);
    std::vector<float> a(n), b(n), sum(n);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = real(rng);
      b[i] = real(rng);
      sum[i] = a[i] + b[i];
    }
    TensorPtr ta = makeTensor(MOERT_F32, {n}, a);
    TensorPtr tb = makeTensor(MOERT_F32, {n}, b);
    moert_tensor *args[] = {ta.get(), tb.get()};
    moert_tensor *result = nullptr;
    ASSERT_EQ(moert_function_call(lookup(name), args, 2, &result, 1), 0)
        << moert_last_error();
    TensorPtr owned(result);
    EXPECT_EQ(dimsOf(result), std::vector<int64_t>{n});
    EXPECT_EQ(contents<float>(result), sum);
    EXPECT_EQ(contents<float>(ta.get()), a) << "arguments are left alone";
  }
};

TEST_F(CudaArtifact, CallsOnDeviceBuffersOnTheCallersStream) {
  constexpr int64_t n = 513;
  std::vector<float> a(n), b(n), sum(n);
  for (int64_t i = 0; i < n; ++i) {
    a[i] = 0.5f * static_cast<float>(i);
    b[i] = 3.0f - static_cast<float>(i);
    sum[i] = a[i] + b[i];
  }
  void *stream = mgpuStreamCreate();
  ASSERT_NE(stream, nullptr);
  void *da = mgpuMemAlloc(n * 4, stream, false);
  void *db = mgpuMemAlloc(n * 4, stream, false);
  void *dy = mgpuMemAlloc(n * 4, stream, false);
  mgpuMemcpy(da, a.data(), n * 4, stream);
  mgpuMemcpy(db, b.data(), n * 4, stream);
  mgpuStreamSynchronize(stream);
  auto tensor = [](void *data) {
    moert_device_tensor t = {};
    t.dtype = MOERT_F32;
    t.rank = 1;
    t.dims[0] = n;
    t.data = data;
    return t;
  };
  moert_device_tensor args[] = {tensor(da), tensor(db)};
  moert_device_tensor result = tensor(dy);
  ASSERT_EQ(moert_function_call_device(lookup("add"), args, 2, &result, 1,
                                       stream),
            0)
      << moert_last_error();
  std::vector<float> back(n, -1.0f);
  mgpuMemcpy(back.data(), dy, n * 4, stream);
  mgpuStreamSynchronize(stream);
  EXPECT_EQ(back, sum);
  mgpuMemFree(da, stream);
  mgpuMemFree(db, stream);
  mgpuMemFree(dy, stream);
  mgpuStreamDestroy(stream);
  checkAdd("add", 10); // Host calls create their own streams again.
}

TEST_F(CudaArtifact, HandsOverItsOwnResultBuffers) {
  constexpr int64_t n = 300;
  std::vector<float> a(n), b(n), sum(n);
  for (int64_t i = 0; i < n; ++i) {
    a[i] = 1.5f * static_cast<float>(i);
    b[i] = 7.0f - static_cast<float>(i);
    sum[i] = a[i] + b[i];
  }
  void *stream = mgpuStreamCreate();
  ASSERT_NE(stream, nullptr);
  void *da = mgpuMemAlloc(n * 4, stream, false);
  void *db = mgpuMemAlloc(n * 4, stream, false);
  mgpuMemcpy(da, a.data(), n * 4, stream);
  mgpuMemcpy(db, b.data(), n * 4, stream);
  mgpuStreamSynchronize(stream);
  moert_device_tensor args[2] = {};
  for (int i = 0; i < 2; ++i) {
    args[i].dtype = MOERT_F32;
    args[i].rank = 1;
    args[i].dims[0] = n;
    args[i].data = i ? db : da;
  }
  void *previous = nullptr, *previousOwner = nullptr;
  for (int call = 0; call < 3; ++call) {
    moert_device_result result = {};
    ASSERT_EQ(moert_function_call_device_owned(lookup("add"), args, 2,
                                               &result, 1, stream),
              0)
        << moert_last_error();
    ASSERT_NE(result.owner, nullptr);
    EXPECT_EQ(result.tensor.dtype, MOERT_F32);
    ASSERT_EQ(result.tensor.rank, 1);
    EXPECT_EQ(result.tensor.dims[0], n);
    EXPECT_NE(result.tensor.data, da);
    EXPECT_NE(result.tensor.data, db);
    // The call only queued the work on `stream`: a copy queued behind it
    // sees the result.
    std::vector<float> back(n, -1.0f);
    mgpuMemcpy(back.data(), result.tensor.data, n * 4, stream);
    mgpuStreamSynchronize(stream);
    EXPECT_EQ(back, sum);
    // Two results alive at once never share memory.
    EXPECT_NE(result.tensor.data, previous);
    if (previous)
      moert_device_result_release(previousOwner);
    previous = result.tensor.data;
    previousOwner = result.owner;
  }
  moert_device_result_release(previousOwner);
  mgpuMemFree(da, stream);
  mgpuMemFree(db, stream);
  mgpuStreamDestroy(stream);
}

TEST_F(CudaArtifact, IsACudaArtifact) {
  EXPECT_EQ(moert_artifact_backend(artifact), MOERT_BACKEND_CUDA);
  EXPECT_STREQ(moert_artifact_target(artifact), "cuda:sm_90");
}

TEST_F(CudaArtifact, Adds) {
  checkAdd("add", 1000);
  checkAdd("add", 1);
  checkAdd("add", 0);
}

TEST_F(CudaArtifact, CallsFromAnotherThread) {
  // The context is made current on the calling thread, not the loading one.
  std::thread([&] { checkAdd("add", 77); }).join();
}

TEST_F(CudaArtifact, LaunchesWithMoreThan48KiBOfSharedMemory) {
  checkAdd("add_big_smem", 300);
}

TEST_F(CudaArtifact, CopiesStridedDeviceViewsAndFreesEachBlockOnce) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  TensorPtr tx = makeTensor(MOERT_F32, {2, 3}, x);
  moert_tensor *args[] = {tx.get()};
  moert_tensor *results[5] = {};
  int before = *freeCount;
  ASSERT_EQ(moert_function_call(lookup("views"), args, 1, results, 5), 0)
      << moert_last_error();
  TensorPtr owned[5];
  for (int r = 0; r < 5; ++r)
    owned[r].reset(results[r]);
  EXPECT_EQ(*freeCount, before) << "device memory is not the artifact's";
  EXPECT_EQ(dimsOf(results[0]), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(contents<float>(results[0]),
            (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(contents<float>(results[1]), x);
  EXPECT_EQ(contents<int32_t>(results[2]), std::vector<int32_t>(4, 0x01020304));
  EXPECT_EQ(contents<uint16_t>(results[3]), std::vector<uint16_t>(3, 0x3c00));
  EXPECT_EQ(contents<float>(results[4]),
            (std::vector<float>{6, 5, 4, 3, 2, 1}));
}

TEST_F(CudaArtifact, AFailedLaunchIsAnErrorAndTheNextCallWorks) {
  expectFailedLaunch("bad_launch",
                     "function 'bad_launch': a kernel failed: "
                     "cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE");
}

// The sm_90a GEMMs' launches in thread block clusters (cuLaunchKernelEx).
TEST_F(CudaArtifact, LaunchesInClusters) { checkAdd("add_in_clusters", 1000); }

TEST_F(CudaArtifact, AClusterLaunchThatFailsIsAnErrorThatSaysSo) {
  expectFailedLaunch("bad_cluster", "function 'bad_cluster': a kernel failed: "
                                    "cuLaunchKernelEx (clusters of 3 x 1 x 1) "
                                    "failed: CUDA_ERROR_");
}

TEST_F(CudaArtifact, ManagedMemoryIsRefused) {
  moert_tensor *result = nullptr;
  EXPECT_NE(moert_function_call(lookup("managed"), nullptr, 0, &result, 1), 0);
  EXPECT_TRUE(errorContains("function 'managed': a kernel failed: "
                            "mgpuMemAlloc: host-shared (managed) memory is "
                            "not supported"));
  checkAdd("add", 3);
}

TEST_F(CudaArtifact, HostResultsAreCopiedAndFreedByTheArtifact) {
  moert_tensor *result = nullptr;
  int before = *freeCount;
  ASSERT_EQ(moert_function_call(lookup("host_result"), nullptr, 0, &result, 1),
            0)
      << moert_last_error();
  TensorPtr owned(result);
  EXPECT_EQ(contents<float>(result), (std::vector<float>{1.5f, -2.5f}));
  EXPECT_EQ(*freeCount, before + 1);
}

TEST_F(CudaArtifact, TimesAFunction) {
  std::vector<float> a(4096, 1.0f);
  TensorPtr ta = makeTensor(MOERT_F32, {4096}, a);
  moert_tensor *args[] = {ta.get(), ta.get()};
  double times[5] = {-1, -1, -1, -1, -1};
  ASSERT_EQ(moert_function_time(lookup("add"), args, 2, 2, 5, times), 0)
      << moert_last_error();
  for (double time : times) {
    EXPECT_GT(time, 0.0);
    EXPECT_LT(time, 10000.0);
  }
  EXPECT_NE(moert_function_time(lookup("bad_launch"), args, 1, 0, 1, times), 0);
  EXPECT_TRUE(errorContains("function 'bad_launch': a kernel failed: "
                            "cuLaunchKernel failed"));
}

TEST_F(CudaArtifact, FreedDeviceBlocksAreReusedOnlyAfterACall) {
  constexpr uint64_t size = 1 << 20;
  void *stream = mgpuStreamCreate();
  ASSERT_NE(stream, nullptr);
  void *first = mgpuMemAlloc(size, stream, false);
  ASSERT_NE(first, nullptr);
  mgpuMemFree(first, stream);
  // Freed on a stream the device may still be working through: parked.
  void *second = mgpuMemAlloc(size, stream, false);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first);
  mgpuMemFree(second, stream);
  mgpuStreamDestroy(stream);
  // A call waits for the device; then both blocks are free for reuse, but
  // not for a request of less than half their size.
  checkAdd("add", 10);
  void *small = mgpuMemAlloc(size / 4, nullptr, false);
  EXPECT_NE(small, first);
  EXPECT_NE(small, second);
  void *again = mgpuMemAlloc(size, nullptr, false);
  EXPECT_TRUE(again == first || again == second);
  mgpuMemFree(again, nullptr);
  mgpuMemFree(small, nullptr);
  checkAdd("add", 10);
}

TEST_F(CudaArtifact, ProfilesKernelsByName) {
  std::vector<float> a(4096, 1.0f);
  TensorPtr ta = makeTensor(MOERT_F32, {4096}, a);
  moert_tensor *args[] = {ta.get(), ta.get()};
  moert_kernel_time entries[4] = {};
  int count = -1;
  ASSERT_EQ(moert_function_profile(lookup("add"), args, 2, 3, entries, 4,
                                   &count),
            0)
      << moert_last_error();
  ASSERT_EQ(count, 1) << "add launches one kernel";
  EXPECT_STREQ(entries[0].name, "add_f32");
  EXPECT_DOUBLE_EQ(entries[0].launches_per_run, 1.0);
  EXPECT_GT(entries[0].ms_per_run, 0.0);
  EXPECT_LT(entries[0].ms_per_run, 10000.0);
  // A capacity of 0 only counts.
  count = -1;
  ASSERT_EQ(moert_function_profile(lookup("add"), args, 2, 1, nullptr, 0,
                                   &count),
            0)
      << moert_last_error();
  EXPECT_EQ(count, 1);
  EXPECT_NE(moert_function_profile(lookup("add"), args, 2, 0, entries, 4,
                                   &count),
            0);
  EXPECT_TRUE(errorContains("add: cannot profile 0 runs into 4 entries"));
  EXPECT_NE(moert_function_profile(lookup("bad_launch"), args, 1, 2, entries,
                                   4, &count),
            0);
  EXPECT_TRUE(errorContains("function 'bad_launch': a kernel failed: "
                            "cuLaunchKernel failed"));
  checkAdd("add", 100); // and the next call works, unprofiled
}

TEST(CudaTargets, TheDeviceMustRunTheTargetsCode) {
  SKIP_WITHOUT_CUDA();
  int device = deviceCapability();
  ASSERT_GT(device, 0);
  const struct {
    const char *path;
    int target;
  } cases[] = {{CUDA_SM80_ARTIFACT, 80},
               {CUDA_FAKE_ARTIFACT, 90},
               {CUDA_SM100_ARTIFACT, 100}};
  for (const auto &c : cases) {
    SCOPED_TRACE(c.path);
    moert_artifact *artifact = nullptr;
    int status = moert_artifact_load(c.path, &artifact);
    std::string error = status ? moert_last_error() : "";
    moert_artifact_unload(artifact);
    if (device / 10 == c.target / 10 && device % 10 >= c.target % 10) {
      EXPECT_EQ(status, 0) << error;
      continue;
    }
    EXPECT_NE(status, 0);
    std::string wanted = "the artifact was compiled for sm_" +
                         std::to_string(c.target) + " but the GPU, ";
    EXPECT_NE(error.find(wanted), std::string::npos) << error;
    EXPECT_NE(error.find(device < c.target ? "which is older"
                                           : "not on a newer major version"),
              std::string::npos)
        << error;
    EXPECT_NE(
        error.find("recompile with --target=cuda:sm_" + std::to_string(device)),
        std::string::npos)
        << error;
  }
}

} // namespace
