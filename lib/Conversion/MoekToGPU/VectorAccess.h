//===- VectorAccess.h - 16-byte accesses of adjacent elements -*- C++ -*-===//
//
// The SIMT kernels that move whole rows (the GLU backward, elementwise maps)
// read and write `width` adjacent elements at once, as one vector access,
// and work on them one by one.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_VECTORACCESS_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_VECTORACCESS_H

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::moek {

/// The `width` elements of `buffer` from `indices` along its last
/// dimension, as scalars of its element type. The caller guarantees that
/// the access is 16-byte aligned.
inline SmallVector<Value> loadAdjacent(ImplicitLocOpBuilder &b, Value buffer,
                                       ValueRange indices, int64_t width) {
  Type element = cast<MemRefType>(buffer.getType()).getElementType();
  Value vector = vector::LoadOp::create(b, VectorType::get({width}, element),
                                        buffer, indices,
                                        /*nontemporal=*/false, llvm::Align(16));
  SmallVector<Value> values;
  for (int64_t i = 0; i < width; ++i)
    values.push_back(
        vector::ExtractOp::create(b, vector, ArrayRef<int64_t>{i}));
  return values;
}

/// Stores `values` (of `buffer`'s element type) as adjacent elements from
/// `indices`, one vector store; 16-byte aligned as for loadAdjacent.
inline void storeAdjacent(ImplicitLocOpBuilder &b, ArrayRef<Value> values,
                          Value buffer, ValueRange indices) {
  Type element = cast<MemRefType>(buffer.getType()).getElementType();
  Value vector = vector::FromElementsOp::create(
      b, VectorType::get({int64_t(values.size())}, element), values);
  vector::StoreOp::create(b, vector, buffer, indices, /*nontemporal=*/false,
                          llvm::Align(16));
}

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_VECTORACCESS_H
