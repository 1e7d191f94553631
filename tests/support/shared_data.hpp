// Locating ../shared (the model, the text, the reference configs) for tests.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace longrope_test {

/// The shared/ folder: $LONGROPE_SHARED_DIR if set, else the path baked in at
/// configure time (LONGROPE_SHARED_DIR_DEFAULT, ../shared beside the source tree).
/// Empty when neither exists.
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("LONGROPE_SHARED_DIR"); env && *env) {
    if (std::filesystem::is_directory(env)) return env;
  }
#ifdef LONGROPE_SHARED_DIR_DEFAULT
  if (std::filesystem::is_directory(LONGROPE_SHARED_DIR_DEFAULT)) return LONGROPE_SHARED_DIR_DEFAULT;
#endif
  return {};
}

/// shared_dir() / rel if that file exists, else empty.
inline std::filesystem::path shared_file(const std::string& rel) {
  const auto dir = shared_dir();
  if (dir.empty()) return {};
  auto p = dir / rel;
  return std::filesystem::exists(p) ? p : std::filesystem::path{};
}

/// The test data folder checked into the repository (tests/data).
inline std::filesystem::path test_data_dir() { return LONGROPE_TEST_DATA_DIR; }

}  // namespace longrope_test
