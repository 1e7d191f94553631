// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file transformer.hpp
/// The llama2.c forward pass in Eigen, templated on the scalar type (float for
/// speed, double for reference checks), with RoPE applied by longrope's kernels.
///
/// Per token x = emb[token]; per layer l:
///     h = rmsnorm(x, rms_att[l]);  q = h Wq^T, k = h Wk^T, v = h Wv^T
///     q, k <- RoPE(position) via longrope (interleaved pairs, any scaling method,
///             n_hat, attention factor multiplying cos and sin)
///     x += Wo^T attention(q, k, v)      (causal, grouped-query, scores / sqrt(head_size))
///     h = rmsnorm(x, rms_ffn[l]);  x += W2 (silu(W1 h) * (W3 h))
/// logits = rmsnorm(x, rms_final) Wcls^T, rmsnorm(x, w) = w * x / sqrt(mean(x^2) + 1e-5).
///
/// Attention never materialises the T x T score matrix: queries are processed
/// in blocks of kQueryBlock tokens (all query heads of one key/value head
/// stacked), keys in blocks of kKeyBlock, with the streaming ("flash") softmax:
/// a running row maximum m and denominator l, rescaling the partial output by
/// exp(m_old - m_new) when the maximum grows. Memory is O(T * (dim + kv_dim)).
///
/// A transformer is immutable after construction and safe to share across
/// threads; each thread owns its workspace and kv_cache. forward() allocates
/// only when a workspace or cache has to grow.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include <longrope/frequencies.hpp>
#include <longrope/rotate.hpp>
#include <longrope/view.hpp>

#include "checkpoint.hpp"

namespace llama2c {

template <class T>
using matrix_rm = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using vector_t = Eigen::Matrix<T, Eigen::Dynamic, 1>;
using index_t = Eigen::Index;

/// Query tokens per attention block (each with its kv_group() query heads).
inline constexpr index_t kQueryBlock = 32;
/// Keys per attention block: the block's keys and values (2 * head_size *
/// kKeyBlock values) stay in L1 while every query row of the block uses them.
inline constexpr index_t kKeyBlock = 256;
/// Scores accumulated together in registers: 64 lanes = 4 AVX-512 or 8 AVX2
/// registers of float, enough independent FMA chains to hide the FMA latency
/// (one 16-lane chain ran at a quarter of the rate). Also the padding unit of
/// the probability tile and of the cache capacity.
inline constexpr index_t kScoreLanes = 64;
/// Rows per feed-forward and classifier chunk (bounds the hidden/logit buffers).
inline constexpr index_t kRowChunk = 512;

/// Keys and values of every layer for the positions [0, size()) of one
/// sequence, stored transposed: per layer a (kv_dim x capacity) row-major
/// matrix, so row g*head_size + d holds channel d of kv head g for every
/// position, and the attention kernel reads contiguous runs of positions.
/// capacity() is a multiple of kScoreLanes; unused columns are zero.
template <class T>
class kv_cache {
 public:
  kv_cache() = default;
  /// Empties the cache (keeps the memory).
  void clear() noexcept { size_ = 0; }
  /// Number of cached positions.
  index_t size() const noexcept { return size_; }
  index_t capacity() const noexcept { return capacity_; }

  /// Makes room for `positions` positions of a model, keeping the cached
  /// entries; grows geometrically so token-by-token generation reallocates
  /// O(log n) times.
  void reserve(const model_config& c, index_t positions) {
    if (static_cast<int>(k_.size()) != c.n_layers || kv_dim_ != c.kv_dim()) {
      k_.assign(static_cast<std::size_t>(c.n_layers), matrix_rm<T>());
      v_.assign(static_cast<std::size_t>(c.n_layers), matrix_rm<T>());
      kv_dim_ = c.kv_dim();
      capacity_ = 0;
      size_ = 0;
    }
    if (positions <= capacity_) return;
    index_t cap = std::max(positions, capacity_ + capacity_ / 2);
    cap = (cap + kScoreLanes - 1) / kScoreLanes * kScoreLanes;
    for (std::size_t l = 0; l < k_.size(); ++l) {
      for (auto* m : {&k_[l], &v_[l]}) {
        matrix_rm<T> grown = matrix_rm<T>::Zero(kv_dim_, cap);
        if (size_ > 0) grown.leftCols(size_) = m->leftCols(size_);
        m->swap(grown);
      }
    }
    capacity_ = cap;
  }

