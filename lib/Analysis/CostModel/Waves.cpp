//===- Waves.cpp - Wave quantization of tiled GEMM launches ---------------===//

#include "lib/Analysis/CostModel/Waves.h"
#include "lib/Analysis/CostModel/DeviceTable.h"

#include <algorithm>
#include <cmath>

using namespace moe::cost;

double moe::cost::expectedWaves(double tiles, double tilesSd, int64_t slots) {
  if (slots <= 0)
    return 0;
  double s = double(slots);
  if (tilesSd <= 0)
    return std::max(1.0, std::ceil(tiles / s));
  // E[ceil(X / s)] = sum over w >= 0 of P(X > w s); terms beyond six
  // deviations on either side are 0 or 1.
  auto above = [&](double x) {
    return 0.5 * std::erfc((x - tiles) / (tilesSd * std::sqrt(2.0)));
  };
  double lo = std::max(0.0, std::floor((tiles - 6 * tilesSd) / s));
  double hi = std::ceil((tiles + 6 * tilesSd) / s);
  double waves = lo; // w < lo: P(X > w s) is 1
  for (double w = lo; w <= hi; ++w)
    waves += above(w * s);
  return std::max(1.0, waves);
}

double moe::cost::waveFlops(const KernelWork &work) {
  if (work.waveSlots <= 0 || work.tiles <= 0)
    return work.flops;
  return double(work.launches) *
         expectedWaves(work.tiles, work.tilesSd, work.waveSlots) *
         double(work.waveSlots) * work.tileFlops;
}
