#include "daemon/logs/output.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/protocol_names.hpp"
#include "core/utf8.hpp"
#include "daemon/logs/item_stream.hpp"
#include "daemon/spawn/spawn.hpp"

namespace cow {
namespace json = boost::json;

namespace {

constexpr int kReadsPerWakeup = 16;  // fairness between busy workers
// A worker that writes a line at a time would wake us for every write while we wait on its
// pipe, and each wakeup costs the worker too: a flood of single-line writes went 1.27x slower
// under cowherd than under supervisord, which is busy elsewhere and so reads in bulk. When a
// stream wakes us again within kBusyGap for less than a quarter of its pipe, we stop watching
// its pipe for kLinger and then read what gathered: one wakeup per kLinger instead of one per
// line, at most kLinger of added delay, and only while it floods. (A fuller read means the
// pipe could fill while we linger, stalling the worker: then we watch it again at once.)
constexpr auto kBusyGap = std::chrono::milliseconds(1);
constexpr auto kLinger = std::chrono::microseconds(200);
constexpr std::size_t kPipeSize = LogWriter::kBufferSize;  // one read empties a full pipe
constexpr std::string_view kContinued = " [cowherd: line continues]";

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string iso_time(std::int64_t ms) {
    time_t secs = static_cast<time_t>(ms / 1000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return buf;
}

const char* pool_color(const std::string& pool) {
    static constexpr const char* kColors[] = {"36", "32", "33", "35", "34", "96", "92", "93"};
    std::size_t h = std::hash<std::string>()(pool);
    return kColors[h % (sizeof kColors / sizeof kColors[0])];
}

}  // namespace

struct Output::Stream {
    Output::Capture* cap;
    bool err;
    boost::asio::posix::stream_descriptor sd;
    LineSplitter split;
    int write_fd = -1;  // the next child's end, between before_spawn and after_spawn
    pid_t pid = 0;
    bool waiting = false, eof = true, paused = false, lingering = false;
    // While lingering, the read end is out of the reactor (so writes wake nobody) and kept here.
    int parked = -1;
    std::size_t small_read = 16 * 1024;  // a quarter of the pipe
    bool watch_failed = false;           // said once
    std::chrono::steady_clock::time_point last_pump{};
    Stream(Output::Capture* c, bool e, boost::asio::io_context& io, std::size_t max_line)
        : cap(c), err(e), sd(io), split(max_line) {}
    ~Stream() {
        if (parked >= 0) ::close(parked);
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    int fd() { return parked >= 0 ? parked : sd.native_handle(); }
};

struct Output::Capture {
    std::uint64_t worker_id;
    std::string worker, pool, prefix;
    std::shared_ptr<const config::PoolConfig> cfg;
    std::unique_ptr<Stream> out, err;
    // Made on the first line: an empty std::deque already allocates ~0.6 KiB, and most of a
    // thousand quiet workers never print.
    std::optional<std::deque<LogLine>> ring;
    std::size_t ring_bytes = 0;
    bool removed = false;
    std::uint32_t account = 0;           // its stdout's; stderr's is the next
    std::uint64_t next_seq[2] = {1, 1};  // LogLine::seq, by stream
};

Output::Output(boost::asio::io_context& io, LogWriter& writer, const config::DaemonConfig& d)
    : io_(io), writer_(writer), daemon_(d), linger_timer_(io) {
    const char* no_color = std::getenv("NO_COLOR");
    color_ = isatty(STDOUT_FILENO) && !(no_color && no_color[0]);
    devnull_ = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    writer_.on_drained([this] { resume_all(); });
    writer_.on_event([this](const LogWriter::Event& ev) { on_write_event(ev); });
}

Output::~Output() {
    if (devnull_ >= 0) ::close(devnull_);
}

Output::Capture& Output::capture_of(Worker& w) {
    auto& slot = captures_[w.id];
    if (!slot) {
        slot = std::make_unique<Capture>();
        slot->worker_id = w.id;
        slot->worker = w.name;
        slot->pool = w.pool->name();
        slot->account = account_of(slot->pool);
        slot->prefix =
            color_ ? "\x1b[" + std::string(pool_color(slot->pool)) + "m" + w.name + " |\x1b[0m "
                   : w.name + " | ";
    }
    slot->cfg = w.pool->cfg;
    return *slot;
}

// The write end for one spawn: the pipe's own on first use, later a fresh one opened from
// the read end (the pipe and whatever is still in it survive every restart).
std::pair<int, int> Output::before_spawn(Worker& w) {
    Capture& c = capture_of(w);
    auto prepare = [&](std::unique_ptr<Stream>& s, bool err) -> int {
        const auto& sink = err ? c.cfg->stderr_sink : c.cfg->stdout_sink;
        if (sink.kind == config::OutputSink::Kind::inherit) return -1;
        if (sink.kind == config::OutputSink::Kind::null) return devnull_;
        if (!s) {
            int p[2];
            if (::pipe2(p, O_CLOEXEC) < 0) {
                spdlog::error("{}: cannot create its {} pipe: {}", w.name,
                              err ? "stderr" : "stdout", std::strerror(errno));
                return -1;
            }
            p[0] = spawn::park_high(p[0]);  // kept for the slot's life; p[1] goes at once
            ::fcntl(p[0], F_SETFL, ::fcntl(p[0], F_GETFL) | O_NONBLOCK);
            // A flooding worker wakes us per write; with room for 256 KiB instead of 64 it
            // blocks less and we read larger chunks: 484 MB of lines went through 2.7x faster
            // (bench/logs.py). Pages are only taken while full, so an idle pipe costs nothing.
            // Root only: an unprivileged user past pipe-user-pages-soft would get tiny pipes.
            if (root_) ::fcntl(p[0], F_SETPIPE_SZ, static_cast<int>(kPipeSize));
            s = std::make_unique<Stream>(&c, err, io_, daemon_.log_line_max);
            if (int size = ::fcntl(p[0], F_GETPIPE_SZ); size > 0)
                s->small_read = static_cast<std::size_t>(size) / 4;
            s->sd.assign(p[0]);
            s->write_fd = p[1];
            return p[1];
        }
        if (s->write_fd < 0) {
            std::string path = "/proc/self/fd/" + std::to_string(s->fd());
            s->write_fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        }
        return s->write_fd;
    };
    return {prepare(c.out, false), prepare(c.err, true)};
}

void Output::after_spawn(Worker& w, pid_t pid) {
    auto it = captures_.find(w.id);
    if (it == captures_.end()) return;
    for (Stream* s : {it->second->out.get(), it->second->err.get()}) {
        if (!s) continue;
        if (s->write_fd >= 0) ::close(s->write_fd);
        s->write_fd = -1;
        if (pid > 0) {
            s->pid = pid;
            s->eof = false;
            arm(*s);
        }
    }
}

void Output::worker_removed(Worker& w) {
    if (!w.pool->removed) followers_.worker_removed(w.pool->name(), w.name);
    auto it = captures_.find(w.id);
    if (it == captures_.end()) return;
    Capture& c = *it->second;
    c.removed = true;
    const bool open = (c.out && !c.out->eof) || (c.err && !c.err->eof);
    if (!open) erase_capture(w.id);  // else erased at its last EOF
}

// A removed slot's capture is gone once its last line was handed to the writer. The files it
// wrote to are closed (after those lines) unless another capture still writes there: a
// per-worker file of a slot scaled away, or the pool file of a pool removed by reload.
void Output::erase_capture(std::uint64_t id) {
    auto it = captures_.find(id);
    if (it == captures_.end()) return;
    std::vector<int> targets;
    for (const Stream* s : {it->second->out.get(), it->second->err.get()})
        if (s) targets.push_back(target_of(*s));
    captures_.erase(it);
    for (int t : targets) {
        if (t == LogWriter::kStdout) continue;
        bool used = false;
        for (const auto& [cid, c] : captures_)
            for (const Stream* s : {c->out.get(), c->err.get()})
                used = used || (s && target_of(*s) == t);
        if (!used) writer_.release(t);
    }
}

void Output::arm(Stream& s) {
    if (s.waiting || s.eof || s.paused || s.lingering) return;
    if (s.parked >= 0) {
        boost::system::error_code ec;
        s.sd.assign(s.parked, ec);
        if (ec) {
            // Back into the reactor failed (epoll ADD: ENOMEM, max_user_watches): poll it
            // with the lingering streams instead, so its output still flows.
            if (!s.watch_failed)
                spdlog::error("{}: cannot watch its {} pipe again ({}); polling it", s.cap->worker,
                              s.err ? "stderr" : "stdout", ec.message());
            s.watch_failed = true;
            return linger(s);
        }
        s.parked = -1;
    }
    s.waiting = true;
    const std::uint64_t id = s.cap->worker_id;
    const bool err = s.err;
    s.sd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [this, id, err](const boost::system::error_code& ec) {
                        auto it = captures_.find(id);
                        if (it == captures_.end()) return;  // gone; its fds are closed
                        Stream* st = err ? it->second->err.get() : it->second->out.get();
                        if (!st) return;
                        st->waiting = false;
                        if (!ec) pump(*st);
                    });
}

void Output::pump(Stream& s) {
    const bool block = s.cap->cfg->backpressure == config::Backpressure::block;
    const int target = block ? target_of(s) : LogWriter::kStdout;
    const auto now = std::chrono::steady_clock::now();
    const bool busy = now - s.last_pump < kBusyGap;
    s.last_pump = now;
    std::size_t got = 0;
    for (int i = 0; i < kReadsPerWakeup; ++i) {
        // block: a sink that cannot keep up, or a file that cannot be written (a full disk),
        // stops our reads, so the worker blocks on its pipe and nothing is lost; reading
        // resumes when the writer has drained, or the file takes writes again.
        if (block && !writer_.room_for(target)) {
            s.paused = true;
            paused_.push_back(&s);
            return;
        }
        if (!rbuf_) rbuf_ = writer_.take_buffer();
        ssize_t n = ::read(s.fd(), rbuf_.data.get(), rbuf_.capacity);
        if (n > 0) {
            got += static_cast<std::size_t>(n);
            deliver(s, std::string_view(rbuf_.data.get(), static_cast<std::size_t>(n)), false,
                    &rbuf_);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            if (busy && got > 0 && got < s.small_read) return linger(s);
            break;
        }
        // EOF: every writer (the worker and anything it forked) is gone.
        deliver(s, {}, true);
        s.eof = true;
        Capture& c = *s.cap;
        if (c.removed && (!c.out || c.out->eof) && (!c.err || c.err->eof)) {
            std::erase(paused_, &s);
            erase_capture(c.worker_id);
        }
        return;
    }
    arm(s);
}

void Output::drain_all() {
    std::vector<std::uint64_t> ids;
    for (auto& [id, c] : captures_)
        ids.push_back(id);
    for (auto id : ids) {
        for (bool err : {false, true}) {
            auto it = captures_.find(id);
            if (it == captures_.end()) break;
            Stream* s = err ? it->second->err.get() : it->second->out.get();
            if (!s || s->eof) continue;
            for (;;) {
                if (!rbuf_) rbuf_ = writer_.take_buffer();
                ssize_t n = ::read(s->fd(), rbuf_.data.get(), rbuf_.capacity);
                if (n > 0) {
                    deliver(*s, std::string_view(rbuf_.data.get(), static_cast<std::size_t>(n)),
                            false, &rbuf_);
                    continue;
                }
                if (n < 0 && errno == EINTR) continue;
                deliver(*s, {}, true);  // flushes a partial last line
                break;
            }
        }
    }
}

void Output::linger(Stream& s) {
    if (s.parked < 0) {
        s.parked = s.sd.release();  // deregisters; the fd stays open
        if (s.parked < 0) return arm(s);
    }
    s.lingering = true;
    lingering_.emplace_back(s.cap->worker_id, s.err);
    if (linger_armed_) return;
    linger_armed_ = true;
    linger_timer_.expires_after(kLinger);
    linger_timer_.async_wait([this](const boost::system::error_code& ec) { end_linger(ec); });
}

void Output::end_linger(const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: Output is going away
    linger_armed_ = false;
    auto due = std::move(lingering_);
    lingering_.clear();
    for (auto [id, err] : due) {
        auto it = captures_.find(id);
        if (it == captures_.end()) continue;
        Stream* s = err ? it->second->err.get() : it->second->out.get();
        if (!s || !s->lingering) continue;
        s->lingering = false;
        pump(*s);  // reads what gathered; lingers again if the flood goes on
    }
}

void Output::resume_all() {
    auto paused = std::move(paused_);
    paused_.clear();
    for (Stream* s : paused) {
        s->paused = false;
        arm(*s);
    }
}

void Output::deliver(Stream& s, std::string_view chunk, bool eof, LogWriter::Buffer* owner) {
    Capture& c = *s.cap;
    const auto& sink = s.err ? c.cfg->stderr_sink : c.cfg->stdout_sink;
    auto& st = stats_[c.pool];
    const int idx = s.err ? 1 : 0;
    st.bytes[idx] += chunk.size();
    const int target = target_of(s);
    const std::int64_t ts = now_ms();
    const Followers::Match fan = followers_.match(c.pool, c.worker, s.err);
    std::string batch;
    std::uint64_t lines = 0;
    const auto chunk_begin = reinterpret_cast<std::uintptr_t>(chunk.data());
    const auto chunk_end = chunk_begin + chunk.size();
    // The bytes of this chunk after a line: complete lines, then a partial tail shorter than
    // log_line_max that is not a line yet.
    auto bytes_after = [&](std::string_view line) -> std::size_t {
        const auto at = reinterpret_cast<std::uintptr_t>(line.data());
        if (chunk.empty() || at < chunk_begin || at > chunk_end) return 0;  // from the splitter
        const auto after = at + line.size() + 1;
        return after < chunk_end ? static_cast<std::size_t>(chunk_end - after) : 0;
    };
    // A file sink writes lines as they came, so consecutive lines of the chunk are one run of
    // its bytes, [run_b, run_e): appended to the batch only when something else comes after
    // it, else queued in the read buffer itself.
    const char* run_b = nullptr;
    const char* run_e = nullptr;
    auto end_run = [&] {
        if (run_b) batch.append(run_b, static_cast<std::size_t>(run_e - run_b));
        run_b = run_e = nullptr;
    };
    auto emit = [&](std::string_view line, bool continued) {
        ++lines;
        const std::uint64_t seq = c.next_seq[s.err]++;
        // The ring keeps the most recent lines within log_ring bytes, a line costing its text
        // + 32. A line followed in this chunk by log_ring bytes of complete lines would be
        // evicted before the chunk is done, so it is not copied at all: with a 256 KiB read
        // and the default 64 KiB ring, three lines in four.
        const std::size_t rest = bytes_after(line);
        const std::size_t tail = s.split.max_line();
        if (rest <= tail || rest - tail < c.cfg->log_ring) {
            LogLine l{ts, s.pid, s.err, continued, std::string(line), seq};
            c.ring_bytes += l.text.size() + 32;
            if (!c.ring) c.ring.emplace();
            c.ring->push_back(std::move(l));
            while (c.ring_bytes > c.cfg->log_ring && !c.ring->empty()) {
                c.ring_bytes -= c.ring->front().text.size() + 32;
                c.ring->pop_front();
            }
        }
        Followers::send(fan, ts, c.worker, s.pid, s.err, line, continued, seq);
        switch (sink.kind) {
            case config::OutputSink::Kind::console:
                batch += c.prefix;
                batch.append(line);
                if (continued) batch.append(kContinued);
                batch += '\n';
                break;
            case config::OutputSink::Kind::file: {
                // A line of the chunk itself (not the splitter's) is followed there by '\n'.
                const auto at = reinterpret_cast<std::uintptr_t>(line.data());
                if (!continued && at >= chunk_begin && at + line.size() < chunk_end) {
                    if (run_b && run_e == line.data()) {
                        run_e += line.size() + 1;
                    } else {
                        end_run();
                        run_b = line.data();
                        run_e = run_b + line.size() + 1;
                    }
                    break;
                }
                end_run();
                batch.append(line);
                if (continued) batch.append(kContinued);
                batch += '\n';
                break;
            }
            case config::OutputSink::Kind::json: {
                json::object o{{"ts", iso_time(ts)},
                               {"pool", c.pool},
                               {"worker", c.worker},
                               {"pid", s.pid},
                               {"stream", s.err ? "stderr" : "stdout"},
                               {"line", valid_utf8(line)}};
                if (continued) o["continued"] = true;
                batch += json::serialize(o);
                batch += '\n';
                break;
            }
            default:
                break;
        }
    };
    s.split.feed(chunk, emit);
    if (eof) s.split.flush(emit);
    st.lines[idx] += lines;
    const bool drop = c.cfg->backpressure == config::Backpressure::drop;
    const LogWriter::Dest dest(target, c.account + static_cast<std::uint32_t>(idx), !drop);
    const auto run_len = static_cast<std::size_t>(run_e - run_b);
    // Only a run that fills a good part of the buffer: the queue counts each buffer whole.
    if (run_b && owner && *owner && chunk.data() == owner->data.get() &&
        run_len >= owner->capacity / 4) {
        const auto off = static_cast<std::size_t>(run_b - owner->data.get());
        if (!writer_.write(dest, std::move(batch), *owner, off, run_len, !drop))
            st.dropped += lines;
        return;
    }
    end_run();
    if (batch.empty()) return;
    if (drop) {
        if (!writer_.write(dest, std::move(batch))) st.dropped += lines;
    } else {
        writer_.write_anyway(dest, std::move(batch));
    }
}

int Output::target_of(const Stream& s) {
    const Capture& c = *s.cap;
    const auto& sink = s.err ? c.cfg->stderr_sink : c.cfg->stdout_sink;
    if (sink.kind != config::OutputSink::Kind::file) return LogWriter::kStdout;
    std::string base = daemon_.log_dir + "/" + (sink.per_worker ? c.worker : c.pool);
    return writer_.file_target(base + (s.err ? ".err" : ".out"), sink.max_size, sink.keep);
}

std::uint32_t Output::account_of(const std::string& pool) {
    auto [it, added] = account_ids_.try_emplace(pool, static_cast<std::uint32_t>(accounts_.size()));
    if (added) accounts_.push_back(pool);
    return it->second * 2;
}

// The writer's word on a write error, on the loop: counted here, and said once when it starts
// and once when it ends, however many lines and retries lie between.
void Output::on_write_event(const LogWriter::Event& ev) {
    const std::size_t pool = ev.account / 2;
    if (pool >= accounts_.size()) return;
    const int idx = static_cast<int>(ev.account % 2);
    auto& st = stats_[accounts_[pool]];
    st.dropped += ev.lost;
    st.write_errors[idx] += ev.errors;
    const char* stream = idx ? "stderr" : "stdout";
    if (ev.started) {
        if (ev.held)
            spdlog::error(
                "{}; holding {} {} (its workers wait on their pipes) and retrying until "
                "it can be written",
                ev.what, accounts_[pool], stream);
        else
            spdlog::error(
                "{}; dropping the lines of {} {} (counted in dropped_lines) until it "
                "can be written",
                ev.what, accounts_[pool], stream);
    } else if (ev.recovered) {
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(ev.failed_for).count();
        if (ev.lost_in_episode > 0)
            spdlog::warn("{}: writable again after {} ms; {} lines of {} {} were lost", ev.path, ms,
                         ev.lost_in_episode, accounts_[pool], stream);
        else
            spdlog::warn("{}: writable again after {} ms; nothing was lost", ev.path, ms);
    }
}

std::vector<std::pair<const Worker*, LogLine>> Output::tail(const std::vector<Worker*>& ws,
                                                            std::size_t n, int stream,
                                                            std::int64_t since_ms) const {
    std::vector<std::pair<const Worker*, LogLine>> out;
    for (const Worker* w : ws) {
        auto it = captures_.find(w->id);
        if (it == captures_.end() || !it->second->ring) continue;
        for (const auto& l : *it->second->ring) {
            if (stream >= 0 && static_cast<int>(l.err) != stream) continue;
            if (since_ms > 0 && l.ts_ms < since_ms) continue;
            out.emplace_back(w, l);
        }
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.second.ts_ms < b.second.ts_ms; });
    if (out.size() > n) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(n));
    return out;
}

