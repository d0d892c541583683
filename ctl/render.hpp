// Human renderings of protocol results (the --json output is the result itself).
#pragma once

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "ctl/table.hpp"

namespace cow::ctl {

std::string render_status(const boost::json::value& result, const Style& style);
// The workers array of start/stop/restart replies, one line each.
std::string render_workers(const boost::json::value& result, const Style& style);
// pstree-like: each worker's subtree with pid, state, uptime and command, then orphans.
std::string render_tree(const boost::json::value& result, const Style& style);
std::string render_health(const boost::json::value& result);
// `cowctl events`: one event as a line that reads like the daemon's log.
std::string render_event(const boost::json::value& event, const Style& style);

// `cowctl history`: each slot's recent exits, newest first, with their causes.
std::string render_history(const boost::json::value& result, const Style& style);
// A rolling restart's progress item: "web.2 replaced: pid 100 -> 200 (3/8)".
std::string render_progress(const boost::json::value& item);
std::string progress_bar(const boost::json::value& item);
// The reload plan: one line per pool with what was (or would be) done. The daemon sends it
// before applying it (applying), and as the final reply (dry_run or applied).
enum class PlanStage { dry_run, applying, applied };
std::string render_plan(const boost::json::value& result, PlanStage stage);
// One line of worker output: "web.2 | text" (stderr marked "web.2 ! text").
std::string render_log_line(const boost::json::value& line, const Style& style);
// `mem`: a table per pool with its totals; `mem --maps`: one worker by mapping group.
std::string render_mem(const boost::json::value& result, const Style& style);
std::string render_maps(const boost::json::value& result, const Style& style);
std::string render_deep(const boost::json::value& result, const Style& style);
// `mem --history`: per worker, sparklines of uss, pss and cow_lost, and the uss trend.
std::string render_mem_history(const boost::json::value& result, const Style& style);
// A sparkline of values (▁..█, or ASCII "_.:-=+*#" when UTF-8 is not available), scaled
// between their min and max, `width` characters wide at most (the newest values).
std::string sparkline(const std::vector<double>& values, std::size_t width, bool utf8);

}  // namespace cow::ctl
