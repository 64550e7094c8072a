//===- LayerSpec.cpp - Parse and print MoE layer specs --------------------===//
//---------------------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//

#include "lib/Layer/LayerSpec.h"
#include "lib/Layer/SpecParsing.h"

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

namespace moe::layer {
namespace {

struct Preset {
  const char *name;
  LayerSpec spec;
};

LayerSpec makeShape(int64_t t, int64_t h, int64_t f, int64_t e, int64_t k,
                    DType dtype) {
  LayerSpec s;
  s.tokens = t;
  s.hidden = h;
  s.ffn = f;
  s.experts = e;
  s.topK = k;
  s.dtype = dtype;
  return s;
}

/// The presets. The three large ones are the shapes of bench/BASELINES.md and
/// are bf16 like the baselines; `tiny` is small enough for naive checks.
const std::vector<Preset> &presets() {
  static const std::vector<Preset> table = [] {
    std::vector<Preset> p;
    p.push_back({"tiny", makeShape(16, 32, 24, 4, 2, DType::F32)});
    p.push_back({"mixtral", makeShape(8192, 4096, 14336, 8, 2, DType::BF16)});
    p.push_back(
        {"qwen3_30b_a3b", makeShape(16384, 2048, 768, 128, 8, DType::BF16)});
    p.push_back({"olmoe", makeShape(16384, 2048, 1024, 64, 8, DType::BF16)});
    for (Preset &preset : p)
      preset.spec.name = preset.name;
    return p;
  }();
  return table;
}

/// Every key, in canonical order.
const char *const kKeys[] = {"tokens",    "hidden",  "ffn",        "experts",
                             "top_k",     "router",  "bias",       "capacity",
                             "normalize", "scaling", "activation", "dtype",
                             "dynamic",   "n_group", "topk_group", "aux_loss",
                             "ep",        "overlap"};

/// The keys a spec without a preset must give.
const char *const kRequiredKeys[] = {"tokens", "hidden", "ffn", "experts",
                                     "top_k"};

/// All fields except the name, so that a spec can be matched to a preset.
auto fieldsOf(const LayerSpec &s) {
  return std::make_tuple(s.tokens, s.hidden, s.ffn, s.experts, s.topK, s.router,
                         s.bias, s.capacity, s.normalize, s.scaling,
                         s.activation, s.dtype, s.dynamicTokens, s.nGroup,
                         s.topkGroup, s.auxLoss, s.epRanks, s.overlapChunks);
}

} // namespace

namespace detail {

std::string_view trim(std::string_view s) {
  const char *ws = " \t\r\n\f\v";
  size_t begin = s.find_first_not_of(ws);
  if (begin == std::string_view::npos)
    return {};
  size_t end = s.find_last_not_of(ws);
  return s.substr(begin, end - begin + 1);
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool walkSpecItems(
    const std::vector<std::string_view> &items, const std::string &validKeys,
    const std::function<bool(std::string_view, std::string &)> &onPreset,
    const std::function<bool(std::string_view, std::string &)> &acceptKey,
    const std::function<bool(std::string_view, std::string_view,
                             std::string &)> &setKey,
    SeenKeys &seen, bool &fromPreset, std::string &error) {
  fromPreset = false;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string_view item = items[i];
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      if (i != 0) {
        error = "item " + quoted(item) +
                " is not key=value: only the first item may be a preset name";
        return false;
      }
      if (!onPreset(item, error))
        return false;
      fromPreset = true;
      continue;
    }
    std::string_view key = trim(item.substr(0, eq));
    std::string_view value = trim(item.substr(eq + 1));
    if (key.empty()) {
      error = "item " + quoted(item) + " has no key: valid keys are " +
              validKeys;
      return false;
    }
    if (!acceptKey(key, error))
      return false;
    if (!seen.insert(std::string(key)).second) {
      error = "duplicate key " + quoted(key) + ": give each key once";
      return false;
    }
    if (!setKey(key, value, error))
      return false;
  }
  return true;
}

bool splitItems(std::string_view text, std::string_view what,
                std::vector<std::string_view> &items, std::string &error) {
  // Split on ',' keeping empty items, so that "a,,b" is reported.
  items.clear();
  for (size_t begin = 0;;) {
    size_t comma = text.find(',', begin);
    items.push_back(trim(text.substr(begin, comma == std::string_view::npos
                                                ? std::string_view::npos
                                                : comma - begin)));
    if (comma == std::string_view::npos)
      break;
    begin = comma + 1;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].empty()) {
      error = "empty item " + std::to_string(i + 1) + " in " +
              std::string(what) + " (stray ','): remove it";
      return false;
    }
  }
  return true;
}

