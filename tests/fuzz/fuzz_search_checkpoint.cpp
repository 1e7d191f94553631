// Fuzz target: a search checkpoint (save_checkpoint's JSON) as bytes. An
// accepted checkpoint must resume, write a checkpoint that reloads to the same
// state, hand out finite factor vectors, and (for small searches) keep doing
// so after one more generation.
#include <cstdint>
#include <string>
#include <vector>

#include <longrope/search_json.hpp>

#include "fuzz_support.hpp"

namespace {

void round_trip(const longrope::evolutionary_search& s) {
  nlohmann::json a = longrope::to_json(s.checkpoint());
  const longrope::evolutionary_search back(longrope::search_checkpoint_from_text(a.dump()));  // must not throw
  nlohmann::json b = longrope::to_json(back.checkpoint());
  a.erase("elapsed_seconds");  // grows with the wall clock
  b.erase("elapsed_seconds");
  longrope_fuzz::expect(a == b, "a reloaded checkpoint holds the same state");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace longrope;
  using longrope_fuzz::expect;
  const std::string text(reinterpret_cast<const char*>(data), size);
  longrope::search_checkpoint cp;
  bool parsed = false;
  longrope_fuzz::guarded([&] {
    cp = search_checkpoint_from_text(text, "fuzz");
    parsed = true;
  });
  if (!parsed) return 0;
  return longrope_fuzz::guarded([&] {
    evolutionary_search s(cp);
    // A loaded search always writes checkpoints it can reload (refusals below would abort).
    try {
      round_trip(s);
    } catch (const longrope::error& e) {
      longrope_fuzz::fail(e.what());
    }
    for (const auto& p : s.ask_points()) {
      for (double f : p.factors) expect(std::isfinite(f) && f > 0.0, "finite positive factors");
    }
    const auto& o = s.options();
    const bool small = o.population <= 256 && o.mutations <= 64 && o.crossovers <= 64 && o.max_attempts <= 256 &&
                       s.space().pairs() <= 64 && s.ask().size() <= 512;
    if (s.done() || !small) return;
    std::vector<double> scores;
    for (std::size_t i = 0; i < s.ask().size(); ++i) scores.push_back(static_cast<double>((i * 7919) % 101));
    s.tell(scores);
    try {
      round_trip(s);
    } catch (const longrope::error& e) {
      longrope_fuzz::fail(e.what());
    }
  });
}
