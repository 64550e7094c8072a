//===- NcclCollectives.cpp - The CUDA backend's collectives over NCCL -----===//
//
// What CUDA artifacts call for moek.exchange_counts, moek.all_to_all(_start,
// _wait) and moek.all_reduce: the moert_cuda_*_v1 entry points, on device
// pointers. They run on the runtime's communication stream, a CUDA stream of
// its own (moert_stream_create_v1), and hand back CUDA events
// (moert_event_*_v1), so that the expert GEMMs queued on the compute stream
// between a start and its wait run beside the transfer.
//
// The communicator is made at the first collective: under mpirun from the
// MPI rank and size (rank 0's ncclUniqueId broadcast over MPI), under
// torchrun from RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (the unique id over
// a TCP rendezvous, Rendezvous.h), and alone for one rank.
//
// Split sizes stay on the device: the exchange of counts is a grouped
// send/receive of int32 blocks, and the all-to-all of rows is a pull. Every
// rank stages its counts and rows in a buffer that the node's other ranks
// map through CUDA IPC; after a handshake (a one-int ncclAllReduce, which
// orders the ranks' streams) a kernel (AllToAllKernels.cu) reads the peers'
// counts and copies the rows that are this rank's; a second handshake
// frees the staging buffers for the next all-to-all. The host reads no
// count and waits for nothing: the compute stream waits for the transfer's
// event, and the host waits once, when the call's collectives are drained
// at its end (drain). Where that path cannot run (moert built without nvcc,
// no CUDA IPC, more than kMaxPeers ranks, MOERT_ALL_TO_ALL=host) the
// counts come back to the host and NCCL moves the rows (grouped
// ncclSend/ncclRecv), as all ranks agree when the first all-to-all starts.
//
// Faults: NCCL blocks in the device when a peer is gone, so no wait here
// blocks on the driver: it polls the event, ncclCommGetAsyncError and
// whether a peer's process on this host has ended (a killed rank leaves
// NCCL nothing to report over NVLink); on either, or after
// MOERT_NCCL_TIMEOUT_S seconds (default 120) without completion, it aborts
// the communicator (ncclCommAbort) and fails with the rank's name.
//
//===----------------------------------------------------------------------===//

#include "CommStream.h"
#include "CudaDriver.h"
#include "Internal.h"
#include "NcclLibrary.h"
#include "PeerProcess.h"
#include "PollingWait.h"
#include "Rendezvous.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#ifdef MOERT_HAVE_ALL_TO_ALL_PTX
#include "AllToAllKernels.ptx.inc"
#endif

#define MOERT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace moert;
using moert::cuda::CUevent;
using moert::cuda::CUresult;
using moert::cuda::CUstream;

namespace {

constexpr unsigned kStreamNonBlocking = 1; ///< CU_STREAM_NON_BLOCKING
constexpr CUresult kNotReady = 600;        ///< CUDA_ERROR_NOT_READY

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  char buffer[768];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buffer, sizeof(buffer), fmt, args);
  va_end(args);
  return buffer;
}

/// The communicator and the communication stream, made once.
struct Nccl {
  bool tried = false;
  std::string error; ///< why it could not be made (every call repeats it)
  const nccl::Library *lib = nullptr;
  const cuda::Driver *driver = nullptr;
  nccl::Comm comm = nullptr;
  bool aborted = false;
  int rank = 0, size = 1;
  CUstream stream = nullptr;
  /// An event on the communication stream at a known system-clock time:
  /// CUDA events become trace times relative to it.
  CUevent anchor = nullptr;
  double anchorUs = 0;
  /// Every rank's process, by rank (empty until they are exchanged).
  std::vector<PeerIdentity> peers;
  /// A peer whose process was found ended, or -1.
  int endedPeer = -1;
};
Nccl state;
std::mutex stateMutex;

/// A collective in flight: its events and what the trace says about it.
struct Pending {
  CUevent begin = nullptr, end = nullptr;
  const char *name = "";
  int64_t bytes = 0;
};
std::map<int64_t, Pending> pending;
int64_t nextEvent = 1;

/// A point the call's stream reached, recorded by an event: where compiled
/// code's work stopped before a collective call (`resumes` false) or went
/// on after it. The compute lane of the trace is the spans between them,
/// and a gap from a stop to the resumption is the compute stream waiting
/// for a collective: all timed on the device, since the host runs ahead.
struct Mark {
  CUevent event = nullptr;
  bool resumes = false;
};
std::vector<Mark> marks;

/// The most ranks the device-split all-to-all takes: its kernel gets the
/// peers' staging addresses as launch parameters (two arrays of this size).
constexpr int kMaxPeers = 64;
/// A staging buffer holds the counts (at most this many bytes), then rows.
constexpr int64_t kStagingCountsBytes = 64 * 1024;

/// The peers' staging buffers as moert_pull_rows takes them, by value.
struct PeerPointers {
  const int32_t *counts[kMaxPeers];
  const char *rows[kMaxPeers];
};

/// The all-to-all whose split sizes stay on the device: its kernels, this
/// rank's staging buffer and the peers' (mapped through CUDA IPC).
struct DeviceSplits {
  bool decided = false; ///< all ranks agreed on `usable`
  bool usable = false;
  std::string why; ///< why the host-sized path runs instead
  int64_t copyBlocks = 0; ///< the copy kernels' grid (copyBlocks())
  cuda::CUmodule module = nullptr;
  cuda::CUfunction stage = nullptr, pull = nullptr;
  cuda::CUdeviceptr staging = 0;
  int64_t stagingBytes = 0;
  std::vector<cuda::CUdeviceptr> peers; ///< staging of each rank (own too)
  cuda::CUdeviceptr handshake = 0;      ///< one int32, all-reduced
  cuda::CUdeviceptr overflow = 0; ///< int64[2]: rows received, sent, too many
  /// Copies of the counts each all-to-all of the call sends, taken in the
  /// call stream's order when it starts: the compiled code may reuse the
  /// counts' buffer before the transfer reads them (its wait names only
  /// the rows). A slot a start until the call's drain.
  std::vector<cuda::CUdeviceptr> countSlots;
  size_t countSlotsUsed = 0;
};
DeviceSplits splits;

/// NCCL's cudaStream_t and the driver's CUstream are one type, declared
/// apart in the two headers.
nccl::Stream ncclStream() {
  return reinterpret_cast<nccl::Stream>(state.stream);
}

std::string describeNccl(const char *call, nccl::Result result) {
  const char *text =
      state.lib ? state.lib->ncclGetErrorString(result) : "unknown";
  return format("rank %d of %d: %s failed: %s (ncclResult_t %d)", state.rank,
                state.size, call, text ? text : "unknown", result);
}

std::string describeCuda(const char *call, CUresult result) {
  return format("rank %d of %d: %s", state.rank, state.size,
                cuda::describeFailure(call, result).c_str());
}

double timeoutSeconds() {
  const char *value = std::getenv("MOERT_NCCL_TIMEOUT_S");
  double seconds = value && *value ? std::strtod(value, nullptr) : 0;
  return seconds > 0 ? seconds : 120;
}