const std::vector<std::string> &layerKeys() {
  static const std::vector<std::string> keys(std::begin(kKeys),
                                             std::end(kKeys));
  return keys;
}

bool isLayerKey(std::string_view key) {
  for (const char *k : kKeys)
    if (key == k)
      return true;
  return false;
}

void makeOneLine(std::string &error) {
  for (char &c : error)
    if (static_cast<unsigned char>(c) < 0x20)
      c = ' ';
}

/// The bound message says what the lower limit means for this key.
bool parseInt(std::string_view key, std::string_view value, int64_t lo,
              int64_t &out, std::string &error) {
  int64_t v = 0;
  const char *first = value.data(), *last = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  std::string range = "must be between " + std::to_string(lo) + " and " +
                      std::to_string(kMaxLayerDim);
  if (value.empty() ||
      (ec != std::errc() && ec != std::errc::result_out_of_range) ||
      ptr != last) {
    error = std::string(key) + ": " + quoted(value) + " is not an integer (" +
            range + ")";
    return false;
  }
  if (ec == std::errc::result_out_of_range || v > kMaxLayerDim) {
    error = std::string(key) + "=" + std::string(value) +
            " is out of range: " + range;
    return false;
  }
  if (v < lo) {
    error = std::string(key) + "=" + std::string(value) + ": " +
            (lo == 1 ? "must be a positive integer (>= 1)"
                     : "must be >= 0 (0 = no group-limited routing)");
    return false;
  }
  out = v;
  return true;
}

static bool parseDouble(std::string_view key, std::string_view value,
                        double &out, std::string &error) {
  double v = 0.0;
  const char *first = value.data(), *last = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  // from_chars accepts "inf" and "nan"; neither is a meaningful factor.
  if (value.empty() || ec != std::errc() || ptr != last || !std::isfinite(v)) {
    error = std::string(key) + ": " + quoted(value) + " is not a finite number";
    return false;
  }
  out = v;
  return true;
}

static bool parseBool(std::string_view key, std::string_view value, bool &out,
                      std::string &error) {
  if (value == "0" || value == "1") {
    out = value == "1";
    return true;
  }
  error = std::string(key) + ": expected 0 or 1, got " + quoted(value);
  return false;
}

bool setLayerKey(LayerSpec &spec, std::string_view key, std::string_view value,
                 std::string &error) {
  if (key == "tokens")
    return parseInt(key, value, 1, spec.tokens, error);
  if (key == "hidden")
    return parseInt(key, value, 1, spec.hidden, error);
  if (key == "ffn")
    return parseInt(key, value, 1, spec.ffn, error);
  if (key == "experts")
    return parseInt(key, value, 1, spec.experts, error);
  if (key == "top_k")
    return parseInt(key, value, 1, spec.topK, error);
  if (key == "n_group")
    return parseInt(key, value, 0, spec.nGroup, error);
  if (key == "ep")
    return parseInt(key, value, 1, spec.epRanks, error);
  if (key == "overlap")
    return parseInt(key, value, 0, spec.overlapChunks, error);
  if (key == "topk_group")
    return parseInt(key, value, 0, spec.topkGroup, error);
  if (key == "bias")
    return parseBool(key, value, spec.bias, error);
  if (key == "normalize")
    return parseBool(key, value, spec.normalize, error);
  if (key == "dynamic")
    return parseBool(key, value, spec.dynamicTokens, error);
  if (key == "router") {
    if (value == "softmax" || value == "sigmoid") {
      spec.router = value == "softmax" ? Router::Softmax : Router::Sigmoid;
      return true;
    }
    error = "router: expected softmax or sigmoid, got " + quoted(value);
    return false;
  }
  if (key == "activation") {
    if (value == "silu_glu" || value == "gelu_glu") {
      spec.activation =
          value == "silu_glu" ? Activation::SiluGlu : Activation::GeluGlu;
      return true;
    }
    error = "activation: expected silu_glu or gelu_glu, got " + quoted(value);
    return false;
  }
  if (key == "dtype") {
    if (value == "f32" || value == "bf16") {
      spec.dtype = value == "f32" ? DType::F32 : DType::BF16;
      return true;
    }
    error = "dtype: expected f32 or bf16, got " + quoted(value);
    return false;
  }
  if (key == "capacity") {
    if (!parseDouble(key, value, spec.capacity, error))
      return false;
    if (spec.capacity < 0.0) {
      error = "capacity=" + std::string(value) +
              ": the capacity factor must be >= 0 (0 = dropless)";
      return false;
    }
    return true;
  }
  if (key == "aux_loss") {
    if (!parseDouble(key, value, spec.auxLoss, error))
      return false;
    if (!(spec.auxLoss >= 0.0)) {
      error = "aux_loss=" + std::string(value) +
              ": the load-balancing loss coefficient must be >= 0 (0 = off)";
      return false;
    }
    return true;
  }
  if (key == "scaling") {
    if (!parseDouble(key, value, spec.scaling, error))
      return false;
    if (!(spec.scaling > 0.0)) {
      error = "scaling=" + std::string(value) +
              ": the routed scaling factor must be > 0";
      return false;
    }
    return true;
  }
  // Callers only pass known keys.
  error = "unknown key " + quoted(key);
  return false;
}

