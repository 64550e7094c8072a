//===- NaiveBlockTest.cpp - Tests of the naive reference block ------------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// Hand-computed cases (one token, two tokens), then the properties the block
// is defined by: RMSNorm's formula, causality, the grouped-query head
// mapping, and batch tiling of attention (BTA) leaving the block unchanged.
//
//===----------------------------------------------------------------------===//

#include "lib/Reference/NaiveBlock.h"
#include "lib/Reference/Numerics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

using namespace moe::reference;

namespace {

/// Owned weights of a block, filled with random values of sensible scale.
struct Weights {
  std::vector<float> g1, wq, wk, wv, wo, g2, wGate, w1, w2, bias;

  BlockWeights view(bool withBias = false) const {
    BlockWeights w;
    w.g1 = g1.data();
    w.wq = wq.data();
    w.wk = wk.data();
    w.wv = wv.data();
    w.wo = wo.data();
    w.g2 = g2.data();
    w.wGate = wGate.data();
    w.w1 = w1.data();
    w.w2 = w2.data();
    w.bias = withBias ? bias.data() : nullptr;
    return w;
  }
};

std::vector<float> normal(int64_t n, uint64_t seed, double stddev) {
  std::vector<float> v(n);
  fillNormal(v, seed, stddev);
  return v;
}

/// RMSNorm gains near 1, never all equal.
std::vector<float> gains(int64_t n, uint64_t seed) {
  std::vector<float> g = normal(n, seed, 0.2);
  for (float &v : g)
    v += 1.0f;
  return g;
}

Weights randomWeights(const BlockShape &s, uint64_t seed) {
  const int64_t H = s.hidden, F = s.ffn, E = s.experts;
  const int64_t q = s.heads * s.headDim, kv = s.kvHeads * s.headDim;
  Weights w;
  w.g1 = gains(H, seed + 1);
  w.wq = normal(H * q, seed + 2, 1.0 / std::sqrt(double(H)));
  w.wk = normal(H * kv, seed + 3, 1.0 / std::sqrt(double(H)));
  w.wv = normal(H * kv, seed + 4, 1.0 / std::sqrt(double(H)));
  w.wo = normal(q * H, seed + 5, 1.0 / std::sqrt(double(q)));
  w.g2 = gains(H, seed + 6);
  w.wGate = normal(H * E, seed + 7, 1.0 / std::sqrt(double(H)));
  w.w1 = normal(E * H * 2 * F, seed + 8, 1.0 / std::sqrt(double(H)));
  w.w2 = normal(E * F * H, seed + 9, 1.0 / std::sqrt(double(F)));
  w.bias = normal(E, seed + 10, 0.1);
  return w;
}

BlockShape shapeOf(int64_t B, int64_t L, int64_t H, int64_t nh, int64_t nkv,
                   int64_t dh, int64_t F = 6, int64_t E = 4) {
  BlockShape s;
  s.batch = B;
  s.seq = L;
  s.hidden = H;
  s.heads = nh;
  s.kvHeads = nkv;
  s.headDim = dh;
  s.ffn = F;
  s.experts = E;
  return s;
}

RouterConfig topK(int64_t k, double capacityFactor = 0.0) {
  RouterConfig c;
  c.topK = k;
  c.capacityFactor = capacityFactor;
  return c;
}

/// The H values of token (b, l).
std::vector<float> row(const std::vector<float> &v, const BlockShape &s,
                       int64_t b, int64_t l) {
  auto first = v.begin() + (b * s.seq + l) * s.hidden;
  return std::vector<float>(first, first + s.hidden);
}

// ----------------------------------------------------------------------------
// RMSNorm.
// ----------------------------------------------------------------------------

TEST(NaiveBlock, RmsNormHandComputed) {
  // mean([3, 4]^2) = 12.5.
  const std::vector<double> v = {3.0, 4.0};
  const std::vector<float> g = {1.0f, 0.5f};
  std::vector<double> out(2);
  rmsNorm(v.data(), g.data(), 1, 2, out.data());
  const double rms = std::sqrt(12.5 + 1e-6);
  EXPECT_DOUBLE_EQ(out[0], 3.0 / rms);
  EXPECT_DOUBLE_EQ(out[1], 4.0 / rms * 0.5);
}

TEST(NaiveBlock, RmsNormMatchesFormula) {
  const int64_t rows = 7, H = 13;
  std::vector<float> vf = normal(rows * H, 11, 3.0);
  std::vector<double> v(vf.begin(), vf.end());
  const std::vector<float> g = gains(H, 12);
  std::vector<double> out(rows * H);
  rmsNorm(v.data(), g.data(), rows, H, out.data());
  for (int64_t r = 0; r < rows; ++r) {
    double sumSq = 0.0;
    for (int64_t c = 0; c < H; ++c)
      sumSq += v[r * H + c] * v[r * H + c];
    const double denom = std::sqrt(sumSq / H + 1e-6);
    for (int64_t c = 0; c < H; ++c)
      EXPECT_NEAR(out[r * H + c], v[r * H + c] / denom * g[c], 1e-14)
          << r << "," << c;
  }
  // In place gives the same.
  rmsNorm(v.data(), g.data(), rows, H, v.data());
  EXPECT_EQ(v, out);
}

// ----------------------------------------------------------------------------
// Hand-computed blocks. The MoE's w2 is zero, so y = h exactly.
// ----------------------------------------------------------------------------

/// L = 1: a token attends only to itself with weight 1, so Attn(n) = n*wv*wo
/// whatever wq and wk are. wv swaps the two columns and wo doubles:
/// h = x + 2 * swap(n), n = x / sqrt(mean(x^2) + 1e-6) * g1.
TEST(NaiveBlock, HandComputedOneToken) {
  const BlockShape s = shapeOf(/*B=*/2, /*L=*/1, /*H=*/2, /*nh=*/1,
                               /*nkv=*/1, /*dh=*/2, /*F=*/1, /*E=*/1);
  Weights w = randomWeights(s, 100); // wq, wk random: they must not matter
  w.g1 = {2.0f, 0.5f};
  w.wv = {0, 1, 1, 0};
  w.wo = {2, 0, 0, 2};
  w.w2.assign(w.w2.size(), 0.0f);
  const std::vector<float> x = {3, 4, /*sequence 1*/ -1, 0.5f};
  BlockResult r = runBlock(topK(1), s, x.data(), w.view());

  for (int64_t b = 0; b < 2; ++b) {
    const double x0 = x[2 * b], x1 = x[2 * b + 1];
    const double rms = std::sqrt((x0 * x0 + x1 * x1) / 2 + 1e-6);
    const double n0 = x0 / rms * 2.0, n1 = x1 / rms * 0.5;
    EXPECT_FLOAT_EQ(r.h[2 * b], static_cast<float>(x0 + 2 * n1)) << b;
    EXPECT_FLOAT_EQ(r.h[2 * b + 1], static_cast<float>(x1 + 2 * n0)) << b;
  }
  EXPECT_EQ(r.y, r.h) << "w2 = 0: the MoE adds nothing";
  EXPECT_EQ(r.moe.y.size(), 4u) << "the MoE ran on B*L tokens";
}

/// L = 2, identity projections, dh = H = 2: token 0 sees itself (Attn = n0);
/// token 1 mixes n0 and n1 by softmax(n1.n0 / sqrt 2, n1.n1 / sqrt 2).
TEST(NaiveBlock, HandComputedTwoTokens) {
  const BlockShape s = shapeOf(1, 2, 2, 1, 1, 2, 1, 1);
  Weights w = randomWeights(s, 200);
  w.g1 = {1.0f, 1.0f};
  w.wq = w.wk = w.wv = w.wo = {1, 0, 0, 1};
  w.w2.assign(w.w2.size(), 0.0f);
  const std::vector<float> x = {1.0f, -2.0f, 0.5f, 1.5f};
  BlockResult r = runBlock(topK(1), s, x.data(), w.view());

  auto norm = [&](int64_t l, int64_t c) {
    const double a = x[2 * l], b = x[2 * l + 1];
    return x[2 * l + c] / std::sqrt((a * a + b * b) / 2 + 1e-6);
  };
  const double n00 = norm(0, 0), n01 = norm(0, 1);
  const double n10 = norm(1, 0), n11 = norm(1, 1);
  const double s0 = (n10 * n00 + n11 * n01) / std::sqrt(2.0);
  const double s1 = (n10 * n10 + n11 * n11) / std::sqrt(2.0);
  const double p0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
  const double p1 = 1.0 - p0;
  EXPECT_FLOAT_EQ(r.h[0], static_cast<float>(x[0] + n00));
  EXPECT_FLOAT_EQ(r.h[1], static_cast<float>(x[1] + n01));
  EXPECT_FLOAT_EQ(r.h[2], static_cast<float>(x[2] + p0 * n00 + p1 * n10));
  EXPECT_FLOAT_EQ(r.h[3], static_cast<float>(x[3] + p0 * n01 + p1 * n11));
  EXPECT_EQ(r.y, r.h);
}

// ----------------------------------------------------------------------------
// Properties.
// ----------------------------------------------------------------------------

/// Changing token (1, 3) leaves every earlier token of its sequence and the
/// whole other sequence bit for bit unchanged (dropless: with a capacity, a
/// token could take an expert slot from another), and changes the rest.
TEST(NaiveBlock, Causal) {
  const BlockShape s = shapeOf(2, 6, 8, 4, 2, 4);
  const Weights w = randomWeights(s, 300);
  std::vector<float> x = normal(2 * 6 * 8, 301, 1.0);
  const BlockResult before = runBlock(topK(2), s, x.data(), w.view(true));
  for (int64_t c = 0; c < 8; ++c)
    x[(1 * 6 + 3) * 8 + c] += 0.75f;
  const BlockResult after = runBlock(topK(2), s, x.data(), w.view(true));

  for (int64_t l = 0; l < 6; ++l) {
    EXPECT_EQ(row(after.y, s, 0, l), row(before.y, s, 0, l)) << "seq 0, " << l;
    if (l < 3)
      EXPECT_EQ(row(after.y, s, 1, l), row(before.y, s, 1, l)) << l;
    else
      EXPECT_NE(row(after.y, s, 1, l), row(before.y, s, 1, l)) << l;
  }
}

/// wk (or wv) with nh heads, head i a copy of kv head map(i) of `w`.
std::vector<float> repeatKvHeads(const std::vector<float> &w,
                                 const BlockShape &s, bool moduloMapping) {
  const int64_t nh = s.heads, nkv = s.kvHeads, dh = s.headDim;
  std::vector<float> out(s.hidden * nh * dh);
  for (int64_t h = 0; h < s.hidden; ++h)
    for (int64_t i = 0; i < nh; ++i) {
      const int64_t g = moduloMapping ? i % nkv : i * nkv / nh;
      for (int64_t d = 0; d < dh; ++d)
        out[(h * nh + i) * dh + d] = w[(h * nkv + g) * dh + d];
    }
  return out;
}

/// Grouped-query attention is multi-head attention whose head i has the
/// keys and values of kv head floor(i*nkv/nh); with nkv = 1 every head uses
/// the same kv. The other plausible mapping (i mod nkv) gives another block.
TEST(NaiveBlock, GroupedQueryHeadMapping) {
  for (int64_t nkv : {1, 2, 4}) {
    const BlockShape gqa = shapeOf(2, 5, 8, 4, nkv, 3);
    BlockShape mha = gqa;
    mha.kvHeads = gqa.heads;
    const Weights w = randomWeights(gqa, 400 + nkv);
    const std::vector<float> x = normal(2 * 5 * 8, 410, 1.0);
    const BlockResult r = runBlock(topK(2), gqa, x.data(), w.view());

    Weights repeated = w;
    repeated.wk = repeatKvHeads(w.wk, gqa, /*moduloMapping=*/false);
    repeated.wv = repeatKvHeads(w.wv, gqa, false);
    const BlockResult expected =
        runBlock(topK(2), mha, x.data(), repeated.view());
    EXPECT_LT(relativeError(r.y.data(), expected.y.data(), r.y.size()), 1e-7)
        << "nkv=" << nkv;

    if (nkv == 2) {
      // Heads 1 and 2 swap kv heads under i mod nkv.
      Weights modulo = w;
      modulo.wk = repeatKvHeads(w.wk, gqa, /*moduloMapping=*/true);
      modulo.wv = repeatKvHeads(w.wv, gqa, true);
      const BlockResult other = runBlock(topK(2), mha, x.data(), modulo.view());
      EXPECT_GT(relativeError(r.h.data(), other.h.data(), r.h.size()), 1e-3);
    }
  }
}

/// BTA: attention over tiles of B/N sequences, then one MoE over all B*L
/// tokens, is the block. Attention reads only its own sequence, so each
/// sequence's attention alone, concatenated, then the MoE over everything,
/// is the block too, bit for bit.
TEST(NaiveBlock, BatchTilingLeavesTheBlockUnchanged) {
  const int64_t B = 4, L = 5, H = 8;
  const BlockShape s = shapeOf(B, L, H, 4, 2, 4);
  const Weights w = randomWeights(s, 500);
  const std::vector<float> x = normal(B * L * H, 501, 1.0);
  for (double cf : {0.0, 1.0}) {
    const BlockResult whole = runBlock(topK(2, cf), s, x.data(), w.view(true));
    if (cf > 0.0) {
      EXPECT_GT(whole.moe.dropped, 0) << "the capacity case drops";
    }
    for (int64_t tiles : {2, 4}) {
      const BlockResult tiled =
          runBlock(topK(2, cf), s, x.data(), w.view(true), tiles);
      EXPECT_EQ(tiled.y, whole.y) << "tiles=" << tiles << " cf=" << cf;
      EXPECT_EQ(tiled.moe.indices, whole.moe.indices);
      EXPECT_EQ(tiled.moe.kept, whole.moe.kept);
    }

    // Per-sequence attention by hand, then one MoE over all B*L tokens.
    std::vector<double> h(x.begin(), x.end()), n(B * L * H);
    rmsNorm(h.data(), w.g1.data(), B * L, H, n.data());
    BlockShape one = s;
    one.batch = 1;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> a =
          causalAttention(one, 1, &n[b * L * H], w.wq.data(), w.wk.data(),
                          w.wv.data(), w.wo.data());
      for (int64_t i = 0; i < L * H; ++i)
        h[b * L * H + i] += a[i];
    }
    rmsNorm(h.data(), w.g2.data(), B * L, H, n.data());
    const std::vector<float> moeIn(n.begin(), n.end());
    const Result moe =
        runMoeLayer(topK(2, cf), B * L, H, s.ffn, s.experts, moeIn.data(),
                    w.wGate.data(), w.w1.data(), w.w2.data(), w.bias.data());
    std::vector<float> y(B * L * H);
    for (int64_t i = 0; i < B * L * H; ++i)
      y[i] = static_cast<float>(h[i] + static_cast<double>(moe.y[i]));
    EXPECT_EQ(y, whole.y) << "cf=" << cf;
  }
}

