//===- MoekDialect.td - The MoE kernel dialect -------------*- tablegen -*-===//
//
// The kernel level of MoE-MLIR: operations on buffers (memrefs) that a
// backend maps to kernels. Routing-plan construction uses O(T*k) integers
// only; the grouped matmul reads its A operand through a row map (gather
// prologue) and can accumulate into token order through a gate-weighted
// scatter-add (epilogue).
//
//===----------------------------------------------------------------------===//

#ifndef MOEK_DIALECT
#define MOEK_DIALECT

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Moek_Dialect : Dialect {
  let name = "moek";
  let cppNamespace = "::mlir::moek";
  let summary = "MoE kernels on buffers: routing plan, grouped matmul";
  let description = [{
    Kernel-level operations of MoE-MLIR. Every operation reads its `ins`
    buffers and writes its `into` buffers; nothing is allocated. The moe
    dialect lowers here (`moe-lower-to-kernels`, `moe-zero-buffer-fusion`)
    and backends lower from here (`moek-lower-to-loops` for the CPU).
  }];
}

class Moek_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moek_Dialect, mnemonic, traits>;

#endif // MOEK_DIALECT
