//===- PollingWaitTest.cpp - A failed peer ends the wait, never hangs -----===//
//
// The CUDA collectives' wait (PollingWait.h) with the completion query and
// NCCL's asynchronous error played by the test: each outcome, whether the
// communicator is aborted, and that a wait with nothing completing ends by
// its time limit. On one GPU (or none) a real peer cannot fail mid-transfer.
//
//===----------------------------------------------------------------------===//

#include "PollingWait.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

namespace {

constexpr int kNotReady = 600; // CUDA_ERROR_NOT_READY

TEST(PollingWait, CompletesAfterSomePolls) {
  int polls = 0, aborts = 0, code = -1;
  auto outcome = moert::pollUntilDone(
      [&] { return ++polls < 5 ? kNotReady : 0; }, kNotReady, [] { return 0; },
      [&] { ++aborts; }, 10.0, code);
  EXPECT_EQ(outcome, moert::PollOutcome::Done);
  EXPECT_EQ(polls, 5);
  EXPECT_EQ(aborts, 0);
}

TEST(PollingWait, AsyncErrorAborts) {
  int polls = 0, aborts = 0, code = -1;
  // ncclRemoteError (6) on the third poll: a peer failed.
  auto outcome = moert::pollUntilDone(
      [&] { return kNotReady; }, kNotReady,
      [&] { return ++polls == 3 ? 6 : 0; }, [&] { ++aborts; }, 10.0, code);
  EXPECT_EQ(outcome, moert::PollOutcome::AsyncError);
  EXPECT_EQ(code, 6);
  EXPECT_EQ(aborts, 1);
}

TEST(PollingWait, FailedQueryAborts) {
  int aborts = 0, code = -1;
  // CUDA_ERROR_ILLEGAL_ADDRESS (700) from the event: a kernel failed.
  auto outcome = moert::pollUntilDone([] { return 700; }, kNotReady,
                                      [] { return 0; }, [&] { ++aborts; },
                                      10.0, code);
  EXPECT_EQ(outcome, moert::PollOutcome::Failed);
  EXPECT_EQ(code, 700);
  EXPECT_EQ(aborts, 1);
}

TEST(PollingWait, NothingCompletingTimesOut) {
  int aborts = 0, code = -1;
  auto start = std::chrono::steady_clock::now();
  auto outcome = moert::pollUntilDone([] { return kNotReady; }, kNotReady,
                                      [] { return 0; }, [&] { ++aborts; },
                                      0.2, code);
  double took = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  EXPECT_EQ(outcome, moert::PollOutcome::TimedOut);
  EXPECT_EQ(aborts, 1);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 5.0) << "the wait outlived its limit";
}

// The abort of a communicator runs this way: a call that returns is waited
// for, one that blocks is left behind after the limit, and the caller goes
// on to report.
TEST(PollingWait, AWorkThatFinishesIsWaitedFor) {
  auto ran = std::make_shared<std::atomic<bool>>(false);
  EXPECT_TRUE(moert::finishesWithin(5.0, [ran] { *ran = true; }));
  EXPECT_TRUE(*ran);
}

TEST(PollingWait, AWorkThatBlocksIsLeftAfterTheLimit) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(moert::finishesWithin(0.2, [release] {
    while (!*release)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }));
  double took = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 5.0) << "the wait outlived its limit";
  *release = true; // the detached thread ends
}

} // namespace
