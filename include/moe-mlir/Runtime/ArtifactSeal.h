//===- ArtifactSeal.h - The checksum trailer of an artifact -----*- C++ -*-===//
//
// moe-compile appends a trailer to every artifact it links; moert checks it
// before dlopen, so that a truncated or corrupted file is an error rather
// than a crash inside the dynamic loader (a segment that lies past the end
// of a truncated file faults with SIGBUS when touched). Header-only, so that
// the compiler (which writes it) and the runtime (which checks it) share the
// format without the compiler linking the runtime.
//
// Layout (docs/ArtifactFormat.md): the shared object's bytes (the payload),
// then 24 bytes: the magic "MOESEAL1", the payload's size and its FNV-1a
// 64-bit hash, both little-endian 64-bit integers.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_RUNTIME_ARTIFACTSEAL_H
#define MOE_MLIR_RUNTIME_ARTIFACTSEAL_H

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace moert::seal {

constexpr char kMagic[8] = {'M', 'O', 'E', 'S', 'E', 'A', 'L', '1'};
constexpr size_t kTrailerSize = 24;

/// FNV-1a, 64 bits, continued from `hash` (start with kFnvOffset).
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline uint64_t fnv1a(const unsigned char *data, size_t size,
                      uint64_t hash = kFnvOffset) {
  for (size_t i = 0; i < size; ++i) {
    hash ^= data[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

inline void putLittleEndian(unsigned char *out, uint64_t value) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<unsigned char>(value >> (8 * i));
}

inline uint64_t getLittleEndian(const unsigned char *in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

/// The trailer of a payload of `size` bytes whose hash is `hash`.
inline std::string makeTrailer(uint64_t size, uint64_t hash) {
  unsigned char bytes[kTrailerSize];
  std::memcpy(bytes, kMagic, sizeof(kMagic));
  putLittleEndian(bytes + 8, size);
  putLittleEndian(bytes + 16, hash);
  return std::string(reinterpret_cast<const char *>(bytes), kTrailerSize);
}

/// Checks `file` (a whole artifact, trailer included). Returns "" when the
/// trailer is there and matches, else what is wrong, in words.
inline std::string checkSealed(const unsigned char *file, size_t size) {
  if (size < kTrailerSize ||
      std::memcmp(file + size - kTrailerSize, kMagic, sizeof(kMagic)) != 0)
    return "it has no moe-compile seal at its end (the file is truncated, or "
           "was not made by moe-compile)";
  const unsigned char *trailer = file + size - kTrailerSize;
  uint64_t payload = getLittleEndian(trailer + 8);
  if (payload != size - kTrailerSize)
    return "its seal records " + std::to_string(payload) +
           " bytes of code but the file holds " +
           std::to_string(size - kTrailerSize) + " (the file was cut or extended)";
  if (fnv1a(file, payload) != getLittleEndian(trailer + 16))
    return "its checksum does not match (the file is corrupt)";
  return "";
}

} // namespace moert::seal

#endif // MOE_MLIR_RUNTIME_ARTIFACTSEAL_H
