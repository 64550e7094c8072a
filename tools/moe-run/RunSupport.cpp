//===- RunSupport.cpp - Inputs, checks and statistics for moe-run ---------===//

#include "tools/moe-run/RunSupport.h"

#include "lib/Reference/NaiveBlock.h"
#include "lib/Reference/NaiveMoe.h"
#include "lib/Reference/NaiveMoeBackward.h"
#include "lib/Reference/Numerics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>

using namespace moe::run;

FunctionSpec moe::run::describeFunction(const moert_function *function) {
  FunctionSpec spec;
  spec.name = moert_function_name(function);
  auto read = [&](int count, bool results, std::vector<ValueSpec> &out) {
    for (int i = 0; i < count; ++i) {
      ValueSpec value;
      int rank = 0;
      int64_t dims[MOERT_MAX_RANK];
      if (results)
        moert_function_result_spec(function, i, &value.dtype, &rank, dims);
      else
        moert_function_arg_spec(function, i, &value.dtype, &rank, dims);
      value.dims.assign(dims, dims + rank);
      out.push_back(value);
    }
  };
  read(moert_function_num_args(function), false, spec.args);
  read(moert_function_num_results(function), true, spec.results);
  return spec;
}

std::string moe::run::formatSpec(const ValueSpec &spec) {
  std::string text = std::string(moert_dtype_name(spec.dtype)) + "[";
  for (size_t i = 0; i < spec.dims.size(); ++i) {
    if (i)
      text += ", ";
    text += spec.dims[i] == MOERT_DYNAMIC ? "?" : std::to_string(spec.dims[i]);
  }
  return text + "]";
}

std::string moe::run::formatShape(const moert_tensor *tensor) {
  ValueSpec spec;
  spec.dtype = moert_tensor_dtype(tensor);
  const int64_t *dims = moert_tensor_dims(tensor);
  spec.dims.assign(dims, dims + moert_tensor_rank(tensor));
  return formatSpec(spec);
}

std::optional<LayerInfo>
moe::run::readLayerInfo(const moert_function *function) {
  auto get = [&](const char *key) -> const char * {
    return moert_function_attr(function, key);
  };
  if (!get("layer.router"))
    return std::nullopt;
  auto integer = [&](const char *key) -> int64_t {
    const char *value = get(key);
    return value ? std::strtoll(value, nullptr, 10) : -1;
  };
  auto real = [&](const char *key, double fallback) {
    const char *value = get(key);
    return value ? std::strtod(value, nullptr) : fallback;
  };
  LayerInfo info;
  info.router = get("layer.router");
  info.activation = get("layer.activation") ? get("layer.activation") : "";
  info.topK = integer("layer.top_k");
  info.nGroup = integer("layer.n_group");
  info.topkGroup = integer("layer.topk_group");
  info.normalize = integer("layer.normalize") != 0;
  info.scaling = real("layer.scaling", 1.0);
  info.capacity = real("layer.capacity", 0.0);
  info.x = integer("layer.x");
  info.wGate = integer("layer.w_gate");
  info.w1 = integer("layer.w1");
  info.w2 = integer("layer.w2");
  info.bias = integer("layer.bias");
  info.y = integer("layer.y");
  info.indices = integer("layer.indices");
  if (get("layer.ep_ranks")) {
    info.epRanks = integer("layer.ep_ranks");
    info.experts = integer("layer.experts");
    if (info.epRanks < 1 || info.experts < 1 || info.experts % info.epRanks)
      return std::nullopt;
  }
  if (info.x < 0 || info.wGate < 0 || info.w1 < 0 || info.w2 < 0 ||
      info.y < 0 || info.topK < 1)
    return std::nullopt;
  if (integer("layer.backward") == 1) {
    info.backward = true;
    info.auxLoss = real("layer.aux_loss", 0.0);
    info.dy = integer("layer.dy");
    info.dx = integer("layer.dx");
    info.dwGate = integer("layer.dw_gate");
    info.dw1 = integer("layer.dw1");
    info.dw2 = integer("layer.dw2");
    info.aux = integer("layer.aux");
    info.loads = integer("layer.loads");
    if (info.dy < 0 || info.dx < 0 || info.dwGate < 0 || info.dw1 < 0 ||
        info.dw2 < 0 || info.loads < 0)
      info.backward = false;
  }
  return info;
}

