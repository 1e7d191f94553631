// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file tokenizer.hpp
/// The llama2.c tokenizer (tok*.bin, tokenizer.bin): a sentencepiece-style BPE
/// vocabulary with one score per piece.
///
/// File format (little-endian): uint32 max_token_length, then for each of the
/// vocab_size tokens: float32 score, int32 length, `length` bytes.
/// Conventions: 0 = <unk>, 1 = BOS, 2 = EOS, id b + 3 = the byte b ("<0xXX>").
///
/// encode() produces exactly the ids of llama2.c run.c's encode():
///  1. [BOS], then the dummy prefix " " when the text is non-empty;
///  2. each UTF-8 code point (a lead byte and up to 3 continuation bytes) is
///     looked up as a piece, else its bytes become byte tokens (b + 3);
///  3. repeatedly merge the adjacent pair whose concatenation is a piece with
///     the highest score (the leftmost pair on ties, scores compared as float,
///     only scores > -1e10 considered), until no pair merges;
///  4. [EOS].
/// run.c rescans the whole sequence for every merge (O(n^2)); this
/// implementation keeps the candidate pairs in a heap ordered by (score
/// descending, position ascending), which selects the same pair at every step,
/// so whole books encode in O(n log n). Differences from run.c, only where
/// run.c itself misbehaves: a NUL byte in the text is encoded as its byte token
/// (run.c stops there), a vocabulary without a " " piece is an error (run.c
/// writes id -1), and duplicate pieces resolve to their lowest id (run.c's
/// bsearch picks either).
///
/// decode_piece() is run.c's decode(): after BOS one leading space is dropped,
/// and a "<0xXX>" piece becomes that byte.

#include <cstdint>
#include <cstring>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "checkpoint.hpp"

namespace llama2c {

inline constexpr int kBos = 1;  ///< beginning of sequence, the first token of every window.
inline constexpr int kEos = 2;

class tokenizer {
 public:
  tokenizer() = default;

  /// Parses a tokenizer held in memory; vocab_size comes from the model.
  /// Throws longrope::error ("longrope.io") on a truncated or malformed file.
  static tokenizer parse(const unsigned char* data, std::size_t size, int vocab_size, const std::string& name);
  /// Reads a tok*.bin file. Throws longrope::error ("longrope.io").
  static tokenizer load(const std::string& path, int vocab_size);
  /// Builds a tokenizer from pieces and scores (tests, synthetic vocabularies).
  static tokenizer from_pieces(std::vector<std::string> pieces, std::vector<float> scores);

  int vocab_size() const noexcept { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int id) const;
  float score(int id) const;
  /// The id of a piece, if it is in the vocabulary (lowest id on duplicates).
  std::optional<int> lookup(std::string_view piece) const;

  /// run.c's encode (see the file comment). O(n log n) in the text length.
  /// Every returned id is in [0, vocab_size()). Throws longrope::error
  /// ("longrope.argument") when a byte token would be needed but the
  /// vocabulary has fewer than 259 entries, " " is missing, or BOS (1) / EOS
  /// (2) is requested from a vocabulary too small to hold it.
  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;

  /// run.c's decode of `token` following `prev` (see the file comment).
  /// Throws longrope::error ("longrope.argument") for an id out of range.
  std::string decode_piece(int prev, int token) const;

  /// The text of a token sequence: decode_piece(tokens[i-1], tokens[i]) for
  /// every token except BOS and EOS, which render as nothing (a leading BOS
  /// still drops the next piece's space, as in run.c's generate loop).
  std::string decode(const std::vector<int>& tokens) const;

