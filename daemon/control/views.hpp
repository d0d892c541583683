// JSON views of the supervisor's state: the shapes of design §1, which are a contract.
#pragma once

#include <chrono>

#include <boost/json.hpp>

#include "daemon/supervise/supervisor.hpp"

namespace cow::views {

// Converts a steady-clock instant to Unix epoch milliseconds for display.
std::int64_t epoch_ms(fsm::TimePoint t, fsm::TimePoint now_steady);

boost::json::object worker(const Worker& w, fsm::TimePoint now);
// One exit of a slot's main process with its cause: pid, generation, code or signal,
// core_dumped, cause, detail, started_ms, ended_ms (Unix epoch), uptime_ms.
boost::json::object exit_record(const ExitRecord& r, fsm::TimePoint now);
// {"workers":[{"name":..,"exits":[..newest first, n at most..]}]} for the given workers.
boost::json::object history(const std::vector<Worker*>& workers, std::size_t n, fsm::TimePoint now);
// {"pools":[{"name":..,"workers":[..]}]}; `only`, when given, limits it to those workers
// (and the pools that hold them).
boost::json::object status(const Supervisor& sup, const std::vector<Worker*>* only);

// `cowctl health` and /readyz: healthy when every essential pool (or, with none marked
// essential, every autostart pool; or only `pool` when given) has all its workers serving.
// {"healthy", "checked", "problems"}.
boost::json::object health(const Supervisor& sup, std::string_view pool = {});

}  // namespace cow::views
