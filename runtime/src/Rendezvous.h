//===- Rendezvous.h - torchrun's rendezvous for one blob --------*- C++ -*-===//
//
// Without mpirun, a launcher such as torchrun tells each process RANK,
// WORLD_SIZE, MASTER_ADDR and MASTER_PORT. That is enough to make an NCCL
// communicator: rank 0 makes the ncclUniqueId and every other rank needs
// its 128 bytes. Rank 0 listens on MASTER_PORT, the others connect to
// MASTER_ADDR:MASTER_PORT (retrying while rank 0 starts) and receive the
// blob behind a magic header (a stray connection is refused, not read);
// each tells rank 0 its rank and who it is, so that rank 0 can name a rank
// that never came or whose process ended.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SRC_RENDEZVOUS_H
#define MOERT_SRC_RENDEZVOUS_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace moert {

/// Words a rank tells rank 0 about itself when it connects (its process:
/// PeerProcess.h's PeerIdentity).
constexpr size_t kIdentityWords = 3;

/// Rank 0's `blob` (`bytes` bytes) reaches every rank of `ranks`; "" or
/// what failed. Gives up after `timeoutSeconds`. On the way every rank's
/// `identity` (kIdentityWords; null: zeros) reaches rank 0, which writes
/// rank r's at `identities + r * kIdentityWords` (null: dropped).
std::string broadcastFromRankZero(void *blob, size_t bytes, int rank,
                                  int ranks, const std::string &address,
                                  int port, int timeoutSeconds,
                                  const int32_t *identity = nullptr,
                                  int32_t *identities = nullptr);

/// The launcher's view from the environment (RANK, WORLD_SIZE, MASTER_ADDR,
/// MASTER_PORT): "" and the values, or what is missing or malformed.
struct LaunchEnvironment {
  int rank = 0, ranks = 1, port = 0;
  std::string address;
};
std::string readLaunchEnvironment(LaunchEnvironment &out);

} // namespace moert

#endif // MOERT_SRC_RENDEZVOUS_H
