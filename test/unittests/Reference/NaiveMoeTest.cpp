//===- NaiveMoeTest.cpp - Tests of the naive reference MoE layer ----------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// Small cases whose numbers are worked out by hand, then a randomized check
// against a second implementation written here in a different style (sorting
// instead of repeated argmax, dense per-expert outputs instead of per-slot).
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/NaiveMoe.h"
#include "lib/Reference/Numerics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

using namespace moe::reference;

namespace {

/// An identity router (H == E): the scores are the token's x values, so a
/// test picks scores by picking x.
std::vector<float> identityGate(int64_t n) {
  std::vector<float> g(n * n, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    g[i * n + i] = 1.0f;
  return g;
}

/// Expert weights that are never the subject of a test: a fixed pattern.
struct Experts {
  std::vector<float> w1, w2;
};
Experts patternExperts(int64_t E, int64_t H, int64_t F) {
  Experts ex;
  ex.w1.resize(E * H * 2 * F);
  ex.w2.resize(E * F * H);
  for (size_t i = 0; i < ex.w1.size(); ++i)
    ex.w1[i] = 0.125f * static_cast<float>(static_cast<int>(i % 7) - 3);
  for (size_t i = 0; i < ex.w2.size(); ++i)
    ex.w2[i] = 0.25f * static_cast<float>(static_cast<int>(i % 5) - 2);
  return ex;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }

// ----------------------------------------------------------------------------
// Hand-computed cases.
// ----------------------------------------------------------------------------

/// E=2, k=1, H=2, F=1, T=1. A zero router gives p = [1/2, 1/2]; the tie goes
/// to expert 0. Expert 0 has w1 = I so h = x = [1, 2]; a = silu(1) * 2;
/// w2[0] = [1, -1] so o = [a, -a].
TEST(NaiveMoe, HandComputedTieToExpertZero) {
  const std::vector<float> x = {1.0f, 2.0f};
  const std::vector<float> gate(2 * 2, 0.0f);
  const std::vector<float> w1 = {1, 0, 0, 1, /*expert 1*/ 5, 5, 5, 5};
  const std::vector<float> w2 = {1, -1, /*expert 1*/ 7, 7};
  RouterConfig cfg;
  cfg.topK = 1;
  Result r = runMoeLayer(cfg, 1, 2, 1, 2, x.data(), gate.data(), w1.data(),
                         w2.data(), nullptr);
  const double a = 0.7310585786300049 * 2.0; // silu(1) * 2
  EXPECT_EQ(r.indices, std::vector<int32_t>{0});
  EXPECT_EQ(r.weights, std::vector<float>{1.0f}); // normalized k=1 weight
  EXPECT_EQ(r.kept, std::vector<uint8_t>{1});
  EXPECT_EQ(r.tokensPerExpert, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(r.dropped, 0);
  ASSERT_EQ(r.y.size(), 2u);
  EXPECT_EQ(r.y[0], static_cast<float>(a));
  EXPECT_EQ(r.y[1], static_cast<float>(-a));

  // Without normalization the weight is p = 1/2, and y halves.
  cfg.normalize = false;
  r = runMoeLayer(cfg, 1, 2, 1, 2, x.data(), gate.data(), w1.data(), w2.data(),
                  nullptr);
  EXPECT_EQ(r.weights, std::vector<float>{0.5f});
  EXPECT_EQ(r.y[0], static_cast<float>(a / 2));
  EXPECT_EQ(r.y[1], static_cast<float>(-a / 2));
}

/// Router scores s = [ln 3, 0] give softmax p = [3/4, 1/4] exactly and
/// sigmoid p = [3/4, 1/2].
struct TwoExpertRouter : ::testing::Test {
  const std::vector<float> x = {1.0f, 2.0f};
  // s0 = 2 * (ln 3 / 2), s1 = 0.
  const std::vector<float> gate = {0.0f, 0.0f,
                                   static_cast<float>(std::log(3.0) / 2), 0.0f};
  Experts ex = patternExperts(2, 2, 3);
  Result run(const RouterConfig &cfg, const float *bias = nullptr) {
    return runMoeLayer(cfg, 1, 2, 3, 2, x.data(), gate.data(), ex.w1.data(),
                       ex.w2.data(), bias);
  }
};

TEST_F(TwoExpertRouter, SoftmaxWeights) {
  RouterConfig cfg;
  cfg.topK = 1;
  cfg.normalize = false;
  Result r = run(cfg);
  EXPECT_EQ(r.indices, std::vector<int32_t>{0});
  EXPECT_NEAR(r.weights[0], 0.75, 1e-7);

  cfg.topK = 2;
  r = run(cfg);
  EXPECT_EQ(r.indices, (std::vector<int32_t>{0, 1}));
  EXPECT_NEAR(r.weights[0], 0.75, 1e-7);
  EXPECT_NEAR(r.weights[1], 0.25, 1e-7);
}

TEST_F(TwoExpertRouter, NormalizationAndScaling) {
  RouterConfig cfg;
  cfg.sigmoid = true;
  cfg.topK = 2;
  cfg.normalize = false;
  Result r = run(cfg);
  EXPECT_EQ(r.indices, (std::vector<int32_t>{0, 1}));
  EXPECT_NEAR(r.weights[0], 0.75, 1e-7);
  EXPECT_NEAR(r.weights[1], 0.5, 1e-7);

  cfg.normalize = true; // 0.75 / 1.25, 0.5 / 1.25
  Result n = run(cfg);
  EXPECT_NEAR(n.weights[0], 0.6, 1e-7);
  EXPECT_NEAR(n.weights[1], 0.4, 1e-7);

  cfg.scaling = 2.5; // applied after normalization
  Result s = run(cfg);
  EXPECT_NEAR(s.weights[0], 1.5, 1e-6);
  EXPECT_NEAR(s.weights[1], 1.0, 1e-6);
  // y is linear in the weights.
  for (size_t i = 0; i < s.y.size(); ++i)
    EXPECT_NEAR(s.y[i], 2.5 * n.y[i], 1e-5 * (1 + std::fabs(s.y[i])));
}

TEST_F(TwoExpertRouter, SigmoidRouterSelection) {
  RouterConfig cfg;
  cfg.sigmoid = true;
  cfg.topK = 1;
  cfg.normalize = false;
  Result r = run(cfg);
  EXPECT_EQ(r.indices, std::vector<int32_t>{0});
  EXPECT_NEAR(r.weights[0], 0.75, 1e-7); // sigmoid(ln 3)
}

TEST_F(TwoExpertRouter, BiasSelectsButDoesNotWeigh) {
  RouterConfig cfg;
  cfg.topK = 1;
  cfg.normalize = false;
  // p + bias = [0.75, 0.85]: expert 1 is selected, its weight stays p = 1/4.
  const std::vector<float> bias = {0.0f, 0.6f};
  Result r = run(cfg, bias.data());
  EXPECT_EQ(r.indices, std::vector<int32_t>{1});
  EXPECT_NEAR(r.weights[0], 0.25, 1e-7);

  // With both selected, order follows p + bias, weights follow p.
  cfg.topK = 2;
  r = run(cfg, bias.data());
  EXPECT_EQ(r.indices, (std::vector<int32_t>{1, 0}));
  EXPECT_NEAR(r.weights[0], 0.25, 1e-7);
  EXPECT_NEAR(r.weights[1], 0.75, 1e-7);

  // A bias that is too small changes nothing.
  const std::vector<float> small = {0.0f, 0.4f};
  cfg.topK = 1;
  r = run(cfg, small.data());
  EXPECT_EQ(r.indices, std::vector<int32_t>{0});
}

/// E=4 with identity router: x is the score vector.
Result runIdentity(const RouterConfig &cfg, const std::vector<float> &x,
                   int64_t T, const float *bias = nullptr, int64_t E = 4) {
  std::vector<float> gate = identityGate(E);
  Experts ex = patternExperts(E, E, 2);
  return runMoeLayer(cfg, T, E, 2, E, x.data(), gate.data(), ex.w1.data(),
                     ex.w2.data(), bias);
}

TEST(NaiveMoe, TieBreakingAndOrder) {
  RouterConfig cfg;
  cfg.topK = 3;
  // All scores equal: the lowest indices, in index order.
  Result r = runIdentity(cfg, {0, 0, 0, 0}, 1);
  EXPECT_EQ(r.indices, (std::vector<int32_t>{0, 1, 2}));
  for (float w : r.weights)
    EXPECT_NEAR(w, 1.0 / 3.0, 1e-7);

  // Ties in p + bias among biased experts also go to the lower index.
  const std::vector<float> bias = {0.0f, 0.1f, 0.0f, 0.1f};
  r = runIdentity(cfg, {0, 0, 0, 0}, 1, bias.data());
  EXPECT_EQ(r.indices, (std::vector<int32_t>{1, 3, 0}));

  // Slots are ordered by descending score, not by expert index.
  cfg.topK = 4;
  r = runIdentity(cfg, {0, 2, 1, 3}, 1);
  EXPECT_EQ(r.indices, (std::vector<int32_t>{3, 1, 2, 0}));
  for (int j = 0; j + 1 < 4; ++j)
    EXPECT_GT(r.weights[j], r.weights[j + 1]);
  EXPECT_NEAR(std::accumulate(r.weights.begin(), r.weights.end(), 0.0), 1.0,
              1e-6);
}

TEST(NaiveMoe, CapacityValue) {
  EXPECT_EQ(expertCapacity(0.0, 100, 2, 8), -1);
  EXPECT_EQ(expertCapacity(1.0, 4, 1, 2), 2);
  EXPECT_EQ(expertCapacity(1.25, 16, 2, 4), 10);
  EXPECT_EQ(expertCapacity(0.5, 3, 2, 4), 1); // ceil(0.75)
  EXPECT_EQ(expertCapacity(1.0, 5, 1, 2), 3); // ceil(2.5)
  // Products that are integers but come out just above in double.
  EXPECT_EQ(expertCapacity(1.1, 100, 1, 10), 11); // 11.000000000000002
  EXPECT_EQ(expertCapacity(0.1, 3, 10, 1), 3);    // 3.0000000000000004
  EXPECT_EQ(expertCapacity(1e-12, 1, 1, 1), 1);   // never 0 when cf > 0
}

/// Token 0 takes experts [0, 1], token 1 [1, 0], token 2 [2, 3]; with C = 1
/// the (t, j) order keeps (0,0)->e0 and (0,1)->e1, so both of token 1's
/// assignments are dropped. (A slot-major order would drop (0,1) instead.)
TEST(NaiveMoe, CapacityDropsInTokenThenSlotOrder) {
  const std::vector<float> x = {2, 1, 0, 0, /**/ 1, 2, 0, 0, /**/ 0, 0, 2, 1};
  RouterConfig cfg;
  cfg.topK = 2;
  Result free = runIdentity(cfg, x, 3);
  EXPECT_EQ(free.indices, (std::vector<int32_t>{0, 1, 1, 0, 2, 3}));
  EXPECT_EQ(free.dropped, 0);
  EXPECT_EQ(free.kept, (std::vector<uint8_t>{1, 1, 1, 1, 1, 1}));

  cfg.capacityFactor = 0.5; // C = ceil(0.5 * 3 * 2 / 4) = 1
  Result r = runIdentity(cfg, x, 3);
  EXPECT_EQ(r.indices, free.indices);
  EXPECT_EQ(r.weights, free.weights); // weights are reported even if dropped
  EXPECT_EQ(r.kept, (std::vector<uint8_t>{1, 1, 0, 0, 1, 1}));
  EXPECT_EQ(r.dropped, 2);
  EXPECT_EQ(r.tokensPerExpert, (std::vector<int64_t>{2, 2, 1, 1}));
  for (int h = 0; h < 4; ++h) {
    EXPECT_EQ(r.y[0 * 4 + h], free.y[0 * 4 + h]);
    EXPECT_EQ(r.y[1 * 4 + h], 0.0f) << "both assignments dropped";
    EXPECT_EQ(r.y[2 * 4 + h], free.y[2 * 4 + h]);
  }
}

TEST(NaiveMoe, CapacityPartialDrop) {
  // Four tokens all prefer expert 0, then 1; C = ceil(1 * 4 * 2 / 4) = 2.
  std::vector<float> x;
  for (int t = 0; t < 4; ++t)
    x.insert(x.end(), {3, 2, 0, 0});
  RouterConfig cfg;
  cfg.topK = 2;
  cfg.capacityFactor = 1.0;
  Result r = runIdentity(cfg, x, 4);
  EXPECT_EQ(r.kept, (std::vector<uint8_t>{1, 1, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(r.dropped, 4);
  EXPECT_EQ(r.tokensPerExpert, (std::vector<int64_t>{4, 4, 0, 0}));

  // Token 3 now takes [2, 1]; C = ceil(1.5 * 4 * 2 / 4) = 3. Expert 1 is
  // full after tokens 0..2, so only token 3's second slot is dropped and its
  // y is the first slot's share alone.
  for (int h = 0; h < 4; ++h)
    x[3 * 4 + h] = std::vector<float>{0, 2, 3, 0}[h];
  cfg.normalize = false;
  cfg.capacityFactor = 1.5;
  r = runIdentity(cfg, x, 4);
  EXPECT_EQ(r.indices, (std::vector<int32_t>{0, 1, 0, 1, 0, 1, 2, 1}));
  EXPECT_EQ(r.kept, (std::vector<uint8_t>{1, 1, 1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(r.dropped, 1);

  RouterConfig single;
  single.topK = 1;
  single.normalize = false;
  std::vector<float> x3(x.begin() + 12, x.end());
  Result only = runIdentity(single, x3, 1);
  EXPECT_EQ(only.indices, std::vector<int32_t>{2});
  for (int h = 0; h < 4; ++h)
    EXPECT_EQ(r.y[3 * 4 + h], only.y[h]);
}

TEST(NaiveMoe, GroupLimitedRouting) {
  RouterConfig cfg;
  cfg.sigmoid = true;
  cfg.topK = 2;
  // p = sigmoid([2, -3, 1, 0.5]) = [.881, .047, .731, .622]. Ungrouped: [0, 2].
  const std::vector<float> x = {2.0f, -3.0f, 1.0f, 0.5f};
  EXPECT_EQ(runIdentity(cfg, x, 1).indices, (std::vector<int32_t>{0, 2}));

  // Groups {0,1}, {2,3}: scores max = .881 and .731, so group 1 is excluded
  // (by sum it would have won, 1.35 > 0.93).
  cfg.nGroup = 2;
  cfg.topkGroup = 1;
  Result r = runIdentity(cfg, x, 1);
  EXPECT_EQ(r.indices, (std::vector<int32_t>{0, 1}));
  cfg.normalize = false;
  r = runIdentity(cfg, x, 1);
  EXPECT_NEAR(r.weights[1], 1.0 / (1.0 + std::exp(3.0)), 1e-7);

  // Group ties go to the lower group.
  EXPECT_EQ(runIdentity(cfg, {1, 0, 1, 0}, 1).indices,
            (std::vector<int32_t>{0, 1}));

  // Bias takes part in the group score.
  const std::vector<float> bias = {0.0f, 0.0f, 0.2f, 0.0f};
  EXPECT_EQ(runIdentity(cfg, x, 1, bias.data()).indices,
            (std::vector<int32_t>{2, 3}));

  // Keeping every group is the same as no grouping.
  cfg.nGroup = 4;
  cfg.topkGroup = 4;
  EXPECT_EQ(runIdentity(cfg, x, 1).indices, (std::vector<int32_t>{0, 2}));
}

/// One expert, k = 1, weight 1: y is the expert FFN, checked against the
/// activation formulas written out here.
TEST(NaiveMoe, GeluAndSiluAgainstFormula) {
  const int64_t T = 5, H = 6, F = 4, E = 1;
  std::vector<float> x(T * H), gate(H * E), w1(E * H * 2 * F), w2(E * F * H);
  fillNormal(x, 1, 1.0);
  fillNormal(gate, 2, 1.0);
  fillNormal(w1, 3, 0.5);
  fillNormal(w2, 4, 0.5);
  for (bool gelu : {false, true}) {
    RouterConfig cfg;
    cfg.topK = 1;
    cfg.geluGlu = gelu;
    Result r = runMoeLayer(cfg, T, H, F, E, x.data(), gate.data(), w1.data(),
                           w2.data(), nullptr);
    std::vector<float> expect(T * H);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < H; ++h) {
        double y = 0;
        for (int64_t f = 0; f < F; ++f) {
          double g = 0, u = 0;
          for (int64_t i = 0; i < H; ++i) {
            g += double(x[t * H + i]) * w1[i * 2 * F + f];
            u += double(x[t * H + i]) * w1[i * 2 * F + F + f];
          }
          double act =
              gelu ? 0.5 * g *
                         (1 + std::tanh(std::sqrt(2 / 3.14159265358979323846) *
                                        (g + 0.044715 * g * g * g)))
                   : g / (1 + std::exp(-g));
          y += act * u * w2[f * H + h];
        }
        expect[t * H + h] = static_cast<float>(y);
      }
    }
    EXPECT_LT(relativeError(r.y.data(), expect.data(), T * H), 1e-12)
        << (gelu ? "gelu_glu" : "silu_glu");
  }
  RouterConfig a, b;
  b.geluGlu = true;
  Result ya = runMoeLayer(a, T, H, F, E, x.data(), gate.data(), w1.data(),
                          w2.data(), nullptr);
  Result yb = runMoeLayer(b, T, H, F, E, x.data(), gate.data(), w1.data(),
                          w2.data(), nullptr);
  EXPECT_GT(relativeError(ya.y.data(), yb.y.data(), T * H), 1e-3)
      << "the two activations must differ";
}

TEST(NaiveMoe, RejectsBadArguments) {
  std::vector<float> buf(1024, 0.0f);
  const float *p = buf.data();
  RouterConfig cfg;
  cfg.topK = 3;
  EXPECT_THROW(runMoeLayer(cfg, 1, 2, 2, 2, p, p, p, p, nullptr),
               std::invalid_argument); // k > E
  cfg.topK = 2;
  cfg.nGroup = 3;
  cfg.topkGroup = 1;
  EXPECT_THROW(runMoeLayer(cfg, 1, 2, 2, 4, p, p, p, p, nullptr),
               std::invalid_argument); // nGroup does not divide E
  cfg.nGroup = 4;
  EXPECT_THROW(runMoeLayer(cfg, 1, 2, 2, 4, p, p, p, p, nullptr),
               std::invalid_argument); // k > topkGroup * E / nGroup
  cfg.nGroup = 0;
  EXPECT_THROW(runMoeLayer(cfg, 1, 2, 2, 4, p, p, p, p, nullptr),
               std::invalid_argument); // only topkGroup given
  cfg.topkGroup = 0;
  EXPECT_NO_THROW(runMoeLayer(cfg, 0, 2, 2, 4, p, p, p, p, nullptr));
}

// ----------------------------------------------------------------------------
// Randomized check against a second implementation.
// ----------------------------------------------------------------------------

struct Routing {
  std::vector<int32_t> idx;
  std::vector<double> w;
  std::vector<uint8_t> kept;
};

/// Routing written differently from the library: a stable sort by key (so
/// equal keys keep index order), groups chosen the same way.
Routing routeBySorting(const RouterConfig &cfg, int64_t T, int64_t H, int64_t E,
                       const std::vector<float> &x,
                       const std::vector<float> &gate, const float *bias) {
  const int64_t k = cfg.topK;
  Routing out;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> s(E, 0.0), p(E), key(E);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t e = 0; e < E; ++e)
        s[e] += double(x[t * H + h]) * gate[h * E + e];
    if (cfg.sigmoid) {
      for (int64_t e = 0; e < E; ++e)
        p[e] = 1.0 / (1.0 + std::exp(-s[e]));
    } else {
      double m = *std::max_element(s.begin(), s.end()), z = 0;
      for (int64_t e = 0; e < E; ++e)
        z += std::exp(s[e] - m);
      for (int64_t e = 0; e < E; ++e)
        p[e] = std::exp(s[e] - m) / z;
    }
    for (int64_t e = 0; e < E; ++e)
      key[e] = p[e] + (bias ? bias[e] : 0.0);
    std::vector<int64_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    if (cfg.nGroup > 0) {
      int64_t gs = E / cfg.nGroup;
      std::vector<int64_t> groups(cfg.nGroup);
      std::iota(groups.begin(), groups.end(), 0);
      auto gkey = [&](int64_t g) {
        return *std::max_element(key.begin() + g * gs,
                                 key.begin() + (g + 1) * gs);
      };
      std::stable_sort(groups.begin(), groups.end(),
                       [&](int64_t a, int64_t b) { return gkey(a) > gkey(b); });
      groups.resize(cfg.topkGroup);
      order.erase(std::remove_if(order.begin(), order.end(),
                                 [&](int64_t e) {
                                   return std::find(groups.begin(),
                                                    groups.end(),
                                                    e / gs) == groups.end();
                                 }),
                  order.end());
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return key[a] > key[b]; });
    double sum = 0;
    for (int64_t j = 0; j < k; ++j)
      sum += p[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      out.idx.push_back(static_cast<int32_t>(order[j]));
      out.w.push_back((cfg.normalize ? p[order[j]] / sum : p[order[j]]) *
                      cfg.scaling);
    }
  }
  std::vector<int64_t> load(E, 0);
  int64_t cap = cfg.capacityFactor > 0
                    ? expertCapacity(cfg.capacityFactor, T, k, E)
                    : T * k;
  for (int32_t e : out.idx)
    out.kept.push_back(load[e]++ < cap ? 1 : 0);
  return out;
}

struct RandomCase {
  RouterConfig cfg;
  int64_t T, H, F, E;
  bool bias;
};

TEST(NaiveMoe, MatchesSecondImplementation) {
  auto make = [](bool sigmoid, int64_t k, bool normalize, double scaling,
                 double cf, int64_t ng, int64_t tg, bool gelu) {
    RouterConfig c;
    c.sigmoid = sigmoid;
    c.topK = k;
    c.normalize = normalize;
    c.scaling = scaling;
    c.capacityFactor = cf;
    c.nGroup = ng;
    c.topkGroup = tg;
    c.geluGlu = gelu;
    return c;
  };
  std::vector<RandomCase> cases = {
      {make(false, 2, true, 1.0, 0.0, 0, 0, false), 16, 32, 24, 4, false},
      {make(false, 3, false, 2.5, 0.0, 0, 0, true), 9, 16, 12, 6, true},
      {make(true, 2, true, 1.0, 0.75, 0, 0, false), 20, 8, 6, 5, true},
      {make(true, 4, false, 1.5, 1.0, 4, 2, false), 12, 10, 7, 8, true},
      {make(false, 3, true, 1.0, 1.25, 3, 2, true), 11, 12, 5, 9, false},
      {make(false, 1, true, 1.0, 0.5, 0, 0, false), 7, 4, 3, 1, false},
  };
  uint64_t seed = 100;
  for (const RandomCase &c : cases) {
    const int64_t T = c.T, H = c.H, F = c.F, E = c.E, k = c.cfg.topK;
    std::vector<float> x(T * H), gate(H * E), w1(E * H * 2 * F), w2(E * F * H),
        bias(E);
    fillNormal(x, seed++, 1.0);
    fillNormal(gate, seed++, 1.0);
    fillNormal(w1, seed++, 1.0 / std::sqrt(double(H)));
    fillNormal(w2, seed++, 1.0 / std::sqrt(double(F)));
    fillNormal(bias, seed++, 0.1);
    const float *b = c.bias ? bias.data() : nullptr;

    Result r = runMoeLayer(c.cfg, T, H, F, E, x.data(), gate.data(), w1.data(),
                           w2.data(), b);
    Routing ref = routeBySorting(c.cfg, T, H, E, x, gate, b);
    ASSERT_EQ(r.indices, ref.idx);
    ASSERT_EQ(r.kept, ref.kept);
    for (int64_t i = 0; i < T * k; ++i)
      EXPECT_EQ(r.weights[i], static_cast<float>(ref.w[i]));
    std::vector<int64_t> perExpert(E, 0);
    for (int32_t e : ref.idx)
      ++perExpert[e];
    EXPECT_EQ(r.tokensPerExpert, perExpert);
    EXPECT_EQ(r.dropped, std::count(ref.kept.begin(), ref.kept.end(), 0));

    // Dense expert outputs for every (expert, token), then the combine.
    std::vector<double> dense(E * T * H, 0.0);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t f = 0; f < F; ++f) {
          double g = 0, u = 0;
          for (int64_t i = 0; i < H; ++i) {
            g += double(x[t * H + i]) * w1[(e * H + i) * 2 * F + f];
            u += double(x[t * H + i]) * w1[(e * H + i) * 2 * F + F + f];
          }
          double act = c.cfg.geluGlu
                           ? 0.5 * g *
                                 (1 + std::tanh(0.7978845608028654 *
                                                (g + 0.044715 * g * g * g)))
                           : silu(g);
          for (int64_t h = 0; h < H; ++h)
            dense[(e * T + t) * H + h] += act * u * w2[(e * F + f) * H + h];
        }
    std::vector<float> y(T * H);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        double acc = 0;
        for (int64_t j = 0; j < k; ++j)
          if (ref.kept[t * k + j])
            acc +=
                ref.w[t * k + j] * dense[(ref.idx[t * k + j] * T + t) * H + h];
        y[t * H + h] = static_cast<float>(acc);
      }
    EXPECT_LT(relativeError(r.y.data(), y.data(), T * H), 1e-12)
        << "case T=" << T << " E=" << E << " k=" << k;
    if (c.cfg.capacityFactor > 0) {
      EXPECT_GT(r.dropped, 0) << "capacity cases should drop something";
    }
  }
}

} // namespace

// ----------------------------------------------------------------------------
// Given routing and near ties (what a block's check falls back on when its
// attention, summed in another order, tips a near-tied routing decision).
// ----------------------------------------------------------------------------

/// Routed through its own choices, the layer is the same, bit for bit; the
/// keys are p + bias.
TEST(NaiveMoe, RoutedByItsOwnChoicesIsUnchanged) {
  const int64_t T = 7, H = 8, F = 5, E = 6;
  std::vector<float> x(T * H), gate(H * E), w1(E * H * 2 * F), w2(E * F * H),
      bias(E);
  fillNormal(x, 11, 1.0);
  fillNormal(gate, 12, 1.0);
  fillNormal(w1, 13, 0.5);
  fillNormal(w2, 14, 0.5);
  fillNormal(bias, 15, 0.1);
  RouterConfig cfg;
  cfg.topK = 3;
  cfg.capacityFactor = 0.8;
  Result free = runMoeLayer(cfg, T, H, F, E, x.data(), gate.data(), w1.data(),
                            w2.data(), bias.data());
  Result routed =
      runMoeLayerRouted(cfg, T, H, F, E, x.data(), gate.data(), w1.data(),
                        w2.data(), bias.data(), free.indices.data());
  EXPECT_EQ(routed.y, free.y);
  EXPECT_EQ(routed.weights, free.weights);
  EXPECT_EQ(routed.kept, free.kept);
  ASSERT_EQ(free.keys.size(), size_t(T * E));
  // The chosen experts have the largest keys.
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < E; ++e) {
      if (std::find(&free.indices[t * 3], &free.indices[t * 3] + 3, e) ==
          &free.indices[t * 3] + 3) {
        EXPECT_LE(free.keys[t * E + e],
                  free.keys[t * E + free.indices[t * 3 + 2]]);
      }
    }
  }
}

