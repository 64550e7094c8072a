//===- LayerProgram.h - The moe program a layer spec makes ------*- C++ -*-===//

#ifndef MOE_MLIR_LIB_LAYER_LAYERPROGRAM_H
#define MOE_MLIR_LIB_LAYER_LAYERPROGRAM_H

#include "lib/Layer/BlockSpec.h"
#include "lib/Layer/LayerSpec.h"

#include <string>

namespace moe::layer {

/// The name of the function a spec's program defines.
constexpr const char *kLayerFunctionName = "moe_layer";

/// The `moe` dialect program of one layer: a public function
/// `@moe_layer(x, w_gate, w1, w2[, bias]) -> (y, indices)`.
std::string emitLayerProgram(const LayerSpec &spec);

/// The name of the function a block spec's program defines.
constexpr const char *kBlockFunctionName = "moe_block";

/// The `moe` dialect program of one block (ARCHITECTURE.md, "The block"): a
/// public function `@moe_block(x[B,L,H], g1, wq, wk, wv, wo, g2, w_gate,
/// w1, w2[, bias]) -> (y[B,L,H], indices[B*L, k])`, with `moe.bta_tiles`
/// when the spec gives bta_tiles.
std::string emitBlockProgram(const BlockSpec &spec);

} // namespace moe::layer

#endif // MOE_MLIR_LIB_LAYER_LAYERPROGRAM_H
