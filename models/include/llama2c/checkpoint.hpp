// llama2c: a small llama2.c-compatible transformer beside longrope (not part of
// the installed library). MIT License.
#pragma once

/// \file checkpoint.hpp
/// Loading llama2.c checkpoints (Karpathy's `run.c` / `export.py` formats).
///
/// Two float32 formats are read, both little-endian:
///
///   version 0 (legacy_export, e.g. stories260K.bin):
///     int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
///     (vocab_size < 0 means a separate classifier follows at the end), then
///     token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim],
///     wk[L][kv_dim][dim], wv[L][kv_dim][dim], wo[L][dim][dim], rms_ffn[L][dim],
///     w1[L][hidden][dim], w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim],
///     freq_cis_real[seq_len][head_size/2], freq_cis_imag[...] (ignored),
///     [wcls[vocab][dim]].
///
///   version 1 (version1_export): a 256-byte header: uint32 magic 0x616b3432
///     ("ak42"), int32 version = 1, the same 7 int32, uint8 shared_classifier,
///     zero padding; then rms_att[L][dim], rms_ffn[L][dim], rms_final[dim],
///     token_embedding, wq, wk, wv, wo, w1, w2, w3 (each [L][out][in]),
///     [wcls] when not shared.
///
/// Version 2 (int8 Q8_0) is recognised and rejected with a clear message.
/// Matrices are row-major (out, in), as torch's nn.Linear weights.
///
/// Every size is checked before anything is read: a truncated, padded or
/// corrupt file (bad magic, non-positive or inconsistent dimensions, sizes
/// that overflow, non-finite weights) throws longrope::error with id
/// "longrope.io" naming the file and the problem. Nothing here crashes on
/// hostile input.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <longrope/checked.hpp>
#include <longrope/error.hpp>
#include <longrope/io.hpp>

namespace llama2c {

/// Hyper-parameters of a llama2.c model, as stored in the header.
struct model_config {
  int dim = 0;            ///< model width.
  int hidden_dim = 0;     ///< SwiGLU inner width.
  int n_layers = 0;
  int n_heads = 0;        ///< query heads.
  int n_kv_heads = 0;     ///< key/value heads (grouped-query attention when < n_heads).
  int vocab_size = 0;     ///< always positive here (the v0 sign is decoded into shared_classifier).
  int seq_len = 0;        ///< the context the model was trained at.
  bool shared_classifier = true;  ///< the classifier is the token embedding.
  int version = 0;        ///< file format: 0 (legacy) or 1 ("ak42").

  int head_size() const noexcept { return n_heads > 0 ? dim / n_heads : 0; }
  int kv_dim() const noexcept { return n_heads > 0 ? dim / n_heads * n_kv_heads : 0; }
  /// Query heads per key/value head.
  int kv_group() const noexcept { return n_kv_heads > 0 ? n_heads / n_kv_heads : 0; }
};

/// The float32 weights of one checkpoint, in the file's (out, in) row-major
/// layout, one vector per tensor with all layers concatenated.
struct checkpoint {
  model_config config;
  std::vector<float> token_embedding;  ///< [vocab][dim]
  std::vector<float> rms_att;          ///< [L][dim]
  std::vector<float> wq;               ///< [L][dim][dim]
  std::vector<float> wk;               ///< [L][kv_dim][dim]
  std::vector<float> wv;               ///< [L][kv_dim][dim]
  std::vector<float> wo;               ///< [L][dim][dim]
  std::vector<float> rms_ffn;          ///< [L][dim]
  std::vector<float> w1;               ///< [L][hidden][dim]
  std::vector<float> w2;               ///< [L][dim][hidden]
  std::vector<float> w3;               ///< [L][hidden][dim]
  std::vector<float> rms_final;        ///< [dim]
  std::vector<float> wcls;             ///< [vocab][dim]; empty when shared_classifier.
};

/// Checks a header's dimensions (positive, dim divisible by n_heads, n_heads by
/// n_kv_heads, even head size, sane upper bounds). Throws longrope::error
/// ("longrope.io") prefixed with `what` (usually the file name).
void validate_config(const model_config& c, const std::string& what);

/// Number of float32 values a checkpoint with config c holds after its header
/// (including v0's two RoPE tables). Throws on overflow. O(1).
std::uint64_t checkpoint_floats(const model_config& c, const std::string& what);

/// Parses a checkpoint held in memory. `name` is used in error messages.
/// O(size); validates everything described in the file comment.
checkpoint parse_checkpoint(const unsigned char* data, std::size_t size, const std::string& name);

/// Reads and parses a checkpoint file. Throws longrope::error ("longrope.io")
/// when the file cannot be read or is malformed.
checkpoint load_checkpoint(const std::string& path);

/// Reads a whole file into memory. Throws longrope::error ("longrope.io").
std::vector<unsigned char> read_file_bytes(const std::string& path);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[noreturn]] inline void io_fail(const std::string& what, const std::string& problem) {
  LONGROPE_THROW("longrope.io", what + ": " + problem);
  std::abort();  // unreachable with exceptions; LONGROPE_THROW aborts without them
}

