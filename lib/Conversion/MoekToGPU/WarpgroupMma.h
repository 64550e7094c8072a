//===- WarpgroupMma.h - wgmma pieces both sm_90a kernels use ----*- C++ -*-===//
//
// The shared-memory descriptor and the m64nNk16 multiply of Hopper's
// warpgroup MMA, as the grouped GEMM (GroupedMatmulWarpgroup.cpp) and the
// varlen-K weight gradient (GroupedWeightGradWarpgroup.cpp) build them:
// 16-bit operands from 128B-swizzled shared memory, f32 accumulators; and
// their epilogues' TMA stores through shared memory.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPGROUPMMA_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPGROUPMMA_H

#include "lib/Conversion/MoekToGPU/IndexArithmetic.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::moek {

/// A wgmma shared-memory descriptor for the operand at `address` (i64, the
/// shared window): start address, leading and stride byte offsets (16-byte
/// units, 14 bits each), 128-byte swizzle (mode 1). K-major: leading 16,
/// stride 1024 (8-row groups). MN-major: leading = bytes between 64-element
/// chunks of M or N, stride 1024 (8 rows of k).
inline Value wgmmaDescriptor(ImplicitLocOpBuilder &b, Value address,
                             int64_t leading, int64_t stride) {
  auto constant = [&](int64_t v) {
    return arith::ConstantOp::create(b, b.getI64IntegerAttr(v));
  };
  Value start = arith::AndIOp::create(
      b, arith::ShRUIOp::create(b, address, constant(4)), constant(0x3FFF));
  uint64_t fixed = (uint64_t(leading >> 4) << 16) |
                   (uint64_t(stride >> 4) << 32) | (uint64_t(1) << 62);
  return arith::OrIOp::create(b, start, constant(int64_t(fixed)));
}

/// The wgmma kernels' dynamic shared memory aligned up to 1024 bytes (the
/// 128B swizzle repeats every 1024 bytes and the descriptors assume it):
/// its address as i64, and its first `count` values of `element` as a view
/// for the cp.async copies.
struct AlignedSharedMemory {
  Value base;
  Value elements;
};
inline AlignedSharedMemory
alignDynamicSharedMemory(ImplicitLocOpBuilder &b, Ix &ix, Type element,
                         int64_t count) {
  MLIRContext *context = b.getContext();
  auto workgroup =
      gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup);
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value shared = gpu::DynamicSharedMemoryOp::create(b, bytesType);
  Value address = memref::ExtractAlignedPointerAsIndexOp::create(b, shared);
  Value shift = ix.sub(ix.mul(ix.ceilDiv(address, 1024), 1024), address);
  Value base =
      arith::IndexCastOp::create(b, b.getI64Type(), ix.add(address, shift));
  auto elementsType = MemRefType::get({count}, element,
                                      MemRefLayoutAttrInterface(), workgroup);
  Value elements =
      memref::ViewOp::create(b, elementsType, shared, shift, ValueRange{});
  return {base, elements};
}

/// The f32 accumulators of one wgmma m64nN, an !llvm.struct of n / 2 f32.
inline Type wgmmaAccumulatorType(MLIRContext *context, int64_t n) {
  return LLVM::LLVMStructType::getLiteral(
      context, SmallVector<Type>(n / 2, Float32Type::get(context)));
}

