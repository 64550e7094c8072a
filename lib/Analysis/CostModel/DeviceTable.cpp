//===- DeviceTable.cpp - Devices the cost model predicts for --------------===//

#include "lib/Analysis/CostModel/DeviceTable.h"
#include "lib/Analysis/CostModel/Waves.h"

#include <algorithm>

using namespace moe::cost;

namespace {

std::vector<DeviceDescription> buildTable() {
  std::vector<DeviceDescription> devices;
#define DEVICE(ID, DESCRIPTION, MATRIX_TFLOPS, SIMT_TFLOPS, BANDWIDTH_GBS,     \
               LAUNCH_US, SYNC_US, MULTIPROCESSORS)                            \
  {                                                                            \
    /* By name, so that a new field cannot shift the others. */                \
    DeviceDescription d;                                                       \
    d.id = ID;                                                                 \
    d.description = DESCRIPTION;                                               \
    d.matrixTflops = MATRIX_TFLOPS;                                            \
    d.simtTflops = SIMT_TFLOPS;                                                \
    d.bandwidthGBs = BANDWIDTH_GBS;                                            \
    d.launchUs = LAUNCH_US;                                                    \
    d.syncUs = SYNC_US;                                                        \
    d.multiprocessors = MULTIPROCESSORS;                                       \
    devices.push_back(std::move(d));                                           \
  }
#define KERNEL(DEVICE_ID, CLASS, COMPUTE_SCALE, BYTES_SCALE)                   \
  for (DeviceDescription &d : devices)                                         \
    if (d.id == DEVICE_ID)                                                     \
      d.kernels.push_back(KernelCalibration{CLASS, COMPUTE_SCALE, BYTES_SCALE});
#define WAVE(DEVICE_ID, CLASS, WAVE_US)                                        \
  for (DeviceDescription &d : devices)                                         \
    if (d.id == DEVICE_ID)                                                     \
      for (KernelCalibration &k : d.kernels)                                   \
        if (k.kernelClass == CLASS)                                            \
          k.waveUs = WAVE_US;
#define TILE(DEVICE_ID, KERNEL, ROWS, COLUMNS, CTAS_PER_MULTIPROCESSOR,      \
             BAND_ROW_TILES)                                                   \
  for (DeviceDescription &d : devices)                                         \
    if (d.id == DEVICE_ID)                                                     \
      d.tiles.push_back(GemmTile{KERNEL, ROWS, COLUMNS,                        \
                                 CTAS_PER_MULTIPROCESSOR, BAND_ROW_TILES});
#define LINK(DEVICE_ID, BANDWIDTH_GBS, COLLECTIVE_US, OVERHEAD_US)            \
  for (DeviceDescription &d : devices)                                         \
    if (d.id == DEVICE_ID) {                                                   \
      d.linkGBs = BANDWIDTH_GBS;                                               \
      d.collectiveUs = COLLECTIVE_US;                                          \
      d.allToAllOverheadUs = OVERHEAD_US;                                      \
    }
#define CACHE(DEVICE_ID, L2_MIB)                                               \
  for (DeviceDescription &d : devices)                                         \
    if (d.id == DEVICE_ID)                                                     \
      d.l2Bytes = double(L2_MIB) * 1024 * 1024;
#define CLASS_AS(DEVICE_ID, CLASS, AS_CLASS)                                   \
  for (DeviceDescription &d : devices)                                         \
    if (d.id == DEVICE_ID)                                                     \
      d.aliases.push_back(ClassAlias{CLASS, AS_CLASS});
#include "lib/Analysis/CostModel/DeviceTables.def"
#undef DEVICE
#undef KERNEL
#undef WAVE
#undef TILE
#undef LINK
#undef CLASS_AS
#undef CACHE
  return devices;
}

const std::vector<DeviceDescription> &table() {
  static const std::vector<DeviceDescription> devices = buildTable();
  return devices;
}

} // namespace

KernelCalibration
DeviceDescription::calibrationFor(const std::string &kernelClass) const {
  auto find = [&](const std::string &name) -> const KernelCalibration * {
    for (const KernelCalibration &k : kernels)
      if (k.kernelClass == name)
        return &k;
    return nullptr;
  };
  if (const KernelCalibration *k = find(kernelClass))
    return *k;
  std::string suffix = kernelClass.substr(kernelClass.rfind('.'));
  if (const KernelCalibration *k = find("default" + suffix))
    return *k;
  return KernelCalibration{kernelClass, 1.0, 1.0};
}

std::string DeviceDescription::classOf(const KernelWork &work) const {
  std::string kernelClass = kernelClassOf(work);
  for (const ClassAlias &alias : aliases)
    if (alias.kernelClass == kernelClass)
      return alias.asClass;
  return kernelClass;
}

const GemmTile *DeviceDescription::tileFor(const std::string &kernel) const {
  for (const GemmTile &t : tiles)
    if (t.kernel == kernel)
      return &t;
  return nullptr;
}

const DeviceDescription *moe::cost::findDevice(const std::string &id) {
  for (const DeviceDescription &d : table())
    if (d.id == id)
      return &d;
  return nullptr;
}

std::vector<std::string> moe::cost::deviceIds() {
  std::vector<std::string> ids;
  for (const DeviceDescription &d : table())
    ids.push_back(d.id);
  return ids;
}

std::string moe::cost::defaultDeviceFor(const std::string &target) {
  if (target == "cpu")
    return "cpu";
  // sm_90a is the wgmma path; other CUDA targets run the mma.sync kernels,
  // measured on the same H200.
  if (target == "cuda:sm_90a")
    return "h200-sm90a";
  return "h200-sm90";
}

std::string moe::cost::kernelClassOf(const KernelWork &work) {
  std::string name =
      !work.calibratedAs.empty()
          ? work.calibratedAs
          : work.name.substr(work.name.rfind("moek_", 0) == 0 ? 5 : 0);
  return name + (work.tensorCore ? ".tc" : ".simt");
}

double moe::cost::predictMs(const DeviceDescription &device,
                            const KernelWork &work) {
  if (work.communication) {
    double seconds = double(work.launches) * device.collectiveUs * 1e-6;
    if (device.linkGBs > 0)
      seconds += work.bytes / (device.linkGBs * 1e9);
    return seconds * 1e3;
  }
  KernelCalibration k = device.calibrationFor(device.classOf(work));
  double rate = (work.tensorCore ? device.matrixTflops : device.simtTflops) *
                1e12;
  double seconds = k.computeScale * waveFlops(work) / rate +
                   k.bytesScale * work.bytes / (device.bandwidthGBs * 1e9) +
                   double(work.launches) * device.launchUs * 1e-6;
  if (k.waveUs > 0 && work.waveSlots > 0 && work.tiles > 0)
    seconds += double(work.launches) *
               expectedWaves(work.tiles, work.tilesSd, work.waveSlots) *
               k.waveUs * 1e-6;
  return seconds * 1e3;
}
