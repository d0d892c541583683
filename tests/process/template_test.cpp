// The template side of `spawn: template` (template/cowtemplate.c and cowherd_template.py),
// driven by this test as cowherd drives it: the protocol on a socketpair, fork requests with
// their fds, the go pipe. The worker must come out as our child, in the state cowherd promises.
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/spawn/template_protocol.hpp"
#include "tests/support/run.hpp"
#include "tests/support/wait_for.hpp"

using namespace cow;
using namespace cow::test;

namespace {

std::string status_field(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) {
            auto v = line.substr(key.size() + 1);
            return v.substr(v.find_first_not_of(" \t"));
        }
    return "";
}

std::set<int> open_fds(pid_t pid) {
    std::set<int> out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') out.insert(std::atoi(e->d_name));
        closedir(d);
    }
    return out;
}

// Reads what is there within the deadline, up to the first newline.
std::string read_line(int fd, std::chrono::milliseconds within = std::chrono::seconds(20)) {
    std::string out;
    const auto until = std::chrono::steady_clock::now() + within;
    while (out.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char buf[512];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

class Template : public ::testing::Test {
  protected:
    ProcessJanitor janitor;  // we are the subreaper the workers are reparented to
    int sock = -1;
    pid_t tpl = -1;
    int out[2] = {-1, -1};  // the workers' stdout, as cowherd's capture pipe would be
    int listener = -1;

    void SetUp() override {
        ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        ASSERT_EQ(listen(listener, 16), 0);
    }
    void TearDown() override {
        if (sock >= 0) close(sock);
        for (int fd : {out[0], out[1], listener})
            if (fd >= 0) close(fd);
        ProcessJanitor::sweep();
    }

    void start(const std::vector<std::string>& argv, std::vector<std::string> env = {}) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        sock = sv[0];
        ASSERT_EQ(fcntl(sv[1], F_SETFD, 0), 0);  // the template's end is inherited
        env.push_back("COWHERD_TEMPLATE_FD=" + std::to_string(sv[1]));
        tpl = spawn_with(argv, -1, -1, env);
        close(sv[1]);
        ASSERT_GT(tpl, 0);
    }

    spawn::TemplateReply receive(std::chrono::milliseconds within = std::chrono::seconds(30)) {
        pollfd p{sock, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(within.count())) <= 0) return {};
        char buf[4096];
        ssize_t n = recv(sock, buf, sizeof buf, 0);
        if (n <= 0) return {};
        return spawn::parse_reply(std::string_view(buf, static_cast<size_t>(n)));
    }

    // Sends a fork request; returns the reply and leaves the go pipe's write end in `go`.
    spawn::TemplateReply fork_worker(std::uint64_t id, const std::vector<std::string>& env,
                                     int& go) {
        int gp[2];
        EXPECT_EQ(pipe2(gp, O_CLOEXEC), 0);
        std::vector<int> fds{gp[0], out[1], out[1], listener};
        EXPECT_EQ(spawn::send_fork(sock, spawn::encode_fork(id, env), fds), 0);
        close(gp[0]);
        go = gp[1];
        return receive();
    }

    // Signals 32 and 33 are glibc's own: no program can change what it inherits for them.
    static std::uint64_t mask_of(const std::string& hex) {
        return std::stoull(hex, nullptr, 16) & ~(std::uint64_t{3} << 31);
    }
    static std::uint64_t bit(int sig) { return std::uint64_t{1} << (sig - 1); }

    // The fds the template has, but for the protocol socket: a worker may keep the template's
    // own (they are the program's), never one of the protocol's.
    std::set<int> template_fds() {
        auto fds = open_fds(tpl);
        for (auto it = fds.begin(); it != fds.end();) {
            char target[64] = {};
            std::string link = "/proc/" + std::to_string(tpl) + "/fd/" + std::to_string(*it);
            readlink(link.c_str(), target, sizeof target - 1);
            it = std::string(target).rfind("socket:", 0) == 0 && *it > 2 ? fds.erase(it)
                                                                         : std::next(it);
        }
        return fds;
    }

    // The worker's state once it runs, as cowtemplate.h promises it; `line` is what it printed.
    void expect_clean_worker(pid_t w, const std::string& line, const std::set<int>& tfds,
                             std::uint64_t ignored, std::uint64_t blocked_by_app) {
        EXPECT_NE(line.find(" listen_pid " + std::to_string(w) + " template_fd -"),
                  std::string::npos)
            << line;
        EXPECT_EQ(status_field(w, "PPid"), std::to_string(getpid())) << "cowherd's child";
        EXPECT_EQ(getsid(w), w) << "a session of its own";
        // What the program blocks itself (to sigwait: while it waits, the kernel shows them
        // unblocked) aside, nothing.
        EXPECT_EQ(mask_of(status_field(w, "SigBlk")) & ~blocked_by_app, 0u);
        EXPECT_EQ(mask_of(status_field(w, "SigIgn")), ignored);
        std::set<int> expected = tfds;
        expected.insert(3);
        EXPECT_EQ(open_fds(w), expected) << "the template's fds and the pool's socket, no more";
        struct stat ours {
        }, theirs{};
        ASSERT_EQ(fstat(listener, &ours), 0);
        ASSERT_EQ(stat(("/proc/" + std::to_string(w) + "/fd/3").c_str(), &theirs), 0);
        EXPECT_EQ(ours.st_ino, theirs.st_ino) << "fd 3 is the pool's socket";
        char target[64] = {};
        ASSERT_GT(
            readlink(("/proc/" + std::to_string(w) + "/fd/0").c_str(), target, sizeof target - 1),
            0);
        EXPECT_STREQ(target, "/dev/null");
    }

    // TERM, then it must be ours to reap, with exit 0.
    void stop_and_reap(pid_t w) {
        ASSERT_EQ(kill(w, SIGTERM), 0);
        int st = 0;
        ASSERT_TRUE(WaitFor([&] { return waitpid(w, &st, WNOHANG) == w; }));
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    }

    std::vector<std::string> python(const std::vector<std::string>& args) {
        std::vector<std::string> argv{"/usr/bin/python3", "-m", "cowherd_template"};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    std::string pythonpath() {
        return "PYTHONPATH=" + std::string(COWHERD_SOURCE_DIR) +
               "/template:" + std::string(COWHERD_TEST_DATA) + "/template";
    }
};

const std::vector<std::string> kEnv{"COWHERD_WORKER=3", "LISTEN_FDS=1", "LISTEN_FDNAMES=http"};

TEST_F(Template, ACWorkerIsOurChildInTheStatePromised) {
    start({std::string(COWHERD_BIN_DIR) + "/cow-template", "--table-mib", "16"});
    ASSERT_EQ(receive().kind, spawn::TemplateReply::Kind::ready);
    const auto tfds = template_fds();
    int go = -1;
    auto r = fork_worker(41, kEnv, go);
    ASSERT_EQ(r.kind, spawn::TemplateReply::Kind::forked) << r.why;
    EXPECT_EQ(r.id, 41u);
    const pid_t w = r.pid;
    // Held until we say go: it has not run the program yet.
    pollfd p{out[0], POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 50), 0) << "the worker ran before go";
    ASSERT_EQ(write(go, "g", 1), 1);
    close(go);
    const std::string line = read_line(out[0]);
    EXPECT_EQ(line.rfind("worker 3 pid " + std::to_string(w) + " table 16 MiB", 0), 0u) << line;
    expect_clean_worker(w, line, tfds, 0, bit(SIGTERM) | bit(SIGINT));
    stop_and_reap(w);
    // The template is still there for the next one.
    EXPECT_EQ(kill(tpl, 0), 0);
}