  /// Layer l's keys, (kv_dim x capacity()).
  matrix_rm<T>& keys(int layer) noexcept { return k_[static_cast<std::size_t>(layer)]; }
  /// Layer l's values, (kv_dim x capacity()).
  matrix_rm<T>& values(int layer) noexcept { return v_[static_cast<std::size_t>(layer)]; }
  const matrix_rm<T>& keys(int layer) const noexcept { return k_[static_cast<std::size_t>(layer)]; }
  const matrix_rm<T>& values(int layer) const noexcept { return v_[static_cast<std::size_t>(layer)]; }
  /// Marks positions [0, n) as filled; n <= capacity().
  void set_size(index_t n) noexcept { size_ = n; }

  /// Bytes held.
  std::size_t bytes() const noexcept {
    return 2 * k_.size() * static_cast<std::size_t>(capacity_) * static_cast<std::size_t>(kv_dim_) * sizeof(T);
  }

 private:
  std::vector<matrix_rm<T>> k_, v_;  // [layer] (kv_dim x capacity)
  index_t capacity_ = 0;
  index_t size_ = 0;
  index_t kv_dim_ = 0;
};

/// Scratch buffers of one forward pass; one per thread.
template <class T>
struct workspace {
  matrix_rm<T> x;      ///< residual stream (m x dim)
  matrix_rm<T> xb;     ///< normed input of a sub-layer; after forward(): final normed states
  matrix_rm<T> qkv;    ///< (m x dim + 2 kv_dim)
  matrix_rm<T> att;    ///< attention output (m x dim)
  matrix_rm<T> hid;    ///< feed-forward chunk (kRowChunk x 2 hidden)
  matrix_rm<T> logits; ///< classifier chunk (kRowChunk x vocab)
  std::vector<std::int64_t> positions;  ///< positions of the block
  // attention state of one query block: stacked queries, running max / sum, output
  matrix_rm<T> qs, o, p;
  vector_t<T> row_max, row_sum;

  std::size_t bytes() const noexcept {
    auto b = [](const auto& m) { return static_cast<std::size_t>(m.size()) * sizeof(T); };
    return b(x) + b(xb) + b(qkv) + b(att) + b(hid) + b(logits) + b(qs) + b(o) + b(p) + b(row_max) + b(row_sum) +
           positions.size() * sizeof(std::int64_t);
  }
};

/// The model. T is float or double.
template <class T>
class transformer {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "transformer<T>: T must be float or double");

 public:
  /// Copies (and converts) the checkpoint's weights. O(parameters).
  explicit transformer(const checkpoint& ck);

  const model_config& config() const noexcept { return cfg_; }

  /// Runs tokens[0..m) at positions cache.size() .. cache.size()+m-1 through
  /// the model, appending their keys and values to `cache`. Afterwards
  /// ws.xb (m x dim) holds the final normed hidden states; logits_rows() turns
  /// them into logits.
  ///
  /// Preconditions (checked, longrope::error "longrope.argument"): m >= 1,
  /// every token in [0, vocab_size), f built for this model's head size with
  /// rotary_dim == head_size and the interleaved layout.
  /// Complexity: O(m * params + m * (cache.size() + m) * dim) time,
  /// O(m * (dim + kv_dim)) memory beyond the cache.
  void forward(const int* tokens, index_t m, kv_cache<T>& cache, const longrope::rope_frequencies& f,
               workspace<T>& ws) const;

  /// Logits of rows [row0, row0 + rows) of the last forward into out
  /// (rows x vocab, row-major, resized). O(rows * vocab * dim).
  void logits_rows(const workspace<T>& ws, index_t row0, index_t rows, matrix_rm<T>& out) const;

  /// Sum over i in [0, n-1) of -log p(tokens[i+1] | tokens[0..i]) for one
  /// sequence starting at position 0 (the perplexity window). The cache is
  /// cleared and reused. n >= 2. Returned in double (per-row log-softmax in T).
  double sequence_nll(const int* tokens, index_t n, const longrope::rope_frequencies& f, kv_cache<T>& cache,
                      workspace<T>& ws) const;

  /// Checks that f fits this model (see forward()).
  void check_frequencies(const longrope::rope_frequencies& f) const;

 private:
  struct layer {
    vector_t<T> rms_att, rms_ffn;
    matrix_rm<T> wqkv;  // (dim + 2 kv_dim) x dim
    matrix_rm<T> wo;    // dim x dim
    matrix_rm<T> w13;   // 2 hidden x dim (w1 rows, then w3 rows)
    matrix_rm<T> w2;    // dim x hidden
  };

  void rmsnorm(const matrix_rm<T>& x, const vector_t<T>& w, matrix_rm<T>& out) const;
  void attention(index_t m, index_t p0, const matrix_rm<T>& Kt, const matrix_rm<T>& Vt, workspace<T>& ws) const;

