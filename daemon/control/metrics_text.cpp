#include "daemon/control/metrics_text.hpp"

#include <cstdio>
#include <fstream>

#include <dirent.h>

#include "core/signal_names.hpp"

namespace cow {
namespace {

// Label values escape backslash, double quote and newline (exposition format).
std::string esc(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

struct Writer {
    std::string out;
    void head(const char* name, const char* type, const char* help) {
        out += "# HELP ";
        out += name;
        out += ' ';
        out += help;
        out += "\n# TYPE ";
        out += name;
        out += ' ';
        out += type;
        out += '\n';
    }
    template <class V>
    void line(const char* name, const std::string& labels, V value) {
        out += name;
        if (!labels.empty()) out += "{" + labels + "}";
        out += ' ';
        char buf[64];
        if constexpr (std::is_floating_point_v<V>)
            std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(value));
        else
            std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(value));
        out += buf;
        out += '\n';
    }
};

std::string wl(const Worker& w) {
    return "pool=\"" + esc(w.pool->name()) + "\",worker=\"" + esc(w.name) + "\"";
}

}  // namespace

std::string render_metrics(const Supervisor& sup, const std::map<std::string, PoolLogStats>& logs,
                           const mem::Sample* memory, const DaemonFigures& d) {
    Writer m;
    const auto now = sup.now();

    m.head("cowherd_worker_state", "gauge", "Current state of each worker slot (one-hot).");
    for (const auto& p : sup.pools())
        for (const auto& w : p->workers)
            for (auto s : fsm::kAllStates)
                m.line("cowherd_worker_state",
                       wl(*w) + ",state=\"" + std::string(fsm::to_string(s)) + "\"",
                       w->slot.state == s ? 1 : 0);

    m.head("cowherd_worker_restarts_total", "counter", "Automatic restarts of the worker slot.");
    for (const auto& p : sup.pools())
        for (const auto& w : p->workers)
            m.line("cowherd_worker_restarts_total", wl(*w), w->restarts);

    m.head("cowherd_worker_recycles_total", "counter",
           "Restarts of the worker slot for memory.max_private.");
    for (const auto& p : sup.pools())
        for (const auto& w : p->workers)
            m.line("cowherd_worker_recycles_total", wl(*w), w->recycles);

    m.head("cowherd_worker_exits_total", "counter",
           "Exits of the worker slot's main process, by cause and by exit code or signal.");
    for (const auto& p : sup.pools())
        for (const auto& w : p->workers)
            for (const auto& [cause, n] : w->exits)
                m.line("cowherd_worker_exits_total", wl(*w) + "," + cause, n);

    m.head("cowherd_worker_uptime_seconds", "gauge",
           "Seconds since the worker's current process started (0 when none runs).");
    for (const auto& p : sup.pools())
        for (const auto& w : p->workers)
            m.line("cowherd_worker_uptime_seconds", wl(*w),
                   w->alive() ? std::chrono::duration<double>(now - w->started_at).count() : 0.0);

    m.head("cowherd_pool_workers", "gauge", "Configured size of each pool.");
    for (const auto& p : sup.pools())
        m.line("cowherd_pool_workers", "pool=\"" + esc(p->name()) + "\"", p->workers.size());

    if (memory) {
        m.head("cowherd_worker_memory_bytes", "gauge",
               "Memory of the worker's tree at the last sample: rss (sum), pss, uss, shared "
               "(rss - uss), swap_pss.");
        std::map<std::string, mem::Totals> pools;
        for (const auto& wm : memory->workers) {
            mem::Totals t;
            for (const auto& pm : wm.procs)
                if (pm.status == proc::ReadStatus::ok) t.add(pm.now);
            pools[wm.target.pool].pss += t.pss;
            pools[wm.target.pool].uss += t.uss;
            pools[wm.target.pool].swap_pss += t.swap_pss;
            pools[wm.target.pool].rss_sum += t.rss_sum;
            if (wm.procs.empty()) continue;
            const std::string l =
                "pool=\"" + esc(wm.target.pool) + "\",worker=\"" + esc(wm.target.name) + "\"";
            m.line("cowherd_worker_memory_bytes", l + ",kind=\"rss\"", t.rss_sum);
            m.line("cowherd_worker_memory_bytes", l + ",kind=\"pss\"", t.pss);
            m.line("cowherd_worker_memory_bytes", l + ",kind=\"uss\"", t.uss);
            m.line("cowherd_worker_memory_bytes", l + ",kind=\"shared\"",
                   t.rss_sum > t.uss ? t.rss_sum - t.uss : 0);
            m.line("cowherd_worker_memory_bytes", l + ",kind=\"swap_pss\"", t.swap_pss);
        }
        m.head("cowherd_pool_footprint_bytes", "gauge",
               "Sum of pss + swap_pss over the pool's processes: what the pool really costs.");
        for (const auto& [pool, t] : pools)
            m.line("cowherd_pool_footprint_bytes", "pool=\"" + esc(pool) + "\"", t.footprint());
        m.head("cowherd_pool_saved_bytes", "gauge",
               "Sum of rss - sum of pss: what sharing saves (libraries shared with other "
               "programs included).");
        for (const auto& [pool, t] : pools)
            m.line("cowherd_pool_saved_bytes", "pool=\"" + esc(pool) + "\"", t.saved());
        m.head("cowherd_memory_scan_seconds", "gauge", "Duration of the last memory scan.");
        m.line("cowherd_memory_scan_seconds", "", memory->seconds);
    }

    m.head("cowherd_log_lines_total", "counter", "Lines of worker output captured.");
    for (const auto& [pool, st] : logs) {
        m.line("cowherd_log_lines_total", "pool=\"" + esc(pool) + "\",stream=\"stdout\"",
               st.lines[0]);
        m.line("cowherd_log_lines_total", "pool=\"" + esc(pool) + "\",stream=\"stderr\"",
               st.lines[1]);
    }
    m.head("cowherd_log_dropped_lines_total", "counter",
           "Lines dropped because a sink was slower than the worker (log_backpressure: drop), "
           "or lost because it could not be written.");
    for (const auto& [pool, st] : logs)
        m.line("cowherd_log_dropped_lines_total", "pool=\"" + esc(pool) + "\"", st.dropped);
    m.head("cowherd_log_write_errors_total", "counter",
           "Failed writes (and opens) of a log sink, retries included: a full disk, EIO, a "
           "log_dir gone or not writable.");
    for (const auto& [pool, st] : logs) {
        m.line("cowherd_log_write_errors_total", "pool=\"" + esc(pool) + "\",stream=\"stdout\"",
               st.write_errors[0]);
        m.line("cowherd_log_write_errors_total", "pool=\"" + esc(pool) + "\",stream=\"stderr\"",
               st.write_errors[1]);
    }

    m.head("cowherd_orphans", "gauge", "Adopted orphans currently tracked.");
    m.line("cowherd_orphans", "", sup.orphans().size());
    m.head("cowherd_resident_memory_bytes", "gauge", "The daemon's own resident memory.");
    m.line("cowherd_resident_memory_bytes", "", d.resident_bytes);
    m.head("cowherd_open_fds", "gauge", "File descriptors the daemon holds.");
    m.line("cowherd_open_fds", "", d.open_fds);
    m.head("cowherd_event_loop_lag_seconds", "gauge",
           "How late the event loop ran a once-a-second timer, last time.");
    m.line("cowherd_event_loop_lag_seconds", "", d.loop_lag_seconds);
    m.head("cowherd_uptime_seconds", "gauge", "Seconds since the daemon started.");
    m.line("cowherd_uptime_seconds", "", d.uptime_seconds);
    return m.out;
}

DaemonFigures read_self_figures() {
    DaemonFigures d;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) d.resident_bytes = std::stoull(line.substr(6)) * 1024;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(dir))
            if (e->d_name[0] != '.') ++d.open_fds;
        ::closedir(dir);
        if (d.open_fds > 0) --d.open_fds;  // the directory's own fd
    }
    return d;
}

}  // namespace cow