/// A given expert is weighed by its own p (k = 1, normalized: weight 1), so
/// the output is that expert's FFN: the same as a router that picks it.
TEST(NaiveMoe, RoutedToAnotherExpertUsesThatExpert) {
  const int64_t H = 3, F = 2, E = 3;
  Experts ex = patternExperts(E, H, F);
  std::vector<float> gate = identityGate(E);
  RouterConfig cfg;
  cfg.topK = 1;
  std::vector<float> x{0.9f, 0.1f, 0.5f}; // expert 0 wins
  int32_t forced = 2;
  Result routed = runMoeLayerRouted(cfg, 1, H, F, E, x.data(), gate.data(),
                                    ex.w1.data(), ex.w2.data(), nullptr,
                                    &forced);
  EXPECT_EQ(routed.indices, (std::vector<int32_t>{2}));
  // The same x with a router whose largest score is expert 2's.
  std::vector<float> prefer2 = gate;
  prefer2[0 * E + 0] = 0.0f; // x[0] no longer scores expert 0
  prefer2[0 * E + 2] = 1.0f; // but expert 2
  Result picked = runMoeLayer(cfg, 1, H, F, E, x.data(), prefer2.data(),
                              ex.w1.data(), ex.w2.data(), nullptr);
  ASSERT_EQ(picked.indices, (std::vector<int32_t>{2}));
  EXPECT_EQ(routed.y, picked.y);
  EXPECT_FLOAT_EQ(routed.weights[0], 1.0f);
}

