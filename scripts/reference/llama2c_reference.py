#!/usr/bin/python3
"""Independent float64 reference for the toy llama2.c transformer (numpy only).

Written from the llama2.c formats and formulas (docs/toy-transformer.md), sharing
no code with models/include/llama2c: its own checkpoint parser, its own
tokenizer (a literal port of run.c's O(n^2) encode, and a heap version for long
texts, checked against each other), its own RoPE frequencies for none / PI / NTK /
YaRN / LongRoPE, and a plain float64 forward with the full causal score matrix.

Writes tests/data/stories260K_reference.json, read by tests/test_model_stories.cpp:
  - tokenizer cases (short strings and their ids),
  - the token stream of valid_head.txt: length and FNV-1a-64 of the ids (no text-derived data),
  - perplexity cases: (context, windows, method, factors, n_hat, attention factor)
    -> summed NLL, scored tokens, perplexity, with the paper's windows protocol.

Usage (from the repository root):
  /usr/bin/python3 scripts/reference/llama2c_reference.py [--shared ../shared] [--out tests/data/stories260K_reference.json]
Takes about a minute on one core.
"""
import argparse
import hashlib
import heapq
import json
import math
import os
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------
# checkpoint


def load_checkpoint(path):
    b = open(path, "rb").read()
    magic = struct.unpack_from("<I", b, 0)[0]
    if magic == 0x616B3432:
        version = struct.unpack_from("<i", b, 4)[0]
        assert version == 1, version
        dim, hidden, L, nh, nkv, vocab, seq = struct.unpack_from("<7i", b, 8)
        shared = b[36] == 1
        off = 256
    else:
        dim, hidden, L, nh, nkv, vocab, seq = struct.unpack_from("<7i", b, 0)
        shared = vocab > 0
        vocab = abs(vocab)
        version = 0
        off = 28
    hs = dim // nh
    kv = hs * nkv
    data = np.frombuffer(b, dtype="<f4", offset=off).astype(np.float64)
    pos = [0]

    def take(*shape):
        n = int(np.prod(shape))
        a = data[pos[0]:pos[0] + n].reshape(shape)
        pos[0] += n
        return a

    w = {}
    if version == 0:
        w["emb"] = take(vocab, dim)
        w["rms_att"] = take(L, dim)
        w["wq"] = take(L, dim, dim)
        w["wk"] = take(L, kv, dim)
        w["wv"] = take(L, kv, dim)
        w["wo"] = take(L, dim, dim)
        w["rms_ffn"] = take(L, dim)
        w["w1"] = take(L, hidden, dim)
        w["w2"] = take(L, dim, hidden)
        w["w3"] = take(L, hidden, dim)
        w["rms_final"] = take(dim)
        take(seq, hs)  # freq_cis_real + freq_cis_imag
    else:
        w["rms_att"] = take(L, dim)
        w["rms_ffn"] = take(L, dim)
        w["rms_final"] = take(dim)
        w["emb"] = take(vocab, dim)
        w["wq"] = take(L, dim, dim)
        w["wk"] = take(L, kv, dim)
        w["wv"] = take(L, kv, dim)
        w["wo"] = take(L, dim, dim)
        w["w1"] = take(L, hidden, dim)
        w["w2"] = take(L, dim, hidden)
        w["w3"] = take(L, hidden, dim)
    w["cls"] = w["emb"] if shared else take(vocab, dim)
    assert pos[0] == data.size, (pos[0], data.size)
    cfg = dict(dim=dim, hidden=hidden, layers=L, heads=nh, kv_heads=nkv, vocab=vocab, seq_len=seq, head_size=hs)
    return cfg, w


# ---------------------------------------------------------------------------
# tokenizer


def load_tokenizer(path, vocab_size):
    b = open(path, "rb").read()
    off = 4
    pieces, scores = [], []
    for _ in range(vocab_size):
        s, n = struct.unpack_from("<fi", b, off)
        off += 8
        pieces.append(b[off:off + n])
        scores.append(np.float32(s))
        off += n
    assert off == len(b)
    index = {}
    for i, p in enumerate(pieces):
        index.setdefault(p, i)
    return pieces, scores, index


