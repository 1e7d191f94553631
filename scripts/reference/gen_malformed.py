#!/usr/bin/python3
"""Writes tests/data/malformed_configs.json: malformed config.json inputs, each
with the text its error message must contain (used by tests/test_json.cpp for
the library and tests/test_cli.cpp for the `longrope` binary).

  /usr/bin/python3 scripts/reference/gen_malformed.py
"""
import copy
import json
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "malformed_configs.json")

# A valid Phi-3-like config: head_dim 32, 16 pairs.
BASE = {"model_type": "phi3", "hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 131072,
        "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
        "rope_scaling": {"type": "longrope", "short_factor": [1.0] * 16, "long_factor": [2.0] * 16}}
cases = []


def mut(name, expect, edit):
    c = copy.deepcopy(BASE)
    edit(c)
    cases.append({"name": name, "expect": expect, "config": c})


def whole(name, expect, config):
    cases.append({"name": name, "expect": expect, "config": config})


def raw(name, expect, text):
    cases.append({"name": name, "expect": expect, "raw": text})


def sc(c):
    return c["rope_scaling"]


def yarn(c, drop=None, **kw):
    c["model_type"] = "llama"
    c["rope_scaling"] = dict({"type": "yarn", "factor": 8.0}, **kw)
    if drop:
        del c["rope_scaling"][drop]


mut("long_factor_count", "rope_scaling.long_factor: expected 16 numbers (rotary_dim / 2), got 15", lambda c: sc(c)["long_factor"].pop())
mut("short_factor_too_many", "rope_scaling.short_factor: expected 16 numbers (rotary_dim / 2), got 17", lambda c: sc(c)["short_factor"].append(1.0))
mut("short_factor_string", "rope_scaling.short_factor[3]: expected a number, got string", lambda c: sc(c)["short_factor"].__setitem__(3, "1.5"))
mut("short_factor_null_entry", "rope_scaling.short_factor[0]: expected a number, got null", lambda c: sc(c)["short_factor"].__setitem__(0, None))
mut("long_factor_negative", "rope_scaling.long_factor[0]: must be > 0", lambda c: sc(c)["long_factor"].__setitem__(0, -1.0))
mut("long_factor_zero", "rope_scaling.long_factor[15]: must be > 0", lambda c: sc(c)["long_factor"].__setitem__(15, 0))
mut("long_factor_not_array", "rope_scaling.long_factor: expected an array of numbers, got number", lambda c: sc(c).__setitem__("long_factor", 2))
mut("short_factor_missing", "rope_scaling.short_factor: missing", lambda c: sc(c).pop("short_factor"))
mut("type_missing", "rope_scaling.rope_type: missing", lambda c: sc(c).pop("type"))
mut("type_unknown", "rope_scaling.type: unknown rope type 'quantum'", lambda c: sc(c).__setitem__("type", "quantum"))
mut("type_not_string", "rope_scaling.type: expected a string, got number", lambda c: sc(c).__setitem__("type", 3))
mut("rope_theta_string", "rope_theta: expected a number, got string", lambda c: c.__setitem__("rope_theta", "10000"))
mut("rope_theta_negative", "rope_theta: must be > 0", lambda c: c.__setitem__("rope_theta", -1.0))
mut("rope_theta_one", "rope_theta: must not be 1", lambda c: c.__setitem__("rope_theta", 1))
mut("max_position_fraction", "max_position_embeddings: expected an integer", lambda c: c.__setitem__("max_position_embeddings", 131072.5))
mut("max_position_negative", "max_position_embeddings: must be >= 0", lambda c: c.__setitem__("max_position_embeddings", -5))
mut("max_position_missing", "max_position_embeddings: missing", lambda c: c.pop("max_position_embeddings"))
mut("original_zero", "original_max_position_embeddings: must be > 0", lambda c: c.__setitem__("original_max_position_embeddings", 0))
mut("original_string", "original_max_position_embeddings: expected an integer, got string", lambda c: c.__setitem__("original_max_position_embeddings", "4096"))
mut("head_dim_underivable", "head_dim: missing", lambda c: c.pop("hidden_size"))
mut("heads_missing", "num_attention_heads: missing", lambda c: c.pop("num_attention_heads"))
mut("heads_zero", "num_attention_heads: must be > 0", lambda c: c.__setitem__("num_attention_heads", 0))
mut("head_dim_string", "head_dim: expected an integer, got string", lambda c: c.__setitem__("head_dim", "32"))
mut("partial_too_big", "partial_rotary_factor: must be in (0, 1]", lambda c: c.__setitem__("partial_rotary_factor", 1.5))
mut("partial_odd_rotary", "partial_rotary_factor: gives rotary_dim 17", lambda c: c.__setitem__("partial_rotary_factor", 0.53125))
mut("rope_scaling_array", "rope_scaling: expected an object, got array", lambda c: c.__setitem__("rope_scaling", [1, 2]))
whole("config_array", "config: expected a JSON object, got array", [BASE])
mut("n_hat_negative", "rope_scaling.n_hat: must be >= 0", lambda c: sc(c).__setitem__("n_hat", -3))
mut("attention_factor_string", "rope_scaling.attention_factor: expected a number, got string", lambda c: sc(c).__setitem__("attention_factor", "1.19"))
mut("yarn_factor_missing", "rope_scaling.factor: missing", lambda c: yarn(c, drop="factor"))
mut("yarn_truncate_string", "rope_scaling.truncate: expected a boolean, got string", lambda c: yarn(c, truncate="yes"))
mut("yarn_beta_fast_negative", "rope_scaling.beta_fast: must be > 0", lambda c: yarn(c, beta_fast=-32))
mut("yarn_factor_zero", "rope_scaling.factor: must be > 0", lambda c: yarn(c, factor=0))
mut("linear_factor_null", "rope_scaling.factor: missing", lambda c: c.__setitem__("rope_scaling", {"type": "linear", "factor": None}))
mut("dynamic_no_max_position", "max_position_embeddings: missing",
    lambda c: (c.pop("max_position_embeddings"), c.__setitem__("rope_scaling", {"rope_type": "dynamic", "factor": 2.0})))
mut("llama3_band_reversed", "rope_scaling.high_freq_factor: must be > low_freq_factor",
    lambda c: c.__setitem__("rope_scaling", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                                             "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}))
mut("llama3_original_missing", "rope_scaling.original_max_position_embeddings: missing",
    lambda c: (c.pop("original_max_position_embeddings"),
               c.__setitem__("rope_scaling", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0})))
mut("rope_parameters_per_layer", "rope_parameters: per-layer-type parameters",
    lambda c: c.__setitem__("rope_parameters", {"full_attention": {"rope_type": "default", "rope_theta": 10000.0}}))
raw("invalid_json_truncated", "not valid JSON", '{"head_dim": 64,')
raw("invalid_json_nan", "not valid JSON", '{"head_dim": 64, "rope_theta": NaN}')
raw("invalid_json_empty", "not valid JSON", "")
raw("number_overflow", "not valid JSON", '{"head_dim": 64, "rope_theta": 1e999}')

with open(OUT, "w") as f:
    f.write('{"comment": "Malformed config.json inputs, each with the text its error must contain. '
            'Written by scripts/reference/gen_malformed.py.",\n "cases": [\n')
    f.write(",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in cases))
    f.write("\n]}\n")
print("wrote %s: %d cases" % (OUT, len(cases)))
