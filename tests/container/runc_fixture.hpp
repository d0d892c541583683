// The container image under a real runtime: packaging/oci-bundle.sh builds the bundle the
// Dockerfile describes (the static cowherd and cowctl, FROM scratch), the test adds its
// workload as a layer of its own (busybox-static's shell and applets), and runc runs it with
// cowherd as PID 1. Every container is killed and deleted, and its bundle removed, even when
// a test fails half-way.
#pragma once

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/run.hpp"
#include "tests/support/wait_for.hpp"

namespace cow::test {

class RuncContainer : public ::testing::Test {
  protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "runc needs root to create a container";
        if (run({"runc", "--version"}).code != 0)
            GTEST_SKIP() << "runc is not installed (make test installs it: apt-get install runc)";
        if (access("/bin/busybox", X_OK) != 0)
            GTEST_SKIP() << "the test workload is busybox-static's shell (apt-get install "
                            "busybox-static)";
        char tmpl[] = "/tmp/cowherd-container-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir = tmpl;
        bundle = dir + "/bundle";
        log = dir + "/container.log";
        id = "cowherd-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }

    void TearDown() override {
        if (runc > 0) {
            run({"runc", "kill", id, "KILL"});
            if (!WaitFor([&] { return reap(); }, std::chrono::seconds(10))) {
                kill(runc, SIGKILL);
                waitpid(runc, nullptr, 0);
            }
        }
        if (!id.empty()) run({"runc", "delete", "--force", id});
        if (!dir.empty()) run({"rm", "-rf", dir});
    }

    // The image: the bundle as the Dockerfile has it, plus the test's workers.
    void build(const std::string& yaml) {
        const std::string config = dir + "/cowherd.yaml";
        {
            std::ofstream f(config);
            f << yaml;
        }
        auto r = run({std::string(COWHERD_SOURCE_DIR) + "/packaging/oci-bundle.sh", "-b",
                      COWHERD_BIN_DIR, "-c", config, bundle});
        ASSERT_EQ(r.code, 0) << r.out << r.err;
        const std::string bin = bundle + "/rootfs/bin";
        ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
        ASSERT_EQ(run({"cp", "/bin/busybox", bin + "/busybox"}).code, 0);
        for (const char* applet : {"sh", "sleep", "seq", "true"})
            ASSERT_EQ(symlink("busybox", (bin + "/" + applet).c_str()), 0);
    }

    // `runc run` in the foreground, as an orchestrator does: its exit status is the
    // container's. Returns once cowherd says it owns its socket.
    void start() {
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0);
        runc = spawn_with({"runc", "run", "--bundle", bundle, id}, fd, fd);
        close(fd);
        ASSERT_GT(runc, 0);
        ASSERT_TRUE(WaitFor([&] { return logged("(PID 1) on /run/cowherd/cowherd.sock"); },
                            std::chrono::seconds(20)))
            << slurp(log);
    }

    bool reap() {
        int st = 0;
        if (runc <= 0) return true;
        if (waitpid(runc, &st, WNOHANG) != runc) return false;
        exit_status = decode(st);
        runc = -1;
        return true;
    }
    bool wait_exit(std::chrono::milliseconds deadline) {
        return WaitFor([&] { return reap(); }, deadline, std::chrono::milliseconds(10));
    }

    bool logged(const std::string& text) { return slurp(log).find(text) != std::string::npos; }

    RunResult exec(std::vector<std::string> argv) {
        argv.insert(argv.begin(), {"runc", "exec", id});
        return run(argv);
    }

    // The container's PID 1, as the host sees it.
    pid_t init_pid() {
        auto state = run({"runc", "state", id}).out;
        auto at = state.find("\"pid\":");
        return at == std::string::npos ? -1 : std::atoi(state.c_str() + at + 6);
    }

    // Host pids of every process in the container's pid namespace.
    std::vector<pid_t> processes() {
        std::vector<pid_t> out;
        const std::string ns = pid_ns(init_pid());
        if (ns.empty()) return out;
        DIR* d = opendir("/proc");
        while (dirent* e = d ? readdir(d) : nullptr) {
            pid_t pid = std::atoi(e->d_name);
            if (pid > 0 && pid_ns(pid) == ns) out.push_back(pid);
        }
        if (d) closedir(d);
        return out;
    }

    static std::string pid_ns(pid_t pid) {
        char buf[64];
        auto n = readlink(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), buf, sizeof buf);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    }
    // The state letter of /proc/PID/stat ('Z' for a zombie), or 0 when it is gone.
    static char state_of(pid_t pid) {
        auto stat = slurp("/proc/" + std::to_string(pid) + "/stat");
        auto rp = stat.rfind(')');
        return rp == std::string::npos || rp + 2 >= stat.size() ? 0 : stat[rp + 2];
    }
    int zombies() {
        int n = 0;
        for (pid_t p : processes())
            n += state_of(p) == 'Z';
        return n;
    }

    std::string dir, bundle, log, id;
    pid_t runc = -1;
    int exit_status = -1;
};

}  // namespace cow::test