/// `acc` += A (x) B for one k16 step: wgmma.mma_async m64nNk16, bf16 or
/// f16 (`element`) operands from descriptors, f32 accumulation. A layout
/// `row` for A and `col` for B is K-major (as wgmma reads them); the other
/// is MN-major, read transposed (the instruction's imm-trans-a / -b).
inline Value wgmmaMultiply(ImplicitLocOpBuilder &b, Value acc, Value descA,
                           Value descB, int64_t n, Type element,
                           NVVM::MMALayout layoutA, NVVM::MMALayout layoutB) {
  MLIRContext *context = b.getContext();
  NVVM::WGMMATypes type =
      element.isBF16() ? NVVM::WGMMATypes::bf16 : NVVM::WGMMATypes::f16;
  return NVVM::WgmmaMmaAsyncOp::create(
      b, acc.getType(), acc, descA, descB,
      NVVM::MMAShapeAttr::get(context, 64, n, 16),
      NVVM::WGMMATypesAttr::get(context, type),
      NVVM::WGMMATypesAttr::get(context, type),
      NVVM::WGMMATypesAttr::get(context, NVVM::WGMMATypes::f32),
      NVVM::WGMMAScaleOutAttr::get(context, NVVM::WGMMAScaleOut::one),
      NVVM::WGMMAScaleInAttr::get(context, NVVM::WGMMAScaleIn::one),
      NVVM::WGMMAScaleInAttr::get(context, NVVM::WGMMAScaleIn::one),
      NVVM::MMALayoutAttr::get(context, layoutA),
      NVVM::MMALayoutAttr::get(context, layoutB), NVVM::MMAIntOverflowAttr());
}

/// A persistent grid's gpu.launch of `grid` CTAs of `threads` threads and
/// `sharedBytes` of dynamic shared memory, in clusters of `cluster` CTAs
/// along x when `cluster` > 1 (blocks cluster c .. cluster c + cluster - 1
/// are cluster c).
inline gpu::LaunchOp launchPersistentGrid(ImplicitLocOpBuilder &b, Ix &ix,
                                          Value grid, int64_t threads,
                                          Value sharedBytes, int64_t cluster) {
  Value one = ix.c(1);
  Value clusterX = cluster > 1 ? ix.c(cluster) : Value();
  Value clusterYZ = cluster > 1 ? one : Value();
  auto launch = gpu::LaunchOp::create(
      b, grid, one, one, ix.c(threads), one, one, sharedBytes,
      /*asyncTokenType=*/nullptr, /*asyncDependencies=*/{},
      /*workgroupAttributions=*/{}, /*privateAttributions=*/{}, clusterX,
      clusterYZ, clusterYZ);
  // gpu.launch's builder (LLVM 22) leaves out the six region arguments of
  // the cluster ids and sizes, which its verifier and printer expect.
  if (cluster > 1)
    for (int i = 0; i < 6; ++i)
      launch.getBody().front().addArgument(b.getIndexType(), b.getLoc());
  return launch;
}

/// Every thread of the cluster: arrive (release), then wait (acquire).
inline void syncCluster(ImplicitLocOpBuilder &b) {
  NVVM::ClusterArriveOp::create(b, UnitAttr());
  NVVM::ClusterWaitOp::create(b, UnitAttr());
}

/// Both kernels run one producer warpgroup and two consumer warpgroups.
constexpr int64_t kWarpgroup = 128, kThreads = 3 * kWarpgroup;
/// Registers per thread after setmaxnreg: 128 x 64 + 256 x 216 <= 64K. At
/// 40 (CUTLASS's producers) ptxas spilled the producer's tile schedule and
/// copy plan, or mixtral's gathered rows' plan, to local memory (mixtral's
/// forward 28% slower on the H200); the consumers' 128 accumulators and
/// epilogue fit in 216 without spills in any preset's kernel.
constexpr int32_t kProducerRegisters = 64, kConsumerRegisters = 216;

