#include "core/proc/mem_counters.hpp"

namespace cow::proc {

void MemCounters::add(std::string_view name, std::uint64_t bytes) {
    for (std::size_t i = 0; i < kMemFields.size(); ++i) {
        if (kMemFields[i].kernel_name == name) {
            this->*kMemFields[i].member += bytes;
            present |= 1u << i;
            return;
        }
    }
    for (auto& [k, v] : extra) {
        if (k == name) {
            v += bytes;
            return;
        }
    }
    extra.emplace_back(std::string(name), bytes);
}

std::optional<std::uint64_t> MemCounters::get(std::string_view name) const {
    for (std::size_t i = 0; i < kMemFields.size(); ++i) {
        if (kMemFields[i].kernel_name == name) {
            if (!(present & (1u << i))) return std::nullopt;
            return this->*kMemFields[i].member;
        }
    }
    for (const auto& [k, v] : extra) {
        if (k == name) return v;
    }
    return std::nullopt;
}

static_assert(kMemFields.size() <= 32, "MemCounters::present is a 32-bit mask");

MemCounters& MemCounters::operator+=(const MemCounters& other) {
    // add() may grow `extra` while we iterate over other.extra.
    if (this == &other) return *this += MemCounters(other);
    for (const auto& f : kMemFields)
        this->*f.member += other.*f.member;
    present |= other.present;
    for (const auto& [k, v] : other.extra)
        add(k, v);
    return *this;
}

}  // namespace cow::proc
