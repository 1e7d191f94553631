// A minimal SVG line-chart writer for the examples (no dependencies): panels
// side by side, each with linear or log axes, labelled ticks, one polyline with
// markers per series and a legend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace svg_plot {

struct series {
  std::string name;
  std::string color;
  std::vector<double> x, y;
  bool dashed = false;
};

struct panel {
  std::string title, xlabel, ylabel;
  bool logx = false, logy = false;
  std::vector<double> xticks;             ///< tick positions (data units)
  std::vector<std::string> xticklabels;   ///< same length as xticks
  std::vector<series> lines;
};

namespace detail {

inline std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

inline std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

inline std::string tick_label(double v) {
  char b[32];
  if (std::fabs(v) >= 100 || v == std::floor(v)) {
    std::snprintf(b, sizeof b, "%.0f", v);
  } else {
    std::snprintf(b, sizeof b, "%.2g", v);
  }
  return b;
}

// 1-2-5 ticks covering [lo, hi] on a log axis; a "nice" step on a linear one.
inline std::vector<double> ticks(double lo, double hi, bool log) {
  std::vector<double> t;
  if (log) {
    for (double dec = std::pow(10.0, std::floor(std::log10(lo))); dec <= hi * 1.0001; dec *= 10) {
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * dec;
        if (v >= lo * 0.9999 && v <= hi * 1.0001) t.push_back(v);
      }
    }
    if (t.size() < 3) {
      t.clear();
      for (double m : {1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0}) {
        for (double dec = std::pow(10.0, std::floor(std::log10(lo))); dec <= hi; dec *= 10) {
          const double v = m * dec;
          if (v >= lo * 0.9999 && v <= hi * 1.0001) t.push_back(v);
        }
      }
      std::sort(t.begin(), t.end());
    }
    return t;
  }
  const double span = hi - lo;
  const double raw = span / 5.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(v);
  return t;
}

}  // namespace detail

/// The SVG document of `panels` laid out in one row, each w x h pixels.
inline std::string render(const std::vector<panel>& panels, int w = 520, int h = 380) {
  using detail::fmt;
  const int W = w * static_cast<int>(panels.size());
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(W) + "\" height=\"" +
                  std::to_string(h) + "\" viewBox=\"0 0 " + std::to_string(W) + " " + std::to_string(h) +
                  "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
                  "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (std::size_t pi = 0; pi < panels.size(); ++pi) {
    const panel& p = panels[pi];
    const double ox = static_cast<double>(pi) * w;
    const double left = ox + 62, right = ox + w - 18, top = 34, bottom = h - 52;
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const auto& l : p.lines) {
      for (double v : l.x) x0 = std::min(x0, v), x1 = std::max(x1, v);
      for (double v : l.y) {
        if (std::isfinite(v)) y0 = std::min(y0, v), y1 = std::max(y1, v);
      }
    }
    for (double v : p.xticks) x0 = std::min(x0, v), x1 = std::max(x1, v);
    if (!(x1 > x0)) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;
    if (p.logy) {
      y0 /= 1.08;
      y1 *= 1.08;
    } else {
      const double pad = 0.06 * (y1 - y0);
      y0 -= pad;
      y1 += pad;
    }
    auto tx = [&](double v) {
      const double a = p.logx ? (std::log(v) - std::log(x0)) / (std::log(x1) - std::log(x0)) : (v - x0) / (x1 - x0);
      return left + 12 + a * (right - left - 24);
    };
    auto ty = [&](double v) {
      const double a = p.logy ? (std::log(v) - std::log(y0)) / (std::log(y1) - std::log(y0)) : (v - y0) / (y1 - y0);
      return bottom - a * (bottom - top);
    };
    s += "<text x=\"" + fmt(ox + w / 2.0) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" +
         detail::esc(p.title) + "</text>\n";
    s += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(top) + "\" width=\"" + fmt(right - left) + "\" height=\"" +
         fmt(bottom - top) + "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (double v : detail::ticks(y0, y1, p.logy)) {
      const double y = ty(v);
      s += "<line x1=\"" + fmt(left) + "\" y1=\"" + fmt(y) + "\" x2=\"" + fmt(right) + "\" y2=\"" + fmt(y) +
           "\" stroke=\"#ddd\"/>\n<text x=\"" + fmt(left - 6) + "\" y=\"" + fmt(y + 4) + "\" text-anchor=\"end\">" +
           detail::tick_label(v) + "</text>\n";
    }
    for (std::size_t i = 0; i < p.xticks.size(); ++i) {
      const double x = tx(p.xticks[i]);
      s += "<line x1=\"" + fmt(x) + "\" y1=\"" + fmt(top) + "\" x2=\"" + fmt(x) + "\" y2=\"" + fmt(bottom) +
           "\" stroke=\"#eee\"/>\n<text x=\"" + fmt(x) + "\" y=\"" + fmt(bottom + 16) + "\" text-anchor=\"middle\">" +
           detail::esc(i < p.xticklabels.size() ? p.xticklabels[i] : detail::tick_label(p.xticks[i])) + "</text>\n";
    }
    s += "<text x=\"" + fmt((left + right) / 2) + "\" y=\"" + fmt(h - 14.0) + "\" text-anchor=\"middle\">" +
         detail::esc(p.xlabel) + "</text>\n";
    s += "<text transform=\"translate(" + fmt(ox + 16) + "," + fmt((top + bottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + detail::esc(p.ylabel) + "</text>\n";
    for (const auto& l : p.lines) {
      std::string pts;
      for (std::size_t i = 0; i < l.x.size() && i < l.y.size(); ++i) {
        if (std::isfinite(l.y[i])) pts += fmt(tx(l.x[i])) + "," + fmt(ty(l.y[i])) + " ";
      }
      s += "<polyline fill=\"none\" stroke=\"" + l.color + "\" stroke-width=\"2\"" +
           (l.dashed ? std::string(" stroke-dasharray=\"6 4\"") : std::string()) + " points=\"" + pts + "\"/>\n";
      for (std::size_t i = 0; i < l.x.size() && i < l.y.size(); ++i) {
        if (std::isfinite(l.y[i])) {
          s += "<circle cx=\"" + fmt(tx(l.x[i])) + "\" cy=\"" + fmt(ty(l.y[i])) + "\" r=\"3.5\" fill=\"" + l.color +
               "\"/>\n";
        }
      }
    }
    // Legend, top-left inside the plot.
    double ly = top + 16;
    for (const auto& l : p.lines) {
      s += "<line x1=\"" + fmt(left + 10) + "\" y1=\"" + fmt(ly - 4) + "\" x2=\"" + fmt(left + 32) + "\" y2=\"" +
           fmt(ly - 4) + "\" stroke=\"" + l.color + "\" stroke-width=\"2\"" +
           (l.dashed ? std::string(" stroke-dasharray=\"6 4\"") : std::string()) + "/>\n<text x=\"" +
           fmt(left + 38) + "\" y=\"" + fmt(ly) + "\">" + detail::esc(l.name) + "</text>\n";
      ly += 16;
    }
  }
  s += "</svg>\n";
  return s;
}

}  // namespace svg_plot
