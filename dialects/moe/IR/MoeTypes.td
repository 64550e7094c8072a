//===- MoeTypes.td - Types of the moe dialect --------------*- tablegen -*-===//

#ifndef MOE_TYPES
#define MOE_TYPES

include "dialects/moe/IR/MoeDialect.td"

def Moe_RoutingType : Moe_Type<"Routing", "routing"> {
  let summary = "the routing plan of T tokens x k slots over E experts";
  let description = [{
    The plan a router made: for every token (T of them, `?` when only known
    at run time) the k experts it goes to, and for every (token, slot)
    assignment its place among the expert's rows or the fact that capacity
    dropped it. Only O(T*k) integers are needed to represent it.

    ```mlir
    !moe.routing<tokens = ?, experts = 8, top_k = 2>
    ```
  }];
  let parameters = (ins "int64_t":$tokens, "int64_t":$experts,
                        "int64_t":$topK);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Rows of the dispatched tensor: tokens * top_k (dynamic if T is).
    int64_t getDispatchedRows() const;
    bool hasStaticTokens() const { return !::mlir::ShapedType::isDynamic(getTokens()); }
  }];
}

#endif // MOE_TYPES
