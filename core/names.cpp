#include "core/names.hpp"

namespace cow {

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameLength) return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

std::optional<WorkerRef> split_worker_name(std::string_view name) {
    auto dot = name.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 >= name.size()) return std::nullopt;
    auto digits = name.substr(dot + 1);
    if (digits.size() > 6) return std::nullopt;
    int index = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        index = index * 10 + (c - '0');
    }
    return WorkerRef{std::string(name.substr(0, dot)), index};
}

std::string worker_name(std::string_view pool, int index) {
    std::string s(pool);
    s += '.';
    s += std::to_string(index);
    return s;
}

}  // namespace cow
