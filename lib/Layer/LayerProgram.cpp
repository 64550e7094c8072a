//===- LayerProgram.cpp - The moe program a layer or block spec makes ----===//
//
// A layer's, and a block's (attention then the layer). Written as text
// rather than built with MLIR's builders so that this library
// stays MLIR-free; the compiler parses and verifies what it makes like any
// other program.
//
//===----------------------------------------------------------------------===//

#include "lib/Layer/LayerProgram.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

using namespace moe::layer;

static std::string formatDouble(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  std::string text = buffer;
  // An MLIR float literal needs a '.' before any exponent: "1e+20" lexes as
  // the integer 1 followed by an identifier.
  if (text.find('.') == std::string::npos)
    text.insert(std::min(text.find_first_of("eE"), text.size()), ".0");
  return text;
}

namespace {

std::string tensorType(const std::string &shape, const std::string &element) {
  return "tensor<" + shape + "x" + element + ">";
}

/// The types of one layer's values, as its program spells them.
struct LayerTypes {
  std::string elem, T, H, x, wGate, w1, w2, bias, weights, indices, routing,
      rows;

  explicit LayerTypes(const LayerSpec &spec) {
    elem = spec.dtype == DType::BF16 ? "bf16" : "f32";
    T = spec.dynamicTokens ? "?" : std::to_string(spec.tokens);
    std::string TK =
        spec.dynamicTokens ? "?" : std::to_string(spec.tokens * spec.topK);
    H = std::to_string(spec.hidden);
    std::string E = std::to_string(spec.experts);
    std::string K = std::to_string(spec.topK);
    std::string F = std::to_string(spec.ffn);
    std::string F2 = std::to_string(2 * spec.ffn);
    x = tensorType(T + "x" + H, elem);
    wGate = tensorType(H + "x" + E, elem);
    w1 = tensorType(E + "x" + H + "x" + F2, elem);
    w2 = tensorType(E + "x" + F + "x" + H, elem);
    bias = tensorType(E, "f32");
    weights = tensorType(T + "x" + K, "f32");
    indices = tensorType(T + "x" + K, "i32");
    routing = "!moe.routing<tokens = " + T + ", experts = " + E +
              ", top_k = " + K + ">";
    rows = tensorType(TK + "x" + H, elem);
  }
};

/// The layer's four ops on %x, %w_gate, %w1, %w2 (and %bias), defining %y
/// and %indices.
void emitLayerOps(const LayerSpec &spec, const LayerTypes &t,
                  std::ostream &os) {
  std::vector<std::string> attrs;
  if (spec.capacity > 0)
    attrs.push_back("capacity_factor = " + formatDouble(spec.capacity) +
                    " : f64");
  if (!spec.normalize)
    attrs.push_back("normalize = false");
  if (spec.scaling != 1.0)
    attrs.push_back("scaling = " + formatDouble(spec.scaling) + " : f64");
  if (spec.nGroup > 0) {
    attrs.push_back("n_group = " + std::to_string(spec.nGroup) + " : i64");
    attrs.push_back("topk_group = " + std::to_string(spec.topkGroup) +
                    " : i64");
  }
  if (spec.auxLoss > 0)
    attrs.push_back("aux_loss = " + formatDouble(spec.auxLoss) + " : f64");
  std::string attrDict;
  for (size_t i = 0; i < attrs.size(); ++i)
    attrDict += (i ? ", " : " {") + attrs[i];
  if (!attrDict.empty())
    attrDict += "}";

  const std::string K = std::to_string(spec.topK);
  os << "  %weights, %indices, %routing = moe.gate "
     << routerName(spec.router) << " top_k = " << K << " %x, %w_gate"
     << (spec.bias ? " bias %bias" : "") << attrDict << "\n      : ("
     << t.x << ", " << t.wGate << (spec.bias ? ", " + t.bias : "")
     << ")\n      -> (" << t.weights << ", " << t.indices << ", "
     << t.routing << ")\n";
  os << "  %dispatched = moe.dispatch %x, %routing\n      : (" << t.x
     << ", " << t.routing << ") -> " << t.rows << "\n";
  os << "  %expert_out = moe.experts " << activationName(spec.activation)
     << " %dispatched, %routing, %w1, %w2\n      : (" << t.rows << ", "
     << t.routing << ",\n         " << t.w1 << ", " << t.w2 << ") -> "
     << t.rows << "\n";
  os << "  %y = moe.combine %expert_out, %weights, %routing\n      : ("
     << t.rows << ", " << t.weights << ", " << t.routing << ") -> " << t.x
     << "\n";
}

} // namespace

