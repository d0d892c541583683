// `cowctl tree`: each worker's process subtree, and the orphans, read from /proc off the loop.
#pragma once

#include <string>
#include <vector>

#include <boost/json.hpp>
#include <sys/types.h>

namespace cow {

class Supervisor;

// A copy of what the loop knows, handed to the reader thread.
struct TreeQuery {
    struct W {
        std::string pool, name, state;
        pid_t pid;
    };
    struct O {
        pid_t pid;
        std::string from, comm;
        std::uint64_t worker_id;
        std::string pool;  // "" when unknown
    };
    std::vector<std::string> pools;  // in order
    std::vector<W> workers;
    std::vector<O> orphans;
    // When every root lives in a known cgroup, their members are all we read; otherwise the
    // whole of /proc is scanned.
    std::vector<std::string> cgroups;
    bool cgroups_cover_all = false;
    bool cmdlines = false;  // full command lines (one more file per process) instead of comm
};

// On the loop: snapshot the supervisor (optionally one pool).
TreeQuery make_tree_query(const Supervisor& sup, const std::string& pool, bool cmdlines);

// On the reader thread: read /proc and build the JSON of design §1
// {"pools":[{"name","workers":[{"name","pid","state","tree":NODE}],"orphans":[...]}],
//  "orphans":[unattributed]}, NODE = {"pid","ppid","cmd","comm","state","uptime_ms","children"}
// where "cmd" is the command line with cmdlines, else the comm.
boost::json::object read_trees(const TreeQuery& q);

}  // namespace cow
