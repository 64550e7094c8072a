#!/usr/bin/env bash
# Regenerates the seed inputs of the fuzzers into test/Fuzz/corpus/<target>/
# (files named seed-*; what libFuzzer adds on a merge is named by its SHA-1
# and left alone). Needs the normal build's tools (BUILD_DIR, default build/):
#   moe-fuzz-ir           the lit tests' .mlir inputs split on '// -----', and
#                         the programs `moe-run --layer SPEC --emit-mlir` prints
#   moe-fuzz-layer-spec   every spec the tests, scripts and benchmarks pass to
#                         --layer, and the presets
#   moe-fuzz-npy          the inputs and results `moe-run --dump` writes, and
#                         hand-made files of every dtype and .npy version
#   moe-fuzz-artifact-metadata
#                         the metadata of artifacts moe-compile makes (CPU and
#                         CUDA), the runtime tests' malformed metadata, and
#                         small artifact files: ELF headers, sealed or to be
#                         sealed by the fuzzer (first byte 1), cut or corrupt
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
bin=$build/bin
corpus=$root/test/Fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for t in moe-fuzz-ir moe-fuzz-layer-spec moe-fuzz-npy moe-fuzz-artifact-metadata; do
  mkdir -p "$corpus/$t"
  rm -f "$corpus/$t"/seed-*
done

# Small layers: every router, dtype, bias, capacity, group and dynamic case.
specs=(
  tiny
  tiny,dtype=bf16
  tiny,dynamic=1
  tiny,bias=1,router=sigmoid
  tokens=12,hidden=16,ffn=8,experts=8,top_k=3,n_group=4,topk_group=2
  tokens=16,hidden=16,ffn=8,experts=4,top_k=4,capacity=0.75
  tokens=16,hidden=16,ffn=8,experts=8,top_k=3,router=sigmoid,bias=1,capacity=0.9,normalize=0,scaling=1.5,activation=gelu_glu,dtype=bf16,n_group=4,topk_group=3
  tokens=1,hidden=16,ffn=8,experts=4,top_k=1
  # Every dimension distinct, so that the fuzzer's number mutator, replacing
  # one number everywhere, changes one dimension consistently.
  tokens=5,hidden=24,ffn=20,experts=6,top_k=3
  tokens=7,hidden=40,ffn=12,experts=9,top_k=2,dtype=bf16,dynamic=1,bias=1
)

# --- moe-fuzz-ir
python3 - "$root" "$corpus/moe-fuzz-ir" <<'EOF'
import hashlib, pathlib, re, sys
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
seen = set()
for path in sorted(root.glob("test/**/*.mlir")):
    if "Fuzz" in path.parts:
        continue
    rel = str(path.relative_to(root / "test")).replace("/", "-")[:-5]
    for i, chunk in enumerate(re.split(r"^// -----\s*$", path.read_text(), flags=re.M)):
        # RUN/CHECK lines are comments to the parser; drop them to keep seeds small.
        lines = [l for l in chunk.splitlines()
                 if not re.match(r"\s*//\s*(RUN|CHECK|REQUIRES|expected-)", l)]
        text = "\n".join(lines).strip() + "\n"
        digest = hashlib.sha1(text.encode()).hexdigest()
        if len(text) < 8 or digest in seen:
            continue
        seen.add(digest)
        (out / f"seed-{rel}-{i}").write_text(text)
EOF
for i in "${!specs[@]}"; do
  "$bin/moe-run" --layer "${specs[$i]}" --emit-mlir > "$corpus/moe-fuzz-ir/seed-layer-$i"
done

# --- moe-fuzz-layer-spec
{
  printf '%s\n' tiny mixtral qwen3_30b_a3b olmoe "${specs[@]}"
  grep -rhoE -- "--layer[= ]+[^ \"';]+" "$root/test" "$root/bench" "$root/scripts" \
    "$root/README.md" | sed -E 's/--layer[= ]+//' | grep -v -e SPEC -e '^\$'
} | sort -u | while IFS= read -r spec; do
  # Named by content, so that a new spec does not rename the others.
  name=$(printf '%s' "$spec" | sha1sum | cut -c1-12)
  printf '%s' "$spec" > "$corpus/moe-fuzz-layer-spec/seed-$name"
done

# --- moe-fuzz-npy
"$bin/moe-run" --layer tokens=2,hidden=4,ffn=2,experts=2,top_k=1,bias=1 \
  --dump "$work/f32" > /dev/null
"$bin/moe-run" --layer tokens=2,hidden=4,ffn=2,experts=2,top_k=1,dtype=bf16 \
  --dump "$work/bf16" > /dev/null
