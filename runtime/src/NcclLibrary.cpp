//===- NcclLibrary.cpp - Loading NCCL with dlopen -------------------------===//

#include "NcclLibrary.h"

#include <cstdlib>
#include <dlfcn.h>
#include <map>
#include <mutex>

using namespace moert::nccl;

const Library *moert::nccl::load(std::string &error, const char *soname) {
  // MOERT_NCCL_LIBRARY names another library (a path, or a soname that is
  // not installed, for the tests of the error path).
  if (const char *chosen = std::getenv("MOERT_NCCL_LIBRARY");
      chosen && *chosen && std::string(soname) == "libnccl.so.2")
    soname = chosen;
  // One attempt per soname: a missing library stays missing.
  static std::mutex mutex;
  static std::map<std::string, std::pair<Library, std::string>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = loaded.try_emplace(soname);
  Library &library = it->second.first;
  std::string &loadError = it->second.second;
  if (inserted) {
    [&] {
      void *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        const char *why = dlerror();
        loadError = std::string("expert parallelism on the GPU needs NCCL: "
                                "cannot load ") +
                    soname + " (" + (why ? why : "unknown reason") +
                    "); install NCCL 2.7 or newer (libnccl2) or put it on "
                    "LD_LIBRARY_PATH";
        return;
      }
#define MOERT_NCCL_RESOLVE(ret, name, params)                                  \
  library.name = reinterpret_cast<ret(*) params>(dlsym(handle, #name));        \
  if (!library.name) {                                                         \
    loadError = std::string(soname) + " has no " #name                         \
                                      ": it is not NCCL 2.7 or newer";         \
    return;                                                                    \
  }
      MOERT_NCCL_FUNCTIONS(MOERT_NCCL_RESOLVE)
#undef MOERT_NCCL_RESOLVE
      if (library.ncclGetVersion(&library.version) != 0 ||
          library.version < kMinimumVersion)
        loadError = std::string(soname) + " is NCCL version code " +
                    std::to_string(library.version) +
                    "; expert parallelism needs 2.7 or newer (ncclSend, "
                    "ncclRecv)";
    }();
  }
  if (!loadError.empty()) {
    error = loadError;
    return nullptr;
  }
  return &library;
}
