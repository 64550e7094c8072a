//===- MemoryReport.cpp - The memory plan, as JSON and metadata -----------===//

#include "lib/Target/MemoryReport.h"
#include "lib/Target/OutputStreams.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe;

std::map<std::string, int64_t> MemoryPlan::bytesByCategory() const {
  std::map<std::string, int64_t> sums;
  for (const PlannedBuffer &buffer : buffers)
    sums[buffer.category] += buffer.bytes;
  return sums;
}

static int64_t integerOf(DictionaryAttr dict, StringRef key) {
  auto value = dict.getAs<IntegerAttr>(key);
  return value ? value.getInt() : 0;
}

MemoryPlans mlir::moe::collectMemoryPlans(ModuleOp module) {
  MemoryPlans plans;
  for (auto func : module.getOps<func::FuncOp>()) {
    MemoryPlan &plan = plans[func.getSymName().str()];
    auto attr = func->getAttrOfType<DictionaryAttr>("moe.memory_plan");
    if (!attr)
      continue;
    plan.peakIntermediateBytes = integerOf(attr, "peak_intermediate_bytes");
    for (Attribute entry : attr.getAs<ArrayAttr>("buffers")) {
      auto dict = cast<DictionaryAttr>(entry);
      auto live = dict.getAs<DenseI64ArrayAttr>("live");
      auto inResult = dict.getAs<StringAttr>("in_result");
      plan.buffers.push_back({dict.getAs<StringAttr>("name").str(),
                              dict.getAs<StringAttr>("category").str(),
                              integerOf(dict, "bytes"),
                              integerOf(dict, "offset"), live[0], live[1],
                              inResult ? inResult.str() : std::string()});
    }
    for (Attribute name : attr.getAs<ArrayAttr>("unplanned_dynamic"))
      plan.unplannedDynamic.push_back(cast<StringAttr>(name).str());
  }
  return plans;
}

static llvm::json::Object planToJson(const MemoryPlan &plan) {
  llvm::json::Object byCategory;
  for (const auto &[category, bytes] : plan.bytesByCategory())
    byCategory[category] = bytes;
  llvm::json::Array buffers;
  for (const PlannedBuffer &buffer : plan.buffers) {
    llvm::json::Object entry{
        {"name", buffer.name},
        {"category", buffer.category},
        {"bytes", buffer.bytes},
        {"offset", buffer.offset},
        {"live", llvm::json::Array{buffer.firstUse, buffer.lastUse}}};
    if (!buffer.inResult.empty())
      entry["in_result"] = buffer.inResult;
    buffers.push_back(std::move(entry));
  }
  llvm::json::Array unplanned;
  for (const std::string &name : plan.unplannedDynamic)
    unplanned.push_back(name);
  return llvm::json::Object{
      {"peak_intermediate_bytes", plan.peakIntermediateBytes},
      {"by_category", std::move(byCategory)},
      {"buffers", std::move(buffers)},
      {"unplanned_dynamic", std::move(unplanned)}};
}

/// The "saved" and "recomputed" lists and the budget of a placement.
static void addPlacement(llvm::json::Object &json, DictionaryAttr placement) {
  auto list = [&](StringRef key) {
    llvm::json::Array out;
    for (Attribute a : placement.getAs<ArrayAttr>(key)) {
      auto entry = cast<DictionaryAttr>(a);
      out.push_back(llvm::json::Object{
          {"name", entry.getAs<StringAttr>("name").str()},
          {"bytes", integerOf(entry, "bytes")},
          {"peak_delta_bytes", integerOf(entry, "peak_delta_bytes")},
          {"recompute_ms",
           entry.getAs<FloatAttr>("recompute_ms").getValueAsDouble()}});
    }
    return out;
  };
  json["saved"] = list("saved");
  json["recomputed"] = list("recomputed");
  // What no budget changes: the kernels have no other variant (README).
  json["always_saved"] = llvm::json::Array{"router_weights", "routing_metadata"};
  json["never_formed"] = llvm::json::Array{"dispatched_tokens", "expert_outputs"};
  json["always_recomputed"] = llvm::json::Array{"activations"};
  llvm::json::Object budget;
  for (StringRef key : {"budget_bytes", "save_all_peak_bytes",
                        "least_peak_bytes", "planned_peak_bytes"})
    budget[key] = integerOf(placement, key);
  budget["predicted_ms"] =
      placement.getAs<FloatAttr>("predicted_ms").getValueAsDouble();
  budget["device"] = placement.getAs<StringAttr>("device").str();
  json["recomputation"] = std::move(budget);
}

