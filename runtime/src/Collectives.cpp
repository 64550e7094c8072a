//===- Collectives.cpp - The world of ranks and the all-to-all ------------===//
//
// One process is one rank. The world is what the launcher made: mpirun's
// MPI world (Open MPI, loaded with dlopen: MpiLibrary.h), or one rank. The
// entry points compiled code calls (moert_*_v1) check what the compiler
// promised against the world (ranks, buffer sizes) before any rank sends,
// so a mismatch is a message instead of a hang or a corrupted buffer; every
// rank makes the same checks on the same data, so they fail together.
//
//===----------------------------------------------------------------------===//

#include "CommStream.h"
#include "CudaDriver.h"
#include "Internal.h"
#include "MpiLibrary.h"
#include "NcclLibrary.h"
#include "Rendezvous.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#define MOERT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct World {
  bool joined = false;
  int rank = 0, size = 1;
  const moert::mpi::Library *mpi = nullptr; ///< null: one rank, no MPI
  bool weInitializedMpi = false;
  bool torchrun = false; ///< RANK/WORLD_SIZE without mpirun (CUDA only)
};

World world;
std::mutex worldMutex;

std::mutex deferredMutex;
std::string deferredError;
bool haveDeferredError = false;

void recordDeferredErrorImpl(const std::string &message) {
  std::lock_guard<std::mutex> lock(deferredMutex);
  if (!haveDeferredError) {
    deferredError = message;
    haveDeferredError = true;
  }
}

bool failedAlreadyImpl() {
  std::lock_guard<std::mutex> lock(deferredMutex);
  return haveDeferredError;
}
void recordDeferredError(const std::string &message) {
  recordDeferredErrorImpl(message);
}
bool failedAlready() { return failedAlreadyImpl(); }

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  char buffer[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buffer, sizeof(buffer), fmt, args);
  va_end(args);
  return buffer;
}

const char *env(const char *name) {
  const char *value = std::getenv(name);
  return value && *value ? value : nullptr;
}

bool joinMpi(std::string &error) {
  const moert::mpi::Library *mpi = moert::mpi::load(error);
  if (!mpi)
    return false;
  int initialized = 0;
  if (int code = mpi->MPI_Initialized(&initialized)) {
    error = mpi->describe("MPI_Initialized", code);
    return false;
  }
  if (!initialized) {
    int provided = 0;
    if (int code = mpi->MPI_Init_thread(nullptr, nullptr,
                                        moert::mpi::kThreadSerialized,
                                        &provided)) {
      error = mpi->describe("MPI_Init_thread", code);
      return false;
    }
    world.weInitializedMpi = true;
  }
  // Errors come back as codes (MPI's default aborts every rank).
  mpi->MPI_Comm_set_errhandler(mpi->commWorld, mpi->errorsReturn);
  if (int code = mpi->MPI_Comm_rank(mpi->commWorld, &world.rank)) {
    error = mpi->describe("MPI_Comm_rank", code);
    return false;
  }
  if (int code = mpi->MPI_Comm_size(mpi->commWorld, &world.size)) {
    error = mpi->describe("MPI_Comm_size", code);
    return false;
  }
  world.mpi = mpi;
  return true;
}

/// The checks both entry points make; "" or what is wrong.
std::string checkWorldImpl(const char *call, int64_t segments, int64_t ranks) {
  if (ranks < 1 || segments < ranks || segments % ranks != 0)
    return format("%s: %" PRId64 " segments cannot be split over %" PRId64
                  " ranks",
                  call, segments, ranks);
  if (ranks != world.size)
    return format("the program was compiled for %" PRId64
                  " expert-parallel ranks (ep=%" PRId64
                  ") but runs on %d: launch it with mpirun -n %" PRId64,
                  ranks, ranks, world.size, ranks);
  if (segments / ranks > INT_MAX)
    return format("%s: %" PRId64 " segments per rank exceed MPI's int counts",
                  call, segments / ranks);
  return "";
}

