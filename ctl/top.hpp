// `cowctl top`: a live full-screen view over the control socket (ncurses), one `top` request
// per refresh. Without a terminal that can address its cursor, or with --once, one snapshot.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace cow::ctl {

struct TopOptions {
    double interval_s = 1.0;  // refresh period
    bool once = false;        // print one snapshot and exit
    std::string pool;         // start filtered to this pool
};

struct TopConnection {
    std::string socket;  // the control socket's path
    bool json = false;   // --json: print one `top` reply and exit
};

void add_top_options(CLI::App& top, TopOptions& o);
// Returns cowctl's exit code (0 ok, 1 failed, 3 unreachable).
int run_top(const TopConnection& conn, const TopOptions& o);

}  // namespace cow::ctl
