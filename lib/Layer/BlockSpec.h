//===- BlockSpec.h - Textual description of one transformer block -*- C++ -*-=//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// A BlockSpec names the shapes of one block (ARCHITECTURE.md, "The block"):
// causal grouped-query attention over B sequences of length L, then the MoE
// layer on the B*L tokens. Its text is a LayerSpec's without `tokens` (the
// MoE has batch*seq tokens) plus the attention's keys:
//
//   qwen3_block
//   qwen3_block,batch=8,bta_tiles=2
//   batch=2,seq=8,heads=4,kv_heads=2,head_dim=8,hidden=32,ffn=24,experts=4,
//     top_k=2
//
// The layer keys and their rules are LayerSpec's; the storage type of the
// whole block is the layer's `dtype`. No MLIR or LLVM dependency.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_LAYER_BLOCKSPEC_H
#define MOE_MLIR_LIB_LAYER_BLOCKSPEC_H

#include "lib/Layer/LayerSpec.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe::layer {

/// One block: attention shapes, the batch tiling of attention (BTA) and the
/// MoE layer.
struct BlockSpec {
  /// The MoE layer; moe.tokens is always batch * seq.
  LayerSpec moe;
  int64_t batch = 0;    ///< B, sequences
  int64_t seq = 0;      ///< L, tokens per sequence
  int64_t heads = 0;    ///< nh, query heads
  int64_t kvHeads = 0;  ///< nkv, key/value heads; divides nh
  int64_t headDim = 0;  ///< dh
  int64_t btaTiles = 1; ///< N: attention runs over tiles of B/N sequences
  /// S: the MoE's grouped rows in S slices, so that its activation buffer
  /// holds T*k/S rows (moe-zero-buffer-fusion's row slices).
  int64_t rowSlices = 1;
  /// Whether the text gave bta_tiles (a memory budget then checks that N
  /// fits rather than choosing one).
  bool btaTilesGiven = false;
  /// The block preset whose fields this spec equals exactly, or "custom".
  std::string name = "custom";
};

/// Parses a block preset name, a preset followed by key=value overrides, or
/// a key=value list, with parseLayerSpec's syntax. Keys: batch, seq, heads,
/// kv_heads, head_dim, bta_tiles (default 1), row_slices (default 1) and
/// every layer key except tokens. Without a preset, batch, seq, heads,
/// kv_heads, head_dim, hidden, ffn, experts and top_k are required.
///
/// On success fills `out` (out.moe.tokens = batch * seq; out.moe.name and
/// out.name follow the fields as in parseLayerSpec) and returns true. On
/// failure returns false and sets `error` to one line that names the
/// offending key and the rule.
bool parseBlockSpec(std::string_view text, BlockSpec &out, std::string &error);

/// The canonical text of `spec`: the block keys in a fixed order, then
/// formatLayerSpec(spec.moe) without its tokens, so that
/// parseBlockSpec(formatBlockSpec(s)) reproduces s.
std::string formatBlockSpec(const BlockSpec &spec);

/// The block preset names, in the order they are listed in error messages.
std::vector<std::string> blockPresetNames();

} // namespace moe::layer

#endif // MOE_MLIR_LIB_LAYER_BLOCKSPEC_H