std::string moe::layer::emitLayerProgram(const LayerSpec &spec) {
  LayerTypes t(spec);
  std::ostringstream os;
  os << "// MoE layer " << formatLayerSpec(spec) << "\n"
     << "func.func @" << kLayerFunctionName << "(%x: " << t.x
     << ", %w_gate: " << t.wGate << ",\n    %w1: " << t.w1
     << ", %w2: " << t.w2;
  if (spec.bias)
    os << ", %bias: " << t.bias;
  os << ")\n    -> (" << t.x << ", " << t.indices << ")";
  // The request moe-expert-parallel turns into the per-rank program.
  if (spec.epRanks > 0) {
    os << "\n    attributes {moe.ep_ranks = " << spec.epRanks << " : i64";
    if (spec.overlapChunks >= 0)
      os << ", moe.overlap_chunks = " << spec.overlapChunks << " : i64";
    os << "}";
  }
  os << " {\n";
  emitLayerOps(spec, t, os);
  os << "  return %y, %indices : " << t.x << ", " << t.indices << "\n}\n";
  return os.str();
}

std::string moe::layer::emitBlockProgram(const BlockSpec &spec) {
  const LayerSpec &layer = spec.moe;
  LayerTypes t(layer);
  const std::string B = std::to_string(spec.batch);
  const std::string L = std::to_string(spec.seq);
  const std::string block = tensorType(B + "x" + L + "x" + t.H, t.elem);
  const std::string gain = tensorType(t.H, t.elem);
  const std::string q = std::to_string(spec.heads * spec.headDim);
  const std::string kv = std::to_string(spec.kvHeads * spec.headDim);
  const std::string wq = tensorType(t.H + "x" + q, t.elem);
  const std::string wkv = tensorType(t.H + "x" + kv, t.elem);
  const std::string wo = tensorType(q + "x" + t.H, t.elem);

  std::ostringstream os;
  os << "// Block " << formatBlockSpec(spec) << "\n"
     << "func.func @" << kBlockFunctionName << "(%block_x: " << block
     << ", %g1: " << gain << ",\n    %wq: " << wq << ", %wk: " << wkv
     << ", %wv: " << wkv << ", %wo: " << wo << ",\n    %g2: " << gain
     << ", %w_gate: " << t.wGate << ", %w1: " << t.w1 << ", %w2: " << t.w2;
  if (layer.bias)
    os << ", %bias: " << t.bias;
  os << ")\n    -> (" << block << ", " << t.indices << ")";
  // Given as 1 too: under a memory budget the pass then checks that the
  // untiled attention fits instead of choosing.
  std::vector<std::string> attributes;
  if (spec.btaTiles > 1 || spec.btaTilesGiven)
    attributes.push_back("moe.bta_tiles = " + std::to_string(spec.btaTiles) +
                         " : i64");
  if (spec.rowSlices > 1)
    attributes.push_back("moe.row_slices = " + std::to_string(spec.rowSlices) +
                         " : i64");
  for (size_t i = 0; i < attributes.size(); ++i)
    os << (i ? ", " : "\n    attributes {") << attributes[i];
  if (!attributes.empty())
    os << "}";
  os << " {\n";
  // h = x + Attn(RMSNorm(x; g1)), over the B sequences.
  os << "  %n1 = moe.rms_norm %block_x, %g1 : (" << block << ", " << gain
     << ") -> " << block << "\n";
  os << "  %attention = moe.attention heads = " << spec.heads
     << " kv_heads = " << spec.kvHeads << " %n1, %wq, %wk, %wv, %wo\n      : ("
     << block << ", " << wq << ", " << wkv << ", " << wkv << ", " << wo
     << ") -> " << block << "\n";
  os << "  %h_block = arith.addf %block_x, %attention : " << block << "\n";
  // y = h + MoE(RMSNorm(h; g2)), on the B*L tokens in (b, l) order.
  os << "  %h = tensor.collapse_shape %h_block [[0, 1], [2]] : " << block
     << " into " << t.x << "\n";
  os << "  %x = moe.rms_norm %h, %g2 : (" << t.x << ", " << gain << ") -> "
     << t.x << "\n";
  emitLayerOps(layer, t, os);
  os << "  %out = arith.addf %h, %y : " << t.x << "\n";
  os << "  %block_y = tensor.expand_shape %out [[0, 1], [2]] output_shape ["
     << B << ", " << L << ", " << t.H << "] : " << t.x << " into " << block
     << "\n";
  os << "  return %block_y, %indices : " << block << ", " << t.indices
     << "\n}\n";
  return os.str();
}
