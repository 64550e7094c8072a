#!/usr/bin/env python3
"""Writes a little-endian float32 .npy file (format 1.0), standard library only.

    write-npy.py PATH D0xD1x... FILL [INDEX=VALUE ...]

Every element is FILL except the flat (row-major) indices given. Values are
parsed with float(), so 'nan' and 'inf' work. Used by the lit tests to feed
moe-run --inputs exactly chosen tensors.
"""
import struct
import sys


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    path, shape_text, fill = argv[1], argv[2], float(argv[3])
    shape = tuple(int(d) for d in shape_text.split("x"))
    count = 1
    for d in shape:
        count *= d
    values = [fill] * count
    for item in argv[4:]:
        index, value = item.split("=")
        values[int(index)] = float(value)

    shape_repr = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape_repr
    # Magic (6) + version (2) + header length (2) + header + '\n', padded
    # with spaces to a multiple of 64 bytes.
    unpadded = 10 + len(header) + 1
    header += " " * ((64 - unpadded % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00")
        f.write(struct.pack("<H", len(header)))
        f.write(header.encode("latin1"))
        f.write(struct.pack("<%df" % count, *values))


if __name__ == "__main__":
    main(sys.argv)
