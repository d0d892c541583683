#include "config/config.hpp"

namespace cow::config {

const PoolConfig* Config::find_pool(std::string_view name) const {
    for (const auto& p : pools)
        if (p.name == name) return &p;
    return nullptr;
}

std::string ConfigError::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ':';
        out += std::to_string(line);
        out += ':';
        out += std::to_string(column);
    }
    out += ": ";
    if (!key_path.empty()) {
        out += key_path;
        out += ": ";
    }
    out += message;
    return out;
}

std::string_view to_string(RestartPolicy p) {
    switch (p) {
        case RestartPolicy::always:
            return "always";
        case RestartPolicy::on_failure:
            return "on-failure";
        case RestartPolicy::never:
            return "never";
    }
    return "?";
}

std::string_view to_string(KillMode m) {
    switch (m) {
        case KillMode::auto_:
            return "auto";
        case KillMode::cgroup:
            return "cgroup";
        case KillMode::group:
            return "group";
    }
    return "?";
}

std::string_view to_string(StopScope s) {
    switch (s) {
        case StopScope::main:
            return "main";
        case StopScope::tree:
            return "tree";
    }
    return "?";
}

std::string_view to_string(OrphanPolicy p) {
    switch (p) {
        case OrphanPolicy::kill:
            return "kill";
        case OrphanPolicy::keep:
            return "keep";
    }
    return "?";
}

std::string_view to_string(OutputSink::Kind k) {
    switch (k) {
        case OutputSink::Kind::console:
            return "console";
        case OutputSink::Kind::file:
            return "file";
        case OutputSink::Kind::json:
            return "json";
        case OutputSink::Kind::inherit:
            return "inherit";
        case OutputSink::Kind::null:
            return "null";
    }
    return "console";
}

}  // namespace cow::config
