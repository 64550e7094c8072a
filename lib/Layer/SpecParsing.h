//===- SpecParsing.h - Pieces of the layer spec parser ----------*- C++ -*-===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//
//
// The parts of parseLayerSpec that the block spec parser (BlockSpec.cpp)
// shares: splitting and trimming items, integer values with LayerSpec's
// messages, and the layer's keys, one at a time, then its cross-key rules.
// Private to lib/Layer; tools use LayerSpec.h and BlockSpec.h.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_LAYER_SPECPARSING_H
#define MOE_MLIR_LIB_LAYER_SPECPARSING_H

#include "lib/Layer/LayerSpec.h"

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace moe::layer::detail {

/// `s` without leading and trailing whitespace.
std::string_view trim(std::string_view s);

/// `s` in single quotes, as messages quote user text.
std::string quoted(std::string_view s);

/// "a, b, c".
template <typename Range> std::string joinNames(const Range &names) {
  std::string out;
  for (const auto &name : names) {
    if (!out.empty())
      out += ", ";
    out += name;
  }
  return out;
}

/// Splits trimmed, non-empty `text` on ',' into trimmed items. An empty item
/// (a stray ',') is an error that names `what` ("layer spec").
bool splitItems(std::string_view text, std::string_view what,
                std::vector<std::string_view> &items, std::string &error);

/// The keys a spec gave, for duplicates and the required ones.
using SeenKeys = std::set<std::string, std::less<>>;

/// Walks a spec's items: the first may be a preset name (`onPreset` takes
/// it, or says why not), every other one is key=value. A key with no name,
/// one `acceptKey` refuses (it sets `error`) or one given twice is an error
/// naming `validKeys`; `setKey` takes the rest. `seen` gets every key,
/// `fromPreset` whether a preset came first.
bool walkSpecItems(
    const std::vector<std::string_view> &items, const std::string &validKeys,
    const std::function<bool(std::string_view, std::string &)> &onPreset,
    const std::function<bool(std::string_view, std::string &)> &acceptKey,
    const std::function<bool(std::string_view, std::string_view,
                             std::string &)> &setKey,
    SeenKeys &seen, bool &fromPreset, std::string &error);

/// Parses an integer in [lo, kMaxLayerDim]; lo is 0 or 1.
bool parseInt(std::string_view key, std::string_view value, int64_t lo,
              int64_t &out, std::string &error);

/// The layer's keys, in canonical order.
const std::vector<std::string> &layerKeys();
bool isLayerKey(std::string_view key);

/// Sets one layer key of `spec` (a key isLayerKey accepts), checking the
/// rules that involve that key alone.
bool setLayerKey(LayerSpec &spec, std::string_view key, std::string_view value,
                 std::string &error);

/// The rules that relate several keys of a layer.
bool validateLayer(const LayerSpec &spec, std::string &error);

/// The name of the layer preset whose fields `spec` equals, or "custom".
std::string layerPresetNameOf(const LayerSpec &spec);

/// Replaces control characters, so that a message quoting user text stays
/// one line.
void makeOneLine(std::string &error);

} // namespace moe::layer::detail

#endif // MOE_MLIR_LIB_LAYER_SPECPARSING_H
