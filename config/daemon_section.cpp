#include <algorithm>
#include <vector>

#include <grp.h>
#include <sys/un.h>

#include "config/sections.hpp"

namespace cow::config::detail {
namespace {

constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};
constexpr std::string_view kLogFormats[] = {"text", "json"};
// sun_path holds the path and its terminating NUL.
constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

void read_access_group(Diagnostics& diag, const Field& v, std::optional<gid_t>& gid,
                       std::string& name) {
    auto s = read_string(diag, v, "a group name or gid");
    if (!s) return;
    if (!s->empty() &&
        std::all_of(s->begin(), s->end(), [](char c) { return c >= '0' && c <= '9'; })) {
        // gid_t is 32 bits and (gid_t)-1 means "no change" to the kernel.
        if (s->size() > 10 || std::stoull(*s) >= 0xffffffffULL) {
            diag.error(v.pos, v.path, "gid " + *s + " is out of range");
            return;
        }
        gid = static_cast<gid_t>(std::stoull(*s));
        name = *s;
        return;
    }
    group g{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (getgrnam_r(s->c_str(), &g, buf.data(), buf.size(), &res) != 0 || !res) {
        diag.error(v.pos, v.path, "no group named " + quote(*s) + " on this system");
        return;
    }
    gid = g.gr_gid;
    name = *s;
}

}  // namespace

bool is_daemon_key(std::string_view key) {
    static constexpr std::string_view kKeys[] = {
        "socket",           "socket_mode",  "log_level",      "log_format",
        "log_file",         "log_dir",      "log_line_max",   "metrics",
        "shutdown_timeout", "socket_group", "readonly_group", "memory"};
    for (auto k : kKeys)
        if (k == key) return true;
    return false;
}

void read_daemon(Diagnostics& diag, const Field& f, const std::string& base_dir,
                 DaemonConfig& out) {
    const FieldReader readers[] = {
        {"socket",
         [&](const Field& v) {
             auto path = read_path(diag, v, base_dir);
             if (!path) return;
             if (path->size() > kMaxSocketPath) {
                 diag.error(v.pos, v.path,
                            "socket path is " + std::to_string(path->size()) +
                                " bytes long; a Unix socket path may have at most " +
                                std::to_string(kMaxSocketPath));
                 return;
             }
             out.socket = std::move(*path);
         }},
        {"socket_mode",
         [&](const Field& v) {
             if (auto m = read_mode(diag, v)) out.socket_mode = *m;
         }},
        {"log_level",
         [&](const Field& v) {
             if (auto i = read_choice(diag, v, kLogLevels)) out.log_level = kLogLevels[*i];
         }},
        {"shutdown_timeout",
         [&](const Field& v) {
             if (auto d = read_duration(diag, v, false)) out.shutdown_timeout = *d;
         }},
        {"log_format",
         [&](const Field& v) {
             if (auto i = read_choice(diag, v, kLogFormats)) out.log_format = kLogFormats[*i];
         }},
        {"log_file",
         [&](const Field& v) {
             if (auto p = read_path(diag, v, base_dir)) out.log_file = std::move(*p);
         }},
        {"log_dir",
         [&](const Field& v) {
             if (auto p = read_path(diag, v, base_dir)) out.log_dir = std::move(*p);
         }},
        {"log_line_max",
         [&](const Field& v) {
             auto n = read_size(diag, v, true);
             if (!n) return;
             if (*n < 256 || *n > (16u << 20)) {
                 report_expected(diag, v, "a size of 256B..16MiB");
                 return;
             }
             out.log_line_max = *n;
         }},
        {"socket_group",
         [&](const Field& v) {
             read_access_group(diag, v, out.socket_group, out.socket_group_name);
         }},
        {"readonly_group",
         [&](const Field& v) {
             read_access_group(diag, v, out.readonly_group, out.readonly_group_name);
         }},
        {"memory",
         [&](const Field& v) {
             const FieldReader memory[] = {
                 {"sample_every",
                  [&](const Field& e) {
                      auto d = read_duration(diag, e, false);
                      if (!d) return;
                      // Below 10ms the sampler would do nothing else; 0 turns it off.
                      if (d->count() != 0 && d->count() < 10) {
                          report_expected(diag, e, "0 (off) or a duration of at least 10ms");
                          return;
                      }
                      out.memory_sample_every = *d;
                  }},
             };
             read_fields(diag, v, "a mapping of memory settings (sample_every)", memory);
         }},
        {"metrics",
         [&](const Field& v) {
             auto s = read_string(diag, v, "an address like 127.0.0.1:9464");
             if (!s) return;
             auto colon = s->rfind(':');
             bool ok =
                 colon != std::string::npos && colon + 1 < s->size() && colon + 6 >= s->size();
             for (std::size_t i = colon + 1; ok && i < s->size(); ++i)
                 ok = (*s)[i] >= '0' && (*s)[i] <= '9';
             if (!ok) {
                 report_expected(diag, v, "HOST:PORT like 127.0.0.1:9464");
                 return;
             }
             out.metrics = *s;
         }},
    };
    read_fields(diag, f, "a mapping of daemon settings", readers);
}

}  // namespace cow::config::detail
