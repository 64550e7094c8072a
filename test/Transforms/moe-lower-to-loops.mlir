// -moe-lower-to-loops turns every moe op into scf.for loops over memrefs; -moe-lower-to-cpu goes on to the LLVM dialect.
// The loops read and write buffers that are wrapped back into tensors (bufferization.to_tensor); the CPU
// pipeline leaves only llvm.func bodies plus a C-interface wrapper per function.
// RUN: moe-opt %s -moe-lower-to-loops | FileCheck %s --implicit-check-not=moe.gate --implicit-check-not=moe.dispatch --implicit-check-not=moe.experts --implicit-check-not=moe.combine --implicit-check-not=moe.routing --implicit-check-not=moek. --implicit-check-not=unrealized_conversion_cast --implicit-check-not=memref.alloca
// RUN: moe-opt %s -moe-lower-to-cpu | FileCheck %s --check-prefix=CPU --implicit-check-not=moe.gate --implicit-check-not=moe.dispatch --implicit-check-not=moe.experts --implicit-check-not=moe.combine --implicit-check-not=moek. --implicit-check-not=scf. --implicit-check-not=memref. --implicit-check-not=bufferization. --implicit-check-not=func.func --implicit-check-not=unrealized_conversion_cast

// CHECK-LABEL: func.func @static_softmax(
// The arguments are the caller's, read-only: bufferization must not compute into them.
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x8xf32> {bufferization.writable = false}, %[[WG:[^:]+]]: tensor<8x4xf32> {bufferization.writable = false}, %[[W1:[^:]+]]: tensor<4x8x8xf32> {bufferization.writable = false}, %[[W2:[^:]+]]: tensor<4x4x8xf32> {bufferization.writable = false}
// CHECK-SAME: -> (tensor<4x8xf32>, tensor<4x2xi32>)
// The gate reads x and w_gate as buffers and fills weights [T, k] and indices [T, k].
// CHECK-DAG: %[[XB:.*]] = bufferization.to_buffer %[[X]] read_only : tensor<4x8xf32> to memref<4x8xf32>
// CHECK-DAG: %[[WGB:.*]] = bufferization.to_buffer %[[WG]] read_only : tensor<8x4xf32> to memref<8x4xf32>
// CHECK-DAG: %[[WEIGHTS:.*]] = memref.alloc() {{.*}}: memref<4x2xf32>
// CHECK-DAG: %[[INDICES:.*]] = memref.alloc() {{.*}}: memref<4x2xi32>
// One loop over the tokens, with the router GEMM and the softmax inside.
// CHECK: scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK: memref.load %[[XB]][%[[T]], %{{.*}}] : memref<4x8xf32>
// CHECK: memref.load %[[WGB]][%{{.*}}, %{{.*}}] : memref<8x4xf32>
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: arith.divf
// The selected experts and their weights are stored per (token, slot).
// CHECK: memref.store %{{.*}}, %[[INDICES]][%[[T]], %{{.*}}] : memref<4x2xi32>
// CHECK: memref.store %{{.*}}, %[[WEIGHTS]][%[[T]], %{{.*}}] : memref<4x2xf32>
// The indices result is one of the results, as a tensor.
// CHECK: %[[IDX:.*]] = bufferization.to_tensor %[[INDICES]] restrict writable : memref<4x2xi32> to tensor<4x2xi32>
// Dispatch materializes T*k = 8 rows of H = 8.
// CHECK: memref.alloc() {{.*}}: memref<8x8xf32>
// The experts read w1 and w2 and apply silu (x / (1 + exp(-x))).
// CHECK-DAG: bufferization.to_buffer %[[W1]] read_only : tensor<4x8x8xf32> to memref<4x8x8xf32>
// CHECK-DAG: bufferization.to_buffer %[[W2]] read_only : tensor<4x4x8xf32> to memref<4x4x8xf32>
// CHECK: arith.negf
// CHECK-NEXT: math.exp
// Combine writes y [T, H].
// CHECK: %[[YB:.*]] = memref.alloc() {{.*}}: memref<4x8xf32>
// CHECK: scf.for
// CHECK: %[[Y:.*]] = bufferization.to_tensor %[[YB]] restrict writable : memref<4x8xf32> to tensor<4x8xf32>
// The kernels' scratch is on the heap (never memref.alloca: a large E or F
// would overflow the stack) and freed before the function returns.
// CHECK-NEXT: memref.dealloc %{{.*}} : memref<8xf32>
// CHECK: return %[[Y]], %[[IDX]] : tensor<4x8xf32>, tensor<4x2xi32>

