#include "server/metrics.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace wrpn::server {
namespace {

std::string Escape(const std::string& s, bool quote) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace

std::string MetricFamily::Labels(const LabelValues& values, const std::string& extra) const {
  if (label_names_.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < label_names_.size(); ++i) {
    if (i) out += ",";
    absl::StrAppend(&out, label_names_[i], "=\"", Escape(i < values.size() ? values[i] : "", true),
                    "\"");
  }
  if (!extra.empty()) absl::StrAppend(&out, label_names_.empty() ? "" : ",", extra);
  return out + "}";
}

void MetricFamily::Render(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", Escape(help_, false), "\n# TYPE ", name_, " ",
                  type_, "\n");
  std::lock_guard<std::mutex> lock(mu_);
  RenderSamples(out);
}

void CounterFamily::Declare(const LabelValues& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  values_.try_emplace(labels, 0);
}

void CounterFamily::Inc(const LabelValues& labels, double by) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[labels] += by;
}

double CounterFamily::Value(const LabelValues& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void CounterFamily::RenderSamples(std::string* out) const {
  for (const auto& [labels, v] : values_)
    absl::StrAppend(out, name_, Labels(labels), " ", FormatValue(v), "\n");
}

void GaugeFamily::Set(const LabelValues& labels, double v) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[labels] = v;
}

void GaugeFamily::Replace(std::map<LabelValues, double> values) {
  std::lock_guard<std::mutex> lock(mu_);
  values_ = std::move(values);
}

void GaugeFamily::RenderSamples(std::string* out) const {
  for (const auto& [labels, v] : values_)
    absl::StrAppend(out, name_, Labels(labels), " ", FormatValue(v), "\n");
}

void HistogramFamily::Declare(const LabelValues& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_[labels];
  if (s.counts.empty()) s.counts.assign(buckets_.size(), 0);
}

void HistogramFamily::Observe(const LabelValues& labels, double v) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_[labels];
  if (s.counts.empty()) s.counts.assign(buckets_.size(), 0);
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (v <= buckets_[i]) {
      ++s.counts[i];
      break;
    }
  }
  s.sum += v;
  ++s.count;
}

uint64_t HistogramFamily::Count(const LabelValues& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.count;
}

void HistogramFamily::RenderSamples(std::string* out) const {
  for (const auto& [labels, s] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      cumulative += s.counts[i];
      absl::StrAppend(out, name_, "_bucket",
                      Labels(labels, absl::StrCat("le=\"", FormatValue(buckets_[i]), "\"")), " ",
                      cumulative, "\n");
    }
    absl::StrAppend(out, name_, "_bucket", Labels(labels, "le=\"+Inf\""), " ", s.count, "\n");
    absl::StrAppend(out, name_, "_sum", Labels(labels), " ", FormatValue(s.sum), "\n");
    absl::StrAppend(out, name_, "_count", Labels(labels), " ", s.count, "\n");
  }
}

CounterFamily* MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                           std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::make_unique<CounterFamily>(name, help, std::move(labels)));
  return static_cast<CounterFamily*>(families_.back().get());
}

GaugeFamily* MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::make_unique<GaugeFamily>(name, help, std::move(labels)));
  return static_cast<GaugeFamily*>(families_.back().get());
}

HistogramFamily* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                               std::vector<std::string> labels,
                                               std::vector<double> buckets) {
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(
      std::make_unique<HistogramFamily>(name, help, std::move(labels), std::move(buckets)));
  return static_cast<HistogramFamily*>(families_.back().get());
}

void MetricsRegistry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(hook));
}

std::string MetricsRegistry::Render() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks = hooks_;
  }
  for (const auto& h : hooks) h();
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) f->Render(&out);
  return out;
}

std::vector<double> MetricsRegistry::ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  for (int i = 0; i < count; ++i, start *= factor) b.push_back(start);
  return b;
}

}  // namespace wrpn::server
