//===- MoeDialect.td - The moe dialect ---------------------*- tablegen -*-===//
//
// The dialect that expresses Mixture-of-Experts layers at the tensor level:
// routing, dispatch, experts and combine.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT
#define MOE_DIALECT

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Mixture-of-Experts layers: routing, dispatch, experts, combine";
  let description = [{
    The `moe` dialect describes a Mixture-of-Experts layer with value
    semantics on tensors. A router (`moe.gate`) scores each token against
    every expert, keeps the top k and produces a routing plan
    (`!moe.routing`). `moe.dispatch` places each token's copies in expert
    order, `moe.experts` applies each expert's gated FFN to its rows, and
    `moe.combine` sums the expert outputs back into token order, weighted by
    the router. Passes of this project rewrite that chain into kernels that
    never materialize the dispatched copies.
  }];
  let useDefaultTypePrinterParser = 1;
  let extraClassDeclaration = [{
    /// Defined in MoeTypes.cpp, where the type storage is complete.
    void registerTypes();
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

class Moe_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<Moe_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

#endif // MOE_DIALECT
