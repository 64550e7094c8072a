//===- NaiveMoe.cpp - Naive reference MoE layer ---------------------------===//
//----------------------------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// Straight loops over tokens, slots and experts, in double. Speed does not
// matter here; being obviously equal to the written semantics does.
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/NaiveMoe.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace moe::reference {
namespace {

void check(bool condition, const std::string &message) {
  if (!condition)
    throw std::invalid_argument("runMoeLayer: " + message);
}

// M_PI is POSIX, not standard C++.
constexpr double kPi = 3.14159265358979323846;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

double silu(double v) { return v * sigmoid(v); }

double geluTanh(double v) {
  const double kSqrt2OverPi = std::sqrt(2.0 / kPi);
  return 0.5 * v * (1.0 + std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v)));
}

/// Index of the best candidate in `allowed` by (key descending, index
/// ascending), skipping those already taken; -1 if none is left. Scanning in
/// index order and replacing only on a strictly larger key gives ties to the
/// lower index.
int64_t argBest(const std::vector<double> &key,
                const std::vector<bool> &allowed) {
  int64_t best = -1;
  for (int64_t i = 0; i < static_cast<int64_t>(key.size()); ++i) {
    if (!allowed[i])
      continue;
    if (best < 0 || key[i] > key[best])
      best = i;
  }
  return best;
}

} // namespace

int64_t expertCapacity(double capacityFactor, int64_t T, int64_t k, int64_t E) {
  if (capacityFactor <= 0.0)
    return -1;
  double exact = capacityFactor * static_cast<double>(T) *
                 static_cast<double>(k) / static_cast<double>(E);
  // See RouterConfig::capacityFactor for why 1e-9 and why at least 1.
  // At most T: an expert receives at most one assignment per token (and a
  // huge factor must not overflow the conversion).
  double c = std::min(std::ceil(exact - 1e-9), static_cast<double>(T));
  return std::max<int64_t>(1, static_cast<int64_t>(c));
}

Result runMoeLayer(const RouterConfig &config, int64_t T, int64_t H, int64_t F,
                   int64_t E, const float *x, const float *wGate,
                   const float *w1, const float *w2, const float *bias) {
  return runMoeLayerRouted(config, T, H, F, E, x, wGate, w1, w2, bias,
                           nullptr);
}

