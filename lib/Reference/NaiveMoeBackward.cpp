//===- NaiveMoeBackward.cpp - Naive reference MoE backward ----------------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// Straight loops in double, in the order of the chain rule: the experts'
// chain (w2, the GLU, w1) per kept assignment, then the gate weights through
// normalization and scaling to p, then softmax/sigmoid to the scores, then
// x and w_gate. Speed does not matter; being obviously the derivative does.
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/NaiveMoeBackward.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace moe::reference {
namespace {

void check(bool condition, const std::string &message) {
  if (!condition)
    throw std::invalid_argument("runMoeBackward: " + message);
}

constexpr double kPi = 3.14159265358979323846;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

/// act(g) and act'(g) of the GLU's gate half.
void activation(bool gelu, double g, double &value, double &slope) {
  if (!gelu) {
    double s = sigmoid(g);
    value = g * s;
    slope = s * (1.0 + g * (1.0 - s));
    return;
  }
  const double c = std::sqrt(2.0 / kPi);
  double u = c * (g + 0.044715 * g * g * g);
  double th = std::tanh(u);
  value = 0.5 * g * (1.0 + th);
  slope = 0.5 * (1.0 + th) +
          0.5 * g * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * g * g);
}

/// The best allowed key, ties to the lower index; -1 if none.
int64_t argBest(const std::vector<double> &key,
                const std::vector<bool> &allowed) {
  int64_t best = -1;
  for (int64_t i = 0; i < static_cast<int64_t>(key.size()); ++i)
    if (allowed[i] && (best < 0 || key[i] > key[best]))
      best = i;
  return best;
}

/// What the router decides and the values its backward needs.
struct Routing {
  std::vector<double> p;        ///< [T,E] probabilities
  std::vector<int32_t> indices; ///< [T,k]
  std::vector<double> sum;      ///< [T]: sum_j p[t, idx[t,j]]
  std::vector<double> weight;   ///< [T,k]: normalized, scaled
  std::vector<uint8_t> kept;    ///< [T,k]
  std::vector<int32_t> loads;   ///< [E]: kept assignments
};

void validate(const TrainingConfig &c, const TrainingInputs &in) {
  const RouterConfig &r = c.router;
  check(c.T >= 0, "T must be >= 0");
  check(c.H > 0 && c.F > 0 && c.E > 0, "H, F and E must be > 0");
  check(r.topK >= 1 && r.topK <= c.E, "topK must be in [1, E]");
  check(r.capacityFactor >= 0.0, "capacityFactor must be >= 0");
  check(c.auxLossCoef >= 0.0, "auxLossCoef must be >= 0");
  check((r.nGroup > 0) == (r.topkGroup > 0),
        "nGroup and topkGroup must be both 0 or both > 0");
  if (r.nGroup > 0) {
    check(c.E % r.nGroup == 0, "nGroup must divide E");
    check(r.topkGroup <= r.nGroup, "topkGroup must be <= nGroup");
    check(r.topK <= r.topkGroup * (c.E / r.nGroup),
          "topK must be <= topkGroup * E / nGroup");
  }
  check(c.T == 0 || (in.x && in.wGate && in.w1 && in.w2 && in.dy),
        "null input pointer");
}

Routing route(const TrainingConfig &c, const TrainingInputs &in) {
  const RouterConfig &r = c.router;
  const int64_t T = c.T, H = c.H, E = c.E, k = r.topK;
  Routing out;
  out.p.assign(T * E, 0.0);
  out.indices.assign(T * k, 0);
  out.sum.assign(T, 0.0);
  out.weight.assign(T * k, 0.0);
  out.kept.assign(T * k, 0);
  out.loads.assign(E, 0);
  for (int64_t t = 0; t < T; ++t) {
    double *p = &out.p[t * E];
    for (int64_t e = 0; e < E; ++e) {
      double s = 0.0;
      for (int64_t h = 0; h < H; ++h)
        s += in.x[t * H + h] * in.wGate[h * E + e];
      p[e] = s;
    }
    if (r.sigmoid) {
      for (int64_t e = 0; e < E; ++e)
        p[e] = sigmoid(p[e]);
    } else {
      double mx = *std::max_element(p, p + E), total = 0.0;
      for (int64_t e = 0; e < E; ++e)
        total += (p[e] = std::exp(p[e] - mx));
      for (int64_t e = 0; e < E; ++e)
        p[e] /= total;
    }
    std::vector<double> key(E);
    for (int64_t e = 0; e < E; ++e)
      key[e] = p[e] + (in.bias ? in.bias[e] : 0.0);
    std::vector<bool> allowed(E, true);
    if (r.nGroup > 0) {
      int64_t size = E / r.nGroup;
      std::vector<double> groupKey(r.nGroup, -INFINITY);
      for (int64_t e = 0; e < E; ++e)
        groupKey[e / size] = std::max(groupKey[e / size], key[e]);
      std::vector<bool> free(r.nGroup, true), chosen(r.nGroup, false);
      for (int64_t n = 0; n < r.topkGroup; ++n) {
        int64_t g = argBest(groupKey, free);
        free[g] = false;
        chosen[g] = true;
      }
      for (int64_t e = 0; e < E; ++e)
        allowed[e] = chosen[e / size];
    }
    for (int64_t j = 0; j < k; ++j) {
      int64_t e = argBest(key, allowed);
      allowed[e] = false;
      out.indices[t * k + j] = static_cast<int32_t>(e);
      out.sum[t] += p[e];
    }
    for (int64_t j = 0; j < k; ++j) {
      double w = p[out.indices[t * k + j]];
      if (r.normalize)
        w /= out.sum[t];
      out.weight[t * k + j] = w * r.scaling;
    }
  }
  // Capacity: in order of token, then slot.
  const int64_t capacity = expertCapacity(r.capacityFactor, T, k, E);
  std::vector<int64_t> seen(E, 0);
  for (int64_t a = 0; a < T * k; ++a) {
    int64_t e = out.indices[a];
    bool keep = capacity < 0 || seen[e] < capacity;
    ++seen[e];
    out.kept[a] = keep;
    out.loads[e] += keep;
  }
  return out;
}

/// One kept assignment of token t to expert e through the expert: the
/// pre-activation h[2F], the GLU output a[F], the output o[H].
void expertForward(const TrainingConfig &c, const TrainingInputs &in,
                   int64_t t, int64_t e, std::vector<double> &hBuf,
                   std::vector<double> &a, std::vector<double> &o) {
  const int64_t H = c.H, F = c.F;
  const double *w1e = in.w1 + e * H * 2 * F;
  const double *w2e = in.w2 + e * F * H;
  hBuf.assign(2 * F, 0.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t col = 0; col < 2 * F; ++col)
      hBuf[col] += in.x[t * H + h] * w1e[h * 2 * F + col];
  a.assign(F, 0.0);
  for (int64_t f = 0; f < F; ++f) {
    double value, slope;
    activation(c.router.geluGlu, hBuf[f], value, slope);
    a[f] = value * hBuf[F + f];
  }
  o.assign(H, 0.0);
  for (int64_t f = 0; f < F; ++f)
    for (int64_t h = 0; h < H; ++h)
      o[h] += a[f] * w2e[f * H + h];
}

/// f_e: expert e's kept assignments over all the layer's assignments (those
/// of the EP group when given).
double loadFraction(const TrainingConfig &c, const Routing &routing,
                    int64_t e) {
  const int64_t T = c.T, k = c.router.topK;
  if (!c.groupLoads.empty())
    return static_cast<double>(c.groupLoads[e]) /
           static_cast<double>(c.groupRanks * T * k);
  return static_cast<double>(routing.loads[e]) / static_cast<double>(T * k);
}

/// COEF * E * sum_e f_e * P_e.
double auxLoss(const TrainingConfig &c, const Routing &routing) {
  if (c.auxLossCoef <= 0.0 || c.T == 0)
    return 0.0;
  const int64_t T = c.T, E = c.E;
  double total = 0.0;
  for (int64_t e = 0; e < E; ++e) {
    double f = loadFraction(c, routing, e);
    double P = 0.0;
    for (int64_t t = 0; t < T; ++t)
      P += routing.p[t * E + e];
    total += f * P / static_cast<double>(T);
  }
  return c.auxLossCoef * static_cast<double>(E) * total;
}

} // namespace