double moe::run::inputScale(const FunctionSpec &spec, const LayerInfo *layer,
                            int arg) {
  const std::vector<int64_t> &dims = spec.args[arg].dims;
  if (layer) {
    // x ~ N(0,1); each weight scaled by its fan-in so every product sum,
    // and so y, stays of order 1.
    if (arg == layer->wGate || arg == layer->w1)
      return 1.0 / std::sqrt(static_cast<double>(dims[dims.size() - 2]));
    if (arg == layer->w2)
      return 1.0 / std::sqrt(static_cast<double>(dims[dims.size() - 2]));
    if (arg == layer->bias)
      return 0.1;
    return 1.0;
  }
  if (dims.size() >= 2 && dims[dims.size() - 2] > 0)
    return 1.0 / std::sqrt(static_cast<double>(dims[dims.size() - 2]));
  return 1.0;
}

static void storeFloats(moert_tensor *tensor, const std::vector<float> &values) {
  void *data = moert_tensor_data(tensor);
  switch (moert_tensor_dtype(tensor)) {
  case MOERT_F32:
    std::memcpy(data, values.data(), values.size() * sizeof(float));
    break;
  case MOERT_BF16:
    for (size_t i = 0; i < values.size(); ++i)
      static_cast<uint16_t *>(data)[i] = moert_f32_to_bf16(values[i]);
    break;
  case MOERT_F16:
    for (size_t i = 0; i < values.size(); ++i)
      static_cast<uint16_t *>(data)[i] = moert_f32_to_f16(values[i]);
    break;
  default:
    break;
  }
}

Tensor moe::run::makeRandomInput(const ValueSpec &spec, int64_t dynamicExtent,
                                 uint64_t seed, double stddev,
                                 std::string &error) {
  std::vector<int64_t> dims = spec.dims;
  for (int64_t &d : dims)
    if (d == MOERT_DYNAMIC)
      d = dynamicExtent;
  Tensor tensor(moert_tensor_create(spec.dtype, static_cast<int>(dims.size()),
                                    dims.data()));
  if (!tensor) {
    error = moert_last_error();
    return nullptr;
  }
  int64_t n = moert_tensor_num_elements(tensor.get());
  if (spec.dtype == MOERT_I32 || spec.dtype == MOERT_I64) {
    std::mt19937_64 rng(seed);
    for (int64_t i = 0; i < n; ++i) {
      int64_t v = static_cast<int64_t>(rng() % 4);
      if (spec.dtype == MOERT_I32)
        static_cast<int32_t *>(moert_tensor_data(tensor.get()))[i] = v;
      else
        static_cast<int64_t *>(moert_tensor_data(tensor.get()))[i] = v;
    }
    return tensor;
  }
  std::vector<float> values(n);
  moe::reference::fillNormal(values, seed, stddev);
  storeFloats(tensor.get(), values);
  return tensor;
}

Tensor moe::run::readInput(const std::string &dir, int index,
                           const ValueSpec &spec, std::string &error) {
  std::string path = dir + "/arg" + std::to_string(index) + ".npy";
  moert_tensor *raw = nullptr;
  if (moert_tensor_load_npy(path.c_str(), spec.dtype, &raw) != 0) {
    error = moert_last_error();
    return nullptr;
  }
  Tensor tensor(raw);
  int rank = moert_tensor_rank(raw);
  bool fits = rank == static_cast<int>(spec.dims.size());
  for (int d = 0; fits && d < rank; ++d)
    fits = spec.dims[d] == MOERT_DYNAMIC || spec.dims[d] == moert_tensor_dims(raw)[d];
  if (!fits) {
    error = path + ": shape " + formatShape(raw) + " does not fit argument " +
            std::to_string(index) + " of type " + formatSpec(spec);
    return nullptr;
  }
  return tensor;
}

