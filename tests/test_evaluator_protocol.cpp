// The evaluator protocol (include/longrope/evaluator_protocol.hpp): messages
// round-trip exactly, hostile messages are refused with a longrope.protocol
// error naming the problem, serve_evaluator answers a scripted session.
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include <longrope/evaluator_protocol.hpp>

#include "catch.hpp"

namespace {

std::string protocol_error(const std::string& line, bool reply) {
  try {
    if (reply) {
      longrope::decode_reply(line);
    } else {
      longrope::decode_message(line);
    }
  } catch (const longrope::error& e) {
    CHECK(e.id() == "longrope.protocol");
    return e.what();
  }
  return "";
}

longrope::search_target target() {
  longrope::search_target t;
  t.rope.head_dim = 8;
  t.original_length = 4096;
  t.scale = 8;
  return t;
}

}  // namespace

TEST_CASE("a request round-trips bit for bit, with the candidate's rope_scaling block", "[protocol]") {
  const longrope::search_point p{{1.0, 1.37, 2.0000000000000004, 7.99}, 12};
  const auto r = longrope::make_eval_request(41, target(), p, 1.1180339887498949);
  CHECK(r.target_length == 32768);
  const std::string line = longrope::encode_request(r);
  REQUIRE(line.back() == '\n');
  REQUIRE(line.find('\n') == line.size() - 1);
  const auto m = longrope::decode_message(line.substr(0, line.size() - 1));
  REQUIRE(m.type == longrope::eval_message_type::evaluate);
  CHECK(m.request.id == 41);
  CHECK(m.request.factors == p.factors);  // exact doubles
  CHECK(m.request.n_hat == 12);
  CHECK(m.request.attention_factor == 1.1180339887498949);
  CHECK(m.request.original_length == 4096);
  CHECK(m.request.rope_scaling.at("type") == "longrope");
  CHECK(m.request.rope_scaling.at("long_factor") == nlohmann::json(p.factors));
  CHECK(m.request.rope_scaling.at("n_hat") == 12);
  CHECK(m.request.rope_scaling.at("attention_factor") == 1.1180339887498949);
}

TEST_CASE("replies and the handshake round-trip", "[protocol]") {
  const auto ok = longrope::decode_reply(longrope::encode_reply({5, 4.3100000000000005, ""}));
  CHECK(ok.id == 5);
  REQUIRE(ok.fitness);
  CHECK(*ok.fitness == 4.3100000000000005);
  const auto bad = longrope::decode_reply(longrope::encode_reply({6, std::nullopt, "out of memory"}));
  CHECK_FALSE(bad.fitness);
  CHECK(bad.error == "out of memory");
  CHECK(longrope::decode_hello_reply(longrope::encode_hello_reply("mine")) == "mine");
  CHECK(longrope::decode_message(longrope::encode_hello_request()).type == longrope::eval_message_type::hello);
  CHECK(longrope::decode_message(longrope::encode_shutdown()).type == longrope::eval_message_type::shutdown);
  // Unknown keys are ignored (forward compatible).
  CHECK(longrope::decode_reply(R"({"id":1,"fitness":2,"gpu":"A100"})").fitness.value() == 2.0);
}

