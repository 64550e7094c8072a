//===- LayerSpec.h - Textual description of one MoE layer -------*- C++ -*-===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// A LayerSpec names the shape and routing options of one MoE layer. Tools
// (`moe-run --layer SPEC`, the benchmarks, tests) accept it as text: either a
// preset name, a preset followed by overrides, or a full key=value list:
//
//   mixtral
//   mixtral,tokens=64,dtype=f32
//   tokens=16,hidden=32,ffn=24,experts=4,top_k=2,router=sigmoid
//
// This library has no MLIR or LLVM dependency.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_LAYER_LAYERSPEC_H
#define MOE_MLIR_LIB_LAYER_LAYERSPEC_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe::layer {

/// How router scores become probabilities.
enum class Router { Softmax, Sigmoid };

/// The gated activation of the expert FFN: act(h[:F]) * h[F:].
enum class Activation { SiluGlu, GeluGlu };

/// Storage type of activations and weights (accumulation is always f32 or
/// wider).
enum class DType { F32, BF16 };

/// One MoE layer: shapes plus routing options. Defaults match the reference
/// semantics in ARCHITECTURE.md.
struct LayerSpec {
  int64_t tokens = 0;  ///< T; with dynamicTokens, the T used for data.
  int64_t hidden = 0;  ///< H
  int64_t ffn = 0;     ///< F (w1 is [E, H, 2F])
  int64_t experts = 0; ///< E
  int64_t topK = 0;    ///< k
  Router router = Router::Softmax;
  bool bias = false;     ///< a selection bias [E] is an input
  double capacity = 0.0; ///< capacity factor; 0 = dropless
  bool normalize = true; ///< divide the k weights by their sum
  double scaling = 1.0;  ///< routed scaling factor
  Activation activation = Activation::SiluGlu;
  DType dtype = DType::F32;
  bool dynamicTokens = false; ///< the token dimension is dynamic in the IR
  int64_t nGroup = 0;         ///< 0 = no group-limited routing
  int64_t topkGroup = 0;
  /// COEF of the load-balancing loss of the training program; 0 = off. A
  /// forward program carries it as moe.gate's aux_loss and ignores it.
  double auxLoss = 0.0;
  /// Expert parallelism over this many ranks (0 = off; 1 runs the per-rank
  /// program on one rank): the program is moe-expert-parallel's per-rank
  /// program, T tokens per rank and E/R experts per rank.
  int64_t epRanks = 0;
  /// moe-overlap-communication's chunks (-1 = off, 0 = its cost model's
  /// choice): the per-rank program pipelines its all-to-alls with the
  /// experts over this many chunks of tokens. Needs epRanks.
  int64_t overlapChunks = -1;
  /// The preset whose fields this spec equals exactly, or "custom".
  std::string name = "custom";
};

/// The largest value accepted for tokens, hidden, ffn, experts, top_k,
/// n_group and topk_group (expert indices are stored as int32).
constexpr int64_t kMaxLayerDim = 2147483647;

/// Parses a preset name, a preset followed by key=value overrides, or a
/// key=value list. Items are separated by ','; whitespace around items, keys
/// and values is ignored. The first item is a preset name when it has no '='.
///
/// On success fills `out` and returns true. `out.name` is set to the preset
/// whose fields the result equals (so "mixtral,tokens=8192" is still
/// "mixtral" and the canonical form of a preset parses back to that preset),
/// otherwise "custom". On failure returns false, leaves `out` unspecified
/// and sets `error` to one line that names the offending key and the rule.
bool parseLayerSpec(std::string_view text, LayerSpec &out, std::string &error);

/// The canonical text of `spec`: every key, in a fixed order, e.g.
/// "tokens=16,hidden=32,ffn=24,experts=4,top_k=2,router=softmax,bias=0,
/// capacity=0,normalize=1,scaling=1,activation=silu_glu,dtype=f32,dynamic=0,
/// n_group=0,topk_group=0". Doubles use the shortest text that parses back to
/// the same value, so parseLayerSpec(formatLayerSpec(s)) reproduces s.
std::string formatLayerSpec(const LayerSpec &spec);

/// FLOPs of one forward pass of the experts: 2 * T * k * H * 3F (w1 is
/// H x 2F, w2 is F x H, per assignment). The router GEMM (2*T*H*E), the
/// activation and the combine are not counted, and neither is capacity
/// dropping: this is the FLOP count the baselines in bench/BASELINES.md use.
double forwardFlops(const LayerSpec &spec);

/// The preset names, in the order they are listed in error messages.
std::vector<std::string> layerPresetNames();

/// Text names of the enums, as used in specs.
const char *routerName(Router router);
const char *activationName(Activation activation);
const char *dtypeName(DType dtype);

} // namespace moe::layer

#endif // MOE_MLIR_LIB_LAYER_LAYERSPEC_H
