//===- collectives_mpi_check.cpp - moert's all-to-all over MPI ------------===//
//
// Run under mpirun -n R (ctest does, for R = 2 and 4): every rank sends
// rank-dependent, uneven segments (zero rows included) with
// moert_exchange_counts_v1 and moert_all_to_all_v1, then checks every row it
// received against what its sender must have sent, and the way back (the
// received counts as split sizes) against its own rows. Exits 0 when every
// rank passed, 1 otherwise (after an allreduce, so all ranks agree).
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Runtime/moert.h"

#include <cstdio>
#include <vector>

namespace {

constexpr int kSegmentsPerRank = 3; // local "experts" per rank
constexpr int kWidth = 5;           // floats per row

/// Rows rank `from` sends in segment g: uneven, sometimes none.
int32_t countOf(int from, int g) { return (from * 7 + g * 3) % 4; }

/// The value of element c of row i of segment g sent by `from`.
float valueOf(int from, int g, int i, int c) {
  return float(from * 100000 + g * 1000 + i * 10 + c);
}

} // namespace

int main() {
  if (moert_comm_init() != 0) {
    std::fprintf(stderr, "init: %s\n", moert_last_error());
    return 2;
  }
  int rank = moert_comm_rank(), ranks = moert_comm_size();
  int segments = ranks * kSegmentsPerRank;
  std::vector<int32_t> counts(segments), received(segments);
  std::vector<float> rows;
  for (int g = 0; g < segments; ++g) {
    counts[g] = countOf(rank, g);
    for (int i = 0; i < counts[g]; ++i)
      for (int c = 0; c < kWidth; ++c)
        rows.push_back(valueOf(rank, g, i, c));
  }
  int64_t sent = int64_t(rows.size()) / kWidth;
  rows.resize(rows.size() + kWidth, -1.0f); // a row past the counts
  int failures = 0;
  if (moert_exchange_counts_v1(counts.data(), received.data(), segments,
                               ranks) != 0) {
    std::fprintf(stderr, "rank %d: exchange failed\n", rank);
    return 2;
  }
  for (int from = 0; from < ranks; ++from)
    for (int l = 0; l < kSegmentsPerRank; ++l)
      if (received[from * kSegmentsPerRank + l] !=
          countOf(from, rank * kSegmentsPerRank + l)) {
        std::fprintf(stderr, "rank %d: wrong count from %d\n", rank, from);
        ++failures;
      }
  int64_t total = 0;
  for (int32_t c : received)
    total += c;
  std::vector<float> in((total + 1) * kWidth, -9.0f);
  if (moert_all_to_all_v1(rows.data(), counts.data(), sent + 1, received.data(),
                          in.data(), total + 1, segments, ranks,
                          kWidth * sizeof(float)) != 0) {
    std::fprintf(stderr, "rank %d: all-to-all failed\n", rank);
    return 2;
  }
  // Received: from rank 0, 1, ...; from each, its segments for this rank.
  size_t at = 0;
  for (int from = 0; from < ranks; ++from)
    for (int l = 0; l < kSegmentsPerRank; ++l) {
      int g = rank * kSegmentsPerRank + l;
      for (int i = 0; i < countOf(from, g); ++i, ++at)
        for (int c = 0; c < kWidth; ++c)
          if (in[at * kWidth + c] != valueOf(from, g, i, c))
            ++failures;
    }
  for (int c = 0; c < kWidth; ++c)
    if (in[at * kWidth + c] != -9.0f)
      ++failures; // written past the received rows

  // Back: the received counts as split sizes return every row to its place.
  std::vector<float> back((sent + 1) * kWidth, -5.0f);
  if (moert_all_to_all_v1(in.data(), received.data(), total + 1, counts.data(),
                          back.data(), sent + 1, segments, ranks,
                          kWidth * sizeof(float)) != 0) {
    std::fprintf(stderr, "rank %d: all-to-all back failed\n", rank);
    return 2;
  }
  for (int64_t i = 0; i < sent * kWidth; ++i)
    if (back[i] != rows[i])
      ++failures;

  double failed = failures ? 1.0 : 0.0;
  moert_comm_allreduce_max_f64(&failed, 1);
  if (rank == 0)
    std::printf("%d ranks: %s\n", ranks, failed ? "FAILED" : "all rows arrived");
  if (failures)
    std::fprintf(stderr, "rank %d: %d wrong values\n", rank, failures);
  moert_comm_finalize();
  return failed ? 1 : 0;
}
