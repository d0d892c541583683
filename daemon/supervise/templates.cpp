// spawn: template, the supervisor's side: each such pool has a template process that loads the
// program once and forks its workers on request (template/cowtemplate.h). The template is
// started when a worker first needs it and the workers wait for it; once it is ready each spawn
// is a fork request. Workers outlive their template: when it dies they keep serving, and the
// next spawn starts a new one. A restart of the whole pool (a deploy) starts a new one too.
#include <csignal>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/protocol_names.hpp"
#include "core/units.hpp"
#include "daemon/spawn/template_protocol.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

using fsm::Event;
using fsm::EventType;
using fsm::State;

namespace {

// A fork copies the template's page tables: milliseconds, even for a large template. Past
// this the template is taken for hung.
constexpr Millis kForkAnswer{5000};
// How often a loading template's socket is looked at for its "ready".
constexpr Millis kReadyPoll{20};
// And a ready one's for the answers to the requests in flight: a fork takes a few ms.
constexpr Millis kAnswerPoll{1};

}  // namespace

void Supervisor::template_spawn(Worker& w) {
    Pool& p = *w.pool;
    auto& t = p.tpl;
    if (t.state == Pool::Template::State::ready) {
        // The answer is read by poll_templates: the loop goes on meanwhile (status, reaping,
        // the next requests, which the template answers in order).
        if (launcher_.fork_in_flight(w)) return;  // its answer decides
        const std::uint64_t id = t.next_id++;
        const auto now = sys_.now();
        if (!launcher_.request_fork(w, t.sock, id)) {
            apply(w, Event{EventType::spawn_failed, now, {}});
            return;
        }
        if (t.forks.empty()) t.next_poll = now + kAnswerPoll;
        t.forks.push_back({id, w.id, now});
        w.last_reason = "forking from the pool's template";
        return;
    }
    if (std::find(t.held.begin(), t.held.end(), w.id) == t.held.end()) t.held.push_back(w.id);
    w.last_reason = "waiting for the pool's template";
    if (t.state == Pool::Template::State::down) start_template(p);
}

void Supervisor::start_template(Pool& p) {
    auto& t = p.tpl;
    int sv[2];
    std::string why;
    pid_t pid = 0;
    // Non-blocking on our end only: the template's end is its own file and blocks.
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        ::fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0) {
        why = std::string("socketpair: ") + std::strerror(errno);
    } else {
        if (!t.log) {
            t.log = std::make_unique<Worker>();
            t.log->pool = &p;
            t.log->index = -1;
            t.log->id = next_worker_id_++;
            t.log->name = p.name() + ".template";
        }
        pid = launcher_.spawn_template(p, sv[1], *t.log, why);
        ::close(sv[1]);
        if (pid > 0) {
            t.sock = sv[0];
        } else {
            ::close(sv[0]);
        }
    }
    if (pid <= 0) {
        spdlog::error("pool {}: cannot start its template: {}", p.name(), why);
        fail_held(p, "cannot start the template: " + why);
        return;
    }
    lineage_.add_helper(pid);  // ours, not an orphan to adopt
    t.state = Pool::Template::State::starting;
    t.restart_at.reset();
    t.pid = pid;
    t.next_id = 1;
    ++t.generation;
    t.started_at = sys_.now();
    t.next_poll = t.started_at + kReadyPoll;
    t.deadline.reset();
    if (p.cfg->template_timeout.count() > 0) t.deadline = t.started_at + p.cfg->template_timeout;
    spdlog::info("pool {}: template pid {} starting (generation {})", p.name(), pid, t.generation);
    events_.emit(t.started_at, proto::event::transition, p.name(), p.name() + ".template",
                 fmt::format("pool {} template pid {} starting", p.name(), pid),
                 {{"pid", pid}, {"from", "stopped"}, {"to", "starting"}, {"reason", "template"}});
}

// Workers held for a template that will not come: each fails its start, and its own backoff
// (and max_restarts) decides when the next template is tried.
void Supervisor::fail_held(Pool& p, const std::string& why) {
    auto held = std::move(p.tpl.held);
    p.tpl.held.clear();
    const auto now = sys_.now();
    for (std::uint64_t id : held) {
        Worker* w = find_worker(id);
        if (!w || w->pool != &p || w->alive() || w->slot.state != State::starting) continue;
        w->last_error = why;
        spdlog::error("{} spawn failed: {}", w->name, why);
        apply(*w, Event{EventType::spawn_failed, now, {}});
    }
}

bool Supervisor::forks_in_flight() const {
    return std::any_of(pools_.begin(), pools_.end(),
                       [](const auto& p) { return !p->tpl.forks.empty(); });
}