TEST_F(Template, ACancelledWorkerExitsWithoutRunning) {
    start({std::string(COWHERD_BIN_DIR) + "/cow-template", "--table-mib", "1"});
    ASSERT_EQ(receive().kind, spawn::TemplateReply::Kind::ready);
    int go = -1;
    auto r = fork_worker(1, kEnv, go);
    ASSERT_EQ(r.kind, spawn::TemplateReply::Kind::forked) << r.why;
    close(go);  // EOF: cancelled
    int st = 0;
    ASSERT_TRUE(WaitFor([&] { return waitpid(r.pid, &st, WNOHANG) == r.pid; }));
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pollfd p{out[0], POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0) << "it printed: it ran";
}

TEST_F(Template, TheTemplateExitsWhenCowherdClosesTheSocket) {
    start({std::string(COWHERD_BIN_DIR) + "/cow-template", "--table-mib", "1"});
    ASSERT_EQ(receive().kind, spawn::TemplateReply::Kind::ready);
    close(sock);
    sock = -1;
    int st = 0;
    ASSERT_TRUE(WaitFor([&] { return waitpid(tpl, &st, WNOHANG) == tpl; }));
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST_F(Template, APythonWorkerIsOurChildAndSharesTheTable) {
    start(python({"--preload", "tapp", "--run", "tapp:main"}), {pythonpath(), "TAPP_TABLE_MIB=32"});
    ASSERT_EQ(receive().kind, spawn::TemplateReply::Kind::ready);
    const auto tfds = template_fds();
    int go = -1;
    auto r = fork_worker(7, kEnv, go);
    ASSERT_EQ(r.kind, spawn::TemplateReply::Kind::forked) << r.why;
    ASSERT_EQ(write(go, "g", 1), 1);
    close(go);
    const pid_t w = r.pid;
    const std::string line = read_line(out[0]);
    EXPECT_EQ(line.rfind("worker 3 pid " + std::to_string(w) + " table 32 MiB", 0), 0u) << line;
    // A fresh Python's dispositions: SIGPIPE and SIGXFSZ ignored, nothing else.
    expect_clean_worker(w, line, tfds, bit(SIGPIPE) | bit(SIGXFSZ), bit(SIGTERM));
    // The table was built once, in the template: the worker shares it, it did not copy it.
    std::ifstream in("/proc/" + std::to_string(w) + "/smaps_rollup");
    std::string key;
    std::getline(in, key);  // the [rollup] header
    long kb = 0, shared = 0;
    while (in >> key >> kb) {
        if (key == "Shared_Clean:" || key == "Shared_Dirty:") shared += kb;
        in.ignore(64, '\n');
    }
    EXPECT_GE(shared, 32 * 1024) << "kB shared with the template";
    stop_and_reap(w);
}

TEST_F(Template, AThreadedTemplateIsRefusedWithASentence) {
    start(python({"--setup", "tapp:start_thread", "--run", "tapp:main"}),
          {pythonpath(), "TAPP_TABLE_MIB=1"});
    ASSERT_EQ(receive().kind, spawn::TemplateReply::Kind::ready);
    int go = -1;
    auto r = fork_worker(9, kEnv, go);
    close(go);
    ASSERT_EQ(r.kind, spawn::TemplateReply::Kind::failed);
    EXPECT_EQ(r.id, 9u);
    EXPECT_NE(r.why.find("the template has 2 threads"), std::string::npos) << r.why;
    EXPECT_TRUE(children_of(getpid()) == std::vector<pid_t>{tpl}) << "nothing was forked";
}

}  // namespace