/// The i32 routing metadata's limit (moe::kMaxAssignments in the compiler).
constexpr int64_t kMaxAssignments = 2147483647;

/// Whether a tensor of these extents (each at most 2^32) has a byte count,
/// at 4 bytes an element, that fits in int64.
static bool tensorFits(std::initializer_list<int64_t> extents) {
  int64_t bytes = 4;
  for (int64_t extent : extents)
    if (__builtin_mul_overflow(bytes, extent, &bytes))
      return false;
  return true;
}

/// Each message names the key to fix.
bool validateLayer(const LayerSpec &s, std::string &error) {
  auto str = [](int64_t v) { return std::to_string(v); };
  if (s.topK > s.experts) {
    error = "top_k=" + str(s.topK) + " exceeds experts=" + str(s.experts) +
            ": top_k must be <= experts";
    return false;
  }
  if (s.nGroup > 0 && s.topkGroup == 0) {
    error = "topk_group: missing; n_group=" + str(s.nGroup) +
            " needs topk_group too (give both for group-limited routing, or "
            "neither)";
    return false;
  }
  if (s.topkGroup > 0 && s.nGroup == 0) {
    error = "n_group: missing; topk_group=" + str(s.topkGroup) +
            " needs n_group too (give both for group-limited routing, or "
            "neither)";
    return false;
  }
  // Sizes the program could not represent: i32 routing metadata indexes the
  // T*k assignments, and every tensor's byte count must fit in 64 bits.
  if (s.tokens * s.topK > kMaxAssignments) {
    error = "tokens=" + str(s.tokens) + " times top_k=" + str(s.topK) +
            " is more than the " + str(kMaxAssignments) +
            " assignments the i32 routing metadata can index";
    return false;
  }
  if (!tensorFits({s.experts, s.hidden, 2 * s.ffn}) ||
      !tensorFits({s.tokens * s.topK, 2 * s.ffn}) ||
      !tensorFits({s.tokens * s.topK, s.hidden})) {
    error = "experts=" + str(s.experts) + ", hidden=" + str(s.hidden) +
            ", ffn=" + str(s.ffn) + ", tokens=" + str(s.tokens) +
            ": the weights or activations would be more than 2^63 bytes";
    return false;
  }
  // Experts are split contiguously, the same number on every rank.
  if (s.epRanks > 0 && s.experts % s.epRanks != 0) {
    error = "ep=" + str(s.epRanks) +
            " does not divide experts=" + str(s.experts) +
            ": expert parallelism gives every rank experts/ep experts";
    return false;
  }
  if (s.overlapChunks >= 0 && s.epRanks == 0) {
    error = "overlap=" + str(s.overlapChunks) +
            " pipelines the all-to-alls of expert parallelism: it needs ep=R";
    return false;
  }
  if (s.overlapChunks > 0 && s.tokens % s.overlapChunks != 0) {
    error = "overlap=" + str(s.overlapChunks) +
            " does not divide tokens=" + str(s.tokens) +
            ": every chunk has tokens/overlap tokens";
    return false;
  }
  if (s.nGroup == 0)
    return true;
  if (s.experts % s.nGroup != 0) {
    error = "n_group=" + str(s.nGroup) +
            " does not divide experts=" + str(s.experts) +
            ": n_group must divide experts";
    return false;
  }
  if (s.topkGroup > s.nGroup) {
    error = "topk_group=" + str(s.topkGroup) +
            " exceeds n_group=" + str(s.nGroup) +
            ": topk_group must be <= n_group";
    return false;
  }
  int64_t selectable = s.topkGroup * (s.experts / s.nGroup);
  if (s.topK > selectable) {
    error = "top_k=" + str(s.topK) +
            " exceeds the experts of the kept groups: top_k must be <= "
            "topk_group*experts/n_group = " +
            str(selectable);
    return false;
  }
  return true;
}

std::string layerPresetNameOf(const LayerSpec &spec) {
  for (const Preset &p : presets())
    if (fieldsOf(p.spec) == fieldsOf(spec))
      return p.name;
  return "custom";
}

} // namespace detail

namespace {

std::string formatDouble(double v) {
  char buf[64];
  // Shortest representation that reads back to the same double.
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  return std::string(buf, ptr);
}

} // namespace