double moeTrainingLoss(const TrainingConfig &c, const TrainingInputs &in) {
  validate(c, in);
  Routing routing = route(c, in);
  const int64_t k = c.router.topK;
  std::vector<double> hBuf, a, o;
  double loss = 0.0;
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t j = 0; j < k; ++j) {
      if (!routing.kept[t * k + j])
        continue;
      expertForward(c, in, t, routing.indices[t * k + j], hBuf, a, o);
      for (int64_t h = 0; h < c.H; ++h)
        loss += routing.weight[t * k + j] * o[h] * in.dy[t * c.H + h];
    }
  return loss + auxLoss(c, routing);
}

Gradients runMoeBackward(const TrainingConfig &c, const TrainingInputs &in) {
  validate(c, in);
  const int64_t T = c.T, H = c.H, F = c.F, E = c.E, k = c.router.topK;
  const RouterConfig &r = c.router;
  Routing routing = route(c, in);
  Gradients g;
  g.y.assign(T * H, 0.0);
  g.indices = routing.indices;
  g.kept = routing.kept;
  g.loads = routing.loads;
  g.dx.assign(T * H, 0.0);
  g.dwGate.assign(H * E, 0.0);
  g.dw1.assign(E * H * 2 * F, 0.0);
  g.dw2.assign(E * F * H, 0.0);
  g.aux = auxLoss(c, routing);

  std::vector<double> hBuf, a, o, da(F), dh(2 * F);
  std::vector<double> dWeight(k), dp(E), ds(E);
  for (int64_t t = 0; t < T; ++t) {
    const double *dy = in.dy + t * H;
    // --- The experts: y[t] = sum_j w_j o_j over kept assignments. ---
    for (int64_t j = 0; j < k; ++j) {
      dWeight[j] = 0.0;
      if (!routing.kept[t * k + j])
        continue;
      const int64_t e = routing.indices[t * k + j];
      const double w = routing.weight[t * k + j];
      expertForward(c, in, t, e, hBuf, a, o);
      for (int64_t h = 0; h < H; ++h) {
        g.y[t * H + h] += w * o[h];
        dWeight[j] += dy[h] * o[h];
      }
      // do = w * dy; dw2[e] += a (x) do; da = w2[e] . do.
      double *dw2e = &g.dw2[e * F * H];
      const double *w2e = in.w2 + e * F * H;
      for (int64_t f = 0; f < F; ++f) {
        da[f] = 0.0;
        for (int64_t h = 0; h < H; ++h) {
          dw2e[f * H + h] += a[f] * w * dy[h];
          da[f] += w2e[f * H + h] * w * dy[h];
        }
      }
      // a = act(gate) * up.
      for (int64_t f = 0; f < F; ++f) {
        double value, slope;
        activation(r.geluGlu, hBuf[f], value, slope);
        dh[f] = da[f] * hBuf[F + f] * slope;
        dh[F + f] = da[f] * value;
      }
      // h = x[t] . w1[e].
      double *dw1e = &g.dw1[e * H * 2 * F];
      const double *w1e = in.w1 + e * H * 2 * F;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t col = 0; col < 2 * F; ++col) {
          dw1e[h * 2 * F + col] += in.x[t * H + h] * dh[col];
          g.dx[t * H + h] += w1e[h * 2 * F + col] * dh[col];
        }
    }

    // --- The weights: w_j = scaling * p[idx_j] (/ sum_i p[idx_i]). ---
    std::fill(dp.begin(), dp.end(), 0.0);
    double sum = routing.sum[t];
    // d w_j / d p_i = (delta_ij - p_j / S) / S when normalized. Written with
    // the ratios p_j / S so that k = 1 (ratio exactly 1) gives exactly 0.
    double cross = 0.0; // sum_j dWeight_j * p[idx_j] / S
    for (int64_t j = 0; j < k; ++j)
      cross += dWeight[j] * (routing.p[t * E + routing.indices[t * k + j]] / sum);
    for (int64_t j = 0; j < k; ++j) {
      double d = r.normalize ? (dWeight[j] - cross) / sum : dWeight[j];
      dp[routing.indices[t * k + j]] += r.scaling * d;
    }
    // The aux loss: dP_e/dp[t,e] = 1/T, times COEF * E * f_e.
    if (c.auxLossCoef > 0.0)
      for (int64_t e = 0; e < E; ++e)
        dp[e] += c.auxLossCoef * static_cast<double>(E) *
                 loadFraction(c, routing, e) / static_cast<double>(T);

    // --- The score function, then s = x[t] . w_gate. ---
    const double *p = &routing.p[t * E];
    if (r.sigmoid) {
      for (int64_t e = 0; e < E; ++e)
        ds[e] = dp[e] * p[e] * (1.0 - p[e]);
    } else {
      double dot = 0.0;
      for (int64_t e = 0; e < E; ++e)
        dot += p[e] * dp[e];
      for (int64_t e = 0; e < E; ++e)
        ds[e] = p[e] * (dp[e] - dot);
    }
    for (int64_t h = 0; h < H; ++h)
      for (int64_t e = 0; e < E; ++e) {
        g.dwGate[h * E + e] += in.x[t * H + h] * ds[e];
        g.dx[t * H + h] += in.wGate[h * E + e] * ds[e];
      }
  }
  return g;
}

Gradients runMoeBackwardF32(const TrainingConfig &config, const float *x,
                            const float *wGate, const float *w1,
                            const float *w2, const float *bias,
                            const float *dy) {
  const int64_t T = config.T, H = config.H, F = config.F, E = config.E;
  auto widen = [](const float *data, int64_t n) {
    return data ? std::vector<double>(data, data + n) : std::vector<double>();
  };
  std::vector<double> xs = widen(x, T * H), wg = widen(wGate, H * E),
                      w1s = widen(w1, E * H * 2 * F), w2s = widen(w2, E * F * H),
                      bs = widen(bias, E), dys = widen(dy, T * H);
  TrainingInputs in;
  in.x = xs.data();
  in.wGate = wg.data();
  in.w1 = w1s.data();
  in.w2 = w2s.data();
  in.bias = bias ? bs.data() : nullptr;
  in.dy = dys.data();
  return runMoeBackward(config, in);
}

} // namespace moe::reference
