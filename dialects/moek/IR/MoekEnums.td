//===- MoekEnums.td - Enumerations of the kernel dialect ---*- tablegen -*-===//

#ifndef MOEK_ENUMS
#define MOEK_ENUMS

include "mlir/IR/EnumAttr.td"

def Moek_EpilogueStore : I32EnumAttrCase<"store", 0>;
def Moek_EpilogueSiluGlu : I32EnumAttrCase<"silu_glu", 1>;
def Moek_EpilogueGeluGlu : I32EnumAttrCase<"gelu_glu", 2>;
def Moek_EpilogueScatterAdd : I32EnumAttrCase<"scatter_add", 3>;
def Moek_EpilogueScatterStore : I32EnumAttrCase<"scatter_store", 4>;
def Moek_EpilogueAttr : I32EnumAttr<"Epilogue",
    "what a grouped matmul does with each accumulated row",
    [Moek_EpilogueStore, Moek_EpilogueSiluGlu, Moek_EpilogueGeluGlu,
     Moek_EpilogueScatterAdd, Moek_EpilogueScatterStore]> {
  let cppNamespace = "::mlir::moek";
}

#endif // MOEK_ENUMS