/// state.peers from kIdentityWords words a rank (zeros: unknown).
void setPeers(const std::vector<int32_t> &words) {
  state.peers.clear();
  for (int r = 0; r < state.size; ++r)
    state.peers.push_back(
        PeerIdentity::fromWords(&words[kIdentityWords * size_t(r)]));
}

/// The unique id of the communicator reaches every rank the launcher's way.
std::string shareUniqueId(nccl::UniqueId &id) {
  using collectives::Launcher;
  if (state.rank == 0)
    if (nccl::Result r = state.lib->ncclGetUniqueId(&id))
      return describeNccl("ncclGetUniqueId", r);
  switch (collectives::launcher()) {
  case Launcher::Single:
    return "";
  case Launcher::Mpi:
    return collectives::broadcastOverMpi(&id, sizeof(id));
  case Launcher::Torchrun: {
    // The id and rank 0's process go out; every rank's process comes to
    // rank 0 (state.peers, until the communicator's exchange): a rank that
    // dies before the communicator is made can then be named.
    struct {
      nccl::UniqueId id;
      int32_t rankZero[kIdentityWords];
    } blob{};
    blob.id = id;
    std::array<int32_t, kIdentityWords> own = thisProcess().words();
    std::copy(own.begin(), own.end(), blob.rankZero);
    std::vector<int32_t> words(kIdentityWords * size_t(state.size), 0);
    LaunchEnvironment launch;
    std::string error = readLaunchEnvironment(launch);
    if (error.empty())
      error = broadcastFromRankZero(&blob, sizeof(blob), launch.rank,
                                    launch.ranks, launch.address, launch.port,
                                    int(timeoutSeconds()), own.data(),
                                    words.data());
    if (!error.empty())
      return "torchrun rendezvous: " + error;
    id = blob.id;
    std::copy(blob.rankZero, blob.rankZero + kIdentityWords, words.begin());
    std::copy(own.begin(), own.end(),
              words.begin() + kIdentityWords * size_t(state.rank));
    setPeers(words);
    return "";
  }
  }
  return "";
}

std::string allReduceOnHost(void *values, size_t count, size_t elementBytes,
                            nccl::DataType type, nccl::RedOp op,
                            const char *what);

std::string startWatchdog();
void endProcessIfStuck(const std::string &reason);
std::string describePeer(int peer);

/// The ranks learn each other's process (state.peers), so that a wait can
/// tell a peer killed on this host from a slow one.
std::string exchangeIdentities() {
  std::vector<int32_t> words(kIdentityWords * size_t(state.size), 0);
  std::array<int32_t, kIdentityWords> own = thisProcess().words();
  std::copy(own.begin(), own.end(),
            words.begin() + kIdentityWords * size_t(state.rank));
  if (std::string error =
          allReduceOnHost(words.data(), words.size(), sizeof(int32_t),
                          nccl::Int32, nccl::Sum, "ncclAllReduce (processes)");
      !error.empty())
    return error;
  setPeers(words);
  return "";
}

/// The first peer on this host whose process has ended, or -1.
int endedPeerOnThisHost() {
  if (state.peers.empty())
    return -1;
  const PeerIdentity &self = state.peers[size_t(state.rank)];
  for (int r = 0; r < state.size; ++r)
    if (r != state.rank && self.sameHost(state.peers[size_t(r)]) &&
        processHasEnded(state.peers[size_t(r)].pid))
      return r;
  return -1;
}

/// ncclCommInitRank, which waits for every rank: one that died first (a
/// kill while the others start) leaves it waiting for good. So it runs on
/// a thread of its own while this one looks for a peer whose process ended
/// (those the rendezvous named) and for the time limit; on either the
/// rank reports, and its exit is bounded (the init cannot be aborted: it
/// has no communicator yet). "" or what failed.
std::string initCommunicator(const nccl::UniqueId &id) {
  struct Init {
    std::atomic<bool> done{false};
    bool entered = false; ///< the rank's device current on the thread
    std::string why;      ///< why not (the thread's last error)
    nccl::Result result = 0;
    nccl::Comm comm = nullptr;
  };
  auto init = std::make_shared<Init>();
  std::thread([init, lib = state.lib, ranks = state.size, id,
               rank = state.rank] {
    // NCCL takes the thread's current device: without it every rank
    // would claim device 0 ("invalid usage" on two H200s).
    init->entered = cuda::enter() != nullptr;
    if (!init->entered)
      init->why = moert_last_error();
    else
      init->result = lib->ncclCommInitRank(&init->comm, ranks, id, rank);
    init->done.store(true);
  }).detach();
  auto start = std::chrono::steady_clock::now();
  double limit = timeoutSeconds();
  while (!init->done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::string error;
    if (int peer = endedPeerOnThisHost(); peer >= 0)
      error = format("rank %d of %d: %s ended before the NCCL communicator "
                     "was made (ncclCommInitRank)",
                     state.rank, state.size, describePeer(peer).c_str());
    else if (std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                           start)
                 .count() > limit)
      error = format("rank %d of %d: ncclCommInitRank did not complete in "
                     "%.0f s (MOERT_NCCL_TIMEOUT_S): another rank failed or "
                     "never came",
                     state.rank, state.size, limit);
    if (!error.empty()) {
      endProcessIfStuck(error);
      return error;
    }
  }
  if (!init->entered)
    return format("rank %d of %d: the thread that makes the communicator "
                  "cannot use the device: %s",
                  state.rank, state.size, init->why.c_str());
  if (init->result)
    return describeNccl("ncclCommInitRank", init->result);
  state.comm = init->comm;
  return "";
}

/// Makes the communicator and the stream once; "" or why not. NCCL is
/// loaded before the driver, so that a machine without NCCL says so.
std::string ensureNccl() {
  if (state.tried)
    return state.error;
  state.tried = true;
  state.rank = collectives::worldRank();
  state.size = collectives::worldSize();
  std::string error;
  state.lib = nccl::load(error);
  if (!state.lib)
    return state.error = error;
  state.driver = cuda::enter();
  if (!state.driver)
    return state.error = std::string("the CUDA collectives need the driver: ") +
                         moert_last_error();
  const cuda::Driver &d = *state.driver;
  if (CUresult r = d.cuStreamCreate(&state.stream, kStreamNonBlocking))
    return state.error = describeCuda("cuStreamCreate", r);
  if (CUresult r = d.cuEventCreate(&state.anchor, cuda::CU_EVENT_DEFAULT))
    return state.error = describeCuda("cuEventCreate", r);
  nccl::UniqueId id{};
  if (std::string why = shareUniqueId(id); !why.empty())
    return state.error = format("rank %d of %d: cannot share the NCCL unique "
                                "id: %s",
                                state.rank, state.size, why.c_str());
  if (std::string why = initCommunicator(id); !why.empty())
    return state.error = why;
  d.cuEventRecord(state.anchor, state.stream);
  d.cuEventSynchronize(state.anchor);
  state.anchorUs = comm::nowUs();
  if ((state.error = exchangeIdentities()).empty())
    state.error = startWatchdog();
  return state.error;
}