std::vector<float> moe::run::toFloats(moert_tensor *tensor) {
  int64_t n = moert_tensor_num_elements(tensor);
  std::vector<float> values(n);
  const void *data = moert_tensor_data(tensor);
  for (int64_t i = 0; i < n; ++i) {
    switch (moert_tensor_dtype(tensor)) {
    case MOERT_F32:
      values[i] = static_cast<const float *>(data)[i];
      break;
    case MOERT_BF16:
      values[i] = moert_bf16_to_f32(static_cast<const uint16_t *>(data)[i]);
      break;
    case MOERT_F16:
      values[i] = moert_f16_to_f32(static_cast<const uint16_t *>(data)[i]);
      break;
    case MOERT_I32:
      values[i] = static_cast<float>(static_cast<const int32_t *>(data)[i]);
      break;
    case MOERT_I64:
      values[i] = static_cast<float>(static_cast<const int64_t *>(data)[i]);
      break;
    }
  }
  return values;
}

RoutingStats moe::run::routingStats(const LayerInfo &layer,
                                    moert_tensor *indices, int64_t experts) {
  RoutingStats stats;
  stats.experts = experts;
  std::vector<int64_t> load(experts, 0);
  int64_t n = moert_tensor_num_elements(indices);
  const int32_t *idx = static_cast<const int32_t *>(moert_tensor_data(indices));
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] >= 0 && idx[i] < experts)
      ++load[idx[i]];
  stats.assignments = n;
  int64_t tokens = moert_tensor_dims(indices)[0];
  int64_t capacity =
      layer.capacity > 0
          ? moe::reference::expertCapacity(layer.capacity, tokens, layer.topK,
                                           experts)
          : n;
  stats.minLoad = *std::min_element(load.begin(), load.end());
  stats.maxLoad = *std::max_element(load.begin(), load.end());
  stats.meanLoad = static_cast<double>(n) / experts;
  for (int64_t l : load) {
    stats.dropped += std::max<int64_t>(0, l - capacity);
    stats.emptyExperts += l == 0;
  }
  return stats;
}

static double toleranceFor(moert_dtype dtype, bool backward = false) {
  if (backward && dtype == MOERT_BF16)
    return 3e-2;
  switch (dtype) {
  case MOERT_BF16:
    return 2e-2;
  case MOERT_F16:
    return 1e-2;
  default:
    return 1e-4;
  }
}

