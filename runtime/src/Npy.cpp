//===- Npy.cpp - Reading and writing NumPy .npy files ---------------------===//
//
// The .npy format: a 6-byte magic, a version, a header length, a Python dict
// literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} and the raw
// elements. moert reads versions 1.0 to 3.0 and writes 1.0, always little
// endian and C order. bf16 has no NumPy dtype, so it travels as float32.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

using namespace moert;

namespace {

constexpr char npyMagic[] = "\x93NUMPY";
constexpr size_t npyMagicSize = 6;
/// The longest header the reader accepts (NumPy writes a few hundred bytes).
constexpr uint32_t maxHeaderLength = 1u << 16;
// The data starts at a multiple of this, as NumPy itself writes.
constexpr size_t npyDataAlignment = 64;

/// The NumPy type code ("f4", ...) that stores `dtype` in a file.
const char *fileTypeCode(moert_dtype dtype) {
  switch (dtype) {
  case MOERT_F32:
  case MOERT_BF16:
    return "f4";
  case MOERT_F16:
    return "f2";
  case MOERT_I32:
    return "i4";
  case MOERT_I64:
    return "i8";
  }
  return "";
}

struct NpyHeader {
  std::string descr;
  bool fortranOrder = false;
  std::vector<int64_t> shape;
};

/// A parser of the header's Python dict literal. It accepts what NumPy
/// writes (and the usual variations: either quote, any key order, spaces,
/// an optional trailing comma) and nothing else.
class HeaderParser {
public:
  explicit HeaderParser(const std::string &text) : text(text) {}

  /// Parses the whole header; on failure returns false and sets `problem`.
  bool parse(NpyHeader &header, std::string &problem) {
    bool seenDescr = false, seenFortran = false, seenShape = false;
    skipSpace();
    if (!consume('{'))
      return fail(problem, "the header is not a dict");
    while (true) {
      skipSpace();
      if (consume('}'))
        break;
      std::string key;
      if (!parseString(key))
        return fail(problem, "expected a quoted key");
      skipSpace();
      if (!consume(':'))
        return fail(problem, "expected ':' after '" + key + "'");
      skipSpace();
      if (key == "descr") {
        if (seenDescr)
          return fail(problem, "duplicate key 'descr'");
        seenDescr = true;
        if (peek() == '[')
          return fail(problem, "structured dtypes are not supported");
        if (!parseString(header.descr))
          return fail(problem, "'descr' is not a string");
      } else if (key == "fortran_order") {
        if (seenFortran)
          return fail(problem, "duplicate key 'fortran_order'");
        seenFortran = true;
        if (consumeWord("True"))
          header.fortranOrder = true;
        else if (consumeWord("False"))
          header.fortranOrder = false;
        else
          return fail(problem, "'fortran_order' is not True or False");
      } else if (key == "shape") {
        if (seenShape)
          return fail(problem, "duplicate key 'shape'");
        seenShape = true;
        if (!parseShape(header.shape))
          return fail(problem,
                      "'shape' is not a tuple of non-negative integers");
      } else {
        return fail(problem, "unexpected key '" + key + "'");
      }
      skipSpace();
      if (consume(','))
        continue;
      skipSpace();
      if (consume('}'))
        break;
      return fail(problem, "expected ',' or '}' after '" + key + "'");
    }
    skipSpace();
    if (pos != text.size())
      return fail(problem, "unexpected text after the dict");
    if (!seenDescr || !seenFortran || !seenShape)
      return fail(problem, std::string("missing key '") +
                               (!seenDescr     ? "descr"
                                : !seenFortran ? "fortran_order"
                                               : "shape") +
                               "'");
    return true;
  }

private:
  const std::string &text;
  size_t pos = 0;

  static bool fail(std::string &problem, const std::string &what) {
    problem = what;
    return false;
  }
  char peek() const { return pos < text.size() ? text[pos] : '\0'; }
  void skipSpace() {
    while (pos < text.size() && std::strchr(" \t\r\n", text[pos]))
      ++pos;
  }
  bool consume(char c) {
    if (peek() != c)
      return false;
    ++pos;
    return true;
  }
  bool consumeWord(const char *word) {
    size_t length = std::strlen(word);
    if (text.compare(pos, length, word) != 0)
      return false;
    pos += length;
    return true;
  }
  bool parseString(std::string &out) {
    char quote = peek();
    if (quote != '\'' && quote != '"')
      return false;
    size_t end = text.find(quote, pos + 1);
    if (end == std::string::npos)
      return false;
    out = text.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    return true;
  }
  bool parseInteger(int64_t &value) {
    if (peek() < '0' || peek() > '9')
      return false;
    value = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (__builtin_mul_overflow(value, 10, &value) ||
          __builtin_add_overflow(value, peek() - '0', &value))
        return false;
      ++pos;
    }
    consume('L'); // Python 2 long literals, found in old files.
    return true;
  }
  bool parseShape(std::vector<int64_t> &shape) {
    if (!consume('('))
      return false;
    while (true) {
      skipSpace();
      if (consume(')'))
        return true;
      int64_t dim;
      if (!parseInteger(dim))
        return false;
      shape.push_back(dim);
      skipSpace();
      if (consume(','))
        continue;
      skipSpace();
      return consume(')');
    }
  }
};

