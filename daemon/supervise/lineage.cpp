#include "daemon/supervise/lineage.hpp"

#include <csignal>

namespace cow {

namespace {
constexpr std::size_t kDeadLeaderMemory = 4096;
}  // namespace

Lineage::Lineage(Sys& sys, const std::vector<std::unique_ptr<Pool>>& pools, FindWorker find)
    : sys_(sys), pools_(pools), find_(std::move(find)) {}

void Lineage::add_main(pid_t pid, Worker& w) {
    by_pid_[pid] = &w;
    ++epoch_;
}

Worker* Lineage::main_of(pid_t pid) const {
    auto it = by_pid_.find(pid);
    return it == by_pid_.end() ? nullptr : it->second;
}

void Lineage::to_predecessor(pid_t pid, Worker& w) {
    by_pid_.erase(pid);
    pred_by_pid_[pid] = &w;
}

void Lineage::from_predecessor(pid_t pid, Worker& w) {
    pred_by_pid_.erase(pid);
    by_pid_[pid] = &w;
}

void Lineage::drop_main(pid_t pid) {
    if (by_pid_.erase(pid)) ++epoch_;
}

Lineage::Reaped Lineage::reaped(pid_t pid) {
    ++reaped_;
    ++epoch_;
    if (failed_spawns_.erase(pid)) return {Reaped::Kind::failed_spawn};
    if (auto p = pred_by_pid_.find(pid); p != pred_by_pid_.end()) {
        Worker* w = p->second;
        pred_by_pid_.erase(p);
        return {Reaped::Kind::predecessor, w};
    }
    if (auto o = orphans_.find(pid); o != orphans_.end()) {
        Reaped r{Reaped::Kind::orphan};
        r.orphan = std::move(o->second);
        orphans_.erase(o);
        return r;
    }
    if (auto it = by_pid_.find(pid); it != by_pid_.end()) {
        Worker* w = it->second;
        by_pid_.erase(it);
        return {Reaped::Kind::main, w};
    }
    // A descendant that reparented to us and died before a scan adopted it.
    adopt_due_ = true;
    return {Reaped::Kind::stranger};
}

void Lineage::leader_died(pid_t pid, const Owner& owner) {
    batch_deaths_.push_back(owner);
    dead_leaders_[pid] = owner;
    dead_leader_order_.push_back(pid);
    while (dead_leader_order_.size() > kDeadLeaderMemory) {
        dead_leaders_.erase(dead_leader_order_.front());
        dead_leader_order_.pop_front();
    }
}

void Lineage::end_batch() {
    batch_deaths_.clear();
    adopt_due_ = false;
}

void Lineage::release_cgroup(const std::string& path) {
    cgroup::Cgroups* cg = sys_.cgroups();
    if (!cg) return;
    if (!cg->populated(path).value_or(false) && cg->remove(path)) {
        cgroup_owner_.erase(path);
        dead_cgroups_.erase(path);
    } else {
        dead_cgroups_.insert(path);  // orphans live on in it; removed once they are gone
    }
}

void Lineage::release_dead_cgroups() {
    if (dead_cgroups_.empty()) return;
    std::vector<std::string> paths(dead_cgroups_.begin(), dead_cgroups_.end());
    for (const auto& path : paths)
        release_cgroup(path);
}

std::vector<std::pair<pid_t, std::string>> Lineage::uncontained() const {
    std::vector<std::pair<pid_t, std::string>> out;
    for (const auto& [pid, w] : by_pid_)
        if (w->cgroup.empty()) out.emplace_back(pid, w->name);
    for (const auto& [pid, w] : pred_by_pid_)
        if (w->pred && w->pred->cgroup.empty()) out.emplace_back(pid, w->name + " (replaced)");
    // An orphan of a kill_mode: group pool sits in the daemon's own cgroup, which no successor
    // searches: only a worker cgroup of ours contains it.
    for (const auto& [pid, o] : orphans_)
        if (o.cgroup.empty() || !cgroup_owner_.count(o.cgroup))
            out.emplace_back(pid, o.from + " orphan");
    return out;
}

std::optional<Lineage::Owner> Lineage::owner_of(const ProcInfo& info) const {
    if (!info.cgroup.empty())
        if (auto it = cgroup_owner_.find(info.cgroup); it != cgroup_owner_.end()) return it->second;
    for (pid_t key : {info.sid, info.pgid}) {
        if (auto it = dead_leaders_.find(key); it != dead_leaders_.end()) return it->second;
        if (auto it = by_pid_.find(key); it != by_pid_.end())
            return Owner{it->second->id, it->second->generation, it->second->name};
    }
    // A daemon-style double fork: its session or group leader may be a zombie still hanging
    // under the worker; follow ppid links up from it.
    for (pid_t key : {info.sid, info.pgid}) {
        pid_t at = key;
        for (int depth = 0; depth < 64 && at > 1 && at != self_pid_; ++depth) {
            if (auto it = by_pid_.find(at); it != by_pid_.end())
                return Owner{it->second->id, it->second->generation, it->second->name};
            auto up = sys_.proc_info(at);
            if (!up) break;
            at = up->ppid;
        }
    }
    // A descendant a tree signal found (it may have called setsid, out of every group we know).
    for (const auto& p : pools_)
        for (const auto& w : p->workers)
            for (const ProcId& id : w->swept)
                if (id.pid == info.pid && id.starttime == info.starttime)
                    return Owner{w->id, w->swept_generation, w->name};
    // Without a cgroup, a double-forked, setsid daemon is in no group or session of ours and
    // its parents are gone; what it inherited from its worker still names it.
    if (auto env = sys_.worker_env(info.pid)) {
        for (const auto& p : pools_) {
            if (p->name() != env->first) continue;
            for (const auto& w : p->workers) {
                if (w->index != env->second) continue;
                // Born after the current generation's main process: that generation's. Before
                // it: an earlier, dead generation's.
                std::uint64_t gen = w->generation;
                if (w->alive()) {
                    auto main = sys_.proc_info(w->pid);
                    if (main && info.starttime < main->starttime && gen > 0) --gen;
                }
                return Owner{w->id, gen, w->name};
            }
        }
    }
    // Only one death in this batch: whatever was just reparented came from it.
    if (batch_deaths_.size() == 1) return batch_deaths_.front();
    return std::nullopt;
}

bool Lineage::has_orphans(const Worker& w) const {
    for (const auto& [pid, o] : orphans_)
        if (o.worker_id == w.id) return true;
    return false;
}

bool Lineage::known_child(pid_t pid) const {
    return by_pid_.count(pid) || pred_by_pid_.count(pid) || orphans_.count(pid) ||
           failed_spawns_.count(pid) || helpers_.count(pid);
}

std::vector<pid_t> Lineage::adopt() {
    std::vector<pid_t> adopted;
    for (pid_t pid : sys_.children()) {
        // A process that belongs to a worker in any role (its main process, the old process a
        // roll is replacing, a failed spawn) is never an orphan.
        if (known_child(pid)) continue;
        auto info = sys_.proc_info(pid);
        if (!info) continue;  // gone already; the reaper will see it
        Orphan o;
        o.pid = pid;
        o.starttime = info->starttime;
        o.comm = info->comm;
        o.group_leader = info->pgid == pid;
        o.adopted_at = sys_.now();
        const Worker* w = nullptr;
        if (auto owner = owner_of(*info)) {
            o.from = owner->name;
            o.worker_id = owner->worker_id;
            o.generation = owner->generation;
            w = find_(owner->worker_id);
        } else {
            o.from = "unknown";
        }
        if (w) {
            o.policy = w->pool->cfg->orphans;
            o.grace = w->pool->cfg->stop_timeout;
            o.cgroup = info->cgroup;
            // A dead generation's cgroup holds only leftovers; the live one holds the worker.
            // Only a worker cgroup of ours: a process of a kill_mode: group pool lives in the
            // daemon's own cgroup, and signalling that would signal the daemon.
            o.own_cgroup =
                cgroup_owner_.count(info->cgroup) && (info->cgroup != w->cgroup || !w->alive());
        }
        keep(std::move(o));
        adopted.push_back(pid);
    }
    return adopted;
}

Orphan& Lineage::keep(Orphan o) {
    ++epoch_;
    const pid_t pid = o.pid;
    return orphans_[pid] = std::move(o);
}

void Lineage::terminate(Orphan& o, Millis grace) {
    if (o.terminating) return;
    o.terminating = true;
    for (int sig : {SIGTERM, SIGCONT}) {
        sys_.kill_child(o.pid, sig);
        if (o.group_leader) sys_.kill_group(o.pid, sig);
        if (o.own_cgroup && sys_.cgroups()) sys_.cgroups()->signal(o.cgroup, sig);
    }
    o.kill_at = sys_.now() + grace;
}

void Lineage::kill(Orphan& o) {
    sys_.kill_child(o.pid, SIGKILL);
    if (o.group_leader) sys_.kill_group(o.pid, SIGKILL);
    if (o.own_cgroup && sys_.cgroups()) sys_.cgroups()->kill(o.cgroup);
    o.kill_at.reset();
}

Worker* Lineage::speaker(pid_t pid) const {
    if (Worker* w = main_of(pid)) return w;
    auto info = sys_.proc_info(pid);
    if (!info) return nullptr;
    if (!info->cgroup.empty())
        if (auto it = cgroup_owner_.find(info->cgroup); it != cgroup_owner_.end()) {
            Worker* w = find_(it->second.worker_id);
            return w && w->generation == it->second.generation && w->alive() ? w : nullptr;
        }
    pid_t p = info->ppid;
    for (int hops = 0; hops < 32 && p > 1; ++hops) {
        if (Worker* w = main_of(p)) return w;
        auto up = sys_.proc_info(p);
        if (!up) return nullptr;
        p = up->ppid;
    }
    return nullptr;
}

bool Lineage::still_there(const ProcId& id) const {
    auto info = sys_.proc_info(id.pid);
    if (!info || info->starttime != id.starttime) return false;
    // A zombie is gone unless it is ours to reap: then the reaper will hear of it.
    return info->state != 'Z' || info->ppid == self_pid_;
}

std::vector<pid_t> Lineage::known_pids() const {
    std::vector<pid_t> out;
    out.reserve(by_pid_.size() + pred_by_pid_.size() + orphans_.size());
    for (const auto& [pid, w] : by_pid_)
        out.push_back(pid);
    for (const auto& [pid, w] : pred_by_pid_)
        out.push_back(pid);
    for (const auto& [pid, o] : orphans_)
        out.push_back(pid);
    return out;
}

}  // namespace cow
