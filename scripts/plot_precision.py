#!/usr/bin/python3
"""Draws docs/precision.svg from the CSV written by examples/precision_sweep.

  build/<dir>/examples/precision_sweep > docs/precision.csv
  /usr/bin/python3 scripts/plot_precision.py docs/precision.csv docs/precision.svg

Standard library only: the SVG is written by hand (log-log axes, one polyline
per series, the 2e-7 acceptance bound dashed).
"""
import csv
import math
import sys

SERIES = [
    ("exact_float", "exact mode, float output", "#1f77b4"),
    ("exact_double", "exact mode, double output", "#2ca02c"),
    ("float32", "float32 mode (transformers' arithmetic)", "#d62728"),
]
W, H = 760, 460
L, R, T, B = 80, 20, 40, 60  # margins
X_MIN, X_MAX = 0.0, 24.0      # log2(position + 1)
Y_MIN, Y_MAX = -17.0, 1.0     # log10(error)
FLOOR = 10 ** Y_MIN


def read(path):
    title, rows = "", []
    with open(path) as f:
        lines = f.readlines()
    if lines and lines[0].startswith("#"):
        title = lines[0][1:].strip()
        lines = lines[1:]
    for r in csv.DictReader(lines):
        rows.append({k: float(v) for k, v in r.items()})
    return title, rows


def sx(x):
    return L + (x - X_MIN) / (X_MAX - X_MIN) * (W - L - R)


def sy(y):
    return T + (Y_MAX - y) / (Y_MAX - Y_MIN) * (H - T - B)


def main(src, dst):
    title, rows = read(src)
    out = []
    add = out.append
    add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
        'font-family="sans-serif" font-size="12">' % (W, H, W, H))
    add('<rect width="100%" height="100%" fill="white"/>')
    add('<text x="%d" y="22" font-size="14" text-anchor="middle">Max |table - truth| over all pairs vs position</text>'
        % (W // 2))
    # Grid and ticks.
    for k in range(0, 25, 2):
        x = sx(k)
        add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>' % (x, T, x, H - B))
        add('<text x="%.1f" y="%d" text-anchor="middle">2<tspan dy="-5" font-size="9">%d</tspan></text>'
            % (x, H - B + 18, k))
    for e in range(int(Y_MIN), int(Y_MAX) + 1):
        y = sy(e)
        add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>' % (L, y, W - R, y))
        if e % 2 == 1 or e == int(Y_MAX):
            add('<text x="%d" y="%.1f" text-anchor="end">1e%d</text>' % (L - 6, y + 4, e))
    add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>' % (L, T, W - L - R, H - T - B))
    add('<text x="%d" y="%d" text-anchor="middle">position + 1</text>' % ((L + W - R) // 2, H - 18))
    add('<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">max abs error</text>'
        % ((T + H - B) // 2, (T + H - B) // 2))
    # The acceptance bound.
    yb = sy(math.log10(2e-7))
    add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black" stroke-dasharray="6,4"/>' % (L, yb, W - R, yb))
    add('<text x="%d" y="%.1f" text-anchor="end">2e-7 bound</text>' % (W - R - 4, yb - 5))
    # Series.
    for key, label, color in SERIES:
        pts = []
        for r in rows:
            x = math.log2(r["position"] + 1)
            y = math.log10(max(r[key], FLOOR))
            pts.append("%.1f,%.1f" % (sx(x), sy(y)))
        add('<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>' % (color, " ".join(pts)))
    # Legend.
    for n, (key, label, color) in enumerate(SERIES):
        y = T + 16 + 18 * n
        add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>' % (L + 12, y, L + 36, y, color))
        add('<text x="%d" y="%d">%s</text>' % (L + 42, y + 4, label))
    if title:
        add('<text x="%d" y="%d" font-size="10" fill="#555" text-anchor="middle">%s</text>'
            % (W // 2, H - 4, title.replace("&", "&amp;").replace("<", "&lt;")))
    add("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d points per series)" % (dst, len(rows)))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot_precision.py SWEEP.csv OUT.svg")
    main(sys.argv[1], sys.argv[2])
