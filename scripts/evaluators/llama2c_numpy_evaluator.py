#!/usr/bin/python3
"""An evaluator for `longrope search --evaluator` (docs/evaluators.md, protocol v1).

Scores each candidate with the project's independent numpy float64 forward of
the llama2.c model (scripts/reference/llama2c_reference.py): the perplexity of
W windows of max_position_embeddings tokens of the text (the paper's windows
protocol: BOS + the next context-1 stream tokens), with the candidate's LongRoPE
factors, n_hat and attention factor. Shares no code with the C++ model.

  longrope search --config cfg.json --context 1024 \\
      --evaluator "/usr/bin/python3 scripts/evaluators/llama2c_numpy_evaluator.py \\
                   --model stories260K.bin --tokenizer tok512.bin --text valid_head.txt" --evaluators 2
  mpirun -np 1 longrope search --mpi ... : -np 3 /usr/bin/python3 llama2c_numpy_evaluator.py --mpi ...

`--check` only imports numpy (and mpi4py with --mpi) and exits 0, or 77 when missing.
"""
import argparse
import json
import math
import os
import sys

PROTOCOL = "longrope.evaluator"
VERSION = 1
MAX_LINE = 1 << 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--tokenizer")
    ap.add_argument("--text")
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--first-window", type=int, default=0)
    ap.add_argument("--text-bytes", type=int, default=200000,
                    help="tokenize only this prefix of the text (enough for the windows; 0: all)")
    ap.add_argument("--mpi", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    try:
        import numpy  # noqa: F401
        if args.mpi:
            import mpi4py  # noqa: F401
    except ImportError as e:
        print(f"llama2c_numpy_evaluator: {e}", file=sys.stderr)
        sys.exit(77)
    if args.check:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "reference"))
    import llama2c_reference as ref

    cfg, w = ref.load_checkpoint(args.model)
    pieces, scores, index = ref.load_tokenizer(args.tokenizer, cfg["vocab"])
    text = open(args.text, "rb").read()
    if args.text_bytes > 0:
        # cut at a line break so the prefix tokenizes like the start of the whole text
        cut = text.rfind(b"\n", 0, args.text_bytes)
        text = text[:cut if cut > 0 else args.text_bytes]
    stream = ref.encode_heap(text, pieces, scores, index)

    def fitness(req):
        factors = req["factors"]
        if len(factors) != cfg["head_size"] // 2:
            raise ValueError(f"expected {cfg['head_size'] // 2} factors, got {len(factors)}")
        if req["original_max_position_embeddings"] != cfg["seq_len"]:
            raise ValueError("original_max_position_embeddings differs from the model's seq_len")
        context = req["max_position_embeddings"]
        need = (args.first_window + args.windows) * (context - 1)
        if need > len(stream):
            raise ValueError(f"text too short: {need} tokens needed, {len(stream)} available")
        theta, inv, att = ref.frequencies("longrope", cfg["head_size"], cfg["seq_len"], context, factors,
                                          req["attention_factor"])
        nll, ntok = 0.0, 0
        for k in range(args.first_window, args.first_window + args.windows):
            win = [1] + stream[k * (context - 1):(k + 1) * (context - 1)]
            nll += ref.window_nll(cfg, w, win, theta, inv, att, req["n_hat"])
            ntok += context - 1
        return math.exp(nll / ntok)

    def answer(line):
        """One request line -> one reply line (or None for shutdown)."""
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("expected a JSON object")
        except ValueError as e:
            return json.dumps({"id": 0, "error": f"bad message: {e}"})
        kind = msg.get("type")
        if kind == "shutdown":
            return None
        if kind == "hello":
            return json.dumps({"type": "hello", "protocol": PROTOCOL, "version": VERSION,
                               "name": "llama2c_numpy_evaluator.py"})
        rid = msg.get("id", 0)
        try:
            f = fitness(msg)
            if not math.isfinite(f):
                raise ValueError("fitness is not finite")
            return json.dumps({"id": rid, "fitness": f})
        except Exception as e:  # the candidate cannot be scored: say so, keep serving
            return json.dumps({"id": rid, "error": str(e)})

    if args.mpi:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        while True:
            st = MPI.Status()
            comm.Probe(source=0, tag=1, status=st)
            buf = bytearray(st.Get_count(MPI.CHAR))
            comm.Recv([buf, MPI.CHAR], source=0, tag=1)
            out = answer(buf.decode("utf-8", "replace"))
            if out is None:
                break
            comm.Send([out.encode(), MPI.CHAR], dest=0, tag=2)
        return
    for line in sys.stdin.buffer:
        if len(line) > MAX_LINE:
            print("llama2c_numpy_evaluator: line over 1 MiB", file=sys.stderr)
            sys.exit(1)
        line = line.decode("utf-8", "replace").strip()
        if not line:
            continue
        out = answer(line)
        if out is None:
            break
        sys.stdout.write(out + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
