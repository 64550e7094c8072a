//===- NaiveBlock.h - Naive reference transformer block ---------*- C++ -*-===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// The reference block (ARCHITECTURE.md, "The block (for batch tiling on
// attention)"), written straight from the definition in double:
//
//   h = x + Attn(RMSNorm(x; g1))
//   y = h + MoE(RMSNorm(h; g2))
//
// RMSNorm(v; g) = v / sqrt(mean(v^2) + 1e-6) * g, row by row. Attn is causal
// grouped-query attention without positional encoding: q = n*wq, k = n*wk,
// v = n*wv; query head i (columns [i*dh, (i+1)*dh)) attends with key/value
// head floor(i*nkv/nh), scale 1/sqrt(dh); the heads' outputs times wo. The
// MoE is runMoeLayer (NaiveMoe.h) on the B*L tokens in (b, l) order.
//
// Attention reads only its own sequence, so attention over tiles of B/N
// sequences (BTA) is the same function: runBlock takes N and computes each
// tile's attention as a separate call, and the unit tests check that every N
// gives the same block.
//
// Layouts (row-major, contiguous):
//   x[B,L,H]  g1[H]  wq[H,nh*dh]  wk[H,nkv*dh]  wv[H,nkv*dh]  wo[nh*dh,H]
//   g2[H]  wGate[H,E]  w1[E,H,2F]  w2[E,F,H]  bias[E] (optional)  y[B,L,H]
//
// Everything is double except where runMoeLayer's interface is float: its
// input RMSNorm(h; g2) is rounded to float, and its output comes back as
// float (the MoE itself accumulates in double).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_REFERENCE_NAIVEBLOCK_H
#define MOE_MLIR_LIB_REFERENCE_NAIVEBLOCK_H

#include "lib/Reference/NaiveMoe.h"

#include <cstdint>
#include <vector>

namespace moe::reference {

/// The sizes of one block.
struct BlockShape {
  int64_t batch = 0;   ///< B, sequences
  int64_t seq = 0;     ///< L, tokens per sequence
  int64_t hidden = 0;  ///< H
  int64_t heads = 0;   ///< nh, query heads
  int64_t kvHeads = 0; ///< nkv, key/value heads; divides nh
  int64_t headDim = 0; ///< dh
  int64_t ffn = 0;     ///< F of the MoE
  int64_t experts = 0; ///< E of the MoE
};

/// The block's weights, in the order of the block's arguments after x.
struct BlockWeights {
  const float *g1 = nullptr;    ///< [H]
  const float *wq = nullptr;    ///< [H, nh*dh]
  const float *wk = nullptr;    ///< [H, nkv*dh]
  const float *wv = nullptr;    ///< [H, nkv*dh]
  const float *wo = nullptr;    ///< [nh*dh, H]
  const float *g2 = nullptr;    ///< [H]
  const float *wGate = nullptr; ///< [H, E]
  const float *w1 = nullptr;    ///< [E, H, 2F]
  const float *w2 = nullptr;    ///< [E, F, H]
  const float *bias = nullptr;  ///< [E], or null: no selection bias
};

/// The output of one block run and what led to it.
struct BlockResult {
  std::vector<float> y; ///< [B,L,H]
  std::vector<float> h; ///< [B,L,H]: x + attention, rounded
  Result moe;           ///< the MoE layer on RMSNorm(h; g2), T = B*L
};

/// out[r] = v[r] / sqrt(mean(v[r]^2) + 1e-6) * g for each of `rows` rows of
/// H values. `out` may be `v`.
void rmsNorm(const double *v, const float *g, int64_t rows, int64_t H,
             double *out);

/// Attn(n) of `numSeqs` sequences of shape.seq tokens (shape.batch is not
/// read): n is [numSeqs, L, H], the result too, wo applied. `store`, when
/// given, rounds the heads' outputs before wo, as a program of a narrow
/// storage type keeps them (the output projection's operand).
std::vector<double> causalAttention(const BlockShape &shape, int64_t numSeqs,
                                    const double *n, const float *wq,
                                    const float *wk, const float *wv,
                                    const float *wo,
                                    float (*store)(float) = nullptr);

/// Runs the reference block, attention over `btaTiles` tiles of B/btaTiles
/// sequences (each tile a separate causalAttention call), then one MoE over
/// all B*L tokens. Every btaTiles that divides B gives the same result.
/// Throws std::invalid_argument when sizes are inconsistent (non-positive
/// sizes, nkv not dividing nh, btaTiles not dividing B, a null pointer) or
/// runMoeLayer rejects the router options.
/// `store`, when given, rounds what a program keeps in its storage type
/// (RMSNorm's outputs, the heads' outputs before wo, attention's output,
/// h) as the program does, e.g.
/// roundToBf16 for a bf16 block; the arithmetic stays in double.
/// `routing`, when given ([B*L, k]), routes the MoE's tokens
/// (runMoeLayerRouted) instead of its top k.
BlockResult runBlock(const RouterConfig &config, const BlockShape &shape,
                     const float *x, const BlockWeights &weights,
                     int64_t btaTiles = 1, float (*store)(float) = nullptr,
                     const int32_t *routing = nullptr);

} // namespace moe::reference

#endif // MOE_MLIR_LIB_REFERENCE_NAIVEBLOCK_H
