//===- MoeTypes.cpp - Types of the moe dialect ----------------------------===//

#include "dialects/moe/IR/MoeTypes.h"
#include "dialects/moe/IR/MoeDialect.h"
#include "dialects/moe/IR/MoeShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;

#define GET_TYPEDEF_CLASSES
#include "dialects/moe/IR/MoeTypes.cpp.inc"

void MoeDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/moe/IR/MoeTypes.cpp.inc"
      >();
}

int64_t RoutingType::getDispatchedRows() const {
  return dispatchedRows(getTokens(), getTopK());
}

LogicalResult
RoutingType::verify(function_ref<InFlightDiagnostic()> emitError,
                    int64_t tokens, int64_t experts, int64_t topK) {
  if (!ShapedType::isDynamic(tokens) && tokens < 0)
    return emitError() << "routing tokens (" << tokens
                       << ") must be non-negative or '?'";
  if (experts < 1)
    return emitError() << "routing experts (" << experts
                       << ") must be at least 1";
  if (topK < 1 || topK > experts)
    return emitError() << "routing top_k (" << topK
                       << ") must be between 1 and the number of experts ("
                       << experts << ")";
  // The plan's metadata is i32, and every rule of the ops computes T * k.
  if (!ShapedType::isDynamic(tokens)) {
    std::optional<int64_t> assignments = checkedMul(tokens, topK);
    if (!assignments || *assignments > kMaxAssignments)
      return emitError() << "routing tokens (" << tokens << ") times top_k ("
                         << topK
                         << ") exceeds the 2147483647 assignments that the "
                            "i32 routing metadata can index";
  }
  return success();
}

/// Parses `key = value` where value is an integer (or `?` if allowed).
static ParseResult parseKeyedExtent(AsmParser &parser, StringRef key,
                                    int64_t &value, bool allowDynamic) {
  if (parser.parseKeyword(key) || parser.parseEqual())
    return failure();
  if (allowDynamic && succeeded(parser.parseOptionalQuestion())) {
    value = ShapedType::kDynamic;
    return success();
  }
  return parser.parseInteger(value);
}

// !moe.routing<tokens = ?, experts = 8, top_k = 2>
Type RoutingType::parse(AsmParser &parser) {
  int64_t tokens, experts, topK;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parseKeyedExtent(parser, "tokens", tokens, /*allowDynamic=*/true) ||
      parser.parseComma() ||
      parseKeyedExtent(parser, "experts", experts, /*allowDynamic=*/false) ||
      parser.parseComma() ||
      parseKeyedExtent(parser, "top_k", topK, /*allowDynamic=*/false) ||
      parser.parseGreater())
    return {};
  return parser.getChecked<RoutingType>(loc, parser.getContext(), tokens,
                                        experts, topK);
}

void RoutingType::print(AsmPrinter &printer) const {
  printer << "<tokens = ";
  if (ShapedType::isDynamic(getTokens()))
    printer << "?";
  else
    printer << getTokens();
  printer << ", experts = " << getExperts() << ", top_k = " << getTopK()
          << ">";
}