/// The CPU backend's checks: the world's, and MPI under more than one rank.
std::string checkWorld(const char *call, int64_t segments, int64_t ranks) {
  std::string error = checkWorldImpl(call, segments, ranks);
  if (error.empty() && world.torchrun)
    error = format("WORLD_SIZE=%d is set (a torchrun-style launch), but the "
                   "CPU backend's collectives run over MPI: launch with "
                   "mpirun -n %d",
                   world.size, world.size);
  return error;
}

} // namespace

void moert::collectives::recordDeferredError(const std::string &message) {
  recordDeferredErrorImpl(message);
}
bool moert::collectives::failedAlready() { return failedAlreadyImpl(); }
int moert::collectives::worldRank() { return world.rank; }
int moert::collectives::worldSize() { return world.size; }
moert::collectives::Launcher moert::collectives::launcher() {
  return world.mpi ? Launcher::Mpi
                   : world.torchrun ? Launcher::Torchrun : Launcher::Single;
}
std::string moert::collectives::checkWorld(const char *call, int64_t segments,
                                           int64_t ranks) {
  return checkWorldImpl(call, segments, ranks);
}

std::string moert::collectives::broadcastOverMpi(void *blob, size_t bytes) {
  if (!world.mpi)
    return "no MPI world to broadcast over";
  const moert::mpi::Library &mpi = *world.mpi;
  int code = 0;
  // Every MPI call of the process runs on the communication stream.
  moert::comm::runAndWait("broadcast", int64_t(bytes), [&] {
    code = mpi.MPI_Bcast(blob, int(bytes), mpi.byte, 0, mpi.commWorld);
  });
  return code ? mpi.describe("MPI_Bcast", code) : "";
}

void moert::collectives::clearDeferredError() {
  std::lock_guard<std::mutex> lock(deferredMutex);
  haveDeferredError = false;
  deferredError.clear();
}

bool moert::collectives::takeDeferredError(std::string &message) {
  std::lock_guard<std::mutex> lock(deferredMutex);
  if (!haveDeferredError)
    return false;
  message = deferredError;
  haveDeferredError = false;
  deferredError.clear();
  return true;
}

int moert_comm_take_error(char *message, size_t size) {
  std::string taken;
  if (!moert::collectives::takeDeferredError(taken))
    return 0;
  if (message && size > 0) {
    std::snprintf(message, size, "%s", taken.c_str());
  }
  return 1;
}

int moert_collectives_abi_version(void) {
  return MOERT_COLLECTIVES_ABI_VERSION;
}

int moert_comm_init(void) { return moert_comm_init_launch(0); }

int moert_comm_init_launch(int allow_torchrun) {
  return moert::guarded(1, [&] {
    std::lock_guard<std::mutex> lock(worldMutex);
    if (world.joined)
      return 0;
    std::string error;
    if (env("OMPI_COMM_WORLD_SIZE")) {
      if (!joinMpi(error)) {
        moert::setError("cannot join the MPI world: %s", error.c_str());
        return 1;
      }
    } else if (const char *size = env("WORLD_SIZE");
               size && std::strtol(size, nullptr, 10) > 1 && allow_torchrun) {
      // torchrun: the CUDA collectives make their NCCL communicator from
      // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
      moert::LaunchEnvironment launch;
      if (std::string error = moert::readLaunchEnvironment(launch);
          !error.empty()) {
        moert::setError("torchrun-style launch: %s", error.c_str());
        return 1;
      }
      world.rank = launch.rank;
      world.size = launch.ranks;
      world.torchrun = true;
    } else if (const char *size = env("WORLD_SIZE");
               size && std::strtol(size, nullptr, 10) > 1) {
      moert::setError(
          "WORLD_SIZE=%s is set (a torchrun-style launch), but the CPU "
          "backend's collectives run over MPI: launch with mpirun -n %s",
          size, size);
      return 1;
    }
    // One GPU a rank on the CUDA backend: the launcher's local rank.
    if (world.size > 1) {
      const char *local = env(world.mpi ? "OMPI_COMM_WORLD_LOCAL_RANK"
                                        : "LOCAL_RANK");
      moert::cuda::setLocalRank(local ? int(std::strtol(local, nullptr, 10))
                                      : world.rank);
    }
    world.joined = true;
    return 0;
  });
}

int moert_comm_rank(void) { return world.rank; }
int moert_comm_size(void) { return world.size; }

