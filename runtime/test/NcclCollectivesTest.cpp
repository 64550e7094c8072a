//===- NcclCollectivesTest.cpp - The CUDA collectives' error paths --------===//
//
// What a user reads when the CUDA backend's collectives cannot run: no
// NCCL, a world of the wrong size, a torchrun peer that never comes, no
// driver. CI has neither NCCL nor a GPU, so each test checks the path that
// the machine it runs on takes; the GPU machine (bench/ep_device.sh) runs
// them with NCCL and the driver.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::string takeError() {
  char message[1024];
  return moert_comm_take_error(message, sizeof(message)) ? message : "";
}

/// Also drops a failure an earlier test left (in one process, lit).
void clearLaunch() {
  takeError();
  for (const char *name :
       {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
        "MOERT_NCCL_LIBRARY", "MOERT_NCCL_TIMEOUT_S", "OMPI_COMM_WORLD_SIZE"})
    unsetenv(name);
}

bool haveNccl() {
  int version = 0;
  return moert_nccl_version(&version) == 0;
}

TEST(NcclCollectives, MissingNcclNamesTheLibrary) {
  clearLaunch();
  setenv("MOERT_NCCL_LIBRARY", "libnccl-not-here.so.2", 1);
  ASSERT_EQ(moert_comm_init(), 0) << moert_last_error();
  int counts[2] = {0, 0}, received[2];
  EXPECT_NE(moert_cuda_exchange_counts_v1(counts, received, 2, 1), 0);
  std::string error = takeError();
  EXPECT_NE(error.find("cannot load libnccl-not-here.so.2"), std::string::npos)
      << error;
  EXPECT_NE(error.find("install NCCL"), std::string::npos) << error;
  // Every later collective says the same (a missing library stays missing).
  EXPECT_EQ(moert_cuda_all_to_all_start_v1(counts, counts, 0, counts, received,
                                           0, 2, 1, 4),
            0);
  EXPECT_NE(takeError().find("libnccl-not-here.so.2"), std::string::npos);
  EXPECT_EQ(moert_comm_finalize(), 0);
  clearLaunch();
}

TEST(NcclCollectives, WrongWorldSizeIsRefusedBeforeNccl) {
  clearLaunch();
  ASSERT_EQ(moert_comm_init(), 0) << moert_last_error();
  int counts[4] = {1, 1, 1, 1}, received[4];
  EXPECT_NE(moert_cuda_exchange_counts_v1(counts, received, 4, 2), 0);
  std::string error = takeError();
  EXPECT_NE(error.find("compiled for 2 expert-parallel ranks (ep=2) but runs "
                       "on 1"),
            std::string::npos)
      << error;
  // Taken: the next call runs its checks again (and fails the same way).
  EXPECT_NE(moert_cuda_all_reduce_sum_i32_v1(counts, received, 4, 3), 0);
  EXPECT_NE(takeError().find("compiled for 3"), std::string::npos);
  EXPECT_EQ(moert_comm_finalize(), 0);
}

// torchrun's variables: accepted for the CUDA backend, refused by the CPU
// collectives (MPI) with what to do.
TEST(NcclCollectives, TorchrunLaunchIsForTheGpu) {
  clearLaunch();
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", "1", 1); // nobody listens on port 1
  EXPECT_NE(moert_comm_init(), 0); // the CPU's init refuses it
  ASSERT_EQ(moert_comm_init_launch(1), 0) << moert_last_error();
  EXPECT_EQ(moert_comm_rank(), 1);
  EXPECT_EQ(moert_comm_size(), 2);
  int counts[2] = {0, 0}, received[2];
  EXPECT_NE(moert_exchange_counts_v1(counts, received, 2, 2), 0);
  std::string error = takeError();
  EXPECT_NE(error.find("launch with mpirun -n 2"), std::string::npos) << error;

  // Over NCCL rank 1 waits for rank 0's unique id, which never comes: an
  // error naming the rank after MOERT_NCCL_TIMEOUT_S, not a hang.
  setenv("MOERT_NCCL_TIMEOUT_S", "1", 1);
  EXPECT_NE(moert_cuda_exchange_counts_v1(counts, received, 2, 2), 0);
  error = takeError();
  if (!haveNccl()) {
    EXPECT_NE(error.find("libnccl.so.2"), std::string::npos) << error;
  } else if (error.find("need the driver") == std::string::npos) {
    EXPECT_NE(error.find("rank 1 of 2: cannot share the NCCL unique id: "
                         "torchrun rendezvous"),
              std::string::npos)
        << error;
  }
  // The host's reduction (rank 0's verdict of --check, the trace's
  // barrier) runs over the same communicator under torchrun: it fails with
  // that reason too, never passes as if this rank were alone.
  double verdict[1] = {1.0};
  EXPECT_NE(moert_comm_allreduce_max_f64(verdict, 1), 0);
  std::string reduceError = moert_last_error();
  EXPECT_TRUE(reduceError.find("libnccl.so.2") != std::string::npos ||
              reduceError.find("need the driver") != std::string::npos ||
              reduceError.find("rank 1 of 2") != std::string::npos)
      << reduceError;
  EXPECT_EQ(moert_comm_finalize(), 0);
  clearLaunch();
}

