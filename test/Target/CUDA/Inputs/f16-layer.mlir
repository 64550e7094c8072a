// An f16 layer (the layer specs make f32 or bf16): tensor cores take f16
// operands as they take bf16. Used by tensor-core-ptx.test and, on a GPU,
// Integration/CUDA/layers.test.
// MoE layer tokens=64,hidden=64,ffn=48,experts=8,top_k=2,router=softmax,bias=0,capacity=0,normalize=1,scaling=1,activation=silu_glu,dtype=f16,dynamic=0,n_group=0,topk_group=0
func.func @moe_layer(%x: tensor<64x64xf16>, %w_gate: tensor<64x8xf16>,
    %w1: tensor<8x64x96xf16>, %w2: tensor<8x48x64xf16>)
    -> (tensor<64x64xf16>, tensor<64x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<64x64xf16>, tensor<64x8xf16>)
      -> (tensor<64x2xf32>, tensor<64x2xi32>, !moe.routing<tokens = 64, experts = 8, top_k = 2>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<64x64xf16>, !moe.routing<tokens = 64, experts = 8, top_k = 2>) -> tensor<128x64xf16>
  %expert_out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<128x64xf16>, !moe.routing<tokens = 64, experts = 8, top_k = 2>,
         tensor<8x64x96xf16>, tensor<8x48x64xf16>) -> tensor<128x64xf16>
  %y = moe.combine %expert_out, %weights, %routing
      : (tensor<128x64xf16>, tensor<64x2xf32>, !moe.routing<tokens = 64, experts = 8, top_k = 2>) -> tensor<64x64xf16>
  return %y, %indices : tensor<64x64xf16>, tensor<64x2xi32>
}
