// longrope: header-only LongRoPE positional interpolation. MIT License.
// GGUF container parsing and writing. Include <longrope/gguf.hpp>, not this file.
#pragma once
#ifndef LONGROPE_GGUF_INTERNAL
#error "detail/gguf_io.hpp is internal: include <longrope/gguf.hpp>"
#endif

#include <algorithm>
#include <cmath>
#include <iterator>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace longrope {

namespace detail {

[[noreturn]] inline void gguf_fail(std::size_t at, const std::string& what) {
  LONGROPE_THROW("longrope.gguf", "at byte " + std::to_string(at) + ": " + what);
}

constexpr int gguf_max_depth = 8;
constexpr std::uint32_t gguf_max_dims = 8;

/// Bytes a value of a fixed-size type takes; 0 for string/array/unknown.
inline std::size_t gguf_scalar_size(std::uint32_t t) noexcept {
  switch (t) {
    case 0: case 1: case 7: return 1;
    case 2: case 3: return 2;
    case 4: case 5: case 6: return 4;
    case 10: case 11: case 12: return 8;
    default: return 0;
  }
}

/// A bounds-checked little-endian cursor over the input.
class gguf_cursor {
 public:
  gguf_cursor(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  std::size_t pos() const noexcept { return pos_; }
  std::size_t left() const noexcept { return n_ - pos_; }

  void need(std::size_t bytes, const char* what) const {
    if (bytes > left()) {
      gguf_fail(pos_, std::string(what) + ": needs " + std::to_string(bytes) + " bytes, only " +
                          std::to_string(left()) + " left");
    }
  }
  std::uint64_t uint(std::size_t bytes, const char* what) {
    need(bytes, what);
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < bytes; ++k) v |= static_cast<std::uint64_t>(p_[pos_ + k]) << (8 * k);
    pos_ += bytes;
    return v;
  }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(uint(4, what)); }
  std::uint64_t u64(const char* what) { return uint(8, what); }
  std::string str(const char* what) {
    const std::size_t at = pos_;
    const std::uint64_t len = u64(what);
    if (len > left()) {
      gguf_fail(at, std::string(what) + ": string length " + std::to_string(len) + " exceeds the " +
                        std::to_string(left()) + " bytes left");
    }
    std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return s;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
};

inline double gguf_bits_to_f32(std::uint64_t bits) noexcept {
  const auto b = static_cast<std::uint32_t>(bits);
  float f;
  std::memcpy(&f, &b, sizeof f);
  return static_cast<double>(f);
}

inline double gguf_bits_to_f64(std::uint64_t bits) noexcept {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

inline gguf_value gguf_read_value(gguf_cursor& c, std::uint32_t type, int depth) {
  gguf_value v;
  const std::size_t at = c.pos();
  if (type > 12) gguf_fail(at, "unknown metadata value type " + std::to_string(type));
  v.type = static_cast<gguf_type>(type);
  switch (v.type) {
    case gguf_type::uint8: case gguf_type::uint16: case gguf_type::uint32: case gguf_type::uint64:
      v.u = c.uint(gguf_scalar_size(type), "integer value");
      break;
    case gguf_type::boolean:
      v.u = c.uint(1, "bool value");
      if (v.u > 1) gguf_fail(at, "bool value " + std::to_string(v.u) + " is neither 0 nor 1");
      break;
    case gguf_type::int8: case gguf_type::int16: case gguf_type::int32: case gguf_type::int64: {
      const std::size_t n = gguf_scalar_size(type);
      const std::uint64_t raw = c.uint(n, "integer value");
      const unsigned shift = static_cast<unsigned>(64 - 8 * n);
      // Sign-extend through the top bits (well defined for unsigned, then converted).
      v.i = static_cast<std::int64_t>(raw << shift) >> shift;
      break;
    }
    case gguf_type::float32: v.f = gguf_bits_to_f32(c.uint(4, "f32 value")); break;
    case gguf_type::float64: v.f = gguf_bits_to_f64(c.uint(8, "f64 value")); break;
    case gguf_type::string: v.s = c.str("string value"); break;
    case gguf_type::array: {
      if (depth >= gguf_max_depth) gguf_fail(at, "arrays nested deeper than " + std::to_string(gguf_max_depth));
      const std::uint32_t et = c.u32("array element type");
      if (et > 12) gguf_fail(at, "array of unknown element type " + std::to_string(et));
      const std::uint64_t count = c.u64("array length");
      // Every element takes at least one byte (a string or array at least 8 or 12):
      // a count the remaining bytes cannot hold is rejected before any allocation.
      std::size_t min_elem = gguf_scalar_size(et);
      if (et == 8) min_elem = 8;
      if (et == 9) min_elem = 12;
      if (count > c.left() / min_elem) {
        gguf_fail(at, "array length " + std::to_string(count) + " exceeds what the " + std::to_string(c.left()) +
                          " bytes left can hold");
      }
      v.elem_type = static_cast<gguf_type>(et);
      v.elems.reserve(static_cast<std::size_t>(count));
      for (std::uint64_t k = 0; k < count; ++k) v.elems.push_back(gguf_read_value(c, et, depth + 1));
      break;
    }
  }
  return v;
}

inline bool gguf_is_pow2(std::uint64_t a) noexcept { return a != 0 && (a & (a - 1)) == 0; }

struct gguf_buffer {
  std::vector<std::uint8_t> bytes;
  void uint(std::uint64_t v, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) bytes.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
  }
  void str(const std::string& s) {
    uint(s.size(), 8);
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void pad(std::uint64_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
  }
};

inline void gguf_write_value(gguf_buffer& b, const gguf_value& v, int depth) {
  if (v.type == gguf_type::array && depth >= gguf_max_depth) {
    LONGROPE_THROW("longrope.gguf", "arrays nested deeper than " + std::to_string(gguf_max_depth));
  }
  switch (v.type) {
    case gguf_type::uint8: case gguf_type::uint16: case gguf_type::uint32: case gguf_type::uint64:
    case gguf_type::boolean:
      b.uint(v.u, gguf_scalar_size(static_cast<std::uint32_t>(v.type)));
      break;
    case gguf_type::int8: case gguf_type::int16: case gguf_type::int32: case gguf_type::int64:
      b.uint(static_cast<std::uint64_t>(v.i), gguf_scalar_size(static_cast<std::uint32_t>(v.type)));
      break;
    case gguf_type::float32: {
      const float f = static_cast<float>(v.f);
      std::uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      b.uint(bits, 4);
      break;
    }
    case gguf_type::float64: {
      std::uint64_t bits;
      std::memcpy(&bits, &v.f, sizeof bits);
      b.uint(bits, 8);
      break;
    }
    case gguf_type::string: b.str(v.s); break;
    case gguf_type::array:
      b.uint(static_cast<std::uint32_t>(v.elem_type), 4);
      b.uint(v.elems.size(), 8);
      for (const auto& e : v.elems) {
        if (e.type != v.elem_type) LONGROPE_THROW("longrope.gguf", "array element of the wrong type");
        gguf_write_value(b, e, depth + 1);
      }
      break;
    default: LONGROPE_THROW("longrope.gguf", "unknown value type " + std::to_string(static_cast<std::uint32_t>(v.type)));
  }
}

}  // namespace detail

inline const char* to_string(gguf_type t) noexcept {
  switch (t) {
    case gguf_type::uint8: return "u8";
    case gguf_type::int8: return "i8";
    case gguf_type::uint16: return "u16";
    case gguf_type::int16: return "i16";
    case gguf_type::uint32: return "u32";
    case gguf_type::int32: return "i32";
    case gguf_type::float32: return "f32";
    case gguf_type::boolean: return "bool";
    case gguf_type::string: return "string";
    case gguf_type::array: return "array";
    case gguf_type::uint64: return "u64";
    case gguf_type::int64: return "i64";
    case gguf_type::float64: return "f64";
  }
  return "unknown";
}

inline gguf_value gguf_value::make_u32(std::uint32_t v) {
  gguf_value r;
  r.type = gguf_type::uint32;
  r.u = v;
  return r;
}
inline gguf_value gguf_value::make_f32(float v) {
  gguf_value r;
  r.type = gguf_type::float32;
  r.f = static_cast<double>(v);
  return r;
}
inline gguf_value gguf_value::make_string(std::string v) {
  gguf_value r;
  r.type = gguf_type::string;
  r.s = std::move(v);
  return r;
}

inline double gguf_value::number(const std::string& key) const {
  switch (type) {
    case gguf_type::uint8: case gguf_type::uint16: case gguf_type::uint32: case gguf_type::uint64:
      return static_cast<double>(u);
    case gguf_type::int8: case gguf_type::int16: case gguf_type::int32: case gguf_type::int64:
      return static_cast<double>(i);
    case gguf_type::float32: case gguf_type::float64: return f;
    default: break;
  }
  LONGROPE_THROW("longrope.gguf", key + ": expected a number, got " + to_string(type));
}

inline std::uint64_t gguf_value::count(const std::string& key) const {
  switch (type) {
    case gguf_type::uint8: case gguf_type::uint16: case gguf_type::uint32: case gguf_type::uint64: return u;
    case gguf_type::int8: case gguf_type::int16: case gguf_type::int32: case gguf_type::int64:
      if (i < 0) LONGROPE_THROW("longrope.gguf", key + ": must be >= 0, got " + std::to_string(i));
      return static_cast<std::uint64_t>(i);
    default: break;
  }
  LONGROPE_THROW("longrope.gguf", key + ": expected an integer, got " + to_string(type));
}

inline const gguf_value* gguf_file::find(const std::string& key) const noexcept {
  for (const auto& kv : kvs) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}
inline gguf_value* gguf_file::find(const std::string& key) noexcept {
  for (auto& kv : kvs) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}
inline void gguf_file::set(const std::string& key, gguf_value value) {
  if (gguf_value* v = find(key)) {
    *v = std::move(value);
  } else {
    kvs.push_back({key, std::move(value)});
  }
}
inline const gguf_tensor* gguf_file::find_tensor(const std::string& name) const noexcept {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}
inline gguf_tensor* gguf_file::find_tensor(const std::string& name) noexcept {
  for (auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

inline std::uint64_t gguf_tensor_nbytes(std::uint32_t type, std::uint64_t elements) noexcept {
  // {bytes per block, elements per block} of ggml's fixed-layout types (ggml.c type_traits).
  std::uint64_t bytes = 0, block = 1;
  switch (type) {
    case 0: bytes = 4; break;                 // F32
    case 1: case 30: bytes = 2; break;        // F16, BF16
    case 2: bytes = 18; block = 32; break;    // Q4_0
    case 3: bytes = 20; block = 32; break;    // Q4_1
    case 6: bytes = 22; block = 32; break;    // Q5_0
    case 7: bytes = 24; block = 32; break;    // Q5_1
    case 8: bytes = 34; block = 32; break;    // Q8_0
    case 9: bytes = 36; block = 32; break;    // Q8_1
    case 10: bytes = 84; block = 256; break;  // Q2_K
    case 11: bytes = 110; block = 256; break; // Q3_K
    case 12: bytes = 144; block = 256; break; // Q4_K
    case 13: bytes = 176; block = 256; break; // Q5_K
    case 14: bytes = 210; block = 256; break; // Q6_K
    case 15: bytes = 292; block = 256; break; // Q8_K
    case 24: bytes = 1; break;                // I8
    case 25: bytes = 2; break;                // I16
    case 26: bytes = 4; break;                // I32
    case 27: case 28: bytes = 8; break;       // I64, F64
    default: return 0;
  }
  if (elements % block != 0) return 0;
  const std::uint64_t blocks = elements / block;
  if (blocks > std::numeric_limits<std::uint64_t>::max() / bytes) return 0;
  return blocks * bytes;
}

inline gguf_file gguf_parse(const std::uint8_t* data, std::size_t size) {
  using namespace detail;
  if (data == nullptr && size != 0) gguf_fail(0, "null data");
  gguf_cursor c(data, size);
  gguf_file f;
  const std::uint32_t magic = c.u32("magic");
  if (magic != 0x46554747u) gguf_fail(0, "not a GGUF file (magic is not \"GGUF\")");
  f.version = c.u32("version");
  if (f.version != 2 && f.version != 3) {
    gguf_fail(4, "unsupported GGUF version " + std::to_string(f.version) + " (2 and 3 are read)");
  }
  const std::size_t tc_at = c.pos();
  const std::uint64_t n_tensors = c.u64("tensor count");
  const std::size_t kc_at = c.pos();
  const std::uint64_t n_kv = c.u64("metadata kv count");
  // A kv takes >= 8 (key length) + 4 (type) + 1 bytes; a tensor info >= 8 + 4 + 4 + 8.
  if (n_kv > c.left() / 13) {
    gguf_fail(kc_at, "metadata kv count " + std::to_string(n_kv) + " exceeds what the file can hold");
  }
  if (n_tensors > c.left() / 24) {
    gguf_fail(tc_at, "tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold");
  }
  f.kvs.reserve(static_cast<std::size_t>(n_kv));
  bool have_alignment = false;
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    gguf_kv kv;
    kv.key = c.str("metadata key");
    const std::size_t at = c.pos();
    const std::uint32_t type = c.u32("metadata value type");
    kv.value = gguf_read_value(c, type, 0);
    if (kv.key == "general.alignment") {
      if (kv.value.type != gguf_type::uint32) {
        gguf_fail(at, "general.alignment must be u32, got " + std::string(to_string(kv.value.type)));
      }
      if (!gguf_is_pow2(kv.value.u)) {
        gguf_fail(at, "general.alignment " + std::to_string(kv.value.u) + " is not a power of two");
      }
      f.alignment = static_cast<std::uint32_t>(kv.value.u);
      have_alignment = true;
    }
    f.kvs.push_back(std::move(kv));
  }
  (void)have_alignment;
  struct info {
    std::uint64_t offset, nbytes;
    std::size_t at;
  };
  std::vector<info> infos;
  infos.reserve(static_cast<std::size_t>(n_tensors));
  f.tensors.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t k = 0; k < n_tensors; ++k) {
    gguf_tensor t;
    const std::size_t at = c.pos();
    t.name = c.str("tensor name");
    const std::uint32_t nd = c.u32("tensor n_dims");
    if (nd > gguf_max_dims) gguf_fail(at, "tensor '" + t.name + "': n_dims " + std::to_string(nd) + " > 8");
    std::uint64_t elements = 1;
    for (std::uint32_t d = 0; d < nd; ++d) {
      const std::uint64_t ne = c.u64("tensor dimension");
      if (ne != 0 && elements > std::numeric_limits<std::uint64_t>::max() / ne) {
        gguf_fail(at, "tensor '" + t.name + "': element count overflows 64 bits");
      }
      elements *= ne;
      t.dims.push_back(ne);
    }
    t.type = c.u32("tensor type");
    if (t.type > 255) gguf_fail(at, "tensor '" + t.name + "': unknown ggml type " + std::to_string(t.type));
    t.offset = c.u64("tensor offset");
    if (t.offset % f.alignment != 0) {
      gguf_fail(at, "tensor '" + t.name + "': offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                        std::to_string(f.alignment));
    }
    std::uint64_t nbytes = gguf_tensor_nbytes(t.type, elements);
    if (nbytes == 0 && elements != 0 && t.type <= 30 && gguf_tensor_nbytes(t.type, 256) != 0) {
      gguf_fail(at, "tensor '" + t.name + "': " + std::to_string(elements) + " elements do not fill whole blocks");
    }
    infos.push_back({t.offset, nbytes, at});
    f.tensors.push_back(std::move(t));
  }
  // Data starts at the next multiple of the alignment.
  std::size_t data_start = c.pos();
  const std::size_t rem = data_start % f.alignment;
  if (rem != 0) {
    const std::size_t padding = f.alignment - rem;
    if (padding > c.left() && !f.tensors.empty()) gguf_fail(c.pos(), "padding before the tensor data runs past the end");
    data_start += padding;
  }
  const std::uint64_t data_size = size >= data_start ? size - data_start : 0;
  // Unknown types: the bytes up to the next tensor's offset (or the end).
  for (std::size_t k = 0; k < infos.size(); ++k) {
    if (infos[k].nbytes != 0 || gguf_tensor_nbytes(f.tensors[k].type, 256) != 0) continue;
    std::uint64_t next = data_size;
    for (const auto& o : infos) {
      if (o.offset > infos[k].offset && o.offset < next) next = o.offset;
    }
    if (infos[k].offset > data_size) next = infos[k].offset;
    infos[k].nbytes = next - infos[k].offset;
  }
  for (std::size_t k = 0; k < infos.size(); ++k) {
    const auto& in = infos[k];
    if (in.offset > data_size || in.nbytes > data_size - in.offset) {
      gguf_fail(in.at, "tensor '" + f.tensors[k].name + "': data [" + std::to_string(in.offset) + ", +" +
                           std::to_string(in.nbytes) + ") runs past the end of the data section (" +
                           std::to_string(data_size) + " bytes)");
    }
  }
  // No two tensors may share bytes.
  std::vector<std::size_t> order(infos.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return infos[a].offset < infos[b].offset; });
  for (std::size_t k = 1; k < order.size(); ++k) {
    const auto& a = infos[order[k - 1]];
    const auto& b = infos[order[k]];
    if (a.offset + a.nbytes > b.offset && a.nbytes != 0 && b.nbytes != 0) {
      gguf_fail(b.at, "tensor '" + f.tensors[order[k]].name + "' overlaps tensor '" + f.tensors[order[k - 1]].name + "'");
    }
  }
  for (std::size_t k = 0; k < infos.size(); ++k) {
    if (infos[k].nbytes == 0) continue;
    const std::uint8_t* p = data + data_start + infos[k].offset;
    f.tensors[k].data.assign(p, p + infos[k].nbytes);
  }
  return f;
}

inline std::vector<std::uint8_t> gguf_serialize(const gguf_file& file) {
  using namespace detail;
  if (!gguf_is_pow2(file.alignment)) {
    LONGROPE_THROW("longrope.gguf", "alignment " + std::to_string(file.alignment) + " is not a power of two");
  }
  if (const gguf_value* a = file.find("general.alignment"); a && (a->type != gguf_type::uint32 || a->u != file.alignment)) {
    LONGROPE_THROW("longrope.gguf", "general.alignment disagrees with gguf_file::alignment");
  }
  gguf_buffer b;
  b.uint(0x46554747u, 4);
  b.uint(file.version, 4);
  b.uint(file.tensors.size(), 8);
  b.uint(file.kvs.size(), 8);
  for (const auto& kv : file.kvs) {
    b.str(kv.key);
    b.uint(static_cast<std::uint32_t>(kv.value.type), 4);
    gguf_write_value(b, kv.value, 0);
  }
  std::uint64_t offset = 0;
  for (const auto& t : file.tensors) {
    std::uint64_t elements = 1;
    for (auto d : t.dims) elements *= d;
    const std::uint64_t expect = gguf_tensor_nbytes(t.type, elements);
    if (expect != 0 && expect != t.data.size()) {
      LONGROPE_THROW("longrope.gguf", "tensor '" + t.name + "': holds " + std::to_string(t.data.size()) +
                                          " bytes, its type and shape need " + std::to_string(expect));
    }
    b.str(t.name);
    b.uint(t.dims.size(), 4);
    for (auto d : t.dims) b.uint(d, 8);
    b.uint(t.type, 4);
    b.uint(offset, 8);
    offset += t.data.size();
    offset = (offset + file.alignment - 1) / file.alignment * file.alignment;
  }
  if (!file.tensors.empty()) b.pad(file.alignment);
  const std::size_t data_start = b.bytes.size();
  for (const auto& t : file.tensors) {
    b.bytes.insert(b.bytes.end(), t.data.begin(), t.data.end());
    while ((b.bytes.size() - data_start) % file.alignment != 0) b.bytes.push_back(0);
  }
  return std::move(b.bytes);
}

inline gguf_file read_gguf(const std::string& path) {
  // "X is a directory" / "cannot read X: <errno text>", size checked before allocating.
  const std::vector<unsigned char> bytes = read_file_bytes(path, std::numeric_limits<std::uint64_t>::max());
  try {
    return gguf_parse(bytes.data(), bytes.size());
  } catch (const error& e) {
    LONGROPE_THROW("longrope.gguf", path + ": " + e.what());
  }
}

inline void write_gguf(const std::string& path, const gguf_file& file) {
  const std::vector<std::uint8_t> bytes = gguf_serialize(file);
  // Durable and atomic (io.hpp): a crash never leaves a truncated model file.
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

inline bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char m[4] = {0, 0, 0, 0};
  in.read(m, 4);
  return in.gcount() == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

}  // namespace longrope
