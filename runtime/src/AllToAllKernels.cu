//===- AllToAllKernels.cu - The device side of the CUDA all-to-all --------===//
//
// The all-to-all whose split sizes never leave the device (NcclCollectives.cpp,
// "device splits"). Built to PTX at build time (nvcc -ptx) and loaded by the
// driver's JIT at the first all-to-all; nothing else in moert is CUDA C.
//
// Every rank publishes its counts[G] and its rows in a staging buffer that
// the other ranks of the node map (CUDA IPC); after a handshake each rank
// pulls, from every peer, the rows of the peer's segments that belong to it.
// A rank's block of segments is [rank * G/R, (rank + 1) * G/R).
//
//===----------------------------------------------------------------------===//

#include <stdint.h>

namespace {

/// Copies `bytes` bytes from `source` to `dest`, spread over the block's
/// threads and the grid's blocks along x: 16 bytes a load where both
/// addresses and the size allow it, else one byte a load.
__device__ void copyBytes(char *dest, const char *source, int64_t bytes) {
  int64_t thread = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t threads = int64_t(gridDim.x) * blockDim.x;
  bool aligned = ((uintptr_t(dest) | uintptr_t(source) | uintptr_t(bytes)) &
                  15) == 0;
  if (aligned) {
    const int4 *from = reinterpret_cast<const int4 *>(source);
    int4 *to = reinterpret_cast<int4 *>(dest);
    int64_t units = bytes / 16, i = thread;
    // Four loads in flight before their stores: a peer's memory is far.
    for (; i + 3 * threads < units; i += 4 * threads) {
      int4 a = from[i], b = from[i + threads], c = from[i + 2 * threads],
           d = from[i + 3 * threads];
      to[i] = a;
      to[i + threads] = b;
      to[i + 2 * threads] = c;
      to[i + 3 * threads] = d;
    }
    for (; i < units; i += threads)
      to[i] = from[i];
    return;
  }
  for (int64_t i = thread; i < bytes; i += threads)
    dest[i] = source[i];
}

/// sum(counts[first, last)) as 64 bits.
__device__ int64_t sumCounts(const int32_t *counts, int first, int last) {
  int64_t sum = 0;
  for (int g = first; g < last; ++g)
    sum += counts[g];
  return sum;
}

} // namespace

/// Where every rank's counts and rows are (NcclCollectives.cpp's
/// PeerPointers, passed by value: no device array to fill first).
struct PeerPointers {
  const int32_t *counts[64];
  const char *rows[64];
};

/// Publishes this rank's all-to-all in its staging buffer: counts[G] at
/// `staging`, then at `staging + rowsAt` the rows the other ranks pull:
/// every row but those of this rank's own block of segments (which it
/// pulls from its rows buffer), in order. At most `capacity` rows (the rows
/// buffer's) are read; moert_pull_rows reports more.
extern "C" __global__ void moert_stage_rows(const char *rows,
                                            const int32_t *counts, int rank,
                                            int ranks, int segments,
                                            int64_t rowBytes, int64_t capacity,
                                            char *staging, int64_t rowsAt) {
  __shared__ int64_t before, own, total;
  int block = segments / ranks;
  if (threadIdx.x == 0) {
    total = min(sumCounts(counts, 0, segments), capacity);
    before = min(sumCounts(counts, 0, rank * block), total);
    own = min(sumCounts(counts, rank * block, (rank + 1) * block),
              total - before);
  }
  if (blockIdx.x == 0)
    for (int g = threadIdx.x; g < segments; g += blockDim.x)
      reinterpret_cast<int32_t *>(staging)[g] = counts[g];
  __syncthreads();
  copyBytes(staging + rowsAt, rows, before * rowBytes);
  copyBytes(staging + rowsAt + before * rowBytes,
            rows + (before + own) * rowBytes,
            (total - before - own) * rowBytes);
}

/// Pulls into `received` (room for `capacity` rows) the rows every peer
/// sends this rank, in the order of moek.all_to_all: from rank 0, 1, ...,
/// each peer's segments of this rank's block in order. Peer p's counts are
/// at `peers.counts[p]`, its rows at `peers.rows[p]`: this rank's own rows
/// buffer, or a peer's staging, which lacks the peer's own block (see
/// moert_stage_rows). blockIdx.y is the peer; every rank's rows buffer
/// holds `sourceCapacity` rows. When the rows do not fit in `received` (or
/// a peer's counts ask for more rows than it has), nothing is copied and
/// overflow[0] (overflow[1]) gets the rows that would have been needed.
extern "C" __global__ void moert_pull_rows(PeerPointers peers, int rank,
                                           int ranks, int segments,
                                           int64_t rowBytes, char *received,
                                           int64_t capacity,
                                           int64_t sourceCapacity,
                                           int64_t *overflow) {
  __shared__ int64_t sourceRow, destRow, rows, needed, sent;
  int peer = blockIdx.y;
  int block = segments / ranks;
  int mine = rank * block;
  if (threadIdx.x == 0) {
    const int32_t *counts = peers.counts[peer];
    sourceRow = sumCounts(counts, 0, mine);
    // A peer's staging lacks its own block's rows.
    if (peer != rank && peer < rank)
      sourceRow -= sumCounts(counts, peer * block, (peer + 1) * block);
    rows = sumCounts(counts, mine, mine + block);
    sent = sumCounts(counts, 0, segments);
    int64_t before = 0, all = 0;
    for (int q = 0; q < ranks; ++q) {
      int64_t fromQ = sumCounts(peers.counts[q], mine, mine + block);
      if (q < peer)
        before += fromQ;
      all += fromQ;
    }
    destRow = before;
    needed = all;
  }
  __syncthreads();
  if (needed > capacity || sent > sourceCapacity) {
    if (threadIdx.x == 0 && blockIdx.x == 0)
      atomicMax(reinterpret_cast<unsigned long long *>(
                    &overflow[needed > capacity ? 0 : 1]),
                (unsigned long long)(needed > capacity ? needed : sent));
    return;
  }
  copyBytes(received + destRow * rowBytes,
            peers.rows[peer] + sourceRow * rowBytes, rows * rowBytes);
}
