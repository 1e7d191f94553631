// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file evaluator_protocol.hpp
/// The evaluator protocol (version 1, docs/evaluators.md): line-delimited JSON
/// between a search coordinator and an evaluator process (over its
/// stdin/stdout, or as MPI messages). Needs nlohmann-json.
///
/// Every message is one JSON object on one line (UTF-8, '\n'-terminated, at most
/// evaluator_max_line bytes with the newline). Coordinator -> evaluator:
///
///     {"type":"hello","protocol":"longrope.evaluator","version":1}
///     {"type":"evaluate","id":7,"factors":[..],"n_hat":4,"attention_factor":1.19,
///      "original_max_position_embeddings":4096,"max_position_embeddings":32768,
///      "rope_scaling":{"type":"longrope",...}}
///     {"type":"shutdown"}                      (then stdin closes)
///
/// Evaluator -> coordinator:
///
///     {"type":"hello","protocol":"longrope.evaluator","version":1,"name":"..."}   (answer to hello)
///     {"id":7,"fitness":4.31}                  (lower is better; a finite number)
///     {"id":7,"error":"CUDA out of memory"}    (this candidate cannot be scored)
///
/// Both sides ignore keys they do not know (a later minor addition stays
/// compatible); a different major "version" is refused in the handshake.
/// Decoding never trusts its input: wrong types, missing keys, non-finite
/// numbers, ids beyond 2^53, over-long lines and more than evaluator_max_pairs
/// factors throw longrope::error with id "longrope.protocol" naming the key.

#include <cmath>
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.hpp"
#include "json.hpp"
#include "search.hpp"

namespace longrope {

/// Protocol version spoken by this header.
inline constexpr int evaluator_protocol_version = 1;
/// The protocol name in hello messages.
inline constexpr const char* evaluator_protocol_name = "longrope.evaluator";
/// Longest message line, newline included (1 MiB: a 64k-pair candidate fits).
inline constexpr std::size_t evaluator_max_line = std::size_t{1} << 20;
/// Most factors a request may carry.
inline constexpr std::size_t evaluator_max_pairs = 65536;
/// Largest id (ids are exact in a double, so any JSON reader keeps them).
inline constexpr std::uint64_t evaluator_max_id = (std::uint64_t{1} << 53);

/// One candidate to score.
struct eval_request {
  std::uint64_t id = 0;
  std::vector<double> factors;           ///< lambda_i, one per rotary pair (totals relative to the original RoPE).
  std::int64_t n_hat = 0;                ///< positions < n_hat keep the original angles.
  double attention_factor = 1.0;         ///< multiplies cos and sin (mscale).
  std::int64_t original_length = 0;      ///< L0, original_max_position_embeddings.
  std::int64_t target_length = 0;        ///< L, the context to score at (max_position_embeddings).
  nlohmann::json rope_scaling;           ///< the transformers rope_scaling block of the candidate.
};

/// An evaluator's answer: a fitness, or an error message.
struct eval_reply {
  std::uint64_t id = 0;
  std::optional<double> fitness;  ///< set on success (finite).
  std::string error;              ///< set when fitness is empty.
};

/// What a coordinator can send.
enum class eval_message_type { hello, evaluate, shutdown };

struct eval_message {
  eval_message_type type = eval_message_type::hello;
  int version = 0;        ///< hello: the coordinator's protocol version.
  eval_request request;   ///< evaluate.
};

/// The request for one search point: factors and n_hat from p, lengths from
/// target, rope_scaling built by to_rope_scaling_json with target.rope's
/// geometry and `attention_factor`. Throws "longrope.config" if the point does
/// not form a valid config. O(pairs).
eval_request make_eval_request(std::uint64_t id, const search_target& target, const search_point& p,
                               double attention_factor);

/// The coordinator's hello line (with '\n').
std::string encode_hello_request();
/// An evaluator's hello answer (with '\n'); `name` identifies it in logs.
std::string encode_hello_reply(const std::string& name);
/// Checks an evaluator's hello answer; returns its name (may be empty).
/// Throws "longrope.protocol" on anything else or another version.
std::string decode_hello_reply(const std::string& line);

/// One evaluate line (with '\n'). O(pairs).
std::string encode_request(const eval_request& r);
/// The shutdown line (with '\n').
std::string encode_shutdown();
/// Parses a coordinator message (the evaluator's side). Throws "longrope.protocol".
eval_message decode_message(const std::string& line);

/// One reply line (with '\n'). Precondition: fitness finite, or error set.
std::string encode_reply(const eval_reply& r);
/// Parses an evaluator's reply (the coordinator's side): exactly one of
/// "fitness" (a finite number) and "error" (a string), an integer id.
/// Throws "longrope.protocol" naming the problem. O(line).
eval_reply decode_reply(const std::string& line);

/// Reads one line (without the '\n') of at most evaluator_max_line bytes.
/// Returns false at end of input with nothing read. Throws "longrope.protocol"
/// on an over-long line (the rest of the stream is then unusable).
bool read_protocol_line(std::istream& in, std::string& line);

/// The evaluator side in one call: answers hello, then every evaluate with
/// {id, fitness = f(request)}, or {id, error} when f throws; returns 0 on
/// shutdown or end of input. A malformed message is answered with
/// {"id":0,"error":...} when it is not a hello/evaluate at all, and ends the
/// loop with a thrown "longrope.protocol" error when it breaks the framing.
/// Flushes after each reply unless the next request is already buffered in
/// `in` (a coordinator pipelining requests then gets their replies in one write).
int serve_evaluator(std::istream& in, std::ostream& out, const std::function<double(const eval_request&)>& f,
                    const std::string& name = "longrope");

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[noreturn]] inline void protocol_fail(const std::string& what) { LONGROPE_THROW("longrope.protocol", what); }

