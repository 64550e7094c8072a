//===- NpyTest.cpp - Tests of .npy reading and writing --------------------===//

#include "TestUtil.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

using namespace moert_test;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// A .npy file of version major.0 with `header` and raw `data` as given.
std::string npyBytes(int major, const std::string &header,
                     const std::string &data) {
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  uint32_t length = static_cast<uint32_t>(header.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i)
    bytes += static_cast<char>((length >> (8 * i)) & 0xff);
  return bytes + header + data;
}

template <typename T> std::string rawBytes(const std::vector<T> &values) {
  return std::string(reinterpret_cast<const char *>(values.data()),
                     values.size() * sizeof(T));
}

/// Fills a tensor with fresh random values of its dtype.
void fillRandom(moert_tensor *tensor, std::mt19937 &rng) {
  std::uniform_real_distribution<float> real(-100.0f, 100.0f);
  std::uniform_int_distribution<int64_t> integer(INT64_MIN, INT64_MAX);
  int64_t count = moert_tensor_num_elements(tensor);
  void *data = moert_tensor_data(tensor);
  for (int64_t i = 0; i < count; ++i) {
    switch (moert_tensor_dtype(tensor)) {
    case MOERT_F32:
      static_cast<float *>(data)[i] = real(rng);
      break;
    case MOERT_BF16:
      static_cast<uint16_t *>(data)[i] = moert_f32_to_bf16(real(rng));
      break;
    case MOERT_F16:
      static_cast<uint16_t *>(data)[i] = moert_f32_to_f16(real(rng));
      break;
    case MOERT_I32:
      static_cast<int32_t *>(data)[i] = static_cast<int32_t>(integer(rng));
      break;
    case MOERT_I64:
      static_cast<int64_t *>(data)[i] = integer(rng);
      break;
    }
  }
}

class Npy : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_FALSE(dir.path.empty()) << "mkdtemp failed"; }

  /// Loads `path` expecting failure, so that the caller checks the error.
  bool loadFails(const std::string &path, moert_dtype dtype) {
    moert_tensor *tensor = reinterpret_cast<moert_tensor *>(&dir);
    int status = moert_tensor_load_npy(path.c_str(), dtype, &tensor);
    EXPECT_EQ(tensor, nullptr);
    moert_tensor_free(status == 0 ? tensor : nullptr);
    return status != 0;
  }

  TempDir dir;
};

TEST_F(Npy, RoundTripsEveryDTypeAndShape) {
  unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<std::vector<int64_t>> shapes = {
      {3, 5}, {7}, {}, {2, 0, 3}, {2, 3, 4, 5}};
  for (moert_dtype dtype :
       {MOERT_F32, MOERT_BF16, MOERT_F16, MOERT_I32, MOERT_I64}) {
    for (const auto &shape : shapes) {
      SCOPED_TRACE(std::string(moert_dtype_name(dtype)) + " rank " +
                   std::to_string(shape.size()));
      int rank = static_cast<int>(shape.size());
      TensorPtr saved(moert_tensor_create(dtype, rank, shape.data()));
      ASSERT_TRUE(saved) << moert_last_error();
      fillRandom(saved.get(), rng);
      std::string path = dir.file(std::string(moert_dtype_name(dtype)) + "-" +
                                  std::to_string(rank) + ".npy");
      ASSERT_EQ(moert_tensor_save_npy(saved.get(), path.c_str()), 0)
          << moert_last_error();

      moert_tensor *raw = nullptr;
      ASSERT_EQ(moert_tensor_load_npy(path.c_str(), dtype, &raw), 0)
          << moert_last_error();
      TensorPtr loaded(raw);
      ASSERT_EQ(moert_tensor_dtype(loaded.get()), dtype);
      ASSERT_EQ(moert_tensor_rank(loaded.get()), rank);
      for (int d = 0; d < rank; ++d)
        EXPECT_EQ(moert_tensor_dims(loaded.get())[d], shape[d]);
      int64_t count = moert_tensor_num_elements(saved.get());
      ASSERT_EQ(moert_tensor_num_elements(loaded.get()), count);
      EXPECT_EQ(std::memcmp(moert_tensor_data(saved.get()),
                            moert_tensor_data(loaded.get()),
                            count * moert_dtype_size(dtype)),
                0);
      if (count > 1) { // Random data: not all zeros.
        EXPECT_NE(std::memcmp(moert_tensor_data(loaded.get()),
                              std::string(count * 8, '\0').data(),
                              count * moert_dtype_size(dtype)),
                  0);
      }
    }
  }
}

