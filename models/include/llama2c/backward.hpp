// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file backward.hpp
/// The gradient of one sequence's next-token cross-entropy with respect to
/// every weight of a transformer<T> (docs/training.md has the math).
///
/// The forward is transformer::forward() itself, asked to keep its activations;
/// the backward walks the layers in reverse:
///   classifier + cross-entropy  dlogits = softmax - onehot(target)
///   RMSNorm   y = w x r, r = (mean x^2 + eps)^-1/2:
///             dw += dy x r,  dx = r (w dy) - x r^3 sum(w dy x) / d
///   SwiGLU    u = silu(a) b:  da = du b silu'(a), db = du silu(a)
///   attention streaming ("flash") backward, per key block recomputing
///             P = exp(S - lse) from the saved log-sum-exp, then
///             dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO o O)),
///             dQ += dS K, dK += dS^T Q (causal and document masks as forward)
///   RoPE      q_rot = R q with R = att * Rot(theta p): dq = R^T dq_rot =
///             att^2 R^-1 dq_rot, the library's inverse rotation times att^2
///   embedding rows of the input tokens accumulate dx.
/// Memory beyond the saved activations: O(m * (dim + kv_dim)) plus one
/// (group * kQueryBlock) x kKeyBlock score tile; the T x T matrix never exists.

#include <algorithm>
#include <cmath>

#include <longrope/rotate.hpp>

#include "transformer.hpp"

namespace llama2c {

/// Buffers of one sequence's forward + backward; one per thread.
template <class T>
struct train_workspace {
  workspace<T> fw;
  kv_cache<T> cache;
  activations<T> acts;
  matrix_rm<T> dres, dxb, hb, dqkv, datt, dpre, u, logits;
  matrix_rm<T> dkt, dvt;                  // (kv_dim x capacity), transposed like the cache
  matrix_rm<T> qs, dos, dqs, s, dp;        // attention tiles
  vector_t<T> dsum, lse;

  std::size_t bytes() const noexcept {
    auto b = [](const auto& m) { return static_cast<std::size_t>(m.size()) * sizeof(T); };
    return fw.bytes() + cache.bytes() + acts.bytes() + b(dres) + b(dxb) + b(hb) + b(dqkv) + b(datt) + b(dpre) +
           b(u) + b(logits) + b(dkt) + b(dvt) + b(qs) + b(dos) + b(dqs) + b(s) + b(dp) + b(dsum) + b(lse);
  }
};

/// Gradients (friend of transformer<T>: reads its fused weights).
template <class T>
struct backward_pass {
  using model_t = transformer<T>;

  /// Adds to G (same shapes as M: a transformer used as the gradient holder)
  /// `scale` times the gradient of the summed NLL of tokens[1..m) given their
  /// prefixes (inputs tokens[0..m-1) at positions 0..m-2). Returns the summed
  /// NLL (unscaled). doc_start: nullptr or one entry per input (forward()).
  /// weight: nullptr, or m-1 finite weights >= 0, one per target tokens[i+1]:
  /// then the loss is the weighted sum of the NLLs (and its gradient).
  /// O(forward) time; memory as in the file comment.
  static double loss_and_grad(const model_t& M, const int* tokens, index_t m,
                              const longrope::rope_frequencies& f, const index_t* doc_start, T scale,
                              model_t& G, train_workspace<T>& w, const T* weight = nullptr);

  /// dx += d/dx of sum(dy * rmsnorm(x, wt)); dw += d/dw of the same.
  static void rmsnorm_backward(const matrix_rm<T>& x, const vector_t<T>& wt, const matrix_rm<T>& dy,
                               matrix_rm<T>& dx, vector_t<T>& dw, index_t d);