/// After an abort the device may hold work that never completes (a peer
/// that died mid-transfer): freeing memory or synchronizing can then block
/// the host for good. So, as PyTorch's NCCL watchdog does, the process gets
/// MOERT_NCCL_EXIT_S seconds (default 30; 0: never) to exit on its own,
/// and is ended with the failure's reason after that.
void endProcessIfStuck(const std::string &reason) {
  static std::atomic<bool> armed{false};
  const char *value = std::getenv("MOERT_NCCL_EXIT_S");
  double seconds = value && *value ? std::strtod(value, nullptr) : 30;
  if (seconds <= 0 || armed.exchange(true))
    return;
  std::thread([seconds, reason] {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    std::fprintf(stderr,
                 "moert: %s; the process did not exit within %.0f s "
                 "(MOERT_NCCL_EXIT_S) and is ended now\n",
                 reason.c_str(), seconds);
    std::fflush(stderr);
    std::_Exit(3);
  }).detach();
}

/// Whether ncclCommAbort was called, by this thread or the watchdog's:
/// whoever sets it first aborts.
std::atomic<bool> abortStarted{false};

/// ncclCommAbort, bounded: it frees NCCL's kernels, but a device a dead
/// peer left stuck could hold it too, and the rank must still report.
void abortOnce(const nccl::Library *lib, nccl::Comm comm) {
  if (!abortStarted.exchange(true))
    finishesWithin(10.0, [lib, comm] { lib->ncclCommAbort(comm); });
}

/// Aborts the communicator: a peer that is gone leaves NCCL's kernels
/// waiting forever, and only the abort frees this rank's stream.
void abortCommunicator() {
  if (state.comm && !state.aborted) {
    abortOnce(state.lib, state.comm);
    state.aborted = true;
    state.error = format("rank %d of %d: the NCCL communicator was aborted "
                         "after a failed collective",
                         state.rank, state.size);
  }
}

/// "rank 1 (process 4242 on this host)".
std::string describePeer(int peer) {
  return format("rank %d (process %d on this host)", peer,
                int(state.peers[size_t(peer)].pid));
}

/// The watchdog, as PyTorch's NCCL watchdog: while the communication
/// stream holds unfinished work, a thread looks every 100 ms for a peer of
/// this host whose process has ended, and for NCCL's asynchronous error.
/// The calling thread may be blocked anywhere then (in NCCL's enqueue, in
/// the driver: a killed peer once left it silent for 90 s on two H200s), so
/// the watchdog reports on its own, aborts the communicator and bounds the
/// process's exit (MOERT_NCCL_EXIT_S). A peer that ended after every
/// collective it shared with this rank completed leaves the stream idle
/// and is no failure.
struct Watchdog {
  std::thread thread;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false; ///< under `mutex`
  /// Recorded on the communication stream after each collective: not
  /// ready while the stream holds work.
  CUevent busy = nullptr;
  std::atomic<bool> fired{false};
  std::string reason; ///< written before `fired` is set
};
Watchdog watchdog;

void watch(const nccl::Library *lib, nccl::Comm comm) {
  if (!cuda::enter())
    return;
  const cuda::Driver &d = *state.driver;
  int strikes = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(watchdog.mutex);
      if (watchdog.wake.wait_for(lock, std::chrono::milliseconds(100),
                                 [] { return watchdog.stop; }))
        return;
    }
    if (abortStarted.load() || d.cuEventQuery(watchdog.busy) != kNotReady) {
      strikes = 0;
      continue;
    }
    int peer = endedPeerOnThisHost();
    nccl::Result async = 0;
    if (peer < 0 && (lib->ncclCommGetAsyncError(comm, &async) != 0 ||
                     async == 0)) {
      strikes = 0;
      continue;
    }
    // Seen twice, 100 ms apart, with the stream still waiting.
    if (++strikes < 2)
      continue;
    watchdog.reason =
        peer >= 0
            ? format("rank %d of %d: %s ended while this rank's collectives "
                     "were in flight (the watchdog); the communicator was "
                     "aborted",
                     state.rank, state.size, describePeer(peer).c_str())
            : format("rank %d of %d: NCCL's asynchronous error %d: %s (the "
                     "watchdog); the communicator was aborted",
                     state.rank, state.size, async,
                     lib->ncclGetErrorString(async));
    watchdog.fired.store(true);
    std::fprintf(stderr, "moert: %s\n", watchdog.reason.c_str());
    std::fflush(stderr);
    abortOnce(lib, comm);
    endProcessIfStuck(watchdog.reason);
    return;
  }
}

/// Starts the watchdog of a communicator of several ranks.
std::string startWatchdog() {
  if (state.size < 2)
    return "";
  if (CUresult r = state.driver->cuEventCreate(&watchdog.busy,
                                               cuda::CU_EVENT_DEFAULT))
    return describeCuda("cuEventCreate", r);
  watchdog.stop = false;
  watchdog.fired.store(false);
  watchdog.thread = std::thread(watch, state.lib, state.comm);
  return "";
}

/// Stops the watchdog (before the communicator goes).
void stopWatchdog() {
  if (!watchdog.thread.joinable())
    return;
  {
    std::lock_guard<std::mutex> lock(watchdog.mutex);
    watchdog.stop = true;
  }
  watchdog.wake.notify_all();
  watchdog.thread.join();
  state.driver->cuEventDestroy(watchdog.busy);
  watchdog.busy = nullptr;
}

/// What waitPolling's error query returns for a peer whose process ended
/// (NCCL's results are never negative), and for the watchdog's finding.
constexpr int kPeerEnded = -1;
constexpr int kWatchdogFired = -2;

/// Waits for `event` without blocking in the driver: polls it, NCCL's
/// asynchronous error and the peers' processes on this host, and gives up
/// after the timeout. "" or what failed.
std::string waitPolling(CUevent event, const char *what) {
  const cuda::Driver &d = *state.driver;
  double limit = timeoutSeconds();
  int code = 0;
  // Reading /proc costs microseconds: the peers' processes are looked at
  // every few milliseconds, not at every poll.
  auto nextPeerCheck = std::chrono::steady_clock::now();
  PollOutcome outcome = pollUntilDone(
      [&] { return int(d.cuEventQuery(event)); }, int(kNotReady),
      [&] {
        // An aborted communicator is gone: nothing to ask it.
        nccl::Result async = 0;
        if (watchdog.fired.load())
          return kWatchdogFired;
        if (state.aborted)
          return 0;
        if (nccl::Result q =
                state.lib->ncclCommGetAsyncError(state.comm, &async))
          return int(q);
        if (async != 0)
          return int(async);
        auto now = std::chrono::steady_clock::now();
        if (now < nextPeerCheck)
          return 0;
        nextPeerCheck = now + std::chrono::milliseconds(5);
        state.endedPeer = endedPeerOnThisHost();
        return state.endedPeer >= 0 ? kPeerEnded : 0;
      },
      [&] { abortCommunicator(); }, limit, code);
  // abortCommunicator overwrote state.error; the message says what happened.
  std::string error;
  switch (outcome) {
  case PollOutcome::Done:
    return "";
  case PollOutcome::Failed:
    error = describeCuda("cuEventQuery", code);
    break;
  case PollOutcome::AsyncError:
    if (code == kWatchdogFired) {
      error = watchdog.reason;
      break;
    }
    if (code == kPeerEnded) {
      error = format("rank %d of %d: %s ended while this rank waited for %s; "
                     "the communicator was aborted",
                     state.rank, state.size,
                     describePeer(state.endedPeer).c_str(), what);
      break;
    }
    error = describeNccl(what, code) +
            " (a peer rank failed or left: NCCL's asynchronous error); the "
            "communicator was aborted";
    if (int peer = endedPeerOnThisHost(); peer >= 0)
      error += "; " + describePeer(peer) + " has ended";
    break;
  case PollOutcome::TimedOut:
    error = format("rank %d of %d: %s did not complete in %.0f s "
                   "(MOERT_NCCL_TIMEOUT_S): another rank failed or stopped "
                   "taking part; the communicator was aborted",
                   state.rank, state.size, what, limit);
    break;
  }
  if (state.aborted)
    endProcessIfStuck(error);
  return error;
}