// The answers that came, in request order. A worker stopped meanwhile is never let run.
void Supervisor::read_fork_answers(Pool& p) {
    auto& t = p.tpl;
    while (!t.forks.empty() && t.sock >= 0) {
        char buf[1024];
        const ssize_t n = ::recv(t.sock, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        if (n <= 0) {
            fail_forks(p, "its socket closed");
            break;
        }
        const auto reply = spawn::parse_reply(std::string_view(buf, static_cast<size_t>(n)));
        using K = spawn::TemplateReply::Kind;
        if (reply.kind == K::ready) continue;
        if (reply.kind != K::bad && reply.id < t.forks.front().id) continue;  // not ours now
        const auto f = t.forks.front();
        t.forks.pop_front();
        if (reply.kind != K::bad && reply.id != f.id)  // it skipped one: a broken template
            fork_answered(p, f, nullptr,
                          "an answer to request " + std::to_string(reply.id) + ", not " +
                              std::to_string(f.id));
        else
            fork_answered(p, f, &reply, "");
    }
    if (adoption_deferred_ && !forks_in_flight()) adopt_orphans();
}

void Supervisor::fork_answered(Pool& p, const Pool::Template::Fork& f,
                               const spawn::TemplateReply* reply, const std::string& why) {
    if (f.worker == 0) {  // stopped meanwhile: it never runs
        if (reply && reply->kind == spawn::TemplateReply::Kind::forked)
            lineage_.add_failed_spawn(reply->pid);  // it exits at once, without the byte
        if (f.go >= 0) ::close(f.go);
        return;
    }
    Worker* w = find_worker(f.worker);
    if (!w || w->pool != &p) return;
    const bool run = w->slot.state == State::starting && w->slot.want == fsm::Want::up;
    auto a = launcher_.answer_fork(*w, reply, why, run);
    if (a.cancelled > 0) lineage_.add_failed_spawn(a.cancelled);  // it exits at once
    if (run) {
        apply(
            *w,
            Event{a.launched.ok ? EventType::spawned : EventType::spawn_failed, a.launched.at, {}});
    } else if (!w->alive() && w->slot.state == State::stopping) {
        apply(*w, Event{EventType::spawn_failed, sys_.now(), {}});  // its stop is over
    }
}

// Requests the template will never answer (it is gone or going): each worker fails its start.
void Supervisor::fail_forks(Pool& p, const std::string& why) {
    auto forks = std::move(p.tpl.forks);
    p.tpl.forks.clear();
    for (const auto& f : forks)
        fork_answered(p, f, nullptr, why);
}

void Supervisor::poll_templates() {
    const auto now = sys_.now();
    for (auto& pp : pools_) {
        Pool& p = *pp;
        auto& t = p.tpl;
        if (t.state == Pool::Template::State::down && t.restart_at && now >= *t.restart_at) {
            t.restart_at.reset();
            if (template_wanted(p)) start_template(p);
            continue;
        }
        if (t.state == Pool::Template::State::ready && !t.forks.empty()) {
            read_fork_answers(p);
            if (t.forks.empty()) continue;
            if (now >= t.forks.front().sent + kForkAnswer) {
                // A template that does not answer is of no use to the next spawn either.
                spdlog::warn("pool {}: template pid {} did not answer within {}; stopping it",
                             p.name(), t.pid, format_duration(kForkAnswer));
                fail_forks(p, "no answer within " + format_duration(kForkAnswer));
                retire_template(p, SIGKILL);
                continue;
            }
            if (now >= t.next_poll) t.next_poll = now + kAnswerPoll;
            continue;
        }
        if (t.state != Pool::Template::State::starting) continue;
        if (now >= t.next_poll) t.next_poll = now + kReadyPoll;
        char buf[512];
        const ssize_t n = ::recv(t.sock, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            const auto reply = spawn::parse_reply(std::string_view(buf, static_cast<size_t>(n)));
            if (reply.kind != spawn::TemplateReply::Kind::ready) {
                spdlog::warn("pool {}: template pid {}: {}; expected ready", p.name(), t.pid,
                             reply.why.empty() ? "an answer to no request" : reply.why);
                continue;
            }
            t.state = Pool::Template::State::ready;
            t.ready_at = now;
            t.deadline.reset();
            spdlog::info("pool {}: template pid {} ready after {}", p.name(), t.pid,
                         format_duration(std::chrono::duration_cast<Millis>(now - t.started_at)));
            events_.emit(now, proto::event::transition, p.name(), p.name() + ".template",
                         fmt::format("pool {} template pid {} ready", p.name(), t.pid),
                         {{"pid", t.pid},
                          {"from", "starting"},
                          {"to", "running"},
                          {"reason", "template ready"}});
            auto held = std::move(t.held);
            t.held.clear();
            for (std::uint64_t id : held) {
                Worker* w = find_worker(id);
                if (w && w->pool == &p && !w->alive() && w->slot.state == State::starting &&
                    w->slot.want == fsm::Want::up)
                    template_spawn(*w);
                if (t.state != Pool::Template::State::ready) break;  // it failed meanwhile
            }
            continue;
        }
        if (t.deadline && now >= *t.deadline) {
            const std::string why = "the template did not say ready within template_timeout " +
                                    format_duration(p.cfg->template_timeout);
            spdlog::warn("pool {}: template pid {}: {}; killing it", p.name(), t.pid, why);
            fail_held(p, why);
            retire_template(p, SIGKILL);
        }
    }
}

// The template goes (a new generation is due, the pool is gone, or it failed): its socket
// closes, which ends a template that waits for requests, and `sig` ends one that does not.
void Supervisor::retire_template(Pool& p, int sig) {
    auto& t = p.tpl;
    if (!t.held.empty()) fail_held(p, "the template was stopped before it was ready");
    if (!t.forks.empty()) fail_forks(p, "the template was stopped before it answered");
    if (t.sock >= 0) ::close(t.sock);
    t.sock = -1;
    if (t.pid > 0) {
        sys_.kill_child(t.pid, sig);
        retired_templates_[t.pid] = p.name();
    }
    t.pid = 0;
    t.state = Pool::Template::State::down;
    t.deadline.reset();
    t.restart_at.reset();  // retired on purpose: the next spawn starts the next one
}

// Whether a template that died should come back on its own: the pool still wants workers
// and its restart policy restarts (a template exits only when killed or when it crashes).
bool Supervisor::template_wanted(const Pool& p) const {
    if (shutting_down_ || p.removed || p.policy.restart == config::RestartPolicy::never)
        return false;
    return std::any_of(p.workers.begin(), p.workers.end(),
                       [](const auto& w) { return w->slot.want == fsm::Want::up; });
}

// A whole-pool restart after a code change must fork from the new code: the old template
// goes first, and the first spawn starts the new one.
void Supervisor::renew_template(Pool& p) {
    if (p.tpl.state == Pool::Template::State::down) return;
    spdlog::info("pool {}: restarting its template (generation {} ends)", p.name(),
                 p.tpl.generation);
    retire_template(p, SIGTERM);
}

// A held worker that was told to stop meanwhile has no process to wait for: its stop is over.
// So is one whose fork is in flight: it will never run, whenever the answer comes.
void Supervisor::release_stopped_held() {
    for (auto& pp : pools_) {
        for (auto& f : pp->tpl.forks) {
            Worker* w = f.worker ? find_worker(f.worker) : nullptr;
            if (!w || w->alive() || w->slot.state != State::stopping) continue;
            f.go = launcher_.detach_fork(*w);
            f.worker = 0;
            apply(*w, Event{EventType::spawn_failed, sys_.now(), {}});
        }
    }
    for (auto& pp : pools_) {
        auto& held = pp->tpl.held;
        for (auto it = held.begin(); it != held.end();) {
            Worker* w = find_worker(*it);
            if (w && !w->alive() && w->slot.state == State::starting) {
                ++it;
                continue;
            }
            it = held.erase(it);
            if (w && !w->alive() && w->slot.state == State::stopping)
                apply(*w, Event{EventType::spawn_failed, sys_.now(), {}});
        }
    }
}

bool Supervisor::template_reaped(pid_t pid, const ExitInfo& info) {
    if (auto it = retired_templates_.find(pid); it != retired_templates_.end()) {
        spdlog::info("pool {}: old template pid {} {}", it->second, pid, describe(info));
        retired_templates_.erase(it);
        lineage_.drop_helper(pid);
        return true;
    }
    for (auto& pp : pools_) {
        Pool& p = *pp;
        if (p.tpl.pid != pid) continue;
        lineage_.drop_helper(pid);
        const bool was_ready = p.tpl.state == Pool::Template::State::ready;
        // What it had not answered yet it never will (what it answered is read first).
        read_fork_answers(p);
        if (!p.tpl.forks.empty())
            fail_forks(p, "the template " + describe(info) + " before it answered");
        if (p.tpl.sock >= 0) ::close(p.tpl.sock);
        p.tpl.sock = -1;
        p.tpl.pid = 0;
        p.tpl.state = Pool::Template::State::down;
        p.tpl.deadline.reset();
        if (was_ready) {
            const auto now = sys_.now();
            auto& t = p.tpl;
            if (now - t.ready_at >= p.policy.backoff.max) t.losses = 0;
            std::string next = "no new one (the pool wants none)";
            if (template_wanted(p)) {
                Millis delay = p.policy.backoff.initial;
                for (unsigned i = 0; i < t.losses && delay < p.policy.backoff.max; ++i)
                    delay *= 2;
                delay = std::min(delay, p.policy.backoff.max);
                ++t.losses;
                t.restart_at = now + delay;
                next = "a new one starts in " + format_duration(delay);
            }
            spdlog::warn("pool {}: template pid {} {}: template_lost; its workers keep running, {}",
                         p.name(), pid, describe(info), next);
        } else {
            spdlog::error("pool {}: template pid {} {} before it was ready", p.name(), pid,
                          describe(info));
        }
        events_.emit(sys_.now(), proto::event::exit, p.name(), p.name() + ".template",
                     fmt::format("pool {} template pid {} {}{}", p.name(), pid, describe(info),
                                 was_ready ? ": template_lost" : " before it was ready"),
                     {{"pid", pid}, {"cause", was_ready ? "template_lost" : "template_failed"}});
        if (!was_ready) fail_held(p, "the template " + describe(info) + " before it was ready");
        return true;
    }
    return false;
}

}  // namespace cow
