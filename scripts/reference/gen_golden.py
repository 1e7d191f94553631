#!/usr/bin/python3
"""Independent golden values for longrope's frequencies and cos/sin tables.

Written from the formulas (docs/methods.md, transformers' modeling_rope_utils
semantics), not from the C++ code: every quantity is computed in mpmath with
50 significant digits and rounded to the nearest double only when written.

  /usr/bin/python3 scripts/reference/gen_golden.py            # rewrites tests/data/golden.json
  /usr/bin/python3 scripts/reference/gen_golden.py --check    # exits 1 if the file is stale

Inputs: the config.json files in tests/data/configs (the four real Phi configs,
copied from shared/reference/hf-configs, and synthetic ones for every method).
Output: tests/data/golden.json with, per case (config, seq_len):
  rope_type, head_dim, rotary_dim, factor_set, n_hat, attention_factor,
  inv_freq, rescale_factors (theta_i / inv_freq_i)     -- the true values
  positions, cos, sin [n_positions][rotary_dim/2]      -- attention_factor * cos/sin(p * f_i(p))
      with f_i(p) = theta_i if p < n_hat else inv_freq_i, exactly (no rounding of the angle)
  cos_f32, sin_f32                                      -- float32 mode: the angle
      float32(float32(inv_freq_i) * float32(p)) as torch forms it, then exact cos/sin times
      float32(attention_factor); the C++ float32 mode adds one float cos/sin rounding to this.
and range_cases: exact cos/sin over contiguous position ranges (crossing n_hat,
around 4096, 131072, 2^21 and up to 2^24 - 1) for fill_table's range overload.
"""
import argparse
import json
import os
import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 50
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CONFIGS = os.path.join(ROOT, "tests", "data", "configs")
OUT = os.path.join(ROOT, "tests", "data", "golden.json")

POSITIONS = [0, 1, 4095, 4096, 131071, 2**21, 2**24 - 1]

# (config file, seq_len); seq_len 0 = unknown (short LongRoPE factors, no dynamic growth).
CASES = [
    ("phi-3-mini-128k-instruct-2024-04-su.json", 0),
    ("phi-3-mini-128k-instruct-2024-04-su.json", 131072),
    ("phi-3-mini-128k-instruct.json", 0),
    ("phi-3-mini-128k-instruct.json", 131072),
    ("phi-3.5-mini-instruct.json", 0),
    ("phi-3.5-mini-instruct.json", 131072),
    ("phi-4-mini-instruct.json", 0),
    ("phi-4-mini-instruct.json", 131072),
    ("plain-llama2.json", 0),
    ("linear-partial-neox.json", 0),
    ("ntk-static.json", 0),
    ("dynamic-ntk.json", 0),
    ("dynamic-ntk.json", 16384),
    ("yarn-plain.json", 0),
    ("yarn-deepseek-mscale.json", 0),
    ("yarn-qwen-notruncate.json", 0),
    ("llama3.json", 0),
    ("longrope-nhat-partial.json", 0),
    ("longrope-nhat-partial.json", 65536),
]


def mpf(x):
    return mp.mpf(x)


def resolve(cfg):
    """The method and its parameters from a config.json dict (transformers' rules)."""
    v5 = cfg.get("rope_parameters") is not None
    block = cfg.get("rope_parameters") if v5 else cfg.get("rope_scaling")
    block = block or {}
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    prf = block.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0))
    d = int(head_dim * prf)
    base = mpf(block.get("rope_theta", cfg.get("rope_theta", 10000.0)))
    name = block.get("rope_type", block.get("type", "default"))
    if name == "su" or (name == "yarn" and cfg.get("model_type") == "phi3"):
        name = "longrope"
    return dict(v5=v5, block=block, head_dim=head_dim, d=d, base=base, name=name,
                max_pos=cfg.get("max_position_embeddings"), top_orig=cfg.get("original_max_position_embeddings"))


