// The control server's budgets and the follower fan-out, in one process: a real server on a
// socket in a temp dir, driven by raw client sockets from the same thread (the loop is
// pumped between client steps). Issue 18: followers have a budget of their own, full-access
// peers a reserve, and a follower that cannot keep up skips ahead with a counted marker.
#include <filesystem>
#include <functional>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/control/control_server.hpp"
#include "daemon/logs/follow.hpp"
#include "tests/support/wait_for.hpp"

using namespace cow;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

class FollowBudget : public ::testing::Test {
  protected:
    boost::asio::io_context io;
    fs::path dir;
    std::string path;
    std::unique_ptr<ControlServer> server;
    std::vector<std::shared_ptr<Responder>> held;  // requests answered later, or never
    Followers followers;
    std::vector<int> fds;

    void SetUp() override {
        char tmpl[] = "/tmp/cowherd-unit-XXXXXX";
        dir = mkdtemp(tmpl);
        path = (dir / "ctl.sock").string();
    }
    void TearDown() override {
        for (int fd : fds)
            ::close(fd);
        held.clear();
        server.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    // Verbs: "status" answers at once, "hold" never does, "follow" streams pool p.
    void open(ControlLimits limits) {
        auto r = ControlServer::open(
            io, path, 0600,
            [this](const Peer&, proto::Request req, std::shared_ptr<Responder> resp) {
                if (req.cmd == "status") {
                    resp->ok(json::object{{"fine", true}});
                } else if (req.cmd == "hold") {
                    held.push_back(resp);
                } else if (req.cmd == "logs") {
                    if (auto full = resp->start_stream(); !full.empty())
                        resp->error(proto::ErrorCode::busy, full);
                    else
                        followers.add({"p", ""}, -1, resp);
                }
            },
            {}, limits);
        ASSERT_TRUE(std::holds_alternative<std::unique_ptr<ControlServer>>(r));
        server = std::move(std::get<std::unique_ptr<ControlServer>>(r));
    }

    int connect_to() {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, path.c_str());
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        fds.push_back(fd);
        io.poll();  // accepted
        return fd;
    }

    // "follow" is `logs -f`: the server gives a stream its budget only when it starts.
    void request(int fd, const std::string& cmd) {
        std::string line = cmd == "follow" ? R"({"v":1,"id":1,"cmd":"logs","args":{"follow":true}})"
                                             "\n"
                                           : R"({"v":1,"id":1,"cmd":")" + cmd + "\"}\n";
        ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(line.size()));
    }

    bool pump_until(const std::function<bool()>& pred,
                    std::chrono::milliseconds d = std::chrono::seconds(5)) {
        return test::WaitFor(
            [&] {
                io.poll();
                return pred();
            },
            d, std::chrono::milliseconds(1));
    }

    // What the server has sent on fd that can be read now ("" when nothing), pumping the
    // loop between reads; `eof` is set once the server has closed it.
    std::string drain(int fd, bool* eof = nullptr) {
        std::string out;
        char buf[65536];
        for (;;) {
            io.poll();
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                out.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0 && eof) *eof = true;
            return out;
        }
    }

    std::string first_line(int fd) {
        std::string got;
        pump_until([&] {
            got += drain(fd);
            return got.find('\n') != std::string::npos;
        });
        return got.substr(0, got.find('\n'));
    }
};

TEST_F(FollowBudget, FollowersDoNotTakeRequestSlots) {
    open({.max_clients = 2, .reserved_clients = 1, .max_followers = 3});
    for (int i = 0; i < 3; ++i)
        request(connect_to(), "follow");
    ASSERT_TRUE(pump_until([&] { return server->followers() == 3; }));
    int fourth = connect_to();
    request(fourth, "follow");
    EXPECT_NE(first_line(fourth).find("too many followers: at most 3"), std::string::npos);
    // Both request slots are still free.
    int a = connect_to(), b = connect_to();
    request(a, "status");
    request(b, "status");
    EXPECT_NE(first_line(a).find("\"fine\":true"), std::string::npos);
    EXPECT_NE(first_line(b).find("\"fine\":true"), std::string::npos);
    EXPECT_EQ(server->followers(), 3u);
}

TEST_F(FollowBudget, AFollowerThatHangsUpFreesItsSlotAtOnce) {
    open({.max_clients = 2, .reserved_clients = 1, .max_followers = 1});
    int f = connect_to();
    request(f, "follow");
    ASSERT_TRUE(pump_until([&] { return server->followers() == 1; }));
    ::close(f);
    std::erase(fds, f);
    // Nothing is written to it: only reading tells the server it went.
    EXPECT_TRUE(pump_until([&] { return server->followers() == 0; }));
    int g = connect_to();
    request(g, "follow");
    EXPECT_TRUE(pump_until([&] { return server->followers() == 1; }));
}

TEST_F(FollowBudget, FullAccessPeersGetTheReserveWhenRequestSlotsAreBusy) {
    open({.max_clients = 2, .reserved_clients = 1, .max_followers = 1});
    request(connect_to(), "hold");
    request(connect_to(), "hold");
    // Both request slots are busy, so neither can be evicted.
    ASSERT_TRUE(pump_until([&] { return held.size() == 2; }));
    int root = connect_to();  // this process is root or the server's own uid
    request(root, "status");
    EXPECT_NE(first_line(root).find("\"fine\":true"), std::string::npos);
    request(root, "hold");
    ASSERT_TRUE(pump_until([&] { return held.size() == 3; }));
    int over = connect_to();
    request(over, "status");
    EXPECT_NE(first_line(over).find("too many control clients"), std::string::npos);
}

