//===- MoeShapeRules.h - Shape and configuration rules ----------*- C++ -*-===//
//
// The rules the moe verifiers, canonicalizations and lowerings share, kept in
// one place so that they can never disagree.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_DIALECTS_MOE_IR_MOESHAPERULES_H
#define MOE_MLIR_DIALECTS_MOE_IR_MOESHAPERULES_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/Support/LLVM.h"
#include <cstdint>
#include <optional>

namespace mlir::moe {

/// Two extents agree unless both are static and differ.
bool extentsCompatible(int64_t a, int64_t b);

/// Rows of the dispatched tensor: one per (token, slot), dynamic when the
/// token count is.
int64_t dispatchedRows(int64_t tokens, int64_t topK);

/// The slack under which cf*T*k/E counts as the integer it is close to, so
/// that binary floating point never adds a row of capacity (1.1*10 is
/// 11.000000000000002 in double).
constexpr double kCapacityEpsilon = 1e-9;

/// Checked size arithmetic, for every shape and byte count the compiler
/// computes: the product of the static extents of `shape` (dynamic ones are
/// skipped), or std::nullopt if it overflows int64.
std::optional<int64_t> checkedElementCount(ArrayRef<int64_t> shape);
/// The bytes of `elements` values of `bitWidth` bits (rounded up to whole
/// bytes), or std::nullopt if that overflows int64.
std::optional<int64_t> checkedByteCount(int64_t elements, unsigned bitWidth);
/// The bits of one element of `type` for the size rules: an integer's or a
/// float's width, 64 for index, 0 (no size rule) for anything else, whose
/// element-type rule reports it.
unsigned elementBitsForSizes(Type type);
/// a + b and a * b for non-negative sizes, or std::nullopt on overflow.
std::optional<int64_t> checkedAdd(int64_t a, int64_t b);
std::optional<int64_t> checkedMul(int64_t a, int64_t b);

/// The routing metadata (ranks, rows, row owners, offsets) is i32: a layer
/// has at most this many assignments (tokens * top_k).
constexpr int64_t kMaxAssignments = 2147483647;

/// C = ceil(cf*T*k/E) assignments per expert (at least 1, and at most T,
/// since an expert receives at most one assignment per token, so C always
/// fits the i32 metadata); 0 when cf is 0 (dropless). A dynamic T gives the
/// capacity unclamped.
int64_t expertCapacity(double capacityFactor, int64_t tokens, int64_t topK,
                       int64_t experts);

/// An expert receives at most one assignment per token, so a capacity of at
/// least T (cf >= E/k) can never drop anything.
bool capacityCanDrop(double capacityFactor, int64_t topK, int64_t experts);

/// The router's configuration as the verifier and the layer builders see it.
struct RouterConfig {
  int64_t experts = 0;
  int64_t topK = 0;
  std::optional<int64_t> nGroup;
  std::optional<int64_t> topkGroup;
  double capacityFactor = 0.0;
  double scaling = 1.0;
};

/// Checks every rule of a router configuration; reports the first broken
/// one through `emitError` with a message that names the attribute.
LogicalResult verifyRouterConfig(function_ref<InFlightDiagnostic()> emitError,
                                 const RouterConfig &config);

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECTS_MOE_IR_MOESHAPERULES_H
