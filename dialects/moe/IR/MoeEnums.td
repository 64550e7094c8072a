//===- MoeEnums.td - Enumerations of the moe dialect -------*- tablegen -*-===//

#ifndef MOE_ENUMS
#define MOE_ENUMS

include "mlir/IR/EnumAttr.td"

def Moe_ScoreFuncSoftmax : I32EnumAttrCase<"softmax", 0>;
def Moe_ScoreFuncSigmoid : I32EnumAttrCase<"sigmoid", 1>;
def Moe_ScoreFuncAttr : I32EnumAttr<"ScoreFunc",
    "how the router turns scores into probabilities",
    [Moe_ScoreFuncSoftmax, Moe_ScoreFuncSigmoid]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_ActivationSiluGlu : I32EnumAttrCase<"silu_glu", 0>;
def Moe_ActivationGeluGlu : I32EnumAttrCase<"gelu_glu", 1>;
def Moe_ActivationAttr : I32EnumAttr<"Activation",
    "the gated activation of an expert: act(gate) * up",
    [Moe_ActivationSiluGlu, Moe_ActivationGeluGlu]> {
  let cppNamespace = "::mlir::moe";
}

#endif // MOE_ENUMS
