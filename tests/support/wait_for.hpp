// WaitFor: poll a condition until it holds or a deadline passes. Tests synchronise on
// conditions, never on bare sleeps (design §5).
#pragma once

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include <poll.h>

namespace cow::test {

template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds deadline = std::chrono::seconds(10),
             std::chrono::milliseconds step = std::chrono::milliseconds(2)) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= end) return pred();
        ::poll(nullptr, 0, static_cast<int>(step.count()));
    }
}

inline std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Value of key=... in a probe report line ("" when absent).
inline std::string field(const std::string& report, const std::string& key) {
    auto pos = report.find(key + "=");
    while (pos != std::string::npos && pos > 0 && report[pos - 1] != ' ')
        pos = report.find(key + "=", pos + 1);
    if (pos == std::string::npos) return "";
    pos += key.size() + 1;
    auto end = report.find_first_of(" \n", pos);
    return report.substr(pos, end - pos);
}

}  // namespace cow::test
