//===- MpiLibrary.cpp - Loading Open MPI with dlopen ----------------------===//

#include "MpiLibrary.h"

#include <dlfcn.h>
#include <mutex>

using namespace moert::mpi;

std::string Library::describe(const char *call, int code) const {
  char text[kMaxErrorString + 1] = {0};
  int length = 0;
  std::string message = std::string(call) + " failed (code " +
                        std::to_string(code) + ")";
  if (MPI_Error_string && MPI_Error_string(code, text, &length) == kSuccess &&
      length > 0)
    message += ": " + std::string(text, static_cast<size_t>(length));
  return message;
}

const Library *moert::mpi::load(std::string &error) {
  static std::once_flag once;
  static Library library;
  static std::string loadError;
  static bool loaded = false;
  std::call_once(once, [] {
    const char *soname = "libmpi.so.40";
    void *handle = dlopen(soname, RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      const char *why = dlerror();
      loadError = std::string("cannot load ") + soname + " (Open MPI): " +
                  (why ? why : "unknown reason") +
                  "; install Open MPI (Debian: apt-get install openmpi-bin "
                  "libopenmpi-dev) or run on one rank without mpirun";
      return;
    }
#define MOERT_MPI_RESOLVE(ret, name, params)                                   \
  library.name = reinterpret_cast<ret(*) params>(dlsym(handle, #name));        \
  if (!library.name) {                                                         \
    loadError = std::string(soname) + " has no " #name                         \
                                      ": not Open MPI's ABI (MPICH is not "   \
                                      "supported yet)";                        \
    return;                                                                    \
  }
    MOERT_MPI_FUNCTIONS(MOERT_MPI_RESOLVE)
#undef MOERT_MPI_RESOLVE
#define MOERT_MPI_RESOLVE_HANDLE(type, member, global)                         \
  library.member = static_cast<type>(dlsym(handle, #global));                  \
  if (!library.member) {                                                       \
    loadError = std::string(soname) + " has no " #global                       \
                                      ": not Open MPI's ABI (MPICH is not "   \
                                      "supported yet)";                        \
    return;                                                                    \
  }
    MOERT_MPI_HANDLES(MOERT_MPI_RESOLVE_HANDLE)
#undef MOERT_MPI_RESOLVE_HANDLE
    loaded = true;
  });
  if (!loaded) {
    error = loadError;
    return nullptr;
  }
  return &library;
}