/// Checks that `descr` stores `expected`; otherwise sets a message.
bool checkDescr(const char *path, const std::string &descr,
                moert_dtype expected) {
  std::string want = std::string("<") + fileTypeCode(expected);
  char order = descr.empty() ? '\0' : descr[0];
  bool hasOrder = order != '\0' && std::strchr("<>=|", order);
  std::string code = hasOrder ? descr.substr(1) : descr;
  if (code != fileTypeCode(expected)) {
    setError("%s: dtype '%s' does not match the expected %s (want '%s'%s)",
             path, descr.c_str(), moert_dtype_name(expected), want.c_str(),
             expected == MOERT_BF16 ? ", rounded to bf16" : "");
    return false;
  }
  // '=' is native and '|' "not applicable", which NumPy also reads as
  // native; the host is little endian.
  if (order == '>') {
    setError("%s: dtype '%s' is big-endian (only little-endian '%s' is read)",
             path, descr.c_str(), want.c_str());
    return false;
  }
  return true;
}

struct FileCloser {
  void operator()(FILE *file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

struct TensorDeleter {
  void operator()(moert_tensor *tensor) const { moert_tensor_free(tensor); }
};
using TensorPtr = std::unique_ptr<moert_tensor, TensorDeleter>;

int loadNpy(const char *path, moert_dtype expected, moert_tensor **out) {
  if (!path || !out) {
    setError("moert_tensor_load_npy: NULL argument");
    return 1;
  }
  *out = nullptr;
  if (!isValidDType(expected)) {
    setError("%s: invalid expected dtype %d", path, rawDType(expected));
    return 1;
  }
  FilePtr file(std::fopen(path, "rb"));
  if (!file) {
    setError("%s: cannot open: %s", path, std::strerror(errno));
    return 1;
  }

  unsigned char prefix[npyMagicSize + 2];
  if (std::fread(prefix, 1, sizeof(prefix), file.get()) != sizeof(prefix) ||
      std::memcmp(prefix, npyMagic, npyMagicSize) != 0) {
    setError("%s: not a .npy file (bad magic)", path);
    return 1;
  }
  unsigned major = prefix[npyMagicSize], minor = prefix[npyMagicSize + 1];
  if (major < 1 || major > 3 || minor != 0) {
    setError("%s: unsupported .npy version %u.%u (want 1.0, 2.0 or 3.0)", path,
             major, minor);
    return 1;
  }
  // Version 1.0 has a 2-byte header length, later versions 4 bytes.
  size_t lengthSize = major == 1 ? 2 : 4;
  unsigned char lengthBytes[4] = {};
  if (std::fread(lengthBytes, 1, lengthSize, file.get()) != lengthSize) {
    setError("%s: truncated header", path);
    return 1;
  }
  uint32_t headerLength = 0;
  for (size_t i = 0; i < lengthSize; ++i)
    headerLength |= static_cast<uint32_t>(lengthBytes[i]) << (8 * i);
  // The header is a short dictionary; its claimed length must not make us
  // allocate gigabytes (NumPy itself refuses headers over 10000 bytes).
  if (headerLength > maxHeaderLength) {
    setError("%s: the header claims %u bytes (at most %u are allowed): not a "
             ".npy file moert can read",
             path, headerLength, maxHeaderLength);
    return 1;
  }
  std::string headerText(headerLength, '\0');
  if (std::fread(&headerText[0], 1, headerLength, file.get()) != headerLength) {
    setError("%s: truncated header", path);
    return 1;
  }

  NpyHeader header;
  std::string problem;
  if (!HeaderParser(headerText).parse(header, problem)) {
    setError("%s: bad header: %s", path, problem.c_str());
    return 1;
  }
  if (!checkDescr(path, header.descr, expected))
    return 1;
  if (header.fortranOrder) {
    setError("%s: fortran_order=True is not supported (want C order)", path);
    return 1;
  }
  if (header.shape.size() > MOERT_MAX_RANK) {
    setError("%s: rank %zu is more than %d", path, header.shape.size(),
             MOERT_MAX_RANK);
    return 1;
  }

  // Check the data size before allocating: a bad header must not make us
  // allocate what the file does not hold.
  int rank = static_cast<int>(header.shape.size());
  std::string shapeText = formatShape(rank, header.shape.data());
  bool widened = expected == MOERT_BF16; // Stored as float32, then rounded.
  size_t fileElementSize = widened ? sizeof(float) : moert_dtype_size(expected);
  size_t count = 1, needed = 0;
  for (int64_t dim : header.shape)
    if (__builtin_mul_overflow(count, static_cast<size_t>(dim), &count)) {
      setError("%s: the shape %s is too large", path, shapeText.c_str());
      return 1;
    }
  if (__builtin_mul_overflow(count, fileElementSize, &needed)) {
    setError("%s: the shape %s is too large", path, shapeText.c_str());
    return 1;
  }
  long dataStart = std::ftell(file.get());
  if (dataStart < 0 || std::fseek(file.get(), 0, SEEK_END) != 0) {
    setError("%s: cannot seek: %s", path, std::strerror(errno));
    return 1;
  }
  size_t available = static_cast<size_t>(std::ftell(file.get()) - dataStart);
  std::fseek(file.get(), dataStart, SEEK_SET);
  if (available != needed) {
    setError("%s: %s: the shape %s needs %zu bytes of data, the file has %zu",
             path, available < needed ? "truncated data" : "trailing bytes",
             shapeText.c_str(), needed, available);
    return 1;
  }

  TensorPtr tensor(moert_tensor_create(expected, rank, header.shape.data()));
  if (!tensor) {
    std::string reason = moert_last_error();
    setError("%s: %s", path, reason.c_str());
    return 1;
  }
  std::vector<float> staging(widened ? count : 0);
  void *destination = widened ? staging.data() : tensor->data;
  if (std::fread(destination, fileElementSize, count, file.get()) != count) {
    setError("%s: read failed: %s", path, std::strerror(errno));
    return 1;
  }
  if (widened) {
    auto *bits = static_cast<uint16_t *>(tensor->data);
    for (size_t i = 0; i < count; ++i)
      bits[i] = moert_f32_to_bf16(staging[i]);
  }
  *out = tensor.release();
  return 0;
}

int saveNpy(const moert_tensor *tensor, const char *path) {
  if (!tensor || !path) {
    setError("moert_tensor_save_npy: NULL argument");
    return 1;
  }
  std::string shape = "(";
  for (int i = 0; i < tensor->rank; ++i)
    shape += std::to_string(tensor->dims[i]) + ", ";
  if (tensor->rank == 1)
    shape.pop_back(); // A 1-tuple keeps its comma: "(3,)".
  else if (tensor->rank > 1)
    shape.resize(shape.size() - 2);
  shape += ")";
  std::string header = std::string("{'descr': '<") +
                       fileTypeCode(tensor->dtype) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces and end with '\n' so the data starts 64-byte aligned.
  size_t unpadded = npyMagicSize + 2 + 2 + header.size() + 1;
  size_t padded =
      (unpadded + npyDataAlignment - 1) / npyDataAlignment * npyDataAlignment;
  header.append(padded - unpadded, ' ');
  header += '\n';

  std::string prefix(npyMagic, npyMagicSize);
  prefix += '\x01';
  prefix += '\x00';
  prefix += static_cast<char>(header.size() & 0xff);
  prefix += static_cast<char>(header.size() >> 8);

  FILE *file = std::fopen(path, "wb");
  if (!file) {
    setError("%s: cannot open for writing: %s", path, std::strerror(errno));
    return 1;
  }
  size_t count = static_cast<size_t>(tensor->numElements);
  bool ok =
      std::fwrite(prefix.data(), 1, prefix.size(), file) == prefix.size() &&
      std::fwrite(header.data(), 1, header.size(), file) == header.size();
  if (ok && tensor->dtype == MOERT_BF16) {
    // Widen to float32 a chunk at a time.
    const auto *bits = static_cast<const uint16_t *>(tensor->data);
    float chunk[1024];
    for (size_t begin = 0; ok && begin < count; begin += 1024) {
      size_t n = std::min<size_t>(1024, count - begin);
      for (size_t i = 0; i < n; ++i)
        chunk[i] = moert_bf16_to_f32(bits[begin + i]);
      ok = std::fwrite(chunk, sizeof(float), n, file) == n;
    }
  } else if (ok) {
    size_t size = moert_dtype_size(tensor->dtype);
    ok = std::fwrite(tensor->data, size, count, file) == count;
  }
  int error = ok ? 0 : errno;
  if (std::fclose(file) != 0 && ok) {
    ok = false;
    error = errno;
  }
  if (!ok) {
    setError("%s: write failed: %s", path, std::strerror(error));
    std::remove(path); // Leave no partial file behind.
    return 1;
  }
  return 0;
}

} // namespace

int moert_tensor_load_npy(const char *path, moert_dtype expected,
                          moert_tensor **out) {
  return guarded(1, [&] { return loadNpy(path, expected, out); });
}

int moert_tensor_save_npy(const moert_tensor *tensor, const char *path) {
  return guarded(1, [&] { return saveNpy(tensor, path); });
}
