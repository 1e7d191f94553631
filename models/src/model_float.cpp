// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
//
// The float forward and everything that runs it (evaluation, generation, search),
// compiled once for every target that links longrope_toymodel.
// Every header that declares one of these `extern template` lists it at its
// end; a declaration without its definition here fails at link time.

#include <llama2c/extension.hpp>
#include <llama2c/generate.hpp>
#include <llama2c/kv_switch.hpp>
#include <llama2c/needle.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/validated_search.hpp>

namespace llama2c {

template class transformer<float>;

template std::vector<perplexity_result> evaluate_perplexity(const transformer<float>&,
                                                            const std::vector<std::vector<int>>&,
                                                            const std::vector<longrope::rope_frequencies>&,
                                                            int);
template perplexity_result evaluate_perplexity(const transformer<float>&,
                                               const std::vector<std::vector<int>>&,
                                               const longrope::rope_frequencies&, int);
template std::vector<int> generate(const transformer<float>&, const longrope::rope_frequencies&,
                                   std::vector<int>, const generate_options&,
                                   const std::function<void(int, int)>&);
template std::vector<int> generate(const transformer<float>&, const longrope::factor_switch&,
                                   std::vector<int>, const generate_options&,
                                   const std::function<void(int, int)>&);
template std::vector<int> sample_stories(const transformer<float>&, const longrope::rope_frequencies&,
                                         std::int64_t, std::int64_t, double, std::uint64_t);
template longrope::factor_set switch_cache(const longrope::factor_switch&, const model_config&,
                                           kv_cache<float>&, index_t, switch_scratch<float>&);
template longrope::factor_set forward_switched(const transformer<float>&, const longrope::factor_switch&,
                                               const int*, index_t, kv_cache<float>&, workspace<float>&,
                                               switch_scratch<float>&);
template std::vector<needle_result> evaluate_needle(const transformer<float>&,
                                                    const std::vector<needle_window>&,
                                                    const std::vector<longrope::rope_frequencies>&, int);
template extension_result search_factors(const transformer<float>&, const std::vector<std::vector<int>>&,
                                         const extension_options&, const longrope::progress_callback&);
template window_stats window_statistics(const transformer<float>&, const std::vector<std::vector<int>>&,
                                        const longrope::rope_frequencies&, int);
template validated_result search_factors_validated(
    const transformer<float>&, const std::vector<std::vector<int>>&, const std::vector<std::vector<int>>&,
    const validated_options&, const longrope::progress_callback&, const validated_checkpoint*,
    const validated_checkpoint_callback&);

}  // namespace llama2c
