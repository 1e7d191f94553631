// The GGUF v3 reader/writer (include/longrope/gguf.hpp), issue 14 acceptance 2:
// write then read gives identical metadata and tensors; the reader agrees
// byte for byte with an independent writer (tests/fuzz/make_gguf_seeds.py wrote
// tests/fuzz/corpus/fuzz_gguf/*.gguf with Python's struct); `longrope gguf set`
// leaves every other key and every other tensor's bytes unchanged (hashed);
// malformed files get one clear longrope::error, never a crash.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/frequencies.hpp>
#include <longrope/gguf.hpp>
#include <longrope/json.hpp>

#include "catch.hpp"
#include "run_cli.hpp"
#include "shared_data.hpp"

using namespace longrope;

namespace {

std::filesystem::path seed(const std::string& name) {
  return std::filesystem::path(LONGROPE_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "fuzz_gguf" / name;
}

std::vector<std::uint8_t> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path tmp(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("longrope_gguf_" + std::to_string(::getpid()) + "_" + name);
}

/// FNV-1a 64 of a byte range.
std::uint64_t fnv1a(const std::vector<std::uint8_t>& b) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint8_t c : b) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

gguf_value u(gguf_type t, std::uint64_t v) {
  gguf_value x;
  x.type = t;
  x.u = v;
  return x;
}
gguf_value i(gguf_type t, std::int64_t v) {
  gguf_value x;
  x.type = t;
  x.i = v;
  return x;
}
gguf_value fl(gguf_type t, double v) {
  gguf_value x;
  x.type = t;
  x.f = v;
  return x;
}
gguf_value arr(gguf_type et, std::vector<gguf_value> e) {
  gguf_value x;
  x.type = gguf_type::array;
  x.elem_type = et;
  x.elems = std::move(e);
  return x;
}

bool same(const gguf_value& a, const gguf_value& b) {
  if (a.type != b.type || a.u != b.u || a.i != b.i || a.s != b.s || a.elems.size() != b.elems.size()) return false;
  if (std::memcmp(&a.f, &b.f, sizeof a.f) != 0) return false;
  if (a.type == gguf_type::array && a.elem_type != b.elem_type) return false;
  for (std::size_t k = 0; k < a.elems.size(); ++k) {
    if (!same(a.elems[k], b.elems[k])) return false;
  }
  return true;
}

void require_same(const gguf_file& a, const gguf_file& b) {
  REQUIRE(a.version == b.version);
  REQUIRE(a.alignment == b.alignment);
  REQUIRE(a.kvs.size() == b.kvs.size());
  for (std::size_t k = 0; k < a.kvs.size(); ++k) {
    INFO(a.kvs[k].key);
    CHECK(a.kvs[k].key == b.kvs[k].key);
    CHECK(same(a.kvs[k].value, b.kvs[k].value));
  }
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (std::size_t k = 0; k < a.tensors.size(); ++k) {
    INFO(a.tensors[k].name);
    CHECK(a.tensors[k].name == b.tensors[k].name);
    CHECK(a.tensors[k].dims == b.tensors[k].dims);
    CHECK(a.tensors[k].type == b.tensors[k].type);
    CHECK(a.tensors[k].data == b.tensors[k].data);
  }
}

std::vector<std::uint8_t> f32_bytes(const std::vector<double>& v) {
  std::vector<std::uint8_t> out;
  for (double d : v) {
    const float f = static_cast<float>(d);
    std::uint8_t b[4];
    std::memcpy(b, &f, 4);  // the test machines are little-endian, like GGUF
    out.insert(out.end(), b, b + 4);
  }
  return out;
}

/// A small file exercising every value type, nesting, alignment 64 and several tensor types.
gguf_file sample() {
  gguf_file f;
  f.alignment = 64;
  f.kvs = {{"general.architecture", gguf_value::make_string("phi3")},
           {"general.alignment", gguf_value::make_u32(64)},
           {"phi3.context_length", gguf_value::make_u32(131072)},
           {"phi3.embedding_length", gguf_value::make_u32(64)},
           {"phi3.attention.head_count", gguf_value::make_u32(4)},
           {"phi3.rope.dimension_count", gguf_value::make_u32(12)},
           {"phi3.rope.freq_base", gguf_value::make_f32(10000.0f)},
           {"phi3.rope.scaling.original_context_length", gguf_value::make_u32(4096)},
           {"phi3.rope.scaling.attn_factor", gguf_value::make_f32(1.1902380714238083f)},
           {"t.u8", u(gguf_type::uint8, 255)},
           {"t.i8", i(gguf_type::int8, -128)},
           {"t.u16", u(gguf_type::uint16, 65535)},
           {"t.i16", i(gguf_type::int16, -32768)},
           {"t.i32", i(gguf_type::int32, -2147483647 - 1)},
           {"t.u64", u(gguf_type::uint64, 0xFFFFFFFFFFFFFFFFull)},
           {"t.i64", i(gguf_type::int64, -1234567890123ll)},
           {"t.f64", fl(gguf_type::float64, 0.1)},
           {"t.bool", u(gguf_type::boolean, 1)},
           {"t.empty", gguf_value::make_string("")},
           {"t.strs", arr(gguf_type::string, {gguf_value::make_string("a"), gguf_value::make_string("bc\n\"")})},
           {"t.nested", arr(gguf_type::array, {arr(gguf_type::int16, {i(gguf_type::int16, -3)}), arr(gguf_type::uint8, {})})}};
  std::vector<std::uint8_t> q8(2 * 34);
  for (std::size_t k = 0; k < q8.size(); ++k) q8[k] = static_cast<std::uint8_t>(k * 7 + 3);
  std::vector<std::uint8_t> f16(3 * 5 * 2);
  for (std::size_t k = 0; k < f16.size(); ++k) f16[k] = static_cast<std::uint8_t>(k * 13 + 1);
  f.tensors = {{"token_embd.weight", {64}, 8, 0, q8},
               {"blk.0.attn_q.weight", {5, 3}, 1, 0, f16},
               {"rope_factors_long.weight", {6}, 0, 0, f32_bytes({1, 2, 4, 8, 16, 32})},
               {"rope_factors_short.weight", {6}, 0, 0, f32_bytes({1, 1, 1, 1.5, 2, 2})},
               {"output_norm.weight", {7}, 0, 0, f32_bytes({1, 2, 3, 4, 5, 6, 7})}};
  return f;
}

std::string parse_error(const std::vector<std::uint8_t>& b) {
  try {
    (void)gguf_parse(b.data(), b.size());
  } catch (const longrope::error& e) {
    CHECK(e.id() == "longrope.gguf");
    return e.what();
  }
  return "";
}

void put_u64(std::vector<std::uint8_t>& b, std::size_t at, std::uint64_t v) {
  for (int k = 0; k < 8; ++k) b[at + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(v >> (8 * k));
}
void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(v >> (8 * k));
}

/// Byte position of the first occurrence of `text` in b.
std::size_t find(const std::vector<std::uint8_t>& b, const std::string& text) {
  const auto it = std::search(b.begin(), b.end(), text.begin(), text.end());
  REQUIRE(it != b.end());
  return static_cast<std::size_t>(it - b.begin());
}

}  // namespace

