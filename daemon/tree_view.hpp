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
};

// On the loop: snapshot the supervisor (optionally one pool).
TreeQuery make_tree_query(const Supervisor& sup, const std::string& pool);

// On the reader thread: read /proc and build the JSON of design §1
// {"pools":[{"name","workers":[{"name","pid","state","tree":NODE}],"orphans":[...]}],
//  "orphans":[unattributed]}, NODE = {"pid","ppid","cmd","comm","state","uptime_ms","children"}.
boost::json::object read_trees(const TreeQuery& q);

}  // namespace cow