/// An NCCL call that queues work failed: NCCL's proxy may have seen a peer
/// die before any wait did (`ncclGroupEnd failed: remote process exited`).
/// Like a failed wait, it aborts the communicator (whose kernels may be
/// stuck: destroying it would block at exit) and bounds the process's
/// exit; the message names the peer whose process ended, if one did.
std::string failCommunicator(std::string error) {
  if (int peer = endedPeerOnThisHost(); peer >= 0)
    error += "; " + describePeer(peer) + " has ended";
  if (state.comm && !state.aborted) {
    abortCommunicator();
    error += "; the communicator was aborted";
    endProcessIfStuck(error);
  }
  return error;
}

/// The common start of every entry point: the deferred error, the world
/// check, the communicator. False after recording what is wrong.
bool begin(const char *call, int64_t segments, int64_t ranks) {
  if (collectives::failedAlready())
    return false;
  if (std::string error = collectives::checkWorld(call, segments, ranks);
      !error.empty()) {
    collectives::recordDeferredError(error);
    return false;
  }
  if (std::string error = ensureNccl(); !error.empty()) {
    collectives::recordDeferredError(error);
    return false;
  }
  return true;
}

/// Records `begin`/`end` events around what `enqueue` puts on the
/// communication stream; returns the event id (> 0) or 0 after recording
/// the failure.
template <typename Enqueue>
int64_t launch(const char *name, int64_t bytes, Enqueue &&enqueue) {
  const cuda::Driver &d = *state.driver;
  Pending p{nullptr, nullptr, name, bytes};
  if (CUresult r = d.cuEventCreate(&p.begin, cuda::CU_EVENT_DEFAULT)) {
    collectives::recordDeferredError(describeCuda("cuEventCreate", r));
    return 0;
  }
  if (CUresult r = d.cuEventCreate(&p.end, cuda::CU_EVENT_DEFAULT)) {
    d.cuEventDestroy(p.begin);
    collectives::recordDeferredError(describeCuda("cuEventCreate", r));
    return 0;
  }
  // The transfer starts after the kernels that wrote its rows: everything
  // the call's stream holds (the legacy stream, unless a caller gave its
  // own; the non-blocking communication stream would not order itself).
  d.cuEventRecord(p.begin, cuda::currentCallStream());
  d.cuStreamWaitEvent(state.stream, p.begin, 0);
  d.cuEventRecord(p.begin, state.stream);
  if (std::string error = enqueue(); !error.empty()) {
    d.cuEventDestroy(p.begin);
    d.cuEventDestroy(p.end);
    collectives::recordDeferredError(failCommunicator(error));
    return 0;
  }
  d.cuEventRecord(p.end, state.stream);
  if (watchdog.busy)
    d.cuEventRecord(watchdog.busy, state.stream);
  int64_t id = nextEvent++;
  pending[id] = p;
  return id;
}

/// The collective of event `id`, or end() after recording that there is
/// none (a wait the compiled code got wrong).
std::map<int64_t, Pending>::iterator findPending(int64_t id) {
  auto it = pending.find(id);
  if (it == pending.end() && !collectives::failedAlready())
    collectives::recordDeferredError(
        format("moert_cuda_event_wait_v1: no collective has event %" PRId64,
               id));
  return it;
}

/// Waits (polling) for collective `id`, then adds it to the stats and the
/// trace; drain() calls it for each, in order.
int32_t finish(int64_t id) {
  auto it = findPending(id);
  if (it == pending.end())
    return 1;
  Pending p = it->second;
  pending.erase(it);
  const cuda::Driver &d = *state.driver;
  if (state.aborted) {
    // An earlier collective failed: this one may never complete, and the
    // first failure is what the call reports.
    d.cuEventDestroy(p.begin);
    d.cuEventDestroy(p.end);
    return 1;
  }
  // What the compute stream waited for it comes from the marks.
  std::string error = waitPolling(p.end, p.name);
  if (error.empty()) {
    float fromAnchor = 0, busy = 0;
    d.cuEventElapsedTime(&fromAnchor, state.anchor, p.begin);
    d.cuEventElapsedTime(&busy, p.begin, p.end);
    comm::addCollective(p.name, p.bytes, state.anchorUs + fromAnchor * 1000.0,
                        busy * 1000.0);
  }
  d.cuEventDestroy(p.begin);
  d.cuEventDestroy(p.end);
  if (!error.empty()) {
    collectives::recordDeferredError(error);
    return 1;
  }
  return 0;
}

/// Stream-orders the compute stream after collective `id` instead of
/// waiting for it on the host: what the compiled code queues next runs
/// after the transfer. drain() waits for it at the end of the call.
int32_t deferUntilDrain(int64_t id) {
  auto it = findPending(id);
  if (it == pending.end())
    return 1;
  if (CUresult r = state.driver->cuStreamWaitEvent(cuda::currentCallStream(),
                                                   it->second.end, 0)) {
    collectives::recordDeferredError(describeCuda("cuStreamWaitEvent", r));
    return 1;
  }
  return 0;
}

/// The all-reduce of one int32 in place that orders the ranks' streams: a
/// rank's stream passes it only after every rank's stream reached it.
std::string handshake() {
  if (nccl::Result r = state.lib->ncclAllReduce(
          reinterpret_cast<void *>(splits.handshake),
          reinterpret_cast<void *>(splits.handshake), 1, nccl::Int32,
          nccl::Sum, state.comm, ncclStream()))
    return describeNccl("ncclAllReduce (all-to-all handshake)", r);
  return "";
}