TEST_CASE("gguf: write then read gives identical metadata and tensors", "[gguf]") {
  const gguf_file f = sample();
  const auto bytes = gguf_serialize(f);
  const gguf_file g = gguf_parse(bytes.data(), bytes.size());
  require_same(f, g);
  CHECK(gguf_serialize(g) == bytes);
  for (const auto& t : g.tensors) CHECK(t.offset % 64 == 0);
  const auto p = tmp("rt.gguf");
  write_gguf(p.string(), f);
  require_same(read_gguf(p.string()), f);
  CHECK(is_gguf_file(p.string()));
  const rope_config c = load_rope_config(p.string());  // GGUF through the JSON entry point
  CHECK(c.type == rope_type::longrope);
  CHECK(c.head_dim == 16);
  CHECK(c.effective_rotary_dim() == 12);
  CHECK(c.layout == pair_layout::half_split);
  CHECK(c.max_position_embeddings == 131072);
  CHECK(c.longrope.original_max_position == 4096);
  CHECK(c.longrope.long_factor == std::vector<double>{1, 2, 4, 8, 16, 32});
  CHECK(c.longrope.short_factor == std::vector<double>{1, 1, 1, 1.5, 2, 2});
  CHECK(*c.longrope.attention_factor == static_cast<double>(1.1902380714238083f));
  std::filesystem::remove(p);
}