inline std::int32_t read_i32(const unsigned char* p) noexcept {
  std::uint32_t u = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                    (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
  std::int32_t v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

inline float read_f32(const unsigned char* p) noexcept {
  const std::int32_t i = read_i32(p);
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

/// a * b, throwing on uint64 overflow.
inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const std::string& what) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) io_fail(what, "tensor sizes overflow");
  return a * b;
}

inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, const std::string& what) {
  if (b > std::numeric_limits<std::uint64_t>::max() - a) io_fail(what, "tensor sizes overflow");
  return a + b;
}

/// Sequential reader of float32 tensors from a buffer whose size was checked.
class tensor_reader {
 public:
  tensor_reader(const unsigned char* p, std::size_t n, std::string what) : p_(p), n_(n), what_(std::move(what)) {}

  std::vector<float> take(std::uint64_t count, const char* tensor) {
    const std::uint64_t bytes = checked_mul(count, 4, what_);
    if (bytes > n_ - off_) {
      io_fail(what_, std::string("truncated inside tensor ") + tensor + " (needs " + std::to_string(bytes) +
                         " bytes at offset " + std::to_string(off_) + ", " + std::to_string(n_ - off_) +
                         " left)");
    }
    std::vector<float> v(static_cast<std::size_t>(count));
    const unsigned char* src = p_ + off_;
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = read_f32(src + 4 * i);
      if (!std::isfinite(v[i])) {
        io_fail(what_, std::string("corrupt: non-finite value in tensor ") + tensor + " at element " +
                           std::to_string(i));
      }
    }
    off_ += static_cast<std::size_t>(bytes);
    return v;
  }

  void skip(std::uint64_t count) { off_ += static_cast<std::size_t>(count * 4); }
  std::size_t offset() const noexcept { return off_; }

 private:
  const unsigned char* p_;
  std::size_t n_;
  std::size_t off_ = 0;
  std::string what_;
};

}  // namespace detail

inline void validate_config(const model_config& c, const std::string& what) {
  auto bad = [&](const std::string& field, long long v, const std::string& why) {
    detail::io_fail(what, "corrupt header: " + field + " = " + std::to_string(v) + " " + why);
  };
  // Bounds far above any llama2.c model, low enough that no product overflows.
  constexpr int kMaxDim = 1 << 16, kMaxLayers = 1024, kMaxVocab = 1 << 22, kMaxSeq = 1 << 24;
  if (c.dim <= 0 || c.dim > kMaxDim) bad("dim", c.dim, "(must be in [1, 65536])");
  if (c.hidden_dim <= 0 || c.hidden_dim > 4 * kMaxDim) bad("hidden_dim", c.hidden_dim, "(must be in [1, 262144])");
  if (c.n_layers <= 0 || c.n_layers > kMaxLayers) bad("n_layers", c.n_layers, "(must be in [1, 1024])");
  if (c.n_heads <= 0 || c.n_heads > c.dim) bad("n_heads", c.n_heads, "(must be in [1, dim])");
  if (c.dim % c.n_heads != 0) bad("n_heads", c.n_heads, "(must divide dim = " + std::to_string(c.dim) + ")");
  if (c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads) bad("n_kv_heads", c.n_kv_heads, "(must be in [1, n_heads])");
  if (c.n_heads % c.n_kv_heads != 0) {
    bad("n_kv_heads", c.n_kv_heads, "(must divide n_heads = " + std::to_string(c.n_heads) + ")");
  }
  if (c.head_size() % 2 != 0) bad("head_size", c.head_size(), "(dim / n_heads must be even for RoPE)");
  if (c.vocab_size <= 0 || c.vocab_size > kMaxVocab) bad("vocab_size", c.vocab_size, "(|vocab_size| must be in [1, 4194304])");
  if (c.seq_len <= 0 || c.seq_len > kMaxSeq) bad("seq_len", c.seq_len, "(must be in [1, 16777216])");
}

