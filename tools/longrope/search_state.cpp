// search_state.hpp: targets from a config.json, the state file.
#include "search_state.hpp"

#include <longrope/io.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <longrope/json.hpp>
#include <longrope/search_json.hpp>

namespace longrope_cli {

std::set<std::string> external_start_options() {
  return {"--config",          "--context",   "--original-length", "--attention-factor",
          "--population",      "--mutations", "--crossovers",      "--topk",
          "--iterations",      "--seed",      "--lambda-max",      "--max-evaluations",
          "--mutation-radius", "--optimizer"};
}
std::set<std::string> external_start_flags() { return {"--no-n-hat"}; }

bool gives_start_options(const option_parser& opt) {
  for (const auto& o : external_start_options()) {
    if (opt.has(o)) return true;
  }
  for (const auto& o : external_start_flags()) {
    if (opt.has(o)) return true;
  }
  return false;
}

longrope::evolutionary_search start_external_search(const option_parser& opt, external_target& t) {
  const std::string config_path = opt.required("--config");
  const std::int64_t context = option_parser::parse_int(opt.required("--context"), "--context");
  if (context < 2) throw std::invalid_argument("--context: must be >= 2, got " + std::to_string(context));
  const longrope::rope_config cfg = longrope::load_rope_config(config_path);
  std::int64_t l0 = 0;
  if (cfg.type == longrope::rope_type::longrope) l0 = cfg.longrope.original_max_position;
  if (cfg.type == longrope::rope_type::yarn) l0 = cfg.yarn.original_max_position;
  if (cfg.type == longrope::rope_type::llama3) l0 = cfg.llama3.original_max_position;
  if (l0 <= 0) l0 = cfg.max_position_embeddings;
  if (const auto v = opt.get_int("--original-length")) l0 = *v;
  if (l0 < 1) {
    throw std::invalid_argument(config_path + ": no original length (max_position_embeddings); give --original-length");
  }
  t.target.rope.head_dim = cfg.head_dim;
  t.target.rope.rotary_dim = cfg.effective_rotary_dim();
  t.target.rope.base = cfg.base;
  t.target.rope.layout = cfg.layout;
  t.target.original_length = l0;
  t.target.scale = static_cast<double>(context) / static_cast<double>(l0);
  t.target.validate();
  if (t.target.target_length() != context) {
    throw std::invalid_argument("--context: " + std::to_string(context) + " is not representable as s * L0");
  }
  // transformers' default LongRoPE attention factor, unless given.
  const double s = t.target.scale;
  t.attention_factor = s > 1.0 ? std::sqrt(1.0 + std::log(s) / std::log(static_cast<double>(l0))) : 1.0;
  if (const auto x = opt.get_double("--attention-factor")) {
    if (!(*x > 0.0)) throw std::invalid_argument("--attention-factor: must be > 0");
    t.attention_factor = *x;
  }
  longrope::search_options o;
  read_generation_flags(opt).apply_to(o);
  o.mutation_radius = opt.small_int("--mutation-radius", 0, 0);
  // The paper's EA unless asked: the surrogate default of `search --model` was measured on one toy model
  // only.
  read_optimizer(opt, o.strategy);
  o.seed = opt.seed();
  o.max_evaluations = opt.int_or("--max-evaluations", 0);
  if (o.max_evaluations < 0) throw std::invalid_argument("--max-evaluations: must be >= 0");
  longrope::search_space_config sc = longrope::default_space_config(t.target);
  if (const auto x = opt.get_double("--lambda-max")) {
    if (!(*x >= 1.0)) throw std::invalid_argument("--lambda-max: must be >= 1");
    sc.lambda_max = *x;
  }
  sc.search_n_hat = !opt.has("--no-n-hat");
  const longrope::search_space space(sc);
  longrope::search_seeds seeds;
  // A config that already carries LongRoPE factors seeds the search with them.
  if (cfg.type == longrope::rope_type::longrope &&
      cfg.longrope.long_factor.size() == static_cast<std::size_t>(space.pairs())) {
    seeds.user.push_back({cfg.longrope.long_factor, cfg.n_hat});
  }
  return longrope::evolutionary_search(space, o, t.target, seeds);
}

void save_state(const std::string& path, const longrope::search_checkpoint& cp, const external_target& t,
                const nlohmann::json& extra) {
  nlohmann::json j = longrope::to_json(cp);
  j["longrope_cli"] = {{"version", 1},
                       {"head_dim", t.target.rope.head_dim},
                       {"rotary_dim", t.target.rope.rotary_dim},
                       {"base", t.target.rope.base},
                       {"original_length", t.target.original_length},
                       {"scale", t.target.scale},
                       {"attention_factor", t.attention_factor}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  longrope::write_file_atomic(path, j.dump() + "\n");  // fsync'd, atomic (io.hpp)
}

void save_state(const std::string& path, const longrope::evolutionary_search& s, const external_target& t) {
  save_state(path, s.checkpoint(), t, nlohmann::json::object());
}

longrope::search_checkpoint load_state(const std::string& path, external_target& t, nlohmann::json& whole) {
  whole = nlohmann::json::parse(longrope::read_file(path), nullptr, false);
  const nlohmann::json& j = whole;
  if (j.is_discarded() || !j.is_object()) LONGROPE_THROW("longrope.json", path + ": not a JSON object");
  const auto it = j.find("longrope_cli");
  if (it == j.end() || !it->is_object()) {
    LONGROPE_THROW("longrope.json", path + ": longrope_cli: missing (not written by longrope search/ask)");
  }
  const auto& c = *it;
  auto num = [&](const char* k) {
    const auto f = c.find(k);
    if (f == c.end() || !f->is_number()) LONGROPE_THROW("longrope.json", path + ": longrope_cli." + k + ": expected a number");
    return f->get<double>();
  };
  auto integer = [&](const char* k) {
    const auto f = c.find(k);
    if (f == c.end() || !f->is_number_integer()) {
      LONGROPE_THROW("longrope.json", path + ": longrope_cli." + k + ": expected an integer");
    }
    const auto v = f->get<std::int64_t>();
    if (v < 1 || v > (std::int64_t{1} << 40)) LONGROPE_THROW("longrope.json", path + ": longrope_cli." + k + ": out of range");
    return v;
  };
  if (integer("version") != 1) LONGROPE_THROW("longrope.json", path + ": longrope_cli.version: expected 1");
  t.target.rope.head_dim = static_cast<int>(std::min<std::int64_t>(integer("head_dim"), 65536));
  t.target.rope.rotary_dim = static_cast<int>(std::min<std::int64_t>(integer("rotary_dim"), 65536));
  t.target.rope.base = num("base");
  t.target.original_length = integer("original_length");
  t.target.scale = num("scale");
  t.attention_factor = num("attention_factor");
  t.target.validate();
  if (!(t.attention_factor > 0.0) || !std::isfinite(t.attention_factor)) {
    LONGROPE_THROW("longrope.json", path + ": longrope_cli.attention_factor: must be > 0");
  }
  longrope::search_checkpoint cp = longrope::search_checkpoint_from_json(j);
  if (cp.space.pairs != t.target.rope.pairs()) {
    LONGROPE_THROW("longrope.json", path + ": longrope_cli.rotary_dim does not match space.pairs");
  }
  return cp;
}

longrope::evolutionary_search load_state(const std::string& path, external_target& t) {
  nlohmann::json whole;
  longrope::search_checkpoint cp = load_state(path, t, whole);
  if (whole.contains("model_search")) {
    LONGROPE_THROW("longrope.argument", path + ": written by `longrope search --model` (validation state inside): "
                                        "resume it with that command line and --resume");
  }
  if (whole.contains("longrope2_search")) {
    LONGROPE_THROW("longrope.argument", path + ": written by `longrope search --method longrope2`: "
                                        "resume it with that command line and --resume");
  }
  return longrope::evolutionary_search(cp);
}

std::vector<longrope::eval_request> pending_requests(const longrope::evolutionary_search& s, const external_target& t) {
  const auto pts = s.ask_points();
  const auto base = static_cast<std::uint64_t>(s.progress().evaluations);
  std::vector<longrope::eval_request> out;
  out.reserve(pts.size());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    out.push_back(longrope::make_eval_request(base + i, t.target, pts[i], t.attention_factor));
  }
  return out;
}

nlohmann::json result_json(const longrope::evolutionary_search& s, const external_target& t) {
  const auto r = s.result();
  nlohmann::json out;
  const bool any = !r.population.empty();
  out["rescale_factors"] = any ? nlohmann::json(r.best.factors) : nlohmann::json();
  out["n_hat"] = any ? nlohmann::json(r.best.n_hat) : nlohmann::json();
  out["attention_factor"] = t.attention_factor;
  out["fitness"] = std::isfinite(r.best_score) ? nlohmann::json(r.best_score) : nlohmann::json();
  out["evaluations"] = r.evaluations;
  out["iterations"] = r.iterations;
  out["stop_reason"] = longrope::to_string(r.reason);
  out["context"] = t.target.target_length();
  out["original_max_position_embeddings"] = t.target.original_length;
  if (any) {
    longrope::rope_config cfg = longrope::to_rope_config(t.target, r.best);
    cfg.longrope.attention_factor = t.attention_factor;
    out["rope_scaling"] = longrope::to_rope_scaling_json(cfg);
  }
  return out;
}

}  // namespace longrope_cli
