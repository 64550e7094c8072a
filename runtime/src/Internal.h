//===- Internal.h - Shared declarations of the moert sources ----*- C++ -*-===//
//
// What the moert translation units share and the C API does not show: the
// error setter, the tensor and artifact structs, and the metadata parser.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_INTERNAL_H
#define MOERT_SRC_INTERNAL_H

#include "moe-mlir/Runtime/moert.h"

#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

static_assert(sizeof(void *) == sizeof(int64_t),
              "memref descriptors are laid out as 64-bit words");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              ".npy I/O and artifacts assume a little-endian host");

namespace moert {

/// Sets the calling thread's last error from a printf-style format.
void setError(const char *format, ...) __attribute__((format(printf, 1, 2)));

/// Runs `body`, turning any C++ exception (in practice std::bad_alloc from a
/// container) into an error, so that nothing unwinds across the C boundary.
template <typename R, typename Body> R guarded(R onFailure, Body &&body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    setError("out of memory");
  } catch (...) {
    setError("internal error: unexpected C++ exception");
  }
  return onFailure;
}

/// The integer value of a dtype that a C caller passed. It is read through
/// memcpy: in C++, loading an enum outside its range of values is undefined.
int rawDType(const moert_dtype &dtype);

/// True if `dtype` is one of the moert_dtype enumerators.
bool isValidDType(const moert_dtype &dtype);

/// Formats a shape as "[2, 3]"; MOERT_DYNAMIC prints as "?".
std::string formatShape(int rank, const int64_t *dims);

/// The dtype, rank and dimensions of an argument or result.
struct TensorSpec {
  moert_dtype dtype = MOERT_F32;
  int rank = 0;
  int64_t dims[MOERT_MAX_RANK] = {}; ///< MOERT_DYNAMIC where dynamic.
};

using EntryFn = void (*)(void **args, void *results);
using FreeFn = void (*)(void *);

} // namespace moert

struct moert_tensor {
  moert_dtype dtype;
  int rank;
  int64_t dims[MOERT_MAX_RANK];
  int64_t numElements;
  void *data; ///< 64-byte aligned, never NULL (even with no elements).
  /// False for moert_tensor_wrap: the caller's memory, never freed here.
  bool ownsData;
};

struct moert_function {
  std::string name;
  std::vector<moert::TensorSpec> args;
  std::vector<moert::TensorSpec> results;
  std::vector<std::pair<std::string, std::string>> attrs;
  int line = 0; ///< The metadata line of the `function` record.
  moert::EntryFn entry = nullptr;
  moert::FreeFn free = nullptr;
  /// Where the function's code runs: MOERT_BACKEND_CUDA functions take
  /// device pointers and return device memory (allocated by mgpuMemAlloc).
  moert_backend backend = MOERT_BACKEND_CPU;
};

struct moert_artifact {
  moert_artifact() = default;
  moert_artifact(const moert_artifact &) = delete;
  moert_artifact &operator=(const moert_artifact &) = delete;
  ~moert_artifact(); ///< Closes the shared object.

  void *handle = nullptr; ///< From dlopen.
  std::string path;
  std::string target;
  moert_backend backend = MOERT_BACKEND_CPU; ///< From the target.
  std::vector<moert_function> functions;
};

namespace moert {

/// Parses artifact metadata text into `artifact` (target and functions; the
/// entry points are left unset). On failure sets an error that starts with
/// "<path>: metadata line N:" and returns false.
bool parseMetadata(const char *text, moert_artifact &artifact);

/// Whether new buffers of artifacts are poisoned (moert_set_poison_allocations)
/// with this byte: NaN in every float type, -1 in integers.
bool poisonAllocations();
constexpr unsigned char kPoisonByte = 0xFF;

/// "" if `bytes` (a whole artifact file) may be given to dlopen: sealed by
/// moe-compile with a matching checksum, an ELF shared object for this
/// machine; else what is wrong, in words.
std::string validateArtifactBytes(const unsigned char *bytes, size_t size);

/// The collectives' deferred error (Collectives.cpp): artifacts ignore what
/// moert_exchange_counts_v1 and moert_all_to_all_v1 return, so the first
/// failure is kept here and the call of the function reports it.
namespace collectives {
void clearDeferredError();
bool takeDeferredError(std::string &message);
/// Records the first failure of a collective (later ones are dropped: the
/// first says what went wrong) and whether one is recorded.
void recordDeferredError(const std::string &message);
bool failedAlready();
/// The world moert_comm_init joined.
int worldRank();
int worldSize();
/// How it was launched: mpirun (MPI is loaded), torchrun's variables (no
/// MPI; only the CUDA backend's collectives, over NCCL, run there), or a
/// single process.
enum class Launcher { Single, Mpi, Torchrun };
Launcher launcher();
/// Rank 0's `bytes` at `blob` reach every rank over MPI (the NCCL unique id
/// under mpirun); "" or what failed.
std::string broadcastOverMpi(void *blob, size_t bytes);
/// "" if a program compiled for `ranks` ranks, whose count arrays have
/// `segments` entries, may run its collective `call` in this world.
std::string checkWorld(const char *call, int64_t segments, int64_t ranks);
} // namespace collectives

/// The CUDA collectives (NcclCollectives.cpp): destroys the communicator and
/// the communication stream (moert_comm_finalize).
namespace ncclcollectives {
void shutdown();
/// Waits (polling, with the time limit) for every CUDA collective the call
/// started: the compute stream waited for them on the device; the host
/// waits here once, at the end of the call, and records the first failure.
void drain();
/// Marks where a call's work begins on its stream (drain ends it), once
/// the communicator exists: the compute lane of the trace, device-timed.
void beginCall();
/// The maximum of `values` over the ranks of a torchrun world, through the
/// NCCL communicator (such a world has no MPI). "" or what failed.
std::string allReduceMaxOnHost(double *values, int count);
} // namespace ncclcollectives

} // namespace moert

#endif // MOERT_SRC_INTERNAL_H