 private:
  void build_index();
  void check_id(int id) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
  std::uint32_t max_token_length_ = 0;
};

// ---------------------------------------------------------------------------
// Implementation

inline tokenizer tokenizer::parse(const unsigned char* data, std::size_t size, int vocab_size,
                                  const std::string& name) {
  if (vocab_size <= 0) detail::io_fail(name, "vocab_size must be > 0, got " + std::to_string(vocab_size));
  if (size < 4) detail::io_fail(name, "truncated: " + std::to_string(size) + " bytes, the header needs 4");
  tokenizer t;
  t.max_token_length_ = static_cast<std::uint32_t>(detail::read_i32(data));
  std::size_t off = 4;
  t.pieces_.reserve(static_cast<std::size_t>(vocab_size));
  t.scores_.reserve(static_cast<std::size_t>(vocab_size));
  for (int i = 0; i < vocab_size; ++i) {
    if (size - off < 8) {
      detail::io_fail(name, "truncated at token " + std::to_string(i) + " of " + std::to_string(vocab_size) +
                                " (is vocab_size right for this tokenizer?)");
    }
    const float score = detail::read_f32(data + off);
    const std::int32_t len = detail::read_i32(data + off + 4);
    off += 8;
    if (!std::isfinite(score)) detail::io_fail(name, "corrupt: non-finite score of token " + std::to_string(i));
    if (len < 0 || static_cast<std::size_t>(len) > size - off) {
      detail::io_fail(name, "corrupt or truncated: token " + std::to_string(i) + " has length " +
                                std::to_string(len) + " with " + std::to_string(size - off) + " bytes left");
    }
    t.pieces_.emplace_back(reinterpret_cast<const char*>(data + off), static_cast<std::size_t>(len));
    t.scores_.push_back(score);
    off += static_cast<std::size_t>(len);
  }
  if (off != size) {
    detail::io_fail(name, "corrupt: " + std::to_string(size - off) + " trailing bytes after " +
                              std::to_string(vocab_size) + " tokens (is vocab_size right for this tokenizer?)");
  }
  t.build_index();
  return t;
}

inline tokenizer tokenizer::load(const std::string& path, int vocab_size) {
  const auto bytes = read_file_bytes(path);
  return parse(bytes.data(), bytes.size(), vocab_size, path);
}

inline tokenizer tokenizer::from_pieces(std::vector<std::string> pieces, std::vector<float> scores) {
  if (pieces.size() != scores.size()) {
    LONGROPE_THROW("longrope.argument", "tokenizer::from_pieces: " + std::to_string(pieces.size()) + " pieces but " +
                                            std::to_string(scores.size()) + " scores");
  }
  tokenizer t;
  t.pieces_ = std::move(pieces);
  t.scores_ = std::move(scores);
  for (const auto& p : t.pieces_) {
    t.max_token_length_ = std::max(t.max_token_length_, static_cast<std::uint32_t>(p.size()));
  }
  t.build_index();
  return t;
}

inline void tokenizer::build_index() {
  index_.clear();
  index_.reserve(pieces_.size() * 2);
  for (std::size_t i = 0; i < pieces_.size(); ++i) index_.emplace(pieces_[i], static_cast<int>(i));  // keeps the first
}

inline void tokenizer::check_id(int id) const {
  if (id < 0 || id >= vocab_size()) {
    LONGROPE_THROW("longrope.argument", "token id " + std::to_string(id) + " out of range [0, " +
                                            std::to_string(vocab_size()) + ")");
  }
}

inline const std::string& tokenizer::piece(int id) const {
  check_id(id);
  return pieces_[static_cast<std::size_t>(id)];
}

inline float tokenizer::score(int id) const {
  check_id(id);
  return scores_[static_cast<std::size_t>(id)];
}

inline std::optional<int> tokenizer::lookup(std::string_view p) const {
  // unordered_map<std::string> has no heterogeneous lookup in C++17.
  auto it = index_.find(std::string(p));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

inline std::vector<int> tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  // Every id emitted is in [0, vocab_size()): BOS and EOS are fixed ids.
  if ((bos && kBos >= vocab_size()) || (eos && kEos >= vocab_size())) {
    LONGROPE_THROW("longrope.argument", std::string("tokenizer: ") + (bos && kBos >= vocab_size() ? "BOS (id 1)" : "EOS (id 2)") +
                                            " is outside the vocabulary of " + std::to_string(vocab_size()) + " piece(s)");
  }
  std::vector<int> tok;
  tok.reserve(text.size() + 3);
  if (bos) tok.push_back(kBos);
  if (!text.empty()) {
    const auto space = lookup(" ");
    if (!space) LONGROPE_THROW("longrope.argument", "tokenizer: the vocabulary has no \" \" piece (the dummy prefix)");
    tok.push_back(*space);
  }
  // Code points, exactly as run.c: a non-continuation byte starts a new buffer;
  // keep appending while the next byte is a continuation and the buffer holds < 4.
  std::string buf;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) buf.clear();
    buf.push_back(static_cast<char>(c));
    const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0u;
    if ((next & 0xC0) == 0x80 && buf.size() < 4) continue;
    if (const auto id = lookup(buf)) {
      tok.push_back(*id);
    } else {
      for (const char b : buf) {
        const int id2 = static_cast<int>(static_cast<unsigned char>(b)) + 3;
        if (id2 >= vocab_size()) {
          LONGROPE_THROW("longrope.argument", "tokenizer: byte fallback needs 259 tokens, the vocabulary has " +
                                                  std::to_string(vocab_size()));
        }
        tok.push_back(id2);
      }
    }
    buf.clear();
  }

  // BPE merges over a doubly linked list; stale heap entries are recognised by
  // per-node version counters.
  const std::size_t n = tok.size();
  if (n >= 2) {
    std::vector<std::ptrdiff_t> prev(n), next(n);
    std::vector<std::uint32_t> version(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<std::ptrdiff_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<std::ptrdiff_t>(i + 1) : -1;
    }
    struct candidate {
      float score;
      std::ptrdiff_t left, right;
      std::uint32_t vleft, vright;
      int merged;
    };
    // Top = highest score, then leftmost node (node indices keep their order).
    auto worse = [](const candidate& a, const candidate& b) {
      if (a.score != b.score) return a.score < b.score;
      return a.left > b.left;
    };
    std::priority_queue<candidate, std::vector<candidate>, decltype(worse)> heap(worse);
    std::string joined;
    auto consider = [&](std::ptrdiff_t l, std::ptrdiff_t r) {
      if (l < 0 || r < 0) return;
      const auto li = static_cast<std::size_t>(l), ri = static_cast<std::size_t>(r);
      joined = pieces_[static_cast<std::size_t>(tok[li])];
      joined += pieces_[static_cast<std::size_t>(tok[ri])];
      const auto id = lookup(joined);
      if (!id) return;
      const float s = scores_[static_cast<std::size_t>(*id)];
      if (!(s > -1e10f)) return;  // run.c's initial best_score
      heap.push({s, l, r, version[li], version[ri], *id});
    };
    for (std::size_t i = 0; i + 1 < n; ++i) consider(static_cast<std::ptrdiff_t>(i), static_cast<std::ptrdiff_t>(i + 1));
    std::vector<bool> alive(n, true);
    while (!heap.empty()) {
      const candidate c = heap.top();
      heap.pop();
      const auto li = static_cast<std::size_t>(c.left), ri = static_cast<std::size_t>(c.right);
      if (!alive[li] || !alive[ri] || next[li] != c.right || version[li] != c.vleft || version[ri] != c.vright) {
        continue;
      }
      tok[li] = c.merged;
      ++version[li];
      alive[ri] = false;
      next[li] = next[ri];
      if (next[ri] >= 0) prev[static_cast<std::size_t>(next[ri])] = c.left;
      consider(prev[li], c.left);
      consider(c.left, next[li]);
    }
    std::vector<int> out;
    out.reserve(n + 1);
    for (std::ptrdiff_t i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) out.push_back(tok[static_cast<std::size_t>(i)]);
    tok.swap(out);
  }
  if (eos) tok.push_back(kEos);
  return tok;
}

inline std::string tokenizer::decode_piece(int prev, int token) const {
  std::string_view p = piece(token);
  if (prev == kBos && !p.empty() && p[0] == ' ') p.remove_prefix(1);
  auto hex = [](char ch) -> int {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
  };
  if (p.size() == 6 && p.substr(0, 3) == "<0x" && p[5] == '>' && hex(p[3]) >= 0 && hex(p[4]) >= 0) {
    return std::string(1, static_cast<char>(hex(p[3]) * 16 + hex(p[4])));
  }
  return std::string(p);
}

inline std::string tokenizer::decode(const std::vector<int>& tokens) const {
  std::string s;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == kBos || tokens[i] == kEos) continue;
    s += decode_piece(i > 0 ? tokens[i - 1] : -1, tokens[i]);
  }
  return s;
}

}  // namespace llama2c