/// A narrow storage type keeps the heads' outputs rounded before wo (the
/// output projection's operand): with `store`, attention is exactly wo
/// applied to the rounded heads of attention without it — recovered here
/// from an identity wo — and differs from it.
/// Routed through its own choices, the block is the same; routed otherwise,
/// only the MoE changes: h is the routing's input, not its result.
TEST(NaiveBlock, GivenRoutingChangesOnlyTheMoe) {
  const int64_t B = 2, L = 3, H = 8;
  const BlockShape s = shapeOf(B, L, H, 4, 2, 4);
  const Weights w = randomWeights(s, 700);
  const std::vector<float> x = normal(B * L * H, 701, 1.0);
  const BlockResult free = runBlock(topK(2), s, x.data(), w.view(true));
  const BlockResult same = runBlock(topK(2), s, x.data(), w.view(true), 1,
                                    nullptr, free.moe.indices.data());
  EXPECT_EQ(same.y, free.y);
  std::vector<int32_t> other = free.moe.indices;
  std::swap(other[0], other[1]); // token 0: the same experts, other order
  for (int32_t e = 0; e < 4; ++e) // token 1: an expert it did not choose
    if (e != free.moe.indices[2] && e != free.moe.indices[3]) {
      other[2] = e;
      break;
    }
  const BlockResult routed = runBlock(topK(2), s, x.data(), w.view(true), 1,
                                      nullptr, other.data());
  EXPECT_EQ(routed.h, free.h);
  EXPECT_EQ(routed.moe.indices, other);
  for (int64_t i = 0; i < H; ++i) // token 0: a reordering, the same sum
    EXPECT_NEAR(routed.y[i], free.y[i], 1e-6);
  bool changed = false;
  for (int64_t i = H; i < 2 * H; ++i)
    changed |= routed.y[i] != free.y[i];
  EXPECT_TRUE(changed);
  for (int64_t i = 2 * H; i < B * L * H; ++i)
    EXPECT_EQ(routed.y[i], free.y[i]);
}

