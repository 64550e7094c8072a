//===- CommStream.cpp - The communication stream of the CPU backend -------===//

#include "CommStream.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

using namespace moert::comm;

double moert::comm::nowUs() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

struct Task {
  uint64_t event;
  const char *name;
  int64_t bytes;
  std::function<void()> work;
};

struct Stream {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Task> queue;
  std::thread thread;
  bool running = false, stopping = false;
  uint64_t nextEvent = 1;
  uint64_t doneUpTo = 0; // events run in order: all <= this are done

  Stats stats;
  bool tracing = false;
  std::vector<Span> spans;
  double computeStartUs = -1;

  void loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      changed.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty())
        return; // stopping, and nothing left to run
      Task task = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      double start = nowUs();
      task.work();
      double end = nowUs();
      lock.lock();
      stats.busyMs += (end - start) / 1000.0;
      ++stats.collectives;
      if (tracing)
        spans.push_back(Span{1, task.name, start, end - start, task.bytes});
      doneUpTo = task.event;
      changed.notify_all();
    }
  }
};

Stream &stream() {
  static Stream *s = new Stream(); // never destroyed: no exit-order issues
  return *s;
}

} // namespace

uint64_t moert::comm::enqueue(const char *name, int64_t bytes,
                              std::function<void()> work) {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.running) {
    s.stopping = false;
    s.thread = std::thread([&s] { s.loop(); });
    s.running = true;
  }
  uint64_t event = s.nextEvent++;
  s.queue.push_back(Task{event, name, bytes, std::move(work)});
  s.changed.notify_all();
  return event;
}

void moert::comm::wait(uint64_t event) {
  Stream &s = stream();
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.doneUpTo >= event)
    return;
  double start = nowUs();
  s.changed.wait(lock, [&] { return s.doneUpTo >= event; });
  double end = nowUs();
  s.stats.waitedMs += (end - start) / 1000.0;
  if (s.tracing)
    s.spans.push_back(Span{0, "wait", start, end - start, 0});
}

void moert::comm::runAndWait(const char *name, int64_t bytes,
                             std::function<void()> work) {
  wait(enqueue(name, bytes, std::move(work)));
}

void moert::comm::shutdown() {
  Stream &s = stream();
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.running)
      return;
    s.stopping = true;
    s.running = false;
    s.changed.notify_all();
    thread = std::move(s.thread);
  }
  thread.join();
}

void moert::comm::addCollective(const char *name, int64_t bytes,
                                double startUs, double durationUs) {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stats.busyMs += durationUs / 1000.0;
  ++s.stats.collectives;
  if (s.tracing)
    s.spans.push_back(Span{1, name, startUs, durationUs, bytes});
}

void moert::comm::addWait(double startUs, double durationUs) {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stats.waitedMs += durationUs / 1000.0;
  if (s.tracing)
    s.spans.push_back(Span{0, "wait", startUs, durationUs, 0});
}

void moert::comm::addCompute(const char *name, double startUs,
                             double durationUs) {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.tracing)
    s.spans.push_back(Span{0, name, startUs, durationUs, 0});
}

void moert::comm::beginCompute() {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.computeStartUs = nowUs();
}

void moert::comm::endCompute(const char *name) {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.computeStartUs < 0)
    return;
  double end = nowUs();
  if (s.tracing && end > s.computeStartUs)
    s.spans.push_back(Span{0, name, s.computeStartUs, end - s.computeStartUs, 0});
  s.computeStartUs = -1;
}

Stats moert::comm::stats() {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.stats;
}

void moert::comm::resetStats() {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stats = Stats();
}

void moert::comm::setTracing(bool enabled) {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.tracing = enabled;
}

std::vector<Span> moert::comm::takeSpans() {
  Stream &s = stream();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::vector<Span> spans;
  spans.swap(s.spans);
  return spans;
}