  model_config cfg_;
  matrix_rm<T> emb_;  // vocab x dim
  matrix_rm<T> cls_;  // vocab x dim, empty when shared
  std::vector<layer> layers_;
  vector_t<T> rms_final_;
};

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

template <class T>
matrix_rm<T> to_matrix(const float* p, index_t rows, index_t cols) {
  return Eigen::Map<const matrix_rm<float>>(p, rows, cols).template cast<T>();
}

}  // namespace detail

template <class T>
transformer<T>::transformer(const checkpoint& ck) : cfg_(ck.config) {
  validate_config(cfg_, "transformer");
  const index_t d = cfg_.dim, h = cfg_.hidden_dim, kv = cfg_.kv_dim(), v = cfg_.vocab_size;
  const auto need = [&](const std::vector<float>& t, index_t n, const char* name) {
    if (static_cast<index_t>(t.size()) != n) {
      LONGROPE_THROW("longrope.argument", std::string("transformer: tensor ") + name + " has " +
                                              std::to_string(t.size()) + " values, expected " + std::to_string(n));
    }
  };
  const index_t L = cfg_.n_layers;
  need(ck.token_embedding, v * d, "token_embedding");
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
  if (!cfg_.shared_classifier) need(ck.wcls, v * d, "wcls");

  emb_ = detail::to_matrix<T>(ck.token_embedding.data(), v, d);
  if (!cfg_.shared_classifier) cls_ = detail::to_matrix<T>(ck.wcls.data(), v, d);
  rms_final_ = Eigen::Map<const Eigen::VectorXf>(ck.rms_final.data(), d).cast<T>();
  layers_.resize(static_cast<std::size_t>(L));
  for (index_t l = 0; l < L; ++l) {
    layer& ly = layers_[static_cast<std::size_t>(l)];
    ly.rms_att = Eigen::Map<const Eigen::VectorXf>(ck.rms_att.data() + l * d, d).cast<T>();
    ly.rms_ffn = Eigen::Map<const Eigen::VectorXf>(ck.rms_ffn.data() + l * d, d).cast<T>();
    ly.wqkv.resize(d + 2 * kv, d);
    ly.wqkv.topRows(d) = detail::to_matrix<T>(ck.wq.data() + l * d * d, d, d);
    ly.wqkv.middleRows(d, kv) = detail::to_matrix<T>(ck.wk.data() + l * kv * d, kv, d);
    ly.wqkv.bottomRows(kv) = detail::to_matrix<T>(ck.wv.data() + l * kv * d, kv, d);
    ly.wo = detail::to_matrix<T>(ck.wo.data() + l * d * d, d, d);
    ly.w13.resize(2 * h, d);
    ly.w13.topRows(h) = detail::to_matrix<T>(ck.w1.data() + l * h * d, h, d);
    ly.w13.bottomRows(h) = detail::to_matrix<T>(ck.w3.data() + l * h * d, h, d);
    ly.w2 = detail::to_matrix<T>(ck.w2.data() + l * d * h, d, h);
  }
}

template <class T>
void transformer<T>::check_frequencies(const longrope::rope_frequencies& f) const {
  if (f.head_dim() != cfg_.head_size() || f.rotary_dim() != cfg_.head_size() ||
      f.layout() != longrope::pair_layout::interleaved) {
    LONGROPE_THROW("longrope.argument",
                   "transformer: RoPE frequencies must have head_dim = rotary_dim = " +
                       std::to_string(cfg_.head_size()) + " and the interleaved layout, got head_dim " +
                       std::to_string(f.head_dim()) + ", rotary_dim " + std::to_string(f.rotary_dim()) + ", " +
                       longrope::to_string(f.layout()));
  }
}

template <class T>
void transformer<T>::rmsnorm(const matrix_rm<T>& x, const vector_t<T>& w, matrix_rm<T>& out) const {
  const T inv_d = T(1) / static_cast<T>(cfg_.dim);
  for (index_t r = 0; r < x.rows(); ++r) {
    const T ss = T(1) / std::sqrt(x.row(r).squaredNorm() * inv_d + T(1e-5));
    out.row(r) = (x.row(r).array() * ss) * w.transpose().array();
  }
}