TEST(NaiveBlock, StoreRoundsTheHeadsBeforeTheOutputProjection) {
  const int64_t L = 6, H = 8;
  BlockShape s = shapeOf(1, L, H, 2, 1, 4);
  const Weights w = randomWeights(s, 700);
  const int64_t width = s.heads * s.headDim;
  ASSERT_EQ(width, H) << "an identity wo needs nh*dh = H";
  std::vector<float> identity(width * H, 0.0f);
  for (int64_t i = 0; i < H; ++i)
    identity[i * H + i] = 1.0f;
  const std::vector<float> x = normal(L * H, 701, 1.0);
  std::vector<double> n(L * H);
  rmsNorm(std::vector<double>(x.begin(), x.end()).data(), w.g1.data(), L, H,
          n.data());
  const std::vector<double> heads = causalAttention(
      s, 1, n.data(), w.wq.data(), w.wk.data(), w.wv.data(), identity.data());
  const std::vector<double> rounded =
      causalAttention(s, 1, n.data(), w.wq.data(), w.wk.data(), w.wv.data(),
                      identity.data(), roundToBf16);
  int differing = 0;
  for (int64_t i = 0; i < L * H; ++i) {
    EXPECT_EQ(rounded[i], static_cast<double>(roundToBf16(
                              static_cast<float>(heads[i]))))
        << i;
    differing += rounded[i] != heads[i];
  }
  EXPECT_GT(differing, 0) << "random heads are not all bf16 values";
}

