// Fuzz target for the evaluator protocol (include/longrope/evaluator_protocol.hpp):
// every decoder must either return a validated message or throw longrope::error
// ("longrope.protocol"); never crash, hang, or allocate wildly. The input is
// fed to decode_message and decode_reply as one line, and to serve_evaluator
// and the hello decoder as a stream. Seed corpus: tests/fuzz/corpus/protocol/.
// Build by hand: clang++ -std=c++17 -fsanitize=fuzzer,address,undefined -Iinclude
//                tests/fuzz/fuzz_protocol.cpp
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include <longrope/evaluator_protocol.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  try {
    const auto m = longrope::decode_message(line);
    if (m.type == longrope::eval_message_type::evaluate) {
      for (double f : m.request.factors) {
        if (!(f > 0.0) || !std::isfinite(f)) std::abort();  // validation let a bad factor through
      }
      if (m.request.factors.empty() || m.request.factors.size() > longrope::evaluator_max_pairs) std::abort();
      // What the coordinator would send back must parse again.
      (void)longrope::decode_message(longrope::encode_request(m.request));
    }
  } catch (const longrope::error&) {
  }
  try {
    const auto r = longrope::decode_reply(line);
    if (r.fitness && !std::isfinite(*r.fitness)) std::abort();
    if (r.id > longrope::evaluator_max_id) std::abort();
    const auto back = longrope::decode_reply(longrope::encode_reply(r));
    if (back.id != r.id) std::abort();
  } catch (const longrope::error&) {
  }
  try {
    (void)longrope::decode_hello_reply(line);
  } catch (const longrope::error&) {
  }
  try {
    std::istringstream in(line);
    std::ostringstream out;
    longrope::serve_evaluator(in, out, [](const longrope::eval_request& r) { return static_cast<double>(r.factors.size()); });
  } catch (const longrope::error&) {
  }
  return 0;
}
