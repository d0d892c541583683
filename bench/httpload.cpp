// httpload: a bounded HTTP load client for the benchmarks, and for eyeballing a rolling restart.
//
// usage: httpload HOST PORT --connections C --duration S [--rate R] [--report-every MS]
//                 [--path P] [--timeout MS] [--threads T] [--json]
//
// Every request is a fresh TCP connection sending `GET P HTTP/1.1` with `Connection: close`
// (like cow-http), and is complete when Content-Length bytes of body (or, without it, EOF) are in.
// C connections run at once (at most 1000), spread over T epoll threads (default 1), for S seconds
// (at most 600); requests still in flight then are waited for, up to --timeout (default 10000 ms,
// at most 60000).
//
// Load. Without --rate it is a closed loop: each connection starts its next request as soon as
// the last one ends (10 ms later after a failure, so a dead server is not hammered). With
// --rate R it is an open loop of R requests/s in total: request k is due at k/R s, and its
// latency counts from then, so a stall shows up in the percentiles instead of silently lowering
// the rate (no coordinated omission); C then bounds the requests in flight.
//
// Output. At the end: requests, failures by kind (refused: ECONNREFUSED; reset: ECONNRESET or
// EPIPE; timeout; short: EOF before the whole response; status: not 200; other), latency
// p50/p90/p99/max in ms (CLOCK_MONOTONIC, from a log-linear histogram with 0.1% resolution), and
// which pids answered, read from cow-http's body `pid P worker W TAG`. --report-every MS adds one
// line per interval with its requests, failures, p50/p99/max, pids and tags, to compare the p99
// during a rolling restart with the p99 at rest. --json prints the same as JSON, one object per
// line; the last one has "final":true. Under --rate, requests that fell due but found no free
// connection before the end are reported as "unsent" (raise C if that is not 0).
// Exit status: 0 when there were no failures, 1 when some requests failed, 2 on bad usage.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr int kMaxConnections = 1000;
constexpr double kMaxDuration = 600;
constexpr int kMaxThreads = 64;
constexpr size_t kMaxResponse = 1 << 20;
constexpr size_t kMaxKeys = 10000;  // distinct "pid worker tag" bodies kept
constexpr int64_t kFailPauseNs = 10'000'000;
constexpr int64_t kScanEveryNs = 5'000'000;  // timeout scan period

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Log-linear histogram of microseconds: exact below 2048 us, then 1024 sub-buckets per power of
// two (under 0.1% error), up to 2^40 us.
class Hist {
  public:
    Hist() : b_(kBuckets, 0) {}
    void add(uint64_t us) {
        us = std::min<uint64_t>(us, (uint64_t{1} << 40) - 1);
        ++b_[index(us)];
        ++count_;
        max_ = std::max(max_, us);
    }
    void merge(const Hist& o) {
        for (size_t i = 0; i < kBuckets; ++i)
            b_[i] += o.b_[i];
        count_ += o.count_;
        max_ = std::max(max_, o.max_);
    }
    void reset() {
        std::fill(b_.begin(), b_.end(), 0);
        count_ = max_ = 0;
    }
    uint64_t count() const { return count_; }
    uint64_t max() const { return max_; }
    // The value at quantile q (0..1], in us.
    uint64_t quantile(double q) const {
        if (count_ == 0) return 0;
        auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
        rank = std::clamp<uint64_t>(rank, 1, count_);
        uint64_t seen = 0;
        for (size_t i = 0; i < kBuckets; ++i) {
            seen += b_[i];
            if (seen >= rank) return std::min(value(i), max_);
        }
        return max_;
    }

  private:
    static constexpr size_t kSub = 1024;
    static constexpr size_t kBuckets = 2 * kSub + 30 * kSub;
    static size_t index(uint64_t us) {
        if (us < 2 * kSub) return us;
        int e = std::bit_width(us) - 11;  // >= 1
        uint64_t m = us >> e;             // 1024 .. 2047
        return 2 * kSub + static_cast<size_t>(e - 1) * kSub + (m - kSub);
    }
    static uint64_t value(size_t i) {
        if (i < 2 * kSub) return i;
        size_t e = (i - 2 * kSub) / kSub + 1;
        uint64_t m = (i - 2 * kSub) % kSub + kSub;
        return (m << e) + ((uint64_t{1} << e) >> 1);  // bucket midpoint
    }
    std::vector<uint64_t> b_;
    uint64_t count_ = 0;
    uint64_t max_ = 0;
};