Result runMoeLayerRouted(const RouterConfig &config, int64_t T, int64_t H,
                         int64_t F, int64_t E, const float *x,
                         const float *wGate, const float *w1, const float *w2,
                         const float *bias, const int32_t *routing) {
  const int64_t k = config.topK;
  check(T >= 0, "T must be >= 0");
  check(H > 0 && F > 0 && E > 0, "H, F and E must be > 0");
  check(k >= 1 && k <= E, "topK must be in [1, E]");
  check(config.capacityFactor >= 0.0, "capacityFactor must be >= 0");
  check(config.nGroup >= 0 && config.topkGroup >= 0,
        "nGroup and topkGroup must be >= 0");
  check((config.nGroup > 0) == (config.topkGroup > 0),
        "nGroup and topkGroup must be both 0 or both > 0");
  if (config.nGroup > 0) {
    check(E % config.nGroup == 0, "nGroup must divide E");
    check(config.topkGroup <= config.nGroup, "topkGroup must be <= nGroup");
    check(k <= config.topkGroup * (E / config.nGroup),
          "topK must be <= topkGroup * E / nGroup");
  }
  check(T == 0 || (x && wGate && w1 && w2), "null input pointer");

  Result r;
  r.y.assign(T * H, 0.0f);
  r.indices.assign(T * k, 0);
  r.weights.assign(T * k, 0.0f);
  r.kept.assign(T * k, 0);
  r.tokensPerExpert.assign(E, 0);
  r.dropped = 0;
  r.keys.assign(T * E, 0.0);

  // Routing weights in double; Result::weights keeps the rounded copy.
  std::vector<double> weight(T * k, 0.0);

  // --- Router: scores, probabilities, selection, weights. ---
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> p(E);
    for (int64_t e = 0; e < E; ++e) {
      double s = 0.0;
      for (int64_t h = 0; h < H; ++h)
        s += static_cast<double>(x[t * H + h]) *
             static_cast<double>(wGate[h * E + e]);
      p[e] = s;
    }
    if (config.sigmoid) {
      for (double &v : p)
        v = sigmoid(v);
    } else {
      double mx = *std::max_element(p.begin(), p.end());
      double sum = 0.0;
      for (double &v : p) {
        v = std::exp(v - mx);
        sum += v;
      }
      for (double &v : p)
        v /= sum;
    }

    std::vector<double> key(E);
    for (int64_t e = 0; e < E; ++e) {
      key[e] = p[e] + (bias ? static_cast<double>(bias[e]) : 0.0);
      r.keys[t * E + e] = key[e];
    }

    std::vector<bool> allowed(E, true);
    if (config.nGroup > 0) {
      const int64_t groupSize = E / config.nGroup;
      std::vector<double> groupKey(config.nGroup);
      for (int64_t g = 0; g < config.nGroup; ++g) {
        double m = key[g * groupSize];
        for (int64_t i = 1; i < groupSize; ++i)
          m = std::max(m, key[g * groupSize + i]);
        groupKey[g] = m;
      }
      std::vector<bool> groupFree(config.nGroup, true);
      std::vector<bool> groupKept(config.nGroup, false);
      for (int64_t n = 0; n < config.topkGroup; ++n) {
        int64_t g = argBest(groupKey, groupFree);
        groupFree[g] = false;
        groupKept[g] = true;
      }
      for (int64_t e = 0; e < E; ++e)
        allowed[e] = groupKept[e / groupSize];
    }

    if (routing) // given experts, whatever their groups
      std::fill(allowed.begin(), allowed.end(), true);
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      int64_t e;
      if (routing) {
        e = routing[t * k + j];
        check(e >= 0 && e < E, "a given expert index is out of [0, E)");
        check(allowed[e], "a token's given experts repeat one");
      } else {
        e = argBest(key, allowed);
      }
      allowed[e] = false;
      r.indices[t * k + j] = static_cast<int32_t>(e);
      weight[t * k + j] = p[e];
      sum += p[e];
    }
    for (int64_t j = 0; j < k; ++j) {
      double &w = weight[t * k + j];
      if (config.normalize)
        w /= sum;
      w *= config.scaling;
      r.weights[t * k + j] = static_cast<float>(w);
    }
  }

  // --- Capacity: first come (token, then slot), first served. ---
  const int64_t capacity = expertCapacity(config.capacityFactor, T, k, E);
  for (int64_t a = 0; a < T * k; ++a) {
    int64_t e = r.indices[a];
    int64_t position = r.tokensPerExpert[e]++;
    bool keep = capacity < 0 || position < capacity;
    r.kept[a] = keep ? 1 : 0;
    if (!keep)
      ++r.dropped;
  }

  // --- Experts and combine. ---
  // hBuf[c] = sum over h of x[t,h] w1[e,h,c] and o[h] = sum over f of
  // act[f] w2[e,f,h], each summed in increasing h (f); the loops run over
  // the weights' rows, in the order they are stored (a column walk of a
  // full-size expert took minutes).
  std::vector<double> hBuf(2 * F), act(F), o(H), y(H);
  for (int64_t t = 0; t < T; ++t) {
    std::fill(y.begin(), y.end(), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      if (!r.kept[t * k + j])
        continue;
      const int64_t e = r.indices[t * k + j];
      const float *w1e = w1 + e * H * 2 * F;
      const float *w2e = w2 + e * F * H;
      std::fill(hBuf.begin(), hBuf.end(), 0.0);
      for (int64_t h = 0; h < H; ++h) {
        const double xh = static_cast<double>(x[t * H + h]);
        const float *row = w1e + h * 2 * F;
        for (int64_t c = 0; c < 2 * F; ++c)
          hBuf[c] += xh * static_cast<double>(row[c]);
      }
      for (int64_t f = 0; f < F; ++f) {
        double g = hBuf[f];
        act[f] = (config.geluGlu ? geluTanh(g) : silu(g)) * hBuf[F + f];
      }
      const double w = weight[t * k + j];
      std::fill(o.begin(), o.end(), 0.0);
      for (int64_t f = 0; f < F; ++f) {
        const float *row = w2e + f * H;
        for (int64_t h = 0; h < H; ++h)
          o[h] += act[f] * static_cast<double>(row[h]);
      }
      for (int64_t h = 0; h < H; ++h)
        y[h] += w * o[h];
    }
    for (int64_t h = 0; h < H; ++h)
      r.y[t * H + h] = static_cast<float>(y[h]);
  }
  return r;
}

