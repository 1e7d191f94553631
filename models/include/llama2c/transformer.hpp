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

/// What a training forward keeps for the backward pass (see train.hpp), per
/// layer l: the residual stream entering the layer, the rotated q|k|v, the
/// attention output, the attention log-sum-exp per (query head, token), the
/// residual after attention and the feed-forward pre-activations (W1 h | W3 h).
/// Memory: m * (4 dim + 2 kv_dim + 2 hidden + n_heads) values per layer.
template <class T>
struct activations {
  std::vector<matrix_rm<T>> x_in, qkv, att, lse, x_mid, pre;  ///< [layer]; lse is (n_heads x m)
  matrix_rm<T> x_final;  ///< residual stream before the final RMSNorm (m x dim)

  std::size_t bytes() const noexcept {
    std::size_t b = static_cast<std::size_t>(x_final.size());
    for (const auto* v : {&x_in, &qkv, &att, &lse, &x_mid, &pre}) {
      for (const auto& m : *v) b += static_cast<std::size_t>(m.size());
    }
    return b * sizeof(T);
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
  ///
  /// Training extensions (both optional, the inference path is unchanged):
  /// `keep` != nullptr stores what backward needs (activations<T>, resized);
  /// `doc_start` != nullptr is a document mask: token i (position p0 + i) then
  /// attends only keys at positions in [doc_start[i], p0 + i], with
  /// doc_start[i] <= p0 + i (checked), e.g. the position of the BOS that opens
  /// its document, so attention does not cross BOS boundaries.
  void forward(const int* tokens, index_t m, kv_cache<T>& cache, const longrope::rope_frequencies& f,
               workspace<T>& ws, activations<T>* keep = nullptr, const index_t* doc_start = nullptr) const;

  /// Calls fn(name, data, size, is_matrix) for every parameter tensor, in a
  /// fixed order (embedding, [classifier], rms_final, then per layer rms_att,
  /// rms_ffn, wqkv (q|k|v rows), wo, w13 (w1|w3 rows), w2). The mutable
  /// overload is for the trainer (never while another thread runs forward).
  template <class F>
  void for_each_tensor(F&& fn) {
    visit_tensors(*this, fn);
  }
  template <class F>
  void for_each_tensor(F&& fn) const {
    visit_tensors(*this, fn);
  }
  /// Number of trainable values (the sum of the tensor sizes).
  std::size_t parameter_count() const {
    std::size_t n = 0;
    for_each_tensor([&](const char*, const T*, index_t size, bool) { n += static_cast<std::size_t>(size); });
    return n;
  }
  /// The weights as a float32 checkpoint with this model's config (the inverse
  /// of the constructor; fused tensors split back). O(parameters).
  checkpoint to_checkpoint() const;

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
  void attention(index_t m, index_t p0, const matrix_rm<T>& Kt, const matrix_rm<T>& Vt, workspace<T>& ws,
                 const index_t* doc_start, T* lse) const;

  template <class Self, class F>
  static void visit_tensors(Self& s, F& fn) {
    fn("token_embedding", s.emb_.data(), s.emb_.size(), true);
    if (!s.cfg_.shared_classifier) fn("wcls", s.cls_.data(), s.cls_.size(), true);
    fn("rms_final", s.rms_final_.data(), s.rms_final_.size(), false);
    for (auto& ly : s.layers_) {
      fn("rms_att", ly.rms_att.data(), ly.rms_att.size(), false);
      fn("rms_ffn", ly.rms_ffn.data(), ly.rms_ffn.size(), false);
      fn("wqkv", ly.wqkv.data(), ly.wqkv.size(), true);
      fn("wo", ly.wo.data(), ly.wo.size(), true);
      fn("w13", ly.w13.data(), ly.w13.size(), true);
      fn("w2", ly.w2.data(), ly.w2.size(), true);
    }
  }
  template <class>
  friend struct backward_pass;

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
  check_tensor_sizes(ck, "transformer", false);
  const index_t L = cfg_.n_layers;

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
                             workspace<T>& ws, activations<T>* keep, const index_t* doc_start) const {
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
  if (doc_start) {
    for (index_t i = 0; i < m; ++i) {
      if (doc_start[i] < 0 || doc_start[i] > p0 + i) {
        LONGROPE_THROW("longrope.argument", "transformer::forward: doc_start[" + std::to_string(i) + "] = " +
                                                std::to_string(doc_start[i]) + " outside [0, " +
                                                std::to_string(p0 + i) + "]");
      }
    }
  }
  cache.reserve(cfg_, p0 + m);
  if (keep) {
    const std::size_t L = layers_.size();
    for (auto* v : {&keep->x_in, &keep->qkv, &keep->att, &keep->lse, &keep->x_mid, &keep->pre}) v->resize(L);
  }

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
    if (keep) keep->x_in[l] = ws.x;
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
    T* lse = nullptr;
    if (keep) {
      keep->qkv[l] = ws.qkv;
      keep->lse[l].resize(cfg_.n_heads, m);
      lse = keep->lse[l].data();
    }
    attention(m, p0, K, V, ws, doc_start, lse);
    ws.x.noalias() += ws.att * ly.wo.transpose();
    if (keep) {
      keep->att[l] = ws.att;
      keep->x_mid[l] = ws.x;
      keep->pre[l].resize(m, 2 * h);
    }

    rmsnorm(ws.x, ly.rms_ffn, ws.xb);
    ws.hid.resize(std::min(kRowChunk, m), 2 * h);
    for (index_t r0 = 0; r0 < m; r0 += kRowChunk) {
      const index_t rows = std::min(kRowChunk, m - r0);
      auto hid = ws.hid.topRows(rows);
      hid.noalias() = ws.xb.middleRows(r0, rows) * ly.w13.transpose();
      if (keep) keep->pre[l].middleRows(r0, rows) = hid;
      auto a = hid.leftCols(h).array();
      a = a / (T(1) + (-a).exp()) * hid.rightCols(h).array();  // silu(w1 x) * (w3 x)
      ws.x.middleRows(r0, rows).noalias() += hid.leftCols(h) * ly.w2.transpose();
    }
  }
  if (keep) keep->x_final = ws.x;
  rmsnorm(ws.x, rms_final_, ws.xb);
  cache.set_size(p0 + m);
}