static std::string formatDouble(const char *format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

/// After near ties only, `rerun` recomputes the reference under the
/// program's routing, so that y is still checked for every token; a routing
/// the reference refuses makes the ties decisive (a check never ends in an
/// exception).
template <typename Rerun>
static void rerunUnderNearTies(moe::reference::RoutingDifference &diff,
                               Rerun &&rerun) {
  if (diff.slots == 0 || diff.decisive != 0)
    return;
  try {
    rerun();
  } catch (const std::invalid_argument &) {
    diff.decisive = diff.tokens;
  }
}

/// "result I (indices): N of M differ from the reference ...": OK, near
/// ties within `tolerance`, or FAILED with `failureDetail` before it.
static std::string indicesLine(int index,
                               const moe::reference::RoutingDifference &diff,
                               size_t slots, double tolerance,
                               const std::string &failureDetail) {
  std::string line = "result " + std::to_string(index) +
                     " (indices): " + std::to_string(diff.slots) + " of " +
                     std::to_string(slots) + " differ from the reference";
  if (diff.slots == 0)
    return line + " OK";
  if (diff.decisive == 0)
    return line + ", in " + std::to_string(diff.tokens) +
           " tokens, each a near tie (the experts' keys within " +
           formatDouble("%g", tolerance) +
           "): y is compared with the reference under these indices OK";
  return line + failureDetail + " FAILED";
}

static moe::reference::RouterConfig routerConfigOf(const LayerInfo &layer) {
  moe::reference::RouterConfig config;
  config.sigmoid = layer.router == "sigmoid";
  config.topK = layer.topK;
  config.normalize = layer.normalize;
  config.scaling = layer.scaling;
  config.capacityFactor = layer.capacity;
  config.nGroup = std::max<int64_t>(0, layer.nGroup);
  config.topkGroup = std::max<int64_t>(0, layer.topkGroup);
  config.geluGlu = layer.activation == "gelu_glu";
  return config;
}

static std::string errorText(double error) {
  return std::isnan(error) ? std::string("NaN") : formatDouble("%.3g", error);
}

std::optional<CheckOutcome> moe::run::checkBackwardAgainstReference(
    const LayerInfo &layer, const std::vector<Tensor> &args,
    const std::vector<Tensor> &results, std::string &why,
    const RanksOfLayer *ranks) {
  moert_tensor *x = args[layer.x].get();
  moert_tensor *w1 = args[layer.w1].get();
  moe::reference::TrainingConfig config;
  config.router = routerConfigOf(layer);
  config.T = moert_tensor_dims(x)[0];
  config.H = moert_tensor_dims(x)[1];
  config.E = moert_tensor_dims(w1)[0];
  config.F = moert_tensor_dims(w1)[2] / 2;
  config.auxLossCoef = layer.auxLoss;
  // The reference sees exactly the values the program saw (bf16 widened).
  std::vector<float> xs = toFloats(x), wg = toFloats(args[layer.wGate].get()),
                     w1s = toFloats(w1), w2s = toFloats(args[layer.w2].get()),
                     dys = toFloats(args[layer.dy].get());
  std::vector<float> bias;
  if (layer.bias >= 0)
    bias = toFloats(args[layer.bias].get());
  // The reference backward on one rank's x and dy (the rank's own, or a
  // peer's under expert parallelism); false and `why` if it cannot run.
  auto runReference = [&](const float *x, const float *dy,
                          moe::reference::Gradients &out) {
    try {
      out = moe::reference::runMoeBackwardF32(
          config, x, wg.data(), w1s.data(), w2s.data(),
          bias.empty() ? nullptr : bias.data(), dy);
      return true;
    } catch (const std::invalid_argument &e) {
      why = std::string("the reference backward cannot run this layer: ") +
            e.what();
      return false;
    }
  };
  moe::reference::Gradients ref;
  if (!runReference(xs.data(), dys.data(), ref))
    return std::nullopt;

  // Expert parallelism: a rank's dw1 and dw2 are those of its experts over
  // every rank's tokens (each rank's group is its own layer: capacity is
  // per rank).
  if (ranks && ranks->ranks > 1) {
    std::vector<int64_t> groupLoads(ref.loads.begin(), ref.loads.end());
    for (int64_t peer = 0; peer < ranks->ranks; ++peer) {
      if (peer == ranks->rank)
        continue;
      moe::reference::Gradients other;
      if (!runReference(ranks->xs[peer].data(), ranks->dys[peer].data(),
                        other))
        return std::nullopt;
      for (size_t i = 0; i < ref.dw1.size(); ++i)
        ref.dw1[i] += other.dw1[i];
      for (size_t i = 0; i < ref.dw2.size(); ++i)
        ref.dw2[i] += other.dw2[i];
      for (size_t e = 0; e < groupLoads.size(); ++e)
        groupLoads[e] += other.loads[e];
    }
    // The aux loss counts the group's loads: the rank's router gradients
    // and aux again, with them (dw1 and dw2 do not depend on it).
    if (config.auxLossCoef > 0) {
      config.groupLoads = groupLoads;
      config.groupRanks = ranks->ranks;
      moe::reference::Gradients withGroup;
      if (!runReference(xs.data(), dys.data(), withGroup))
        return std::nullopt;
      ref.dx = withGroup.dx;
      ref.dwGate = withGroup.dwGate;
      ref.aux = withGroup.aux;
    }
  }
  if (ranks) {
    auto shard = [&](std::vector<double> &whole) {
      size_t per = whole.size() / static_cast<size_t>(ranks->ranks);
      whole = std::vector<double>(
          whole.begin() + per * static_cast<size_t>(ranks->rank),
          whole.begin() + per * static_cast<size_t>(ranks->rank + 1));
    };
    shard(ref.dw1);
    shard(ref.dw2);
  }

  CheckOutcome outcome;
  auto compare = [&](int index, const char *name,
                     const std::vector<double> &expected) {
    moert_tensor *out = results[index].get();
    std::vector<float> got = toFloats(out);
    std::vector<float> want(expected.begin(), expected.end());
    if (got.size() != want.size()) {
      outcome.passed = false;
      outcome.lines.push_back("result " + std::to_string(index) + " (" +
                              name + "): " + std::to_string(got.size()) +
                              " elements, the reference has " +
                              std::to_string(want.size()) + " FAILED");
      return;
    }
    moe::reference::Comparison c = moe::reference::compareWithReference(
        got.data(), want.data(), static_cast<int64_t>(got.size()));
    double tolerance = toleranceFor(moert_tensor_dtype(out), true);
    bool ok = c.relativeError <= tolerance && c.nonFiniteMismatches == 0;
    outcome.passed &= ok;
    std::string line = "result " + std::to_string(index) + " (" + name +
                       "): relative error " + errorText(c.relativeError) +
                       " (tolerance " + formatDouble("%g", tolerance) + ")";
    if (c.nonFiniteMismatches > 0)
      line += "; " + std::to_string(c.nonFiniteMismatches) +
              " elements are NaN or infinite where the reference differs";
    outcome.lines.push_back(line + (ok ? " OK" : " FAILED"));
  };
  auto compareInts = [&](int index, const char *name,
                         const std::vector<int32_t> &expected) {
    moert_tensor *out = results[index].get();
    const int32_t *values =
        static_cast<const int32_t *>(moert_tensor_data(out));
    int64_t n = moert_tensor_num_elements(out), mismatches = 0;
    for (int64_t i = 0; i < n; ++i)
      mismatches += i >= static_cast<int64_t>(expected.size()) ||
                    values[i] != expected[i];
    bool same = mismatches == 0 && n == static_cast<int64_t>(expected.size());
    outcome.passed &= same;
    outcome.lines.push_back("result " + std::to_string(index) + " (" + name +
                            "): " + std::to_string(mismatches) + " of " +
                            std::to_string(n) + " differ from the reference " +
                            (same ? "OK" : "FAILED"));
  };
  compare(layer.y, "y", ref.y);
  if (layer.indices >= 0)
    compareInts(layer.indices, "indices", ref.indices);
  compare(layer.dx, "dx", ref.dx);
  compare(layer.dwGate, "dw_gate", ref.dwGate);
  compare(layer.dw1, "dw1", ref.dw1);
  compare(layer.dw2, "dw2", ref.dw2);
  if (layer.aux >= 0) {
    float got = toFloats(results[layer.aux].get())[0];
    double error = std::fabs(got - ref.aux) / std::max(std::fabs(ref.aux), 1e-30);
    double tolerance = toleranceFor(moert_tensor_dtype(x), true);
    bool ok = error <= tolerance;
    outcome.passed &= ok;
    outcome.lines.push_back(
        "result " + std::to_string(layer.aux) + " (aux_loss): " +
        formatDouble("%.6g", got) + ", reference " +
        formatDouble("%.6g", ref.aux) + ", relative error " +
        errorText(error) + " (tolerance " + formatDouble("%g", tolerance) +
        ") " + (ok ? "OK" : "FAILED"));
  }
  compareInts(layer.loads, "loads", ref.loads);
  return outcome;
}

std::optional<CheckOutcome>
moe::run::checkAgainstReference(const LayerInfo &layer,
                                const std::vector<Tensor> &args,
                                const std::vector<Tensor> &results,
                                std::string &why) {
  moert_tensor *x = args[layer.x].get();
  moert_tensor *w1 = args[layer.w1].get();
  int64_t T = moert_tensor_dims(x)[0], H = moert_tensor_dims(x)[1];
  int64_t E = moert_tensor_dims(w1)[0], F = moert_tensor_dims(w1)[2] / 2;

  moe::reference::RouterConfig config = routerConfigOf(layer);

  // The reference sees exactly the values the program saw (bf16 widened).
  std::vector<float> xs = toFloats(x), wg = toFloats(args[layer.wGate].get()),
                     w1s = toFloats(w1), w2s = toFloats(args[layer.w2].get());
  std::vector<float> bias;
  if (layer.bias >= 0)
    bias = toFloats(args[layer.bias].get());
  moe::reference::Result ref;
  try {
    ref = moe::reference::runMoeLayer(config, T, H, F, E, xs.data(), wg.data(),
                                      w1s.data(), w2s.data(),
                                      bias.empty() ? nullptr : bias.data());
  } catch (const std::invalid_argument &e) {
    why = std::string("the reference cannot run this layer: ") + e.what();
    return std::nullopt;
  }

  // The router's scores are f32 sums over H in every backend, in another
  // order on a GPU's tensor cores than in the reference: a token whose
  // experts' keys agree to that precision can take the other side of the
  // tie, which thousands of tokens make likely. Such a choice is accepted
  // (layerRoutingDifference), reported, and y then compared with the
  // reference under the program's routing; any other difference fails.
  moe::reference::RoutingDifference diff;
  std::string routingLine;
  if (layer.indices >= 0) {
    moert_tensor *indices = results[layer.indices].get();
    const int32_t *idx =
        static_cast<const int32_t *>(moert_tensor_data(indices));
    std::vector<int32_t> got(idx, idx + moert_tensor_num_elements(indices));
    diff = moe::reference::layerRoutingDifference(config, got, ref, T,
                                                  layer.topK, E);
    rerunUnderNearTies(diff, [&] {
      ref = moe::reference::runMoeLayerRouted(
          config, T, H, F, E, xs.data(), wg.data(), w1s.data(), w2s.data(),
          bias.empty() ? nullptr : bias.data(), got.data());
    });
    routingLine = indicesLine(layer.indices, diff, got.size(),
                              moe::reference::kScoreOrderTolerance, "");
  }

  CheckOutcome outcome;
  moert_tensor *y = results[layer.y].get();
  std::vector<float> ys = toFloats(y);
  moe::reference::Comparison c = moe::reference::compareWithReference(
      ys.data(), ref.y.data(), static_cast<int64_t>(ys.size()));
  double tolerance = toleranceFor(moert_tensor_dtype(y));
  bool ok = c.relativeError <= tolerance && c.nonFiniteMismatches == 0;
  outcome.passed &= ok;
  std::string line = "result " + std::to_string(layer.y) +
                     " (y): relative error " +
                     formatDouble("%.3g", c.relativeError) + " (tolerance " +
                     formatDouble("%g", tolerance) + ")";
  // Overflowing inputs make the reference NaN or infinite too: such elements
  // must match exactly, and the message says so instead of "error NaN".
  if (c.nonFiniteInReference > 0)
    line += "; the reference is NaN or infinite at " +
            std::to_string(c.nonFiniteInReference) + " of " +
            std::to_string(ys.size()) + " elements";
  if (c.nonFiniteMismatches > 0)
    line += "; " + std::to_string(c.nonFiniteMismatches) +
            " elements are NaN or infinite where the reference differs";
  outcome.lines.push_back(line + (ok ? " OK" : " FAILED"));
  if (layer.indices >= 0) {
    outcome.passed &= diff.decisive == 0;
    outcome.lines.push_back(routingLine);
  }
  return outcome;
}

/// One compared result as a line of the outcome, y's way.
static void compareResult(CheckOutcome &outcome, int index,
                          const std::string &name, moert_tensor *result,
                          const std::vector<float> &reference) {
  std::vector<float> values = toFloats(result);
  moe::reference::Comparison c = moe::reference::compareWithReference(
      values.data(), reference.data(), static_cast<int64_t>(values.size()));
  double tolerance = toleranceFor(moert_tensor_dtype(result));
  bool ok = c.relativeError <= tolerance && c.nonFiniteMismatches == 0;
  outcome.passed &= ok;
  outcome.lines.push_back("result " + std::to_string(index) + " (" + name +
                          "): relative error " + errorText(c.relativeError) +
                          " (tolerance " + formatDouble("%g", tolerance) +
                          ")" + (ok ? " OK" : " FAILED"));
}

std::optional<CheckOutcome> moe::run::checkBlockAgainstReference(
    const moe::layer::BlockSpec &spec, const std::vector<Tensor> &args,
    const std::vector<Tensor> &results, std::string &why) {
  const moe::layer::LayerSpec &layer = spec.moe;
  moe::reference::RouterConfig config;
  config.sigmoid = std::string(moe::layer::routerName(layer.router)) == "sigmoid";
  config.topK = layer.topK;
  config.normalize = layer.normalize;
  config.scaling = layer.scaling;
  config.capacityFactor = layer.capacity;
  config.nGroup = std::max<int64_t>(0, layer.nGroup);
  config.topkGroup = std::max<int64_t>(0, layer.topkGroup);
  config.geluGlu =
      std::string(moe::layer::activationName(layer.activation)) == "gelu_glu";
  moe::reference::BlockShape shape;
  shape.batch = spec.batch;
  shape.seq = spec.seq;
  shape.hidden = layer.hidden;
  shape.heads = spec.heads;
  shape.kvHeads = spec.kvHeads;
  shape.headDim = spec.headDim;
  shape.ffn = layer.ffn;
  shape.experts = layer.experts;

  // The reference sees exactly the values the program saw (bf16 widened).
  std::vector<std::vector<float>> values;
  for (const Tensor &arg : args)
    values.push_back(toFloats(arg.get()));
  enum { X, G1, WQ, WK, WV, WO, G2, WGATE, W1, W2, BIAS };
  moe::reference::BlockWeights weights;
  weights.g1 = values[G1].data();
  weights.wq = values[WQ].data();
  weights.wk = values[WK].data();
  weights.wv = values[WV].data();
  weights.wo = values[WO].data();
  weights.g2 = values[G2].data();
  weights.wGate = values[WGATE].data();
  weights.w1 = values[W1].data();
  weights.w2 = values[W2].data();
  if (layer.bias)
    weights.bias = values[BIAS].data();
  // A bf16 block stores its normalized rows, attention's output and h in
  // bf16: the reference rounds them alike, so that routing sees the same
  // values up to accumulation order.
  bool bf16 = moert_tensor_dtype(args[X].get()) == MOERT_BF16;
  auto reference = [&](const int32_t *routing) {
    return moe::reference::runBlock(
        config, shape, values[X].data(), weights, /*btaTiles=*/1,
        bf16 ? moe::reference::roundToBf16 : nullptr, routing);
  };
  moe::reference::BlockResult ref;
  try {
    ref = reference(nullptr);
  } catch (const std::invalid_argument &e) {
    why = std::string("the reference cannot run this block: ") + e.what();
    return std::nullopt;
  }
  // Attention sums in another order than the reference, so the router's
  // inputs differ in their last bits, and a token whose experts' keys are
  // that close can take the other side of the tie: those choices are not
  // determined at this precision. Any other difference fails; after near
  // ties only, y is checked against the reference under the program's
  // routing, so that every token's output is still checked.
  moert_tensor *indices = results[1].get();
  const int32_t *idx = static_cast<const int32_t *>(moert_tensor_data(indices));
  std::vector<int32_t> got(idx, idx + moert_tensor_num_elements(indices));
  int64_t T = spec.batch * spec.seq, k = layer.topK;
  double tieTolerance = toleranceFor(moert_tensor_dtype(results[0].get()));
  moe::reference::RoutingDifference diff;
  if (static_cast<int64_t>(got.size()) != T * k) {
    diff.slots = diff.decisive = static_cast<int64_t>(got.size());
  } else {
    diff = moe::reference::routingNearTies(got, ref.moe.indices, ref.moe.keys,
                                           T, k, layer.experts, tieTolerance);
    rerunUnderNearTies(diff, [&] { ref = reference(got.data()); });
  }
  CheckOutcome outcome;
  compareResult(outcome, 0, "y", results[0].get(), ref.y);
  outcome.passed &= diff.decisive == 0;
  std::string line = indicesLine(1, diff, got.size(), tieTolerance,
                                 "; " + std::to_string(diff.decisive) + " of " +
                                     std::to_string(diff.tokens) +
                                     " tokens by more than a near tie");
  outcome.lines.push_back(line);
  return outcome;
}

double moe::run::layerFlops(const LayerInfo &layer,
                            const std::vector<Tensor> &args) {
  moert_tensor *x = args[layer.x].get();
  moert_tensor *w1 = args[layer.w1].get();
  double T = static_cast<double>(moert_tensor_dims(x)[0]);
  double H = static_cast<double>(moert_tensor_dims(x)[1]);
  double F = static_cast<double>(moert_tensor_dims(w1)[2] / 2);
  return 2.0 * T * static_cast<double>(layer.topK) * H * 3.0 * F;
}

static std::string formatBytes(double bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 3) {
    bytes /= 1024.0;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), unit ? "%.2f %s" : "%.0f %s", bytes,
                units[unit]);
  return buffer;
}

