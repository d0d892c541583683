// The strings of the control protocol that cowctl and cowherd must spell alike. Each is
// written once, here: a misspelt literal on one side would still compile and read as an
// absent argument or an unknown state, where a misspelt name below does not compile.
#pragma once

#include <algorithm>
#include <array>
#include <string_view>

namespace cow::proto {

// A request's "cmd".
namespace verb {
inline constexpr std::string_view status = "status";
inline constexpr std::string_view logs = "logs";
inline constexpr std::string_view reopen = "reopen";
inline constexpr std::string_view reload = "reload";
inline constexpr std::string_view scale = "scale";
inline constexpr std::string_view mem = "mem";
inline constexpr std::string_view tree = "tree";
inline constexpr std::string_view health = "health";
inline constexpr std::string_view start = "start";
inline constexpr std::string_view stop = "stop";
inline constexpr std::string_view restart = "restart";
inline constexpr std::string_view signal = "signal";
inline constexpr std::string_view shutdown = "shutdown";
inline constexpr std::string_view version = "version";
inline constexpr std::string_view history = "history";
inline constexpr std::string_view events = "events";
inline constexpr std::string_view top = "top";
inline constexpr std::string_view upgrade = "upgrade";
}  // namespace verb

// What a member of readonly_group may run: the verbs that change nothing. The denial message
// lists them in this order, and README.md and config/README.md name the same set.
inline constexpr std::array kReadOnlyVerbs{verb::status,  verb::tree,   verb::mem,
                                           verb::logs,    verb::health, verb::version,
                                           verb::history, verb::events, verb::top};

constexpr bool read_only_verb(std::string_view v) {
    return std::ranges::find(kReadOnlyVerbs, v) != kReadOnlyVerbs.end();
}

// The keys of a request's "args".
namespace arg {
inline constexpr std::string_view target = "target";  // a pool, a worker (POOL.N) or all
inline constexpr std::string_view wait = "wait";
inline constexpr std::string_view timeout_ms = "timeout_ms";
inline constexpr std::string_view all_at_once = "all_at_once";
inline constexpr std::string_view cancel = "cancel";
inline constexpr std::string_view batch = "batch";
inline constexpr std::string_view size = "size";
inline constexpr std::string_view signal = "signal";
inline constexpr std::string_view tree = "tree";
inline constexpr std::string_view args = "args";  // tree: show command lines
inline constexpr std::string_view maps = "maps";
inline constexpr std::string_view deep = "deep";
inline constexpr std::string_view sort = "sort";
inline constexpr std::string_view lines = "lines";
inline constexpr std::string_view stream = "stream";
inline constexpr std::string_view since_ms = "since_ms";
inline constexpr std::string_view follow = "follow";
inline constexpr std::string_view dry_run = "dry_run";
inline constexpr std::string_view pool = "pool";
inline constexpr std::string_view history = "history";  // mem: the series, not a snapshot
inline constexpr std::string_view points = "points";    // top: USS points per worker
// top: the "samples" of the client's last reply; when no sample came since, the reply leaves
// out every worker's uss_points (the client keeps its own), most of a reply's size.
inline constexpr std::string_view have_samples = "have_samples";
inline constexpr std::string_view binary = "binary";  // upgrade: the new daemon binary
}  // namespace arg

// The "target" that names every pool.
inline constexpr std::string_view kAllTargets = "all";

// Values of "stream": the logs argument, and the stream of each output line in its reply.
// (Not stdout and stderr: those are macros.)
namespace stream {
inline constexpr std::string_view out = "stdout";
inline constexpr std::string_view err = "stderr";
inline constexpr std::string_view both = "both";
}  // namespace stream

// An event's "kind" (`cowctl events`).
namespace event {
inline constexpr std::string_view transition = "transition";
inline constexpr std::string_view exit = "exit";
inline constexpr std::string_view recycle = "recycle";
inline constexpr std::string_view roll = "roll";
inline constexpr std::string_view reload = "reload";
inline constexpr std::string_view scale = "scale";
inline constexpr std::string_view orphan = "orphan";
inline constexpr std::string_view probe = "probe";
inline constexpr std::string_view hook = "hook";
}  // namespace event

// Values of mem's "sort": which of a worker tree's totals orders the workers.
namespace mem_sort {
inline constexpr std::string_view pss = "pss";
inline constexpr std::string_view uss = "uss";
inline constexpr std::string_view rss = "rss";
}  // namespace mem_sort
inline constexpr std::array kMemSorts{mem_sort::pss, mem_sort::uss, mem_sort::rss};

// A worker's "state" in status and the other worker views (the daemon's fsm::State).
namespace state {
inline constexpr std::string_view starting = "starting";
inline constexpr std::string_view running = "running";
inline constexpr std::string_view backoff = "backoff";
inline constexpr std::string_view stopping = "stopping";
inline constexpr std::string_view stopped = "stopped";
inline constexpr std::string_view exited = "exited";
inline constexpr std::string_view fatal = "fatal";
}  // namespace state

// A worker's "want": what the operator asked for (the daemon's fsm::Want).
namespace want {
inline constexpr std::string_view up = "up";
inline constexpr std::string_view down = "down";
}  // namespace want

}  // namespace cow::proto