inline std::uint64_t checkpoint_floats(const model_config& c, const std::string& what) {
  using detail::checked_add;
  using detail::checked_mul;
  const std::uint64_t L = static_cast<std::uint64_t>(c.n_layers);
  const std::uint64_t d = static_cast<std::uint64_t>(c.dim);
  const std::uint64_t h = static_cast<std::uint64_t>(c.hidden_dim);
  const std::uint64_t kv = static_cast<std::uint64_t>(c.kv_dim());
  const std::uint64_t v = static_cast<std::uint64_t>(c.vocab_size);
  std::uint64_t n = checked_mul(v, d, what);                                     // embedding
  n = checked_add(n, checked_mul(L, 2 * d, what), what);                         // rms_att, rms_ffn
  n = checked_add(n, checked_mul(L, checked_mul(d, 2 * d + 2 * kv, what), what), what);  // wq wk wv wo
  n = checked_add(n, checked_mul(L, checked_mul(h, 3 * d, what), what), what);   // w1 w2 w3
  n = checked_add(n, d, what);                                                   // rms_final
  if (c.version == 0) {
    n = checked_add(n, checked_mul(static_cast<std::uint64_t>(c.seq_len), static_cast<std::uint64_t>(c.head_size()), what),
                    what);  // freq_cis_real + freq_cis_imag: 2 * seq_len * head_size/2
  }
  if (!c.shared_classifier) n = checked_add(n, checked_mul(v, d, what), what);
  return n;
}

/// Checks that every tensor of ck has the size ck.config gives it (the
/// layout parse_checkpoint reads). With a shared classifier wcls is not
/// used; when wcls_empty_if_shared it must then be empty (what a writer
/// needs), otherwise it is ignored. Precondition: ck.config passed
/// validate_config (no overflow). Throws longrope::error
/// ("longrope.argument") "<who>: tensor <name> has N values, expected M"
/// for the first tensor that does not fit. O(1).
inline void check_tensor_sizes(const checkpoint& ck, const char* who, bool wcls_empty_if_shared) {
  const model_config& c = ck.config;
  const std::uint64_t L = static_cast<std::uint64_t>(c.n_layers), d = static_cast<std::uint64_t>(c.dim),
                      h = static_cast<std::uint64_t>(c.hidden_dim), kv = static_cast<std::uint64_t>(c.kv_dim()),
                      V = static_cast<std::uint64_t>(c.vocab_size);
  auto need = [who](const std::vector<float>& t, std::uint64_t n, const char* name) {
    if (t.size() != n) {
      LONGROPE_THROW("longrope.argument", std::string(who) + ": tensor " + name + " has " + std::to_string(t.size()) +
                                              " values, expected " + std::to_string(n));
    }
  };
  need(ck.token_embedding, V * d, "token_embedding");
  need(ck.rms_att, L * d, "rms_att");
  need(ck.rms_ffn, L * d, "rms_ffn");
  need(ck.wq, L * d * d, "wq");
  need(ck.wk, L * kv * d, "wk");
  need(ck.wv, L * kv * d, "wv");
  need(ck.wo, L * d * d, "wo");
  need(ck.w1, L * h * d, "w1");
  need(ck.w2, L * d * h, "w2");
  need(ck.w3, L * h * d, "w3");
  need(ck.rms_final, d, "rms_final");
  if (!c.shared_classifier) need(ck.wcls, V * d, "wcls");
  else if (wcls_empty_if_shared) need(ck.wcls, 0, "wcls");
}