for f in "$work"/f32/*.npy; do cp "$f" "$corpus/moe-fuzz-npy/seed-f32-$(basename "$f" .npy)"; done
cp "$work/bf16/arg0.npy" "$corpus/moe-fuzz-npy/seed-bf16-arg0"
python3 - "$corpus/moe-fuzz-npy" <<'EOF'
import pathlib, struct, sys
out = pathlib.Path(sys.argv[1])
def npy(descr, shape, data, version=1, fortran="False", quote="'"):
    shape_text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{%sdescr%s: %s%s%s, %sfortran_order%s: %s, %sshape%s: %s, }" % (
        quote, quote, quote, descr, quote, quote, quote, fortran, quote, quote, shape_text)
    length_size = 2 if version == 1 else 4
    pad = (64 - (6 + 2 + length_size + len(header) + 1) % 64) % 64
    header += " " * pad + "\n"
    prefix = b"\x93NUMPY" + bytes([version, 0])
    prefix += struct.pack("<H" if version == 1 else "<I", len(header))
    return prefix + header.encode() + data
cases = {
    "f4-2x3": npy("<f4", (2, 3), struct.pack("<6f", 1, -2, 3.5, 0, float("inf"), float("nan"))),
    "f2-4": npy("<f2", (4,), struct.pack("<4H", 0x3c00, 0x8000, 0x7c00, 0x7e00)),
    "i4-2x2": npy("<i4", (2, 2), struct.pack("<4i", 0, -1, 2**31 - 1, -2**31)),
    "i8-3": npy("<i8", (3,), struct.pack("<3q", 0, -1, 2**63 - 1)),
    "f4-scalar": npy("<f4", (), struct.pack("<f", 2.0)),
    "f4-empty": npy("<f4", (0, 5), b""),
    "f4-v2": npy("<f4", (1,), struct.pack("<f", 1.0), version=2),
    "i4-v3": npy("|i4", (1, 1, 1), struct.pack("<i", 7), version=3, quote='"'),
    "f4-fortran": npy("<f4", (2, 1), struct.pack("<2f", 1, 2), fortran="True"),
    "f4-bigendian": npy(">f4", (1,), struct.pack(">f", 1.0)),
    "f4-rank8": npy("<f4", (1,) * 8, struct.pack("<f", 3.0)),
}
for name, data in cases.items():
    (out / f"seed-{name}").write_bytes(data)
EOF

# --- moe-fuzz-artifact-metadata
python3 - "$root" "$corpus/moe-fuzz-artifact-metadata" <<'EOF'
import pathlib, re, sys
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
# The runtime tests' metadata, malformed in one way each.
text = (root / "runtime/test/bad_artifact.c").read_text()
head = "moe-artifact 1\ntarget cpu\n"
for i, m in enumerate(re.finditer(r"^\s*(HEAD\s*)?((?:\"[^\"]*\"\s*)+);", text, re.M)):
    body = "".join(re.findall(r"\"([^\"]*)\"", m.group(2)))
    body = body.encode().decode("unicode_escape")
    (out / f"seed-bad-{i}").write_text((head if m.group(1) else "") + body)
EOF
for i in 0 2 4 6; do
  "$bin/moe-compile" --layer "${specs[$i]}" --target=cpu -O0 -o "$work/a$i.so"
  python3 - "$build/runtime/libmoert.so" "$work/a$i.so" \
    "$corpus/moe-fuzz-artifact-metadata/seed-cpu-$i" <<'EOF'
import ctypes, sys
# The artifact's allocation functions come from the runtime.
ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
lib = ctypes.CDLL(sys.argv[2])
text = ctypes.cast(ctypes.addressof(ctypes.c_char.in_dll(lib, "moe_artifact_metadata")),
                   ctypes.c_char_p).value
open(sys.argv[3], "wb").write(text)
EOF
done
# Artifact files: the ELF header of a shared object, sealed as moe-compile
# seals (docs/ArtifactFormat.md), then variants that each check refuses.
python3 - "$corpus/moe-fuzz-artifact-metadata" <<'EOF'
import pathlib, struct, sys
out = pathlib.Path(sys.argv[1])
def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h
def seal(payload):
    return payload + b"MOESEAL1" + struct.pack("<QQ", len(payload), fnv1a(payload))
def elf(etype=3, machine=62, cls=2, data=1):
    ident = b"\x7fELF" + bytes([cls, data, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHIQQQIHHHHHH", etype, machine, 1, 0, 64, 0, 0,
                               64, 56, 0, 64, 0, 0)
cases = {
    "so-sealed": seal(elf()),
    "so-to-seal": b"\x01" + elf(),
    "exec-to-seal": b"\x01" + elf(etype=2),
    "aarch64-to-seal": b"\x01" + elf(machine=183),
    "elf32-to-seal": b"\x01" + elf(cls=1),
    "so-cut": seal(elf())[:-5],
    "so-corrupt": bytes([0x7e]) + seal(elf())[1:],
    "so-size-lies": elf() + b"MOESEAL1" + struct.pack("<QQ", 1 << 40, 0),
}
for name, data in cases.items():
    (out / f"seed-file-{name}").write_bytes(data)
EOF
# A CUDA target's metadata (the same records, another target line).
sed 's/^target cpu$/target cuda:sm_90/' "$corpus/moe-fuzz-artifact-metadata/seed-cpu-0" \
  > "$corpus/moe-fuzz-artifact-metadata/seed-cuda-0"

for t in moe-fuzz-ir moe-fuzz-layer-spec moe-fuzz-npy moe-fuzz-artifact-metadata; do
  echo "$t: $(ls "$corpus/$t" | grep -c '^seed-') seeds, $(du -sk "$corpus/$t" | cut -f1) KiB"
done