/// The warpgroups' roles, each one branch (setmaxnreg needs that): thread
/// `tid`'s warpgroup 0 produces (`produce()`, and leaves no cp.async copy in
/// flight), warpgroups 1 and 2 consume (`consume(group)`, group 0 or 1).
/// Then, in a cluster, no CTA leaves while another may still arrive on its
/// barriers.
inline void emitWarpgroupRoles(ImplicitLocOpBuilder &b, Ix &ix, Value tid,
                               int64_t cluster, function_ref<void()> produce,
                               function_ref<void(Value)> consume) {
  Value warpgroup = ix.div(tid, kWarpgroup);
  auto branch =
      scf::IfOp::create(b, ix.ult(warpgroup, 1), /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard inner(b);
    b.setInsertionPointToStart(&branch.getThenRegion().front());
    NVVM::SetMaxRegisterOp::create(b, kProducerRegisters,
                                   NVVM::SetMaxRegisterAction::decrease);
    produce();
    NVVM::CpAsyncCommitGroupOp::create(b);
    NVVM::CpAsyncWaitGroupOp::create(b, 0);
  }
  {
    OpBuilder::InsertionGuard inner(b);
    b.setInsertionPointToStart(&branch.getElseRegion().front());
    NVVM::SetMaxRegisterOp::create(b, kConsumerRegisters,
                                   NVVM::SetMaxRegisterAction::increase);
    consume(ix.sub(warpgroup, ix.c(1)));
  }
  b.setInsertionPointAfter(branch);
  if (cluster > 1)
    syncCluster(b);
}

/// A consumer thread (`tid`) is done with the stage whose empty mbarrier is
/// `emptyBarrier`, once its wgmmas on it are done (wgmma.wait_group). Single
/// CTAs: every thread arrives. In a cluster of `cluster` CTAs, any of which
/// may multicast into the stage, a warp's lane 0 arrives on the barrier at
/// that offset in each CTA (mapa to each), at CTA scope, as CUTLASS's
/// cluster barriers arrive: at cluster scope
/// (mbarrier.arrive.release.cluster) the arrival waited for the warp's
/// wgmmas still in flight, and every GEMM took 1.5x as long on the H200
/// (bench/RESULTS.md); nothing else needs ordering.
inline void releaseStage(ImplicitLocOpBuilder &b, moe::LoopBuilder &lb, Ix &ix,
                         Value tid, Value emptyBarrier, int64_t cluster) {
  auto arrive = [&](Value barrier) {
    NVVM::MBarrierArriveOp::create(b, Type(), barrier, Value(),
                                   NVVM::MemScopeKind::CTA,
                                   /*relaxed=*/false);
  };
  if (cluster == 1)
    return arrive(emptyBarrier);
  lb.ifThen(ix.ult(ix.rem(tid, 32), ix.c(1)), [&] {
    for (int64_t c = 0; c < cluster; ++c)
      arrive(NVVM::MapaOp::create(b,
                                  LLVM::LLVMPointerType::get(b.getContext(), 7),
                                  emptyBarrier, lb.i32(c)));
  });
}

/// A tensor map (made on the host) of `buffer` (16-bit, its innermost
/// dimension a multiple of 8: 16-byte aligned rows) for TMA loads into, or
/// stores from, 128B-swizzled shared memory, as the !llvm.ptr a kernel
/// takes: boxes of `box` (innermost last; 64 elements, 128 bytes, wide). A
/// loaded box's elements past the buffer's bounds are zeros; a stored one's
/// are not written.
inline Value
createSwizzledTensorMap(ImplicitLocOpBuilder &b, Ix &ix, Value buffer,
                        ArrayRef<int64_t> box,
                        nvgpu::TensorMapL2PromoKind promotion =
                            nvgpu::TensorMapL2PromoKind::L2PROMO_NONE) {
  MLIRContext *context = b.getContext();
  Type element = cast<MemRefType>(buffer.getType()).getElementType();
  auto workgroup =
      gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup);
  auto boxType =
      MemRefType::get(box, element, MemRefLayoutAttrInterface(), workgroup);
  auto mapType = nvgpu::TensorMapDescriptorType::get(
      context, boxType, nvgpu::TensorMapSwizzleKind::SWIZZLE_128B, promotion,
      nvgpu::TensorMapOOBKind::OOB_ZERO,
      nvgpu::TensorMapInterleaveKind::INTERLEAVE_NONE);
  Value unranked = memref::CastOp::create(
      b, UnrankedMemRefType::get(element, Attribute()), buffer);
  SmallVector<Value> boxSizes;
  for (int64_t size : box)
    boxSizes.push_back(ix.c(size));
  Value map =
      nvgpu::TmaCreateDescriptorOp::create(b, mapType, unranked, boxSizes);
  // Kernels are outlined before nvgpu types are converted, and gpu.func has
  // no conversion for them: the kernel takes the pointer the map becomes.
  return UnrealizedConversionCastOp::create(
             b, LLVM::LLVMPointerType::get(context), map)
      .getResult(0);
}

