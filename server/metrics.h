#pragma once
// A small Prometheus registry: counter, gauge and histogram families with labels, rendered in the
// text exposition format (version 0.0.4). Families are created at start and live as long as the
// registry; every method is thread-safe.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wrpn::server {

using LabelValues = std::vector<std::string>;

class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, std::string type,
               std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), type_(std::move(type)),
        label_names_(std::move(label_names)) {}
  virtual ~MetricFamily() = default;
  void Render(std::string* out) const;
  const std::string& name() const { return name_; }

 protected:
  virtual void RenderSamples(std::string* out) const = 0;
  std::string Labels(const LabelValues& values, const std::string& extra = "") const;
  std::string name_, help_, type_;
  std::vector<std::string> label_names_;
  mutable std::mutex mu_;
};

// Counters and histograms are exported at 0 from the start: one without labels by itself, one
// with labels for each label set given to Declare (its known values). A series that appeared only
// at its first event made increase() over that event 0 (Prometheus instrumentation practice).
class CounterFamily final : public MetricFamily {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> labels)
      : MetricFamily(std::move(name), std::move(help), "counter", std::move(labels)) {
    if (label_names_.empty()) values_[{}] = 0;
  }
  void Declare(const LabelValues& labels);  // the series exists, at 0 until incremented
  void Inc(const LabelValues& labels = {}, double by = 1);
  double Value(const LabelValues& labels = {}) const;

 private:
  void RenderSamples(std::string* out) const override;
  std::map<LabelValues, double> values_;
};

class GaugeFamily final : public MetricFamily {
 public:
  GaugeFamily(std::string name, std::string help, std::vector<std::string> labels)
      : MetricFamily(std::move(name), std::move(help), "gauge", std::move(labels)) {}
  void Set(const LabelValues& labels, double v);
  // Replaces every series at once (for gauges computed at scrape time).
  void Replace(std::map<LabelValues, double> values);

 private:
  void RenderSamples(std::string* out) const override;
  std::map<LabelValues, double> values_;
};

class HistogramFamily final : public MetricFamily {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels,
                  std::vector<double> buckets)
      : MetricFamily(std::move(name), std::move(help), "histogram", std::move(labels)),
        buckets_(std::move(buckets)) {
    if (label_names_.empty()) series_[{}].counts.assign(buckets_.size(), 0);
  }
  void Declare(const LabelValues& labels);  // the series exists, empty until observed
  void Observe(const LabelValues& labels, double v);
  uint64_t Count(const LabelValues& labels = {}) const;

 private:
  struct Series {
    std::vector<uint64_t> counts;  // per bucket, not cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  void RenderSamples(std::string* out) const override;
  std::vector<double> buckets_;
  std::map<LabelValues, Series> series_;
};

class MetricsRegistry {
 public:
  CounterFamily* AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> labels = {});
  GaugeFamily* AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> labels = {});
  HistogramFamily* AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> labels, std::vector<double> buckets);
  // Runs before each Render (e.g. to refresh gauges computed from state).
  void AddCollectHook(std::function<void()> hook);
  std::string Render() const;

  // Exponential bucket bounds start, start*factor, ... (count bounds).
  static std::vector<double> ExponentialBuckets(double start, double factor, int count);

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_;
  std::vector<std::function<void()>> hooks_;
};

}  // namespace wrpn::server
