#include "src/tm/cpu_load.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

namespace xa::internal {

CpuLoadGauge::CpuLoadGauge(uint32_t busy_percent, std::chrono::nanoseconds period, Reader read)
    : busy_percent_(busy_percent), period_ns_(period.count()), read_(std::move(read)) {}

bool CpuLoadGauge::Busy() {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (now >= next_sample_ns_.load(std::memory_order_relaxed) && sample_mu_.try_lock()) {
    std::lock_guard<std::mutex> lock(sample_mu_, std::adopt_lock);
    if (now >= next_sample_ns_.load(std::memory_order_relaxed)) {
      next_sample_ns_.store(now + period_ns_, std::memory_order_relaxed);
      std::optional<CpuTicks> sample = read_ ? read_() : std::nullopt;
      if (sample.has_value() && last_.has_value() && sample->total > last_->total &&
          sample->busy >= last_->busy) {
        const uint64_t busy = sample->busy - last_->busy;
        const uint64_t total = sample->total - last_->total;
        busy_.store(busy * 100 >= total * busy_percent_, std::memory_order_relaxed);
      } else if (!sample.has_value()) {
        busy_.store(false, std::memory_order_relaxed);
      }
      last_ = sample;
    }
  }
  return busy_.load(std::memory_order_relaxed);
}

std::optional<CpuTicks> CpuLoadGauge::ReadProcStat() {
  int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 4) return std::nullopt;
  buf[n] = '\0';
  // "cpu  user nice system idle iowait irq softirq steal guest guest_nice" (guest time is
  // already counted in user and nice).
  if (buf[0] != 'c' || buf[1] != 'p' || buf[2] != 'u' || buf[3] != ' ') return std::nullopt;
  const char* p = buf + 3;
  uint64_t field[8] = {};
  for (uint64_t& value : field) {
    char* end = nullptr;
    value = std::strtoull(p, &end, 10);
    if (end == p) return std::nullopt;
    p = end;
  }
  CpuTicks ticks;
  ticks.busy = field[0] + field[1] + field[2] + field[5] + field[6] + field[7];
  ticks.total = ticks.busy + field[3] + field[4];
  return ticks;
}

}  // namespace xa::internal
