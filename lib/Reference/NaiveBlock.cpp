//===- NaiveBlock.cpp - Naive reference transformer block -----------------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// Straight loops in double, one phase a function; the MoE is runMoeLayer's.
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/NaiveBlock.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace moe::reference {
namespace {

void check(bool condition, const std::string &message) {
  if (!condition)
    throw std::invalid_argument("runBlock: " + message);
}

/// out[r, c] = sum_i a[r, i] * w[i, c], summed in increasing i: a is
/// [rows, K] in double, w is [K, N] in float, read a row of w at a time.
std::vector<double> matmul(const double *a, const float *w, int64_t rows,
                           int64_t K, int64_t N) {
  std::vector<double> out(rows * N, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < K; ++i) {
      const double ai = a[r * K + i];
      for (int64_t c = 0; c < N; ++c)
        out[r * N + c] += ai * static_cast<double>(w[i * N + c]);
    }
  return out;
}

} // namespace

void rmsNorm(const double *v, const float *g, int64_t rows, int64_t H,
             double *out) {
  for (int64_t r = 0; r < rows; ++r) {
    double sumSq = 0.0;
    for (int64_t c = 0; c < H; ++c)
      sumSq += v[r * H + c] * v[r * H + c];
    const double inv = 1.0 / std::sqrt(sumSq / static_cast<double>(H) + 1e-6);
    for (int64_t c = 0; c < H; ++c)
      out[r * H + c] = v[r * H + c] * inv * static_cast<double>(g[c]);
  }
}

std::vector<double> causalAttention(const BlockShape &shape, int64_t numSeqs,
                                    const double *n, const float *wq,
                                    const float *wk, const float *wv,
                                    const float *wo, float (*store)(float)) {
  const int64_t L = shape.seq, H = shape.hidden, nh = shape.heads,
                nkv = shape.kvHeads, dh = shape.headDim;
  const int64_t rows = numSeqs * L;
  const std::vector<double> q = matmul(n, wq, rows, H, nh * dh);
  const std::vector<double> k = matmul(n, wk, rows, H, nkv * dh);
  const std::vector<double> v = matmul(n, wv, rows, H, nkv * dh);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));

  // o[b, l, i*dh + d]: the heads' outputs, before wo.
  std::vector<double> o(rows * nh * dh, 0.0);
  std::vector<double> p(L);
  for (int64_t b = 0; b < numSeqs; ++b) {
    for (int64_t i = 0; i < nh; ++i) {
      const int64_t g = i * nkv / nh; // the key/value head of query head i
      for (int64_t l = 0; l < L; ++l) {
        const double *ql = &q[(b * L + l) * nh * dh + i * dh];
        // Causal: position l sees positions 0..l of its own sequence.
        double mx = -INFINITY;
        for (int64_t m = 0; m <= l; ++m) {
          const double *km = &k[(b * L + m) * nkv * dh + g * dh];
          double s = 0.0;
          for (int64_t d = 0; d < dh; ++d)
            s += ql[d] * km[d];
          p[m] = s * scale;
          mx = std::max(mx, p[m]);
        }
        double sum = 0.0;
        for (int64_t m = 0; m <= l; ++m) {
          p[m] = std::exp(p[m] - mx);
          sum += p[m];
        }
        double *ol = &o[(b * L + l) * nh * dh + i * dh];
        for (int64_t m = 0; m <= l; ++m) {
          const double *vm = &v[(b * L + m) * nkv * dh + g * dh];
          for (int64_t d = 0; d < dh; ++d)
            ol[d] += p[m] / sum * vm[d];
        }
      }
    }
  }
  if (store)
    for (double &value : o)
      value = static_cast<double>(store(static_cast<float>(value)));
  return matmul(o.data(), wo, rows, nh * dh, H);
}

BlockResult runBlock(const RouterConfig &config, const BlockShape &shape,
                     const float *x, const BlockWeights &w, int64_t btaTiles,
                     float (*store)(float), const int32_t *routing) {
  // What the program keeps in its storage type, rounded the same way.
  auto stored = [store](double v) {
    return store ? static_cast<double>(store(static_cast<float>(v))) : v;
  };
  const int64_t B = shape.batch, L = shape.seq, H = shape.hidden;
  check(B > 0 && L > 0 && H > 0, "batch, seq and hidden must be > 0");
  check(shape.heads > 0 && shape.kvHeads > 0 && shape.headDim > 0,
        "heads, kvHeads and headDim must be > 0");
  check(shape.heads % shape.kvHeads == 0, "kvHeads must divide heads");
  check(btaTiles > 0 && B % btaTiles == 0, "btaTiles must divide batch");
  check(x && w.g1 && w.wq && w.wk && w.wv && w.wo && w.g2 && w.wGate && w.w1 &&
            w.w2,
        "null input pointer");
  const int64_t T = B * L;

  // h = x + Attn(RMSNorm(x; g1)), attention tile by tile.
  std::vector<double> h(x, x + T * H);
  std::vector<double> n(T * H);
  rmsNorm(h.data(), w.g1, T, H, n.data());
  for (double &v : n)
    v = stored(v);
  const int64_t tileSeqs = B / btaTiles;
  for (int64_t tile = 0; tile < btaTiles; ++tile) {
    const int64_t first = tile * tileSeqs * L * H;
    std::vector<double> a =
        causalAttention(shape, tileSeqs, &n[first], w.wq, w.wk, w.wv, w.wo,
                        store);
    for (int64_t i = 0; i < tileSeqs * L * H; ++i)
      h[first + i] = stored(h[first + i] + stored(a[i]));
  }

  // y = h + MoE(RMSNorm(h; g2)) on all B*L tokens, in (b, l) order.
  rmsNorm(h.data(), w.g2, T, H, n.data());
  for (double &v : n)
    v = stored(v);
  std::vector<float> moeIn(n.begin(), n.end());
  BlockResult r;
  r.moe = runMoeLayerRouted(config, T, H, shape.ffn, shape.experts,
                            moeIn.data(), w.wGate, w.w1, w.w2, w.bias,
                            routing);
  r.h.assign(h.begin(), h.end());
  r.y.resize(T * H);
  for (int64_t i = 0; i < T * H; ++i)
    r.y[i] = static_cast<float>(h[i] + static_cast<double>(r.moe.y[i]));
  return r;
}

} // namespace moe::reference