def thetas(base, d):
    return [base ** (-mpf(2 * i) / d) for i in range(d // 2)]


def mscale(s, k=1):
    return mpf(1) if s <= 1 else mpf("0.1") * k * mp.log(s) + 1


def frequencies(r, seq_len):
    """(inv_freq list, theta list, attention factor, factor set name or None, n_hat)."""
    d, base, b, name = r["d"], r["base"], r["block"], r["name"]
    th = thetas(base, d)
    att = mpf(1)
    fset = None
    n_hat = int(b.get("n_hat", 0) or 0)
    if name == "default":
        inv = th
    elif name == "linear":
        inv = [t / mpf(b["factor"]) for t in th]
    elif name == "ntk":
        s = mpf(b["factor"])
        inv = thetas(base * s ** (mpf(d) / (d - 2)), d)
    elif name == "dynamic":
        s, maxp = mpf(b["factor"]), mpf(r["max_pos"])
        L = max(mpf(seq_len), maxp)
        inv = thetas(base * ((s * L / maxp) - (s - 1)) ** (mpf(d) / (d - 2)), d)
    elif name == "yarn":
        if r["v5"]:
            l0 = mpf(b.get("original_max_position_embeddings") or r["top_orig"] or r["max_pos"])
            s = mpf(b["factor"]) if b.get("factor") is not None else mpf(r["max_pos"]) / l0
        elif "original_max_position_embeddings" in b:
            l0 = mpf(b["original_max_position_embeddings"])
            s = mpf(r["max_pos"]) / l0
        else:
            l0 = mpf(r["max_pos"])
            s = mpf(b["factor"])
        beta_fast = mpf(b.get("beta_fast") or 32)
        beta_slow = mpf(b.get("beta_slow") or 1)

        def corr(rot):
            return d * mp.log(l0 / (rot * 2 * mp.pi)) / (2 * mp.log(base))

        lo, hi = corr(beta_fast), corr(beta_slow)
        if b.get("truncate", True):
            lo, hi = mp.floor(lo), mp.ceil(hi)
        lo, hi = max(lo, mpf(0)), min(hi, mpf(d - 1))
        if lo == hi:
            hi += mpf("0.001")
        inv = []
        for i, t in enumerate(th):
            ramp = min(max((i - lo) / (hi - lo), mpf(0)), mpf(1))
            inv.append(t / s * ramp + t * (1 - ramp))
        if b.get("attention_factor") is not None:
            att = mpf(b["attention_factor"])
        elif b.get("mscale") and b.get("mscale_all_dim"):
            att = mscale(s, mpf(b["mscale"])) / mscale(s, mpf(b["mscale_all_dim"]))
        else:
            att = mscale(s)
    elif name == "llama3":
        s, lo_ff, hi_ff = mpf(b["factor"]), mpf(b["low_freq_factor"]), mpf(b["high_freq_factor"])
        l0 = mpf(b.get("original_max_position_embeddings") or r["top_orig"])
        low_wl, high_wl = l0 / lo_ff, l0 / hi_ff
        inv = []
        for t in th:
            wl = 2 * mp.pi / t
            if wl > low_wl:
                inv.append(t / s)
            elif wl < high_wl:
                inv.append(t)
            else:
                sm = (l0 / wl - lo_ff) / (hi_ff - lo_ff)
                inv.append((1 - sm) * t / s + sm * t)
    elif name == "longrope":
        orig = r["top_orig"]
        if b.get("original_max_position_embeddings") is not None and (r["v5"] or orig is None):
            orig = b["original_max_position_embeddings"]
        factor = b.get("factor")
        if orig is not None:
            l0 = mpf(orig)
            s = mpf(factor) if (r["v5"] and factor is not None) else mpf(r["max_pos"]) / l0
        else:
            l0 = mpf(r["max_pos"])
            s = mpf(factor if factor is not None else 1)
        use_long = seq_len > l0
        fset = "long" if use_long else "short"
        lam = b["long_factor"] if use_long else b["short_factor"]
        assert len(lam) == d // 2
        inv = [t / mpf(x) for t, x in zip(th, lam)]
        if b.get("attention_factor") is not None:
            att = mpf(b["attention_factor"])
        else:
            att = mpf(1) if s <= 1 else mp.sqrt(1 + mp.log(s) / mp.log(l0))
    else:
        raise SystemExit("unknown rope type " + name)
    return inv, th, att, fset, n_hat


def f32_angle(inv, p):
    # torch: inv_freq (float32) @ position (float32) -> one float32 multiply.
    return float(np.float32(np.float32(float(inv)) * np.float32(p)))


def make_case(fname, seq_len):
    with open(os.path.join(CONFIGS, fname)) as f:
        cfg = json.load(f)
    r = resolve(cfg)
    inv, th, att, fset, n_hat = frequencies(r, seq_len)
    positions = list(POSITIONS)
    if n_hat > 0:
        positions = sorted(set(positions + [n_hat - 1, n_hat, n_hat + 1]))
    cos, sin, cos32, sin32 = [], [], [], []
    att32 = mpf(float(np.float32(float(att))))
    for p in positions:
        freqs = [th[i] if p < n_hat else inv[i] for i in range(len(inv))]
        cos.append([float(att * mp.cos(p * f)) for f in freqs])
        sin.append([float(att * mp.sin(p * f)) for f in freqs])
        a32 = [mpf(f32_angle(f, p)) for f in freqs]
        cos32.append([float(att32 * mp.cos(a)) for a in a32])
        sin32.append([float(att32 * mp.sin(a)) for a in a32])
    name = os.path.splitext(fname)[0] + ("" if seq_len == 0 else "@%d" % seq_len)
    rtype = {"default": "default"}.get(r["name"], r["name"])
    return {
        "name": name,
        "config": "configs/" + fname,
        "seq_len": seq_len,
        "rope_type": rtype,
        "head_dim": r["head_dim"],
        "rotary_dim": r["d"],
        "factor_set": fset,
        "n_hat": n_hat,
        "attention_factor": float(att),
        "inv_freq": [float(x) for x in inv],
        "rescale_factors": [float(t / x) for t, x in zip(th, inv)],
        "positions": positions,
        "cos": cos,
        "sin": sin,
        "cos_f32": cos32,
        "sin_f32": sin32,
    }


# Contiguous position ranges (begin, end) for fill_table's range overload, which
# may use a different algorithm (recurrences between exact restarts) than the
# position-list overload: exact-mode cos/sin only.
RANGE_CASES = [
    ("phi-3.5-mini-instruct.json", 131072,
     [(0, 40), (4080, 4120), (131050, 131090), (2**24 - 40, 2**24)]),
    ("longrope-nhat-partial.json", 65536, [(0, 40), (2**21 - 20, 2**21 + 20)]),
]


def make_range_case(fname, seq_len, ranges):
    with open(os.path.join(CONFIGS, fname)) as f:
        cfg = json.load(f)
    r = resolve(cfg)
    inv, th, att, fset, n_hat = frequencies(r, seq_len)
    out = []
    for b, e in ranges:
        cos, sin = [], []
        for p in range(b, e):
            freqs = [th[i] if p < n_hat else inv[i] for i in range(len(inv))]
            cos.append([float(att * mp.cos(p * f)) for f in freqs])
            sin.append([float(att * mp.sin(p * f)) for f in freqs])
        out.append({"begin": b, "end": e, "cos": cos, "sin": sin})
    return {"name": os.path.splitext(fname)[0] + "@%d" % seq_len, "config": "configs/" + fname,
            "seq_len": seq_len, "ranges": out}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the checked-in file instead of writing it")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    doc = {
        "generator": "scripts/reference/gen_golden.py (mpmath, %d digits; independent of the C++ code)" % mp.mp.dps,
        "cases": [make_case(f, s) for f, s in CASES],
        "range_cases": [make_range_case(f, s, r) for f, s, r in RANGE_CASES],
    }
    text = json.dumps(doc, indent=None, separators=(",", ":")) + "\n"
    # One case per line keeps diffs readable.
    text = text.replace('{"name"', '\n{"name"').replace('{"begin"', '\n{"begin"')
    if a.check:
        with open(a.out) as f:
            ok = f.read() == text
        print("golden.json is " + ("up to date" if ok else "STALE: regenerate it"))
        return 0 if ok else 1
    with open(a.out, "w") as f:
        f.write(text)
    print("wrote %s: %d cases" % (a.out, len(doc["cases"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
