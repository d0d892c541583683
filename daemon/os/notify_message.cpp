#include "daemon/os/notify_message.hpp"

namespace cow {

NotifyMessage parse_notify(std::string_view d) {
    NotifyMessage m;
    std::size_t pos = 0;
    while (pos < d.size()) {
        std::size_t end = d.find('\n', pos);
        if (end == std::string_view::npos) end = d.size();
        std::string_view line = d.substr(pos, end - pos);
        pos = end + 1;
        auto eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
        if (key == "READY" && value == "1") m.ready = true;
        if (key == "STOPPING" && value == "1") m.stopping = true;
        if (key == "RELOADING" && value == "1") m.reloading = true;
        if (key == "WATCHDOG" && value == "1") m.watchdog = true;
        if (key == "STATUS") m.status = std::string(value.substr(0, 256));
        if (key == "EXTEND_TIMEOUT_USEC") {
            std::uint64_t v = 0;
            bool ok = !value.empty() && value.size() <= 19;
            for (char c : value) {
                if (c < '0' || c > '9') ok = false;
                v = v * 10 + static_cast<std::uint64_t>(c - '0');
            }
            if (ok) m.extend_usec = v;
        }
    }
    return m;
}

}  // namespace cow
