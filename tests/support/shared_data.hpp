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

/// stories260K's checkpoint and tokenizer and the TinyStories text, the files
/// the real-model tests need. `ok` is false (and the paths empty) unless all
/// three exist under shared_dir(); such a test then skips with kStoriesSkipped.
struct stories_files {
  std::string model, tok, text;
  bool ok = false;
};

inline stories_files find_stories() {
  const auto m = shared_file("models/stories260K/stories260K.bin");
  const auto t = shared_file("models/stories260K/tok512.bin");
  const auto x = shared_file("data/tinystories/valid_head.txt");
  if (m.empty() || t.empty() || x.empty()) return {};
  return {m.string(), t.string(), x.string(), true};
}

inline constexpr const char* kStoriesSkipped =
    "skipped: stories260K or valid_head.txt not found (../shared or $LONGROPE_SHARED_DIR)";

/// temp_directory_path() / name, emptied (removed and created again).
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// The test data folder checked into the repository (tests/data).
inline std::filesystem::path test_data_dir() { return LONGROPE_TEST_DATA_DIR; }

}  // namespace longrope_test