// The host ABI of streams and events: without a driver a clear error,
// with one a stream that waits for an event recorded on another.
TEST(NcclCollectives, StreamsAndEvents) {
  void *stream = moert_stream_create_v1();
  if (!stream) {
    std::string error = moert_last_error();
    EXPECT_NE(error.find("libcuda.so.1"), std::string::npos) << error;
    GTEST_SKIP() << "no CUDA driver here: " << error;
  }
  void *other = moert_stream_create_v1();
  void *event = moert_event_create_v1();
  ASSERT_NE(other, nullptr) << moert_last_error();
  ASSERT_NE(event, nullptr) << moert_last_error();
  EXPECT_EQ(moert_event_record_v1(event, stream), 0) << moert_last_error();
  EXPECT_EQ(moert_stream_wait_event_v1(other, event), 0) << moert_last_error();
  EXPECT_EQ(moert_event_destroy_v1(event), 0);
  EXPECT_EQ(moert_stream_destroy_v1(other), 0);
  EXPECT_EQ(moert_stream_destroy_v1(stream), 0);
}

extern "C" {
void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared);
void mgpuMemFree(void *pointer, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream);
}

/// One rank's all-to-all on the GPU, as a CUDA artifact calls it: the
/// counts exchanged and the rows moved without the host reading a count,
/// the received buffer poisoned first so that a row not written shows, and
/// rows that do not fit reported at the drain.
void checkOneRankAllToAll(const char *path) {
  SCOPED_TRACE(path);
  const int64_t segments = 4, rowBytes = 64, rows = 10, capacity = 20;
  const int32_t counts[segments] = {3, 0, 5, 2};
  std::vector<uint8_t> sent(rows * rowBytes);
  for (size_t i = 0; i < sent.size(); ++i)
    sent[i] = uint8_t(i * 7 + 3);
  auto *deviceRows = mgpuMemAlloc(sent.size(), nullptr, false);
  auto *deviceCounts = mgpuMemAlloc(sizeof(counts), nullptr, false);
  auto *receivedCounts = mgpuMemAlloc(sizeof(counts), nullptr, false);
  auto *received = mgpuMemAlloc(capacity * rowBytes, nullptr, false);
  ASSERT_NE(received, nullptr) << moert_last_error();
  mgpuMemcpy(deviceRows, sent.data(), sent.size(), nullptr);
  mgpuMemcpy(deviceCounts, const_cast<int32_t *>(counts), sizeof(counts),
             nullptr);
  std::vector<uint8_t> poison(capacity * rowBytes, 0xff);
  mgpuMemcpy(received, poison.data(), poison.size(), nullptr);

  auto *c = static_cast<const int32_t *>(deviceCounts);
  auto *rc = static_cast<int32_t *>(receivedCounts);
  ASSERT_EQ(moert_cuda_exchange_counts_v1(c, rc, segments, 1), 0)
      << takeError();
  int64_t event = moert_cuda_all_to_all_start_v1(
      deviceRows, c, rows, rc, received, capacity, segments, 1, rowBytes);
  ASSERT_GT(event, 0) << takeError();
  ASSERT_EQ(moert_cuda_event_wait_v1(event), 0) << takeError();
  ASSERT_EQ(moert_cuda_drain_v1(), 0) << takeError();
  std::vector<uint8_t> got(poison.size());
  int32_t gotCounts[segments] = {};
  mgpuMemcpy(got.data(), received, got.size(), nullptr);
  mgpuMemcpy(gotCounts, receivedCounts, sizeof(gotCounts), nullptr);
  for (int64_t g = 0; g < segments; ++g)
    EXPECT_EQ(gotCounts[g], counts[g]) << "segment " << g;
  EXPECT_TRUE(std::equal(sent.begin(), sent.end(), got.begin()));
  EXPECT_TRUE(std::all_of(got.begin() + sent.size(), got.end(),
                          [](uint8_t b) { return b == 0xff; }))
      << "rows past the counts were written";

  // Ten rows into a buffer of five: the drain says so.
  event = moert_cuda_all_to_all_start_v1(deviceRows, c, rows, rc, received, 5,
                                         segments, 1, rowBytes);
  if (event > 0) {
    moert_cuda_event_wait_v1(event);
    EXPECT_NE(moert_cuda_drain_v1(), 0);
  }
  std::string error = takeError();
  EXPECT_NE(error.find("rank 0 of 1: all-to-all"), std::string::npos) << error;

  for (void *p : {deviceRows, deviceCounts, receivedCounts, received})
    mgpuMemFree(p, nullptr);
}

// The CUDA all-to-all on one rank, on both paths: split sizes on the device
// (the pull kernel) and read on the host (NCCL), the same rows either way.
TEST(NcclCollectives, AllToAllOnOneGpu) {
  clearLaunch();
  if (!haveNccl())
    GTEST_SKIP() << "no NCCL here";
  void *probe = mgpuMemAlloc(16, nullptr, false);
  if (!probe)
    GTEST_SKIP() << "no CUDA device here: " << moert_last_error();
  mgpuMemFree(probe, nullptr);
  checkOneRankAllToAll("split sizes on the device");
  EXPECT_EQ(moert_comm_finalize(), 0);
  setenv("MOERT_ALL_TO_ALL", "host", 1);
  checkOneRankAllToAll("split sizes on the host");
  unsetenv("MOERT_ALL_TO_ALL");
  EXPECT_EQ(moert_comm_finalize(), 0);
}

} // namespace
