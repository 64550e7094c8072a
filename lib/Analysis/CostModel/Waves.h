//===- Waves.h - Wave quantization of tiled GEMM launches -------*- C++ -*-===//
//
// A tiled GEMM launch runs its CTA tiles in waves of `slots` (multiprocessors
// x CTAs each holds), and a wave takes a full tile's time however few of its
// slots are busy: a launch of 40 tiles on 132 slots costs one wave, one of
// 133 tiles two. The cost model prices a tensor-core GEMM by its waves, not
// its flops, so that one expert per launch (a few dozen tiles) is not priced
// as a share of a full chip.
//
// MLIR-free, like DeviceTable.h.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_ANALYSIS_COSTMODEL_WAVES_H
#define MOE_MLIR_LIB_ANALYSIS_COSTMODEL_WAVES_H

#include <cstdint>

namespace moe::cost {

struct KernelWork;

/// The expected waves of a launch whose tile count is normally distributed
/// with mean `tiles` and standard deviation `tilesSd` (the spread of the
/// experts' routed rows); `tilesSd` = 0 gives ceil(tiles / slots). At least
/// one wave: an empty launch still runs.
double expectedWaves(double tiles, double tilesSd, int64_t slots);

/// The flops the compute term prices: with a wave term (work.waveSlots > 0,
/// work.tiles > 0), launches x waves x slots x the flops of one tile, else
/// work.flops.
double waveFlops(const KernelWork &work);

} // namespace moe::cost

#endif // MOE_MLIR_LIB_ANALYSIS_COSTMODEL_WAVES_H
