// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
//
// The double model and trainer, the float64 references of the tests.
// Every header that declares one of these `extern template` lists it at its
// end; a declaration without its definition here fails at link time.

#include <llama2c/backward.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/train.hpp>

namespace llama2c {

template class transformer<double>;
template struct backward_pass<double>;
template class trainer<double>;

template std::vector<perplexity_result> evaluate_perplexity(const transformer<double>&,
                                                            const std::vector<std::vector<int>>&,
                                                            const std::vector<longrope::rope_frequencies>&,
                                                            int);
template perplexity_result evaluate_perplexity(const transformer<double>&,
                                               const std::vector<std::vector<int>>&,
                                               const longrope::rope_frequencies&, int);

}  // namespace llama2c