std::optional<std::string>
moe::run::describeMemoryPlan(const moert_function *function) {
  const char *peak =
      moert_function_attr(function, "memory.peak_intermediate_bytes");
  if (!peak)
    return std::nullopt;
  std::string text = "memory: planned intermediates peak at " +
                     formatBytes(std::strtod(peak, nullptr)) +
                     " in one arena (buffers by category:";
  if (std::strtoll(peak, nullptr, 10) == 0)
    return std::string("memory: no intermediate buffers");
  const char *categories[] = {"block",       "attention",      "routing",
                              "dispatch",    "activations",    "expert_outputs",
                              "residuals",   "gradients",      "accumulators",
                              "scratch",     "result",         "other"};
  bool any = false;
  for (const char *category : categories) {
    std::string key = std::string("memory.category.") + category;
    if (const char *bytes = moert_function_attr(function, key.c_str())) {
      text += std::string(any ? ", " : " ") + category + " " +
              formatBytes(std::strtod(bytes, nullptr));
      any = true;
    }
  }
  text += any ? ")" : " none)";
  const char *dynamic =
      moert_function_attr(function, "memory.unplanned_dynamic");
  if (dynamic && std::strtoll(dynamic, nullptr, 10) > 0)
    text += std::string("; ") + dynamic +
            " dynamically shaped buffers allocated at run time";
  return text;
}