enum Fail { kRefused, kReset, kTimeout, kShort, kStatus, kOther, kNumFail };
const char* const kFailNames[kNumFail] = {"refused", "reset",  "timeout",
                                          "short",   "status", "other"};

struct Stats {
    Hist lat;
    uint64_t ok = 0;
    uint64_t fail[kNumFail] = {};
    uint64_t unsent = 0;  // --rate: due before the end, but no connection was free in time
    std::map<std::string, uint64_t> who;  // body line -> count

    uint64_t failures() const {
        uint64_t n = 0;
        for (auto f : fail)
            n += f;
        return n;
    }
    void count_who(const std::string& key) {
        auto it = who.find(key);
        if (it != who.end())
            ++it->second;
        else if (who.size() < kMaxKeys)
            who.emplace(key, 1);
        else
            ++who["(too many distinct bodies)"];
    }
    void merge(const Stats& o) {
        lat.merge(o.lat);
        ok += o.ok;
        unsent += o.unsent;
        for (int i = 0; i < kNumFail; ++i)
            fail[i] += o.fail[i];
        for (const auto& [k, v] : o.who)
            who[k] += v;
    }
    void reset() {
        lat.reset();
        ok = unsent = 0;
        std::fill(std::begin(fail), std::end(fail), 0);
        who.clear();
    }
};

struct Options {
    std::string host, port, path = "/";
    int connections = 0;
    double duration = 0;
    double rate = 0;  // 0: closed loop
    int64_t report_every_ms = 0;
    int64_t timeout_ms = 10000;
    int threads = 1;
    bool json = false;
};

struct Target {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_INET;
    std::string request;
};

enum class St { Idle, Connecting, Sending, Reading };

struct Slot {
    int fd = -1;
    St st = St::Idle;
    int64_t start = 0;     // intended start (the ticket's time under --rate)
    int64_t deadline = 0;  // give up then
    int64_t not_before = 0;
    size_t sent = 0;
    std::string buf;
};

// One epoll thread driving `n` connection slots.
class Loop {
  public:
    Loop(const Options& o, const Target& t, int n, double rate, int64_t t0, int64_t t_end)
        : o_(o), t_(t), slots_(static_cast<size_t>(n)), rate_(rate), t0_(t0), t_end_(t_end) {}