std::vector<std::string> layerPresetNames() {
  std::vector<std::string> names;
  for (const Preset &p : presets())
    names.push_back(p.name);
  return names;
}

const char *routerName(Router router) {
  return router == Router::Softmax ? "softmax" : "sigmoid";
}

const char *activationName(Activation activation) {
  return activation == Activation::SiluGlu ? "silu_glu" : "gelu_glu";
}

const char *dtypeName(DType dtype) {
  return dtype == DType::F32 ? "f32" : "bf16";
}

namespace {
using namespace detail;

bool parseImpl(std::string_view text, LayerSpec &out, std::string &error) {
  std::string_view whole = trim(text);
  if (whole.empty()) {
    error = "empty layer spec: give a preset (" +
            joinNames(layerPresetNames()) + ") or key=value items (" +
            joinNames(kKeys) + ")";
    return false;
  }

  std::vector<std::string_view> items;
  if (!splitItems(whole, "layer spec", items, error))
    return false;

  LayerSpec spec;
  bool fromPreset = false;
  SeenKeys seen;
  auto onPreset = [&](std::string_view name, std::string &error) {
    for (const Preset &p : presets())
      if (name == p.name) {
        spec = p.spec;
        return true;
      }
    error = "unknown preset " + quoted(name) + ": presets are " +
            joinNames(layerPresetNames());
    return false;
  };
  auto acceptKey = [](std::string_view key, std::string &error) {
    if (isLayerKey(key))
      return true;
    error =
        "unknown key " + quoted(key) + ": valid keys are " + joinNames(kKeys);
    return false;
  };
  auto setKey = [&](std::string_view key, std::string_view value,
                    std::string &error) {
    return setLayerKey(spec, key, value, error);
  };
  if (!walkSpecItems(items, joinNames(kKeys), onPreset, acceptKey, setKey,
                     seen, fromPreset, error))
    return false;

  if (!fromPreset) {
    std::vector<std::string> missing;
    for (const char *k : kRequiredKeys)
      if (!seen.count(k))
        missing.push_back(k);
    if (!missing.empty()) {
      error = "missing required key" +
              std::string(missing.size() > 1 ? "s " : " ") +
              joinNames(missing) +
              ": without a preset, tokens, hidden, ffn, experts and top_k "
              "are all required";
      return false;
    }
  }

  if (!validateLayer(spec, error))
    return false;

  // The name follows the fields, so it survives formatting and re-parsing.
  spec.name = layerPresetNameOf(spec);
  out = std::move(spec);
  error.clear();
  return true;
}
} // namespace

bool parseLayerSpec(std::string_view text, LayerSpec &out, std::string &error) {
  if (parseImpl(text, out, error))
    return true;
  // Messages quote user text; keep them one line even if it had controls.
  makeOneLine(error);
  return false;
}

std::string formatLayerSpec(const LayerSpec &s) {
  auto str = [](int64_t v) { return std::to_string(v); };
  std::string out;
  out += "tokens=" + str(s.tokens);
  out += ",hidden=" + str(s.hidden);
  out += ",ffn=" + str(s.ffn);
  out += ",experts=" + str(s.experts);
  out += ",top_k=" + str(s.topK);
  out += std::string(",router=") + routerName(s.router);
  out += std::string(",bias=") + (s.bias ? "1" : "0");
  out += ",capacity=" + formatDouble(s.capacity);
  out += std::string(",normalize=") + (s.normalize ? "1" : "0");
  out += ",scaling=" + formatDouble(s.scaling);
  out += std::string(",activation=") + activationName(s.activation);
  out += std::string(",dtype=") + dtypeName(s.dtype);
  out += std::string(",dynamic=") + (s.dynamicTokens ? "1" : "0");
  out += ",n_group=" + str(s.nGroup);
  out += ",topk_group=" + str(s.topkGroup);
  // Only when on, so that every forward spec keeps its text.
  if (s.auxLoss > 0.0)
    out += ",aux_loss=" + formatDouble(s.auxLoss);
  if (s.epRanks > 0)
    out += ",ep=" + str(s.epRanks);
  if (s.overlapChunks >= 0)
    out += ",overlap=" + str(s.overlapChunks);
  return out;
}

double forwardFlops(const LayerSpec &s) {
  // Per (token, slot) assignment: h = x*w1 is 2*H*2F, o = a*w2 is 2*F*H.
  // The router GEMM is deliberately left out to match the baselines.
  return 2.0 * static_cast<double>(s.tokens) * static_cast<double>(s.topK) *
         static_cast<double>(s.hidden) * 3.0 * static_cast<double>(s.ffn);
}

} // namespace moe::layer