def initial_tokens(text, pieces, index, bos):
    """run.c: BOS, dummy prefix, code points (<= 4 bytes) or byte fallback."""
    toks = [1] if bos else []
    if text:
        toks.append(index[b" "])
    buf = b""
    for i, c in enumerate(text):
        if (c & 0xC0) != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = text[i + 1] if i + 1 < len(text) else 0
        if (nxt & 0xC0) == 0x80 and len(buf) < 4:
            continue
        if buf in index:
            toks.append(index[buf])
        else:
            toks.extend(x + 3 for x in buf)
        buf = b""
    return toks


def encode_literal(text, pieces, scores, index, bos=False, eos=False):
    """run.c's merge loop verbatim: rescan, best score, leftmost on ties."""
    toks = initial_tokens(text, pieces, index, bos)
    while True:
        best, best_id, best_idx = np.float32(-1e10), -1, -1
        for i in range(len(toks) - 1):
            j = index.get(pieces[toks[i]] + pieces[toks[i + 1]])
            if j is not None and scores[j] > best:
                best, best_id, best_idx = scores[j], j, i
        if best_idx == -1:
            break
        toks[best_idx:best_idx + 2] = [best_id]
    if eos:
        toks.append(2)
    return toks


def encode_heap(text, pieces, scores, index, bos=False, eos=False):
    """The same merges with a heap keyed by (-score, left position)."""
    toks = initial_tokens(text, pieces, index, bos)
    n = len(toks)
    nxt = list(range(1, n)) + [-1]
    prv = list(range(-1, n - 1))
    alive = [True] * n
    ver = [0] * n
    heap = []

    def push(l, r):
        if l < 0 or r < 0:
            return
        j = index.get(pieces[toks[l]] + pieces[toks[r]])
        if j is not None and scores[j] > np.float32(-1e10):
            heapq.heappush(heap, (-float(scores[j]), l, r, ver[l], ver[r], j))

    for i in range(n - 1):
        push(i, i + 1)
    while heap:
        _, l, r, vl, vr, j = heapq.heappop(heap)
        if not (alive[l] and alive[r] and nxt[l] == r and ver[l] == vl and ver[r] == vr):
            continue
        toks[l] = j
        ver[l] += 1
        alive[r] = False
        nxt[l] = nxt[r]
        if nxt[r] >= 0:
            prv[nxt[r]] = l
        push(prv[l], l)
        push(l, nxt[l])
    out = [toks[i] for i in range(n) if alive[i]]
    if eos:
        out.append(2)
    return out


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for x in ids:
        for byte in struct.pack("<i", x):
            h ^= byte
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# ---------------------------------------------------------------------------
# RoPE frequencies (transformers' semantics, float64)


