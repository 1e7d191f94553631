// Fuzz target: llama2.c checkpoint bytes (versions 0 and 1). Every header and
// size is checked by parse_checkpoint; an accepted model must build and, when
// small, score a short sequence with a finite NLL (weights are bounded below so
// that finite means "no garbage", not "no float overflow").
#include <cmath>
#include <cstdint>
#include <vector>

#include <llama2c/checkpoint.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/transformer.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using longrope_fuzz::expect;
  return longrope_fuzz::guarded([&] {
    const llama2c::checkpoint ck = llama2c::parse_checkpoint(data, size, "fuzz");
    const auto& c = ck.config;
    expect(c.dim > 0 && c.vocab_size > 0 && c.head_size() % 2 == 0, "validated header");
    // Building the model copies every weight: cheap for the small inputs the fuzzer makes.
    if (static_cast<std::uint64_t>(c.dim) * static_cast<std::uint64_t>(c.hidden_dim) * static_cast<std::uint64_t>(c.n_layers) >
        (std::uint64_t{1} << 20)) {
      return;
    }
    const llama2c::transformer<float> model(ck);
    const auto f = llama2c::make_frequencies(c, llama2c::scaling{}, c.seq_len);
    std::vector<int> tokens;
    for (int i = 0; i < 6; ++i) tokens.push_back((i * 131 + 1) % c.vocab_size);
    llama2c::kv_cache<float> cache;
    llama2c::workspace<float> ws;
    const double nll = model.sequence_nll(tokens.data(), static_cast<llama2c::index_t>(tokens.size()), f, cache, ws);
    bool bounded = c.n_layers <= 4;
    for (const auto* v : {&ck.token_embedding, &ck.rms_att, &ck.wq, &ck.wk, &ck.wv, &ck.wo, &ck.rms_ffn, &ck.w1, &ck.w2,
                          &ck.w3, &ck.rms_final, &ck.wcls}) {
      for (float w : *v) bounded = bounded && std::fabs(w) <= 4.0f;
    }
    if (bounded) longrope_fuzz::expect_finite(nll, "finite NLL for a model with |weights| <= 4");
  });
}
