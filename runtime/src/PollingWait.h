//===- PollingWait.h - Waiting for a collective without hanging -*- C++ -*-===//
//
// A rank whose peer failed waits forever in the driver: NCCL's kernels spin
// for data that never comes. So the CUDA collectives never block in the
// driver: they poll the completion and NCCL's asynchronous error, and after
// a time limit give up. Header-only and free of CUDA and NCCL, so that the
// unit tests drive every outcome without either.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_POLLINGWAIT_H
#define MOERT_SRC_POLLINGWAIT_H

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace moert {

enum class PollOutcome {
  Done,       ///< the work completed
  Failed,     ///< the completion query failed (`code`: its error)
  AsyncError, ///< the communicator reported an error (`code`: NCCL's)
  TimedOut,   ///< neither within the limit
};

/// Polls until `done()` says the work completed. `done()` returns 0 when
/// done, `notReady` while running, any other code on failure;
/// `asyncError()` returns 0 or the communicator's error. On every outcome
/// but Done, `abort()` runs once (it frees the rank from its peers).
/// `code` gets the failure's code.
template <typename Done, typename AsyncError, typename Abort>
PollOutcome pollUntilDone(Done &&done, int notReady, AsyncError &&asyncError,
                          Abort &&abort, double limitSeconds, int &code) {
  auto start = std::chrono::steady_clock::now();
  for (long spins = 0;; ++spins) {
    code = done();
    if (code == 0)
      return PollOutcome::Done;
    if (code != notReady) {
      abort();
      return PollOutcome::Failed;
    }
    if ((code = asyncError()) != 0) {
      abort();
      return PollOutcome::AsyncError;
    }
    double waited = std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (waited > limitSeconds) {
      abort();
      return PollOutcome::TimedOut;
    }
    // Transfers of a layer take microseconds: spin first, then yield.
    if (spins > 1000)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

/// Runs `work` on a thread of its own and waits for it at most
/// `limitSeconds`: true if it finished, false if it is still running, and
/// then left running (detached). For calls that may block on a device a
/// failed peer left stuck (ncclCommAbort): the caller goes on to report.
template <typename Work> bool finishesWithin(double limitSeconds, Work work) {
  struct Done {
    std::mutex mutex;
    std::condition_variable changed;
    bool finished = false;
  };
  auto done = std::make_shared<Done>();
  std::thread([done, work]() mutable {
    work();
    std::lock_guard<std::mutex> lock(done->mutex);
    done->finished = true;
    done->changed.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(done->mutex);
  return done->changed.wait_for(
      lock, std::chrono::duration<double>(limitSeconds),
      [&] { return done->finished; });
}

} // namespace moert

#endif // MOERT_SRC_POLLINGWAIT_H