    void run() {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) {
            std::perror("epoll_create1");
            std::exit(1);
        }
        std::vector<epoll_event> evs(slots_.size() + 1);
        int64_t next_scan = 0;
        for (;;) {
            int64_t now = now_ns();
            bool running = now < t_end_;
            int busy = 0;
            int64_t wake = now + kScanEveryNs;
            for (size_t i = 0; i < slots_.size(); ++i) {
                Slot& s = slots_[i];
                if (s.st == St::Idle && running) {
                    if (rate_ > 0) {
                        int64_t due = ticket_time();
                        if (due <= now && due < t_end_) {
                            ++tickets_;
                            start(i, due, now);
                        } else {
                            wake = std::min(wake, due);
                        }
                    } else if (now >= s.not_before) {
                        start(i, now, now);
                    } else {
                        wake = std::min(wake, s.not_before);
                    }
                }
                if (s.st != St::Idle) ++busy;
            }
            if (!running && busy == 0) break;
            if (running) wake = std::min(wake, t_end_);
            int timeout_ms = static_cast<int>(std::clamp<int64_t>((wake - now) / 1'000'000, 0, 10));
            if (wake > now && timeout_ms == 0) timeout_ms = 1;
            int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), timeout_ms);
            now = now_ns();
            for (int k = 0; k < n; ++k)
                on_event(evs[static_cast<size_t>(k)].data.u32, evs[static_cast<size_t>(k)].events,
                         now);
            if (now >= next_scan) {  // timeouts
                for (size_t i = 0; i < slots_.size(); ++i)
                    if (slots_[i].st != St::Idle && now >= slots_[i].deadline)
                        fail(i, kTimeout, now);
                next_scan = now + kScanEveryNs;
            }
        }
        close(ep_);
        if (rate_ > 0)
            while (ticket_time() < t_end_) {
                ++tickets_;
                ++total.unsent;
            }
    }

    Stats total;  // read after the thread is joined
    // Taken by the reporter every interval.
    void take_interval(Stats& into) {
        std::lock_guard<std::mutex> g(mu_);
        into.merge(interval_);
        interval_.reset();
    }

  private:
    int64_t ticket_time() const {
        return t0_ + static_cast<int64_t>(static_cast<double>(tickets_) * 1e9 / rate_);
    }

    void start(size_t i, int64_t intended, int64_t now) {
        Slot& s = slots_[i];
        s.start = intended;
        s.deadline = now + o_.timeout_ms * 1'000'000;
        s.sent = 0;
        s.buf.clear();
        s.fd = socket(t_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s.fd < 0) {
            s.st = St::Connecting;  // so that fail() accounts for it
            fail(i, kOther, now);
            return;
        }
        int one = 1;
        setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int r = connect(s.fd, reinterpret_cast<const sockaddr*>(&t_.addr), t_.len);
        s.st = St::Connecting;
        if (r != 0 && errno != EINPROGRESS) {
            fail(i, errno_kind(errno), now);
            return;
        }
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u32 = static_cast<uint32_t>(i);
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev) != 0) fail(i, kOther, now);
    }

    static Fail errno_kind(int e) {
        if (e == ECONNREFUSED) return kRefused;
        if (e == ECONNRESET || e == EPIPE) return kReset;
        if (e == ETIMEDOUT) return kTimeout;
        return kOther;
    }

    void on_event(uint32_t i, uint32_t events, int64_t now) {
        Slot& s = slots_[i];
        if (s.st == St::Connecting) {
            int err = 0;
            socklen_t l = sizeof err;
            getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err != 0) return fail(i, errno_kind(err), now);
            if (!(events & EPOLLOUT)) return fail(i, kOther, now);
            s.st = St::Sending;
        }
        if (s.st == St::Sending) {
            while (s.sent < t_.request.size()) {
                ssize_t n = send(s.fd, t_.request.data() + s.sent, t_.request.size() - s.sent,
                                 MSG_NOSIGNAL);
                if (n > 0) {
                    s.sent += static_cast<size_t>(n);
                } else if (n < 0 && errno == EINTR) {
                    continue;
                } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    return;
                } else {
                    return fail(i, errno_kind(errno), now);
                }
            }
            s.st = St::Reading;
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLRDHUP;
            ev.data.u32 = i;
            if (epoll_ctl(ep_, EPOLL_CTL_MOD, s.fd, &ev) != 0) return fail(i, kOther, now);
            return;
        }
        if (s.st != St::Reading) return;
        char buf[16384];
        for (;;) {
            ssize_t n = recv(s.fd, buf, sizeof buf, 0);
            if (n > 0) {
                s.buf.append(buf, static_cast<size_t>(n));
                if (s.buf.size() > kMaxResponse) return fail(i, kOther, now);
                if (complete(s, false)) return finish(i, now);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n == 0) return complete(s, true) ? finish(i, now) : fail(i, kShort, now);
            return fail(i, errno_kind(errno), now);
        }
    }

    // Is the response in s.buf whole? Without Content-Length only EOF ends it.
    static bool complete(const Slot& s, bool eof) {
        size_t he = s.buf.find("\r\n\r\n");
        if (he == std::string::npos) return false;
        std::string_view head(s.buf.data(), he);
        size_t body = s.buf.size() - he - 4;
        // Header names are case-insensitive; look for content-length in a lowered copy.
        std::string low(head);
        for (auto& ch : low)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t cl = low.find("\r\ncontent-length:");
        if (cl == std::string::npos) return eof;
        size_t p = cl + 17;
        while (p < low.size() && (low[p] == ' ' || low[p] == '\t'))
            ++p;
        uint64_t want = 0;
        bool any = false;
        while (p < low.size() && low[p] >= '0' && low[p] <= '9' && want < kMaxResponse) {
            want = want * 10 + static_cast<uint64_t>(low[p++] - '0');
            any = true;
        }
        if (!any) return eof;
        return body >= want;
    }

    void close_slot(Slot& s) {
        if (s.fd >= 0) close(s.fd);  // close() also drops it from the epoll set
        s.fd = -1;
        s.st = St::Idle;
    }

    void finish(uint32_t i, int64_t now) {
        Slot& s = slots_[i];
        auto us = static_cast<uint64_t>(std::max<int64_t>(0, now - s.start) / 1000);
        bool ok200 =
            s.buf.size() >= 12 &&
            (s.buf.compare(0, 9, "HTTP/1.1 ") == 0 || s.buf.compare(0, 9, "HTTP/1.0 ") == 0) &&
            s.buf.compare(9, 3, "200") == 0;
        if (!ok200) return fail(i, kStatus, now);
        size_t he = s.buf.find("\r\n\r\n");
        std::string body = s.buf.substr(he + 4);
        body = body.substr(0, std::min<size_t>(body.find('\n'), 200));
        std::string key = body.compare(0, 4, "pid ") == 0 ? body : "(other body)";
        close_slot(s);
        total.lat.add(us);
        ++total.ok;
        total.count_who(key);
        std::lock_guard<std::mutex> g(mu_);
        interval_.lat.add(us);
        ++interval_.ok;
        interval_.count_who(key);
    }

    void fail(size_t i, Fail why, int64_t now) {
        Slot& s = slots_[i];
        if (s.st == St::Idle) return;
        close_slot(s);
        s.not_before = rate_ > 0 ? 0 : now + kFailPauseNs;
        ++total.fail[why];
        std::lock_guard<std::mutex> g(mu_);
        ++interval_.fail[why];
    }

    const Options& o_;
    const Target& t_;
    std::vector<Slot> slots_;
    double rate_;
    int64_t t0_, t_end_;
    uint64_t tickets_ = 0;
    int ep_ = -1;
    std::mutex mu_;
    Stats interval_;
};