template <class T>
void transformer<T>::attention(index_t m, index_t p0, const matrix_rm<T>& Kt, const matrix_rm<T>& Vt,
                               workspace<T>& ws, const index_t* doc_start, T* lse) const {
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
      index_t first_key = 0;  // the document mask lets a block skip the key blocks before its documents
      if (doc_start) first_key = *std::min_element(doc_start + qb, doc_start + qb + rows);
      for (index_t kb = first_key / kKeyBlock * kKeyBlock; kb <= last_pos; kb += kKeyBlock) {
        const index_t cols = std::min(kKeyBlock, last_pos + 1 - kb);
        // Zero-padded probabilities: the cache columns up to `padded` hold finite values.
        const index_t padded = (cols + kScoreLanes - 1) / kScoreLanes * kScoreLanes;
        for (index_t r = 0; r < R; ++r) {
          T* s = ws.p.data() + r * kKeyBlock;
          // Causal mask: this row sees keys kb .. its own position.
          const index_t visible = std::min(cols, p0 + qb + (r % rows) - kb + 1);
          // Document mask: keys before the row's document start are hidden.
          const index_t hidden = doc_start ? std::max<index_t>(0, doc_start[qb + r % rows] - kb) : 0;
          if (visible <= hidden) {
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
          std::fill(s, s + hidden, T(0));
          vec_map sv(s + hidden, visible - hidden);
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
          if (lse) lse[head * m + qb + i] = ws.row_max[j * rows + i] + std::log(ws.row_sum[j * rows + i]);
        }
      }
    }
  }
}

template <class T>
checkpoint transformer<T>::to_checkpoint() const {
  checkpoint ck;
  ck.config = cfg_;
  const index_t d = cfg_.dim, h = cfg_.hidden_dim, kv = cfg_.kv_dim();
  auto put = [](std::vector<float>& dst, const auto& m) {
    const matrix_rm<float> f = m.template cast<float>();
    dst.insert(dst.end(), f.data(), f.data() + f.size());
  };
  put(ck.token_embedding, emb_);
  if (!cfg_.shared_classifier) put(ck.wcls, cls_);
  put(ck.rms_final, matrix_rm<T>(rms_final_.transpose()));
  for (const layer& ly : layers_) {
    put(ck.rms_att, matrix_rm<T>(ly.rms_att.transpose()));
    put(ck.rms_ffn, matrix_rm<T>(ly.rms_ffn.transpose()));
    put(ck.wq, matrix_rm<T>(ly.wqkv.topRows(d)));
    put(ck.wk, matrix_rm<T>(ly.wqkv.middleRows(d, kv)));
    put(ck.wv, matrix_rm<T>(ly.wqkv.bottomRows(kv)));
    put(ck.wo, ly.wo);
    put(ck.w1, matrix_rm<T>(ly.w13.topRows(h)));
    put(ck.w3, matrix_rm<T>(ly.w13.bottomRows(h)));
    put(ck.w2, ly.w2);
  }
  return ck;
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

// Compiled once, in the longrope_toymodel library (models/src/):
// a TU that uses the model links the float and double instantiations instead
// of generating the forward (and Eigen's products in it) again.
extern template class transformer<float>;
extern template class transformer<double>;

}  // namespace llama2c
