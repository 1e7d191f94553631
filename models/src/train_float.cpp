// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
//
// The float trainer: gradients, optimizer steps, the training loop and its state.
// Every header that declares one of these `extern template` lists it at its
// end; a declaration without its definition here fails at link time.

#include <llama2c/backward.hpp>
#include <llama2c/train.hpp>
#include <llama2c/train_loop.hpp>
#include <llama2c/train_state.hpp>

namespace llama2c {

template struct backward_pass<float>;
template class trainer<float>;

template train_loop_result run_train_loop(
    trainer<float>&, sequence_source&, const longrope::rope_frequencies&, const train_loop_options&,
    const std::function<void(const step_result&, double, std::int64_t)>&, const std::function<void()>&);
template void save_train_state(trainer<float>&, const sequence_source&, const std::string&,
                               const std::string&);
template void load_train_state(trainer<float>&, sequence_source&, const std::string&, const std::string&);

}  // namespace llama2c