/// A consumer warpgroup's epilogue through shared memory, for 16-bit outputs
/// that TMA stores while the warpgroup goes on to its next tile (register
/// stores held the tensor cores up). The warpgroup has two boxes of 64 rows
/// x 64 columns (16 KiB, 1024-byte aligned) at `staging`; a round fills them
/// with 128 columns of its 64 rows and has its leader (thread 0) store them.
/// Bulk async-groups belong to the thread that commits them, so the leader
/// waits and a named barrier (1 + g, 128 threads; 0 is __syncthreads')
/// tells the others.
struct StagedStores {
  ImplicitLocOpBuilder &b;
  Ix &ix;
  moe::LoopBuilder &lb;
  Value sharedBase; ///< i64 shared-window address, 1024-byte aligned
  Value staging;    ///< byte offset of the warpgroup's two boxes
  Value local;      ///< the thread's index in the warpgroup
  Value group;      ///< the consumer warpgroup, 0 or 1

  static constexpr int64_t kBoxBytes = 64 * 128;
  static constexpr int64_t kBytes = 2 * kBoxBytes;

  Value pointer(Value offset) {
    Value address = arith::AddIOp::create(
        b, sharedBase, arith::IndexCastOp::create(b, b.getI64Type(), offset));
    return LLVM::IntToPtrOp::create(
        b, LLVM::LLVMPointerType::get(b.getContext(), 3), address);
  }
  Value i32(Value index) {
    return arith::IndexCastOp::create(b, b.getI32Type(), index);
  }
  void syncWarpgroup() {
    NVVM::BarrierOp::create(b, Type(), i32(ix.add(group, 1)), lb.i32(128),
                            NVVM::BarrierReductionAttr(), Value());
  }

  /// One round: `word(f, h)` is the lane's packed pair (two 16-bit values)
  /// of fragment f < 16 (8 columns each) and half h (rows 8 h on) of the
  /// round's 128 columns; a lane's pair is row 16 warp + 8 h + lane / 4,
  /// columns 8 f + 2 (lane % 4) and the next. In a box, 16-byte chunk j of
  /// row r sits at j ^ (r % 8) (the 128B swizzle), so a warp's 4-byte
  /// writes of one (f, h) fall in 32 different banks. Then `drain()` takes
  /// the boxes out: storeBoxes (TMA) or copyOut.
  void round(function_ref<Value(int64_t, int64_t)> word,
             function_ref<void()> drain) {
    MLIRContext *context = b.getContext();
    // TMA has read what the last round staged.
    lb.ifThen(ix.ult(local, 1), [&] {
      NVVM::CpAsyncBulkWaitGroupOp::create(b, 0, b.getUnitAttr());
    });
    syncWarpgroup();
    Value warp = ix.div(local, 32), lane = ix.rem(local, 32);
    for (int64_t h = 0; h < 2; ++h) {
      Value row = ix.add(ix.mul(warp, 16), ix.add(ix.div(lane, 4), h * 8));
      Value rowBytes = ix.add(staging, ix.mul(row, 128));
      Value swizzle = ix.rem(row, 8);
      Value inChunk = ix.mul(ix.rem(lane, 4), 4);
      for (int64_t f = 0; f < 16; ++f) {
        Value chunk = arith::XOrIOp::create(b, ix.c(f % 8), swizzle);
        Value byte = ix.add(ix.add(rowBytes, (f / 8) * kBoxBytes),
                            ix.add(ix.mul(chunk, 16), inChunk));
        LLVM::StoreOp::create(b, word(f, h), pointer(byte), /*alignment=*/4);
      }
    }
    // The writes went through the generic proxy; TMA reads through the
    // async proxy.
    NVVM::FenceProxyOp::create(
        b, NVVM::ProxyKind::async_shared,
        NVVM::SharedSpaceAttr::get(context, NVVM::SharedSpace::shared_cta));
    syncWarpgroup();
    drain();
  }

