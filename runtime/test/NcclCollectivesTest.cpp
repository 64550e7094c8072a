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

#include <cstdlib>
#include <string>

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

} // namespace