/// `values` (on the host) all-reduced over the ranks in place, through a
/// device copy and a polled wait; the caller holds stateMutex and made the
/// communicator. "" or what failed.
std::string allReduceOnHost(void *values, size_t count, size_t elementBytes,
                            nccl::DataType type, nccl::RedOp op,
                            const char *what) {
  const cuda::Driver &d = *state.driver;
  size_t bytes = count * elementBytes;
  cuda::CUdeviceptr buffer = 0;
  if (CUresult r = d.cuMemAlloc(&buffer, bytes))
    return describeCuda("cuMemAlloc", r);
  CUevent done = nullptr;
  std::string error;
  if (CUresult r = d.cuMemcpyHtoD(buffer, values, bytes))
    error = describeCuda("cuMemcpyHtoD", r);
  else if (CUresult r = d.cuEventCreate(&done, cuda::CU_EVENT_DEFAULT))
    error = describeCuda("cuEventCreate", r);
  else if (nccl::Result r = state.lib->ncclAllReduce(
               reinterpret_cast<void *>(buffer),
               reinterpret_cast<void *>(buffer), count, type, op, state.comm,
               ncclStream()))
    error = failCommunicator(describeNccl(what, r));
  else {
    d.cuEventRecord(done, state.stream);
    // A peer that never comes must not hang this rank.
    error = waitPolling(done, what);
    if (error.empty())
      if (CUresult r = d.cuMemcpyDtoH(values, buffer, bytes))
        error = describeCuda("cuMemcpyDtoH", r);
  }
  if (done)
    d.cuEventDestroy(done);
  d.cuMemFree(buffer);
  return error;
}

/// The maximum of `values` over the ranks.
std::string allReduceMaxLocked(double *values, int count) {
  return allReduceOnHost(values, size_t(count), sizeof(double), nccl::Float64,
                         nccl::Max, "ncclAllReduce");
}

/// Why this rank cannot run the device-split all-to-all, or "".
std::string deviceSplitsUnavailable() {
#ifndef MOERT_HAVE_ALL_TO_ALL_PTX
  return "moert was built without nvcc (no all-to-all kernels)";
#else
  const char *choice = std::getenv("MOERT_ALL_TO_ALL");
  if (choice && std::strcmp(choice, "host") == 0)
    return "MOERT_ALL_TO_ALL=host";
  if (state.size > kMaxPeers)
    return format("more than %d ranks", kMaxPeers);
  const cuda::Driver &d = *state.driver;
  if (state.size > 1 && (!d.cuIpcGetMemHandle || !d.cuIpcOpenMemHandle ||
                         !d.cuIpcCloseMemHandle))
    return "the CUDA driver has no IPC entry points";
  if (CUresult r = d.cuModuleLoadData(&splits.module, kAllToAllPtx))
    return describeCuda("cuModuleLoadData (the all-to-all kernels)", r);
  if (CUresult r = d.cuModuleGetFunction(&splits.stage, splits.module,
                                         "moert_stage_rows"))
    return describeCuda("cuModuleGetFunction", r);
  if (CUresult r = d.cuModuleGetFunction(&splits.pull, splits.module,
                                         "moert_pull_rows"))
    return describeCuda("cuModuleGetFunction", r);
  // The handshake's int32, then the pull's two overflow counts (int64).
  if (CUresult r = d.cuMemAlloc(&splits.handshake, 24))
    return describeCuda("cuMemAlloc", r);
  splits.overflow = splits.handshake + 8;
  static const int64_t zeros[3] = {0, 0, 0};
  if (CUresult r = d.cuMemcpyHtoD(splits.handshake, zeros, sizeof(zeros)))
    return describeCuda("cuMemcpyHtoD", r);
  return "";
#endif
}

/// The grid of the all-to-all's copy kernels (MOERT_ALL_TO_ALL_BLOCKS,
/// default 256: of 32, 64, 256 and 1024 the fastest on two H200s, with and
/// without overlap; bench/RESULTS.md, 2026-11-30 05:49 UTC).
int64_t copyBlocks() {
  const char *value = std::getenv("MOERT_ALL_TO_ALL_BLOCKS");
  long long blocks = value && *value ? std::strtoll(value, nullptr, 10) : 0;
  return blocks > 0 ? blocks : 256;
}

/// Decides once, with every rank, whether the all-to-alls keep their split
/// sizes on the device: only if every rank can. "" or what failed.
std::string decideDeviceSplits() {
  if (splits.decided)
    return "";
  splits.why = deviceSplitsUnavailable();
  double unavailable = splits.why.empty() ? 0 : 1;
  if (state.size > 1)
    if (std::string error = allReduceMaxLocked(&unavailable, 1); !error.empty())
      return error;
  splits.usable = unavailable == 0;
  splits.copyBlocks = copyBlocks();
  if (splits.why.empty() && !splits.usable)
    splits.why = "another rank cannot run it";
  splits.decided = true;
  return "";
}

/// Makes this rank's staging buffer hold `bytes` and maps every peer's.
/// Every rank grows at the same all-to-all: they run one program on equal
/// token counts (a rank's T), so their buffers have equal sizes. Growing
/// waits on the host; the steady state does not grow.
std::string ensureStaging(int64_t bytes) {
  if (bytes <= splits.stagingBytes)
    return "";
  const cuda::Driver &d = *state.driver;
  // The old buffers may still be read by a pull in flight.
  CUevent idle = nullptr;
  if (CUresult r = d.cuEventCreate(&idle, cuda::CU_EVENT_DEFAULT))
    return describeCuda("cuEventCreate", r);
  d.cuEventRecord(idle, state.stream);
  std::string error = waitPolling(idle, "the all-to-all before a new staging "
                                        "buffer");
  d.cuEventDestroy(idle);
  if (!error.empty())
    return error;
  for (int p = 0; p < int(splits.peers.size()); ++p)
    if (p != state.rank)
      d.cuIpcCloseMemHandle(splits.peers[p]);
  splits.peers.clear();
  if (splits.staging)
    d.cuMemFree(splits.staging);
  splits.staging = 0;
  splits.stagingBytes = 0;
  // Whole 2 MiB pages, which is what IPC exports anyway.
  int64_t size = (bytes + (2 << 20) - 1) / (2 << 20) * (2 << 20);
  if (CUresult r = d.cuMemAlloc(&splits.staging, size_t(size)))
    return describeCuda(format("cuMemAlloc(%" PRId64 " bytes of all-to-all "
                               "staging)",
                               size)
                            .c_str(),
                        r);
  splits.stagingBytes = size;
  splits.peers.assign(state.size, 0);
  splits.peers[state.rank] = splits.staging;
  if (state.size == 1)
    return "";
  // Every rank's IPC handle to every rank: an all-reduce (sum) of the
  // handles, each rank's in its own slot and zeros elsewhere.
  int handleInts = int(sizeof(cuda::CUipcMemHandle) / sizeof(int32_t));
  std::vector<int32_t> handles(size_t(state.size) * handleInts, 0);
  cuda::CUipcMemHandle own;
  if (CUresult r = d.cuIpcGetMemHandle(&own, splits.staging))
    return describeCuda("cuIpcGetMemHandle", r);
  std::memcpy(&handles[size_t(state.rank) * handleInts], &own, sizeof(own));
  error = allReduceOnHost(handles.data(), handles.size(), sizeof(int32_t),
                          nccl::Int32, nccl::Sum,
                          "ncclAllReduce (the staging buffers' handles)");
  for (int p = 0; error.empty() && p < state.size; ++p) {
    if (p == state.rank)
      continue;
    cuda::CUipcMemHandle handle;
    std::memcpy(&handle, &handles[size_t(p) * handleInts], sizeof(handle));
    if (CUresult r = d.cuIpcOpenMemHandle(
            &splits.peers[p], handle, cuda::CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS))
      error = describeCuda(format("cuIpcOpenMemHandle (rank %d's staging; "
                                  "the device-split all-to-all needs the "
                                  "ranks on one node, MOERT_ALL_TO_ALL=host "
                                  "does without)",
                                  p)
                               .c_str(),
                           r);
  }
  return error;
}