RoutingDifference routingNearTies(const std::vector<int32_t> &got,
                                  const std::vector<int32_t> &want,
                                  const std::vector<double> &keys, int64_t T,
                                  int64_t k, int64_t E, double tolerance) {
  check(static_cast<int64_t>(got.size()) == T * k &&
            static_cast<int64_t>(want.size()) == T * k &&
            static_cast<int64_t>(keys.size()) == T * E,
        "routingNearTies: sizes do not match T, k and E");
  auto close = [&](double a, double b) {
    return std::fabs(a - b) <=
           tolerance * std::max(std::fabs(a), std::fabs(b));
  };
  RoutingDifference d;
  for (int64_t t = 0; t < T; ++t) {
    const int32_t *g = &got[t * k], *w = &want[t * k];
    const double *key = &keys[t * E];
    int64_t differ = 0;
    for (int64_t j = 0; j < k; ++j)
      differ += g[j] != w[j];
    if (differ == 0)
      continue;
    d.slots += differ;
    ++d.tokens;
    auto in = [&](const int32_t *set, int32_t e) {
      return std::find(set, set + k, e) != set + k;
    };
    bool tie = true;
    for (int64_t j = 0; j < k && tie; ++j) {
      int32_t e = g[j];
      // An expert out of range or chosen twice is no tie-break.
      if (e < 0 || e >= E || std::find(g, g + j, e) != g + j) {
        tie = false;
        break;
      }
      if (in(w, e)) {
        // The same expert in another slot: the keys it swapped with.
        if (w[j] != e)
          tie = close(key[e], key[w[j]]);
        continue;
      }
      // An expert the reference did not choose: close to the k-th key (the
      // boundary it crossed) or to one it displaced.
      bool near = close(key[e], key[w[k - 1]]);
      for (int64_t i = 0; i < k && !near; ++i)
        near = !in(g, w[i]) && close(key[e], key[w[i]]);
      tie = near;
    }
    d.decisive += tie ? 0 : 1;
  }
  return d;
}

RoutingDifference layerRoutingDifference(const RouterConfig &config,
                                         const std::vector<int32_t> &got,
                                         const Result &reference, int64_t T,
                                         int64_t k, int64_t E) {
  const std::vector<int32_t> &want = reference.indices;
  if (static_cast<int64_t>(got.size()) == T * k &&
      static_cast<int64_t>(want.size()) == T * k &&
      config.capacityFactor <= 0 && config.nGroup <= 0)
    return routingNearTies(got, want, reference.keys, T, k, E,
                           kScoreOrderTolerance);
  RoutingDifference d;
  std::vector<bool> tokens(static_cast<size_t>(std::max<int64_t>(T, 0)));
  size_t n = std::max(got.size(), want.size());
  for (size_t i = 0; i < n; ++i) {
    if (i < got.size() && i < want.size() && got[i] == want[i])
      continue;
    ++d.slots;
    size_t t = k > 0 ? i / static_cast<size_t>(k) : 0;
    if (t < tokens.size() && !tokens[t]) {
      tokens[t] = true;
      ++d.tokens;
    } else if (t >= tokens.size()) {
      ++d.tokens;
    }
  }
  d.decisive = d.tokens;
  return d;
}

} // namespace moe::reference