def frequencies(method, d, L0, context, factors=None, attention_factor=None, base=10000.0):
    """Returns (inv_freq[d/2], attention factor)."""
    i = np.arange(d // 2, dtype=np.float64)
    theta = base ** (-2.0 * i / d)
    s = max(1.0, context / L0)
    att = 1.0
    if method == "none":
        inv = theta
    elif method == "pi":
        inv = theta / s
    elif method == "ntk":
        inv = (base * s ** (d / (d - 2.0))) ** (-2.0 * i / d)
    elif method == "yarn":
        def corr(rot):
            return d * math.log(L0 / (rot * 2 * math.pi)) / (2 * math.log(base))
        low = max(math.floor(corr(32.0)), 0.0)
        high = min(math.ceil(corr(1.0)), d - 1.0)
        if low == high:
            high += 0.001
        ramp = np.clip((i - low) / (high - low), 0.0, 1.0)
        inv = theta / s * ramp + theta * (1.0 - ramp)
        att = 0.1 * math.log(s) + 1.0 if s > 1.0 else 1.0
    elif method == "longrope":
        inv = theta / np.asarray(factors, dtype=np.float64)
    else:
        raise ValueError(method)
    if attention_factor is not None:
        att = attention_factor
    return theta, inv, att


# ---------------------------------------------------------------------------
# forward


def rmsnorm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * w


def rope(x, theta, inv, att, n_hat, heads, hs):
    """Interleaved pairs (2j, 2j+1); positions p < n_hat use theta."""
    T = x.shape[0]
    p = np.arange(T, dtype=np.float64)[:, None]
    freq = np.where(p < n_hat, theta[None, :], inv[None, :])
    ang = p * freq  # T x d/2
    c, s = att * np.cos(ang), att * np.sin(ang)
    x = x.reshape(T, heads, hs // 2, 2)
    x0, x1 = x[..., 0], x[..., 1]
    c, s = c[:, None, :], s[:, None, :]
    out = np.stack([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)
    return out.reshape(T, heads * hs)


def window_nll(cfg, w, tokens, theta, inv, att, n_hat):
    T = len(tokens)
    hs, nh, nkv = cfg["head_size"], cfg["heads"], cfg["kv_heads"]
    grp = nh // nkv
    x = w["emb"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for l in range(cfg["layers"]):
        h = rmsnorm(x, w["rms_att"][l])
        q = rope(h @ w["wq"][l].T, theta, inv, att, n_hat, nh, hs)
        k = rope(h @ w["wk"][l].T, theta, inv, att, n_hat, nkv, hs)
        v = h @ w["wv"][l].T
        out = np.empty_like(q)
        for head in range(nh):
            g = head // grp
            qh = q[:, head * hs:(head + 1) * hs]
            kh = k[:, g * hs:(g + 1) * hs]
            vh = v[:, g * hs:(g + 1) * hs]
            sc = qh @ kh.T / math.sqrt(hs) + mask
            sc -= sc.max(axis=1, keepdims=True)
            p = np.exp(sc)
            p /= p.sum(axis=1, keepdims=True)
            out[:, head * hs:(head + 1) * hs] = p @ vh
        x = x + out @ w["wo"][l].T
        h = rmsnorm(x, w["rms_ffn"][l])
        a = h @ w["w1"][l].T
        x = x + ((a / (1.0 + np.exp(-a))) * (h @ w["w3"][l].T)) @ w["w2"][l].T
    x = rmsnorm(x, w["rms_final"])
    logits = x @ w["cls"].T
    m = logits.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    tgt = np.asarray(tokens[1:])
    return float(np.sum(lse[:-1] - logits[np.arange(T - 1), tgt]))


def greedy(cfg, w, steps):
    theta, inv, att = frequencies("none", cfg["head_size"], cfg["seq_len"], cfg["seq_len"])
    toks = [1]
    for _ in range(steps):
        # full recomputation: simple and independent of any cache
        T = len(toks)
        hs, nh, nkv = cfg["head_size"], cfg["heads"], cfg["kv_heads"]
        x = w["emb"][toks]
        mask = np.triu(np.full((T, T), -np.inf), k=1)
        for l in range(cfg["layers"]):
            h = rmsnorm(x, w["rms_att"][l])
            q = rope(h @ w["wq"][l].T, theta, inv, att, 0, nh, hs)
            k = rope(h @ w["wk"][l].T, theta, inv, att, 0, nkv, hs)
            v = h @ w["wv"][l].T
            out = np.empty_like(q)
            for head in range(nh):
                g = head // (nh // nkv)
                sc = q[:, head * hs:(head + 1) * hs] @ k[:, g * hs:(g + 1) * hs].T / math.sqrt(hs) + mask
                p = np.exp(sc - sc.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                out[:, head * hs:(head + 1) * hs] = p @ v[:, g * hs:(g + 1) * hs]
            x = x + out @ w["wo"][l].T
            h = rmsnorm(x, w["rms_ffn"][l])
            a = h @ w["w1"][l].T
            x = x + ((a / (1.0 + np.exp(-a))) * (h @ w["w3"][l].T)) @ w["w2"][l].T
        logits = rmsnorm(x[-1:], w["rms_final"]) @ w["cls"].T
        nxt = int(np.argmax(logits[0]))
        if nxt == 1:
            break
        toks.append(nxt)
    return toks


# ---------------------------------------------------------------------------

TOKENIZER_CASES = [
    "",
    "a",
    "Once upon a time, there was a little girl named Lily.",
    "Hello world! 123 \t tabs\nnewlines\n\n",
    "caf\u00e9 na\u00efve \u2014 \u201cquotes\u201d \u2122 \U0001F600 \u4e2d\u6587",
    "\u00e9\u00e9\u00e9 \x01\x7f ~[]",
]

PERPLEXITY_CASES = [
    # context, windows, method, factors, n_hat, attention factor
    (512, 2, "none", None, 0, None),
    (2048, 1, "none", None, 0, None),
    (2048, 1, "pi", None, 0, None),
    (2048, 1, "ntk", None, 0, None),
    (2048, 1, "yarn", None, 0, None),
    (2048, 1, "longrope", [1.0, 1.3, 2.5, 4.4], 8, 1.1),
    (4096, 1, "none", None, 0, None),
    (4096, 1, "longrope", [1.0, 1.5, 4.0, 9.0], 0, None),
]


def write_json(out, path):
    """One line per top-level key and per list entry: diff-friendly, compact."""
    lines = []
    for i, (k, v) in enumerate(out.items()):
        end = "," if i + 1 < len(out) else ""
        if isinstance(v, list) and v and isinstance(v[0], dict):
            items = [json.dumps(e, ensure_ascii=True) for e in v]
            lines.append(f" {json.dumps(k)}: [\n  " + ",\n  ".join(items) + f"\n ]{end}")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=True)}{end}")
    with open(path, "w") as f:
        f.write("{\n" + "\n".join(lines) + "\n}\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "stories260K_reference.json"))
    args = ap.parse_args()
    mdir = os.path.join(args.shared, "models", "stories260K")
    text_path = os.path.join(args.shared, "data", "tinystories", "valid_head.txt")
    cfg, w = load_checkpoint(os.path.join(mdir, "stories260K.bin"))
    pieces, scores, index = load_tokenizer(os.path.join(mdir, "tok512.bin"), cfg["vocab"])

    cases = []
    for t in TOKENIZER_CASES:
        b = t.encode("utf-8")
        lit = encode_literal(b, pieces, scores, index, bos=True, eos=False)
        assert lit == encode_heap(b, pieces, scores, index, bos=True), t
        cases.append({"text": t, "bos": True, "eos": False, "ids": lit})
    # invalid UTF-8 (lone continuation bytes, truncated sequence): byte fallback paths
    raw = b"ab\x80\x80\x80\x80\x80 c\xe2\x82"
    lit = encode_literal(raw, pieces, scores, index, bos=False, eos=True)
    assert lit == encode_heap(raw, pieces, scores, index, bos=False, eos=True)
    cases.append({"hex": raw.hex(), "bos": False, "eos": True, "ids": lit})

    text = open(text_path, "rb").read()
    # the literal O(n^2) loop agrees with the heap on a long prefix
    prefix = text[:4000]
    assert encode_literal(prefix, pieces, scores, index) == encode_heap(prefix, pieces, scores, index)
    stream = encode_heap(text, pieces, scores, index)
    print(f"stream: {len(stream)} tokens", file=sys.stderr)

    gen = greedy(cfg, w, 60)
    out = {
        "generator": "scripts/reference/llama2c_reference.py (numpy float64)",
        "model_sha256": hashlib.sha256(open(os.path.join(mdir, "stories260K.bin"), "rb").read()).hexdigest(),
        "text": "data/tinystories/valid_head.txt",
        "text_sha256": hashlib.sha256(text).hexdigest(),
        "tokenizer_cases": cases,
        "stream": {"tokens": len(stream), "fnv1a64": f"{fnv1a64(stream):016x}"},
        "greedy_60": gen,
        "perplexity": [],
    }
    for context, windows, method, factors, n_hat, att_override in PERPLEXITY_CASES:
        theta, inv, att = frequencies(method, cfg["head_size"], cfg["seq_len"], context, factors, att_override)
        nll, ntok = 0.0, 0
        for k in range(windows):
            win = [1] + stream[k * (context - 1):(k + 1) * (context - 1)]
            nll += window_nll(cfg, w, win, theta, inv, att, n_hat)
            ntok += context - 1
        ppl = math.exp(nll / ntok)
        print(f"context {context} {method:9s} ppl {ppl:.6f}", file=sys.stderr)
        out["perplexity"].append({
            "context": context, "windows": windows, "method": method, "factors": factors or [],
            "n_hat": n_hat, "attention_factor": att_override, "nll_sum": nll, "tokens": ntok,
            "perplexity": ppl})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json(out, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
