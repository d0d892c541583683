#include "ctl/progress.hpp"

#include <cstdio>

#include <unistd.h>

#include "ctl/render.hpp"

namespace cow::ctl {
namespace json = boost::json;

Progress::Progress(bool json, bool json_lines)
    : json_(json), json_lines_(json_lines), tty_(isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
    clear_bar();
}

void Progress::clear_bar() {
    if (!bar_drawn_) return;
    std::fputs("\r\x1b[K", stderr);
    std::fflush(stderr);
    bar_drawn_ = false;
}

void Progress::item(const json::value& v) {
    if (json_) {
        if (!json_lines_) return;
        std::fprintf(stderr, "%s\n", json::serialize(v).c_str());
        std::fflush(stderr);
        return;
    }
    if (!v.is_object()) return;
    clear_bar();
    if (const auto& o = v.as_object(); o.contains("pools")) {
        // A dry run's plan is its final reply: printed then, with its own heading.
        if (const auto* d = o.if_contains("dry_run"); d && d->is_bool() && d->get_bool()) return;
        std::fputs(render_plan(v, PlanStage::applying).c_str(), stdout);
        std::fflush(stdout);
        plan_shown_ = true;
        return;
    }
    if (!v.as_object().contains("worker")) return;  // a kind this cowctl does not know
    // A line per worker replaced; on a terminal, a progress bar redrawn in place under it.
    std::fputs(render_progress(v).c_str(), stdout);
    std::fflush(stdout);
    if (tty_) {
        std::fputs(progress_bar(v).c_str(), stderr);
        std::fflush(stderr);
        bar_drawn_ = true;
    }
}

}  // namespace cow::ctl