int moert_comm_allreduce_max_f64(double *values, int count) {
  return moert::guarded(1, [&] {
    if (count < 0 || (count > 0 && !values)) {
      moert::setError("moert_comm_allreduce_max_f64: bad buffer");
      return 1;
    }
    if (count == 0 || world.size <= 1)
      return 0;
    if (world.torchrun) {
      if (std::string error =
              moert::ncclcollectives::allReduceMaxOnHost(values, count);
          !error.empty()) {
        moert::setError("%s", error.c_str());
        return 1;
      }
      return 0;
    }
    if (!world.mpi)
      return 0;
    const moert::mpi::Library &mpi = *world.mpi;
    std::vector<double> in(values, values + count);
    int code = 0;
    // Every MPI call of the process runs on the communication stream.
    moert::comm::runAndWait("allreduce", count * 8, [&] {
      code = mpi.MPI_Allreduce(in.data(), values, count, mpi.float64, mpi.max,
                               mpi.commWorld);
    });
    if (code) {
      moert::setError("%s", mpi.describe("MPI_Allreduce", code).c_str());
      return 1;
    }
    return 0;
  });
}

int moert_comm_finalize(void) {
  return moert::guarded(1, [&] {
    std::lock_guard<std::mutex> lock(worldMutex);
    moert::ncclcollectives::shutdown();
    moert::comm::shutdown();
    if (world.mpi && world.weInitializedMpi) {
      int finalized = 0;
      world.mpi->MPI_Finalized(&finalized);
      if (!finalized)
        if (int code = world.mpi->MPI_Finalize()) {
          moert::setError("%s",
                          world.mpi->describe("MPI_Finalize", code).c_str());
          return 1;
        }
    }
    world = World();
    return 0;
  });
}

MOERT_EXPORT int32_t moert_exchange_counts_v1(const int32_t *counts,
                                              int32_t *received,
                                              int64_t segments,
                                              int64_t ranks) {
  return moert::guarded(1, [&]() -> int32_t {
    if (failedAlready())
      return 1;
    if (std::string error = checkWorld("exchange of counts", segments, ranks);
        !error.empty()) {
      recordDeferredError(error);
      return 1;
    }
    moert::comm::endCompute("compute");
    int64_t bytes = segments * int64_t(sizeof(int32_t));
    if (!world.mpi) {
      moert::comm::runAndWait("exchange_counts", bytes, [=] {
        std::memcpy(received, counts, sizeof(int32_t) * size_t(segments));
      });
    } else {
      const moert::mpi::Library &mpi = *world.mpi;
      int block = static_cast<int>(segments / ranks);
      moert::comm::runAndWait("exchange_counts", bytes, [=, &mpi] {
        if (int code = mpi.MPI_Alltoall(counts, block, mpi.int32, received,
                                        block, mpi.int32, mpi.commWorld))
          recordDeferredError(mpi.describe("MPI_Alltoall (counts)", code));
      });
    }
    moert::comm::beginCompute();
    return failedAlready() ? 1 : 0;
  });
}