template <class T>
void transformer<T>::forward(const int* tokens, index_t m, kv_cache<T>& cache, const longrope::rope_frequencies& f,
                             workspace<T>& ws) const {
  if (m < 1) LONGROPE_THROW("longrope.argument", "transformer::forward: need at least one token");
  check_frequencies(f);
  for (index_t i = 0; i < m; ++i) {
    if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size) {
      LONGROPE_THROW("longrope.argument", "transformer::forward: token " + std::to_string(tokens[i]) + " at index " +
                                              std::to_string(i) + " out of range [0, " +
                                              std::to_string(cfg_.vocab_size) + ")");
    }
  }
  const index_t d = cfg_.dim, kv = cfg_.kv_dim(), hs = cfg_.head_size(), h = cfg_.hidden_dim;
  const index_t p0 = cache.size();
  cache.reserve(cfg_, p0 + m);

  ws.x.resize(m, d);
  ws.xb.resize(m, d);
  ws.qkv.resize(m, d + 2 * kv);
  ws.att.resize(m, d);
  for (index_t i = 0; i < m; ++i) ws.x.row(i) = emb_.row(tokens[i]);

  // Positions of the block, shared by every layer.
  ws.positions.resize(static_cast<std::size_t>(m));
  for (index_t i = 0; i < m; ++i) ws.positions[static_cast<std::size_t>(i)] = p0 + i;
  const longrope::positions_view pos{ws.positions.data(), 0};

  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const layer& ly = layers_[l];
    rmsnorm(ws.x, ly.rms_att, ws.xb);
    ws.qkv.noalias() = ws.xb * ly.wqkv.transpose();
    // RoPE on q (heads at columns [0, dim)) and k (columns [dim, dim + kv)).
    const index_t stride = d + 2 * kv;
    longrope::heads_view<T> q{ws.qkv.data(), 1, m, cfg_.n_heads, hs, m * stride, stride, hs};
    longrope::heads_view<T> k{ws.qkv.data() + d, 1, m, cfg_.n_kv_heads, hs, m * stride, stride, hs};
    // Table-free and exact (double angle reduced mod 2 pi): cos/sin cost
    // m * pairs per layer, negligible next to the products, and no table
    // precision limit for the double instantiation.
    longrope::rotate_qk<T>(f, q, k, pos, longrope::token_range{0, m});
    auto& K = cache.keys(static_cast<int>(l));
    auto& V = cache.values(static_cast<int>(l));
    K.middleCols(p0, m) = ws.qkv.middleCols(d, kv).transpose();
    V.middleCols(p0, m) = ws.qkv.rightCols(kv).transpose();
    attention(m, p0, K, V, ws);
    ws.x.noalias() += ws.att * ly.wo.transpose();

    rmsnorm(ws.x, ly.rms_ffn, ws.xb);
    ws.hid.resize(std::min(kRowChunk, m), 2 * h);
    for (index_t r0 = 0; r0 < m; r0 += kRowChunk) {
      const index_t rows = std::min(kRowChunk, m - r0);
      auto hid = ws.hid.topRows(rows);
      hid.noalias() = ws.xb.middleRows(r0, rows) * ly.w13.transpose();
      auto a = hid.leftCols(h).array();
      a = a / (T(1) + (-a).exp()) * hid.rightCols(h).array();  // silu(w1 x) * (w3 x)
      ws.x.middleRows(r0, rows).noalias() += hid.leftCols(h) * ly.w2.transpose();
    }
  }
  rmsnorm(ws.x, rms_final_, ws.xb);
  cache.set_size(p0 + m);
}