// Accepting runs ahead of reading under load: a burst of clients that have all connected before
// any has been read must not evict one another before they had a chance to ask.
TEST_F(FollowBudget, ABurstOfConnectionsIsNotEvictedBeforeItsFirstRequest) {
    open({.max_clients = 2, .reserved_clients = 1, .max_followers = 6});
    std::vector<int> burst;
    for (int i = 0; i < 6; ++i)
        burst.push_back(connect_to());  // accepted, nothing read yet
    for (int fd : burst)
        request(fd, "follow");
    EXPECT_TRUE(pump_until([&] { return server->followers() == 6; }))
        << server->followers() << " of 6 follow";
    int a = connect_to();
    request(a, "status");
    EXPECT_NE(first_line(a).find("\"fine\":true"), std::string::npos);
}

// Pending connections are bounded too; one that had its chance to ask makes room for a new
// one, a young one does not.
TEST_F(FollowBudget, PendingConnectionsAreBoundedAndEvictedOnlyAfterTheirGrace) {
    open({.max_clients = 2,
          .reserved_clients = 1,
          .max_pending = 2,
          .pending_grace = std::chrono::hours(1)});
    connect_to();
    connect_to();
    int over = connect_to();
    EXPECT_NE(first_line(over).find("too many control clients"), std::string::npos);
}

TEST_F(FollowBudget, APendingConnectionPastItsGraceMakesRoom) {
    open({.max_clients = 2,
          .reserved_clients = 1,
          .max_pending = 2,
          .pending_grace = std::chrono::milliseconds(0)});
    int old1 = connect_to();
    connect_to();
    int fresh = connect_to();
    request(fresh, "status");
    EXPECT_NE(first_line(fresh).find("\"fine\":true"), std::string::npos);
    bool eof = false;
    EXPECT_TRUE(pump_until([&] {
        drain(old1, &eof);
        return eof;
    })) << "the oldest pending connection made room";
}

// A follower that stops reading is never cut off: past its queue its lines are counted, and
// once it has caught up it gets {"skipped":N} with exactly the number it missed.
TEST_F(FollowBudget, ASlowFollowerSkipsAheadAndGetsTheCount) {
    open({.max_followers = 1, .follower_queue = 4096});
    int f = connect_to();
    request(f, "follow");
    ASSERT_TRUE(pump_until([&] { return server->followers() == 1; }));
    const std::string payload(100, 'x');
    auto send_lines = [&](int from, int n) {
        for (int i = from; i < from + n; ++i) {
            auto m = followers.match("p", "p.0", false);
            Followers::send(m, 0, "p.0", 1, false, std::to_string(i) + " " + payload, false,
                            static_cast<std::uint64_t>(i) + 1);
            io.poll();
        }
    };
    // Far more than the socket buffer and the queue hold while nobody reads.
    const int first = 20000;
    send_lines(0, first);
    // It reads again: what was queued, then the marker once the queue has drained.
    std::string got;
    bool eof = false;
    ASSERT_TRUE(pump_until([&] {
        got += drain(f, &eof);
        return eof || got.find("skipped") != std::string::npos;
    }));
    send_lines(first, 10);  // live again after the marker
    EXPECT_TRUE(pump_until([&] {
        got += drain(f, &eof);
        return eof || got.find("\"" + std::to_string(first + 9) + " ") != std::string::npos;
    }));
    EXPECT_FALSE(eof) << "the follower was cut off";

    std::vector<long> seqs;
    long skipped = -1, skipped_at = -1;
    std::size_t start = 0, nl;
    while ((nl = got.find('\n', start)) != std::string::npos) {
        auto v = json::parse(got.substr(start, nl - start)).as_object();
        start = nl + 1;
        ASSERT_TRUE(v["more"].as_bool());
        auto& r = v["result"].as_object();
        if (r.contains("skipped")) {
            EXPECT_EQ(skipped, -1) << "one gap, one marker";
            skipped = r["skipped"].to_number<long>();
            skipped_at = static_cast<long>(seqs.size());
            continue;
        }
        seqs.push_back(std::stol(std::string(r["line"].as_string())));
    }
    ASSERT_GT(skipped, 0);
    ASSERT_GT(skipped_at, 0);
    EXPECT_EQ(static_cast<long>(seqs.size()) + skipped, first + 10) << "each line once";
    for (long i = 0; i < static_cast<long>(seqs.size()); ++i)
        EXPECT_EQ(seqs[i], i < skipped_at ? i : i + skipped) << "at " << i;
    EXPECT_EQ(seqs.back(), first + 9) << "live lines after the marker";
}

TEST_F(FollowBudget, AFollowerEndsWithASentenceWhenItsPoolGoes) {
    open({});
    int f = connect_to();
    request(f, "follow");
    ASSERT_TRUE(pump_until([&] { return server->followers() == 1; }));
    followers.pool_removed("q");
    followers.pool_removed("p");
    std::string got;
    bool eof = false;
    pump_until([&] {
        got += drain(f, &eof);
        return eof;
    });
    EXPECT_TRUE(eof) << "the stream's end closes its connection";
    EXPECT_NE(got.find("pool p was removed from the config"), std::string::npos) << got;
    EXPECT_EQ(got.find("\"more\""), std::string::npos) << "nothing else was sent: " << got;
    EXPECT_EQ(server->followers(), 0u);
}

}  // namespace
