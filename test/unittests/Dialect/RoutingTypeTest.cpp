//===- RoutingTypeTest.cpp - Tests of !moe.routing ------------------------===//

#include "dialects/moe/IR/MoeDialect.h"
#include "dialects/moe/IR/MoeTypes.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/MLIRContext.h"
#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::moe;

namespace {

TEST(RoutingType, ParsePrintRoundTrip) {
  MLIRContext context;
  context.loadDialect<MoeDialect>();
  Type type =
      parseType("!moe.routing<tokens = ?, experts = 8, top_k = 2>", &context);
  auto routing = dyn_cast_or_null<RoutingType>(type);
  ASSERT_TRUE(routing);
  EXPECT_FALSE(routing.hasStaticTokens());
  EXPECT_EQ(routing.getExperts(), 8);
  EXPECT_EQ(routing.getTopK(), 2);
  EXPECT_TRUE(ShapedType::isDynamic(routing.getDispatchedRows()));

  std::string printed;
  llvm::raw_string_ostream os(printed);
  type.print(os);
  EXPECT_EQ(printed, "!moe.routing<tokens = ?, experts = 8, top_k = 2>");
}

TEST(RoutingType, StaticRows) {
  MLIRContext context;
  context.loadDialect<MoeDialect>();
  auto routing = RoutingType::get(&context, 16, 4, 2);
  EXPECT_TRUE(routing.hasStaticTokens());
  EXPECT_EQ(routing.getDispatchedRows(), 32);
}

TEST(RoutingType, RejectsTopKBeyondExperts) {
  MLIRContext context;
  context.loadDialect<MoeDialect>();
  context.allowUnregisteredDialects(false);
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  Type type =
      parseType("!moe.routing<tokens = 4, experts = 2, top_k = 3>", &context);
  EXPECT_FALSE(type);
  EXPECT_NE(message.find("routing top_k (3)"), std::string::npos) << message;
}

} // namespace