/// A copy of `counts` queued on the call's stream, in a slot that lasts
/// until the call's drain; null after recording why not.
const int32_t *snapshotCounts(const int32_t *counts, int64_t segments) {
  const cuda::Driver &d = *state.driver;
  if (splits.countSlotsUsed == splits.countSlots.size()) {
    cuda::CUdeviceptr slot = 0;
    if (CUresult r = d.cuMemAlloc(&slot, size_t(kStagingCountsBytes))) {
      collectives::recordDeferredError(describeCuda("cuMemAlloc", r));
      return nullptr;
    }
    splits.countSlots.push_back(slot);
  }
  cuda::CUdeviceptr slot = splits.countSlots[splits.countSlotsUsed++];
  if (CUresult r = d.cuMemcpyAsync(slot, cuda::CUdeviceptr(counts),
                                   size_t(segments) * sizeof(int32_t),
                                   cuda::currentCallStream())) {
    collectives::recordDeferredError(describeCuda("cuMemcpyAsync", r));
    return nullptr;
  }
  return reinterpret_cast<const int32_t *>(slot);
}

/// Queues on the communication stream the all-to-all of `rows` whose split
/// sizes the host never reads: stage, handshake, pull, handshake (one rank
/// pulls straight from its own buffers). "" or what failed.
std::string enqueueDeviceAllToAll(const void *rows, const int32_t *counts,
                                  int64_t rowsCapacity, void *received,
                                  int64_t receivedCapacity, int64_t segments,
                                  int64_t rowBytes) {
  const cuda::Driver &d = *state.driver;
  constexpr unsigned kThreads = 256;
  // The copies' grid: many blocks copy fastest alone, but beside the
  // expert GEMMs of an overlapped program (persistent, a CTA an SM) they
  // keep the GEMMs off their SMs; MOERT_ALL_TO_ALL_BLOCKS sets it.
  const int64_t kCopyBlocks = splits.copyBlocks;
  PeerPointers peers{};
  int rank = state.rank, ranks = state.size, segs = int(segments);
  // This rank's own block comes straight from its rows buffer (kept alive
  // until the wait); the counts from their copy.
  peers.counts[rank] = counts;
  peers.rows[rank] = static_cast<const char *>(rows);
  if (ranks > 1) {
    char *staging = reinterpret_cast<char *>(splits.staging);
    int64_t rowsAt = kStagingCountsBytes;
    void *stageArgs[] = {&rows,     &counts,       &rank,    &ranks, &segs,
                         &rowBytes, &rowsCapacity, &staging, &rowsAt};
    int64_t units = (rowsCapacity * rowBytes + 15) / 16;
    unsigned blocks = unsigned(
        std::clamp<int64_t>((units + kThreads - 1) / kThreads, 1, kCopyBlocks));
    if (CUresult r = d.cuLaunchKernel(splits.stage, blocks, 1, 1, kThreads, 1,
                                      1, 0, state.stream, stageArgs, nullptr))
      return describeCuda("cuLaunchKernel (moert_stage_rows)", r);
    if (std::string error = handshake(); !error.empty())
      return error;
    for (int p = 0; p < ranks; ++p) {
      if (p == rank)
        continue;
      const char *base = reinterpret_cast<const char *>(splits.peers[p]);
      peers.counts[p] = reinterpret_cast<const int32_t *>(base);
      peers.rows[p] = base + kStagingCountsBytes;
    }
  }
  char *dest = static_cast<char *>(received);
  int64_t *overflow = reinterpret_cast<int64_t *>(splits.overflow);
  void *pullArgs[] = {&peers, &rank,           &ranks,        &segs,
                      &rowBytes, &dest, &receivedCapacity, &rowsCapacity,
                      &overflow};
  int64_t units = (receivedCapacity * rowBytes + 15) / 16 / ranks;
  unsigned blocks = unsigned(std::clamp<int64_t>(
      (units + kThreads - 1) / kThreads, 1, kCopyBlocks / ranks + 1));
  if (CUresult r = d.cuLaunchKernel(splits.pull, blocks, unsigned(ranks), 1,
                                    kThreads, 1, 1, 0, state.stream, pullArgs,
                                    nullptr))
    return describeCuda("cuLaunchKernel (moert_pull_rows)", r);
  return ranks > 1 ? handshake() : "";
}

/// Grouped sends and receives: to and from every peer `bytes(peer)` bytes
/// at `sendAt(peer)` / `recvAt(peer)`. "" or what failed.
template <typename SendBytes, typename RecvBytes, typename SendAt,
          typename RecvAt>
std::string sendReceive(SendBytes &&sendBytes, RecvBytes &&recvBytes,
                        SendAt &&sendAt, RecvAt &&recvAt) {
  const nccl::Library &n = *state.lib;
  if (nccl::Result r = n.ncclGroupStart())
    return describeNccl("ncclGroupStart", r);
  for (int peer = 0; peer < state.size; ++peer) {
    // int8 counts: a row is any number of bytes; size_t counts reach far.
    if (size_t bytes = sendBytes(peer))
      if (nccl::Result r = n.ncclSend(sendAt(peer), bytes, nccl::Int8, peer,
                                      state.comm, ncclStream())) {
        n.ncclGroupEnd();
        return describeNccl("ncclSend", r);
      }
    if (size_t bytes = recvBytes(peer))
      if (nccl::Result r = n.ncclRecv(recvAt(peer), bytes, nccl::Int8, peer,
                                      state.comm, ncclStream())) {
        n.ncclGroupEnd();
        return describeNccl("ncclRecv", r);
      }
  }
  if (nccl::Result r = n.ncclGroupEnd())
    return describeNccl("ncclGroupEnd", r);
  return "";
}

/// Marks the call's stream (a Mark); nothing when no event can be made.
void markCallStream(bool resumes) {
  CUevent event = nullptr;
  if (!state.driver ||
      state.driver->cuEventCreate(&event, cuda::CU_EVENT_DEFAULT))
    return;
  state.driver->cuEventRecord(event, cuda::currentCallStream());
  marks.push_back(Mark{event, resumes});
}

/// Runs `body` between two marks of the call's stream: the compute span
/// before the collective ends at the first, the next begins at the second
/// (after any wait of the stream that `body` queued).
template <typename Body> auto outsideCompute(Body &&body) {
  markCallStream(/*resumes=*/false);
  auto result = body();
  markCallStream(/*resumes=*/true);
  return result;
}

/// Drops the marks (a failed call's, whose times say nothing).
void discardMarks() {
  for (const Mark &mark : marks)
    state.driver->cuEventDestroy(mark.event);
  marks.clear();
}