MOERT_EXPORT int64_t moert_all_to_all_start_v1(
    const void *rows, const int32_t *counts, int64_t rowsCapacity,
    const int32_t *receivedCounts, void *received, int64_t receivedCapacity,
    int64_t segments, int64_t ranks, int64_t rowBytes) {
  return moert::guarded(int64_t(0), [&]() -> int64_t {
    if (failedAlready())
      return 0;
    if (std::string error = checkWorld("all-to-all", segments, ranks);
        !error.empty()) {
      recordDeferredError(error);
      return 0;
    }
    // Rows per peer, from the segment counts of its block.
    int64_t block = segments / ranks;
    std::vector<int64_t> sendRows(ranks, 0), recvRows(ranks, 0);
    for (int64_t g = 0; g < segments; ++g) {
      if (counts[g] < 0 || receivedCounts[g] < 0) {
        recordDeferredError(format(
            "all-to-all: segment %" PRId64 " has a negative count", g));
        return 0;
      }
      sendRows[g / block] += counts[g];
      recvRows[g / block] += receivedCounts[g];
    }
    int64_t sendTotal = 0, recvTotal = 0;
    for (int64_t r = 0; r < ranks; ++r) {
      sendTotal += sendRows[r];
      recvTotal += recvRows[r];
    }
    if (sendTotal > rowsCapacity || recvTotal > receivedCapacity) {
      recordDeferredError(format(
          "all-to-all: the counts ask to send %" PRId64 " rows from a buffer "
          "of %" PRId64 " and to receive %" PRId64 " into one of %" PRId64,
          sendTotal, rowsCapacity, recvTotal, receivedCapacity));
      return 0;
    }
    moert::comm::endCompute("compute");
    int64_t bytes = std::max(sendTotal, recvTotal) * rowBytes;
    if (!world.mpi) {
      if (sendTotal != recvTotal) {
        recordDeferredError(format("all-to-all on one rank: %" PRId64
                                   " rows sent but %" PRId64 " expected",
                                   sendTotal, recvTotal));
        return 0;
      }
      uint64_t event = moert::comm::enqueue("all_to_all", bytes, [=] {
        if (sendTotal > 0)
          std::memmove(received, rows, size_t(sendTotal) * size_t(rowBytes));
      });
      moert::comm::beginCompute();
      return int64_t(event);
    }
    // Counts in rows of one contiguous datatype, so that int counts reach
    // 2^31 rows rather than 2^31 bytes.
    const moert::mpi::Library &mpi = *world.mpi;
    if (rowBytes < 1 || rowBytes > INT_MAX || sendTotal > INT_MAX ||
        recvTotal > INT_MAX) {
      recordDeferredError(format("all-to-all: %" PRId64 " rows of %" PRId64
                                 " bytes exceed MPI's int counts",
                                 std::max(sendTotal, recvTotal), rowBytes));
      return 0;
    }
    std::vector<int> sendCounts(ranks), sendDispls(ranks), recvCounts(ranks),
        recvDispls(ranks);
    for (int64_t r = 0, s = 0, d = 0; r < ranks; ++r) {
      sendCounts[r] = int(sendRows[r]);
      recvCounts[r] = int(recvRows[r]);
      sendDispls[r] = int(s);
      recvDispls[r] = int(d);
      s += sendRows[r];
      d += recvRows[r];
    }
    uint64_t event = moert::comm::enqueue(
        "all_to_all", bytes,
        [=, &mpi, sendCounts = std::move(sendCounts),
         sendDispls = std::move(sendDispls),
         recvCounts = std::move(recvCounts),
         recvDispls = std::move(recvDispls)] {
          moert::mpi::Datatype row = nullptr;
          if (int code =
                  mpi.MPI_Type_contiguous(int(rowBytes), mpi.byte, &row)) {
            recordDeferredError(mpi.describe("MPI_Type_contiguous", code));
            return;
          }
          mpi.MPI_Type_commit(&row);
          int code = mpi.MPI_Alltoallv(
              rows, sendCounts.data(), sendDispls.data(), row, received,
              recvCounts.data(), recvDispls.data(), row, mpi.commWorld);
          mpi.MPI_Type_free(&row);
          if (code)
            recordDeferredError(mpi.describe("MPI_Alltoallv", code));
        });
    moert::comm::beginCompute();
    return int64_t(event);
  });
}

MOERT_EXPORT int32_t moert_event_wait_v1(int64_t event) {
  return moert::guarded(1, [&]() -> int32_t {
    moert::comm::endCompute("compute");
    if (event > 0)
      moert::comm::wait(uint64_t(event));
    moert::comm::beginCompute();
    return failedAlready() ? 1 : 0;
  });
}

MOERT_EXPORT int32_t moert_all_to_all_v1(
    const void *rows, const int32_t *counts, int64_t rowsCapacity,
    const int32_t *receivedCounts, void *received, int64_t receivedCapacity,
    int64_t segments, int64_t ranks, int64_t rowBytes) {
  int64_t event = moert_all_to_all_start_v1(
      rows, counts, rowsCapacity, receivedCounts, received, receivedCapacity,
      segments, ranks, rowBytes);
  if (event == 0)
    return 1;
  return moert_event_wait_v1(event);
}

