// Builds process trees for the tree/orphan tests. Every pid it creates is appended, one per
// line, to the file named by $FORKER_PIDS (when set), so a test can check each one later.
//
//   forker scatter N        fork N children that wait forever, then exit 0
//   forker daemonize        fork a child that calls setsid and forks a grandchild that waits
//                           forever; the child exits; the worker itself waits forever
//   forker ignore-term      fork a child that ignores SIGTERM; both wait forever (the worker
//                           too ignores TERM)
//   forker tree3            2 children, each with 2 children, each with 1 child: 3 levels
//                           below the worker; everyone waits forever
//   forker exit-after N     fork N waiting children, then exit 3 (a crash that leaves orphans)
//   forker family N         fork N children; all of them, and the worker, exit on SIGTERM
//   forker burst N          fork N children blocked on a pipe, then exit: the pipe closes and
//                           the worker and its N orphans all exit in the same instant
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

namespace {

void record(pid_t pid) {
    const char* path = std::getenv("FORKER_PIDS");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    std::string line = std::to_string(pid) + "\n";
    if (write(fd, line.data(), line.size()) < 0) _exit(90);
    close(fd);
}

[[noreturn]] void wait_forever() {
    for (;;)
        pause();
}

// Forks a child that runs body(); returns its pid in the parent.
template <class F>
pid_t spawn(F body) {
    pid_t pid = fork();
    if (pid < 0) _exit(91);
    if (pid == 0) {
        body();
        _exit(0);
    }
    // The parent records it: the child may be killed before it could.
    record(pid);
    return pid;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return 64;
    std::string mode = argv[1];
    int n = argc > 2 ? std::atoi(argv[2]) : 0;
    record(getpid());
    if (mode == "scatter" || mode == "exit-after") {
        for (int i = 0; i < n; ++i)
            spawn([] { wait_forever(); });
        return mode == "scatter" ? 0 : 3;
    }
    if (mode == "burst") {
        int p[2];
        if (pipe(p) < 0) return 95;
        for (int i = 0; i < n; ++i)
            spawn([&] {
                close(p[1]);
                char c;
                while (read(p[0], &c, 1) > 0) {
                }
                _exit(0);
            });
        return 0;  // our end of the pipe closes: every child reads EOF at once
    }
    if (mode == "family") {
        for (int i = 0; i < n; ++i)
            spawn([] { wait_forever(); });
        wait_forever();
    }
    if (mode == "daemonize") {
        int ready[2];
        if (pipe(ready) < 0) return 92;
        spawn([&] {
            setsid();
            spawn([&] {
                close(ready[0]);
                if (write(ready[1], "x", 1) < 0) _exit(93);
                close(ready[1]);
                wait_forever();
            });
            _exit(0);
        });
        close(ready[1]);
        char c;
        if (read(ready[0], &c, 1) != 1) return 94;  // the grandchild exists before we go on
        wait_forever();
    }
    if (mode == "ignore-term") {
        signal(SIGTERM, SIG_IGN);
        spawn([] {
            signal(SIGTERM, SIG_IGN);
            wait_forever();
        });
        wait_forever();
    }
    if (mode == "tree3") {
        for (int i = 0; i < 2; ++i)
            spawn([] {
                for (int j = 0; j < 2; ++j)
                    spawn([] {
                        spawn([] { wait_forever(); });
                        wait_forever();
                    });
                wait_forever();
            });
        wait_forever();
    }
    std::fprintf(stderr, "forker: unknown mode %s\n", mode.c_str());
    return 64;
}
