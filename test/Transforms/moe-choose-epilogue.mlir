// moe-choose-epilogue on a small bf16 layer: both epilogues are lowered and
// predicted, and the choice is the module's moe.epilogue. At this size the
// extra gather of gather_sum costs a launch more than the atomics it saves,
// and the sizes are too small for 3% to separate them by anything but
// launches: whichever it picks, the remark says why and the attribute
// matches it. The presets' choices are checked with moe-compile
// (test/Tools/moe-compile/epilogue-auto.test).
// RUN: moe-opt %s --mlir-print-op-on-diagnostic=false --moe-choose-epilogue="target=cuda:sm_90a" 2>&1 | FileCheck %s
// Under a memory budget (within-peak), gather_sum's larger peak rules it out
// however fast it is predicted.
// RUN: moe-opt %s --mlir-print-op-on-diagnostic=false --moe-choose-epilogue="target=cuda:sm_90a within-peak=true" 2>&1 | FileCheck %s --check-prefix=BUDGET
// RUN: not moe-opt %s --mlir-print-op-on-diagnostic=false --moe-choose-epilogue="target=cuda:sm_90a cost-device=tpu" 2>&1 | FileCheck %s --check-prefix=DEVICE
// RUN: not moe-opt %s --mlir-print-op-on-diagnostic=false --moe-choose-epilogue="target=gpu" 2>&1 | FileCheck %s --check-prefix=TARGET

// CHECK: remark: moe-choose-epilogue: scatter_add: predicted {{[0-9.]+}} ms on h200-sm90a, planned peak [[SCATTER:[0-9]+]] bytes
// CHECK: remark: moe-choose-epilogue: gather_sum: predicted {{[0-9.]+}} ms on h200-sm90a, planned peak [[GATHER:[0-9]+]] bytes
// CHECK: remark: moe-choose-epilogue: [[CHOSEN:scatter_add|gather_sum]] ({{predicted [0-9]+% faster|the smaller planned peak: the other is predicted faster by less than 3%}})
// CHECK: module attributes {moe.epilogue = "[[CHOSEN]]"}
// BUDGET: remark: moe-choose-epilogue: scatter_add: predicted {{[0-9.]+}} ms on h200-sm90a, planned peak 102464 bytes
// BUDGET: remark: moe-choose-epilogue: gather_sum: predicted {{[0-9.]+}} ms on h200-sm90a, planned peak 104512 bytes
// BUDGET: remark: moe-choose-epilogue: scatter_add (the memory budget: gather_sum's planned peak is larger)
// BUDGET: module attributes {moe.epilogue = "scatter_add"}
// DEVICE: error: moe-choose-epilogue: no device 'tpu' in the cost model's table (have: h200-sm90a, h200-sm90, cpu)
// TARGET: error: moe-choose-epilogue: target 'gpu' is not cpu or cuda[:sm_XY]

!R = !moe.routing<tokens = 256, experts = 8, top_k = 2>
module {
func.func @moe_layer(%x: tensor<256x64xbf16>, %w_gate: tensor<64x8xbf16>,
                     %w1: tensor<8x64x64xbf16>, %w2: tensor<8x32x64xbf16>) -> tensor<256x64xbf16> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<256x64xbf16>, tensor<64x8xbf16>) -> (tensor<256x2xf32>, tensor<256x2xi32>, !R)
  %dispatched = moe.dispatch %x, %routing : (tensor<256x64xbf16>, !R) -> tensor<512x64xbf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<512x64xbf16>, !R, tensor<8x64x64xbf16>, tensor<8x32x64xbf16>) -> tensor<512x64xbf16>
  %y = moe.combine %out, %weights, %routing : (tensor<512x64xbf16>, tensor<256x2xf32>, !R) -> tensor<256x64xbf16>
  return %y : tensor<256x64xbf16>
}
}
