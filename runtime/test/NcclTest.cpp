//===- NcclTest.cpp - NCCL loaded with dlopen, torchrun's rendezvous ------===//
//
// Without NCCL (CI) the loader's message is what a user reads; with it (the
// GPU machine, bench/ep_device.sh) its version must have ncclSend/ncclRecv.
// The rendezvous is plain TCP: two processes (fork) on this machine.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

TEST(Nccl, LoadsOrSaysWhatToInstall) {
  int version = 0;
  if (moert_nccl_version(&version) != 0) {
    std::string message = moert_last_error();
    EXPECT_NE(message.find("libnccl.so.2"), std::string::npos) << message;
    EXPECT_NE(message.find("install NCCL"), std::string::npos) << message;
    GTEST_SKIP() << "no NCCL here: " << message;
  }
  EXPECT_GE(version, 20700);
}

void setLaunch(int rank, int ranks, int port) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(ranks).c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
}

// Rank 0's 128 bytes (an ncclUniqueId's size) reach ranks 1 and 2, which
// start before rank 0 listens (they retry).
TEST(Rendezvous, RankZerosBlobReachesEveryRank) {
  int port = 20000 + int(getpid() % 20000);
  pid_t children[2];
  for (int rank = 1; rank <= 2; ++rank) {
    children[rank - 1] = fork();
    ASSERT_GE(children[rank - 1], 0);
    if (children[rank - 1] == 0) {
      setLaunch(rank, 3, port);
      unsigned char blob[128] = {0};
      int status = moert_rendezvous_broadcast(blob, sizeof(blob), 20);
      for (int i = 0; i < 128 && status == 0; ++i)
        status = blob[i] == (unsigned char)(i * 7 + 1) ? 0 : 3;
      _exit(status);
    }
  }
  usleep(200 * 1000);
  setLaunch(0, 3, port);
  unsigned char blob[128];
  for (int i = 0; i < 128; ++i)
    blob[i] = (unsigned char)(i * 7 + 1);
  EXPECT_EQ(moert_rendezvous_broadcast(blob, sizeof(blob), 20), 0)
      << moert_last_error();
  for (pid_t child : children) {
    int status = -1;
    waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "a rank did not receive rank 0's blob (status " << status << ")";
  }
}

// Of three ranks only rank 1 comes: rank 0 gives up and names rank 2, the
// one that failed before its rendezvous.
TEST(Rendezvous, RankZeroNamesTheRanksThatNeverCame) {
  int port = 20000 + int((getpid() + 7919) % 20000);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setLaunch(1, 3, port);
    unsigned char blob[16] = {0};
    _exit(moert_rendezvous_broadcast(blob, sizeof(blob), 5) == 0 &&
                  blob[3] == 42
              ? 0
              : 3);
  }
  setLaunch(0, 3, port);
  unsigned char blob[16] = {0};
  blob[3] = 42;
  EXPECT_NE(moert_rendezvous_broadcast(blob, sizeof(blob), 2), 0);
  std::string error = moert_last_error();
  EXPECT_NE(error.find("waited in vain for rank 2 of the WORLD_SIZE=3"),
            std::string::npos)
      << error;
  int status = -1;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "rank 1 did not receive rank 0's blob (status " << status << ")";
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  unsetenv("MASTER_ADDR");
  unsetenv("MASTER_PORT");
}

TEST(Rendezvous, MissingVariablesAreNamed) {
  unsetenv("MASTER_PORT");
  setenv("RANK", "0", 1);
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  char blob[4];
  EXPECT_NE(moert_rendezvous_broadcast(blob, sizeof(blob), 1), 0);
  EXPECT_NE(std::string(moert_last_error()).find("MASTER_PORT is not set"),
            std::string::npos)
      << moert_last_error();
  setenv("MASTER_PORT", "99999", 1);
  EXPECT_NE(moert_rendezvous_broadcast(blob, sizeof(blob), 1), 0);
  EXPECT_NE(std::string(moert_last_error()).find("is not a port"),
            std::string::npos)
      << moert_last_error();
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  unsetenv("MASTER_ADDR");
  unsetenv("MASTER_PORT");
}

TEST(Rendezvous, NobodyComingTimesOut) {
  setLaunch(1, 2, 1); // port 1: nobody listens there
  char blob[4];
  EXPECT_NE(moert_rendezvous_broadcast(blob, sizeof(blob), 1), 0);
  EXPECT_NE(std::string(moert_last_error()).find("cannot reach rank 0"),
            std::string::npos)
      << moert_last_error();
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  unsetenv("MASTER_ADDR");
  unsetenv("MASTER_PORT");
}

} // namespace
