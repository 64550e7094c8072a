//===- EntryPoints.cpp - Uniform entry points of an artifact --------------===//
//
// The C interface MLIR generates has one pointer parameter per memref, so
// its arity differs per function. The runtime instead calls every function
// the same way, with an array of descriptor pointers and one results buffer;
// the wrappers made here bridge the two.
//
//===----------------------------------------------------------------------===//

#include "lib/Target/EntryPoints.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::moe;

SmallVector<EntrySignature> moe::collectEntrySignatures(ModuleOp module) {
  SmallVector<EntrySignature> entries;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isPrivate() || func.isExternal())
      continue;
    entries.push_back({func.getSymName().str(), func.getNumArguments(),
                       func.getNumResults()});
  }
  return entries;
}

static LLVM::LLVMFuncOp getOrDeclareFree(OpBuilder &b, ModuleOp module) {
  if (auto existing = module.lookupSymbol<LLVM::LLVMFuncOp>("free"))
    return existing;
  auto ptr = LLVM::LLVMPointerType::get(b.getContext());
  auto type = LLVM::LLVMFunctionType::get(
      LLVM::LLVMVoidType::get(b.getContext()), {ptr});
  return LLVM::LLVMFuncOp::create(b, module.getLoc(), "free", type);
}

LogicalResult moe::addArtifactEntryPoints(ModuleOp module,
                                          ArrayRef<EntrySignature> entries,
                                          StringRef metadata) {
  MLIRContext *context = module.getContext();
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  Location loc = module.getLoc();
  auto ptr = LLVM::LLVMPointerType::get(context);
  auto voidType = LLVM::LLVMVoidType::get(context);
  auto i64 = b.getI64Type();

  for (const EntrySignature &entry : entries) {
    std::string cifaceName = "_mlir_ciface_" + entry.name;
    auto ciface = module.lookupSymbol<LLVM::LLVMFuncOp>(cifaceName);
    if (!ciface)
      return module.emitError() << "function '" << entry.name
                                << "' has no C interface after lowering ("
                                << cifaceName << " is missing)";
    // One leading pointer receives the results when there are any.
    unsigned resultSlot = entry.numResults > 0 ? 1 : 0;
    if (ciface.getNumArguments() != entry.numArgs + resultSlot)
      return module.emitError()
             << "function '" << entry.name << "': its C interface takes "
             << ciface.getNumArguments() << " pointers, expected "
             << entry.numArgs + resultSlot;

    auto type = LLVM::LLVMFunctionType::get(voidType, {ptr, ptr});
    auto wrapper =
        LLVM::LLVMFuncOp::create(b, loc, "moe_entry_" + entry.name, type);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(wrapper.addEntryBlock(b));
    Value args = wrapper.getArgument(0), results = wrapper.getArgument(1);
    SmallVector<Value> operands;
    if (resultSlot)
      operands.push_back(results);
    for (unsigned i = 0; i < entry.numArgs; ++i) {
      Value index = LLVM::ConstantOp::create(b, loc, i64,
                                             b.getI64IntegerAttr(i));
      Value slot = LLVM::GEPOp::create(b, loc, ptr, ptr, args,
                                       ArrayRef<LLVM::GEPArg>{index});
      operands.push_back(LLVM::LoadOp::create(b, loc, ptr, slot));
    }
    LLVM::CallOp::create(b, loc, ciface, operands);
    LLVM::ReturnOp::create(b, loc, ValueRange{});
  }

  // Results are malloc'ed by the artifact; the runtime hands them back here.
  LLVM::LLVMFuncOp freeFn = getOrDeclareFree(b, module);
  auto freeType = LLVM::LLVMFunctionType::get(voidType, {ptr});
  auto release = LLVM::LLVMFuncOp::create(b, loc, "moe_artifact_free", freeType);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(release.addEntryBlock(b));
    LLVM::CallOp::create(b, loc, freeFn, ValueRange{release.getArgument(0)});
    LLVM::ReturnOp::create(b, loc, ValueRange{});
  }

  std::string text = metadata.str();
  text.push_back('\0');
  auto arrayType = LLVM::LLVMArrayType::get(b.getI8Type(), text.size());
  LLVM::GlobalOp::create(b, loc, arrayType, /*isConstant=*/true,
                         LLVM::Linkage::External, "moe_artifact_metadata",
                         b.getStringAttr(text));
  return success();
}
