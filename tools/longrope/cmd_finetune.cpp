// `longrope finetune`: fine-tunes a llama2.c model at a target context with a
// RoPE scaling (the paper's stage after the search), writes the checkpoint,
// its JSON sidecar (context + scaling, picked up by eval / generate / search)
// and a training-state file for an exact resume. Progress on stderr, one JSON
// summary on stdout.
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <longrope/json.hpp>
#include <llama2c/checkpoint_writer.hpp>
#include <llama2c/init.hpp>
#include <llama2c/mixed_window.hpp>
#include <llama2c/passkey.hpp>
#include <llama2c/train.hpp>
#include <llama2c/train_loop.hpp>
#include <llama2c/train_data.hpp>
#include <llama2c/train_state.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kFinetuneHelp =
    "usage: longrope finetune --model M --tokenizer T (--text FILE | --tokens FILE | --sampled) --context N\n"
    "                         --out M2 [scaling flags] [--steps S] [--batch B] [--accum A] [--lr X]\n"
    "                         [--min-lr X] [--warmup W] [--decay cosine|linear|constant]\n"
    "                         [--weight-decay X] [--clip X] [--seed K] [--threads J] [--format v0|v1]\n"
    "                         [--data-end K] [--doc-mask] [--temperature X] [--state FILE]\n"
    "                         [--save-every K] [--resume STATE] [--max-seconds S]\n"
    "                         [--passkey-mix P] [--mixed-window Q] [--init SPEC (instead of --model)]\n"
    "\n"
    "Fine-tunes at N tokens per sequence with the given RoPE scaling (AdamW, warm-up, cosine or\n"
    "linear decay, gradient clipping and accumulation). Sequences are BOS + N-1 consecutive\n"
    "tokens of the training stream (BOS tokens inside a --tokens stream separate documents).\n"
    "Writes M2 (a llama2.c checkpoint), M2.json (the context and scaling, used by eval,\n"
    "generate and search on M2) and the training state (default M2.state). Progress on stderr;\n"
    "one JSON object on stdout: first_loss, final_loss, steps, tokens_seen, seconds, paths.\n"
    "\n"
    "  --text FILE        training text, encoded as run.c does\n"
    "  --tokens FILE      training token ids (whitespace-separated, BOS = 1 between documents)\n"
    "  --sampled          train on stories sampled from the model itself (--temperature, default 1)\n"
    "  --data-end K       train on stream tokens [0, K) only; default: the first quarter, the\n"
    "                     rest is held out (eval/search/demo evaluate from token n/4 on)\n"
    "  --steps S          optimizer steps (default 40)\n"
    "  --batch B          sequences per micro-batch (default 4)\n"
    "  --accum A          micro-batches per step (default 1)\n"
    "  --lr X             peak learning rate (default 5e-4); --min-lr X its end value (default lr/10)\n"
    "  --warmup W         linear warm-up steps (default 4)\n"
    "  --decay D          cosine (default), linear or constant\n"
    "  --weight-decay X   AdamW decay of the matrices (default 0)\n"
    "  --clip X           gradient-norm clip (default 1, 0: off)\n"
    "  --seed K           data-order seed (default 0)\n"
    "  --threads J        threads over batch rows (default 1); results depend on it, not on the run\n"
    "  --format F         v0 (legacy, run.c; default) or v1 (\"ak42\")\n"
    "  --doc-mask         attention does not cross BOS boundaries\n"
    "  --state FILE       where to write the training state (default M2.state)\n"
    "  --save-every K     also write checkpoint + state every K steps (default: at the end only)\n"
    "  --resume STATE     continue a run from its state file (same options), bit for bit\n"
    "  --max-seconds S    stop (and save) after the step that crosses S seconds\n"
    "  --passkey-mix P    with probability P per sequence (seeded by --seed), a synthetic passkey\n"
    "                     sample in `longrope passkey`'s format instead: filler sentences or\n"
    "                     training text, the 5-digit key line at a random depth, the question and\n"
    "                     the key (llama2c/passkey.hpp); needs --text or --tokens\n"
    "  --passkey-weight W the loss weight of those samples' answer tokens (default 1)\n"
    "  --passkey-format F passkey (default) or needle: LongRoPE2's needle windows instead (1-3\n"
    "                     7-digit \"special magic numbers\" in training text, the generator of\n"
    "                     search --method longrope2 --fitness needle, keys and numbers seeded by\n"
    "                     --seed; llama2c/needle.hpp)\n"
    "  --mixed-window Q   LongRoPE2's mixed context window training: with probability Q per\n"
    "                     sequence, documents of the model's trained length packed into it\n"
    "                     (BOS between them), trained with the original RoPE under the document\n"
    "                     mask; the other sequences with the given scaling (llama2c/mixed_window.hpp)\n"
    "  --init SPEC        train from scratch: a fresh model dim=D,layers=L,heads=H[,kv_heads=K]\n"
    "                     [,hidden=F],vocab=V[,seq_len=N] (llama2.c's init, seeded by --seed;\n"
    "                     seq_len, default 256, is the trained length pi/ntk/yarn scale from)\n";

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

