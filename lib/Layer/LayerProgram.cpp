//===- LayerProgram.cpp - The moe program a layer spec makes --------------===//
//
// Written as text rather than built with MLIR's builders so that this library
// stays MLIR-free; the compiler parses and verifies what it makes like any
// other program.
//
//===----------------------------------------------------------------------===//

#include "lib/Layer/LayerProgram.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

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

std::string moe::layer::emitLayerProgram(const LayerSpec &spec) {
  const std::string elem = spec.dtype == DType::BF16 ? "bf16" : "f32";
  const std::string T =
      spec.dynamicTokens ? "?" : std::to_string(spec.tokens);
  const std::string TK = spec.dynamicTokens
                             ? "?"
                             : std::to_string(spec.tokens * spec.topK);
  auto tensor = [&](const std::string &shape, const std::string &element) {
    return "tensor<" + shape + "x" + element + ">";
  };
  const std::string H = std::to_string(spec.hidden);
  const std::string E = std::to_string(spec.experts);
  const std::string K = std::to_string(spec.topK);
  const std::string F = std::to_string(spec.ffn);
  const std::string F2 = std::to_string(2 * spec.ffn);

  const std::string xType = tensor(T + "x" + H, elem);
  const std::string wGateType = tensor(H + "x" + E, elem);
  const std::string w1Type = tensor(E + "x" + H + "x" + F2, elem);
  const std::string w2Type = tensor(E + "x" + F + "x" + H, elem);
  const std::string biasType = tensor(E, "f32");
  const std::string weightsType = tensor(T + "x" + K, "f32");
  const std::string indicesType = tensor(T + "x" + K, "i32");
  const std::string routingType = "!moe.routing<tokens = " + T +
                                  ", experts = " + E + ", top_k = " + K + ">";
  const std::string rowsType = tensor(TK + "x" + H, elem);

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

  std::ostringstream os;
  os << "// MoE layer " << formatLayerSpec(spec) << "\n"
     << "func.func @" << kLayerFunctionName << "(%x: " << xType
     << ", %w_gate: " << wGateType << ",\n    %w1: " << w1Type
     << ", %w2: " << w2Type;
  if (spec.bias)
    os << ", %bias: " << biasType;
  os << ")\n    -> (" << xType << ", " << indicesType << ")";
  // The request moe-expert-parallel turns into the per-rank program.
  if (spec.epRanks > 0) {
    os << "\n    attributes {moe.ep_ranks = " << spec.epRanks << " : i64";
    if (spec.overlapChunks >= 0)
      os << ", moe.overlap_chunks = " << spec.overlapChunks << " : i64";
    os << "}";
  }
  os << " {\n";
  os << "  %weights, %indices, %routing = moe.gate "
     << routerName(spec.router) << " top_k = " << K << " %x, %w_gate"
     << (spec.bias ? " bias %bias" : "") << attrDict << "\n      : ("
     << xType << ", " << wGateType << (spec.bias ? ", " + biasType : "")
     << ")\n      -> (" << weightsType << ", " << indicesType << ", "
     << routingType << ")\n";
  os << "  %dispatched = moe.dispatch %x, %routing\n      : (" << xType
     << ", " << routingType << ") -> " << rowsType << "\n";
  os << "  %expert_out = moe.experts " << activationName(spec.activation)
     << " %dispatched, %routing, %w1, %w2\n      : (" << rowsType << ", "
     << routingType << ",\n         " << w1Type << ", " << w2Type << ") -> "
     << rowsType << "\n";
  os << "  %y = moe.combine %expert_out, %weights, %routing\n      : ("
     << rowsType << ", " << weightsType << ", " << routingType << ") -> "
     << xType << "\n";
  os << "  return %y, %indices : " << xType << ", " << indicesType << "\n}\n";
  return os.str();
}