inline nlohmann::json protocol_parse(const std::string& line) {
  if (line.size() >= evaluator_max_line) {
    protocol_fail("message of " + std::to_string(line.size()) + " bytes exceeds the limit of " +
                  std::to_string(evaluator_max_line));
  }
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) protocol_fail("not valid JSON: " + line.substr(0, 80));
  if (!j.is_object()) protocol_fail(std::string("expected a JSON object, got ") + json_type_name(j));
  return j;
}

inline const nlohmann::json& protocol_key(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) protocol_fail(std::string(key) + ": missing");
  return *it;
}

inline std::uint64_t protocol_id(const nlohmann::json& j) {
  const auto& v = protocol_key(j, "id");
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    const auto id = v.get<std::uint64_t>();
    if (id > evaluator_max_id) protocol_fail("id: " + std::to_string(id) + " exceeds 2^53");
    return id;
  }
  protocol_fail(std::string("id: expected a non-negative integer, got ") + json_type_name(v));
}

inline std::int64_t protocol_count(const nlohmann::json& j, const char* key) {
  const auto& v = protocol_key(j, key);
  if (!v.is_number_integer()) protocol_fail(std::string(key) + ": expected an integer, got " + json_type_name(v));
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > evaluator_max_id) protocol_fail(std::string(key) + ": out of range");
  const auto i = v.get<std::int64_t>();
  if (i < 0 || static_cast<std::uint64_t>(i) > evaluator_max_id) protocol_fail(std::string(key) + ": out of range");
  return i;
}

inline double protocol_finite(const nlohmann::json& v, const std::string& key) {
  if (!v.is_number()) protocol_fail(key + ": expected a number, got " + json_type_name(v));
  const double d = v.get<double>();
  if (!std::isfinite(d)) protocol_fail(key + ": must be finite");
  return d;
}

inline void protocol_check_hello(const nlohmann::json& j) {
  const auto& p = protocol_key(j, "protocol");
  if (!p.is_string() || p.get_ref<const std::string&>() != evaluator_protocol_name) {
    protocol_fail(std::string("protocol: expected \"") + evaluator_protocol_name + "\"");
  }
  const auto& v = protocol_key(j, "version");
  if (!v.is_number_integer()) protocol_fail(std::string("version: expected an integer, got ") + json_type_name(v));
  if (v.get<std::int64_t>() != evaluator_protocol_version) {
    protocol_fail("version: " + v.dump() + " is not supported (this side speaks version " +
                  std::to_string(evaluator_protocol_version) + ")");
  }
}

inline std::string protocol_type(const nlohmann::json& j) {
  const auto& t = protocol_key(j, "type");
  if (!t.is_string()) protocol_fail(std::string("type: expected a string, got ") + json_type_name(t));
  return t.get<std::string>();
}

}  // namespace detail

inline eval_request make_eval_request(std::uint64_t id, const search_target& target, const search_point& p,
                                      double attention_factor) {
  eval_request r;
  r.id = id;
  r.factors = p.factors;
  r.n_hat = p.n_hat;
  r.attention_factor = attention_factor;
  r.original_length = target.original_length;
  r.target_length = target.target_length();
  rope_config cfg = to_rope_config(target, p);
  cfg.longrope.attention_factor = attention_factor;
  r.rope_scaling = to_rope_scaling_json(cfg);
  return r;
}

inline std::string encode_hello_request() {
  nlohmann::json j = {{"type", "hello"}, {"protocol", evaluator_protocol_name}, {"version", evaluator_protocol_version}};
  return j.dump() + '\n';
}