TEST(NaiveMoe, RoutedRejectsBadIndices) {
  const int64_t H = 3, F = 2, E = 3;
  Experts ex = patternExperts(E, H, F);
  std::vector<float> gate = identityGate(E), x{0.9f, 0.1f, 0.5f};
  RouterConfig cfg;
  cfg.topK = 2;
  for (std::vector<int32_t> bad :
       {std::vector<int32_t>{0, 3}, {-1, 0}, {1, 1}})
    EXPECT_THROW(runMoeLayerRouted(cfg, 1, H, F, E, x.data(), gate.data(),
                                   ex.w1.data(), ex.w2.data(), nullptr,
                                   bad.data()),
                 std::invalid_argument);
}

/// The layer's check: near ties at the scores' f32 precision are accepted,
/// a wider gap is not, and with a capacity or group limits nothing is.
TEST(NaiveMoe, LayerRoutingDifference) {
  const int64_t T = 3, k = 1, E = 3;
  Result ref;
  ref.indices = {0, 0, 0};
  ref.keys = {0.4, 0.39999, 0.2, // expert 1 within 2.5e-5 of expert 0
              0.4, 0.3999,  0.2, // expert 1 2.5e-4 below: decisive
              0.4, 0.2,     0.1};
  RouterConfig cfg;
  cfg.topK = 1;
  RoutingDifference tie = layerRoutingDifference(cfg, {1, 0, 0}, ref, T, k, E);
  EXPECT_EQ(tie.slots, 1);
  EXPECT_EQ(tie.decisive, 0);
  EXPECT_EQ(layerRoutingDifference(cfg, {0, 1, 0}, ref, T, k, E).decisive, 1);
  EXPECT_EQ(layerRoutingDifference(cfg, {0, 0, 0}, ref, T, k, E).slots, 0);
  // A capacity, or group limits, want the reference's routing exactly.
  RouterConfig capacity = cfg;
  capacity.capacityFactor = 1.5;
  EXPECT_EQ(layerRoutingDifference(capacity, {1, 0, 0}, ref, T, k, E).decisive,
            1);
  RouterConfig groups = cfg;
  groups.nGroup = 3;
  groups.topkGroup = 1;
  EXPECT_EQ(layerRoutingDifference(groups, {1, 0, 0}, ref, T, k, E).decisive,
            1);
  // A routing of the wrong size is decisive, not an exception.
  EXPECT_GT(layerRoutingDifference(cfg, {1, 0}, ref, T, k, E).decisive, 0);
}

