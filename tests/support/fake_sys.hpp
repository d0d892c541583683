// FakeSys: the supervisor's Sys over a manual clock and pretend processes, shared by the unit
// tests and the protocol fuzz target so that both drive the supervisor through the same seam
// (design §5). Nothing here reaches the operating system.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "daemon/os/sys.hpp"
#include "daemon/supervise/worker_fsm.hpp"

namespace cow::test {

class FakeSys final : public Sys {
  public:
    fsm::TimePoint t = fsm::TimePoint{} + std::chrono::hours(1);
    pid_t next_pid = 1000;
    std::string fail_with;     // when set, spawns fail with this message
    std::set<int> fail_calls;  // these spawn calls (0, 1, ...) fail
    int calls = 0;
    // A fuzzer runs for millions of inputs against one FakeSys: it turns this off, or the
    // records below would grow with every input.
    bool record = true;
    std::vector<std::vector<std::string>> spawned_env;
    std::vector<std::pair<pid_t, int>> kills;
    std::vector<ProcId> tree;           // what a descendant sweep finds
    std::vector<pid_t> extra_children;  // adopted orphans the test pretends exist
    std::map<pid_t, ProcInfo> infos;

    fsm::TimePoint now() const override { return t; }
    spawn::Result spawn(spawn::Plan& plan) override {
        spawn::Result r;
        r.pid = next_pid++;
        if (!fail_with.empty() || fail_calls.count(calls++)) {
            r.message = fail_with.empty() ? "exec /x: No such file or directory" : fail_with;
            r.stage = spawn::Stage::exec;
            return r;
        }
        r.ok = true;
        if (!record) return r;
        std::vector<std::string> env;
        for (char* e : plan.envp)
            if (e) env.emplace_back(e);
        spawned_env.push_back(std::move(env));
        return r;
    }
    void kill_group(pid_t leader, int sig) override { note_kill(leader, sig); }
    void kill_child(pid_t pid, int sig) override { note_kill(pid, sig); }
    std::vector<ProcId> kill_descendants(pid_t, int) override { return tree; }
    std::vector<pid_t> children() override { return extra_children; }
    std::optional<ProcInfo> proc_info(pid_t pid) override {
        auto it = infos.find(pid);
        if (it == infos.end()) return std::nullopt;
        return it->second;
    }
    cgroup::Cgroups* cgroups() override { return nullptr; }
    void kill_all_but_self() override {}

    int kills_of(pid_t pid, int sig) const {
        int n = 0;
        for (auto& [p, s] : kills)
            n += (p == pid && s == sig);
        return n;
    }

  private:
    void note_kill(pid_t pid, int sig) {
        if (record) kills.emplace_back(pid, sig);
    }
};

}  // namespace cow::test
