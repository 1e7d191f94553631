// libFuzzer target for the GGUF reader (include/longrope/gguf.hpp): any input
// must either parse or throw longrope::error; a parsed file must serialize,
// re-parse to the same structure, and its rope metadata must either load or
// throw longrope::error. Crashes, sanitizer reports, leaks and timeouts are bugs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <longrope/gguf.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  longrope::gguf_file f;
  try {
    f = longrope::gguf_parse(data, size);
  } catch (const longrope::error&) {
    return 0;
  }
  try {
    (void)longrope::rope_config_from_gguf(f);
  } catch (const longrope::error&) {
  }
  for (const auto& t : f.tensors) {
    // Tensors of a type without a fixed layout keep the bytes up to the next
    // tensor, padding included, so their round trip is not a fixed point.
    if (longrope::gguf_tensor_nbytes(t.type, 256) == 0) return 0;
  }
  std::vector<std::uint8_t> bytes;
  try {
    bytes = longrope::gguf_serialize(f);
  } catch (const longrope::error&) {
    return 0;  // e.g. a tensor of an unknown type whose byte span is not a whole block count
  }
  const longrope::gguf_file g = longrope::gguf_parse(bytes.data(), bytes.size());  // must not throw
  if (g.kvs.size() != f.kvs.size() || g.tensors.size() != f.tensors.size()) std::abort();
  for (std::size_t k = 0; k < f.tensors.size(); ++k) {
    if (g.tensors[k].data != f.tensors[k].data || g.tensors[k].name != f.tensors[k].name) std::abort();
  }
  if (longrope::gguf_serialize(g) != bytes) std::abort();  // serialization is a fixed point
  return 0;
}
