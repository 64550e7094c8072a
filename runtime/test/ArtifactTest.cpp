//===- ArtifactTest.cpp - Tests of artifact loading and calling -----------===//
//
// Runs the hand-written artifacts of fake_artifact.c and bad_artifact.c.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "moe-mlir/Runtime/ArtifactSeal.h"

#include <dlfcn.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

using namespace moert_test;

namespace {


class Artifact : public FakeArtifactTest {
protected:
  void SetUp() override {
    ASSERT_EQ(moert_artifact_load(FAKE_ARTIFACT, &artifact), 0)
        << moert_last_error();
    openFreeCounter(FAKE_ARTIFACT);
  }
};

TEST_F(Artifact, ReadsTheMetadata) {
  EXPECT_STREQ(moert_artifact_target(artifact), "cpu");
  ASSERT_EQ(moert_artifact_num_functions(artifact), 5);
  const char *names[] = {"add", "pair", "echo", "konst", "liar"};
  for (int i = 0; i < 5; ++i)
    EXPECT_STREQ(moert_function_name(moert_artifact_function(artifact, i)),
                 names[i]);
  EXPECT_EQ(moert_artifact_function(artifact, 5), nullptr);
  EXPECT_TRUE(errorContains("function index 5 is out of range"));

  const moert_function *add = lookup("add");
  EXPECT_EQ(moert_function_num_args(add), 2);
  EXPECT_EQ(moert_function_num_results(add), 1);
  moert_dtype dtype;
  int rank;
  int64_t dims[MOERT_MAX_RANK];
  ASSERT_EQ(moert_function_arg_spec(add, 1, &dtype, &rank, dims), 0);
  EXPECT_EQ(dtype, MOERT_F32);
  EXPECT_EQ(rank, 2);
  EXPECT_EQ(dims[0], MOERT_DYNAMIC);
  EXPECT_EQ(dims[1], 4);
  EXPECT_NE(moert_function_arg_spec(add, 2, &dtype, &rank, dims), 0);
  EXPECT_TRUE(errorContains("add: argument index 2 is out of range"));

  const moert_function *pair = lookup("pair");
  ASSERT_EQ(moert_function_result_spec(pair, 1, &dtype, &rank, dims), 0);
  EXPECT_EQ(dtype, MOERT_F32);
  EXPECT_EQ(rank, 1);
  EXPECT_EQ(dims[0], 3);

  // An attr value runs to the end of its line, double spaces included.
  EXPECT_STREQ(moert_function_attr(add, "kind"), "elementwise  add");
  EXPECT_STREQ(moert_function_attr(add, "layer.router"), "softmax");
  EXPECT_EQ(moert_function_attr(add, "layer.experts"), nullptr);
  EXPECT_EQ(moert_function_attr(pair, "kind"), nullptr);
}

TEST_F(Artifact, LookupOfAnUnknownNameListsTheFunctions) {
  EXPECT_EQ(moert_artifact_lookup(artifact, "forward"), nullptr);
  EXPECT_TRUE(errorContains(std::string(FAKE_ARTIFACT) +
                            ": no function 'forward' (the functions are: add, "
                            "pair, echo, konst, liar)"));
}

TEST_F(Artifact, CallsAdd) {
  unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> real(-10.0f, 10.0f);
  std::vector<float> a(5 * 4), b(5 * 4), sum(5 * 4);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = real(rng);
    b[i] = real(rng);
    sum[i] = a[i] + b[i];
  }
  TensorPtr ta = makeTensor(MOERT_F32, {5, 4}, a);
  TensorPtr tb = makeTensor(MOERT_F32, {5, 4}, b);
  moert_tensor *args[] = {ta.get(), tb.get()};
  moert_tensor *result = nullptr;
  int before = *freeCount;
  ASSERT_EQ(moert_function_call(lookup("add"), args, 2, &result, 1), 0)
      << moert_last_error();
  TensorPtr owned(result);
  EXPECT_EQ(*freeCount, before + 1);
  EXPECT_EQ(moert_tensor_dtype(result), MOERT_F32);
  EXPECT_EQ(dimsOf(result), (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(contents<float>(result), sum);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(moert_tensor_data(result)) % 64, 0u);

  // No rows at all is fine too.
  TensorPtr empty = makeTensor<float>(MOERT_F32, {0, 4}, {});
  moert_tensor *emptyArgs[] = {empty.get(), empty.get()};
  ASSERT_EQ(moert_function_call(lookup("add"), emptyArgs, 2, &result, 1), 0)
      << moert_last_error();
  EXPECT_EQ(dimsOf(result), (std::vector<int64_t>{0, 4}));
  moert_tensor_free(result);
}

TEST_F(Artifact, CopiesStridedViewsAndFreesSharedMemoryOnce) {
  std::vector<int64_t> x = {3, -7, 11, 2};
  TensorPtr tx = makeTensor(MOERT_I64, {4}, x);
  moert_tensor *args[] = {tx.get()};
  moert_tensor *results[2] = {};
  int before = *freeCount;
  ASSERT_EQ(moert_function_call(lookup("pair"), args, 1, results, 2), 0)
      << moert_last_error();
  TensorPtr first(results[0]), second(results[1]);
  EXPECT_EQ(*freeCount, before + 1) << "both results share one allocation";
  EXPECT_EQ(dimsOf(results[0]), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(contents<int64_t>(results[0]),
            (std::vector<int64_t>{3, -7, 11, 2, 30, -70, 110, 20}));
  EXPECT_EQ(dimsOf(results[1]), (std::vector<int64_t>{3}));
  EXPECT_EQ(contents<float>(results[1]), (std::vector<float>{9, 9, 9}));
}

TEST_F(Artifact, NeverFreesArgumentsOrGlobals) {
  std::vector<float> x = {0.5f, 1.25f, -3.0f, 8.0f, 0.125f, 2.0f};
  TensorPtr tx = makeTensor(MOERT_F32, {6}, x);
  moert_tensor *args[] = {tx.get()};
  moert_tensor *results[2] = {};
  int before = *freeCount;
  ASSERT_EQ(moert_function_call(lookup("echo"), args, 1, results, 2), 0)
      << moert_last_error();
  TensorPtr first(results[0]), second(results[1]);
  EXPECT_EQ(*freeCount, before + 1) << "only the sum is the artifact's";
  EXPECT_NE(moert_tensor_data(results[0]), moert_tensor_data(tx.get()));
  EXPECT_EQ(contents<float>(results[0]), x);
  EXPECT_EQ(contents<float>(tx.get()), x);
  float sum = 0;
  for (float value : x)
    sum += value;
  EXPECT_EQ(moert_tensor_rank(results[1]), 0);
  EXPECT_EQ(contents<float>(results[1]), std::vector<float>{sum});

  moert_tensor *constant = nullptr;
  before = *freeCount;
  ASSERT_EQ(moert_function_call(lookup("konst"), nullptr, 0, &constant, 1), 0)
      << moert_last_error();
  TensorPtr owned(constant);
  EXPECT_EQ(*freeCount, before);
  EXPECT_EQ(contents<float>(constant), (std::vector<float>{1.5f, -2.5f}));
}

TEST_F(Artifact, AResultOfTheWrongShapeIsAnErrorAndStillFreed) {
  moert_tensor *result = reinterpret_cast<moert_tensor *>(this);
  int before = *freeCount;
  EXPECT_NE(moert_function_call(lookup("liar"), nullptr, 0, &result, 1), 0);
  EXPECT_TRUE(errorContains(
      "liar: result 0 has shape [4] but the function declares [3] "
      "(dimension 0)"));
  EXPECT_EQ(result, nullptr);
  EXPECT_EQ(*freeCount, before + 1);
}

TEST_F(Artifact, ChecksTheArguments) {
  const moert_function *add = lookup("add");
  TensorPtr good = makeTensor<float>(MOERT_F32, {2, 4}, {});
  TensorPtr narrow = makeTensor<float>(MOERT_F32, {2, 3}, {});
  TensorPtr flat = makeTensor<float>(MOERT_F32, {8}, {});
  TensorPtr ints = makeTensor<int32_t>(MOERT_I32, {2, 4}, {});
  moert_tensor *result = nullptr;

  moert_tensor *one[] = {good.get()};
  EXPECT_NE(moert_function_call(add, one, 1, &result, 1), 0);
  EXPECT_TRUE(errorContains("add: expected 2 arguments, got 1"));

  moert_tensor *wrongDType[] = {good.get(), ints.get()};
  EXPECT_NE(moert_function_call(add, wrongDType, 2, &result, 1), 0);
  EXPECT_TRUE(errorContains(
      "add: argument 1 has dtype i32 but the function expects f32"));

  moert_tensor *wrongDim[] = {good.get(), narrow.get()};
  EXPECT_NE(moert_function_call(add, wrongDim, 2, &result, 1), 0);
  EXPECT_TRUE(errorContains("add: argument 1 has shape [2, 3] but the "
                            "function expects [?, 4] (dimension 1)"));

  moert_tensor *wrongRank[] = {flat.get(), good.get()};
  EXPECT_NE(moert_function_call(add, wrongRank, 2, &result, 1), 0);
  EXPECT_TRUE(errorContains("add: argument 0 has rank 1 (shape [8]) but the "
                            "function expects rank 2 ([?, 4])"));

  moert_tensor *missing[] = {good.get(), nullptr};
  EXPECT_NE(moert_function_call(add, missing, 2, &result, 1), 0);
  EXPECT_TRUE(errorContains("add: argument 1 is NULL"));

  moert_tensor *fine[] = {good.get(), good.get()};
  moert_tensor *two[2];
  EXPECT_NE(moert_function_call(add, fine, 2, two, 2), 0);
  EXPECT_TRUE(errorContains("add: the function has 1 results but room for 2"));
  EXPECT_EQ(result, nullptr);
}

/// A device tensor over host memory: only the checks look at it.
moert_device_tensor deviceTensor(moert_dtype dtype, std::vector<int64_t> dims,
                                 void *data) {
  moert_device_tensor tensor = {};
  tensor.dtype = dtype;
  tensor.rank = static_cast<int>(dims.size());
  for (size_t d = 0; d < dims.size(); ++d)
    tensor.dims[d] = dims[d];
  tensor.data = data;
  return tensor;
}

TEST_F(Artifact, DeviceCallsCheckEverythingBeforeTheDevice) {
  const moert_function *add = lookup("add");
  alignas(64) static float storage[16];
  moert_device_tensor good = deviceTensor(MOERT_F32, {2, 4}, storage);
  moert_device_tensor ints = deviceTensor(MOERT_I32, {2, 4}, storage);
  moert_device_tensor narrow = deviceTensor(MOERT_F32, {2, 3}, storage);
  moert_device_tensor null = deviceTensor(MOERT_F32, {2, 4}, nullptr);

  EXPECT_NE(moert_function_call_device(nullptr, nullptr, 0, nullptr, 0,
                                       nullptr),
            0);
  EXPECT_TRUE(errorContains("moert_function_call_device: the function is "
                            "NULL"));

  moert_device_tensor one[] = {good};
  EXPECT_NE(moert_function_call_device(add, one, 1, &good, 1, nullptr), 0);
  EXPECT_TRUE(errorContains("add: expected 2 arguments, got 1"));

  moert_device_tensor withNull[] = {good, null};
  EXPECT_NE(moert_function_call_device(add, withNull, 2, &good, 1, nullptr),
            0);
  EXPECT_TRUE(errorContains("add: argument 1: its data is NULL"));

  moert_device_tensor wrongDType[] = {good, ints};
  EXPECT_NE(moert_function_call_device(add, wrongDType, 2, &good, 1, nullptr),
            0);
  EXPECT_TRUE(errorContains(
      "add: argument 1 has dtype i32 but the function expects f32"));

  moert_device_tensor wrongDim[] = {good, narrow};
  EXPECT_NE(moert_function_call_device(add, wrongDim, 2, &good, 1, nullptr),
            0);
  EXPECT_TRUE(errorContains("add: argument 1 has shape [2, 3] but the "
                            "function expects [?, 4] (dimension 1)"));

  moert_device_tensor fine[] = {good, good};
  EXPECT_NE(moert_function_call_device(add, fine, 2, &narrow, 1, nullptr), 0);
  EXPECT_TRUE(errorContains("add: result 0 was given as f32[2, 3] but the "
                            "function returns f32[?, 4]"));
  EXPECT_NE(moert_function_call_device(add, fine, 2, &ints, 1, nullptr), 0);
  EXPECT_TRUE(errorContains("add: result 0 was given as i32"));
  moert_device_tensor two[] = {good, good};
  EXPECT_NE(moert_function_call_device(add, fine, 2, two, 2, nullptr), 0);
  EXPECT_TRUE(errorContains("add: the function has 1 results but 2 buffers"));

  // Everything right, but the function runs on the CPU.
  EXPECT_NE(moert_function_call_device(add, fine, 2, &good, 1, nullptr), 0);
  EXPECT_TRUE(errorContains("add: a CPU function takes host tensors: call it "
                            "with moert_function_call"));
  EXPECT_EQ(storage[0], 0.0f) << "nothing ran";
}

TEST_F(Artifact, OwnedDeviceCallsCheckEverythingBeforeTheDevice) {
  const moert_function *add = lookup("add");
  alignas(64) static float storage[16];
  moert_device_tensor good = deviceTensor(MOERT_F32, {2, 4}, storage);
  moert_device_tensor narrow = deviceTensor(MOERT_F32, {2, 3}, storage);
  moert_device_result result = {};

  EXPECT_NE(moert_function_call_device_owned(nullptr, nullptr, 0, nullptr, 0,
                                             nullptr),
            0);
  EXPECT_TRUE(errorContains("moert_function_call_device_owned: the function "
                            "is NULL"));
  moert_device_tensor fine[] = {good, good};
  EXPECT_NE(moert_function_call_device_owned(add, fine, 2, nullptr, 1,
                                             nullptr),
            0);
  EXPECT_TRUE(errorContains("add: results is NULL"));
  moert_device_result two[2] = {};
  EXPECT_NE(moert_function_call_device_owned(add, fine, 2, two, 2, nullptr),
            0);
  EXPECT_TRUE(errorContains("add: the function has 1 results but 2 buffers"));
  moert_device_tensor wrongDim[] = {good, narrow};
  EXPECT_NE(moert_function_call_device_owned(add, wrongDim, 2, &result, 1,
                                             nullptr),
            0);
  EXPECT_TRUE(errorContains("add: argument 1 has shape [2, 3]"));
  EXPECT_NE(moert_function_call_device_owned(add, fine, 2, &result, 1,
                                             nullptr),
            0);
  EXPECT_TRUE(errorContains("add: a CPU function takes host tensors"));
  EXPECT_EQ(result.owner, nullptr) << "nothing was handed over";
  moert_device_result_release(nullptr); // Harmless.
}

TEST_F(Artifact, TimesAFunction) {
  TensorPtr a = makeTensor<float>(MOERT_F32, {64, 4}, {});
  moert_tensor *args[] = {a.get(), a.get()};
  std::vector<double> times(7, -1.0);
  int before = *freeCount;
  ASSERT_EQ(moert_function_time(lookup("add"), args, 2, 3, 7, times.data()), 0)
      << moert_last_error();
  EXPECT_EQ(*freeCount, before + 10) << "each run's result is freed";
  for (double time : times)
    EXPECT_GT(time, 0.0);

  // Results that are arguments or globals are not freed, as in a call.
  moert_tensor *x[] = {makeTensor<float>(MOERT_F32, {3}, {1, 2, 3}).release()};
  TensorPtr owned(x[0]);
  before = *freeCount;
  ASSERT_EQ(moert_function_time(lookup("echo"), x, 1, 0, 2, times.data()), 0)
      << moert_last_error();
  EXPECT_EQ(*freeCount, before + 2) << "only the sums";
  EXPECT_EQ(contents<float>(x[0]), (std::vector<float>{1, 2, 3}));
  ASSERT_EQ(
      moert_function_time(lookup("konst"), nullptr, 0, 1, 1, times.data()), 0)
      << moert_last_error();
  EXPECT_EQ(*freeCount, before + 2);
}

TEST_F(Artifact, TimingChecksItsArguments) {
  const moert_function *add = lookup("add");
  TensorPtr good = makeTensor<float>(MOERT_F32, {2, 4}, {});
  TensorPtr narrow = makeTensor<float>(MOERT_F32, {2, 3}, {});
  moert_tensor *args[] = {good.get(), good.get()};
  double times[2];
  EXPECT_NE(moert_function_time(add, args, 2, 0, 0, times), 0);
  EXPECT_TRUE(errorContains("add: cannot time 0 warm-up and 0 timed runs "
                            "(want warmup >= 0 and repeat >= 1)"));
  EXPECT_NE(moert_function_time(add, args, 2, -1, 2, times), 0);
  EXPECT_TRUE(errorContains("cannot time -1 warm-up"));
  EXPECT_NE(moert_function_time(add, args, 2, 0, 2, nullptr), 0);
  EXPECT_TRUE(errorContains("add: times_ms is NULL"));
  EXPECT_NE(moert_function_time(add, args, 1, 0, 2, times), 0);
  EXPECT_TRUE(errorContains("add: expected 2 arguments, got 1"));
  moert_tensor *wrong[] = {good.get(), narrow.get()};
  EXPECT_NE(moert_function_time(add, wrong, 2, 0, 2, times), 0);
  EXPECT_TRUE(errorContains("add: argument 1 has shape [2, 3]"));
  EXPECT_NE(moert_function_time(nullptr, args, 2, 0, 2, times), 0);
  EXPECT_TRUE(errorContains("moert_function_time: the function is NULL"));
}

TEST_F(Artifact, OnlyCudaFunctionsCanBeProfiled) {
  TensorPtr a = makeTensor<float>(MOERT_F32, {2, 4}, {});
  moert_tensor *args[] = {a.get(), a.get()};
  moert_kernel_time entries[4];
  int count = -1;
  EXPECT_NE(
      moert_function_profile(lookup("add"), args, 2, 3, entries, 4, &count), 0);
  EXPECT_TRUE(errorContains("add: only CUDA functions can be profiled (this "
                            "one runs on the CPU)"));
  EXPECT_EQ(count, -1);
  EXPECT_NE(moert_function_profile(lookup("add"), args, 1, 3, entries, 4,
                                   &count),
            0);
  EXPECT_TRUE(errorContains("add: expected 2 arguments, got 1"));
  EXPECT_NE(moert_function_profile(nullptr, args, 2, 3, entries, 4, &count), 0);
  EXPECT_TRUE(errorContains("moert_function_profile: the function is NULL"));
}

TEST(ArtifactLoad, MissingFile) {
  moert_artifact *artifact = nullptr;
  EXPECT_NE(moert_artifact_load("/nonexistent/model.so", &artifact), 0);
  EXPECT_EQ(artifact, nullptr);
  EXPECT_TRUE(errorContains("/nonexistent/model.so: cannot open artifact: No "
                            "such file or directory"));
}

TEST(ArtifactLoad, NotASharedObject) {
  TempDir dir;
  std::string path = dir.file("model.so");
  std::ofstream(path) << "moe-artifact 1\n";
  moert_artifact *artifact = nullptr;
  EXPECT_NE(moert_artifact_load(path.c_str(), &artifact), 0);
  EXPECT_TRUE(errorContains(path + " is not a valid artifact: it is 15 bytes "
                                   "long, too short for a shared object"));
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Loads `bytes` written to a file; the error of the failed load.
std::string loadError(const std::string &bytes) {
  TempDir dir;
  std::string path = dir.file("model.so");
  std::ofstream(path, std::ios::binary) << bytes;
  moert_artifact *artifact = nullptr;
  EXPECT_NE(moert_artifact_load(path.c_str(), &artifact), 0);
  EXPECT_EQ(artifact, nullptr);
  std::string error = moert_last_error();
  EXPECT_EQ(error.rfind(path + " is not a valid artifact: ", 0), 0u) << error;
  return error;
}

// A truncated or corrupted artifact is an error before dlopen, which would
// fault (SIGBUS) touching a segment past the end of a truncated file.
TEST(ArtifactLoad, ValidatedBeforeDlopen) {
  std::string good = readBytes(FAKE_ARTIFACT);
  ASSERT_GT(good.size(), 1000u);
  EXPECT_NE(loadError(good.substr(0, good.size() / 2))
                .find("it has no moe-compile seal at its end (the file is "
                      "truncated, or was not made by moe-compile)"),
            std::string::npos);
  // Cut in the middle but the trailer kept: the recorded size disagrees.
  std::string cut = good.substr(0, 4096) + good.substr(good.size() - 24);
  EXPECT_NE(loadError(cut).find("(the file was cut or extended)"),
            std::string::npos);
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  EXPECT_NE(loadError(flipped).find("its checksum does not match (the file "
                                    "is corrupt)"),
            std::string::npos);
  // Sealed, but no ELF shared object.
  std::string text(200, 'x');
  text += moert::seal::makeTrailer(
      text.size(), moert::seal::fnv1a(
                       reinterpret_cast<const unsigned char *>(text.data()),
                       text.size()));
  EXPECT_NE(loadError(text).find("it is not an ELF file"), std::string::npos);
}

TEST(ArtifactLoad, UnsealedSharedObject) {
  moert_artifact *artifact = nullptr;
  EXPECT_NE(moert_artifact_load(UNSEALED_ARTIFACT, &artifact), 0);
  EXPECT_TRUE(errorContains(std::string(UNSEALED_ARTIFACT) +
                            " is not a valid artifact: it has no moe-compile "
                            "seal at its end"));
}

TEST(ArtifactLoad, SharedObjectWithoutMetadata) {
  moert_artifact *artifact = nullptr;
  EXPECT_NE(moert_artifact_load(NOT_ARTIFACT, &artifact), 0);
  EXPECT_TRUE(errorContains(std::string(NOT_ARTIFACT) +
                            " is not a MoE-MLIR artifact: no symbol "
                            "moe_artifact_metadata"));
}

TEST(ArtifactLoad, MalformedMetadataNamesTheLine) {
  const struct {
    const char *path;
    const char *error;
  } cases[] = {
      {BAD_ARTIFACT_1, "metadata line 5: unknown record 'bogus'"},
      {BAD_ARTIFACT_2, "metadata line 3: function 'f' has no 'end'"},
      {BAD_ARTIFACT_3, "metadata line 1: unsupported artifact format version "
                       "'2' (this runtime reads version 1)"},
      {BAD_ARTIFACT_4, "metadata line 5: arg 0 has rank 2 but 1 dimensions"},
      {BAD_ARTIFACT_5, "metadata line 4: unknown dtype 'f64'"},
      {BAD_ARTIFACT_6, "the metadata declares function 'g' but there is no "
                       "symbol moe_entry_g"},
      {BAD_ARTIFACT_7, "metadata line 4: empty field (fields are separated by "
                       "single spaces)"},
      {BAD_ARTIFACT_8, "metadata line 5: function 'f' declares 2 arguments and "
                       "0 results but has 1 'arg' and 0 'result' records"},
  };
  for (const auto &c : cases) {
    moert_artifact *artifact = nullptr;
    EXPECT_NE(moert_artifact_load(c.path, &artifact), 0) << c.path;
    EXPECT_EQ(artifact, nullptr);
    EXPECT_TRUE(errorContains(std::string(c.path) + ": " + c.error));
  }
}

TEST(ArtifactLoad, TwoLoadsAreIndependent) {
  moert_artifact *first = nullptr, *second = nullptr;
  ASSERT_EQ(moert_artifact_load(FAKE_ARTIFACT, &first), 0);
  ASSERT_EQ(moert_artifact_load(FAKE_ARTIFACT, &second), 0);
  moert_artifact_unload(first);
  TensorPtr x = makeTensor<float>(MOERT_F32, {1}, {4.0f});
  moert_tensor *args[] = {x.get()};
  moert_tensor *results[2] = {};
  ASSERT_EQ(moert_function_call(moert_artifact_lookup(second, "echo"), args, 1,
                                results, 2),
            0)
      << moert_last_error();
  EXPECT_EQ(contents<float>(results[1]), std::vector<float>{4.0f});
  moert_tensor_free(results[0]);
  moert_tensor_free(results[1]);
  moert_artifact_unload(second);
}

} // namespace