TEST_F(Npy, WritesVersion1WithAlignedData) {
  const int64_t dims[] = {7};
  TensorPtr tensor(moert_tensor_create(MOERT_BF16, 1, dims));
  static_cast<uint16_t *>(moert_tensor_data(tensor.get()))[0] = 0x3fc0; // 1.5
  std::string path = dir.file("bf16.npy");
  ASSERT_EQ(moert_tensor_save_npy(tensor.get(), path.c_str()), 0);
  std::string bytes = readFile(path);
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t headerLength = static_cast<unsigned char>(bytes[8]) |
                        static_cast<unsigned char>(bytes[9]) << 8;
  EXPECT_EQ((10 + headerLength) % 64, 0u);
  std::string header = bytes.substr(10, headerLength);
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (7,), }",
                         0),
            0u)
      << header;
  EXPECT_EQ(header.back(), '\n');
  ASSERT_EQ(bytes.size(), 10 + headerLength + 7 * 4); // bf16 as float32
  float first;
  std::memcpy(&first, &bytes[10 + headerLength], 4);
  EXPECT_EQ(first, 1.5f);
}

TEST_F(Npy, ReadsBf16FromFloat32RoundingToNearestEven) {
  std::vector<uint32_t> bits = {0x3f808000, 0x3f818000, 0x3f808001,
                                0x3f807fff, 0x7f800000, 0x7fc00000};
  std::string path = dir.file("f32.npy");
  writeFile(path, npyBytes(1,
                           "{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (6,), }\n",
                           rawBytes(bits)));
  moert_tensor *raw = nullptr;
  ASSERT_EQ(moert_tensor_load_npy(path.c_str(), MOERT_BF16, &raw), 0)
      << moert_last_error();
  TensorPtr tensor(raw);
  const auto *got = static_cast<const uint16_t *>(moert_tensor_data(raw));
  EXPECT_EQ(got[0], 0x3f80); // tie to even: down
  EXPECT_EQ(got[1], 0x3f82); // tie to even: up
  EXPECT_EQ(got[2], 0x3f81);
  EXPECT_EQ(got[3], 0x3f80);
  EXPECT_EQ(got[4], 0x7f80);
  EXPECT_TRUE(std::isnan(moert_bf16_to_f32(got[5])));
}

TEST_F(Npy, ReadsOtherVersionsAndHeaderSpellings) {
  const std::vector<int32_t> values = {4, -8, 15, 16, 23, 42};
  const struct {
    int major;
    const char *header;
  } cases[] = {
      {2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }\n"},
      {3, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }\n"},
      {1, "{\"shape\": (2,3), \"descr\": \"=i4\", \"fortran_order\": False}"},
      {1, "{'descr': '|i4', 'fortran_order': False, 'shape': (2L, 3L)}   \n"},
      {1, "{'descr':'i4','fortran_order':False,'shape':(2,3,),}"},
  };
  for (const auto &c : cases) {
    SCOPED_TRACE(c.header);
    std::string path = dir.file("variant.npy");
    writeFile(path, npyBytes(c.major, c.header, rawBytes(values)));
    moert_tensor *raw = nullptr;
    ASSERT_EQ(moert_tensor_load_npy(path.c_str(), MOERT_I32, &raw), 0)
        << moert_last_error();
    TensorPtr tensor(raw);
    ASSERT_EQ(moert_tensor_rank(raw), 2);
    EXPECT_EQ(moert_tensor_dims(raw)[0], 2);
    EXPECT_EQ(moert_tensor_dims(raw)[1], 3);
    EXPECT_EQ(std::memcmp(moert_tensor_data(raw), values.data(), 24), 0);
  }
}

