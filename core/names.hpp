// Pool and worker names: "web", "web.2", "all". Validated before any lookup (design §3.8).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cow {

inline constexpr std::size_t kMaxNameLength = 64;

// [A-Za-z0-9_.-]{1,64}
bool valid_name(std::string_view name);

// "web.2" -> {"web", 2}. Pool names may contain dots, so the caller first tries the whole
// string as a pool name and only then this split.
struct WorkerRef {
    std::string pool;
    int index;
};
std::optional<WorkerRef> split_worker_name(std::string_view name);

std::string worker_name(std::string_view pool, int index);

}  // namespace cow
