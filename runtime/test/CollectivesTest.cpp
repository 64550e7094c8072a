//===- CollectivesTest.cpp - The world and the all-to-all on one rank -----===//
//
// Without mpirun a process is a world of one rank: the collectives are
// copies, and everything they check before sending is checked here. The
// same entry points over MPI on 2 and 4 ranks are collectives_mpi_check.cpp
// (ctest runs it under mpirun).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// Each TEST runs in its own process under ctest (gtest_discover_tests); in
// one process (lit) a refused call leaves the collectives failed until the
// next artifact call, so the tests that fail one come last.

TEST(Collectives, AbiVersionIsOne) {
  EXPECT_EQ(moert_collectives_abi_version(), 1);
  EXPECT_EQ(MOERT_COLLECTIVES_ABI_VERSION, 1);
}

// torchrun's variables without mpirun: the CPU collectives need MPI.
TEST(Collectives, TorchrunLaunchIsRefusedOnTheCpu) {
  ASSERT_EQ(setenv("WORLD_SIZE", "4", 1), 0);
  EXPECT_NE(moert_comm_init(), 0);
  EXPECT_NE(std::string(moert_last_error()).find("launch with mpirun -n 4"),
            std::string::npos)
      << moert_last_error();
  unsetenv("WORLD_SIZE");
  // Refused means not joined: a later init may still succeed.
  EXPECT_EQ(moert_comm_init(), 0) << moert_last_error();
}

TEST(Collectives, OneRankWithoutMpirun) {
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("WORLD_SIZE");
  ASSERT_EQ(moert_comm_init(), 0) << moert_last_error();
  EXPECT_EQ(moert_comm_rank(), 0);
  EXPECT_EQ(moert_comm_size(), 1);
  double values[2] = {1.5, -3.0};
  EXPECT_EQ(moert_comm_allreduce_max_f64(values, 2), 0);
  EXPECT_EQ(values[0], 1.5);
  EXPECT_EQ(values[1], -3.0);
}

TEST(Collectives, OneRankExchangeAndAllToAllAreCopies) {
  ASSERT_EQ(moert_comm_init(), 0) << moert_last_error();
  const int32_t counts[3] = {2, 0, 3};
  int32_t received[3] = {-1, -1, -1};
  ASSERT_EQ(moert_exchange_counts_v1(counts, received, 3, 1), 0);
  EXPECT_EQ(std::vector<int32_t>(received, received + 3),
            std::vector<int32_t>(counts, counts + 3));

  // 5 rows of 3 floats are sent (the 6th row is past the counts: not sent).
  std::vector<float> rows(6 * 3), out(7 * 3, -7.0f);
  for (size_t i = 0; i < rows.size(); ++i)
    rows[i] = 0.5f * float(i);
  ASSERT_EQ(moert_all_to_all_v1(rows.data(), counts, 6, received, out.data(), 7,
                                3, 1, 3 * sizeof(float)),
            0);
  for (size_t i = 0; i < 5 * 3; ++i)
    EXPECT_EQ(out[i], rows[i]) << i;
  for (size_t i = 5 * 3; i < out.size(); ++i)
    EXPECT_EQ(out[i], -7.0f) << "row past the received ones was written";
}

TEST(Collectives, WrongWorldSizeIsRefused) {
  ASSERT_EQ(moert_comm_init(), 0) << moert_last_error();
  const int32_t counts[4] = {1, 1, 1, 1};
  int32_t received[4];
  EXPECT_NE(moert_exchange_counts_v1(counts, received, 4, 2), 0);
  // Reported by the artifact's call; here the slot itself is not visible,
  // but every later collective refuses to run.
  EXPECT_NE(moert_exchange_counts_v1(counts, received, 4, 1), 0);
}

TEST(Collectives, CountsBeyondTheBuffersAreRefused) {
  ASSERT_EQ(moert_comm_init(), 0) << moert_last_error();
  const int32_t counts[2] = {3, 2}; // 5 rows, but the buffers hold 4
  std::vector<float> rows(4), out(4);
  EXPECT_NE(moert_all_to_all_v1(rows.data(), counts, 4, counts, out.data(), 4,
                                2, 1, sizeof(float)),
            0);
}

} // namespace