  /// w.dqkv (n x dim + 2 kv_dim) = gradient w.r.t. the rotated q | k | v of
  /// layer l, from w.datt (gradient w.r.t. the attention output).
  static void attention_backward(const model_t& M, index_t n, index_t l, const index_t* doc_start,
                                 train_workspace<T>& w);
};

template <class T>
double backward_pass<T>::loss_and_grad(const model_t& M, const int* tokens, index_t m,
                                       const longrope::rope_frequencies& f, const index_t* doc_start, T scale,
                                       model_t& G, train_workspace<T>& w, const T* weight) {
  if (m < 2) LONGROPE_THROW("longrope.argument", "loss_and_grad: need at least two tokens");
  const model_config& c = M.cfg_;
  const index_t n = m - 1, d = c.dim, h = c.hidden_dim, kv = c.kv_dim(), V = c.vocab_size;
  for (index_t i = 1; i < m; ++i) {
    if (tokens[i] < 0 || tokens[i] >= V)
      LONGROPE_THROW("longrope.argument", "loss_and_grad: target out of range");
  }
  w.cache.clear();
  M.forward(tokens, n, w.cache, f, w.fw, &w.acts, doc_start);
  const activations<T>& A = w.acts;

  // Classifier and cross-entropy, in row chunks.
  const matrix_rm<T>& W = c.shared_classifier ? M.emb_ : M.cls_;
  matrix_rm<T>& dW = c.shared_classifier ? G.emb_ : G.cls_;
  w.dxb.resize(n, d);
  double loss = 0.0;
  for (index_t r0 = 0; r0 < n; r0 += kRowChunk) {
    const index_t rows = std::min(kRowChunk, n - r0);
    w.logits.resize(rows, V);
    w.logits.noalias() = w.fw.xb.middleRows(r0, rows) * W.transpose();
    for (index_t i = 0; i < rows; ++i) {
      auto row = w.logits.row(i);
      const T mx = row.maxCoeff();
      row.array() = (row.array() - mx).exp();
      const T sum = row.sum();
      const int target = tokens[r0 + i + 1];
      if (weight == nullptr) {
        loss += static_cast<double>(std::log(sum) - std::log(row(target)));
        row *= scale / sum;
        row(target) -= scale;
      } else {
        const T wi = weight[r0 + i];
        loss += static_cast<double>(wi) * static_cast<double>(std::log(sum) - std::log(row(target)));
        row *= scale * wi / sum;
        row(target) -= scale * wi;
      }
    }
    dW.noalias() += w.logits.transpose() * w.fw.xb.middleRows(r0, rows);
    w.dxb.middleRows(r0, rows).noalias() = w.logits * W;
  }
  w.dres.setZero(n, d);
  rmsnorm_backward(A.x_final, M.rms_final_, w.dxb, w.dres, G.rms_final_, d);

  const index_t stride = d + 2 * kv;
  const T att2 = static_cast<T>(f.attention_factor() * f.attention_factor());
  for (index_t l = c.n_layers - 1; l >= 0; --l) {
    const auto& ly = M.layers_[static_cast<std::size_t>(l)];
    auto& gl = G.layers_[static_cast<std::size_t>(l)];
    // Feed-forward: x_out = x_mid + W2 (silu(a) * b), [a b] = h W13^T, h = rmsnorm(x_mid).
    const matrix_rm<T>& pre = A.pre[static_cast<std::size_t>(l)];
    w.hb.resize(n, d);
    M.rmsnorm(A.x_mid[static_cast<std::size_t>(l)], ly.rms_ffn, w.hb);
    w.u.resize(n, h);
    w.dpre.resize(n, 2 * h);
    {
      const auto a = pre.leftCols(h).array();
      const auto b = pre.rightCols(h).array();
      w.u.array() = a / (T(1) + (-a).exp()) * b;
      gl.w2.noalias() += w.dres.transpose() * w.u;
      w.u.noalias() = w.dres * ly.w2;  // du
      const auto sig = T(1) / (T(1) + (-a).exp());
      w.dpre.leftCols(h).array() = w.u.array() * b * sig * (T(1) + a * (T(1) - sig));
      w.dpre.rightCols(h).array() = w.u.array() * a * sig;
    }
    gl.w13.noalias() += w.dpre.transpose() * w.hb;
    w.dxb.noalias() = w.dpre * ly.w13;
    rmsnorm_backward(A.x_mid[static_cast<std::size_t>(l)], ly.rms_ffn, w.dxb, w.dres, gl.rms_ffn, d);

    // Attention: x_mid = x_in + att Wo^T.
    gl.wo.noalias() += w.dres.transpose() * A.att[static_cast<std::size_t>(l)];
    w.datt.noalias() = w.dres * ly.wo;
    attention_backward(M, n, l, doc_start, w);
    // Back through RoPE: R^T = att^2 R^-1 (the library's inverse direction).
    longrope::heads_view<T> q{w.dqkv.data(), 1,          n,      c.n_heads,
                              c.head_size(), n * stride, stride, c.head_size()};
    longrope::heads_view<T> k{w.dqkv.data() + d, 1,          n,      c.n_kv_heads,
                              c.head_size(),     n * stride, stride, c.head_size()};
    const longrope::positions_view pos{w.fw.positions.data(), 0};
    longrope::rotate_qk<T>(f, q, k, pos, longrope::token_range{0, n}, longrope::rotation_direction::inverse);
    w.dqkv.leftCols(d + kv) *= att2;
    M.rmsnorm(A.x_in[static_cast<std::size_t>(l)], ly.rms_att, w.hb);
    gl.wqkv.noalias() += w.dqkv.transpose() * w.hb;
    w.dxb.noalias() = w.dqkv * ly.wqkv;
    rmsnorm_backward(A.x_in[static_cast<std::size_t>(l)], ly.rms_att, w.dxb, w.dres, gl.rms_att, d);
  }
  for (index_t i = 0; i < n; ++i) G.emb_.row(tokens[i]) += w.dres.row(i);
  return loss;
}

template <class T>
void backward_pass<T>::rmsnorm_backward(const matrix_rm<T>& x, const vector_t<T>& wt, const matrix_rm<T>& dy,
                                        matrix_rm<T>& dx, vector_t<T>& dw, index_t d) {
  const T inv_d = T(1) / static_cast<T>(d);
  for (index_t r = 0; r < x.rows(); ++r) {
    const T rr = T(1) / std::sqrt(x.row(r).squaredNorm() * inv_d + T(1e-5));
    dw.array() += (dy.row(r).array() * x.row(r).array()).transpose() * rr;
    const T dot = (dy.row(r).array() * wt.transpose().array() * x.row(r).array()).sum();
    dx.row(r).array() +=
        rr * dy.row(r).array() * wt.transpose().array() - x.row(r).array() * (rr * rr * rr * dot * inv_d);
  }
}

template <class T>
void backward_pass<T>::attention_backward(const model_t& M, index_t n, index_t l, const index_t* doc_start,
                                          train_workspace<T>& w) {
  const model_config& c = M.cfg_;
  const index_t d = c.dim, kv = c.kv_dim(), hs = c.head_size(), group = c.kv_group();
  const matrix_rm<T>& Kt = w.cache.keys(static_cast<int>(l));
  const matrix_rm<T>& Vt = w.cache.values(static_cast<int>(l));
  const matrix_rm<T>& qkv = w.acts.qkv[static_cast<std::size_t>(l)];
  const matrix_rm<T>& O = w.acts.att[static_cast<std::size_t>(l)];
  const matrix_rm<T>& lse = w.acts.lse[static_cast<std::size_t>(l)];
  const index_t ld = Kt.cols();
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
  using block_map = Eigen::Map<const matrix_rm<T>, 0, Eigen::OuterStride<>>;
  using block_mut = Eigen::Map<matrix_rm<T>, 0, Eigen::OuterStride<>>;
  w.dqkv.resize(n, d + 2 * kv);
  w.dkt.setZero(kv, ld);
  w.dvt.setZero(kv, ld);
  const index_t RB = group * kQueryBlock;
  w.qs.resize(RB, hs);
  w.dos.resize(RB, hs);
  w.dqs.resize(RB, hs);
  w.s.resize(RB, kKeyBlock);
  w.dp.resize(RB, kKeyBlock);
  w.dsum.resize(RB);
  w.lse.resize(RB);
  for (index_t g = 0; g < c.n_kv_heads; ++g) {
    const T* kt = Kt.data() + g * hs * ld;
    const T* vt = Vt.data() + g * hs * ld;
    T* dkt = w.dkt.data() + g * hs * ld;
    T* dvt = w.dvt.data() + g * hs * ld;
    for (index_t qb = 0; qb < n; qb += kQueryBlock) {
      const index_t rows = std::min(kQueryBlock, n - qb);
      const index_t R = group * rows;
      for (index_t j = 0; j < group; ++j) {
        const index_t head = g * group + j;
        for (index_t i = 0; i < rows; ++i) {
          const index_t r = j * rows + i;
          w.qs.row(r) = qkv.row(qb + i).segment(head * hs, hs) * scale;
          w.dos.row(r) = w.datt.row(qb + i).segment(head * hs, hs);
          w.dsum[r] = w.dos.row(r).dot(O.row(qb + i).segment(head * hs, hs));
          w.lse[r] = lse(head, qb + i);
        }
      }
      auto qs = w.qs.topRows(R);
      auto dos = w.dos.topRows(R);
      auto dqs = w.dqs.topRows(R);
      dqs.setZero();
      const index_t last_pos = qb + rows - 1;
      index_t first_key = 0;
      if (doc_start) first_key = *std::min_element(doc_start + qb, doc_start + qb + rows);
      for (index_t kb = first_key / kKeyBlock * kKeyBlock; kb <= last_pos; kb += kKeyBlock) {
        const index_t cols = std::min(kKeyBlock, last_pos + 1 - kb);
        const block_map ktb(kt + kb, hs, cols, Eigen::OuterStride<>(ld));
        const block_map vtb(vt + kb, hs, cols, Eigen::OuterStride<>(ld));
        block_mut dktb(dkt + kb, hs, cols, Eigen::OuterStride<>(ld));
        block_mut dvtb(dvt + kb, hs, cols, Eigen::OuterStride<>(ld));
        auto P = w.s.topLeftCorner(R, cols);
        auto dP = w.dp.topLeftCorner(R, cols);
        P.noalias() = qs * ktb;
        for (index_t r = 0; r < R; ++r) {
          const index_t pos = qb + r % rows;
          const index_t visible = std::max<index_t>(0, std::min(cols, pos - kb + 1));
          const index_t hidden =
              std::min(visible, doc_start ? std::max<index_t>(0, doc_start[pos] - kb) : index_t(0));
          auto row = P.row(r);
          row.head(hidden).setZero();
          row.segment(hidden, visible - hidden) =
              (row.segment(hidden, visible - hidden).array() - w.lse[r]).exp();
          row.tail(cols - visible).setZero();
        }
        dvtb.noalias() += dos.transpose() * P;
        dP.noalias() = dos * vtb;
        dP.array() = P.array() * (dP.colwise() - w.dsum.head(R)).array();
        dqs.noalias() += dP * ktb.transpose();
        dktb.noalias() += qs.transpose() * dP;
      }
      for (index_t j = 0; j < group; ++j) {
        const index_t head = g * group + j;
        for (index_t i = 0; i < rows; ++i) {
          w.dqkv.row(qb + i).segment(head * hs, hs) = w.dqs.row(j * rows + i) * scale;
        }
      }
    }
  }
  w.dqkv.middleCols(d, kv) = w.dkt.leftCols(n).transpose();
  w.dqkv.rightCols(kv) = w.dvt.leftCols(n).transpose();
}

// Compiled once, in the longrope_toymodel library (models/src/).
extern template struct backward_pass<float>;
extern template struct backward_pass<double>;

}  // namespace llama2c
