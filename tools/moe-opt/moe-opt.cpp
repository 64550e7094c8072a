//===- moe-opt.cpp - The MoE-MLIR pass driver -----------------------------===//
//
// Parses, verifies and transforms IR with every dialect and pass of the
// project, like mlir-opt.
//
//===----------------------------------------------------------------------===//

#include "lib/Driver/Driver.h"
#include "moe-mlir/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::moe::installToolErrorHandlers("moe-opt");
  mlir::DialectRegistry registry;
  mlir::moe::registerAllDialects(registry);
  mlir::moe::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "MoE-MLIR optimizer driver\n", registry));
}
