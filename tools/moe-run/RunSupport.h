//===- RunSupport.h - Inputs, checks and statistics for moe-run -*- C++ -*-===//
//
// The MLIR-free part of moe-run: making and reading inputs, describing a
// function, the reference check and the routing statistics. Everything here
// talks to compiled code only through the moert C API.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_TOOLS_MOE_RUN_RUNSUPPORT_H
#define MOE_MLIR_TOOLS_MOE_RUN_RUNSUPPORT_H

#include "lib/Layer/BlockSpec.h"
#include "moe-mlir/Runtime/moert.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moe::run {

/// Owns a moert tensor.
struct TensorDeleter {
  void operator()(moert_tensor *t) const { moert_tensor_free(t); }
};
using Tensor = std::unique_ptr<moert_tensor, TensorDeleter>;

/// The type of one argument or result, as the artifact's metadata says.
struct ValueSpec {
  moert_dtype dtype = MOERT_F32;
  std::vector<int64_t> dims; ///< MOERT_DYNAMIC where dynamic
};

struct FunctionSpec {
  std::string name;
  std::vector<ValueSpec> args, results;
};

FunctionSpec describeFunction(const moert_function *function);

/// "f32[16, 32]", "bf16[?, 64]".
std::string formatSpec(const ValueSpec &spec);
std::string formatShape(const moert_tensor *tensor);

/// The configuration of a function that is one MoE layer (metadata
/// `attr layer.*`), or nothing.
struct LayerInfo {
  std::string router, activation;
  int64_t topK = 0, nGroup = 0, topkGroup = 0;
  bool normalize = true;
  double scaling = 1.0, capacity = 0.0;
  int x = -1, wGate = -1, w1 = -1, w2 = -1, bias = -1, y = -1, indices = -1;
  /// Expert parallelism (moe-expert-parallel): the ranks the per-rank
  /// program was made for (0: not expert-parallel) and the experts of the
  /// whole layer; w1 and w2 are then this rank's E/R experts.
  int64_t epRanks = 0, experts = 0;
  /// A training step (moe-generate-backward): the argument dy and the
  /// results dx, dw_gate, dw1, dw2, aux (-1 when off) and loads.
  bool backward = false;
  double auxLoss = 0.0;
  int dy = -1, dx = -1, dwGate = -1, dw1 = -1, dw2 = -1, aux = -1, loads = -1;
};
std::optional<LayerInfo> readLayerInfo(const moert_function *function);

/// "memory: ..." from the artifact's `attr memory.*` lines, if any.
std::optional<std::string> describeMemoryPlan(const moert_function *function);

/// "batch tiling on attention: ..." from the artifact's `attr bta.*` lines
/// (the tiles a memory budget chose), if any.
std::optional<std::string> describeTileChoice(const moert_function *function);

/// The fan-in scale that keeps a layer's output of order 1.
double inputScale(const FunctionSpec &spec, const LayerInfo *layer, int arg);

/// Fresh normal random values (integer arguments: uniform in [0, 4)).
/// Dynamic dimensions become `dynamicExtent`.
Tensor makeRandomInput(const ValueSpec &spec, int64_t dynamicExtent,
                       uint64_t seed, double stddev, std::string &error);

/// Rank `rank`'s shard of the experts of `whole` ([E, ...]): experts
/// [rank*E/ranks, (rank+1)*E/ranks), a copy.
Tensor shardExperts(moert_tensor *whole, int rank, int64_t ranks,
                    std::string &error);

/// Reads DIR/argI.npy and checks it against the argument's type.
Tensor readInput(const std::string &dir, int index, const ValueSpec &spec,
                 std::string &error);

/// The values of a float tensor as f32 (bf16 and f16 widened).
std::vector<float> toFloats(moert_tensor *tensor);

/// Tokens per expert and dropped assignments, from the indices result.
struct RoutingStats {
  int64_t experts = 0, assignments = 0, minLoad = 0, maxLoad = 0, dropped = 0;
  double meanLoad = 0.0;
  int64_t emptyExperts = 0;
};
RoutingStats routingStats(const LayerInfo &layer, moert_tensor *indices,
                          int64_t experts);

/// One line per result comparing with the naive reference; false if any
/// result is beyond tolerance.
struct CheckOutcome {
  bool passed = true;
  std::vector<std::string> lines;
};
/// std::nullopt, with `why` set, when the reference cannot run these
/// arguments (a shape it does not support, such as a zero extent).
std::optional<CheckOutcome>
checkAgainstReference(const LayerInfo &layer, const std::vector<Tensor> &args,
                      const std::vector<Tensor> &results, std::string &why);

/// A block (moe-run --block): y (result 0) against the reference block of
/// lib/Reference/NaiveBlock.h on the same arguments (x, g1, wq, wk, wv,
/// wo, g2, w_gate, w1, w2[, bias]), relative error at the layer's
/// tolerance, and the MoE's indices (result 1) exactly.
std::optional<CheckOutcome>
checkBlockAgainstReference(const moe::layer::BlockSpec &spec,
                           const std::vector<Tensor> &args,
                           const std::vector<Tensor> &results,
                           std::string &why);

/// The training step checked against the reference backward: y, indices,
/// dx, dw_gate, dw1, dw2 (relative error per tensor: f32 1e-4, bf16 3e-2),
/// aux (relative) and the loads (exact).
/// Nothing (and `why`) when the reference backward cannot run the layer.
/// Expert parallelism: every rank's tokens and output gradients (the
/// reference's dw1 and dw2 of a rank's experts sum over all of them), and
/// which shard of the experts this rank holds.
struct RanksOfLayer {
  int rank = 0;
  int64_t ranks = 1;
  std::vector<std::vector<float>> xs, dys;
};
std::optional<CheckOutcome>
checkBackwardAgainstReference(const LayerInfo &layer,
                              const std::vector<Tensor> &args,
                              const std::vector<Tensor> &results,
                              std::string &why,
                              const RanksOfLayer *ranks = nullptr);

/// 2*T*k*H*3F, the FLOPs of the experts (the router's GEMM not counted).
double layerFlops(const LayerInfo &layer, const std::vector<Tensor> &args);

} // namespace moe::run

#endif // MOE_MLIR_TOOLS_MOE_RUN_RUNSUPPORT_H