std::string json_str(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            out += b;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

std::string ms(uint64_t us) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", static_cast<double>(us) / 1000.0);
    return b;
}

// "pid P worker W TAG" -> (pid, tag)
std::pair<std::string, std::string> pid_tag(const std::string& body) {
    if (body.compare(0, 4, "pid ") != 0) return {"", ""};
    size_t a = body.find(' ', 4);
    std::string pid = body.substr(4, a == std::string::npos ? std::string::npos : a - 4);
    std::string tag;
    if (a != std::string::npos && body.compare(a, 8, " worker ") == 0) {
        size_t b = body.find(' ', a + 8);
        if (b != std::string::npos) tag = body.substr(b + 1);
    }
    return {pid, tag};
}

void print_interval(const Options& o, double t, const Stats& s) {
    std::map<std::string, uint64_t> tags;
    std::map<std::string, uint64_t> pids;
    for (const auto& [k, v] : s.who) {
        auto [pid, tag] = pid_tag(k);
        pids[pid] += v;
        tags[tag] += v;
    }
    bool any_tag = tags.size() > 1 || (tags.size() == 1 && !tags.begin()->first.empty());
    const Hist& h = s.lat;
    if (o.json) {
        std::string line = "{\"t_s\":" + std::to_string(t) +
                           ",\"requests\":" + std::to_string(s.ok + s.failures()) +
                           ",\"failures\":" + std::to_string(s.failures()) +
                           ",\"p50_ms\":" + ms(h.quantile(0.5)) +
                           ",\"p99_ms\":" + ms(h.quantile(0.99)) + ",\"max_ms\":" + ms(h.max()) +
                           ",\"pids\":" + std::to_string(pids.size()) + ",\"tags\":{";
        bool first = true;
        for (const auto& [k, v] : tags) {
            line += (first ? "" : ",") + json_str(k) + ":" + std::to_string(v);
            first = false;
        }
        std::printf("%s}}\n", line.c_str());
    } else {
        std::string extra;
        if (any_tag) {
            extra = "  tags";
            int shown = 0;
            for (const auto& [k, v] : tags) {
                if (++shown > 8) {
                    extra += " ...";
                    break;
                }
                extra += " " + (k.empty() ? std::string("(none)") : k) + ":" + std::to_string(v);
            }
        }
        std::printf("[%8.3fs] req %6llu  fail %4llu  p50 %8sms  p99 %8sms  max %8sms  pids %zu%s\n",
                    t, static_cast<unsigned long long>(s.ok + s.failures()),
                    static_cast<unsigned long long>(s.failures()), ms(h.quantile(0.5)).c_str(),
                    ms(h.quantile(0.99)).c_str(), ms(h.max()).c_str(), pids.size(), extra.c_str());
    }
    std::fflush(stdout);
}

