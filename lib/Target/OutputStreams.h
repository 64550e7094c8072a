//===- OutputStreams.h - Output files whose write errors are reported -*- C++ -*-===//

#ifndef MOE_MLIR_LIB_TARGET_OUTPUTSTREAMS_H
#define MOE_MLIR_LIB_TARGET_OUTPUTSTREAMS_H

#include "mlir/IR/Operation.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {

/// Flushes `os` and reports a write error (a full disk, a closed pipe) as an
/// error on `where` naming `what`. Without this, LLVM ends the process with
/// the fatal "IO failure on output stream" when the stream is destroyed.
LogicalResult finishOutput(Operation *where, llvm::raw_fd_ostream &os,
                           StringRef what);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_TARGET_OUTPUTSTREAMS_H
