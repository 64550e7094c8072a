//===- DeviceTable.h - Devices the cost model predicts for ------*- C++ -*-===//
//
// A device description: the measured matrix and SIMT rates, the memory
// bandwidth, launch and synchronization costs, the multiprocessors and the
// CTA tiles of its GEMM kernels (for wave quantization, Waves.h), and per
// kernel class two calibrated scales (time = compute_scale * flops / rate +
// bytes_scale * bytes / bandwidth, plus for tiled GEMMs a fixed time per
// wave). The numbers live in DeviceTables.def,
// written by bench/calibrate_cost_model.py from `moe-run --profile` logs.
//
// MLIR-free: the standalone moe-run of GPU machines could link it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_ANALYSIS_COSTMODEL_DEVICETABLE_H
#define MOE_MLIR_LIB_ANALYSIS_COSTMODEL_DEVICETABLE_H

#include <cstdint>
#include <string>
#include <vector>

namespace moe::cost {

/// The calibration of one kernel class on one device.
struct KernelCalibration {
  std::string kernelClass; ///< "grouped_matmul_silu_glu.tc", "default.simt"
  double computeScale = 1.0;
  double bytesScale = 1.0;
  /// Tiled GEMMs: the fixed time of one wave of tiles, what no K loop hides
  /// (the CTA's start, the pipeline's fill, the epilogue's stores): a
  /// kernel of many short tiles pays it once per wave (WAVE rows).
  double waveUs = 0.0;
};

/// The CTA tile of a GEMM kernel on one device: a launch of T tiles runs
/// in ceil(T / (multiprocessors * ctasPerMultiprocessor)) waves.
struct GemmTile {
  std::string kernel; ///< "grouped_matmul", "grouped_weight_grad"
  int64_t rows = 1, columns = 1;
  int64_t ctasPerMultiprocessor = 1; ///< occupancy: shared memory, registers
  /// The tile order: a persistent grid walking bands of this many row
  /// tiles, column by column, so that a band reads each weight panel once;
  /// 0: one CTA per tile, column-first (every row tile reads its weight).
  int64_t bandRowTiles = 0;
};

/// A kernel class that runs another's code on one device (the lowering emits
/// one kernel for both): it is priced, reported and calibrated as that one.
struct ClassAlias {
  std::string kernelClass; ///< "grouped_matmul_store_transposed_b.tc"
  std::string asClass;     ///< "grouped_matmul_store.tc"
};

struct KernelWork;

/// One device of DeviceTables.def.
struct DeviceDescription {
  std::string id;          ///< "h200-sm90a"
  std::string description; ///< where the numbers come from
  double matrixTflops = 0; ///< tensor-core rate (bf16/f16, f32 accumulate)
  double simtTflops = 0;   ///< f32 rate of the one-thread-per-item kernels
  double bandwidthGBs = 0; ///< device memory bandwidth
  double launchUs = 0;     ///< cost of one kernel launch
  double syncUs = 0;       ///< once per call: the host waits for the device
  int64_t multiprocessors = 0; ///< 0: no wave term (the CPU)
  /// The link between ranks (LINK rows): the bytes per second one rank
  /// sends to the others in an all-to-all, and the fixed cost of one
  /// collective call. 0: no link described (collectives cost nothing).
  double linkGBs = 0;
  double collectiveUs = 0;
  /// What an all-to-all costs the compute stream beyond its transfer,
  /// never hidden (the staging copy, the handshakes, the SMs its copies
  /// take from the GEMMs beside it). 0: none.
  double allToAllOverheadUs = 0;
  /// The last-level cache (CACHE rows; 0: none modeled). A tiled GEMM whose
  /// per-expert operands outgrow it reads them again from memory for every
  /// tile that needs them (CostModel's cacheMissBytes).
  double l2Bytes = 0;
  std::vector<KernelCalibration> kernels;
  std::vector<GemmTile> tiles;
  std::vector<ClassAlias> aliases;

  /// The calibration for `kernelClass` ("NAME.tc" / "NAME.simt"); falls
  /// back to "default.tc" / "default.simt", then to scales of 1.
  KernelCalibration calibrationFor(const std::string &kernelClass) const;
  /// The class `work` is calibrated under on this device: its name's
  /// (kernelClassOf), or the class whose code it runs here (ClassAlias).
  std::string classOf(const KernelWork &work) const;
  /// The tile of `kernel` ("grouped_matmul", ...), or null: not tiled here.
  const GemmTile *tileFor(const std::string &kernel) const;
  /// CTAs one wave of `tile` runs: multiprocessors x CTAs per multiprocessor.
  int64_t waveSlots(const GemmTile &tile) const {
    return multiprocessors * tile.ctasPerMultiprocessor;
  }
};

/// The device `id`, or null.
const DeviceDescription *findDevice(const std::string &id);

/// Every device id of the table, for error messages.
std::vector<std::string> deviceIds();

/// The table's device for a target ("cpu", "cuda:sm_90a", ...): the
/// machines the numbers were measured on.
std::string defaultDeviceFor(const std::string &target);

/// The work of one kernel (a moek op, or a fill/copy between them).
struct KernelWork {
  std::string name;       ///< as moe-run --profile names it: moek_route
  std::string op;         ///< the op it comes from
  double flops = 0;       ///< arithmetic, counting tile padding
  double bytes = 0;       ///< bytes moved to and from device memory
  int64_t launches = 1;   ///< launches per call
  bool tensorCore = false;
  /// Tiled GEMMs (0 otherwise): CTA tiles per launch (mean, and its spread
  /// from the routed rows per expert), the flops of one tile, and the CTAs
  /// of one wave. Their compute term is priced by waves (Waves.h).
  double tiles = 0, tilesSd = 0, tileFlops = 0;
  int64_t waveSlots = 0;
  /// A collective: `bytes` leave the rank over the device's link, each of
  /// the `launches` calls pays the link's fixed cost; no flops.
  bool communication = false;
  /// All-to-all overheads per launch of a collective (the device's
  /// allToAllOverheadUs each): time on the compute lane, never hidden.
  int64_t allToAllOverheads = 0;
  /// The class whose calibration prices it when not its own name's: a
  /// launch that is another fitted kernel on other operands (the router's
  /// tensor-core products are the backward's GEMM kernels).
  std::string calibratedAs;
};

/// Predicted milliseconds of `work` on `device` (a kernel, or a collective
/// over the device's link).
double predictMs(const DeviceDescription &device, const KernelWork &work);

/// The class a kernel's name gives: NAME.tc or NAME.simt, NAME its
/// calibratedAs or else its name without the `moek_` prefix;
/// DeviceDescription::classOf maps it to the one a device prices it as.
std::string kernelClassOf(const KernelWork &work);

} // namespace moe::cost

#endif // MOE_MLIR_LIB_ANALYSIS_COSTMODEL_DEVICETABLE_H
