//===- PeerProcessTest.cpp - A killed peer on this host is seen as ended --===//
//
// PeerProcess.h with processes the test makes: a running child is alive; a
// killed child is ended both before its parent reaps it (a zombie) and
// after; a child shares the host identity of its parent.
//
//===----------------------------------------------------------------------===//

#include "PeerProcess.h"

#include <gtest/gtest.h>

#include <array>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace {

/// A child that sleeps until it is killed; its pid.
pid_t startSleepingChild() {
  pid_t child = fork();
  if (child == 0) {
    for (;;)
      pause();
  }
  return child;
}

TEST(PeerProcess, ThisProcessIsAlive) {
  EXPECT_FALSE(moert::processHasEnded(int32_t(getpid())));
  // No process is numbered 0 or less: never reported ended.
  EXPECT_FALSE(moert::processHasEnded(0));
}

TEST(PeerProcess, KilledChildHasEndedBeforeAndAfterReaping) {
  pid_t child = startSleepingChild();
  ASSERT_GT(child, 0);
  EXPECT_FALSE(moert::processHasEnded(int32_t(child)));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  // Killed but not reaped: a zombie, which counts as ended. /proc shows the
  // state change once the kernel has delivered the signal.
  bool ended = false;
  for (int tries = 0; tries < 1000 && !ended; ++tries) {
    ended = moert::processHasEnded(int32_t(child));
    if (!ended)
      usleep(1000);
  }
  EXPECT_TRUE(ended);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(moert::processHasEnded(int32_t(child)));
}

TEST(PeerProcess, ChildSharesTheHostIdentity) {
  moert::PeerIdentity self = moert::thisProcess();
  EXPECT_EQ(self.pid, int32_t(getpid()));
  ASSERT_NE(self.hostLow | self.hostHigh, 0u) << "no boot id or pid namespace";
  int pipeEnds[2];
  ASSERT_EQ(pipe(pipeEnds), 0);
  pid_t child = fork();
  if (child == 0) {
    std::array<int32_t, 3> words = moert::thisProcess().words();
    ssize_t written = write(pipeEnds[1], words.data(), sizeof(words));
    _exit(written == ssize_t(sizeof(words)) ? 0 : 1);
  }
  std::array<int32_t, 3> words{};
  ASSERT_EQ(read(pipeEnds[0], words.data(), sizeof(words)),
            ssize_t(sizeof(words)));
  waitpid(child, nullptr, 0);
  close(pipeEnds[0]);
  close(pipeEnds[1]);
  moert::PeerIdentity other = moert::PeerIdentity::fromWords(words.data());
  EXPECT_TRUE(self.sameHost(other));
  EXPECT_EQ(other.pid, int32_t(child));
  moert::PeerIdentity elsewhere = other;
  elsewhere.hostHigh ^= 1;
  EXPECT_FALSE(self.sameHost(elsewhere));
}

} // namespace
