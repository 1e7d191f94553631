#!/usr/bin/env python3
"""Turns a longrope_bench JSON report into the target table of docs/performance.md.

    longrope_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
        --benchmark_enable_random_interleaving=true \
        --benchmark_out=bench.json --benchmark_out_format=json
    python3 bench/ratios.py bench.json

Uses the medians (cpu_time for one-thread runs, real_time for the two-thread
runs, which are registered with UseRealTime). Standard library only.
"""
import json
import sys


def load(path):
    with open(path) as f:
        report = json.load(f)
    med = {}
    for b in report["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"]
        t = b["real_time"] if "real_time" in name else b["cpu_time"]
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        med[name] = {"t": t * unit, "bps": b.get("bytes_per_second"), "ips": b.get("items_per_second")}
    return med


def main():
    med = load(sys.argv[1])

    def t(name):
        if name not in med:
            sys.exit(f"missing benchmark {name!r}; have:\n  " + "\n  ".join(sorted(med)))
        return med[name]["t"]

    def gbs(name):
        return med[name]["bps"] / 1e9

    floor1 = "BM_prefill_memory_floor/bytes:4/threads:1"
    floor1_bf16 = "BM_prefill_memory_floor/bytes:2/threads:1"
    floor2 = "BM_prefill_memory_floor/bytes:4/threads:2/real_time"
    pf = "BM_prefill<float, pair_layout::half_split>/table:{}/threads:{}"
    pi = "BM_prefill<float, pair_layout::interleaved>/table:{}/threads:1"
    pb = "BM_prefill<bf16, pair_layout::half_split>/table:{}/threads:1"
    rows = []

    def row(what, value, target, ok):
        rows.append((what, value, target, "met" if ok else "MISSED"))

    for table, label in ((1, "table"), (0, "table-free")):
        r = t(floor1) / t(pf.format(table, 1))
        row(f"prefill float half-split, {label}, 1 thread", f"{gbs(pf.format(table, 1)):.1f} GB/s = {r:.2f}x floor "
            f"({gbs(floor1):.1f} GB/s)", ">= 0.70x floor", r >= 0.7)
    for table, label in ((1, "table"), (0, "table-free")):
        r = t(floor1) / t(pi.format(table))
        rows.append((f"prefill float interleaved, {label}, 1 thread", f"{gbs(pi.format(table)):.1f} GB/s = {r:.2f}x floor",
                     "(reported)", ""))
    for table, label in ((1, "table"), (0, "table-free")):
        r = t(floor1_bf16) / t(pb.format(table))
        rows.append((f"prefill bf16 half-split, {label}, 1 thread",
                     f"{gbs(pb.format(table)):.1f} GB/s = {r:.2f}x bf16 floor ({gbs(floor1_bf16):.1f} GB/s)",
                     "(reported)", ""))
    r_naive = t("BM_prefill_naive") / t(pf.format(1, 1))
    rows.append(("prefill naive loop (float angles, cos/sin per element)",
                 f"{gbs('BM_prefill_naive'):.1f} GB/s; library table path is {r_naive:.1f}x faster", "(baseline)", ""))
    for table, label in ((1, "table"), (0, "table-free")):
        name = pf.format(table, 2) + "/real_time"
        rows.append((f"prefill float half-split, {label}, 2 threads",
                     f"{gbs(name):.1f} GB/s vs floor 2 threads {gbs(floor2):.1f} GB/s ({t(floor2) / t(name):.2f}x)",
                     "(reported)", ""))
    naive = t("BM_table_naive/131072/48")
    exact = t("BM_table_exact/131072/48")
    write = t("BM_table_write_floor/131072/48")
    row("table 131072 x 48 vs naive loop", f"{exact * 1e3:.2f} ms vs {naive * 1e3:.1f} ms = {naive / exact:.1f}x",
        ">= 10x", naive / exact >= 10)
    row("table 131072 x 48 vs writing the table", f"{exact * 1e3:.2f} ms vs {write * 1e3:.2f} ms = {exact / write:.2f}x",
        "<= 2x", exact / write <= 2)
    n2 = t("BM_table_naive/2097152/64/iterations:1")
    e2 = t("BM_table_exact/2097152/64/iterations:3")
    w2 = t("BM_table_write_floor/2097152/64/iterations:3")
    rows.append(("table 2097152 x 64 (1 GiB)", f"{e2 * 1e3:.0f} ms; naive {n2 * 1e3:.0f} ms ({n2 / e2:.1f}x); "
                 f"write {w2 * 1e3:.0f} ms ({e2 / w2:.2f}x)", "(reported)", ""))
    dec = t("BM_decode")
    row("decode, 1 token at 100000, q 32 + k 8 heads, table-free", f"{dec * 1e9:.0f} ns", "< 1000 ns", dec < 1e-6)
    rows.append(("  breakdown: exact angles (64 pairs, scalar)", f"{t('BM_decode_angles') * 1e9:.0f} ns", "", ""))
    rows.append(("  breakdown: angles + cos/sin (vector)", f"{t('BM_decode_trig') * 1e9:.0f} ns", "", ""))
    rows.append(("  breakdown: rotation of 40 heads (one-row table)", f"{t('BM_decode_rotation') * 1e9:.0f} ns", "", ""))
    rows.append(("  naive decode (float angles, cos/sin per element)", f"{t('BM_decode_naive') * 1e9:.0f} ns "
                 f"({t('BM_decode_naive') / dec:.0f}x slower)", "", ""))

    print("| workload | measured (median) | target | |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
