//===- CudaChipTest.cpp - The CUDA target's chips -----------------------===//
//--------------------------===//
//
// Target strings and chip names are parsed in one place (CudaChip); the
// facts the kernels depend on follow the chip.
//
//===----------------------------------------------------------------------===//

#include "lib/Target/CudaChip.h"

#include <gtest/gtest.h>

using moe::target::CudaChip;

namespace {

TEST(CudaChipTest, ParsesTheChipsArtifactsAreMadeFor) {
  std::string error;
  std::optional<CudaChip> sm80 = CudaChip::parseTarget("cuda:sm_80", error);
  std::optional<CudaChip> sm90 = CudaChip::parseTarget("cuda:sm_90", error);
  std::optional<CudaChip> sm90a = CudaChip::parseTarget("cuda:sm_90a", error);
  std::optional<CudaChip> plain = CudaChip::parseTarget("cuda", error);
  ASSERT_TRUE(sm80 && sm90 && sm90a && plain) << error;
  EXPECT_EQ(sm80->name(), "sm_80");
  EXPECT_EQ(sm90->name(), "sm_90");
  EXPECT_EQ(sm90a->name(), "sm_90a");
  EXPECT_EQ(plain->name(), "sm_90");
}

TEST(CudaChipTest, OnlySm90aHasWarpgroupMma) {
  std::string error;
  EXPECT_TRUE(CudaChip::parse("sm_90a", error)->hasWarpgroupMma());
  EXPECT_FALSE(CudaChip::parse("sm_90", error)->hasWarpgroupMma());
  EXPECT_FALSE(CudaChip::parse("sm_80", error)->hasWarpgroupMma());
  EXPECT_TRUE(CudaChip::parse("sm_90", error)->hasVectorReductions());
  EXPECT_FALSE(CudaChip::parse("sm_80", error)->hasVectorReductions());
  EXPECT_TRUE(CudaChip::parse("sm_90", error)->hasTensorMemoryAccelerator());
}

TEST(CudaChipTest, SharedMemoryFollowsTheChip) {
  std::string error;
  EXPECT_EQ(CudaChip::parse("sm_90a", error)->maxSharedBytesPerBlock(),
            227 * 1024);
  EXPECT_EQ(CudaChip::parse("sm_80", error)->maxSharedBytesPerBlock(),
            163 * 1024);
  EXPECT_EQ(CudaChip::parse("sm_86", error)->maxSharedBytesPerBlock(),
            99 * 1024);
}

TEST(CudaChipTest, RejectsWhatTheKernelsDoNotSupport) {
  for (const char *name :
       {"sm_70", "sm_80a", "sm_9", "gfx90a", "sm_90b", "sm_100", ""}) {
    std::string error;
    EXPECT_FALSE(CudaChip::parse(name, error)) << name;
    EXPECT_NE(error.find("(sm_80, sm_86, sm_87, sm_89, sm_90, sm_90a)"),
              std::string::npos)
        << error;
  }
  // The pass takes the chips LLVM's NVPTX backend and PTX 8.1 support;
  // artifacts only the chips checked on GPUs.
  std::string error;
  EXPECT_TRUE(CudaChip::parse("sm_89", error));
  EXPECT_FALSE(CudaChip::parseTarget("cuda:sm_89", error));
  EXPECT_FALSE(CudaChip::parseTarget("cpu", error));
  EXPECT_FALSE(CudaChip::parseTarget("cuda:", error));
}

} // namespace
