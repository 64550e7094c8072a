//===- WavesTest.cpp - Wave quantization of tiled GEMM launches -----------===//
//
// A tiled GEMM launch costs whole waves of the chip's CTA slots: fewer tiles
// than slots cost one full wave, one tile more than N waves costs N + 1.
// Checked on the expected-waves function and through predictMs on the H200
// rows of the table (132 SMs, the wgmma kernel's one CTA per SM).
//
//===----------------------------------------------------------------------===//

#include "lib/Analysis/CostModel/DeviceTable.h"
#include "lib/Analysis/CostModel/Waves.h"

#include <gtest/gtest.h>

using namespace moe::cost;

namespace {

TEST(Waves, WholeWavesWithoutSpread) {
  EXPECT_EQ(expectedWaves(1, 0, 132), 1.0);
  EXPECT_EQ(expectedWaves(40, 0, 132), 1.0);
  EXPECT_EQ(expectedWaves(132, 0, 132), 1.0);
  EXPECT_EQ(expectedWaves(133, 0, 132), 2.0);
  EXPECT_EQ(expectedWaves(264, 0, 132), 2.0);
  EXPECT_EQ(expectedWaves(265, 0, 132), 3.0);
  EXPECT_EQ(expectedWaves(0, 0, 132), 1.0); // an empty launch still runs
  EXPECT_EQ(expectedWaves(500, 0, 0), 0.0); // no slots: no wave term
}

TEST(Waves, SpreadAveragesTheStep) {
  // Tile counts spread evenly around a wave boundary: half the launches
  // take one wave, half two.
  EXPECT_NEAR(expectedWaves(132, 4, 132), 1.5, 1e-6);
  // Far from a boundary the spread does not matter.
  EXPECT_NEAR(expectedWaves(66, 4, 132), 1.0, 1e-9);
  EXPECT_NEAR(expectedWaves(10 * 132 + 66, 4, 132), 11.0, 1e-9);
  // More tiles never cost fewer waves.
  double previous = 0;
  for (double tiles = 100; tiles < 300; tiles += 0.5) {
    double w = expectedWaves(tiles, 3, 132);
    EXPECT_GE(w, previous - 1e-12) << tiles;
    previous = w;
  }
}

/// One launch of `tiles` 128 x 256 x 2048 tiles of the grouped GEMM on
/// `device`, with the flops the tiles hold (what the model used before it
/// had waves).
KernelWork gemmLaunch(const DeviceDescription &device, double tiles) {
  const GemmTile *tile = device.tileFor("grouped_matmul");
  KernelWork w;
  w.name = "moek_grouped_matmul_store";
  w.op = "moek.grouped_matmul";
  w.tensorCore = true;
  w.tileFlops = 2.0 * tile->rows * tile->columns * 2048;
  w.flops = tiles * w.tileFlops;
  w.tiles = tiles;
  w.waveSlots = device.waveSlots(*tile);
  return w;
}

TEST(Waves, TheH200PricesLaunchesByWaves) {
  const DeviceDescription *h200 = findDevice("h200-sm90a");
  ASSERT_NE(h200, nullptr);
  ASSERT_NE(h200->tileFor("grouped_matmul"), nullptr);
  ASSERT_EQ(h200->multiprocessors, 132);
  int64_t slots = h200->waveSlots(*h200->tileFor("grouped_matmul"));
  ASSERT_EQ(slots, 132);
  double few = predictMs(*h200, gemmLaunch(*h200, 40));
  double full = predictMs(*h200, gemmLaunch(*h200, 132));
  double oneMore = predictMs(*h200, gemmLaunch(*h200, 133));
  double twoFull = predictMs(*h200, gemmLaunch(*h200, 264));
  // Fewer tiles than SMs cost a full wave.
  EXPECT_DOUBLE_EQ(few, full);
  // One tile past a wave costs a second wave, as much as a full one.
  EXPECT_DOUBLE_EQ(oneMore, twoFull);
  KernelWork one = gemmLaunch(*h200, 132);
  // A wave: its tiles' flops and the class's fixed time per wave (WAVE).
  KernelCalibration k = h200->calibrationFor(h200->classOf(one));
  double waveMs = k.computeScale * 132 * one.tileFlops /
                      (h200->matrixTflops * 1e12) * 1e3 +
                  k.waveUs * 1e-3;
  EXPECT_GT(waveMs, 0.0);
  EXPECT_NEAR(oneMore - full, waveMs, 1e-9);
  // Without a wave term the 40 tiles would be priced at their flops.
  KernelWork flat = gemmLaunch(*h200, 40);
  flat.waveSlots = 0;
  EXPECT_LT(predictMs(*h200, flat), few);
  EXPECT_EQ(waveFlops(flat), flat.flops);
}

TEST(Waves, LaunchesMultiplyTheirWaves) {
  const DeviceDescription *h200 = findDevice("h200-sm90a");
  ASSERT_NE(h200, nullptr);
  KernelWork one = gemmLaunch(*h200, 40);
  KernelWork many = one;
  many.launches = 128;
  EXPECT_DOUBLE_EQ(waveFlops(many), 128 * waveFlops(one));
  EXPECT_DOUBLE_EQ(waveFlops(one), 132 * one.tileFlops);
}

TEST(Waves, TheCpuHasNoWaves) {
  const DeviceDescription *cpu = findDevice("cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->multiprocessors, 0);
  EXPECT_EQ(cpu->tileFor("grouped_matmul"), nullptr);
}

} // namespace