void Output::follow(FollowTarget target, int stream, std::shared_ptr<ItemStream> resp) {
    followers_.add(std::move(target), stream, std::move(resp));
}

void Output::pool_removed(const std::string& pool) {
    followers_.pool_removed(pool);
}

json::object Output::line_json(const Worker& w, const LogLine& l) {
    json::object o{{"ts_ms", l.ts_ms},
                   {"worker", w.name},
                   {"pid", l.pid},
                   {"stream", l.err ? proto::stream::err : proto::stream::out},
                   {"line", valid_utf8(l.text)}};
    if (l.continued) o["continued"] = true;
    o["seq"] = l.seq;
    return o;
}

// In-place upgrade: the pipes' read ends stay open across execve, and what the daemon read from
// them but had not delivered (a partial line) or keeps for `cowctl logs` (the ring) travels in
// the state, so the next image misses no byte a worker wrote and repeats none.
boost::json::object Output::save_state() const {
    namespace json = boost::json;
    json::array caps;
    for (const auto& [id, c] : captures_) {
        json::object o{{"id", id}};
        for (const Stream* s : {c->out.get(), c->err.get()}) {
            if (!s) continue;
            const char* key = s->err ? "err" : "out";
            o[key] =
                json::object{{"fd", const_cast<Stream*>(s)->fd()}, {"partial", s->split.partial()}};
        }
        json::array ring;
        if (c->ring)
            for (const auto& l : *c->ring)
                ring.push_back(json::array{l.ts_ms, l.pid, l.err, l.continued, l.text, l.seq});
        o["ring"] = std::move(ring);
        o["next_seq"] = json::array{c->next_seq[0], c->next_seq[1]};
        caps.push_back(std::move(o));
    }
    json::object stats;
    for (const auto& [pool, st] : stats_)
        stats[pool] = json::array{st.lines[0], st.lines[1],        st.bytes[0],       st.bytes[1],
                                  st.dropped,  st.write_errors[0], st.write_errors[1]};
    return json::object{{"captures", std::move(caps)}, {"stats", std::move(stats)}};
}