std::optional<std::string>
moe::run::describeTileChoice(const moert_function *function) {
  const char *tiles = moert_function_attr(function, "bta.tiles");
  const char *batch = moert_function_attr(function, "bta.batch");
  const char *budget = moert_function_attr(function, "bta.budget_bytes");
  const char *untiled = moert_function_attr(function, "bta.untiled_peak_bytes");
  const char *reason = moert_function_attr(function, "bta.reason");
  if (!tiles || !batch || !budget || !untiled || !reason)
    return std::nullopt;
  long long n = std::strtoll(tiles, nullptr, 10);
  long long b = std::strtoll(batch, nullptr, 10);
  return "batch tiling on attention: " + std::string(tiles) +
         (n == 1 ? " tile" : " tiles") + " of " + std::to_string(b / n) +
         (b / n == 1 ? " sequence" : " sequences") + " for a memory budget of " +
         formatBytes(std::strtod(budget, nullptr)) + " (" + reason +
         "; untiled " + formatBytes(std::strtod(untiled, nullptr)) + ")";
}

Tensor moe::run::shardExperts(moert_tensor *whole, int rank, int64_t ranks,
                              std::string &error) {
  int dims = moert_tensor_rank(whole);
  std::vector<int64_t> shape(moert_tensor_dims(whole),
                             moert_tensor_dims(whole) + dims);
  int64_t experts = shape[0];
  shape[0] = experts / ranks;
  Tensor shard(moert_tensor_create(moert_tensor_dtype(whole), dims,
                                   shape.data()));
  if (!shard) {
    error = moert_last_error();
    return nullptr;
  }
  size_t bytes = static_cast<size_t>(moert_tensor_num_elements(shard.get())) *
                 moert_dtype_size(moert_tensor_dtype(whole));
  std::memcpy(moert_tensor_data(shard.get()),
              static_cast<const char *>(moert_tensor_data(whole)) +
                  bytes * static_cast<size_t>(rank),
              bytes);
  return shard;
}