template <class T>
void transformer<T>::attention(index_t m, index_t p0, const matrix_rm<T>& Kt, const matrix_rm<T>& Vt,
                               workspace<T>& ws) const {
  using vec_map = Eigen::Map<vector_t<T>>;
  // Fixed-size lanes: Eigen unrolls them into independent vector registers.
  using lanes = Eigen::Array<T, kScoreLanes, 1>;
  using lanes_map = Eigen::Map<const lanes>;
  const index_t hs = cfg_.head_size(), group = cfg_.kv_group();
  const index_t ld = Kt.cols();  // capacity, a multiple of kScoreLanes
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
  const T neg_inf = -std::numeric_limits<T>::infinity();
  ws.qs.resize(group * kQueryBlock, hs);
  ws.o.resize(group * kQueryBlock, hs);
  ws.row_max.resize(group * kQueryBlock);
  ws.row_sum.resize(group * kQueryBlock);
  ws.p.resize(group * kQueryBlock, kKeyBlock);

  for (index_t g = 0; g < cfg_.n_kv_heads; ++g) {
    const T* kt = Kt.data() + g * hs * ld;  // row dd: channel dd of every position
    const T* vt = Vt.data() + g * hs * ld;
    for (index_t qb = 0; qb < m; qb += kQueryBlock) {
      const index_t rows = std::min(kQueryBlock, m - qb);
      const index_t R = group * rows;
      // Stack the group's query heads: row j * rows + i = head g*group + j, token qb + i.
      for (index_t j = 0; j < group; ++j) {
        const index_t head = g * group + j;
        for (index_t i = 0; i < rows; ++i) {
          ws.qs.row(j * rows + i) = ws.qkv.row(qb + i).segment(head * hs, hs) * scale;
        }
      }
      ws.o.topRows(R).setZero();
      ws.row_max.head(R).setConstant(neg_inf);
      ws.row_sum.head(R).setZero();
      const index_t last_pos = p0 + qb + rows - 1;
      for (index_t kb = 0; kb <= last_pos; kb += kKeyBlock) {
        const index_t cols = std::min(kKeyBlock, last_pos + 1 - kb);
        // Zero-padded probabilities: the cache columns up to `padded` hold finite values.
        const index_t padded = (cols + kScoreLanes - 1) / kScoreLanes * kScoreLanes;
        for (index_t r = 0; r < R; ++r) {
          T* s = ws.p.data() + r * kKeyBlock;
          // Causal mask: this row sees keys kb .. its own position.
          const index_t visible = std::min(cols, p0 + qb + (r % rows) - kb + 1);
          if (visible <= 0) {
            std::fill(s, s + padded, T(0));
            continue;
          }
          const T* q = ws.qs.data() + r * hs;
          // Scores in chunks of kScoreLanes accumulated in registers over the
          // head channels (columns past `visible` are computed from zero or
          // stale cache entries and ignored; capacity is padded to the lanes).
          for (index_t c0 = 0; c0 < visible; c0 += kScoreLanes) {
            lanes acc = q[0] * lanes_map(kt + kb + c0);
            for (index_t dd = 1; dd < hs; ++dd) acc += q[dd] * lanes_map(kt + dd * ld + kb + c0);
            Eigen::Map<lanes>(s + c0) = acc;
          }
          vec_map sv(s, visible);
          T& mx = ws.row_max[r];
          const T mnew = std::max(mx, sv.maxCoeff());
          const T alpha = std::exp(mx - mnew);  // 0 on the first block (mx = -inf)
          mx = mnew;
          sv = (sv.array() - mnew).exp();
          ws.row_sum[r] = ws.row_sum[r] * alpha + sv.sum();
          for (index_t c = visible; c < padded; ++c) s[c] = T(0);
          ws.o.row(r) *= alpha;
        }
        // O += P V over the block as one product (a per-row dot product per
        // channel was bound by loads: two per FMA).
        const Eigen::Map<const matrix_rm<T>, 0, Eigen::OuterStride<>> vb(vt + kb, hs, padded, Eigen::OuterStride<>(ld));
        ws.o.topRows(R).noalias() += ws.p.topLeftCorner(R, padded) * vb.transpose();
      }
      for (index_t j = 0; j < group; ++j) {
        const index_t head = g * group + j;
        for (index_t i = 0; i < rows; ++i) {
          ws.att.row(qb + i).segment(head * hs, hs) = ws.o.row(j * rows + i) / ws.row_sum[j * rows + i];
        }
      }
    }
  }
}

template <class T>
void transformer<T>::logits_rows(const workspace<T>& ws, index_t row0, index_t rows, matrix_rm<T>& out) const {
  const matrix_rm<T>& w = cfg_.shared_classifier ? emb_ : cls_;
  out.resize(rows, cfg_.vocab_size);
  out.noalias() = ws.xb.middleRows(row0, rows) * w.transpose();
}

template <class T>
double transformer<T>::sequence_nll(const int* tokens, index_t n, const longrope::rope_frequencies& f,
                                    kv_cache<T>& cache, workspace<T>& ws) const {
  if (n < 2) LONGROPE_THROW("longrope.argument", "sequence_nll: need at least two tokens");
  cache.clear();
  forward(tokens, n, cache, f, ws);
  double total = 0.0;
  const matrix_rm<T>& w = cfg_.shared_classifier ? emb_ : cls_;
  ws.logits.resize(std::min(kRowChunk, n - 1), cfg_.vocab_size);
  for (index_t r0 = 0; r0 < n - 1; r0 += kRowChunk) {
    const index_t rows = std::min(kRowChunk, n - 1 - r0);
    ws.logits.topRows(rows).noalias() = ws.xb.middleRows(r0, rows) * w.transpose();
    for (index_t i = 0; i < rows; ++i) {
      const auto row = ws.logits.row(i);
      const T mx = row.maxCoeff();
      const T lse = mx + std::log((row.array() - mx).exp().sum());
      total += static_cast<double>(lse - row(tokens[r0 + i + 1]));
    }
  }
  return total;
}

}  // namespace llama2c
