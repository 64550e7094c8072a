//===- CommStream.h - The communication stream of the CPU backend -*- C++ -*-===//
//
// On the CPU, compiled code is the compute stream: it runs on the caller's
// thread. Communication runs on a second stream, one thread that makes every
// MPI call of the process in order (so MPI needs only
// MPI_THREAD_SERIALIZED). A collective started there returns an event; the
// compiled code waits for it just before it reads what arrived, and what the
// compute stream does in between overlaps the transfer.
//
// The stream also measures: how long it was busy, how long the compute
// stream waited for it (the part of the communication that was not hidden),
// and, while tracing, every span of both lanes for the Chrome trace.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_COMMSTREAM_H
#define MOERT_SRC_COMMSTREAM_H

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moert {
namespace comm {

/// Runs `work` on the communication stream after everything enqueued
/// before it; returns its event (> 0). `name` and `bytes` go to the trace.
uint64_t enqueue(const char *name, int64_t bytes, std::function<void()> work);

/// Blocks the caller until `event` has run. The time blocked counts as
/// communication the compute stream could not hide.
void wait(uint64_t event);

/// Runs `work` on the communication stream and waits for it.
void runAndWait(const char *name, int64_t bytes, std::function<void()> work);

/// Stops the stream's thread (before MPI_Finalize; a later enqueue starts
/// it again).
void shutdown();

/// The compute lane: compiled code runs between calls into the runtime.
/// A function call begins and ends a compute span; each collective entry
/// point ends the span before it and begins the next after it.
void beginCompute();
void endCompute(const char *name);

/// For a backend whose communication stream is not this thread (CUDA:
/// NCCL on a CUDA stream, timed by CUDA events): a collective that ran from
/// `startUs` for `durationUs` (system clock), and a wait of the compute
/// stream for one.
void addCollective(const char *name, int64_t bytes, double startUs,
                   double durationUs);
void addWait(double startUs, double durationUs);
/// A span of compiled code on the device (CUDA: between events).
void addCompute(const char *name, double startUs, double durationUs);
double nowUs();

struct Stats {
  double busyMs = 0;   ///< the communication stream running collectives
  double waitedMs = 0; ///< the compute stream blocked on their events
  int64_t collectives = 0;
};
Stats stats();
void resetStats();

/// One span of the Chrome trace: lane 0 compute, lane 1 communication;
/// microseconds of the system clock (so that ranks on one machine line up).
struct Span {
  int lane = 0;
  std::string name;
  double startUs = 0, durationUs = 0;
  int64_t bytes = 0;
};
void setTracing(bool enabled);
std::vector<Span> takeSpans();

} // namespace comm
} // namespace moert

#endif // MOERT_SRC_COMMSTREAM_H
