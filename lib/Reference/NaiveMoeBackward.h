//===- NaiveMoeBackward.h - Naive reference MoE backward --------*- C++ -*-===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// The gradients of the reference MoE layer (ARCHITECTURE.md, "Backward"),
// written straight from the definition in double precision and sharing no
// code with the compiler. The loss is
//
//   L = sum_{t,h} y[t,h] * dy[t,h]  +  aux,
//   aux = COEF * E * sum_e f_e * P_e,
//
// f_e = kept assignments of expert e / (T*k) (a count: no gradient),
// P_e = mean over tokens of p[t,e]. The selection (top-k, groups, capacity)
// and the bias have no gradient.
//
// Layouts as NaiveMoe.h; dy[T,H]; gradients have the shapes of their inputs.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_REFERENCE_NAIVEMOEBACKWARD_H
#define MOE_MLIR_LIB_REFERENCE_NAIVEMOEBACKWARD_H

#include "lib/Reference/NaiveMoe.h"

#include <cstdint>
#include <vector>

namespace moe::reference {

/// The layer's sizes and options for one training step.
struct TrainingConfig {
  RouterConfig router;
  int64_t T = 0, H = 0, F = 0, E = 0;
  double auxLossCoef = 0.0; ///< COEF; 0 = no load-balancing loss
  /// Expert parallelism (an EP group of `groupRanks` ranks of T tokens
  /// each): f_e = groupLoads[e] / (groupRanks * T * k), the loads counted
  /// over all ranks. Empty: f_e from this layer's own loads.
  std::vector<int64_t> groupLoads;
  int64_t groupRanks = 1;
};

/// The inputs of one training step, in double. `bias` may be null.
struct TrainingInputs {
  const double *x = nullptr, *wGate = nullptr, *w1 = nullptr, *w2 = nullptr;
  const double *bias = nullptr, *dy = nullptr;
};

/// Forward results and gradients of one training step.
struct Gradients {
  std::vector<double> y;              ///< [T,H]
  std::vector<int32_t> indices;       ///< [T,k]
  std::vector<uint8_t> kept;          ///< [T,k]
  std::vector<double> dx, dwGate;     ///< [T,H], [H,E]
  std::vector<double> dw1, dw2;       ///< [E,H,2F], [E,F,H]
  double aux = 0.0;                   ///< the load-balancing loss (0 if off)
  std::vector<int32_t> loads;         ///< [E]: kept assignments per expert
};

/// Runs the forward and backward of the layer. Throws std::invalid_argument
/// on inconsistent sizes or options (those of runMoeLayer, a negative COEF,
/// a null dy).
Gradients runMoeBackward(const TrainingConfig &config,
                         const TrainingInputs &in);

/// The loss L = sum y*dy + aux for these inputs, in double: what the
/// gradients are the derivative of (finite differences test them with it).
double moeTrainingLoss(const TrainingConfig &config, const TrainingInputs &in);

/// runMoeBackward on f32 inputs (the values a program saw), widened.
Gradients runMoeBackwardF32(const TrainingConfig &config, const float *x,
                            const float *wGate, const float *w1,
                            const float *w2, const float *bias,
                            const float *dy);

} // namespace moe::reference

#endif // MOE_MLIR_LIB_REFERENCE_NAIVEMOEBACKWARD_H