int cmd_finetune(const args& a) {
  const option_parser opt(
      a,
      model_options(with_scaling_options({"--text", "--tokens", "--context", "--steps", "--batch", "--accum", "--lr",
                                          "--min-lr", "--warmup", "--decay", "--weight-decay", "--clip", "--seed",
                                          "--threads", "--out", "--format", "--data-end", "--temperature", "--state",
                                          "--save-every", "--resume", "--max-seconds", "--passkey-mix",
                                          "--init", "--mixed-window", "--passkey-weight",
                                          "--passkey-format"})),
      {"--doc-mask", "--sampled"});
  if (opt.help()) {
    std::fputs(kFinetuneHelp, stdout);
    std::fputs(kScalingHelp, stdout);
    return 0;
  }
  const std::int64_t context = option_parser::parse_int(opt.required("--context"), "--context");
  if (context < 2 || context > (1 << 20)) throw std::invalid_argument("--context: must be in [2, 1048576]");
  const std::string out_path = opt.required("--out");
  llama2c::train_options o;
  o.steps = opt.int_in("--steps", 40, 1, 100000000);
  o.batch = static_cast<int>(opt.int_in("--batch", 4, 1, 4096));
  o.accumulation = static_cast<int>(opt.int_in("--accum", 1, 1, 4096));
  o.threads = static_cast<int>(opt.int_in("--threads", 1, 1, 1024));
  o.warmup = opt.int_in("--warmup", 4, 0, 100000000);
  o.lr = opt.double_or("--lr", 5e-4);
  o.min_lr = opt.double_or("--min-lr", o.lr / 10);
  o.weight_decay = opt.double_or("--weight-decay", 0.0);
  o.clip = opt.double_or("--clip", 1.0);
  if (const auto d = opt.get("--decay")) o.decay = llama2c::parse_lr_decay(*d);
  o.doc_mask = opt.has("--doc-mask");
  o.validate();
  const std::int64_t seed = opt.int_in("--seed", 0, 0, std::numeric_limits<std::int64_t>::max());
  const std::string format = opt.get_or("--format", "v0");
  if (format != "v0" && format != "v1") throw std::invalid_argument("--format: expected v0 or v1, got '" + format + "'");
  const std::int64_t save_every = opt.int_in("--save-every", 0, 0, 100000000);
  const double max_seconds = opt.double_or("--max-seconds", 0.0);
  if (max_seconds < 0.0) throw std::invalid_argument("--max-seconds: must be >= 0");
  const std::string state_path = opt.get_or("--state", out_path + ".state");
  const bool sampled = opt.has("--sampled");
  if (sampled && (opt.has("--text") || opt.has("--tokens"))) {
    throw std::invalid_argument("give one of --text, --tokens or --sampled");
  }
  if (!sampled && opt.has("--temperature")) throw std::invalid_argument("--temperature needs --sampled");
  const double temperature = opt.double_or("--temperature", 1.0);
  const llama2c::scaling sc = parse_scaling(opt);
  const double passkey_mix = opt.double_or("--passkey-mix", 0.0);
  if (!(passkey_mix >= 0.0 && passkey_mix <= 1.0)) throw std::invalid_argument("--passkey-mix: must be in [0, 1]");
  if (passkey_mix > 0.0 && sampled) throw std::invalid_argument("--passkey-mix needs --text or --tokens (its filler text)");
  const double mixed_window = opt.double_or("--mixed-window", 0.0);
  if (!(mixed_window >= 0.0 && mixed_window <= 1.0)) throw std::invalid_argument("--mixed-window: must be in [0, 1]");
  if (mixed_window > 0.0 && sampled) throw std::invalid_argument("--mixed-window needs --text or --tokens");
  const double passkey_weight = opt.double_or("--passkey-weight", 1.0);
  if (!(passkey_weight >= 0.0 && passkey_weight <= 1e4)) throw std::invalid_argument("--passkey-weight: must be in [0, 10000]");
  if (opt.has("--passkey-weight") && !(passkey_mix > 0.0)) throw std::invalid_argument("--passkey-weight needs --passkey-mix");
  const std::string passkey_format = opt.get_or("--passkey-format", "passkey");
  if (passkey_format != "passkey" && passkey_format != "needle") {
    throw std::invalid_argument("--passkey-format: expected passkey or needle, got '" + passkey_format + "'");
  }
  if (opt.has("--passkey-format") && !(passkey_mix > 0.0)) throw std::invalid_argument("--passkey-format needs --passkey-mix");
  const auto init = opt.get("--init");
  if (init && opt.has("--model")) throw std::invalid_argument("give --model or --init, not both");

  loaded_model m;
  if (init) {
    m.ck = llama2c::random_checkpoint(llama2c::parse_init_spec(*init), static_cast<std::uint64_t>(seed));
    m.tok = llama2c::tokenizer::load(opt.required("--tokenizer"), m.ck.config.vocab_size);
  } else {
    m = load_model(opt);
  }
  const auto f = llama2c::make_frequencies(m.ck.config, sc, context);
  const auto f_short = llama2c::make_frequencies(m.ck.config, llama2c::scaling{}, context);  // original RoPE
  llama2c::trainer<float> tr(m.ck, o);
  std::unique_ptr<llama2c::sequence_source> src;
  std::string data_desc;
  std::int64_t data_end = 0, stream_tokens = 0;
  if (sampled) {
    src = std::make_unique<llama2c::sampled_source<float>>(tr.model(), context, temperature,
                                                           static_cast<std::uint64_t>(seed));
    data_desc = "sampled t=" + fmt(temperature);
  } else {
    auto stream = read_stream(opt, m);
    stream_tokens = static_cast<std::int64_t>(stream.size());
    data_end = opt.int_or("--data-end", stream_tokens / 4);
    if (data_end < 1 || data_end > stream_tokens) {
      throw std::invalid_argument("--data-end: must be in [1, " + std::to_string(stream_tokens) +
                                  "] (the stream's tokens), got " + std::to_string(data_end));
    }
    stream.resize(static_cast<std::size_t>(data_end));
    std::vector<int> filler = passkey_mix > 0.0 ? stream : std::vector<int>{};
    src = std::make_unique<llama2c::packed_stream_source>(std::move(stream), context, static_cast<std::uint64_t>(seed));
    data_desc = "stream[0," + std::to_string(data_end) + ")";
    if (mixed_window > 0.0) {
      src = std::make_unique<llama2c::mixed_window_source>(std::move(src), m.ck.config.seq_len, mixed_window,
                                                           static_cast<std::uint64_t>(seed) ^ 0x4D49584544574E44ULL);
      data_desc += " mixed_window=" + fmt(mixed_window) + "/" + std::to_string(m.ck.config.seq_len);
    }
    if (passkey_mix > 0.0) {
      src = std::make_unique<llama2c::passkey_mix_source>(std::move(src), m.tok, std::move(filler), passkey_mix,
                                                          static_cast<std::uint64_t>(seed) ^ 0x5053534B45594D58ULL,
                                                          static_cast<float>(passkey_weight),
                                                          passkey_format == "needle" ? llama2c::passkey_format::needle
                                                                                     : llama2c::passkey_format::passkey);
      data_desc += " passkey_mix=" + fmt(passkey_mix);
      if (passkey_format == "needle") data_desc += " passkey_format=needle";
      if (passkey_weight != 1.0) data_desc += " passkey_weight=" + fmt(passkey_weight);
    }
  }
  // Everything the trajectory depends on: a resumed run must use the same.
  std::ostringstream fp;
  fp << "context=" << context << " steps=" << o.steps << " batch=" << o.batch << " accum=" << o.accumulation
     << " threads=" << o.threads << " lr=" << fmt(o.lr) << " min_lr=" << fmt(o.min_lr) << " warmup=" << o.warmup
     << " decay=" << llama2c::to_string(o.decay) << " wd=" << fmt(o.weight_decay) << " clip=" << fmt(o.clip)
     << " doc_mask=" << o.doc_mask << " seed=" << seed << " data=" << data_desc << " method="
     << llama2c::to_string(sc.method) << " n_hat=" << f.n_hat() << " att=" << fmt(f.attention_factor()) << " factors=";
  for (double x : f.rescale_factors()) fp << fmt(x) << ",";
  if (init) fp << " init=" << *init;
  if (const auto r = opt.get("--resume")) {
    llama2c::load_train_state(tr, *src, fp.str(), *r);
    std::fprintf(stderr, "finetune: resumed %s at step %lld\n", r->c_str(), static_cast<long long>(tr.step_count()));
  }

  nlohmann::json sidecar;
  auto save = [&]() {
    llama2c::write_checkpoint(tr.model().to_checkpoint(), out_path, format == "v0" ? 0 : 1);
    llama2c::save_train_state(tr, *src, fp.str(), state_path);
    sidecar = nlohmann::json::object();
    sidecar["format"] = "longrope-finetune-1";
    sidecar["context"] = context;
    sidecar["original_max_position_embeddings"] = m.ck.config.seq_len;
    nlohmann::json s;
    s["method"] = llama2c::to_string(sc.method);
    if (sc.method == llama2c::scaling_method::longrope) s["factors"] = sc.factors;
    s["n_hat"] = sc.n_hat;
    s["attention_factor"] = sc.attention_factor ? nlohmann::json(*sc.attention_factor) : nlohmann::json();
    sidecar["scaling"] = s;
    sidecar["rope_scaling"] = longrope::to_rope_scaling_json(llama2c::make_rope_config(m.ck.config, sc, context));
    sidecar["base_model"] = init ? "init:" + *init : opt.required("--model");
    sidecar["steps"] = tr.step_count();
    sidecar["tokens_seen"] = tr.tokens_seen();
    longrope::write_file_atomic(sidecar_path(out_path), sidecar.dump(2) + "\n");
  };

  std::fprintf(stderr, "finetune: %s; context %lld, %s, %lld steps x %d x %d sequences, %d thread(s)\n",
               src->describe().c_str(), static_cast<long long>(context), llama2c::to_string(sc.method),
               static_cast<long long>(o.steps), o.batch, o.accumulation, o.threads);
  const std::int64_t start_tokens = tr.tokens_seen();
  const auto loop = llama2c::run_train_loop<float>(
      tr, *src, f, {max_seconds, save_every, mixed_window > 0.0 ? &f_short : nullptr},
      [&](const llama2c::step_result& r, double secs, std::int64_t done) {
        const double left = secs / static_cast<double>(done) * static_cast<double>(o.steps - tr.step_count());
        std::fprintf(stderr,
                     "finetune: step %lld/%lld  loss %.5f  lr %.3g  |g| %.3g  %.0f tokens/s  %.1f s  ~%.0f s left\n",
                     static_cast<long long>(tr.step_count()), static_cast<long long>(o.steps), r.loss, r.lr,
                     r.grad_norm, static_cast<double>(tr.tokens_seen() - start_tokens) / secs, secs, left);
      },
      save);
  const std::int64_t start_step = tr.step_count() - static_cast<std::int64_t>(loop.losses.size());
  const double first_loss = loop.first_loss, last_loss = loop.last_loss;
  const bool stopped = loop.stopped_early;
  save();
  const double secs = loop.seconds;

  nlohmann::json out;
  out["first_loss"] = json_number(first_loss);
  out["final_loss"] = json_number(last_loss);
  out["steps"] = tr.step_count();
  out["steps_this_run"] = tr.step_count() - start_step;
  out["stopped_early"] = stopped;
  out["tokens_seen"] = tr.tokens_seen();
  out["seconds"] = secs;
  out["tokens_per_second"] = json_number(static_cast<double>(tr.tokens_seen() - start_tokens) / secs);
  out["context"] = context;
  put_scaling(out, sc, f);
  out["data"] = src->describe();
  if (!sampled) {
    out["data_end"] = data_end;
    out["stream_tokens"] = stream_tokens;
  }
  out["out"] = out_path;
  out["format"] = format;
  out["sidecar"] = sidecar_path(out_path);
  out["state"] = state_path;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace longrope_cli
