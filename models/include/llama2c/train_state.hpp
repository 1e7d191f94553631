// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file train_state.hpp
/// The training-state file: everything a trainer<T> step depends on, so a run
/// killed after step k and resumed from its state file continues bit for bit
/// as the uninterrupted run (for the same thread count and options).
///
/// Layout (little-endian): "LRTRAIN1", uint32 sizeof(T), int32 dim,
/// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, uint8
/// shared_classifier, int64 step, int64 tokens_seen, uint64 fingerprint
/// length + bytes (the options that must not change on resume), uint64
/// source-state count + values, uint64 parameter count, then the weights, the
/// first and the second AdamW moments, each `count` values of T in the order
/// of transformer::for_each_tensor. The weights are stored at full precision
/// (a float32 checkpoint would round a double trainer).
///
/// load_train_state throws longrope::error ("longrope.io") naming the file for
/// a missing, truncated or foreign file, another model shape or scalar type,
/// or a fingerprint that differs from the current options (both shown).

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "checkpoint_writer.hpp"
#include "train.hpp"

namespace llama2c {

namespace detail {

inline void put_u64(std::vector<unsigned char>& b, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<unsigned char>((v >> (8 * i)) & 0xFFu));
}

class state_reader {
 public:
  state_reader(const std::vector<unsigned char>& b, std::string what) : b_(b), what_(std::move(what)) {}
  const unsigned char* take(std::uint64_t n) {
    if (n > b_.size() - off_) io_fail(what_, "truncated training state");
    const unsigned char* p = b_.data() + off_;
    off_ += static_cast<std::size_t>(n);
    return p;
  }
  std::uint64_t u64() {
    const unsigned char* p = take(8);
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::int32_t i32() { return read_i32(take(4)); }
  bool done() const noexcept { return off_ == b_.size(); }

 private:
  const std::vector<unsigned char>& b_;
  std::string what_;
  std::size_t off_ = 0;
};

template <class T>
void put_values(std::vector<unsigned char>& b, const T* p, std::size_t n) {
  const std::size_t at = b.size();
  b.resize(at + n * sizeof(T));
  std::memcpy(b.data() + at, p, n * sizeof(T));  // little-endian hosts (checked by the magic on load)
}

}  // namespace detail

/// Writes the trainer's state and the source's position to `path` (atomic).
template <class T>
void save_train_state(trainer<T>& tr, const sequence_source& src, const std::string& fingerprint,
                      const std::string& path) {
  std::vector<unsigned char> b;
  const char magic[8] = {'L', 'R', 'T', 'R', 'A', 'I', 'N', '1'};
  b.insert(b.end(), magic, magic + 8);
  detail::put_i32(b, static_cast<std::int32_t>(sizeof(T)));
  const model_config& c = tr.model().config();
  for (int v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len}) {
    detail::put_i32(b, v);
  }
  b.push_back(c.shared_classifier ? 1 : 0);
  detail::put_u64(b, static_cast<std::uint64_t>(tr.step_count()));
  detail::put_u64(b, static_cast<std::uint64_t>(tr.tokens_seen()));
  detail::put_u64(b, fingerprint.size());
  b.insert(b.end(), fingerprint.begin(), fingerprint.end());
  const auto s = src.state();
  detail::put_u64(b, s.size());
  for (auto v : s) detail::put_u64(b, v);
  const std::size_t n = tr.first_moment().size();
  detail::put_u64(b, n);
  tr.model().for_each_tensor([&](const char*, const T* p, index_t k, bool) {
    detail::put_values(b, p, static_cast<std::size_t>(k));
  });
  detail::put_values(b, tr.first_moment().data(), n);
  detail::put_values(b, tr.second_moment().data(), n);
  detail::write_file_atomic(path, b);
}

/// Restores a state written by save_train_state into `tr` (built from the
/// same model shape) and `src`. See the file comment for the errors.
template <class T>
void load_train_state(trainer<T>& tr, sequence_source& src, const std::string& fingerprint, const std::string& path) {
  const std::vector<unsigned char> bytes = read_file_bytes(path);
  detail::state_reader r(bytes, path);
  if (std::memcmp(r.take(8), "LRTRAIN1", 8) != 0) detail::io_fail(path, "not a longrope training state (bad magic)");
  const std::int32_t size = r.i32();
  if (size != static_cast<std::int32_t>(sizeof(T))) {
    detail::io_fail(path, "training state holds " + std::to_string(size) + "-byte values, this trainer uses " +
                              std::to_string(sizeof(T)));
  }
  const model_config& c = tr.model().config();
  for (int v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len}) {
    if (r.i32() != v) detail::io_fail(path, "training state is for another model shape");
  }
  if (*r.take(1) != (c.shared_classifier ? 1 : 0)) detail::io_fail(path, "training state is for another model shape");
  const std::uint64_t step = r.u64(), tokens = r.u64();
  const std::uint64_t flen = r.u64();
  if (flen > 1u << 20) detail::io_fail(path, "corrupt training state (options too long)");
  const unsigned char* fp = r.take(flen);
  const std::string stored(reinterpret_cast<const char*>(fp), static_cast<std::size_t>(flen));
  if (stored != fingerprint) {
    detail::io_fail(path, "training state was written with other options: [" + stored + "], now [" + fingerprint + "]");
  }
  const std::uint64_t ns = r.u64();
  if (ns > 64) detail::io_fail(path, "corrupt training state (source state)");
  std::vector<std::uint64_t> s(static_cast<std::size_t>(ns));
  for (auto& v : s) v = r.u64();
  const std::uint64_t n = r.u64();
  if (n != tr.first_moment().size()) detail::io_fail(path, "training state has another parameter count");
  auto read_into = [&](T* p, std::size_t k) { std::memcpy(p, r.take(k * sizeof(T)), k * sizeof(T)); };
  tr.model().for_each_tensor([&](const char*, T* p, index_t k, bool) { read_into(p, static_cast<std::size_t>(k)); });
  read_into(tr.first_moment().data(), static_cast<std::size_t>(n));
  read_into(tr.second_moment().data(), static_cast<std::size_t>(n));
  if (!r.done()) detail::io_fail(path, "corrupt training state (trailing bytes)");
  src.restore(s);
  tr.set_progress(static_cast<std::int64_t>(step), static_cast<std::int64_t>(tokens));
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template void save_train_state(trainer<float>&, const sequence_source&, const std::string&,
                                      const std::string&);
extern template void load_train_state(trainer<float>&, sequence_source&, const std::string&,
                                      const std::string&);

}  // namespace llama2c