/// Dropless, the MoE is per token too, so B blocks of one sequence each,
/// concatenated, are the block of B sequences. (With a capacity they are
/// not: capacity is counted over the MoE's whole group of tokens.)
TEST(NaiveBlock, DroplessBlockIsPerSequence) {
  const int64_t B = 4, L = 3, H = 8;
  const BlockShape s = shapeOf(B, L, H, 2, 1, 4);
  const Weights w = randomWeights(s, 600);
  const std::vector<float> x = normal(B * L * H, 601, 1.0);
  const BlockResult whole = runBlock(topK(2), s, x.data(), w.view());
  BlockShape one = s;
  one.batch = 1;
  for (int64_t b = 0; b < B; ++b) {
    const BlockResult part =
        runBlock(topK(2), one, x.data() + b * L * H, w.view());
    for (int64_t l = 0; l < L; ++l)
      EXPECT_EQ(row(part.y, one, 0, l), row(whole.y, s, b, l)) << b << "," << l;
  }
}

/// The output is finite and not the residual alone on random inputs of the
/// tiny block's shape (B=2, L=8, H=32, nh=4, nkv=2, dh=8, F=24, E=4, k=2).
TEST(NaiveBlock, TinyBlockShape) {
  const BlockShape s = shapeOf(2, 8, 32, 4, 2, 8, 24, 4);
  const Weights w = randomWeights(s, 700);
  const std::vector<float> x = normal(2 * 8 * 32, 701, 1.0);
  const BlockResult r = runBlock(topK(2), s, x.data(), w.view());
  ASSERT_EQ(r.y.size(), x.size());
  for (float v : r.y)
    EXPECT_TRUE(std::isfinite(v));
  EXPECT_GT(relativeError(r.h.data(), x.data(), x.size()), 0.1);
  EXPECT_GT(relativeError(r.y.data(), r.h.data(), x.size()), 0.1);
}

TEST(NaiveBlock, RejectsInconsistentSizes) {
  const BlockShape s = shapeOf(2, 3, 8, 4, 2, 4);
  const Weights w = randomWeights(s, 800);
  const std::vector<float> x = normal(2 * 3 * 8, 801, 1.0);
  BlockShape badHeads = s;
  badHeads.kvHeads = 3;
  EXPECT_THROW(runBlock(topK(2), badHeads, x.data(), w.view()),
               std::invalid_argument);
  EXPECT_THROW(runBlock(topK(2), s, x.data(), w.view(), /*btaTiles=*/3),
               std::invalid_argument);
  EXPECT_THROW(runBlock(topK(2), s, x.data(), w.view(), /*btaTiles=*/0),
               std::invalid_argument);
  BlockShape empty = s;
  empty.seq = 0;
  EXPECT_THROW(runBlock(topK(2), empty, x.data(), w.view()),
               std::invalid_argument);
  BlockWeights missing = w.view();
  missing.wo = nullptr;
  EXPECT_THROW(runBlock(topK(2), s, x.data(), missing), std::invalid_argument);
  EXPECT_THROW(runBlock(topK(5), s, x.data(), w.view()), // k > E
               std::invalid_argument);
}

} // namespace
