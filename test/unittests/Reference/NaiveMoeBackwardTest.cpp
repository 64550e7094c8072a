//===- NaiveMoeBackwardTest.cpp - The reference backward against FD -------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// Every gradient of the reference backward is checked against central finite
// differences of the loss L = sum y*dy + aux in double precision, for each
// routing option; plus the forward it runs against runMoeLayer, and a few
// values worked out by hand.
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/NaiveMoeBackward.h"
#include "lib/Reference/Numerics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

using namespace moe::reference;

namespace {

struct Case {
  std::string name;
  TrainingConfig config;
  bool bias = false;
};

/// Failures name the case instead of dumping its bytes.
void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

/// Fresh random inputs of the right shapes, scaled like moe-run's.
struct Inputs {
  std::vector<double> x, wGate, w1, w2, bias, dy;
  TrainingInputs view() const {
    TrainingInputs in;
    in.x = x.data();
    in.wGate = wGate.data();
    in.w1 = w1.data();
    in.w2 = w2.data();
    in.bias = bias.empty() ? nullptr : bias.data();
    in.dy = dy.data();
    return in;
  }
};

std::vector<double> normal(int64_t n, uint64_t seed, double stddev) {
  std::vector<float> values(n);
  fillNormal(values, seed, stddev);
  return std::vector<double>(values.begin(), values.end());
}

Inputs makeInputs(const Case &c, uint64_t seed) {
  const TrainingConfig &k = c.config;
  Inputs in;
  in.x = normal(k.T * k.H, seed, 1.0);
  // Large gate weights spread the probabilities, so the weights matter.
  in.wGate = normal(k.H * k.E, seed + 1, 1.0);
  in.w1 = normal(k.E * k.H * 2 * k.F, seed + 2, 1.0 / std::sqrt(double(k.H)));
  in.w2 = normal(k.E * k.F * k.H, seed + 3, 1.0 / std::sqrt(double(k.F)));
  if (c.bias)
    in.bias = normal(k.E, seed + 4, 0.3);
  in.dy = normal(k.T * k.H, seed + 5, 1.0);
  return in;
}

/// ||a - b|| / ||b||.
double relative(const std::vector<double> &a, const std::vector<double> &b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

/// Central differences of the loss with respect to every element of `param`
/// (one of the vectors of `in`).
std::vector<double> finiteDifferences(const TrainingConfig &config,
                                      Inputs &in, std::vector<double> &param) {
  const double eps = 1e-6;
  std::vector<double> grad(param.size());
  for (size_t i = 0; i < param.size(); ++i) {
    double saved = param[i];
    param[i] = saved + eps;
    double up = moeTrainingLoss(config, in.view());
    param[i] = saved - eps;
    double down = moeTrainingLoss(config, in.view());
    param[i] = saved;
    grad[i] = (up - down) / (2 * eps);
  }
  return grad;
}

TrainingConfig sized(int64_t T, int64_t H, int64_t F, int64_t E, int64_t k) {
  TrainingConfig c;
  c.T = T;
  c.H = H;
  c.F = F;
  c.E = E;
  c.router.topK = k;
  return c;
}

std::vector<Case> cases() {
  std::vector<Case> all;
  auto add = [&](std::string name, TrainingConfig c, bool bias = false) {
    all.push_back({std::move(name), c, bias});
  };
  add("softmax", sized(6, 5, 3, 4, 2));
  TrainingConfig sig = sized(6, 5, 3, 4, 2);
  sig.router.sigmoid = true;
  add("sigmoid_bias", sig, /*bias=*/true);
  // k = 1 normalized has the constant weight 1 (no router gradient).
  TrainingConfig top1 = sized(5, 4, 3, 4, 1);
  top1.router.normalize = false;
  add("top1", top1);
  add("topE", sized(4, 4, 2, 3, 3));
  TrainingConfig cap = sized(8, 4, 3, 4, 2);
  cap.router.capacityFactor = 0.5; // C = 2 of 16 assignments over 4 experts
  add("capacity", cap);
  TrainingConfig plain = sized(6, 5, 3, 4, 2);
  plain.router.normalize = false;
  plain.router.scaling = 2.5;
  add("no_normalize_scaling", plain);
  TrainingConfig scaled = sized(6, 5, 3, 4, 2);
  scaled.router.scaling = 0.7;
  add("normalize_scaling", scaled);
  TrainingConfig gelu = sized(5, 4, 3, 4, 2);
  gelu.router.geluGlu = true;
  add("gelu_glu", gelu);
  TrainingConfig grouped = sized(6, 4, 2, 8, 2);
  grouped.router.nGroup = 4;
  grouped.router.topkGroup = 2;
  add("group_limited", grouped, /*bias=*/true);
  TrainingConfig aux = sized(7, 4, 3, 4, 2);
  aux.auxLossCoef = 0.3;
  add("aux_softmax", aux);
  TrainingConfig auxSig = sized(7, 4, 3, 4, 2);
  auxSig.router.sigmoid = true;
  auxSig.router.capacityFactor = 0.75;
  auxSig.auxLossCoef = 0.05;
  add("aux_sigmoid_capacity", auxSig);
  add("one_token", sized(1, 3, 2, 5, 2));
  return all;
}

class BackwardVsFiniteDifferences : public ::testing::TestWithParam<Case> {};

TEST_P(BackwardVsFiniteDifferences, EveryGradient) {
  const Case &c = GetParam();
  Inputs in = makeInputs(c, 17);
  Gradients g = runMoeBackward(c.config, in.view());
  struct Param {
    const char *name;
    std::vector<double> *values;
    const std::vector<double> *grad;
  } params[] = {{"dx", &in.x, &g.dx},
                {"dw_gate", &in.wGate, &g.dwGate},
                {"dw1", &in.w1, &g.dw1},
                {"dw2", &in.w2, &g.dw2}};
  for (const Param &p : params) {
    std::vector<double> fd = finiteDifferences(c.config, in, *p.values);
    double error = relative(*p.grad, fd);
    EXPECT_LT(error, 1e-6) << c.name << " " << p.name;
    // A gradient that is zero everywhere would pass a loose check.
    double norm = 0.0;
    for (double v : fd)
      norm += v * v;
    EXPECT_GT(norm, 0.0) << c.name << " " << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Reference, BackwardVsFiniteDifferences, ::testing::ValuesIn(cases()),
    [](const ::testing::TestParamInfo<Case> &info) { return info.param.name; });

TEST(NaiveMoeBackward, ForwardMatchesRunMoeLayer) {
  for (const Case &c : cases()) {
    Inputs in = makeInputs(c, 5);
    Gradients g = runMoeBackward(c.config, in.view());
    std::vector<float> x(in.x.begin(), in.x.end()),
        wg(in.wGate.begin(), in.wGate.end()), w1(in.w1.begin(), in.w1.end()),
        w2(in.w2.begin(), in.w2.end()), bias(in.bias.begin(), in.bias.end());
    // The doubles are floats widened, so both see the same values.
    const TrainingConfig &k = c.config;
    Result ref = runMoeLayer(k.router, k.T, k.H, k.F, k.E, x.data(), wg.data(),
                             w1.data(), w2.data(),
                             bias.empty() ? nullptr : bias.data());
    std::vector<double> y(ref.y.begin(), ref.y.end());
    EXPECT_LT(relative(g.y, y), 1e-6) << c.name;
    EXPECT_EQ(g.indices, ref.indices) << c.name;
    int64_t kept = 0;
    for (int32_t load : g.loads)
      kept += load;
    EXPECT_EQ(kept, k.T * k.router.topK - ref.dropped) << c.name;
  }
}

/// A zero router makes p = 1/E for every token; with k = 1 every token picks
/// expert 0 (ties to the lower index), so f_0 = 1 and aux = COEF*E*(1/E).
TEST(NaiveMoeBackward, AuxLossByHand) {
  TrainingConfig c = sized(3, 2, 2, 4, 1);
  c.auxLossCoef = 0.25;
  Case k{"hand", c};
  Inputs in = makeInputs(k, 3);
  std::fill(in.wGate.begin(), in.wGate.end(), 0.0);
  Gradients g = runMoeBackward(c, in.view());
  EXPECT_NEAR(g.aux, 0.25, 1e-12);
  EXPECT_EQ(g.loads, (std::vector<int32_t>{3, 0, 0, 0}));
  // Experts with no tokens get no weight gradient.
  for (int64_t i = c.H * 2 * c.F; i < c.E * c.H * 2 * c.F; ++i)
    EXPECT_EQ(g.dw1[i], 0.0);
  for (int64_t i = c.F * c.H; i < c.E * c.F * c.H; ++i)
    EXPECT_EQ(g.dw2[i], 0.0);
}

/// Dropped assignments contribute neither output nor gradient: with
/// capacity 1 and every token on expert 0, only token 0 reaches it.
TEST(NaiveMoeBackward, DroppedAssignmentsHaveNoExpertGradient) {
  TrainingConfig c = sized(4, 2, 2, 4, 1);
  c.router.capacityFactor = 0.5; // C = max(1, ceil(0.5)) = 1
  Case k{"drop", c};
  Inputs in = makeInputs(k, 9);
  std::fill(in.wGate.begin(), in.wGate.end(), 0.0);
  Gradients g = runMoeBackward(c, in.view());
  EXPECT_EQ(g.loads, (std::vector<int32_t>{1, 0, 0, 0}));
  for (int64_t t = 1; t < c.T; ++t)
    for (int64_t h = 0; h < c.H; ++h) {
      EXPECT_EQ(g.y[t * c.H + h], 0.0);
      // A zero router has no x gradient either: ds = 0 with one expert.
      EXPECT_EQ(g.dx[t * c.H + h], 0.0);
    }
}

/// With k = 1 and normalization every weight is exactly 1: the router gets
/// no gradient at all, exactly (not a rounding residue that a relative
/// check against the compiled code would divide by).
TEST(NaiveMoeBackward, TopOneNormalizedHasExactlyNoRouterGradient) {
  TrainingConfig c = sized(5, 4, 3, 4, 1);
  Case k{"top1_normalized", c};
  Inputs in = makeInputs(k, 21);
  Gradients g = runMoeBackward(c, in.view());
  for (double v : g.dwGate)
    EXPECT_EQ(v, 0.0);
  // The experts still are: x's gradient is theirs alone.
  std::vector<double> fd = finiteDifferences(c, in, in.x);
  EXPECT_LT(relative(g.dx, fd), 1e-6);
}

TEST(NaiveMoeBackward, RejectsInconsistentOptions) {
  TrainingConfig c = sized(2, 2, 2, 4, 2);
  c.auxLossCoef = -1.0;
  Case k{"bad", c};
  Inputs in = makeInputs(k, 1);
  EXPECT_THROW(runMoeBackward(c, in.view()), std::invalid_argument);
  c.auxLossCoef = 0.0;
  c.router.topK = 5;
  EXPECT_THROW(runMoeBackward(c, in.view()), std::invalid_argument);
}

} // namespace