/// moe-batch-tile-attention's choice under a budget: the tiles (and the
/// MoE's row slices), why, and every candidate's planned peak and predicted
/// time.
static void addTileChoice(llvm::json::Object &json, DictionaryAttr bta) {
  llvm::json::Array candidates;
  for (Attribute a : bta.getAs<ArrayAttr>("candidates")) {
    auto entry = cast<DictionaryAttr>(a);
    candidates.push_back(llvm::json::Object{
        {"tiles", integerOf(entry, "tiles")},
        {"row_slices", integerOf(entry, "row_slices")},
        {"peak_intermediate_bytes",
         integerOf(entry, "peak_intermediate_bytes")},
        {"predicted_ms",
         entry.getAs<FloatAttr>("predicted_ms").getValueAsDouble()},
        {"fits", entry.getAs<BoolAttr>("fits").getValue()}});
  }
  llvm::json::Object out;
  for (StringRef key : {"tiles", "row_slices", "batch", "budget_bytes",
                        "untiled_peak_bytes", "least_peak_bytes",
                        "planned_peak_bytes"})
    out[key] = integerOf(bta, key);
  out["reason"] = bta.getAs<StringAttr>("reason").str();
  out["predicted_ms"] = bta.getAs<FloatAttr>("predicted_ms").getValueAsDouble();
  out["device"] = bta.getAs<StringAttr>("device").str();
  out["candidates"] = std::move(candidates);
  json["bta"] = std::move(out);
}

/// What the passes that fit a function under a budget decided, if any.
static void addBudgetDecisions(llvm::json::Object &json, func::FuncOp func) {
  if (auto placement = func->getAttrOfType<DictionaryAttr>("moe.recomputation"))
    addPlacement(json, placement);
  if (auto bta = func->getAttrOfType<DictionaryAttr>("moe.bta"))
    addTileChoice(json, bta);
}

LogicalResult mlir::moe::writeMemoryReport(ModuleOp module, const MemoryPlans &plans,
                                     StringRef path) {
  llvm::json::Object functions;
  for (const auto &[name, plan] : plans)
    functions[name] = planToJson(plan);
  // The budget passes' decisions, where they ran.
  for (auto func : module.getOps<func::FuncOp>())
    if (llvm::json::Object *entry =
            functions.getObject(func.getSymName().str()))
      addBudgetDecisions(*entry, func);
  // The top level repeats the first public function's plan, so that a
  // one-layer program reads as {"peak_intermediate_bytes": ...}.
  llvm::json::Object root;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isPrivate() || func.isExternal())
      continue;
    root = planToJson(plans.at(func.getSymName().str()));
    addBudgetDecisions(root, func);
    root["function"] = func.getSymName().str();
    break;
  }
  root["functions"] = std::move(functions);

  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return module.emitError() << "cannot write the memory report '" << path
                              << "': " << ec.message();
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return finishOutput(module, os, "the memory report '" + path.str() + "'");
}

std::string mlir::moe::addFunctionAttrsToMetadata(
    StringRef metadata, llvm::function_ref<std::string(StringRef)> attrsOf) {
  std::string out;
  llvm::raw_string_ostream os(out);
  std::string current;
  SmallVector<StringRef> lines;
  metadata.split(lines, '\n');
  for (StringRef line : lines) {
    if (line.starts_with("function "))
      current = line.drop_front(9).split(' ').first.str();
    if (line == "end")
      os << attrsOf(current);
    if (!line.empty())
      os << line << "\n";
  }
  return out;
}

std::string mlir::moe::addMemoryPlansToMetadata(StringRef metadata,
                                          const MemoryPlans &plans) {
  return addFunctionAttrsToMetadata(metadata, [&](StringRef function) {
    std::string attrs;
    auto it = plans.find(function.str());
    if (it == plans.end())
      return attrs;
    llvm::raw_string_ostream os(attrs);
    const MemoryPlan &plan = it->second;
    os << "attr memory.peak_intermediate_bytes " << plan.peakIntermediateBytes
       << "\n";
    for (const auto &[category, bytes] : plan.bytesByCategory())
      os << "attr memory.category." << category << " " << bytes << "\n";
    os << "attr memory.unplanned_dynamic " << plan.unplannedDynamic.size()
       << "\n";
    return attrs;
  });
}

std::string
mlir::moe::addCostsToMetadata(StringRef metadata, ArrayRef<FunctionCost> costs,
                        const ::moe::cost::DeviceDescription &device) {
  return addFunctionAttrsToMetadata(metadata, [&](StringRef function) {
    std::string attrs;
    llvm::raw_string_ostream os(attrs);
    for (const FunctionCost &cost : costs) {
      if (cost.function != function)
        continue;
      os << "attr cost.device " << device.id << "\n";
      os << "attr cost.predicted_ms " << llvm::formatv("{0:f4}", cost.totalMs)
         << "\n";
      for (const auto &[name, ms] : cost.msByName())
        os << "attr cost.kernel." << name << " " << llvm::formatv("{0:f4}", ms)
           << "\n";
    }
    return attrs;
  });
}
