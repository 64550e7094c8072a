//===- Rendezvous.cpp - torchrun's rendezvous for one blob ----------------===//

#include "Rendezvous.h"
#include "PeerProcess.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

static_assert(moert::kIdentityWords == moert::PeerIdentity::kWords,
              "a rank tells rank 0 its PeerIdentity");

namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'R', 'T', 'R', 'V', '3'};

using Clock = std::chrono::steady_clock;

struct Socket {
  int fd = -1;
  ~Socket() {
    if (fd >= 0)
      close(fd);
  }
};

bool sendAll(int fd, const void *data, size_t bytes) {
  const char *at = static_cast<const char *>(data);
  while (bytes > 0) {
    ssize_t sent = send(fd, at, bytes, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR)
      continue;
    if (sent <= 0)
      return false;
    at += sent;
    bytes -= size_t(sent);
  }
  return true;
}

bool receiveAll(int fd, void *data, size_t bytes, Clock::time_point until) {
  char *at = static_cast<char *>(data);
  while (bytes > 0) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                       until - Clock::now())
                       .count());
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) <= 0)
      return false;
    ssize_t got = recv(fd, at, bytes, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    at += got;
    bytes -= size_t(got);
  }
  return true;
}

/// "rank 2" or "ranks 1, 3": the ranks not served, so that a rank that
/// failed before its rendezvous is named.
std::string missingRanks(const std::vector<bool> &served) {
  std::string names;
  int missing = 0;
  for (size_t r = 0; r < served.size(); ++r)
    if (!served[r]) {
      names += (missing++ ? ", " : "") + std::to_string(r);
    }
  return (missing == 1 ? "rank " : "ranks ") + names;
}

std::string serve(const void *blob, size_t bytes, int ranks, int port,
                  Clock::time_point until, int32_t *identities) {
  Socket listener;
  listener.fd = socket(AF_INET, SOCK_STREAM, 0);
  int yes = 1;
  setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = htons(uint16_t(port));
  if (listener.fd < 0 ||
      bind(listener.fd, reinterpret_cast<sockaddr *>(&address),
           sizeof(address)) != 0 ||
      listen(listener.fd, ranks) != 0)
    return "rank 0 cannot listen on MASTER_PORT=" + std::to_string(port) +
           ": " + std::strerror(errno);
  uint64_t size = bytes;
  std::vector<bool> served(size_t(ranks), false);
  served[0] = true;
  for (int count = 1; count < ranks;) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                       until - Clock::now())
                       .count());
    pollfd p{listener.fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) <= 0)
      return "rank 0 waited in vain for " + missingRanks(served) +
             " of the WORLD_SIZE=" + std::to_string(ranks) +
             " ranks to connect to MASTER_PORT=" + std::to_string(port);
    Socket peer;
    peer.fd = accept(listener.fd, nullptr, nullptr);
    if (peer.fd < 0)
      continue;
    char magic[sizeof(kMagic)];
    int32_t rank = -1, identity[moert::kIdentityWords];
    // A peer says what it is, which rank and who first; anything else is
    // not one of ours.
    if (!receiveAll(peer.fd, magic, sizeof(magic), until) ||
        std::memcmp(magic, kMagic, sizeof(kMagic)) != 0 ||
        !receiveAll(peer.fd, &rank, sizeof(rank), until) || rank < 1 ||
        rank >= ranks || served[size_t(rank)] ||
        !receiveAll(peer.fd, identity, sizeof(identity), until))
      continue;
    if (identities)
      std::memcpy(identities + size_t(rank) * moert::kIdentityWords, identity,
                  sizeof(identity));
    if (!sendAll(peer.fd, &size, sizeof(size)) ||
        !sendAll(peer.fd, blob, bytes))
      continue;
    served[size_t(rank)] = true;
    ++count;
  }
  return "";
}

std::string join(void *blob, size_t bytes, int32_t rank,
                 const int32_t *identity, const std::string &host, int port,
                 Clock::time_point until) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  std::string service = std::to_string(port);
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0 ||
      !found)
    return "cannot resolve MASTER_ADDR=" + host;
  std::string error = "cannot reach rank 0 at MASTER_ADDR=" + host +
                      ", MASTER_PORT=" + service;
  // Rank 0 may not listen yet: retry until the deadline.
  while (Clock::now() < until) {
    Socket s;
    s.fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (s.fd >= 0 && connect(s.fd, found->ai_addr, found->ai_addrlen) == 0) {
      uint64_t size = 0;
      if (sendAll(s.fd, kMagic, sizeof(kMagic)) &&
          sendAll(s.fd, &rank, sizeof(rank)) &&
          sendAll(s.fd, identity, moert::kIdentityWords * sizeof(int32_t)) &&
          receiveAll(s.fd, &size, sizeof(size), until)) {
        if (size != bytes) {
          error = "rank 0 sent " + std::to_string(size) + " bytes, not " +
                  std::to_string(bytes) + " (another program on the port?)";
          break;
        }
        if (receiveAll(s.fd, blob, bytes, until)) {
          error.clear();
          break;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  freeaddrinfo(found);
  return error;
}

bool parseInt(const char *text, int &out) {
  if (!text || !*text)
    return false;
  char *end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0 || value > 1 << 30)
    return false;
  out = int(value);
  return true;
}

} // namespace

std::string moert::broadcastFromRankZero(void *blob, size_t bytes, int rank,
                                         int ranks, const std::string &address,
                                         int port, int timeoutSeconds,
                                         const int32_t *identity,
                                         int32_t *identities) {
  static const int32_t kNobody[kIdentityWords] = {0, 0, 0};
  if (!identity)
    identity = kNobody;
  if (identities && rank == 0)
    std::memcpy(identities, identity, kIdentityWords * sizeof(int32_t));
  auto until = Clock::now() + std::chrono::seconds(timeoutSeconds);
  if (ranks <= 1)
    return "";
  return rank == 0
             ? serve(blob, bytes, ranks, port, until, identities)
             : join(blob, bytes, int32_t(rank), identity, address, port, until);
}

std::string moert::readLaunchEnvironment(LaunchEnvironment &out) {
  const char *names[] = {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"};
  for (const char *name : names)
    if (!std::getenv(name))
      return std::string(name) +
             " is not set (torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and "
             "MASTER_PORT)";
  if (!parseInt(std::getenv("RANK"), out.rank) ||
      !parseInt(std::getenv("WORLD_SIZE"), out.ranks) || out.ranks < 1 ||
      out.rank >= out.ranks)
    return std::string("RANK=") + std::getenv("RANK") + " and WORLD_SIZE=" +
           std::getenv("WORLD_SIZE") + " are not a rank of a world";
  if (!parseInt(std::getenv("MASTER_PORT"), out.port) || out.port < 1 ||
      out.port > 65535)
    return std::string("MASTER_PORT=") + std::getenv("MASTER_PORT") +
           " is not a port";
  out.address = std::getenv("MASTER_ADDR");
  return "";
}
