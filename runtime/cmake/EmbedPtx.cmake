# cmake -DPTX=in.ptx -DHEADER=out.inc -DSYMBOL=name -P EmbedPtx.cmake
# Wraps a PTX file into a C++ raw string literal, so that moert carries the
# kernels it JIT-loads without a file beside it.
file(READ "${PTX}" text)
file(WRITE "${HEADER}"
  "// Generated from ${PTX} by EmbedPtx.cmake; do not edit.\n"
  "static const char ${SYMBOL}[] = R\"moertptx(${text})moertptx\";\n")