  /// The leader stores the round's two boxes by TMA (`store(box, source)`
  /// issues box 0's and 1's) and commits them without waiting.
  void storeBoxes(function_ref<void(int64_t, Value)> store) {
    lb.ifThen(ix.ult(local, 1), [&] {
      for (int64_t box = 0; box < 2; ++box)
        store(box, pointer(ix.add(staging, box * kBoxBytes)));
      NVVM::CpAsyncBulkCommitGroupOp::create(b);
    });
  }

  /// The round's rows below `rows` (of 64; none if it is 0 or less) and
  /// columns below `columnLimit`, copied out by the warpgroup 16 bytes a
  /// thread, where a TMA box would write rows that are not this tile's: row
  /// r of the round is row `firstRow` + r of the 16-bit [*, rowLength]
  /// buffer at `base` (an index address, global memory), its column 0 is
  /// `firstColumn`. rowLength and the columns are multiples of 8.
  void copyOut(Value base, int64_t rowLength, Value firstRow, Value rows,
               Value firstColumn, Value columnLimit) {
    // 16 KiB in 16-byte pieces: piece i = box i / 512, row (i / 8) % 64,
    // chunk i % 8.
    for (int64_t pass = 0; pass < kBytes / (16 * 128); ++pass) {
      Value piece = ix.add(local, pass * 128);
      Value box = ix.div(piece, 512);
      Value row = ix.rem(ix.div(piece, 8), 64), chunk = ix.rem(piece, 8);
      Value column =
          ix.add(firstColumn, ix.add(ix.mul(box, 64), ix.mul(chunk, 8)));
      // rows may be 0 or less (signed).
      Value rowValid =
          arith::CmpIOp::create(b, arith::CmpIPredicate::slt, row, rows);
      lb.ifThen(ix.both(rowValid, ix.ult(column, columnLimit)), [&] {
        Value from = ix.add(
            ix.add(staging, ix.mul(box, kBoxBytes)),
            ix.add(
                ix.mul(row, 128),
                ix.mul(arith::XOrIOp::create(b, chunk, ix.rem(row, 8)), 16)));
        auto vectorType = VectorType::get({4}, b.getI32Type());
        Value value = LLVM::LoadOp::create(b, vectorType, pointer(from),
                                           /*alignment=*/16);
        Value element =
            ix.add(ix.mul(ix.add(firstRow, row), rowLength), column);
        Value address = LLVM::IntToPtrOp::create(
            b, LLVM::LLVMPointerType::get(b.getContext(), 1),
            arith::IndexCastOp::create(b, b.getI64Type(),
                                       ix.add(base, ix.mul(element, 2)))
                .getResult());
        LLVM::StoreOp::create(b, value, address, /*alignment=*/16);
      });
    }
  }

  /// One box's TMA store from `source` at `coordinates` (innermost first).
  void storeBox(Value map, Value source, ArrayRef<Value> coordinates) {
    SmallVector<Value> i32s;
    for (Value c : coordinates)
      i32s.push_back(i32(c));
    NVVM::CpAsyncBulkTensorSharedCTAToGlobalOp::create(
        b, map, source, i32s, Value(), NVVM::TMAStoreMode::TILE, Value());
  }

  /// Before the kernel ends: the leader's stores are done (shared memory
  /// read, global memory written).
  void finish() {
    lb.ifThen(ix.ult(local, 1),
              [&] { NVVM::CpAsyncBulkWaitGroupOp::create(b, 0, UnitAttr()); });
  }
};

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_WARPGROUPMMA_H
