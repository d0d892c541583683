// `cowctl events -f` under a storm of transitions: a subscriber that stops reading costs the
// daemon a bounded queue, other clients keep their answers, and the subscriber is told exactly
// how many events it missed. Runs alone (the chaos binary is RUN_SERIAL): the storm takes both
// cores.
#include <algorithm>
#include <fstream>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kStorm = 3'000;  // events; a sanitized daemon spawns several times slower
// A sanitizer's quarantine keeps freed memory on purpose: RSS says nothing there.
constexpr bool kRssMeans = false;
#else
constexpr bool kRssMeans = true;
constexpr std::uint64_t kStorm = 10'000;  // bench/events.py runs 100,000 and times `status`
#endif

int connect_to(const std::string& path, int rcvbuf = 0) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    // A small receive buffer, so that the daemon's side fills after a few events.
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool send_line(int fd, const std::string& s) {
    return write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

// One request, its one reply line; empty on error.
std::string ask(const std::string& path, const std::string& request) {
    int fd = connect_to(path);
    if (fd < 0) return {};
    timeval limit{10, 0};  // a deaf daemon fails the test instead of hanging it
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    std::string reply;
    if (send_line(fd, request + "\n")) {
        char buf[65536];
        for (ssize_t n;
             reply.find('\n') == std::string::npos && (n = read(fd, buf, sizeof buf)) > 0;)
            reply.append(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    return reply;
}

std::uint64_t rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
    return 0;
}

class EventsStorm : public DaemonFixture {};

TEST_F(EventsStorm, AStalledSubscriberMissesEventsAndIsToldHowMany) {
    log_level = "warn";  // the storm's log lines are not what this test reads
    // Workers that exit at once and are restarted at once: about three events per restart.
    start("  storm:\n    command: [\"" + bin("exit_with") + "\", \"0\"]\n    workers: 20\n" +
              "    start_timeout: 0s\n    backoff: {initial: 1ms, max: 1ms}\n" +
              "    max_restarts: {count: 10000, within: 1ms}\n" +
              "  keep:\n    command: [sleep, \"100000\"]\n",
          "", true);

    // The stalled subscriber: asks to follow, then reads nothing until the storm is over.
    int stalled = connect_to(socket, 4096);
    ASSERT_GE(stalled, 0);
    ASSERT_TRUE(
        send_line(stalled, "{\"v\":1,\"id\":7,\"cmd\":\"events\",\"args\":{\"follow\":true}}\n"));

    auto last_seq = [&]() -> std::uint64_t {
        auto v = ctl_json({"events", "--since", "1s"});
        if (!v.is_object()) return 0;
        auto& es = v.as_object()["events"].as_array();
        return es.empty() ? 0 : es.back().as_object()["seq"].to_number<std::uint64_t>();
    };
    ASSERT_TRUE(WaitFor([&] { return last_seq() > 100; }, std::chrono::seconds(30)));
    const std::uint64_t rss_before = rss_kib(daemon);
    const std::uint64_t from = last_seq();

    // Meanwhile other clients are answered, every time.
    int asked = 0, answered = 0;
    std::uint64_t seq = from;
    const bool stormed = WaitFor(
        [&] {
            ++asked;
            if (ask(socket, "{\"v\":1,\"id\":1,\"cmd\":\"status\",\"args\":{}}")
                    .find("\"ok\":true") != std::string::npos)
                ++answered;
            if (asked % 10 == 0) seq = last_seq();  // a long reply: not every time
            return seq >= from + kStorm;
        },
        std::chrono::seconds(240), std::chrono::milliseconds(20));
    ASSERT_TRUE(stormed) << "only " << seq - from << " events in 240 s";
    EXPECT_EQ(answered, asked) << "status went unanswered during the storm";
    // The ring of events and the stalled queue are bounded: the storm costs no memory that
    // grows with it (a few MiB of slack for the allocator).
    const std::uint64_t rss_after = rss_kib(daemon);
    if (kRssMeans) {
        EXPECT_LT(rss_after, rss_before + 16 * 1024)
            << "daemon RSS grew from " << rss_before << " to " << rss_after << " KiB";
    }
    // Every worker took its turns: none was left unreaped behind the others' exits (waitpid(-1)
    // serves one thread's children first; the spawn crew started some of these).
    for (auto& w : workers("storm"))
        EXPECT_GE(as_int(w["restarts"]), 3) << w["name"].as_string() << " was never reaped";
    ASSERT_EQ(ctl({"stop", "storm"}).code, 0);

    // Now it reads: events, one {"missed":N}, then events again; N is exactly the gap between
    // the seq numbers around it.
    std::string in;
    char buf[65536];
    std::uint64_t before_gap = 0, after_gap = 0, missed = 0;
    bool poked = false;
    const bool told = WaitFor(
        [&] {
            ssize_t n = recv(stalled, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) in.append(buf, static_cast<std::size_t>(n));
            std::size_t nl;
            while ((nl = in.find('\n')) != std::string::npos) {
                auto line = in.substr(0, nl);
                in.erase(0, nl + 1);
                boost::system::error_code ec;
                auto v = json::parse(line, ec);
                if (ec || !v.is_object() || !v.as_object().contains("result")) continue;
                auto& r = v.as_object()["result"].as_object();
                if (auto* m = r.if_contains("missed")) {
                    missed = m->to_number<std::uint64_t>();
                } else if (auto* s = r.if_contains("seq")) {
                    if (missed == 0)
                        before_gap = s->to_number<std::uint64_t>();
                    else if (after_gap == 0)
                        after_gap = s->to_number<std::uint64_t>();
                }
            }
            // Once told, one more event must come through live.
            if (missed > 0 && !poked) poked = ctl({"restart", "keep"}).code == 0;
            return after_gap != 0;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(5));
    close(stalled);
    ASSERT_TRUE(told) << "no {\"missed\":N} followed by events; missed=" << missed;
    EXPECT_GT(missed, kStorm / 2) << "most of the storm cannot have fit in a bounded queue";
    EXPECT_EQ(after_gap - before_gap - 1, missed)
        << "events " << before_gap << " and " << after_gap << " around the marker";
}

}  // namespace
