#include "daemon/supervise/exit_cause.hpp"

#include <chrono>
#include <csignal>

#include <boost/json/value.hpp>

#include "core/signal_names.hpp"

namespace cow {

std::string_view to_string(ExitCause c) {
    switch (c) {
        case ExitCause::exited:
            return "exited";
        case ExitCause::crashed:
            return "crashed";
        case ExitCause::oom_killed:
            return "oom_killed";
        case ExitCause::killed_by_cowherd:
            return "killed_by_cowherd";
        case ExitCause::killed_externally:
            return "killed_externally";
    }
    return "exited";
}

namespace {

// The signals a process gets from its own faults (or raises on itself, as abort() does): the
// ones whose default action dumps core.
bool self_inflicted(int sig) {
    switch (sig) {
        case SIGSEGV:
        case SIGABRT:
        case SIGBUS:
        case SIGILL:
        case SIGFPE:
        case SIGSYS:
        case SIGTRAP:
        case SIGXCPU:
        case SIGXFSZ:
        case SIGQUIT:
            return true;
        default:
            return false;
    }
}

}  // namespace

ExitCauseFound classify_exit(const ExitInfo& info, const std::vector<SentSignal>& sent,
                             const OomEvidence& oom) {
    if (info.code) {
        // It ended itself, but because cowherd asked it to stop: that is why it died (a signal
        // an operator passed on with `cowctl signal` is no such request).
        for (auto it = sent.rbegin(); it != sent.rend(); ++it)
            if (it->reason != "cowctl signal") return {ExitCause::killed_by_cowherd, it->reason};
        return {ExitCause::exited, ""};
    }
    const int sig = info.signal.value_or(0);
    // The last time cowherd sent this very signal: the escalation's KILL after a TERM says why
    // the stop began, which is what the operator asks.
    for (auto it = sent.rbegin(); it != sent.rend(); ++it)
        if (it->signal == sig) return {ExitCause::killed_by_cowherd, it->reason};
    if (sig == SIGKILL) {
        if (!oom.kernel.empty()) return {ExitCause::oom_killed, oom.kernel};
        if (oom.worker) return {ExitCause::oom_killed, "OOM kill counted in the worker's cgroup"};
        if (oom.container) return {ExitCause::oom_killed, "OOM kill counted in our cgroup"};
        if (oom.machine)
            return {ExitCause::oom_killed, "likely: an OOM kill on the machine at that moment"};
    }
    if (self_inflicted(sig)) return {ExitCause::crashed, ""};
    return {ExitCause::killed_externally, "a signal cowherd did not send"};
}

std::string describe(const ExitInfo& info, const ExitCauseFound& cause) {
    std::string out = describe(info);
    if (cause.cause == ExitCause::exited) return out;
    out += ": ";
    out += to_string(cause.cause);
    if (!cause.detail.empty()) out += " (" + cause.detail + ")";
    return out;
}

}  // namespace cow

namespace cow {

boost::json::object exit_fields(const ExitRecord& r) {
    boost::json::object e;
    e["pid"] = r.pid;
    e["generation"] = r.generation;
    e["code"] = r.info.code ? boost::json::value(*r.info.code) : boost::json::value(nullptr);
    if (r.info.signal) {
        e["signal"] = *r.info.signal;
        e["signal_name"] = signal_name(*r.info.signal);
    } else {
        e["signal"] = nullptr;
    }
    e["core_dumped"] = r.info.core_dumped;
    e["cause"] = to_string(r.cause.cause);
    e["detail"] = r.cause.detail;
    e["uptime_ms"] = std::chrono::duration_cast<Millis>(r.ended_at - r.started_at).count();
    if (!r.orphan.empty()) e["orphan"] = r.orphan;
    return e;
}

}  // namespace cow
