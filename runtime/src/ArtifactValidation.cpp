//===- ArtifactValidation.cpp - What moert checks before dlopen -----------===//
//
// dlopen trusts the file it maps: a truncated shared object faults inside
// the loader when it touches a segment past the end of the file, and a
// corrupted one can do anything. So an artifact is checked first: sealed by
// moe-compile with a checksum of every byte, and an ELF shared object for
// this machine.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include "moe-mlir/Runtime/ArtifactSeal.h"

#include <elf.h>

namespace {

/// The ELF machine moert itself was built for.
constexpr uint16_t hostMachine() {
#if defined(__x86_64__)
  return EM_X86_64;
#elif defined(__aarch64__)
  return EM_AARCH64;
#else
  return EM_NONE;
#endif
}

} // namespace

std::string moert::validateArtifactBytes(const unsigned char *bytes,
                                         size_t size) {
  if (size < sizeof(Elf64_Ehdr) + moert::seal::kTrailerSize)
    return "it is " + std::to_string(size) +
           " bytes long, too short for a shared object";
  std::string seal = moert::seal::checkSealed(bytes, size);
  if (!seal.empty())
    return seal;
  Elf64_Ehdr header;
  std::memcpy(&header, bytes, sizeof(header));
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0)
    return "it is not an ELF file";
  if (header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_ident[EI_DATA] != ELFDATA2LSB)
    return "it is not a 64-bit little-endian ELF file";
  if (header.e_type != ET_DYN)
    return "it is an ELF file but not a shared object";
  if (hostMachine() != EM_NONE && header.e_machine != hostMachine())
    return "it is a shared object for another kind of processor (ELF "
           "machine " +
           std::to_string(header.e_machine) + ")";
  return "";
}
