// moek-lower-to-gpu's options are checked: a tile the kernel cannot use, an
// architecture it does not support and a cluster size other than auto, 1 or 2
// are errors that say why; a tile's
// shared memory (the larger of its two layouts: the backward's transposed-B GEMMs stage b
// as [BN][BK+pad]) is checked against the chip's (227 KiB sm_90, 163 KiB sm_80).
// RUN: not moe-opt %s -moek-lower-to-gpu=tensor-core-tile=128x96x32x3 2>&1 | FileCheck %s --check-prefix=WIDTH
// RUN: not moe-opt %s -moek-lower-to-gpu=tensor-core-tile=128x128x24x3 2>&1 | FileCheck %s --check-prefix=DEPTH
// RUN: not moe-opt %s -moek-lower-to-gpu=tensor-core-tile=256x256x64x4 2>&1 | FileCheck %s --check-prefix=SHARED
// RUN: not moe-opt %s -moek-lower-to-gpu="chip=sm_80 tensor-core-tile=128x256x64x4x2x4" 2>&1 | FileCheck %s --check-prefix=SHARED-SM80
// RUN: moe-opt %s -moek-lower-to-gpu="chip=sm_90 tensor-core-tile=128x256x64x4x2x4"
// RUN: not moe-opt %s -moek-lower-to-gpu=tensor-core-tile=128x128 2>&1 | FileCheck %s --check-prefix=SYNTAX
// RUN: not moe-opt %s -moek-lower-to-gpu=chip=sm_70 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not moe-opt %s -moek-lower-to-gpu=chip=gfx90a 2>&1 | FileCheck %s --check-prefix=CHIP-NAME
// RUN: not moe-opt %s -moek-lower-to-gpu="chip=sm_90a gemm-cluster=4" 2>&1 | FileCheck %s --check-prefix=CLUSTER
// RUN: moe-opt %s -moek-lower-to-gpu="chip=sm_90a gemm-cluster=2"

// WIDTH: error: moek-lower-to-gpu: tensor-core-tile: tile '128x96x32x3': BN must be a multiple of 32 x warpsN (B fragments load in pairs within each half of a GLU tile)
// DEPTH: error: moek-lower-to-gpu: tensor-core-tile: tile '128x128x24x3': BK must be a multiple of 16
// SHARED: error: moek-lower-to-gpu: tensor-core-tile: tile '256x256x64x4': needs 294912 bytes of shared memory (the chip has at most 232448 per block)
// SHARED-SM80: error: moek-lower-to-gpu: tensor-core-tile: tile '128x256x64x4x2x4': needs 221184 bytes of shared memory (the chip has at most 166912 per block)
// SYNTAX: error: moek-lower-to-gpu: tensor-core-tile: '128x128' is not BMxBNxBKxSTAGES[xWARPSMxWARPSN]
// CHIP: error: moek-lower-to-gpu: chip 'sm_70' is not an NVIDIA architecture the kernels support (sm_80, sm_86, sm_87, sm_89, sm_90, sm_90a)
// CHIP-NAME: error: moek-lower-to-gpu: chip 'gfx90a' is not an NVIDIA architecture
// CLUSTER: error: moek-lower-to-gpu: gemm-cluster: '4' is not auto, 1 or 2

func.func @nothing() {
  return
}