inline checkpoint parse_checkpoint(const unsigned char* data, std::size_t size, const std::string& name) {
  constexpr std::uint32_t kMagic = 0x616b3432u;  // "ak42"
  constexpr std::size_t kV1Header = 256;
  if (size < 28) {
    detail::io_fail(name, "truncated: " + std::to_string(size) + " bytes, a llama2.c checkpoint header needs at least 28");
  }
  checkpoint ck;
  model_config& c = ck.config;
  std::size_t header = 0;
  const auto magic = static_cast<std::uint32_t>(detail::read_i32(data));
  if (magic == kMagic) {
    if (size < kV1Header) {
      detail::io_fail(name, "truncated: " + std::to_string(size) + " bytes, the version 1 header needs 256");
    }
    const std::int32_t version = detail::read_i32(data + 4);
    if (version == 2) {
      detail::io_fail(name, "version 2 (int8 Q8_0 quantized) checkpoints are not supported; export with version 0 or 1");
    }
    if (version != 1) detail::io_fail(name, "unknown checkpoint version " + std::to_string(version) + " (expected 0 or 1)");
    const unsigned char* p = data + 8;
    c.dim = detail::read_i32(p);
    c.hidden_dim = detail::read_i32(p + 4);
    c.n_layers = detail::read_i32(p + 8);
    c.n_heads = detail::read_i32(p + 12);
    c.n_kv_heads = detail::read_i32(p + 16);
    c.vocab_size = detail::read_i32(p + 20);
    c.seq_len = detail::read_i32(p + 24);
    const unsigned char shared = p[28];
    if (shared > 1) detail::io_fail(name, "corrupt header: shared_classifier flag = " + std::to_string(shared) + " (expected 0 or 1)");
    c.shared_classifier = shared == 1;
    c.version = 1;
    header = kV1Header;
  } else {
    c.dim = detail::read_i32(data);
    c.hidden_dim = detail::read_i32(data + 4);
    c.n_layers = detail::read_i32(data + 8);
    c.n_heads = detail::read_i32(data + 12);
    c.n_kv_heads = detail::read_i32(data + 16);
    const std::int32_t vocab = detail::read_i32(data + 20);
    c.seq_len = detail::read_i32(data + 24);
    // v0 encodes an unshared classifier as a negative vocab_size.
    c.shared_classifier = vocab > 0;
    c.vocab_size = vocab == std::numeric_limits<std::int32_t>::min() ? 0 : (vocab < 0 ? -vocab : vocab);
    c.version = 0;
    header = 28;
  }
  validate_config(c, name);
  const std::uint64_t floats = checkpoint_floats(c, name);
  const std::uint64_t expected = detail::checked_add(header, detail::checked_mul(floats, 4, name), name);
  if (size != expected) {
    detail::io_fail(name, std::string(size < expected ? "truncated" : "corrupt (trailing bytes)") + ": " +
                              std::to_string(size) + " bytes, but a version " + std::to_string(c.version) +
                              " checkpoint with dim=" + std::to_string(c.dim) + " hidden_dim=" +
                              std::to_string(c.hidden_dim) + " n_layers=" + std::to_string(c.n_layers) +
                              " n_heads=" + std::to_string(c.n_heads) + " n_kv_heads=" +
                              std::to_string(c.n_kv_heads) + " vocab_size=" + std::to_string(c.vocab_size) +
                              " seq_len=" + std::to_string(c.seq_len) + " has exactly " +
                              std::to_string(expected));
  }
  const std::uint64_t L = static_cast<std::uint64_t>(c.n_layers);
  const std::uint64_t d = static_cast<std::uint64_t>(c.dim);
  const std::uint64_t h = static_cast<std::uint64_t>(c.hidden_dim);
  const std::uint64_t kv = static_cast<std::uint64_t>(c.kv_dim());
  const std::uint64_t v = static_cast<std::uint64_t>(c.vocab_size);
  detail::tensor_reader r(data + header, size - header, name);
  if (c.version == 0) {
    ck.token_embedding = r.take(v * d, "token_embedding");
    ck.rms_att = r.take(L * d, "rms_att");
    ck.wq = r.take(L * d * d, "wq");
    ck.wk = r.take(L * kv * d, "wk");
    ck.wv = r.take(L * kv * d, "wv");
    ck.wo = r.take(L * d * d, "wo");
    ck.rms_ffn = r.take(L * d, "rms_ffn");
    ck.w1 = r.take(L * h * d, "w1");
    ck.w2 = r.take(L * d * h, "w2");
    ck.w3 = r.take(L * h * d, "w3");
    ck.rms_final = r.take(d, "rms_final");
    r.skip(static_cast<std::uint64_t>(c.seq_len) * static_cast<std::uint64_t>(c.head_size()));  // freq_cis_*
  } else {
    ck.rms_att = r.take(L * d, "rms_att");
    ck.rms_ffn = r.take(L * d, "rms_ffn");
    ck.rms_final = r.take(d, "rms_final");
    ck.token_embedding = r.take(v * d, "token_embedding");
    ck.wq = r.take(L * d * d, "wq");
    ck.wk = r.take(L * kv * d, "wk");
    ck.wv = r.take(L * kv * d, "wv");
    ck.wo = r.take(L * d * d, "wo");
    ck.w1 = r.take(L * h * d, "w1");
    ck.w2 = r.take(L * d * h, "w2");
    ck.w3 = r.take(L * h * d, "w3");
  }
  if (!c.shared_classifier) ck.wcls = r.take(v * d, "wcls");
  return ck;
}

inline std::vector<unsigned char> read_file_bytes(const std::string& path) {
  // longrope's one file reader: "X is a directory", "cannot read X: <errno text>".
  return longrope::read_file_bytes(path, std::uint64_t{1} << 36);
}

inline checkpoint load_checkpoint(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  return parse_checkpoint(bytes.data(), bytes.size(), path);
}

}  // namespace llama2c