TEST_CASE("hostile messages get a clear longrope.protocol error", "[protocol]") {
  CHECK_THAT(protocol_error("", true), Catch::Contains("not valid JSON"));
  CHECK_THAT(protocol_error("{\"id\":1,\"fitness\":", true), Catch::Contains("not valid JSON"));
  CHECK_THAT(protocol_error("[1,2]", true), Catch::Contains("expected a JSON object, got array"));
  CHECK_THAT(protocol_error(R"({"fitness":1})", true), Catch::Contains("id: missing"));
  CHECK_THAT(protocol_error(R"({"id":-3,"fitness":1})", true), Catch::Contains("id: expected a non-negative integer"));
  CHECK_THAT(protocol_error(R"({"id":1.5,"fitness":1})", true), Catch::Contains("id: expected a non-negative integer"));
  CHECK_THAT(protocol_error(R"({"id":9007199254740993,"fitness":1})", true), Catch::Contains("exceeds 2^53"));
  CHECK_THAT(protocol_error(R"({"id":1})", true), Catch::Contains("exactly one of"));
  CHECK_THAT(protocol_error(R"({"id":1,"fitness":1,"error":"x"})", true), Catch::Contains("exactly one of"));
  CHECK_THAT(protocol_error(R"({"id":1,"fitness":"4.3"})", true), Catch::Contains("fitness: expected a number"));
  CHECK_THAT(protocol_error(R"({"id":1,"fitness":1e999})", true), Catch::Contains("not valid JSON"));
  CHECK_THAT(protocol_error(R"({"id":1,"error":42})", true), Catch::Contains("error: expected a string"));
  CHECK_THAT(protocol_error(std::string(longrope::evaluator_max_line, ' '), true), Catch::Contains("exceeds the limit"));

  CHECK_THAT(protocol_error(R"({"type":"dance"})", false), Catch::Contains("unknown message type"));
  CHECK_THAT(protocol_error(R"({"type":7})", false), Catch::Contains("type: expected a string"));
  CHECK_THAT(protocol_error(R"({"type":"hello","protocol":"longrope.evaluator","version":2})", false),
             Catch::Contains("version: 2 is not supported"));
  CHECK_THAT(protocol_error(R"({"type":"hello","protocol":"other","version":1})", false), Catch::Contains("protocol:"));
  const std::string ok_tail = R"(,"n_hat":0,"attention_factor":1,"original_max_position_embeddings":4,"max_position_embeddings":8})";
  CHECK(protocol_error(R"({"type":"evaluate","id":1,"factors":[1.5])" + ok_tail, false).empty());
  CHECK_THAT(protocol_error(R"({"type":"evaluate","id":1,"factors":[])" + ok_tail, false), Catch::Contains("factors: expected 1 to"));
  CHECK_THAT(protocol_error(R"({"type":"evaluate","id":1,"factors":[1,0])" + ok_tail, false), Catch::Contains("factors[1]: must be > 0"));
  CHECK_THAT(protocol_error(R"({"type":"evaluate","id":1,"factors":[1,"2"])" + ok_tail, false),
             Catch::Contains("factors[1]: expected a number"));
  CHECK_THAT(protocol_error(R"({"type":"evaluate","id":1,"factors":{})" + ok_tail, false),
             Catch::Contains("factors: expected an array"));
  CHECK_THAT(protocol_error(R"({"type":"evaluate","id":1,"factors":[1],"n_hat":-1,"attention_factor":1,"original_max_position_embeddings":4,"max_position_embeddings":8})", false),
             Catch::Contains("n_hat: out of range"));
  CHECK_THAT(protocol_error(R"({"type":"evaluate","id":1,"factors":[1],"n_hat":0,"attention_factor":0,"original_max_position_embeddings":4,"max_position_embeddings":8})", false),
             Catch::Contains("attention_factor: must be > 0"));
  CHECK_THAT(protocol_error(R"({"type":"evaluate","id":1,"factors":[1],"n_hat":0,"attention_factor":1})", false),
             Catch::Contains("original_max_position_embeddings: missing"));
  std::string many = R"({"type":"evaluate","id":1,"factors":[)";
  for (std::size_t i = 0; i <= longrope::evaluator_max_pairs; ++i) many += i ? ",1" : "1";
  CHECK_THAT(protocol_error(many + "]" + ok_tail, false), Catch::Contains("factors: expected 1 to 65536 numbers, got 65537"));
}

TEST_CASE("serve_evaluator answers a scripted session and survives bad lines", "[protocol]") {
  const std::string ok_tail = R"(,"n_hat":3,"attention_factor":1,"original_max_position_embeddings":4,"max_position_embeddings":8})";
  std::istringstream in(longrope::encode_hello_request() + "\n" + "garbage\n" +
                        R"({"type":"evaluate","id":4,"factors":[1,2])" + ok_tail + "\n" +
                        R"({"type":"evaluate","id":5,"factors":[9])" + ok_tail + "\n" + longrope::encode_shutdown() +
                        R"({"type":"evaluate","id":6,"factors":[1])" + ok_tail + "\n");
  std::ostringstream out;
  const int rc = longrope::serve_evaluator(in, out, [](const longrope::eval_request& r) {
    if (r.factors.size() == 1) throw std::runtime_error("one pair is not enough");
    return r.factors[0] + r.factors[1] + static_cast<double>(r.n_hat);
  }, "scripted");
  CHECK(rc == 0);
  std::istringstream lines(out.str());
  std::string l;
  std::getline(lines, l);
  CHECK(longrope::decode_hello_reply(l) == "scripted");
  std::getline(lines, l);
  auto r = longrope::decode_reply(l);
  CHECK((r.id == 0 && !r.fitness && r.error.find("not valid JSON") != std::string::npos));
  std::getline(lines, l);
  r = longrope::decode_reply(l);
  CHECK((r.id == 4 && r.fitness && *r.fitness == 6.0));
  std::getline(lines, l);
  r = longrope::decode_reply(l);
  CHECK((r.id == 5 && !r.fitness && r.error == "one pair is not enough"));
  CHECK_FALSE(std::getline(lines, l));  // nothing after shutdown
}

TEST_CASE("read_protocol_line bounds the line length", "[protocol]") {
  std::istringstream in(std::string("short\n") + std::string(longrope::evaluator_max_line + 10, 'x') + "\n");
  std::string line;
  REQUIRE(longrope::read_protocol_line(in, line));
  CHECK(line == "short");
  CHECK_THROWS_WITH(longrope::read_protocol_line(in, line), Catch::Contains("exceeds"));
}