/// The marks as compute spans and waits of the compute stream, in system
/// time; destroys them. After the call's stream has finished.
void addComputeSpans() {
  const cuda::Driver &d = *state.driver;
  double resumedUs = -1, stoppedUs = -1;
  for (const Mark &mark : marks) {
    float fromAnchor = 0;
    bool timed = d.cuEventElapsedTime(&fromAnchor, state.anchor,
                                      mark.event) == cuda::CUDA_SUCCESS;
    double us = state.anchorUs + fromAnchor * 1000.0;
    d.cuEventDestroy(mark.event);
    if (!timed)
      continue;
    if (!mark.resumes) {
      if (resumedUs >= 0 && us > resumedUs)
        comm::addCompute("compute", resumedUs, us - resumedUs);
      stoppedUs = us;
      resumedUs = -1;
    } else {
      if (stoppedUs >= 0 && us > stoppedUs)
        comm::addWait(stoppedUs, us - stoppedUs);
      resumedUs = us;
      stoppedUs = -1;
    }
  }
  marks.clear();
}

} // namespace

//===--- Streams and events: the host ABI the collectives run on ---===//

MOERT_EXPORT void *moert_stream_create_v1(void) {
  return guarded((void *)nullptr, [&]() -> void * {
    const cuda::Driver *d = cuda::enter();
    if (!d)
      return nullptr;
    CUstream stream = nullptr;
    if (CUresult r = d->cuStreamCreate(&stream, kStreamNonBlocking)) {
      cuda::setDriverError("moert_stream_create_v1: ", "cuStreamCreate", r);
      return nullptr;
    }
    return stream;
  });
}

MOERT_EXPORT int32_t moert_stream_destroy_v1(void *stream) {
  return guarded(1, [&] {
    const cuda::Driver *d = cuda::enter();
    if (!d)
      return 1;
    if (CUresult r = d->cuStreamDestroy(static_cast<CUstream>(stream))) {
      cuda::setDriverError("moert_stream_destroy_v1: ", "cuStreamDestroy", r);
      return 1;
    }
    return 0;
  });
}

MOERT_EXPORT void *moert_event_create_v1(void) {
  return guarded((void *)nullptr, [&]() -> void * {
    const cuda::Driver *d = cuda::enter();
    if (!d)
      return nullptr;
    CUevent event = nullptr;
    if (CUresult r = d->cuEventCreate(&event, cuda::CU_EVENT_DEFAULT)) {
      cuda::setDriverError("moert_event_create_v1: ", "cuEventCreate", r);
      return nullptr;
    }
    return event;
  });
}

MOERT_EXPORT int32_t moert_event_record_v1(void *event, void *stream) {
  return guarded(1, [&] {
    const cuda::Driver *d = cuda::enter();
    if (!d)
      return 1;
    if (CUresult r = d->cuEventRecord(static_cast<CUevent>(event),
                                      static_cast<CUstream>(stream))) {
      cuda::setDriverError("moert_event_record_v1: ", "cuEventRecord", r);
      return 1;
    }
    return 0;
  });
}

MOERT_EXPORT int32_t moert_stream_wait_event_v1(void *stream, void *event) {
  return guarded(1, [&] {
    const cuda::Driver *d = cuda::enter();
    if (!d)
      return 1;
    if (CUresult r = d->cuStreamWaitEvent(static_cast<CUstream>(stream),
                                          static_cast<CUevent>(event), 0)) {
      cuda::setDriverError("moert_stream_wait_event_v1: ", "cuStreamWaitEvent",
                           r);
      return 1;
    }
    return 0;
  });
}

MOERT_EXPORT int32_t moert_event_destroy_v1(void *event) {
  return guarded(1, [&] {
    const cuda::Driver *d = cuda::enter();
    if (!d)
      return 1;
    if (CUresult r = d->cuEventDestroy(static_cast<CUevent>(event))) {
      cuda::setDriverError("moert_event_destroy_v1: ", "cuEventDestroy", r);
      return 1;
    }
    return 0;
  });
}

//===--- What CUDA artifacts call ---===//

MOERT_EXPORT int32_t moert_cuda_exchange_counts_v1(const int32_t *counts,
                                                   int32_t *received,
                                                   int64_t segments,
                                                   int64_t ranks) {
  return guarded(1, [&]() -> int32_t {
    std::lock_guard<std::mutex> lock(stateMutex);
    if (!begin("exchange of counts", segments, ranks))
      return 1;
    return outsideCompute([&]() -> int32_t {
      // The counts stay on the device: one block of int32 per peer.
      size_t block = size_t(segments / ranks) * sizeof(int32_t);
      auto bytes = [&](int) { return block; };
      int64_t id = launch("exchange_counts", segments * 4, [&] {
        return sendReceive(
            bytes, bytes,
            [&](int p) { return (const char *)counts + p * block; },
            [&](int p) { return (char *)received + p * block; });
      });
      return id == 0 ? 1 : deferUntilDrain(id);
    });
  });
}

MOERT_EXPORT int64_t moert_cuda_all_to_all_start_v1(
    const void *rows, const int32_t *counts, int64_t rowsCapacity,
    const int32_t *receivedCounts, void *received, int64_t receivedCapacity,
    int64_t segments, int64_t ranks, int64_t rowBytes) {
  return guarded(int64_t(0), [&]() -> int64_t {
    std::lock_guard<std::mutex> lock(stateMutex);
    if (!begin("all-to-all", segments, ranks))
      return 0;
    return outsideCompute([&]() -> int64_t {
      if (std::string error = decideDeviceSplits(); !error.empty()) {
        collectives::recordDeferredError(error);
        return 0;
      }
      if (splits.usable && segments * 4 <= kStagingCountsBytes) {
        int64_t stagingBytes = kStagingCountsBytes + rowsCapacity * rowBytes;
        if (std::string error =
                state.size > 1 ? ensureStaging(stagingBytes) : "";
            !error.empty()) {
          collectives::recordDeferredError(error);
          return 0;
        }
        const int32_t *countsNow = snapshotCounts(counts, segments);
        if (!countsNow)
          return 0;
        return launch("all_to_all", receivedCapacity * rowBytes, [&] {
          return enqueueDeviceAllToAll(rows, countsNow, rowsCapacity, received,
                                       receivedCapacity, segments, rowBytes);
        });
      }
      // ncclSend takes its size on the host: the counts come back (2G
      // int32), which waits for the device.
      const cuda::Driver &d = *state.driver;
      std::vector<int32_t> sendCounts(segments), recvCounts(segments);
      size_t countBytes = size_t(segments) * sizeof(int32_t);
      if (CUresult r = d.cuMemcpyDtoH(sendCounts.data(),
                                      cuda::CUdeviceptr(counts), countBytes)) {
        collectives::recordDeferredError(describeCuda("cuMemcpyDtoH", r));
        return 0;
      }
      if (CUresult r = d.cuMemcpyDtoH(recvCounts.data(),
                                      cuda::CUdeviceptr(receivedCounts),
                                      countBytes)) {
        collectives::recordDeferredError(describeCuda("cuMemcpyDtoH", r));
        return 0;
      }
      int64_t block = segments / ranks;
      std::vector<int64_t> sendRows(ranks, 0), recvRows(ranks, 0);
      for (int64_t g = 0; g < segments; ++g) {
        if (sendCounts[g] < 0 || recvCounts[g] < 0) {
          collectives::recordDeferredError(format(
              "rank %d of %d: all-to-all: segment %" PRId64
              " has a negative count",
              state.rank, state.size, g));
          return 0;
        }
        sendRows[g / block] += sendCounts[g];
        recvRows[g / block] += recvCounts[g];
      }
      std::vector<int64_t> sendFirst(ranks + 1, 0), recvFirst(ranks + 1, 0);
      for (int64_t r = 0; r < ranks; ++r) {
        sendFirst[r + 1] = sendFirst[r] + sendRows[r];
        recvFirst[r + 1] = recvFirst[r] + recvRows[r];
      }
      if (sendFirst[ranks] > rowsCapacity ||
          recvFirst[ranks] > receivedCapacity) {
        collectives::recordDeferredError(format(
            "rank %d of %d: all-to-all: the counts ask to send %" PRId64
            " rows from a buffer of %" PRId64 " and to receive %" PRId64
            " into one of %" PRId64,
            state.rank, state.size, sendFirst[ranks], rowsCapacity,
            recvFirst[ranks], receivedCapacity));
        return 0;
      }
      int64_t bytes = std::max(sendFirst[ranks], recvFirst[ranks]) * rowBytes;
      return launch("all_to_all", bytes, [&] {
        return sendReceive(
            [&](int p) { return size_t(sendRows[p] * rowBytes); },
            [&](int p) { return size_t(recvRows[p] * rowBytes); },
            [&](int p) {
              return (const char *)rows + sendFirst[p] * rowBytes;
            },
            [&](int p) { return (char *)received + recvFirst[p] * rowBytes; });
      });
    });
  });
}

