//===- NcclLibrary.h - moert's view of NCCL's C API -------------*- C++ -*-===//
//
// Like the CUDA driver and MPI, NCCL is loaded with dlopen (libnccl.so.2)
// when a CUDA artifact first needs a collective: moert never includes
// nccl.h nor links NCCL. The types below are NCCL's ABI (nccl.h spells them
// the same), stable across NCCL 2.x; ncclSend/ncclRecv need 2.7.
//
// Each entry point is listed once, in MOERT_NCCL_FUNCTIONS.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_NCCLLIBRARY_H
#define MOERT_SRC_NCCLLIBRARY_H

#include <cstddef>
#include <string>

namespace moert {
namespace nccl {

using Result = int; ///< ncclResult_t; 0 is ncclSuccess
using Comm = struct ncclComm *;
using Stream = struct CUstream_st *; ///< cudaStream_t is CUstream
struct UniqueId {
  char internal[128]; ///< NCCL_UNIQUE_ID_BYTES
};
enum DataType : int {
  Int8 = 0,
  Int32 = 2,
  Float16 = 6,
  Float32 = 7,
  Float64 = 8,
  BFloat16 = 9
};
enum RedOp : int { Sum = 0, Max = 2 };

constexpr int kMinimumVersion = 20700; ///< 2.7.0: ncclSend and ncclRecv

//   X(return type, name, parameter list)
#define MOERT_NCCL_FUNCTIONS(X)                                                \
  X(Result, ncclGetVersion, (int *version))                                    \
  X(const char *, ncclGetErrorString, (Result result))                         \
  X(Result, ncclGetUniqueId, (UniqueId * id))                                  \
  X(Result, ncclCommInitRank, (Comm * comm, int ranks, UniqueId id, int rank)) \
  X(Result, ncclCommDestroy, (Comm comm))                                      \
  X(Result, ncclCommAbort, (Comm comm))                                        \
  X(Result, ncclCommGetAsyncError, (Comm comm, Result * asyncError))           \
  X(Result, ncclGroupStart, ())                                                \
  X(Result, ncclGroupEnd, ())                                                  \
  X(Result, ncclSend,                                                          \
    (const void *data, size_t count, DataType type, int peer, Comm comm,       \
     Stream stream))                                                           \
  X(Result, ncclRecv,                                                          \
    (void *data, size_t count, DataType type, int peer, Comm comm,             \
     Stream stream))                                                           \
  X(Result, ncclAllReduce,                                                     \
    (const void *send, void *recv, size_t count, DataType type, RedOp op,      \
     Comm comm, Stream stream))

struct Library {
#define MOERT_NCCL_MEMBER(ret, name, params) ret(*name) params = nullptr;
  MOERT_NCCL_FUNCTIONS(MOERT_NCCL_MEMBER)
#undef MOERT_NCCL_MEMBER
  int version = 0; ///< ncclGetVersion's code: 21903 for 2.19.3
};

/// Loads `soname` (default libnccl.so.2) once and checks its version.
/// Returns null with `error` saying what to install. The soname is a
/// parameter for the tests.
const Library *load(std::string &error, const char *soname = "libnccl.so.2");

} // namespace nccl
} // namespace moert

#endif // MOERT_SRC_NCCLLIBRARY_H
