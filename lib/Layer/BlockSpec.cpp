//===- BlockSpec.cpp - Parse and print block specs ------------------------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// The block keys are parsed here; every layer key goes through LayerSpec's
// own setter and cross-key rules (SpecParsing.h), so a layer key means and
// checks the same in a block spec as in a layer spec.
//
//===----------------------------------------------------------------------===//

#include "lib/Layer/BlockSpec.h"
#include "lib/Layer/SpecParsing.h"

#include <initializer_list>
#include <iterator>
#include <set>
#include <tuple>
#include <utility>

namespace moe::layer {
namespace {
using namespace detail;

struct BlockPreset {
  const char *name;
  BlockSpec spec;
};

/// A block whose MoE is the layer preset `layerPreset`, with its tokens
/// replaced by batch * seq.
BlockSpec makeBlock(const char *layerPreset, int64_t batch, int64_t seq,
                    int64_t heads, int64_t kvHeads, int64_t headDim) {
  BlockSpec b;
  std::string error;
  bool ok = parseLayerSpec(layerPreset, b.moe, error);
  (void)ok; // The presets' names are spelled right (the unit tests check).
  b.moe.tokens = batch * seq;
  b.moe.name = layerPresetNameOf(b.moe);
  b.batch = batch;
  b.seq = seq;
  b.heads = heads;
  b.kvHeads = kvHeads;
  b.headDim = headDim;
  return b;
}

/// qwen3_block is Qwen3-30B-A3B's block (its MoE is the qwen3_30b_a3b preset,
/// 4 * 4096 = 16384 tokens); tiny_block is small enough for naive checks
/// (its MoE is the tiny preset, 2 * 8 = 16 tokens).
const std::vector<BlockPreset> &presets() {
  static const std::vector<BlockPreset> table = [] {
    std::vector<BlockPreset> p;
    p.push_back(
        {"qwen3_block", makeBlock("qwen3_30b_a3b", 4, 4096, 32, 4, 128)});
    p.push_back({"tiny_block", makeBlock("tiny", 2, 8, 4, 2, 8)});
    for (BlockPreset &preset : p)
      preset.spec.name = preset.name;
    return p;
  }();
  return table;
}

/// The block's own keys, in canonical order.
const char *const kBlockKeys[] = {
    "batch", "seq", "heads", "kv_heads", "head_dim", "bta_tiles", "row_slices"};

/// The keys a spec without a preset must give.
const char *const kRequiredKeys[] = {"batch",    "seq",      "heads",
                                     "kv_heads", "head_dim", "hidden",
                                     "ffn",      "experts",  "top_k"};

/// Every key a block spec accepts: the block's, then the layer's but tokens.
std::vector<std::string> validKeys() {
  std::vector<std::string> keys(std::begin(kBlockKeys), std::end(kBlockKeys));
  for (const std::string &k : layerKeys())
    if (k != "tokens")
      keys.push_back(k);
  return keys;
}

bool isBlockKey(std::string_view key) {
  for (const char *k : kBlockKeys)
    if (key == k)
      return true;
  return false;
}

bool setBlockKey(BlockSpec &spec, std::string_view key, std::string_view value,
                 std::string &error) {
  int64_t *field = key == "batch"        ? &spec.batch
                   : key == "seq"        ? &spec.seq
                   : key == "heads"      ? &spec.heads
                   : key == "kv_heads"   ? &spec.kvHeads
                   : key == "head_dim"   ? &spec.headDim
                   : key == "row_slices" ? &spec.rowSlices
                                         : &spec.btaTiles;
  spec.btaTilesGiven |= key == "bta_tiles";
  return parseInt(key, value, 1, *field, error);
}

auto fieldsOf(const BlockSpec &s) {
  return std::make_tuple(formatLayerSpec(s.moe), s.batch, s.seq, s.heads,
                         s.kvHeads, s.headDim, s.btaTiles, s.rowSlices);
}

/// Whether a product of sizes, at 4 bytes an element, fits in int64.
bool bytesFit(std::initializer_list<int64_t> extents) {
  int64_t bytes = 4;
  for (int64_t extent : extents)
    if (__builtin_mul_overflow(bytes, extent, &bytes))
      return false;
  return true;
}

/// The rules of the block keys (the layer's are validateLayer's). Runs
/// before the layer's rules, with moe.tokens not yet set.
bool validateBlock(const BlockSpec &s, std::string &error) {
  auto str = [](int64_t v) { return std::to_string(v); };
  if (s.batch > kMaxLayerDim / s.seq) {
    error = "batch=" + str(s.batch) + " times seq=" + str(s.seq) +
            " is more than " + str(kMaxLayerDim) +
            " tokens: the MoE has batch*seq tokens";
    return false;
  }
  if (s.heads % s.kvHeads != 0) {
    error = "heads=" + str(s.heads) +
            " is not a multiple of kv_heads=" + str(s.kvHeads) +
            ": grouped-query attention gives every kv head heads/kv_heads "
            "query heads";
    return false;
  }
  if (s.batch % s.btaTiles != 0) {
    error = "bta_tiles=" + str(s.btaTiles) +
            " does not divide batch=" + str(s.batch) +
            ": every tile has batch/bta_tiles sequences";
    return false;
  }
  if (s.moe.dynamicTokens) {
    error = "dynamic=1: a block's token count is batch*seq, static in its "
            "program; dynamic token counts are for a layer (--layer)";
    return false;
  }
  if (s.rowSlices > s.batch * s.seq * s.moe.topK) {
    error = "row_slices=" + str(s.rowSlices) + " is more than the " +
            str(s.batch * s.seq * s.moe.topK) +
            " grouped rows (batch*seq*top_k) it slices";
    return false;
  }
  // wq [H, nh*dh] and q [B*L, nh*dh] (wk, wv, k, v are no larger).
  if (!bytesFit({s.moe.hidden, s.heads, s.headDim}) ||
      !bytesFit({s.batch, s.seq, s.heads, s.headDim})) {
    error = "heads=" + str(s.heads) + ", head_dim=" + str(s.headDim) +
            ", hidden=" + str(s.moe.hidden) + ", batch=" + str(s.batch) +
            ", seq=" + str(s.seq) +
            ": the attention weights or activations would be more than 2^63 "
            "bytes";
    return false;
  }
  return true;
}

bool parseImpl(std::string_view text, BlockSpec &out, std::string &error) {
  std::string_view whole = trim(text);
  if (whole.empty()) {
    error = "empty block spec: give a preset (" +
            joinNames(blockPresetNames()) + ") or key=value items (" +
            joinNames(validKeys()) + ")";
    return false;
  }
  std::vector<std::string_view> items;
  if (!splitItems(whole, "block spec", items, error))
    return false;

  BlockSpec spec;
  bool fromPreset = false;
  SeenKeys seen;
  auto onPreset = [&](std::string_view name, std::string &error) {
    for (const BlockPreset &p : presets())
      if (name == p.name) {
        spec = p.spec;
        return true;
      }
    error = "unknown block preset " + quoted(name) + ": presets are " +
            joinNames(blockPresetNames()) +
            " (a layer preset is not a block: it has no attention)";
    return false;
  };
  auto acceptKey = [](std::string_view key, std::string &error) {
    if (key == "tokens") {
      error = "tokens: a block's MoE has batch*seq tokens; give batch and "
              "seq instead";
      return false;
    }
    if (isBlockKey(key) || isLayerKey(key))
      return true;
    error = "unknown key " + quoted(key) + ": valid keys are " +
            joinNames(validKeys());
    return false;
  };
  auto setKey = [&](std::string_view key, std::string_view value,
                    std::string &error) {
    return isBlockKey(key) ? setBlockKey(spec, key, value, error)
                           : setLayerKey(spec.moe, key, value, error);
  };
  if (!walkSpecItems(items, joinNames(validKeys()), onPreset, acceptKey,
                     setKey, seen, fromPreset, error))
    return false;

  if (!fromPreset) {
    std::vector<std::string> missing;
    for (const char *k : kRequiredKeys)
      if (!seen.count(k))
        missing.push_back(k);
    if (!missing.empty()) {
      error = "missing required key" +
              std::string(missing.size() > 1 ? "s " : " ") +
              joinNames(missing) + ": without a preset, " +
              joinNames(kRequiredKeys) + " are all required";
      return false;
    }
  }

  if (!validateBlock(spec, error))
    return false;
  spec.moe.tokens = spec.batch * spec.seq;
  if (!validateLayer(spec.moe, error))
    return false;

  // Names follow the fields, so they survive formatting and re-parsing.
  spec.moe.name = layerPresetNameOf(spec.moe);
  spec.name = "custom";
  for (const BlockPreset &p : presets())
    if (fieldsOf(p.spec) == fieldsOf(spec))
      spec.name = p.name;
  out = std::move(spec);
  error.clear();
  return true;
}

} // namespace

std::vector<std::string> blockPresetNames() {
  std::vector<std::string> names;
  for (const BlockPreset &p : presets())
    names.push_back(p.name);
  return names;
}

bool parseBlockSpec(std::string_view text, BlockSpec &out, std::string &error) {
  if (parseImpl(text, out, error))
    return true;
  makeOneLine(error);
  return false;
}

std::string formatBlockSpec(const BlockSpec &s) {
  auto str = [](int64_t v) { return std::to_string(v); };
  std::string out = "batch=" + str(s.batch) + ",seq=" + str(s.seq) +
                    ",heads=" + str(s.heads) + ",kv_heads=" + str(s.kvHeads) +
                    ",head_dim=" + str(s.headDim) +
                    ",bta_tiles=" + str(s.btaTiles) +
                    (s.rowSlices > 1 ? ",row_slices=" + str(s.rowSlices) : "");
  // The layer's text starts with its tokens, which batch and seq give.
  std::string layer = formatLayerSpec(s.moe);
  return out + layer.substr(layer.find(','));
}

} // namespace moe::layer