TEST_CASE("gguf: files from an independent writer parse and re-serialize byte for byte", "[gguf]") {
  for (const char* name : {"phi3_longrope.gguf", "header_only.gguf", "all_types.gguf", "llama_linear.gguf"}) {
    INFO(name);
    const auto bytes = file_bytes(seed(name));
    const gguf_file f = gguf_parse(bytes.data(), bytes.size());
    CHECK(gguf_serialize(f) == bytes);
  }
  const gguf_file phi = read_gguf(seed("phi3_longrope.gguf").string());
  const rope_config c = rope_config_from_gguf(phi);
  CHECK(c.longrope.long_factor == std::vector<double>{1, 2, 4, 8});
  CHECK(c.longrope.short_factor == std::vector<double>{1, 1, 1.5, 2});
  CHECK(c.pairs() == 4);
  const gguf_file all = read_gguf(seed("all_types.gguf").string());
  CHECK(all.alignment == 64);
  CHECK(all.find("a.i8")->i == -7);
  CHECK(all.find("a.i64")->i == -(1ll << 40));
  CHECK(all.find("a.f64")->f == 0.1);
  CHECK(all.find("a.strs")->elems[1].s == "yz");
  CHECK(all.find("a.nested")->elems[0].elems[1].u == 2);
  const rope_config lin = rope_config_from_gguf(read_gguf(seed("llama_linear.gguf").string()));
  CHECK(lin.type == rope_type::linear);
  CHECK(lin.factor == 4.0);
  CHECK(lin.layout == pair_layout::interleaved);
}

TEST_CASE("gguf set: new factors, every other key and tensor byte unchanged (acceptance 2)", "[gguf][cli]") {
  const gguf_file f = sample();
  const auto in = tmp("in.gguf"), out = tmp("out.gguf"), res = tmp("res.json"), res2 = tmp("res2.json");
  write_gguf(in.string(), f);
  const std::vector<double> longs = {1.5, 2.5, 3.25, 7, 11, 40.125};
  const std::vector<double> shorts = {1, 1.125, 1.25, 1.5, 1.75, 2};
  std::ofstream(res) << nlohmann::json{{"rescale_factors", longs}, {"n_hat", 0}}.dump();
  std::ofstream(res2) << nlohmann::json{{"rescale_factors", shorts}, {"n_hat", 0}}.dump();
  const auto r = longrope_test::run_cli({"gguf", "set", in.string(), "--factors", res.string(), "--short-factors",
                                         res2.string(), "--attn-factor", "1.25", "--out", out.string()});
  REQUIRE(r.status == 0);
  const gguf_file g = read_gguf(out.string());
  CHECK(g.alignment == 64);
  REQUIRE(g.kvs.size() == f.kvs.size());
  for (std::size_t k = 0; k < f.kvs.size(); ++k) {
    INFO(f.kvs[k].key);
    CHECK(g.kvs[k].key == f.kvs[k].key);
    if (f.kvs[k].key != "phi3.rope.scaling.attn_factor") CHECK(same(g.kvs[k].value, f.kvs[k].value));
  }
  CHECK(g.find("phi3.rope.scaling.attn_factor")->f == 1.25);
  REQUIRE(g.tensors.size() == f.tensors.size());
  for (std::size_t k = 0; k < f.tensors.size(); ++k) {
    INFO(f.tensors[k].name);
    CHECK(g.tensors[k].name == f.tensors[k].name);
    CHECK(g.tensors[k].offset % 64 == 0);
    if (f.tensors[k].name.rfind("rope_factors_", 0) == 0) continue;
    CHECK(fnv1a(g.tensors[k].data) == fnv1a(f.tensors[k].data));
    CHECK(g.tensors[k].dims == f.tensors[k].dims);
    CHECK(g.tensors[k].type == f.tensors[k].type);
  }
  const rope_config c = load_rope_config(out.string());
  CHECK(c.longrope.long_factor == longs);
  CHECK(c.longrope.short_factor == shorts);
  CHECK(rope_frequencies(c, {8192}).attention_factor() == 1.25);
  // The raw bytes of the other tensors sit where the new header says, unchanged.
  const auto raw = file_bytes(out);
  const auto f_raw = gguf_serialize(f);
  CHECK(raw.size() == f_raw.size());  // same factor sizes: same layout
  // show prints the new factors and the rope config
  const auto s = longrope_test::run_cli({"gguf", "show", out.string()});
  REQUIRE(s.status == 0);
  const auto j = nlohmann::json::parse(s.out);
  CHECK(j["alignment"] == 64);
  CHECK(j["rope"]["rope_scaling"]["long_factor"].get<std::vector<double>>() == longs);
  CHECK(j["metadata"]["t.i64"]["value"] == -1234567890123ll);
  // n_hat cannot be expressed: refused unless dropped; a wrong count is refused.
  std::ofstream(res) << nlohmann::json{{"rescale_factors", longs}, {"n_hat", 8}}.dump();
  auto e = longrope_test::run_cli({"gguf", "set", in.string(), "--factors", res.string(), "--out", out.string()});
  CHECK(e.status != 0);
  CHECK(e.err.find("n_hat = 8 cannot be expressed in GGUF") != std::string::npos);
  CHECK(longrope_test::run_cli({"gguf", "set", in.string(), "--factors", res.string(), "--out", out.string(), "--drop-n-hat"})
            .status == 0);
  std::ofstream(res) << nlohmann::json{{"rescale_factors", {1.0, 2.0}}}.dump();
  e = longrope_test::run_cli({"gguf", "set", in.string(), "--factors", res.string(), "--out", out.string()});
  CHECK(e.status != 0);
  CHECK(e.err.find("expected 6 values") != std::string::npos);
  for (const auto& p : {in, out, res, res2}) std::filesystem::remove(p);
}

