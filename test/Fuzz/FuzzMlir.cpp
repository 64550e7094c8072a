//===- FuzzMlir.cpp - What the MLIR fuzz targets share --------------------===//

#include "test/Fuzz/FuzzMlir.h"

#include "moe-mlir/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>

using namespace mlir;

namespace {

} // namespace

bool moefuzz::verbose() {
  static const bool value = [] {
    const char *env = std::getenv("MOE_FUZZ_VERBOSE");
    return env && env[0] && env[0] != '0';
  }();
  return value;
}

namespace {

DialectRegistry &registry() {
  static DialectRegistry *instance = [] {
    auto *r = new DialectRegistry;
    mlir::moe::registerAllDialects(*r);
    return r;
  }();
  return *instance;
}

// An LLVM fatal error ("LLVM ERROR: ...") would otherwise exit(1), which
// libFuzzer reports too but without a stack; abort shows where it came from.
void onFatalError(void *, const char *reason, bool) {
  std::fprintf(stderr, "==moe-fuzz== LLVM fatal error: %s\n", reason);
  std::abort();
}

void onBadAlloc(void *, const char *reason, bool) {
  std::fprintf(stderr, "==moe-fuzz== LLVM out of memory: %s\n", reason);
  std::abort();
}

} // namespace

void moefuzz::initialize() {
  static bool done = [] {
    llvm::install_fatal_error_handler(onFatalError);
    llvm::install_bad_alloc_error_handler(onBadAlloc);
    (void)registry();
    return true;
  }();
  (void)done;
}

std::unique_ptr<MLIRContext> moefuzz::createContext() {
  initialize();
  return std::make_unique<MLIRContext>(registry(),
                                       MLIRContext::Threading::DISABLED);
}

moefuzz::CapturedDiagnostics::CapturedDiagnostics(MLIRContext &context)
    : handler(&context, [this](Diagnostic &diag) {
        std::string text;
        llvm::raw_string_ostream os(text);
        const char *severity = "remark";
        switch (diag.getSeverity()) {
        case DiagnosticSeverity::Error:
          severity = "error";
          ++errors;
          break;
        case DiagnosticSeverity::Warning:
          severity = "warning";
          break;
        case DiagnosticSeverity::Note:
          severity = "note";
          break;
        case DiagnosticSeverity::Remark:
          break;
        }
        os << diag.getLocation() << ": " << severity << ": " << diag << "\n";
        for (const Diagnostic &note : diag.getNotes())
          os << note.getLocation() << ": note: " << note << "\n";
        if (verbose())
          llvm::errs() << text;
        // Keep the first few KiB: enough to explain a finding.
        if (messages.size() < 16384)
          messages += text;
        return success();
      }) {}

OwningOpRef<ModuleOp> moefuzz::parseModule(MLIRContext &context,
                                             llvm::StringRef text,
                                             llvm::StringRef bufferName) {
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(text, bufferName), llvm::SMLoc());
  return parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
}

void moefuzz::fail(const std::string &what, const std::string &details) {
  std::fprintf(stderr, "==moe-fuzz== FINDING: %s\n%s\n", what.c_str(),
               details.c_str());
  std::fflush(stderr);
  std::abort();
}

bool moefuzz::nestsDeeperThan(llvm::StringRef text, int limit) {
  int depth = 0;
  for (char c : text) {
    if (c == '(' || c == '[' || c == '{' || c == '<') {
      if (++depth > limit)
        return true;
    } else if ((c == ')' || c == ']' || c == '}' || c == '>') && depth > 0) {
      --depth;
    }
  }
  return false;
}