inline std::string encode_hello_reply(const std::string& name) {
  nlohmann::json j = {{"type", "hello"},
                      {"protocol", evaluator_protocol_name},
                      {"version", evaluator_protocol_version},
                      {"name", name}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n';
}

inline std::string decode_hello_reply(const std::string& line) {
  const auto j = detail::protocol_parse(line);
  const std::string type = detail::protocol_type(j);
  if (type != "hello") detail::protocol_fail("expected a hello answer, got type \"" + type.substr(0, 40) + "\"");
  detail::protocol_check_hello(j);
  const auto it = j.find("name");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

inline std::string encode_request(const eval_request& r) {
  nlohmann::json j = {{"type", "evaluate"},
                      {"id", r.id},
                      {"factors", r.factors},
                      {"n_hat", r.n_hat},
                      {"attention_factor", r.attention_factor},
                      {"original_max_position_embeddings", r.original_length},
                      {"max_position_embeddings", r.target_length},
                      {"rope_scaling", r.rope_scaling}};
  return j.dump() + '\n';
}

inline std::string encode_shutdown() { return "{\"type\":\"shutdown\"}\n"; }

inline eval_message decode_message(const std::string& line) {
  using namespace detail;
  auto j = protocol_parse(line);
  const std::string type = protocol_type(j);
  eval_message m;
  if (type == "hello") {
    protocol_check_hello(j);
    m.type = eval_message_type::hello;
    m.version = evaluator_protocol_version;
  } else if (type == "shutdown") {
    m.type = eval_message_type::shutdown;
  } else if (type == "evaluate") {
    m.type = eval_message_type::evaluate;
    auto& r = m.request;
    r.id = protocol_id(j);
    const auto& f = protocol_key(j, "factors");
    if (!f.is_array()) protocol_fail(std::string("factors: expected an array, got ") + json_type_name(f));
    if (f.empty() || f.size() > evaluator_max_pairs) {
      protocol_fail("factors: expected 1 to " + std::to_string(evaluator_max_pairs) + " numbers, got " +
                    std::to_string(f.size()));
    }
    r.factors.reserve(f.size());
    for (std::size_t i = 0; i < f.size(); ++i) {
      // The element's name is only built on failure (no allocation per factor).
      const double x = f[i].is_number() ? f[i].get<double>() : 0.0;
      if (!f[i].is_number() || !std::isfinite(x)) protocol_finite(f[i], "factors[" + std::to_string(i) + "]");
      if (!(x > 0.0)) protocol_fail("factors[" + std::to_string(i) + "]: must be > 0");
      r.factors.push_back(x);
    }
    r.n_hat = protocol_count(j, "n_hat");
    r.attention_factor = protocol_finite(protocol_key(j, "attention_factor"), "attention_factor");
    if (!(r.attention_factor > 0.0)) protocol_fail("attention_factor: must be > 0");
    r.original_length = protocol_count(j, "original_max_position_embeddings");
    r.target_length = protocol_count(j, "max_position_embeddings");
    if (r.original_length < 1 || r.target_length < 1) protocol_fail("lengths must be >= 1");
    const auto it = j.find("rope_scaling");
    if (it != j.end()) {
      if (!it->is_object()) protocol_fail("rope_scaling: expected an object");
      r.rope_scaling = std::move(*it);  // moved, not copied: j is not used after this
    }
  } else {
    protocol_fail("type: unknown message type \"" + type.substr(0, 40) + "\"");
  }
  return m;
}

inline std::string encode_reply(const eval_reply& r) {
  nlohmann::json j = {{"id", r.id}};
  if (r.fitness) {
    j["fitness"] = *r.fitness;
  } else {
    j["error"] = r.error;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n';
}

inline eval_reply decode_reply(const std::string& line) {
  using namespace detail;
  const auto j = protocol_parse(line);
  eval_reply r;
  r.id = protocol_id(j);
  const auto f = j.find("fitness");
  const auto e = j.find("error");
  if ((f == j.end()) == (e == j.end())) protocol_fail("a reply needs exactly one of \"fitness\" and \"error\"");
  if (f != j.end()) {
    r.fitness = protocol_finite(*f, "fitness");
  } else {
    if (!e->is_string()) protocol_fail(std::string("error: expected a string, got ") + json_type_name(*e));
    r.error = e->get<std::string>().substr(0, 1000);
  }
  return r;
}

inline bool read_protocol_line(std::istream& in, std::string& line) {
  line.clear();
  std::streambuf* sb = in.rdbuf();
  for (;;) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      return !line.empty();
    }
    if (c == '\n') return true;
    if (line.size() + 1 >= evaluator_max_line) {
      detail::protocol_fail("input line exceeds " + std::to_string(evaluator_max_line) + " bytes");
    }
    line.push_back(static_cast<char>(c));
  }
}

inline int serve_evaluator(std::istream& in, std::ostream& out, const std::function<double(const eval_request&)>& f,
                           const std::string& name) {
  std::string line;
  while (read_protocol_line(in, line)) {
    if (line.empty()) continue;
    eval_message m;
    try {
      m = decode_message(line);
    } catch (const error& e) {
      out << encode_reply({0, std::nullopt, e.what()}) << std::flush;
      continue;
    }
    if (m.type == eval_message_type::shutdown) return 0;
    if (m.type == eval_message_type::hello) {
      out << encode_hello_reply(name) << std::flush;
      continue;
    }
    eval_reply r;
    r.id = m.request.id;
    try {
      const double v = f(m.request);
      if (std::isfinite(v)) {
        r.fitness = v;
      } else {
        r.error = "fitness is not finite";
      }
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    out << encode_reply(r);
    // Pipelined requests already buffered: their replies share one write.
    if (in.rdbuf() == nullptr || in.rdbuf()->in_avail() <= 0) out.flush();
  }
  out.flush();
  return 0;
}

}  // namespace longrope
