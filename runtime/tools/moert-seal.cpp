//===- moert-seal.cpp - Seal a shared object as moe-compile does ----------===//
//
//   moert-seal FILE.so
//
// Appends the checksum trailer (include/moe-mlir/Runtime/ArtifactSeal.h)
// that moert checks before loading an artifact. moe-compile seals what it
// links; this tool seals the hand-written stand-in artifacts of the tests.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Runtime/ArtifactSeal.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: moert-seal FILE.so\n");
    return 2;
  }
  std::string bytes;
  {
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "moert-seal: error: cannot read '%s'\n", argv[1]);
      return 2;
    }
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto *data = reinterpret_cast<const unsigned char *>(bytes.data());
  if (moert::seal::checkSealed(data, bytes.size()).empty())
    return 0; // Already sealed (a rebuild that did not relink).
  std::ofstream out(argv[1], std::ios::binary | std::ios::app);
  out << moert::seal::makeTrailer(bytes.size(),
                                moert::seal::fnv1a(data, bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "moert-seal: error: cannot write '%s'\n", argv[1]);
    return 2;
  }
  return 0;
}
