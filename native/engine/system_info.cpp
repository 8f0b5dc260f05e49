#include "system_info.h"

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "sdnode.h"

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace sdnode {

namespace {

constexpr const char* kEngineVersion = "0.1.0";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string backendOf(ggml_backend_dev_t dev) {
  std::string reg = lower(ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)));
  if (reg.find("cuda") != std::string::npos) return "cuda";
  if (reg.find("metal") != std::string::npos || reg.find("mtl") != std::string::npos) return "metal";
  if (reg.find("cpu") != std::string::npos) return "cpu";
  return reg;
}

}  // namespace

int physicalCores() {
#if defined(__linux__)
  // Count distinct (package, core) pairs; hyper-threads share one.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical, core;
  while (std::getline(cpuinfo, line)) {
    auto value = [&]() { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) physical = value();
    if (line.rfind("core id", 0) == 0) {
      core = value();
      cores.emplace(physical, core);
    }
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
#elif defined(__APPLE__)
  int count = 0;
  size_t size = sizeof(count);
  if (sysctlbyname("hw.perflevel0.physicalcpu", &count, &size, nullptr, 0) == 0 && count > 0) return count;
  if (sysctlbyname("hw.physicalcpu", &count, &size, nullptr, 0) == 0 && count > 0) return count;
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

SystemInfo systemInfo() {
  SystemInfo info;
  info.engineVersion = kEngineVersion;
  info.ggmlVersion = ggml_version();
  std::set<std::string> backends;
  for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
    ggml_backend_reg_t reg = ggml_backend_reg_get(i);
    std::string name = lower(ggml_backend_reg_name(reg));
    if (name.find("cuda") != std::string::npos) name = "cuda";
    if (name.find("mtl") != std::string::npos) name = "metal";
    if (backends.insert(name).second) info.backends.push_back(name);
  }
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    DeviceInfo d;
    d.backend = backendOf(dev);
    d.name = ggml_backend_dev_name(dev);
    d.description = ggml_backend_dev_description(dev);
    size_t freeBytes = 0, totalBytes = 0;
    ggml_backend_dev_memory(dev, &freeBytes, &totalBytes);
    d.memoryFree = freeBytes;
    d.memoryTotal = totalBytes;
    info.devices.push_back(d);
  }
  const std::pair<const char*, int (*)()> features[] = {
      {"SSE3", ggml_cpu_has_sse3},     {"SSSE3", ggml_cpu_has_ssse3},     {"AVX", ggml_cpu_has_avx},
      {"AVX2", ggml_cpu_has_avx2},     {"F16C", ggml_cpu_has_f16c},       {"FMA", ggml_cpu_has_fma},
      {"AVX512", ggml_cpu_has_avx512}, {"AVX512_BF16", ggml_cpu_has_avx512_bf16}, {"NEON", ggml_cpu_has_neon},
      {"ARM_FMA", ggml_cpu_has_arm_fma}, {"FP16_VA", ggml_cpu_has_fp16_va}, {"DOTPROD", ggml_cpu_has_dotprod},
      {"SVE", ggml_cpu_has_sve},
  };
  for (const auto& [name, has] : features) {
    if (has()) info.cpuFeatures.push_back(name);
  }
  info.physicalCores = physicalCores();
  return info;
}

}  // namespace sdnode