void print_final(const Options& o, const Stats& s, double elapsed) {
    const Hist& h = s.lat;
    uint64_t req = s.ok + s.failures();
    std::vector<std::pair<std::string, uint64_t>> who(s.who.begin(), s.who.end());
    std::sort(who.begin(), who.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (o.json) {
        std::string j = "{\"final\":true,\"elapsed_s\":" + std::to_string(elapsed) +
                        ",\"connections\":" + std::to_string(o.connections) +
                        ",\"rate\":" + std::to_string(o.rate) +
                        ",\"requests\":" + std::to_string(req) + ",\"ok\":" + std::to_string(s.ok) +
                        ",\"failures\":" + std::to_string(s.failures()) +
                        ",\"unsent\":" + std::to_string(s.unsent) + ",\"failure_kinds\":{";
        for (int i = 0; i < kNumFail; ++i)
            j += std::string(i ? "," : "") + "\"" + kFailNames[i] +
                 "\":" + std::to_string(s.fail[i]);
        j += "},\"latency_ms\":{\"p50\":" + ms(h.quantile(0.5)) +
             ",\"p90\":" + ms(h.quantile(0.9)) + ",\"p99\":" + ms(h.quantile(0.99)) +
             ",\"max\":" + ms(h.max()) + "},\"answered_by\":[";
        for (size_t i = 0; i < who.size(); ++i) {
            auto [pid, tag] = pid_tag(who[i].first);
            j += std::string(i ? "," : "") + "{\"body\":" + json_str(who[i].first) +
                 ",\"pid\":" + (pid.empty() ? "null" : json_str(pid)) +
                 ",\"tag\":" + json_str(tag) + ",\"count\":" + std::to_string(who[i].second) + "}";
        }
        std::printf("%s]}\n", j.c_str());
        return;
    }
    std::printf("elapsed     %.3f s\n", elapsed);
    std::printf("requests    %llu (%.1f/s)\n", static_cast<unsigned long long>(req),
                elapsed > 0 ? static_cast<double>(req) / elapsed : 0.0);
    std::printf("ok          %llu\n", static_cast<unsigned long long>(s.ok));
    std::printf("failures    %llu (", static_cast<unsigned long long>(s.failures()));
    for (int i = 0; i < kNumFail; ++i)
        std::printf("%s%s %llu", i ? ", " : "", kFailNames[i],
                    static_cast<unsigned long long>(s.fail[i]));
    std::printf(")\n");
    if (o.rate > 0)
        std::printf(
            "unsent      %llu (due under --rate, but no connection was free before the end)\n",
            static_cast<unsigned long long>(s.unsent));
    std::printf("latency ms  p50 %s  p90 %s  p99 %s  max %s\n", ms(h.quantile(0.5)).c_str(),
                ms(h.quantile(0.9)).c_str(), ms(h.quantile(0.99)).c_str(), ms(h.max()).c_str());
    std::printf("answered by (%zu):\n", who.size());
    for (const auto& [k, v] : who)
        std::printf("  %10llu  %5.1f%%  %s\n", static_cast<unsigned long long>(v),
                    s.ok ? 100.0 * static_cast<double>(v) / static_cast<double>(s.ok) : 0.0,
                    k.c_str());
}

[[noreturn]] void usage(const std::string& msg) {
    if (!msg.empty()) std::fprintf(stderr, "httpload: %s\n", msg.c_str());
    std::fprintf(stderr,
                 "usage: httpload HOST PORT --connections C --duration S [--rate R]\n"
                 "                [--report-every MS] [--path P] [--timeout MS] [--threads T] "
                 "[--json]\n"
                 "  C <= %d concurrent connections, S <= %.0f seconds; R requests/s in total\n"
                 "  (open loop, latency from each request's due time); without R a closed loop.\n",
                 kMaxConnections, kMaxDuration);
    std::exit(2);
}

double number(const char* flag, const char* s, double lo, double hi) {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(s, &end);
    if (errno || end == s || *end || !std::isfinite(v) || v < lo || v > hi) {
        char range[64];
        std::snprintf(range, sizeof range, "%g .. %g", lo, hi);
        usage(std::string("bad ") + flag + " '" + s + "' (want " + range + ")");
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> const char* {
            if (i + 1 >= argc) usage("missing value for " + a);
            return argv[++i];
        };
        if (a == "--connections" || a == "-c")
            o.connections = static_cast<int>(number("--connections", val(), 1, kMaxConnections));
        else if (a == "--duration" || a == "-d")
            o.duration = number("--duration", val(), 0.01, kMaxDuration);
        else if (a == "--rate" || a == "-r")
            o.rate = number("--rate", val(), 0.1, 1e6);
        else if (a == "--report-every")
            o.report_every_ms = static_cast<int64_t>(number("--report-every", val(), 10, 600000));
        else if (a == "--timeout")
            o.timeout_ms = static_cast<int64_t>(number("--timeout", val(), 1, 60000));
        else if (a == "--threads")
            o.threads = static_cast<int>(number("--threads", val(), 1, kMaxThreads));
        else if (a == "--path")
            o.path = val();
        else if (a == "--json")
            o.json = true;
        else if (a == "-h" || a == "--help")
            usage("");
        else if (!a.empty() && a[0] == '-')
            usage("unknown option " + a);
        else
            pos.push_back(a);
    }
    if (pos.size() != 2) usage("want HOST and PORT");
    if (o.connections == 0) usage("--connections is required");
    if (o.duration == 0) usage("--duration is required");
    if (o.path.empty() || o.path[0] != '/' || o.path.find_first_of(" \r\n") != std::string::npos)
        usage("--path must start with / and hold no blanks");
    o.host = pos[0];
    o.port = pos[1];
    o.threads = std::min(o.threads, o.connections);

    Target t;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int gai = getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &res);
    if (gai != 0 || !res) usage(o.host + ":" + o.port + ": " + gai_strerror(gai));
    std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
    t.len = res->ai_addrlen;
    t.family = res->ai_family;
    freeaddrinfo(res);
    std::string hostport = t.family == AF_INET6 && o.host.find(':') != std::string::npos
                               ? "[" + o.host + "]:" + o.port
                               : o.host + ":" + o.port;
    t.request = "GET " + o.path + " HTTP/1.1\r\nHost: " + hostport +
                "\r\nUser-Agent: httpload\r\nConnection: close\r\n\r\n";

    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    const int64_t t0 = now_ns();
    const int64_t t_end = t0 + static_cast<int64_t>(o.duration * 1e9);
    std::vector<std::unique_ptr<Loop>> loops;
    for (int k = 0; k < o.threads; ++k) {
        int n = o.connections / o.threads + (k < o.connections % o.threads ? 1 : 0);
        loops.push_back(std::make_unique<Loop>(o, t, n, o.rate / o.threads, t0, t_end));
    }
    std::atomic<int> done{0};
    std::vector<std::thread> threads;
    for (auto& l : loops)
        threads.emplace_back([&l, &done] {
            l->run();
            done.fetch_add(1);
        });

    int64_t next_report = o.report_every_ms ? t0 + o.report_every_ms * 1'000'000 : INT64_MAX;
    while (done.load() < o.threads) {
        int64_t now = now_ns();
        if (now >= next_report) {
            Stats s;
            for (auto& l : loops)
                l->take_interval(s);
            print_interval(o, static_cast<double>(now - t0) / 1e9, s);
            next_report += o.report_every_ms * 1'000'000;
            continue;
        }
        int64_t sleep = std::min<int64_t>(next_report - now, 20'000'000);
        timespec ts{static_cast<time_t>(sleep / 1'000'000'000),
                    static_cast<long>(sleep % 1'000'000'000)};
        nanosleep(&ts, nullptr);
    }
    for (auto& th : threads)
        th.join();
    double elapsed = static_cast<double>(now_ns() - t0) / 1e9;
    if (o.report_every_ms) {
        Stats s;
        for (auto& l : loops)
            l->take_interval(s);
        if (s.ok + s.failures() > 0) print_interval(o, elapsed, s);
    }
    Stats total;
    for (auto& l : loops)
        total.merge(l->total);
    print_final(o, total, elapsed);
    return total.failures() ? 1 : 0;
}
