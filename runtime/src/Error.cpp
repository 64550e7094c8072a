//===- Error.cpp - The thread-local last error of moert ------------------===//
//
// Every failing moert call records why here; moert_last_error() reads it.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <cstdarg>
#include <cstdio>

namespace {
// Per thread, so that concurrent callers do not see each other's failures.
thread_local std::string lastError;
} // namespace

void moert::setError(const char *format, ...) {
  // Format into a local buffer first: an argument may point into lastError.
  char small[512];
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  int length = std::vsnprintf(small, sizeof(small), format, args);
  va_end(args);
  try {
    if (length < 0) {
      lastError = "moert: invalid error format";
    } else if (static_cast<size_t>(length) < sizeof(small)) {
      lastError = small;
    } else {
      std::string big(static_cast<size_t>(length) + 1, '\0');
      std::vsnprintf(&big[0], big.size(), format, again);
      big.resize(static_cast<size_t>(length));
      lastError = std::move(big);
    }
  } catch (...) {
    // Out of memory: keep what fits without allocating.
    lastError.clear();
  }
  va_end(again);
}

const char *moert_last_error(void) { return lastError.c_str(); }