void moert_comm_stats_get(moert_comm_stats *out) {
  if (!out)
    return;
  moert::comm::Stats stats = moert::comm::stats();
  out->busy_ms = stats.busyMs;
  out->waited_ms = stats.waitedMs;
  out->collectives = stats.collectives;
}

void moert_comm_stats_reset(void) { moert::comm::resetStats(); }

void moert_trace_enable(int enabled) { moert::comm::setTracing(enabled != 0); }

int moert_trace_write_events(const char *path) {
  return moert::guarded(1, [&] {
    std::vector<moert::comm::Span> spans = moert::comm::takeSpans();
    FILE *file = path ? std::fopen(path, "w") : nullptr;
    if (!file) {
      moert::setError("cannot write the trace to '%s'", path ? path : "");
      return 1;
    }
    // Chrome's trace event format: complete events ("X"), one per line;
    // the process is the rank, thread 0 computes, thread 1 communicates.
    std::fprintf(file,
                 "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, "
                 "\"args\": {\"name\": \"rank %d\"}}\n",
                 world.rank, world.rank);
    const char *lanes[2] = {"compute", "communication"};
    for (int lane = 0; lane < 2; ++lane)
      std::fprintf(file,
                   "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": "
                   "%d, \"tid\": %d, \"args\": {\"name\": \"%s\"}}\n",
                   world.rank, lane, lanes[lane]);
    for (const moert::comm::Span &span : spans)
      std::fprintf(file,
                   "{\"name\": \"%s\", \"ph\": \"X\", \"pid\": %d, "
                   "\"tid\": %d, \"ts\": %.3f, \"dur\": %.3f, \"args\": "
                   "{\"bytes\": %lld}}\n",
                   span.name.c_str(), world.rank, span.lane, span.startUs,
                   span.durationUs, static_cast<long long>(span.bytes));
    bool ok = std::fclose(file) == 0;
    if (!ok) {
      moert::setError("cannot write the trace to '%s'", path);
      return 1;
    }
    return 0;
  });
}

int moert_nccl_version(int *version) {
  return moert::guarded(1, [&] {
    std::string error;
    const moert::nccl::Library *nccl = moert::nccl::load(error);
    if (!nccl) {
      moert::setError("%s", error.c_str());
      return 1;
    }
    if (version)
      *version = nccl->version;
    return 0;
  });
}

int moert_rendezvous_broadcast(void *blob, size_t bytes, int timeout_seconds) {
  return moert::guarded(1, [&] {
    moert::LaunchEnvironment launch;
    std::string error = moert::readLaunchEnvironment(launch);
    if (error.empty())
      error = moert::broadcastFromRankZero(blob, bytes, launch.rank,
                                           launch.ranks, launch.address,
                                           launch.port, timeout_seconds);
    if (!error.empty()) {
      moert::setError("rendezvous: %s", error.c_str());
      return 1;
    }
    return 0;
  });
}

MOERT_EXPORT int32_t moert_all_reduce_sum_i32_v1(const int32_t *in,
                                                 int32_t *out, int64_t count,
                                                 int64_t ranks) {
  return moert::guarded(1, [&]() -> int32_t {
    if (failedAlready())
      return 1;
    if (std::string error = checkWorld("all-reduce", ranks, ranks);
        !error.empty()) {
      recordDeferredError(error);
      return 1;
    }
    if (count < 0 || count > INT_MAX) {
      recordDeferredError(format("all-reduce of %" PRId64 " values", count));
      return 1;
    }
    moert::comm::endCompute("compute");
    if (!world.mpi) {
      moert::comm::runAndWait("all_reduce", count * 4, [=] {
        std::memcpy(out, in, sizeof(int32_t) * size_t(count));
      });
    } else {
      const moert::mpi::Library &mpi = *world.mpi;
      moert::comm::runAndWait("all_reduce", count * 4, [=, &mpi] {
        if (int code = mpi.MPI_Allreduce(in, out, int(count), mpi.int32,
                                         mpi.sum, mpi.commWorld))
          recordDeferredError(mpi.describe("MPI_Allreduce", code));
      });
    }
    moert::comm::beginCompute();
    return failedAlready() ? 1 : 0;
  });
}
