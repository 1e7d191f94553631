// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file gguf.hpp
/// A GGUF v3 container reader/writer (the file format of llama.cpp / ggml),
/// and the rope metadata llama.cpp reads from it for LongRoPE models (Phi-3).
///
/// The container (little-endian; GGUF spec, ggml docs/gguf.md):
///
///     u32 magic "GGUF" | u32 version (3; 2 is read too) | u64 tensor_count | u64 kv_count
///     kv_count x   { string key | u32 value_type | value }
///     tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
///     padding to `general.alignment` (u32 key, default 32)
///     tensor data: tensor t at data_start + offset_t, offsets multiples of the alignment
///     string = u64 length + bytes (no NUL); array = u32 element type + u64 count + elements
///
/// Rope keys (llama.cpp, Phi-3's LongRoPE; <arch> = general.architecture):
///
///     <arch>.rope.dimension_count                 u32  rotary_dim
///     <arch>.rope.freq_base                       f32  rope_theta
///     <arch>.context_length                       u32  max_position_embeddings
///     <arch>.rope.scaling.original_context_length u32  original_max_position_embeddings (L0)
///     <arch>.rope.scaling.attn_factor             f32  LongRoPE attention factor
///     <arch>.embedding_length / <arch>.attention.head_count (or <arch>.attention.key_length): head_dim
///     tensors rope_factors_long.weight, rope_factors_short.weight: F32, 1-D, rotary_dim/2 values
///
/// Files come from strangers: gguf_parse checks every count, length, offset and
/// type against the bytes actually present before using or allocating for it;
/// any violation throws longrope::error with id "longrope.gguf" and the byte
/// offset. No input crashes, hangs or allocates more than a small multiple of
/// its own size.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "io.hpp"

namespace longrope {

/// GGUF metadata value types (gguf_metadata_value_type).
enum class gguf_type : std::uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
  string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};

/// Name of a value type ("u32", "f32", "string", "array", ...).
const char* to_string(gguf_type t) noexcept;

/// One metadata value. The field matching `type` holds it: integers in u (unsigned
/// types, bool) or i (signed), floats in f (float32 exactly, as a double), text in s,
/// arrays in elems with element type elem_type. Values keep their original type so a
/// rewritten file carries the same bytes.
struct gguf_value {
  gguf_type type = gguf_type::uint32;
  std::uint64_t u = 0;
  std::int64_t i = 0;
  double f = 0.0;
  std::string s;
  gguf_type elem_type = gguf_type::uint8;
  std::vector<gguf_value> elems;

  static gguf_value make_u32(std::uint32_t v);
  static gguf_value make_f32(float v);
  static gguf_value make_string(std::string v);
  /// The value as a double for any numeric type; throws "longrope.gguf" otherwise.
  double number(const std::string& key) const;
  /// The value as a non-negative integer for any integer type; throws otherwise.
  std::uint64_t count(const std::string& key) const;
};

struct gguf_kv {
  std::string key;
  gguf_value value;
};

/// One tensor: name, shape (ne[0] fastest), ggml type id, byte offset inside the
/// data section, and its bytes (a copy; exactly tensor_nbytes() of them).
struct gguf_tensor {
  std::string name;
  std::vector<std::uint64_t> dims;
  std::uint32_t type = 0;  ///< ggml_type: 0 = F32, 1 = F16, 30 = BF16, ...
  std::uint64_t offset = 0;
  std::vector<std::uint8_t> data;
};

/// A whole GGUF file in memory.
struct gguf_file {
  std::uint32_t version = 3;
  std::uint32_t alignment = 32;  ///< general.alignment, or 32 when absent.
  std::vector<gguf_kv> kvs;      ///< in file order
  std::vector<gguf_tensor> tensors;  ///< in file order

  /// The value under key, or nullptr. O(kv count).
  const gguf_value* find(const std::string& key) const noexcept;
  gguf_value* find(const std::string& key) noexcept;
  /// Sets key to value: replaced in place when present (keeping its position),
  /// appended otherwise.
  void set(const std::string& key, gguf_value value);
  const gguf_tensor* find_tensor(const std::string& name) const noexcept;
  gguf_tensor* find_tensor(const std::string& name) noexcept;
};

/// Bytes of a tensor of ggml type `type` and `elements` elements, for the types
/// whose block layout is fixed (F32, F16, BF16, F64, I8..I64, Q4_0..Q8_1, Q2_K..Q8_K);
/// 0 for a type id this table does not know. Elements must be a multiple of the
/// block size (else 0). O(1).
std::uint64_t gguf_tensor_nbytes(std::uint32_t type, std::uint64_t elements) noexcept;

/// Parses a GGUF v2/v3 file held in [data, data + size). Tensors of a type
/// gguf_tensor_nbytes does not know take the bytes up to the next tensor (or the
/// end of the file). Throws longrope::error ("longrope.gguf") naming the byte
/// offset and the field on any malformed input: bad magic or version, counts
/// larger than the bytes left could hold, strings past the end, unknown value
/// types, nesting deeper than 8, n_dims > 8 or a dimension product overflowing,
/// misaligned or overlapping tensor offsets, data past the end of the file, a
/// general.alignment that is not a power of two of type u32. O(size).
gguf_file gguf_parse(const std::uint8_t* data, std::size_t size);

/// The bytes of `file`: header, kvs, tensor infos in order, tensor data at
/// offsets re-laid out in order, each a multiple of the alignment (a file read
/// by gguf_parse whose tensors were packed this way gets back its own offsets).
/// general.alignment is written only when present in kvs. Throws "longrope.gguf"
/// on an alignment that is not a power of two or a tensor whose data size does
/// not match its type and shape. O(output size).
std::vector<std::uint8_t> gguf_serialize(const gguf_file& file);

/// Reads and parses a file ("longrope.io" if it cannot be read).
gguf_file read_gguf(const std::string& path);
/// Writes gguf_serialize(file) to path, atomically and durably (io.hpp
/// write_file_atomic; "longrope.io" on failure).
void write_gguf(const std::string& path, const gguf_file& file);

/// True when the first four bytes of the file at path are "GGUF".
bool is_gguf_file(const std::string& path);

/// The rope_config llama.cpp would run: geometry from the keys above, LongRoPE
/// when rope_factors_long.weight is present (short factors from
/// rope_factors_short.weight, else the long ones, as llama.cpp falls back),
/// linear when <arch>.rope.scaling.type is "linear", plain RoPE when no scaling
/// is given. Layout: half_split for llama.cpp's NEOX architectures (phi2, phi3,
/// qwen2, qwen3, gemma*, gptneox, falcon, stablelm, starcoder2), interleaved
/// otherwise. Throws "longrope.gguf" on a missing or mistyped key, a factor
/// tensor that is not F32 with rotary_dim/2 values, an unsupported scaling type.
rope_config rope_config_from_gguf(const gguf_file& file);

/// Replaces (or adds) the F32 factor tensors and, when attn_factor > 0, the
/// <arch>.rope.scaling.attn_factor key. short_factors may be empty (left as is).
/// Every other kv and tensor is untouched. Throws "longrope.gguf" when the file
/// has no general.architecture, a factor count differs from
/// <arch>.rope.dimension_count / 2, or a value is not positive and finite.
void set_gguf_rope_factors(gguf_file& file, const std::vector<double>& long_factors,
                           const std::vector<double>& short_factors, double attn_factor = 0.0);

}  // namespace longrope

#define LONGROPE_GGUF_INTERNAL 1
#include "detail/gguf_io.hpp"
#include "detail/gguf_rope.hpp"
#undef LONGROPE_GGUF_INTERNAL
