#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_gguf.cpp (tests/fuzz/corpus/fuzz_gguf/).

An independent little GGUF v3 writer (struct.pack, following the GGUF spec in
ggml's docs/gguf.md), so the seeds do not come from the reader under test."""
import os
import struct
import sys

T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def val(t, v):
    fmt = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i", T_F32: "<f",
           T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}
    if t == T_STR:
        return s(v)
    if t == T_ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(val(et, x) for x in items)
    return struct.pack(fmt[t], v)


def gguf(kvs, tensors, alignment=32):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", t) + val(t, v)
    offset, blobs = 0, []
    for name, dims, ggml_type, data in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
        pad = (-len(data)) % alignment
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    if tensors:
        out += b"\0" * ((-len(out)) % alignment)
    return out + b"".join(blobs)


def f32s(values):
    return b"".join(struct.pack("<f", x) for x in values)


def main(dest):
    os.makedirs(dest, exist_ok=True)
    pairs = 4
    phi = [("general.architecture", T_STR, "phi3"), ("phi3.context_length", T_U32, 131072),
           ("phi3.embedding_length", T_U32, 32), ("phi3.attention.head_count", T_U32, 2),
           ("phi3.rope.dimension_count", T_U32, 2 * pairs), ("phi3.rope.freq_base", T_F32, 10000.0),
           ("phi3.rope.scaling.original_context_length", T_U32, 4096),
           ("phi3.rope.scaling.attn_factor", T_F32, 1.1902380714238083)]
    tensors = [("token_embd.weight", [8, 2], 1, bytes(range(32))),
               ("rope_factors_long.weight", [pairs], 0, f32s([1.0, 2.0, 4.0, 8.0])),
               ("rope_factors_short.weight", [pairs], 0, f32s([1.0, 1.0, 1.5, 2.0]))]
    seeds = {
        "phi3_longrope.gguf": gguf(phi, tensors),
        "header_only.gguf": gguf([], []),
        "all_types.gguf": gguf([("a.u8", T_U8, 7), ("a.i8", T_I8, -7), ("a.u16", T_U16, 700), ("a.i16", T_I16, -700),
                                ("a.i32", T_I32, -70000), ("a.bool", T_BOOL, True), ("a.u64", T_U64, 2**40),
                                ("a.i64", T_I64, -2**40), ("a.f64", T_F64, 0.1), ("general.alignment", T_U32, 64),
                                ("a.strs", T_ARR, (T_STR, ["x", "yz"])),
                                ("a.nested", T_ARR, (T_ARR, [(T_U8, [1, 2]), (T_U8, [])]))],
                               [("q", [32], 8, bytes(34)), ("f", [3], 0, f32s([1, 2, 3]))], alignment=64),
        "llama_linear.gguf": gguf([("general.architecture", T_STR, "llama"), ("llama.embedding_length", T_U32, 64),
                                   ("llama.attention.head_count", T_U32, 4), ("llama.rope.scaling.type", T_STR, "linear"),
                                   ("llama.rope.scaling.factor", T_F32, 4.0)], []),
    }
    for name, data in seeds.items():
        with open(os.path.join(dest, name), "wb") as fh:
            fh.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuzz_gguf"))
