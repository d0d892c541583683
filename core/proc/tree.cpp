#include "core/proc/tree.hpp"

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include "core/proc/cmdline.hpp"

namespace cow::proc {
namespace {

constexpr std::size_t kCmdlineMax = 256;

std::string cmdline_or_comm(ProcReader& reader, pid_t pid, const std::string& comm,
                            ReadStatus* status) {
    auto args = reader.read_cmdline(pid);
    *status = args.status;
    if (args.ok() && !args.value.empty()) return display_cmdline(args.value, kCmdlineMax);
    return "[" + comm + "]";  // as ps shows processes without argv
}

struct Flat {
    ProcNode node;
    std::size_t parent;
    std::size_t depth;
};

// Breadth-first over `children_of` (pid -> sorted pids) and `info` (pid -> Read<ProcNode>
// without children). Nodes live in a flat vector while walking, so no recursion and no pointer
// into a growing vector; they are nested only at the end.
template <class ChildrenOf, class Info>
Read<Subtree> walk(pid_t root, const TreeLimits& limits, ChildrenOf children_of, Info info) {
    auto first = info(root);
    if (!first.ok()) return {first.status, first.err, {}};

    Subtree out;
    std::vector<Flat> flat;
    flat.push_back({std::move(first.value), 0, 0});
    std::unordered_set<pid_t> seen{root};
    for (std::size_t i = 0; i < flat.size(); ++i) {
        const pid_t pid = flat[i].node.pid;
        const std::size_t depth = flat[i].depth;
        std::vector<pid_t> kids = children_of(pid);
        if (!kids.empty() && depth >= limits.max_depth) {
            out.truncated = true;
            continue;
        }
        for (pid_t kid : kids) {
            if (seen.count(kid)) continue;  // impossible in a consistent /proc; guard anyway
            if (flat.size() >= limits.max_nodes) {
                out.truncated = true;
                break;
            }
            auto node = info(kid);
            // Gone or unreadable mid-walk: skip. A different parent means the pid was reused or
            // the process reparented after we listed it: not part of this subtree any more.
            if (!node.ok() || node.value.ppid != pid) continue;
            seen.insert(kid);
            flat.push_back({std::move(node.value), i, depth + 1});
        }
    }

    // Children always sit after their parent, so a backward pass moves complete subtrees.
    // Pushing backwards reverses sibling order; each node restores it before it moves.
    for (std::size_t j = flat.size(); j-- > 1;) {
        auto& kids = flat[j].node.children;
        std::reverse(kids.begin(), kids.end());
        flat[flat[j].parent].node.children.push_back(std::move(flat[j].node));
    }
    std::reverse(flat[0].node.children.begin(), flat[0].node.children.end());
    out.nodes = flat.size();
    out.root = std::move(flat[0].node);
    return {ReadStatus::ok, 0, std::move(out)};
}

}  // namespace

Read<Subtree> build_subtree(ProcReader& reader, pid_t root, TreeLimits limits) {
    if (!reader.has_children_files()) reader.children(root);
    // Without children files every children() call would scan all of /proc: scan once instead.
    if (reader.has_children_files() == false) {
        return build_subtree(build_all(reader), reader, root, limits);
    }
    auto children_of = [&](pid_t pid) {
        auto kids = reader.children(pid);
        return kids.ok() ? std::move(kids.value) : std::vector<pid_t>{};
    };
    auto info = [&](pid_t pid) -> Read<ProcNode> {
        auto st = reader.read_stat(pid);
        if (!st.ok()) return {st.status, st.err, {}};
        ProcNode n{pid, st.value.ppid, st.value.starttime, st.value.state, st.value.comm, {}, {}};
        ReadStatus cmd_status;
        n.cmdline = cmdline_or_comm(reader, pid, n.comm, &cmd_status);
        if (cmd_status == ReadStatus::gone) return {ReadStatus::gone, ESRCH, {}};
        return {ReadStatus::ok, 0, std::move(n)};
    };
    return walk(root, limits, children_of, info);
}

ProcSnapshot build_all(ProcReader& reader) {
    ProcSnapshot snap;
    for (pid_t pid : reader.all_pids()) {
        auto st = reader.read_stat(pid);
        if (!st.ok()) continue;
        snap.children[st.value.ppid].push_back(pid);  // all_pids() is sorted, so these are too
        snap.procs.emplace(pid, ProcEntry{st.value.ppid, st.value.starttime, st.value.state,
                                          std::move(st.value.comm)});
    }
    return snap;
}

ProcSnapshot snapshot_of(ProcReader& reader, const std::vector<pid_t>& pids) {
    std::vector<pid_t> sorted(pids);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    ProcSnapshot snap;
    for (pid_t pid : sorted) {
        auto st = reader.read_stat(pid);
        if (!st.ok()) continue;
        snap.children[st.value.ppid].push_back(pid);
        snap.procs.emplace(pid, ProcEntry{st.value.ppid, st.value.starttime, st.value.state,
                                          std::move(st.value.comm)});
    }
    return snap;
}

std::vector<pid_t> descendants_of(const ProcSnapshot& snap, pid_t root, std::size_t max) {
    std::vector<pid_t> out;
    std::unordered_set<pid_t> seen{root};
    std::vector<pid_t> frontier{root};
    for (std::size_t i = 0; i < frontier.size() && out.size() < max; ++i) {
        auto it = snap.children.find(frontier[i]);
        if (it == snap.children.end()) continue;
        for (pid_t kid : it->second) {
            if (out.size() >= max) break;
            if (!seen.insert(kid).second) continue;
            out.push_back(kid);
            frontier.push_back(kid);
        }
    }
    return out;
}

Read<Subtree> build_subtree(const ProcSnapshot& snap, ProcReader& reader, pid_t root,
                            TreeLimits limits) {
    auto children_of = [&](pid_t pid) {
        auto it = snap.children.find(pid);
        return it == snap.children.end() ? std::vector<pid_t>{} : it->second;
    };
    auto info = [&](pid_t pid) -> Read<ProcNode> {
        auto it = snap.procs.find(pid);
        if (it == snap.procs.end()) return {ReadStatus::gone, ENOENT, {}};
        const ProcEntry& e = it->second;
        ProcNode n{pid, e.ppid, e.starttime, e.state, e.comm, {}, {}};
        if (!limits.cmdlines) {
            n.cmdline = n.comm;
            return {ReadStatus::ok, 0, std::move(n)};
        }
        ReadStatus cmd_status;
        n.cmdline = cmdline_or_comm(reader, pid, n.comm, &cmd_status);
        if (cmd_status == ReadStatus::gone) return {ReadStatus::gone, ESRCH, {}};
        return {ReadStatus::ok, 0, std::move(n)};
    };
    return walk(root, limits, children_of, info);
}

}  // namespace cow::proc