MOERT_EXPORT int32_t moert_cuda_event_wait_v1(int64_t event) {
  return guarded(1, [&]() -> int32_t {
    std::lock_guard<std::mutex> lock(stateMutex);
    if (event <= 0)
      return 1; // the start failed and recorded why
    return deferUntilDrain(event);
  });
}

MOERT_EXPORT int32_t moert_cuda_drain_v1(void) {
  return guarded(1, [&]() -> int32_t {
    ncclcollectives::drain();
    return collectives::failedAlready() ? 1 : 0;
  });
}

MOERT_EXPORT int32_t moert_cuda_all_to_all_v1(
    const void *rows, const int32_t *counts, int64_t rowsCapacity,
    const int32_t *receivedCounts, void *received, int64_t receivedCapacity,
    int64_t segments, int64_t ranks, int64_t rowBytes) {
  int64_t event = moert_cuda_all_to_all_start_v1(
      rows, counts, rowsCapacity, receivedCounts, received, receivedCapacity,
      segments, ranks, rowBytes);
  if (event == 0)
    return 1;
  return moert_cuda_event_wait_v1(event);
}

MOERT_EXPORT int32_t moert_cuda_all_reduce_sum_i32_v1(const int32_t *in,
                                                      int32_t *out,
                                                      int64_t count,
                                                      int64_t ranks) {
  return guarded(1, [&]() -> int32_t {
    std::lock_guard<std::mutex> lock(stateMutex);
    if (!begin("all-reduce", ranks, ranks))
      return 1;
    if (count < 0) {
      collectives::recordDeferredError(
          format("all-reduce of %" PRId64 " values", count));
      return 1;
    }
    return outsideCompute([&]() -> int32_t {
      int64_t id = launch("all_reduce", count * 4, [&]() -> std::string {
        if (nccl::Result r = state.lib->ncclAllReduce(
                in, out, size_t(count), nccl::Int32, nccl::Sum, state.comm,
                ncclStream()))
          return describeNccl("ncclAllReduce", r);
        return "";
      });
      return id == 0 ? 1 : deferUntilDrain(id);
    });
  });
}

std::string moert::ncclcollectives::allReduceMaxOnHost(double *values,
                                                       int count) {
  std::lock_guard<std::mutex> lock(stateMutex);
  if (std::string error = ensureNccl(); !error.empty())
    return error;
  return allReduceMaxLocked(values, count);
}

void moert::ncclcollectives::beginCall() {
  std::lock_guard<std::mutex> lock(stateMutex);
  if (state.comm)
    markCallStream(/*resumes=*/true);
}

void moert::ncclcollectives::drain() {
  std::lock_guard<std::mutex> lock(stateMutex);
  if (pending.empty() && marks.empty())
    return;
  markCallStream(/*resumes=*/false);
  // In order of start: the first failure is the one to report.
  while (!pending.empty())
    finish(pending.begin()->first);
  if (!marks.empty() && !collectives::failedAlready()) {
    CUevent last = marks.back().event;
    if (std::string error = waitPolling(last, "the call's kernels");
        !error.empty())
      collectives::recordDeferredError(error);
  }
  if (!collectives::failedAlready())
    addComputeSpans();
  else
    discardMarks();
  // Every all-to-all of the call is done: their count copies are free.
  splits.countSlotsUsed = 0;
  if (splits.overflow && !collectives::failedAlready()) {
    int64_t overflow[2] = {0, 0};
    const cuda::Driver &d = *state.driver;
    if (CUresult r = d.cuMemcpyDtoH(overflow, splits.overflow,
                                    sizeof(overflow))) {
      collectives::recordDeferredError(describeCuda("cuMemcpyDtoH", r));
    } else if (overflow[0] || overflow[1]) {
      static const int64_t zeros[2] = {0, 0};
      d.cuMemcpyHtoD(splits.overflow, zeros, sizeof(zeros));
      collectives::recordDeferredError(
          overflow[0]
              ? format("rank %d of %d: all-to-all: %" PRId64 " rows came to "
                       "this rank, more than its received buffer holds (the "
                       "compiler sizes it for R ranks of equal token counts)",
                       state.rank, state.size, overflow[0])
              : format("rank %d of %d: all-to-all: a rank's counts add up to "
                       "%" PRId64 " rows, more than its rows buffer holds",
                       state.rank, state.size, overflow[1]));
    }
  }
}

void moert::ncclcollectives::shutdown() {
  std::lock_guard<std::mutex> lock(stateMutex);
  stopWatchdog();
  if (state.comm) {
    if (!state.aborted && !abortStarted.load())
      state.lib->ncclCommDestroy(state.comm);
    state.comm = nullptr;
  }
  if (state.driver) {
    for (int p = 0; p < int(splits.peers.size()); ++p)
      if (p != state.rank && splits.peers[p])
        state.driver->cuIpcCloseMemHandle(splits.peers[p]);
    if (splits.staging)
      state.driver->cuMemFree(splits.staging);
    if (splits.handshake)
      state.driver->cuMemFree(splits.handshake);
    for (cuda::CUdeviceptr slot : splits.countSlots)
      state.driver->cuMemFree(slot);
    if (splits.module)
      state.driver->cuModuleUnload(splits.module);
    for (auto &[id, p] : pending) {
      state.driver->cuEventDestroy(p.begin);
      state.driver->cuEventDestroy(p.end);
    }
    discardMarks();
    if (state.anchor)
      state.driver->cuEventDestroy(state.anchor);
    if (state.stream)
      state.driver->cuStreamDestroy(state.stream);
  }
  pending.clear();
  marks.clear();
  splits = DeviceSplits();
  state = Nccl();
  abortStarted.store(false);
  watchdog.fired.store(false);
}