TEST_CASE("gguf: malformed files get a clear error naming the byte and the field", "[gguf]") {
  const auto good = gguf_serialize(sample());
  REQUIRE(parse_error(good).empty());
  // Every prefix that cuts into the last tensor's bytes (output_norm.weight: 28
  // bytes, then 36 of padding) is an error, never a crash; cutting only the
  // trailing padding leaves every tensor whole and is accepted.
  const std::size_t data_end = good.size() - 36;
  for (std::size_t n = 0; n < good.size(); ++n) {
    INFO("prefix " << n);
    const std::vector<std::uint8_t> b(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK(parse_error(b).empty() == (n >= data_end));
  }
  struct mutation {
    const char* what;
    std::function<void(std::vector<std::uint8_t>&)> apply;
    const char* expect;
  };
  const std::size_t key0 = 24;  // first kv: u64 length of "general.architecture"
  const std::vector<mutation> cases = {
      {"magic", [](auto& b) { b[0] = 'X'; }, "not a GGUF file"},
      {"version", [](auto& b) { put_u32(b, 4, 4); }, "unsupported GGUF version 4"},
      {"tensor count", [](auto& b) { put_u64(b, 8, 1ull << 60); }, "tensor count 1152921504606846976 exceeds"},
      {"kv count", [](auto& b) { put_u64(b, 16, 0xFFFFFFFFFFFFFFFFull); }, "metadata kv count"},
      {"huge key", [&](auto& b) { put_u64(b, key0, 1ull << 62); }, "string length 4611686018427387904 exceeds"},
      {"value type", [&](auto& b) { put_u32(b, key0 + 8 + 20, 13); }, "unknown metadata value type 13"},
      {"huge string value", [&](auto& b) { put_u64(b, key0 + 8 + 20 + 4, 1ull << 40); }, "string value: string length"},
      {"array elem type", [&](auto& b) { put_u32(b, find(b, "t.strs") + 6 + 4, 99); }, "array of unknown element type 99"},
      {"array length", [&](auto& b) { put_u64(b, find(b, "t.strs") + 6 + 8, 1ull << 50); }, "array length 1125899906842624 exceeds"},
      {"bool", [&](auto& b) { b[find(b, "t.bool") + 6 + 4] = 2; }, "bool value 2"},
      {"alignment type", [&](auto& b) { put_u32(b, find(b, "general.alignment") + 17, 10); }, "general.alignment must be u32"},
      {"alignment pow2", [&](auto& b) { put_u32(b, find(b, "general.alignment") + 17 + 4, 48); }, "is not a power of two"},
      {"n_dims", [&](auto& b) { put_u32(b, find(b, "token_embd.weight") + 17, 9); }, "n_dims 9 > 8"},
      {"dims overflow", [&](auto& b) {
         const std::size_t at = find(b, "blk.0.attn_q.weight") + 19;
         put_u64(b, at + 4, 1ull << 40);
         put_u64(b, at + 12, 1ull << 40);
       }, "element count overflows"},
      {"offset misaligned", [&](auto& b) { put_u64(b, find(b, "output_norm.weight") + 18 + 4 + 8 + 4, 65); }, "not a multiple of the alignment"},
      {"offset past end", [&](auto& b) { put_u64(b, find(b, "output_norm.weight") + 18 + 4 + 8 + 4, 1ull << 40); }, "runs past the end"},
      {"overlap", [&](auto& b) { put_u64(b, find(b, "output_norm.weight") + 18 + 4 + 8 + 4, 0); }, "overlaps"},
      {"partial block", [&](auto& b) { put_u64(b, find(b, "token_embd.weight") + 17 + 4, 63); }, "do not fill whole blocks"},
  };
  for (const auto& m : cases) {
    INFO(m.what);
    auto b = good;
    m.apply(b);
    const std::string err = parse_error(b);
    CHECK(err.find(m.expect) != std::string::npos);
    CHECK(err.find("at byte ") != std::string::npos);
  }
  // Deep nesting: arrays of arrays 9 levels deep.
  {
    gguf_value v = arr(gguf_type::uint8, {});
    for (int d = 0; d < 8; ++d) v = arr(gguf_type::array, {v});
    gguf_file f;
    f.kvs = {{"deep", v}};
    CHECK_THROWS_AS(gguf_serialize(f), longrope::error);
    gguf_value w = arr(gguf_type::uint8, {});
    for (int d = 0; d < 7; ++d) w = arr(gguf_type::array, {w});
    f.kvs = {{"deep", w}};
    const auto ok = gguf_serialize(f);
    CHECK(parse_error(ok).empty());
    CHECK(gguf_parse(ok.data(), ok.size()).kvs.size() == 1);
    // The same bytes with one more level, written by hand: the reader refuses them.
    std::vector<std::uint8_t> b = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    auto u64 = [&](std::uint64_t x) { for (int k = 0; k < 8; ++k) b.push_back(static_cast<std::uint8_t>(x >> (8 * k))); };
    auto u32 = [&](std::uint32_t x) { for (int k = 0; k < 4; ++k) b.push_back(static_cast<std::uint8_t>(x >> (8 * k))); };
    u64(0);
    u64(1);
    u64(1);
    b.push_back('d');
    u32(9);
    for (int d = 0; d < 8; ++d) {
      u32(9);
      u64(1);
    }
    u32(0);
    u64(0);
    CHECK(parse_error(b).find("arrays nested deeper than 8") != std::string::npos);
  }
  // The CLI: one line on stderr, exit 1.
  auto bad = good;
  put_u64(bad, 8, 1ull << 60);
  const auto p = tmp("bad.gguf");
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bad.data()), static_cast<std::streamsize>(bad.size()));
  const auto r = longrope_test::run_cli({"gguf", "show", p.string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("[longrope.gguf]") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  std::filesystem::remove(p);
}

TEST_CASE("gguf: rope metadata errors name the key", "[gguf]") {
  auto err = [](const gguf_file& f) {
    try {
      (void)rope_config_from_gguf(f);
    } catch (const longrope::error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  gguf_file f = sample();
  CHECK(err(f).empty());
  f.find_tensor("rope_factors_long.weight")->type = 1;
  CHECK(err(f).find("rope_factors_long.weight: expected an F32 tensor") != std::string::npos);
  f = sample();
  f.find_tensor("rope_factors_short.weight")->data.resize(20);
  f.find_tensor("rope_factors_short.weight")->dims = {5};
  CHECK(err(f).find("expected 6 values") != std::string::npos);
  f = sample();
  f.find_tensor("rope_factors_long.weight")->data = f32_bytes({1, 2, 4, -8, 16, 32});
  CHECK(err(f).find("rope_factors_long.weight[3]: must be finite and > 0") != std::string::npos);
  f = sample();
  f.tensors.resize(2);
  f.set("phi3.rope.scaling.type", gguf_value::make_string("yarn"));
  CHECK(err(f).find("unsupported scaling type 'yarn'") != std::string::npos);
  f = sample();
  f.kvs.erase(f.kvs.begin());
  CHECK(err(f).find("general.architecture: missing") != std::string::npos);
  f = sample();
  f.set("phi3.rope.dimension_count", gguf_value::make_string("12"));
  CHECK(err(f).find("phi3.rope.dimension_count: expected an integer, got string") != std::string::npos);
}