/// Each token's difference is a near tie or not, at a 2% relative tolerance.
TEST(NaiveMoe, RoutingNearTies) {
  const int64_t T = 6, k = 2, E = 4;
  std::vector<double> keys{
      0.50, 0.30, 0.20, 0.10,  // same choice
      0.50, 0.300, 0.295, 0.1, // 2 for 1: 1.7% apart, a near tie
      0.50, 0.30, 0.10, 0.09,  // 3 for 1: far below the k-th key
      0.50, 0.30, 0.20, 0.10,  // 1 and 0 swapped: 40% apart
      0.50, 0.495, 0.20, 0.10, // 1 and 0 swapped: 1% apart, a near tie
      0.50, 0.30, 0.20, 0.10}; // an index out of range
  std::vector<int32_t> want{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
  std::vector<int32_t> got{0, 1, 0, 2, 0, 3, 1, 0, 1, 0, 0, 7};
  RoutingDifference d = routingNearTies(got, want, keys, T, k, E, 2e-2);
  EXPECT_EQ(d.slots, 1 + 1 + 2 + 2 + 1);
  EXPECT_EQ(d.tokens, 5);
  EXPECT_EQ(d.decisive, 3); // tokens 2, 3 and 5
  EXPECT_EQ(routingNearTies(want, want, keys, T, k, E, 2e-2).slots, 0);
  // Token 4's experts 1 and 0 are 1% apart, but one expert twice is no tie.
  std::vector<int32_t> twice = want;
  twice[8] = 1;
  twice[9] = 1;
  EXPECT_EQ(routingNearTies(twice, want, keys, T, k, E, 2e-2).decisive, 1);
  EXPECT_THROW(routingNearTies(got, want, keys, T, k, E + 1, 2e-2),
               std::invalid_argument);
}