// CPU-LABEL: llvm.func @static_softmax(
// CPU: llvm.call @_mlir_memref_to_llvm_alloc
// CPU: llvm.intr.exp
// CPU: llvm.call @_mlir_memref_to_llvm_free
// CPU-LABEL: llvm.func @_mlir_ciface_static_softmax(
// CPU: llvm.call @static_softmax(
func.func @static_softmax(%x: tensor<4x8xf32>, %w_gate: tensor<8x4xf32>, %w1: tensor<4x8x8xf32>,
                          %w2: tensor<4x4x8xf32>) -> (tensor<4x8xf32>, tensor<4x2xi32>) {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<4x8xf32>, tensor<8x4xf32>)
      -> (tensor<4x2xf32>, tensor<4x2xi32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<4x8xf32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>) -> tensor<8x8xf32>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<8x8xf32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>,
         tensor<4x8x8xf32>, tensor<4x4x8xf32>) -> tensor<8x8xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<8x8xf32>, tensor<4x2xf32>, !moe.routing<tokens = 4, experts = 4, top_k = 2>)
      -> tensor<4x8xf32>
  return %y, %indices : tensor<4x8xf32>, tensor<4x2xi32>
}

// A dynamic token count: every [T, .] and [T*k, .] buffer is allocated with a run-time extent read from x.
// CHECK-LABEL: func.func @dynamic_tokens(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x8xf32> {bufferization.writable = false}
// CHECK: %[[XB:.*]] = bufferization.to_buffer %[[X]] read_only : tensor<?x8xf32> to memref<?x8xf32>
// CHECK: %[[T:.*]] = memref.dim %[[XB]], %{{.*}} : memref<?x8xf32>
// CHECK: memref.alloc(%[[T]]) {{.*}}: memref<?x1xf32>
// CHECK: memref.alloc(%[[T]]) {{.*}}: memref<?x1xi32>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step
// CHECK: bufferization.to_tensor %{{.*}} restrict writable : memref<?x8xf32> to tensor<?x8xf32>
// CHECK: return %{{.*}} : tensor<?x8xf32>

// CPU-LABEL: llvm.func @dynamic_tokens(
// CPU-LABEL: llvm.func @_mlir_ciface_dynamic_tokens(
func.func @dynamic_tokens(%x: tensor<?x8xf32>, %w_gate: tensor<8x4xf32>, %w1: tensor<4x8x8xf32>,
                          %w2: tensor<4x4x8xf32>) -> tensor<?x8xf32> {
  %weights, %indices, %routing = moe.gate sigmoid top_k = 1 %x, %w_gate
      : (tensor<?x8xf32>, tensor<8x4xf32>)
      -> (tensor<?x1xf32>, tensor<?x1xi32>, !moe.routing<tokens = ?, experts = 4, top_k = 1>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<?x8xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 1>) -> tensor<?x8xf32>
  %out = moe.experts gelu_glu %dispatched, %routing, %w1, %w2
      : (tensor<?x8xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 1>,
         tensor<4x8x8xf32>, tensor<4x4x8xf32>) -> tensor<?x8xf32>
  %y = moe.combine %out, %weights, %routing
      : (tensor<?x8xf32>, tensor<?x1xf32>, !moe.routing<tokens = ?, experts = 4, top_k = 1>)
      -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// bf16 storage: values are widened to f32 for the arithmetic and narrowed back when stored.
// CHECK-LABEL: func.func @bf16_storage(
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: %[[Y:.*]] = bufferization.to_tensor %{{.*}} restrict writable : memref<2x8xbf16> to tensor<2x8xbf16>
// CHECK-NEXT: memref.dealloc
// CHECK: return %[[Y]] : tensor<2x8xbf16>

// CPU-LABEL: llvm.func @bf16_storage(
// CPU-LABEL: llvm.func @_mlir_ciface_bf16_storage(
func.func @bf16_storage(%x: tensor<2x8xbf16>, %w_gate: tensor<8x4xbf16>, %w1: tensor<4x8x8xbf16>,
                        %w2: tensor<4x4x8xbf16>) -> tensor<2x8xbf16> {
  %weights, %indices, %routing = moe.gate softmax top_k = 2 %x, %w_gate
      : (tensor<2x8xbf16>, tensor<8x4xbf16>)
      -> (tensor<2x2xf32>, tensor<2x2xi32>, !moe.routing<tokens = 2, experts = 4, top_k = 2>)
  %dispatched = moe.dispatch %x, %routing
      : (tensor<2x8xbf16>, !moe.routing<tokens = 2, experts = 4, top_k = 2>) -> tensor<4x8xbf16>
  %out = moe.experts silu_glu %dispatched, %routing, %w1, %w2
      : (tensor<4x8xbf16>, !moe.routing<tokens = 2, experts = 4, top_k = 2>,
         tensor<4x8x8xbf16>, tensor<4x4x8xbf16>) -> tensor<4x8xbf16>
  %y = moe.combine %out, %weights, %routing
      : (tensor<4x8xbf16>, tensor<2x2xf32>, !moe.routing<tokens = 2, experts = 4, top_k = 2>)
      -> tensor<2x8xbf16>
  return %y : tensor<2x8xbf16>
}
