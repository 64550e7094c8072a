//===- MpiLibrary.h - moert's view of Open MPI's C ABI ----------*- C++ -*-===//
//
// moert never includes mpi.h nor links MPI: it builds with a C++ compiler
// alone, and one moe-run works with and without MPI installed. Like the
// CUDA driver, MPI is loaded with dlopen when a process joins a group under
// mpirun. The library is Open MPI's, libmpi.so.40 (Debian's libopenmpi3,
// Open MPI 4.x and 5.x keep that soname and ABI): its handles are pointers,
// and the predefined ones (MPI_COMM_WORLD, MPI_BYTE, ...) are the addresses
// of exported globals, which dlsym finds by name. MPICH's ABI (integer
// handles, libmpi.so.12) is a different table, not supported yet.
//
// Each entry point is listed once, in MOERT_MPI_FUNCTIONS; the loader
// resolves them all or names the one it could not find.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_MPILIBRARY_H
#define MOERT_SRC_MPILIBRARY_H

#include <string>

namespace moert {
namespace mpi {

// Open MPI handles: pointers to its internal structs.
using Comm = void *;
using Datatype = void *;
using Op = void *;
using Errhandler = void *;

constexpr int kSuccess = 0;            // MPI_SUCCESS
constexpr int kMaxErrorString = 256;   // MPI_MAX_ERROR_STRING in Open MPI
constexpr int kThreadSerialized = 2;   // MPI_THREAD_SERIALIZED

//   X(return type, name, parameter list)
#define MOERT_MPI_FUNCTIONS(X)                                                 \
  X(int, MPI_Initialized, (int *flag))                                         \
  X(int, MPI_Finalized, (int *flag))                                           \
  X(int, MPI_Init_thread,                                                      \
    (int *argc, char ***argv, int required, int *provided))                    \
  X(int, MPI_Finalize, ())                                                     \
  X(int, MPI_Comm_rank, (Comm comm, int *rank))                                \
  X(int, MPI_Comm_size, (Comm comm, int *size))                                \
  X(int, MPI_Comm_set_errhandler, (Comm comm, Errhandler handler))             \
  X(int, MPI_Bcast, (void *data, int count, Datatype type, int root,          \
                     Comm comm))                                               \
  X(int, MPI_Error_string, (int code, char *text, int *length))                \
  X(int, MPI_Type_contiguous, (int count, Datatype old, Datatype *made))       \
  X(int, MPI_Type_commit, (Datatype * type))                                   \
  X(int, MPI_Type_free, (Datatype * type))                                     \
  X(int, MPI_Alltoall,                                                         \
    (const void *send, int sendCount, Datatype sendType, void *recv,           \
     int recvCount, Datatype recvType, Comm comm))                             \
  X(int, MPI_Alltoallv,                                                        \
    (const void *send, const int *sendCounts, const int *sendDispls,           \
     Datatype sendType, void *recv, const int *recvCounts,                     \
     const int *recvDispls, Datatype recvType, Comm comm))                     \
  X(int, MPI_Allreduce,                                                        \
    (const void *send, void *recv, int count, Datatype type, Op op,            \
     Comm comm))

//   X(handle type, member, exported global)
#define MOERT_MPI_HANDLES(X)                                                   \
  X(Comm, commWorld, ompi_mpi_comm_world)                                      \
  X(Datatype, byte, ompi_mpi_byte)                                             \
  X(Datatype, int32, ompi_mpi_int)                                             \
  X(Datatype, float64, ompi_mpi_double)                                        \
  X(Op, max, ompi_mpi_op_max)                                                  \
  X(Op, sum, ompi_mpi_op_sum)                                                  \
  X(Errhandler, errorsReturn, ompi_mpi_errors_return)

struct Library {
#define MOERT_MPI_MEMBER(ret, name, params) ret(*name) params = nullptr;
  MOERT_MPI_FUNCTIONS(MOERT_MPI_MEMBER)
#undef MOERT_MPI_MEMBER
#define MOERT_MPI_HANDLE(type, member, global) type member = nullptr;
  MOERT_MPI_HANDLES(MOERT_MPI_HANDLE)
#undef MOERT_MPI_HANDLE

  /// "MPI_Alltoallv failed: MPI_ERR_TRUNCATE: message truncated".
  std::string describe(const char *call, int code) const;
};

/// Loads libmpi.so.40 once (RTLD_GLOBAL: Open MPI's plugins resolve their
/// symbols against it). Returns null with `error` saying what to install.
const Library *load(std::string &error);

} // namespace mpi
} // namespace moert

#endif // MOERT_SRC_MPILIBRARY_H
