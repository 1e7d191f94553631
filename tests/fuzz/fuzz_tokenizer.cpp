// Fuzz target: tokenizer bytes. Input layout: byte 0..1 = vocab_size - 1
// (little-endian, so 1..65536), byte 2 = length of a text to encode, the text,
// then the tok*.bin file. An accepted tokenizer must encode the text (or refuse
// with longrope::error) into ids inside the vocabulary, which decode.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include <llama2c/tokenizer.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using longrope_fuzz::expect;
  if (size < 3) return 0;
  const int vocab = 1 + (data[0] | (data[1] << 8));
  const std::size_t text_len = std::min<std::size_t>(data[2], size - 3);
  const std::string_view text(reinterpret_cast<const char*>(data + 3), text_len);
  const std::uint8_t* file = data + 3 + text_len;
  const std::size_t file_size = size - 3 - text_len;
  return longrope_fuzz::guarded([&] {
    const auto tok = llama2c::tokenizer::parse(file, file_size, vocab, "fuzz");
    expect(tok.vocab_size() == vocab, "vocab size");
    for (bool bos : {false, true}) {
      for (bool eos : {false, true}) {
        std::vector<int> ids;
        try {
          ids = tok.encode(text, bos, eos);
        } catch (const longrope::error&) {
          continue;  // a vocabulary that cannot encode this text (no " ", no byte tokens, no BOS)
        }
        for (int id : ids) expect(id >= 0 && id < tok.vocab_size(), "encoded id inside the vocabulary");
        try {  // every id is in range: decoding must not refuse
          (void)tok.decode(ids);
          for (std::size_t i = 1; i < ids.size(); ++i) (void)tok.decode_piece(ids[i - 1], ids[i]);
        } catch (const longrope::error& e) {
          longrope_fuzz::fail(e.what());
        }
      }
    }
  });
}
