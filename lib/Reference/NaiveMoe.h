//===- NaiveMoe.h - Naive reference MoE layer -------------------*- C++ -*-===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// A deliberately simple implementation of the reference MoE layer
// (ARCHITECTURE.md, "Semantics of the reference MoE layer"), written straight
// from the definition and sharing no code with the compiler, so that every
// backend can be checked against it. Everything is accumulated in double.
//
// Layouts (row-major, contiguous):
//   x[T,H]  wGate[H,E]  w1[E,H,2F] (columns [0,F) gate, [F,2F) up)
//   w2[E,F,H]  bias[E] (optional)  y[T,H]
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_REFERENCE_NAIVEMOE_H
#define MOE_MLIR_LIB_REFERENCE_NAIVEMOE_H

#include <cstdint>
#include <vector>

namespace moe::reference {

/// Router and expert options of the layer.
struct RouterConfig {
  bool sigmoid = false; ///< p = sigmoid(s) instead of softmax(s) over E
  int64_t topK = 1;
  bool normalize = true; ///< divide the k weights by their sum
  double scaling = 1.0;  ///< routed scaling factor, applied after normalize
  /// Capacity factor; 0 = dropless. With cf > 0 each expert takes at most
  ///   C = max(1, ceil(cf*T*k/E - 1e-9))  (left to right, in double)
  /// assignments. The 1e-9 keeps products that are integers in exact
  /// arithmetic (e.g. cf=1.1, T=100, k=1, E=10 gives 11.000000000000002)
  /// from rounding up; C is at least 1 because cf*T*k/E > 0.
  double capacityFactor = 0.0;
  /// Group-limited routing when nGroup > 0: experts form nGroup groups of
  /// E/nGroup consecutive experts, a group scores the max of p+bias over its
  /// experts, the topkGroup best groups are kept (ties to the lower group
  /// index) and the top k are chosen among their experts only.
  int64_t nGroup = 0, topkGroup = 0;
  bool geluGlu = false; ///< tanh-form gelu_glu instead of silu_glu
};

/// The output and the routing decisions of one layer run.
struct Result {
  std::vector<float> y;         ///< [T,H]
  std::vector<int32_t> indices; ///< [T,k], by descending p+bias, ties lower
                                ///< index first
  /// [T,k]: p of the selected expert (bias not included), normalized when
  /// asked, times scaling. Set even for dropped assignments; see `kept`.
  std::vector<float> weights;
  std::vector<uint8_t> kept; ///< [T,k]: 1 if within the expert's capacity
  std::vector<int64_t> tokensPerExpert; ///< [E]: assignments before dropping
  int64_t dropped = 0;                  ///< number of kept == 0 entries
  /// [T,E]: the selection keys p + bias the top k was taken from.
  std::vector<double> keys;
};

/// The expected capacity of each expert for these sizes, or -1 when
/// capacityFactor is 0 (dropless).
int64_t expertCapacity(double capacityFactor, int64_t T, int64_t k, int64_t E);

/// Runs the reference layer. `bias` may be null (no selection bias).
/// y[t] = sum_j kept[t,j] * w[t,j] * o_j is computed from the double-precision
/// weights, not from the float values stored in Result::weights.
/// Throws std::invalid_argument when sizes or options are inconsistent
/// (non-positive sizes, k > E, nGroup not dividing E, too few experts in the
/// kept groups, ...).
Result runMoeLayer(const RouterConfig &config, int64_t T, int64_t H, int64_t F,
                   int64_t E, const float *x, const float *wGate,
                   const float *w1, const float *w2, const float *bias);

/// The same layer with its routing given: token t goes to the experts
/// routing[t*k .. t*k + k) (each in [0, E), distinct) in that order instead
/// of its top k; weights, capacity and the experts follow the definition as
/// for chosen experts (group limits do not apply). What another backend's
/// output is checked against when its routing took the other side of a near
/// tie (routingNearTies). Throws std::invalid_argument as runMoeLayer does,
/// and for an index out of range or repeated within a token.
Result runMoeLayerRouted(const RouterConfig &config, int64_t T, int64_t H,
                         int64_t F, int64_t E, const float *x,
                         const float *wGate, const float *w1, const float *w2,
                         const float *bias, const int32_t *routing);

/// How another backend's routing `got` [T,k] differs from the reference's
/// `want` (with its selection keys `keys` [T,E]): `slots` that differ, and
/// `decisive` the tokens whose chosen experts differ by more than a near tie.
/// A token's choice is a near tie when each expert in one set and not in the
/// other has a key within `tolerance` (relative, of the larger key
/// magnitude) of the key of some expert it displaced, or of the
/// reference's k-th key: at a precision that far, which side of the tie a
/// backend took is not determined by the layer. A different order of the
/// same experts is a near tie when the keys it swaps are that close. An
/// index out of range or repeated within a token is decisive.
struct RoutingDifference {
  int64_t slots = 0, tokens = 0, decisive = 0;
};
RoutingDifference routingNearTies(const std::vector<int32_t> &got,
                                  const std::vector<int32_t> &want,
                                  const std::vector<double> &keys, int64_t T,
                                  int64_t k, int64_t E, double tolerance);

/// How a layer's routing `got` differs from the reference's, as the layer's
/// check judges it: where a capacity or group limits apply, every differing
/// slot is decisive (a swapped expert there moves other tokens' slots too);
/// otherwise routingNearTies at `kScoreOrderTolerance`, the relative
/// agreement of f32 sums over H in two orders (the router's scores on a GPU
/// and in the reference). A size other than T*k is decisive throughout.
constexpr double kScoreOrderTolerance = 1e-4;
RoutingDifference layerRoutingDifference(const RouterConfig &config,
                                         const std::vector<int32_t> &got,
                                         const Result &reference, int64_t T,
                                         int64_t k, int64_t E);

} // namespace moe::reference

#endif // MOE_MLIR_LIB_REFERENCE_NAIVEMOE_H
