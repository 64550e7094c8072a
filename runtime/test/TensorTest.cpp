//===- TensorTest.cpp - Tests of moert tensors and errors -----------------===//

#include "TestUtil.h"

#include <cstring>
#include <thread>

using namespace moert_test;

namespace {

TEST(Tensor, CreateIsZeroedAndAligned) {
  const int64_t dims[] = {3, 5, 7};
  TensorPtr tensor(moert_tensor_create(MOERT_I64, 3, dims));
  ASSERT_TRUE(tensor) << moert_last_error();
  EXPECT_EQ(moert_tensor_dtype(tensor.get()), MOERT_I64);
  EXPECT_EQ(moert_tensor_rank(tensor.get()), 3);
  EXPECT_EQ(std::memcmp(moert_tensor_dims(tensor.get()), dims, sizeof(dims)),
            0);
  EXPECT_EQ(moert_tensor_num_elements(tensor.get()), 105);
  auto *data = static_cast<const int64_t *>(moert_tensor_data(tensor.get()));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 64, 0u);
  for (int i = 0; i < 105; ++i)
    ASSERT_EQ(data[i], 0);
}

TEST(Tensor, WrapUsesTheCallersMemoryAndNeverFreesIt) {
  alignas(8) float values[6] = {1, 2, 3, 4, 5, 6};
  const int64_t dims[] = {2, 3};
  moert_tensor *tensor = moert_tensor_wrap(MOERT_F32, 2, dims, values);
  ASSERT_NE(tensor, nullptr) << moert_last_error();
  EXPECT_EQ(moert_tensor_data(tensor), values);
  EXPECT_EQ(moert_tensor_num_elements(tensor), 6);
  // A stack array: freeing it here would crash the test.
  moert_tensor_free(tensor);
  EXPECT_EQ(values[5], 6.0f);
}

TEST(Tensor, WrapRefusesBadMemory) {
  const int64_t dims[] = {2};
  EXPECT_EQ(moert_tensor_wrap(MOERT_F32, 1, dims, nullptr), nullptr);
  EXPECT_NE(std::strstr(moert_last_error(), "data is NULL"), nullptr)
      << moert_last_error();
  alignas(8) char bytes[16] = {};
  EXPECT_EQ(moert_tensor_wrap(MOERT_F32, 1, dims, bytes + 2), nullptr);
  EXPECT_NE(std::strstr(moert_last_error(), "not aligned to 4 bytes"),
            nullptr)
      << moert_last_error();
  const int64_t negative[] = {-2};
  EXPECT_EQ(moert_tensor_wrap(MOERT_F32, 1, negative, bytes), nullptr);
  EXPECT_NE(std::strstr(moert_last_error(), "non-negative"), nullptr)
      << moert_last_error();
}

TEST(Tensor, ScalarsAndEmptyTensors) {
  TensorPtr scalar(moert_tensor_create(MOERT_F32, 0, nullptr));
  ASSERT_TRUE(scalar) << moert_last_error();
  EXPECT_EQ(moert_tensor_num_elements(scalar.get()), 1);
  EXPECT_EQ(*static_cast<float *>(moert_tensor_data(scalar.get())), 0.0f);

  const int64_t dims[] = {4, 0};
  TensorPtr empty(moert_tensor_create(MOERT_BF16, 2, dims));
  ASSERT_TRUE(empty) << moert_last_error();
  EXPECT_EQ(moert_tensor_num_elements(empty.get()), 0);
  EXPECT_NE(moert_tensor_data(empty.get()), nullptr);
  moert_tensor_free(nullptr); // A no-op.
}

TEST(Tensor, CreateRejectsBadShapesAndDTypes) {
  const int64_t negative[] = {2, -3};
  EXPECT_EQ(moert_tensor_create(MOERT_F32, 2, negative), nullptr);
  EXPECT_TRUE(
      errorContains("dimension 1 is -3 (dimensions must be non-negative)"));

  const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(moert_tensor_create(MOERT_F32, 9, nine), nullptr);
  EXPECT_TRUE(errorContains("rank 9 (the rank must be 0 to 8)"));
  EXPECT_EQ(moert_tensor_create(MOERT_F32, -1, nine), nullptr);
  EXPECT_TRUE(errorContains("rank -1"));

  EXPECT_EQ(moert_tensor_create(static_cast<moert_dtype>(7), 1, nine), nullptr);
  EXPECT_TRUE(errorContains("invalid dtype 7"));

  EXPECT_EQ(moert_tensor_create(MOERT_F32, 2, nullptr), nullptr);
  EXPECT_TRUE(errorContains("dims is NULL"));

  const int64_t huge[] = {INT64_MAX / 2, 4};
  EXPECT_EQ(moert_tensor_create(MOERT_F32, 2, huge), nullptr);
  EXPECT_TRUE(errorContains("too many elements"));
}

TEST(Tensor, ErrorsArePerThread) {
  EXPECT_EQ(moert_tensor_create(MOERT_F32, -1, nullptr), nullptr);
  std::string other = "unset";
  std::thread([&] { other = moert_last_error(); }).join();
  EXPECT_EQ(other, "");
  EXPECT_TRUE(errorContains("rank -1"));
}

} // namespace