std::vector<int> Output::handover_fds() const {
    std::vector<int> fds;
    for (const auto& [id, c] : captures_)
        for (Stream* s : {c->out.get(), c->err.get()})
            if (s) fds.push_back(s->fd());
    return fds;
}

void Output::restore_state(const boost::json::object& state,
                           const std::function<Worker*(std::uint64_t)>& find) {
    namespace json = boost::json;
    auto get = [](const json::object& o, std::string_view k) -> const json::value* {
        return o.if_contains(k);
    };
    if (const auto* caps = get(state, "captures"); caps && caps->is_array())
        for (const auto& cv : caps->as_array()) {
            if (!cv.is_object()) continue;
            const auto& co = cv.as_object();
            const auto* idv = get(co, "id");
            Worker* w = idv ? find(idv->to_number<std::uint64_t>()) : nullptr;
            std::vector<int> fds;
            for (const char* key : {"out", "err"})
                if (const auto* sv = get(co, key); sv && sv->is_object())
                    if (const auto* fd = get(sv->as_object(), "fd"))
                        fds.push_back(fd->to_number<int>());
            if (!w) {  // a slot the new image does not have: its pipes go
                for (int fd : fds)
                    ::close(fd);
                continue;
            }
            Capture& c = capture_of(*w);
            for (const char* key : {"out", "err"}) {
                const auto* sv = get(co, key);
                if (!sv || !sv->is_object()) continue;
                const auto& so = sv->as_object();
                const bool err = key[0] == 'e';
                auto& s = err ? c.err : c.out;
                s = std::make_unique<Stream>(&c, err, io_, daemon_.log_line_max);
                s->parked = get(so, "fd")->to_number<int>();
                if (const auto* p = get(so, "partial"); p && p->is_string())
                    s->split.restore(std::string(p->as_string()));
                if (int size = ::fcntl(s->parked, F_GETPIPE_SZ); size > 0)
                    s->small_read = static_cast<std::size_t>(size) / 4;
                if (w->pid > 0) {
                    s->pid = w->pid;
                    s->eof = false;
                    arm(*s);
                }
            }
            if (const auto* r = get(co, "ring"); r && r->is_array() && !r->as_array().empty()) {
                c.ring.emplace();
                for (const auto& lv : r->as_array()) {
                    if (!lv.is_array() || lv.as_array().size() < 5) continue;
                    const auto& a = lv.as_array();
                    LogLine l{a[0].to_number<std::int64_t>(), a[1].to_number<pid_t>(),
                              a[2].is_bool() && a[2].as_bool(), a[3].is_bool() && a[3].as_bool(),
                              a[4].is_string() ? std::string(a[4].as_string()) : std::string()};
                    if (a.size() > 5) l.seq = a[5].to_number<std::uint64_t>();
                    c.ring_bytes += l.text.size() + 32;
                    c.ring->push_back(std::move(l));
                }
            }
            if (const auto* n = get(co, "next_seq");
                n && n->is_array() && n->as_array().size() == 2)
                for (int i = 0; i < 2; ++i)
                    c.next_seq[i] =
                        n->as_array()[static_cast<std::size_t>(i)].to_number<std::uint64_t>();
        }
    if (const auto* st = get(state, "stats"); st && st->is_object())
        for (const auto& [pool, v] : st->as_object()) {
            if (!v.is_array() || v.as_array().size() != 7) continue;
            const auto& a = v.as_array();
            auto& s = stats_[std::string(pool)];
            s.lines[0] = a[0].to_number<std::uint64_t>();
            s.lines[1] = a[1].to_number<std::uint64_t>();
            s.bytes[0] = a[2].to_number<std::uint64_t>();
            s.bytes[1] = a[3].to_number<std::uint64_t>();
            s.dropped = a[4].to_number<std::uint64_t>();
            s.write_errors[0] = a[5].to_number<std::uint64_t>();
            s.write_errors[1] = a[6].to_number<std::uint64_t>();
        }
}

}  // namespace cow