TEST_F(Npy, WrongDTypeNamesFileAndBothDTypes) {
  std::string path = dir.file("x.npy");
  writeFile(path, npyBytes(1,
                           "{'descr': '<f8', 'fortran_order': False, "
                           "'shape': (2,), }\n",
                           std::string(16, '\0')));
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(
      path + ": dtype '<f8' does not match the expected f32 (want '<f4')"));
  ASSERT_TRUE(loadFails(path, MOERT_BF16));
  EXPECT_TRUE(errorContains(path +
                            ": dtype '<f8' does not match the "
                            "expected bf16 (want '<f4', rounded to bf16)"));
  ASSERT_TRUE(loadFails(path, MOERT_I64));
  EXPECT_TRUE(errorContains("(want '<i8')"));

  // A f16 tensor does not come from a float32 file.
  const int64_t dims[] = {4};
  TensorPtr f32(moert_tensor_create(MOERT_F32, 1, dims));
  ASSERT_EQ(moert_tensor_save_npy(f32.get(), path.c_str()), 0);
  ASSERT_TRUE(loadFails(path, MOERT_F16));
  EXPECT_TRUE(errorContains("dtype '<f4' does not match the expected f16 "
                            "(want '<f2')"));
}

TEST_F(Npy, BigEndianIsAnError) {
  std::string path = dir.file("big.npy");
  writeFile(path, npyBytes(1,
                           "{'descr': '>f4', 'fortran_order': False, "
                           "'shape': (1,), }\n",
                           std::string(4, '\0')));
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": dtype '>f4' is big-endian"));
}

TEST_F(Npy, FortranOrderIsAnError) {
  std::string path = dir.file("fortran.npy");
  writeFile(path, npyBytes(1,
                           "{'descr': '<f4', 'fortran_order': True, "
                           "'shape': (2, 2), }\n",
                           std::string(16, '\0')));
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(
      path + ": fortran_order=True is not supported (want C order)"));
}

TEST_F(Npy, BadMagicAndVersionAreErrors) {
  std::string path = dir.file("magic.npy");
  writeFile(path, "PK\x03\x04 this is a zip file, not a .npy");
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": not a .npy file (bad magic)"));

  writeFile(path, "\x93NU");
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": not a .npy file (bad magic)"));

  writeFile(path, npyBytes(4, "{}", ""));
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": unsupported .npy version 4.0"));
}

TEST_F(Npy, TruncatedFilesAreErrors) {
  const int64_t dims[] = {3, 5};
  TensorPtr tensor(moert_tensor_create(MOERT_F32, 2, dims));
  std::string path = dir.file("truncated.npy");
  ASSERT_EQ(moert_tensor_save_npy(tensor.get(), path.c_str()), 0);
  std::string bytes = readFile(path);

  writeFile(path, bytes.substr(0, bytes.size() - 4));
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": truncated data: the shape [3, 5] needs "
                                   "60 bytes of data, the file has 56"));

  writeFile(path, bytes.substr(0, 40)); // Inside the header.
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": truncated header"));

  writeFile(path, bytes + "junk");
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": trailing bytes: the shape [3, 5] needs "
                                   "60 bytes of data, the file has 64"));
}

TEST_F(Npy, MalformedHeadersAreErrors) {
  const struct {
    const char *header;
    const char *error;
  } cases[] = {
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
       "unexpected key 'x'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
       "structured dtypes are not supported"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
       "'shape' is not a tuple of non-negative integers"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
       "'fortran_order' is not True or False"},
      {"['descr', '<f4']", "the header is not a dict"},
  };
  std::string path = dir.file("header.npy");
  for (const auto &c : cases) {
    writeFile(path, npyBytes(1, c.header, std::string(4, '\0')));
    ASSERT_TRUE(loadFails(path, MOERT_F32)) << c.header;
    EXPECT_TRUE(errorContains(path + ": bad header: " + c.error));
  }
}

TEST_F(Npy, MissingFilesAndUnwritablePathsAreErrors) {
  std::string path = dir.file("nowhere.npy");
  ASSERT_TRUE(loadFails(path, MOERT_F32));
  EXPECT_TRUE(errorContains(path + ": cannot open: No such file or directory"));

  const int64_t dims[] = {1};
  TensorPtr tensor(moert_tensor_create(MOERT_F32, 1, dims));
  std::string bad = dir.file("no/such/dir.npy");
  EXPECT_NE(moert_tensor_save_npy(tensor.get(), bad.c_str()), 0);
  EXPECT_TRUE(errorContains(bad + ": cannot open for writing"));
}

} // namespace
