//===- OutputStreams.cpp - Output files whose write errors are reported ---===//

#include "lib/Target/OutputStreams.h"

using namespace mlir;

LogicalResult moe::finishOutput(Operation *where, llvm::raw_fd_ostream &os,
                                StringRef what) {
  os.flush();
  if (!os.has_error())
    return success();
  std::error_code ec = os.error();
  os.clear_error(); // Reported here: the destructor must not abort.
  return where->emitError() << "cannot write " << what << ": "
                            << ec.message();
}
