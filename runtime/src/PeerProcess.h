//===- PeerProcess.h - Has a peer rank's process ended? ---------*- C++ -*-===//
//
// A rank killed on the same node leaves no trace NCCL reports: over NVLink
// its peers' kernels just wait. So the ranks tell each other who they are
// (process id and the host they run on, as a kernel and pid namespace see
// it), and a waiting rank that finds a peer of its own host gone names it at
// once instead of waiting out the time limit. Header-only and free of CUDA
// and NCCL, so that the unit tests drive it with processes of their own.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_PEERPROCESS_H
#define MOERT_SRC_PEERPROCESS_H

#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/types.h>
#include <unistd.h>

namespace moert {

/// Who a rank's process is: `host` tells which process ids are comparable
/// (the same boot of the same kernel, the same pid namespace), `pid` is the
/// id there. Three int32 words, the shape the ranks exchange.
struct PeerIdentity {
  uint32_t hostLow = 0, hostHigh = 0;
  int32_t pid = 0;

  bool sameHost(const PeerIdentity &other) const {
    return hostLow == other.hostLow && hostHigh == other.hostHigh;
  }
  static constexpr size_t kWords = 3;
  std::array<int32_t, kWords> words() const {
    return {int32_t(hostLow), int32_t(hostHigh), pid};
  }
  static PeerIdentity fromWords(const int32_t *words) {
    return {uint32_t(words[0]), uint32_t(words[1]), words[2]};
  }
};

/// FNV-1a: a stable 64-bit hash of the text that names the host.
inline uint64_t hashText(const std::string &text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text)
    hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

/// This process: the host is the kernel's boot id and the pid namespace's
/// inode, so two containers on one machine with separate pid namespaces are
/// different hosts (their pids mean different processes).
inline PeerIdentity thisProcess() {
  std::string boot, namespaceLink;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  char link[256] = {0};
  ssize_t length = readlink("/proc/self/ns/pid", link, sizeof(link) - 1);
  if (length > 0)
    namespaceLink.assign(link, size_t(length));
  PeerIdentity self;
  // Without either, nothing can be compared: host 0 is never "the same".
  if (!boot.empty() && !namespaceLink.empty()) {
    uint64_t hash = hashText(boot + "/" + namespaceLink) | 1;
    self.hostLow = uint32_t(hash);
    self.hostHigh = uint32_t(hash >> 32);
  }
  self.pid = int32_t(getpid());
  return self;
}

/// True if process `pid` of this host has ended: it is not in /proc, or it
/// is a zombie (killed, not yet reaped by its parent) or dead.
inline bool processHasEnded(int32_t pid) {
  if (pid <= 0)
    return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat)
    return true;
  // "pid (command) S ...": the state follows the last ')'.
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size())
    return false;
  char state = line[close + 2];
  return state == 'Z' || state == 'X';
}

} // namespace moert

#endif // MOERT_SRC_PEERPROCESS_H
