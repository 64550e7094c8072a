//===- device-main.cpp - moe-run without the compiler ---------------------===//

#include "tools/moe-run/RunMain.h"

int main(int argc, char **argv) {
  return moe::run::runMain(argc, argv, /*compile=*/nullptr);
}
