#include "core/units.hpp"

#include <cmath>
#include <cstdio>

namespace cow {
namespace {

// Splits "1.5GiB" into 1.5 and "GiB". Rejects signs, exponents and empty numbers.
bool split_number(std::string_view text, double& value, std::string_view& unit) {
    std::size_t i = 0;
    bool seen_digit = false, seen_dot = false;
    while (i < text.size()) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            seen_digit = true;
        } else if (c == '.' && !seen_dot) {
            seen_dot = true;
        } else {
            break;
        }
        ++i;
    }
    if (!seen_digit || i > 32) return false;
    std::string number(text.substr(0, i));
    char* end = nullptr;
    value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size() || !std::isfinite(value)) return false;
    unit = text.substr(i);
    while (!unit.empty() && unit.front() == ' ')
        unit.remove_prefix(1);
    return true;
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
    double value = 0;
    std::string_view unit;
    if (!split_number(text, value, unit)) return std::nullopt;
    double ms_per_unit;
    if (unit.empty()) {
        if (value != 0) return std::nullopt;
        ms_per_unit = 1;
    } else if (unit == "ms") {
        ms_per_unit = 1;
    } else if (unit == "s") {
        ms_per_unit = 1000;
    } else if (unit == "m" || unit == "min") {
        ms_per_unit = 60'000;
    } else if (unit == "h") {
        ms_per_unit = 3'600'000;
    } else if (unit == "d") {
        ms_per_unit = 86'400'000;
    } else {
        return std::nullopt;
    }
    double ms = value * ms_per_unit;
    // Ten years is far beyond any sane timeout and keeps arithmetic on time_points safe.
    if (ms > 315'360'000'000.0) return std::nullopt;
    return Millis(static_cast<std::int64_t>(std::llround(ms)));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    double value = 0;
    std::string_view unit;
    if (!split_number(text, value, unit)) return std::nullopt;
    double mult;
    if (unit.empty() || unit == "B") {
        mult = 1;
    } else if (unit == "KiB" || unit == "K" || unit == "k") {
        mult = 1024.0;
    } else if (unit == "MiB" || unit == "M") {
        mult = 1024.0 * 1024;
    } else if (unit == "GiB" || unit == "G") {
        mult = 1024.0 * 1024 * 1024;
    } else if (unit == "TiB" || unit == "T") {
        mult = 1024.0 * 1024 * 1024 * 1024;
    } else if (unit == "KB" || unit == "kB") {
        mult = 1e3;
    } else if (unit == "MB") {
        mult = 1e6;
    } else if (unit == "GB") {
        mult = 1e9;
    } else if (unit == "TB") {
        mult = 1e12;
    } else {
        return std::nullopt;
    }
    double bytes = value * mult;
    if (bytes > 9.0e18) return std::nullopt;
    return static_cast<std::uint64_t>(std::llround(bytes));
}

std::string format_duration(Millis d) {
    std::int64_t ms = d.count();
    if (ms < 0) ms = 0;
    char buf[48];
    if (ms < 1000) {
        std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
    } else if (ms < 60'000) {
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ms / 1000));
    } else if (ms < 3'600'000) {
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                      static_cast<long long>(ms / 1000 % 60));
    } else if (ms < 86'400'000) {
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                      static_cast<long long>(ms / 60'000 % 60));
    } else {
        std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(ms / 86'400'000),
                      static_cast<long long>(ms / 3'600'000 % 24));
    }
    return buf;
}

std::string format_size(std::uint64_t bytes) {
    static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
    char buf[32];
    if (bytes < 1024) {
        std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
        return buf;
    }
    double v = static_cast<double>(bytes) / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        ++u;
    }
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : (v < 100 ? "%.1f %s" : "%.0f %s"), v,
                  kUnits[u]);
    return buf;
}

}  // namespace cow
