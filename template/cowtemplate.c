/* The template side of `spawn: template`; the protocol is in cowtemplate.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cowtemplate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Architectures whose clone(2) takes the flags first; a fork's other arguments are all 0. */
#if defined(__x86_64__) || defined(__aarch64__) || (defined(__riscv) && __riscv_xlen == 64)
#define COWTEMPLATE_CLONE 1
#else
#define COWTEMPLATE_CLONE 0
#endif
#ifndef CLONE_PARENT
#define CLONE_PARENT 0x00008000
#endif

enum {
    kMaxMessage = 64 * 1024,
    kMaxFds = 253, /* SCM_MAX_FD */
    kFixedFds = 3, /* go pipe, stdout, stderr */
};

static int send_text(int sock, const char* text) {
    ssize_t n;
    do {
        n = send(sock, text, strlen(text), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

static int count_threads(void) {
    DIR* d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent* e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n;
}

/* In the worker: the state cowherd promises (see cowtemplate.h), or _exit(127) if it cannot. */
static void become_worker(int sock, char* env, const int* fds, int nfds) {
    close(sock);
    setsid();
    /* Registered and placed by cowherd first: one byte says go, EOF says it was cancelled. */
    char go = 0;
    ssize_t r;
    do {
        r = read(fds[0], &go, 1);
    } while (r < 0 && errno == EINTR);
    if (r != 1) _exit(0);
    close(fds[0]);

    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0 || dup2(nullfd, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0) _exit(127);
    if (nullfd > 2) close(nullfd);
    /* Listening sockets to 3.. : first out of the way of every target, then into place. */
    const int nlisten = nfds - kFixedFds;
    int high[kMaxFds];
    for (int i = 0; i < nlisten; ++i) {
        high[i] = fcntl(fds[kFixedFds + i], F_DUPFD_CLOEXEC, 3 + nlisten);
        if (high[i] < 0) _exit(127);
    }
    for (int i = 1; i < nfds; ++i)
        if (fds[i] > 2) close(fds[i]);
    for (int i = 0; i < nlisten; ++i) {
        if (dup2(high[i], 3 + i) < 0) _exit(127);
        close(high[i]);
    }

    /* KEY=VALUE lines after the first. The message buffer is static and never reused in the
     * worker, so putenv can keep pointing into it. */
    for (char* line = strchr(env, '\n'); line;) {
        *line++ = '\0';
        char* next = strchr(line, '\n');
        if (next) *next = '\0';
        if (strchr(line, '=')) putenv(line);
        line = next;
    }
    if (nlisten > 0) {
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        setenv("LISTEN_PID", pid, 1);
    }
}

/* One request. Returns 1 in the worker, 0 in the template. */
static int fork_worker(int sock, char* msg, const int* fds, int nfds) {
    char* end = NULL;
    const unsigned long long id = strtoull(msg + 5, &end, 10);
    char reply[512];
    if (nfds < kFixedFds) {
        snprintf(reply, sizeof reply, "failed %llu the request carried %d fds, not at least 3", id,
                 nfds);
        send_text(sock, reply);
        return 0;
    }
    const int threads = count_threads();
    const char* allow = getenv("COWHERD_TEMPLATE_THREADS");
    if (threads > 1 && !(allow && strcmp(allow, "allow") == 0)) {
        snprintf(reply, sizeof reply,
                 "failed %llu the template has %d threads; a fork copies only the calling one, "
                 "with whatever locks the others held (set template_threads: allow if this "
                 "program forks safely)",
                 id, threads);
        send_text(sock, reply);
        return 0;
    }
#if COWTEMPLATE_CLONE
    /* One copy of the page tables instead of two: the worker is born cowherd's child. It skips
     * glibc's at-fork steps, which is sound only with no other thread to hold a lock; a program
     * whose pthread_atfork handlers matter sets COWHERD_TEMPLATE_CLONE=0. */
    const char* clone_env = getenv("COWHERD_TEMPLATE_CLONE");
    if (threads == 1 && !(clone_env && strcmp(clone_env, "0") == 0)) {
        const long pid = syscall(SYS_clone, (long)(CLONE_PARENT | SIGCHLD), 0L, 0L, 0L, 0L);
        if (pid == 0) {
            become_worker(sock, msg, fds, nfds);
            return 1;
        }
        if (pid < 0)
            snprintf(reply, sizeof reply, "failed %llu clone: %s", id, strerror(errno));
        else
            snprintf(reply, sizeof reply, "forked %llu %ld", id, pid);
        send_text(sock, reply);
        return 0;
    }
#endif
    int pidpipe[2];
    if (pipe2(pidpipe, O_CLOEXEC) != 0) {
        snprintf(reply, sizeof reply, "failed %llu pipe: %s", id, strerror(errno));
        send_text(sock, reply);
        return 0;
    }
    /* Otherwise forked twice: the middle process exits at once, so the worker is reparented to
     * the nearest subreaper, cowherd, and reaped by it like any worker. */
    const pid_t middle = fork();
    if (middle == 0) {
        close(pidpipe[0]);
        const pid_t worker = fork();
        if (worker == 0) {
            close(pidpipe[1]);
            become_worker(sock, msg, fds, nfds);
            return 1;
        }
        int32_t out = worker > 0 ? (int32_t)worker : -(int32_t)errno;
        ssize_t w = write(pidpipe[1], &out, sizeof out);
        _exit(w == (ssize_t)sizeof out ? 0 : 1);
    }
    close(pidpipe[1]);
    if (middle < 0) {
        snprintf(reply, sizeof reply, "failed %llu fork: %s", id, strerror(errno));
    } else {
        int32_t got = 0;
        ssize_t r;
        do {
            r = read(pidpipe[0], &got, sizeof got);
        } while (r < 0 && errno == EINTR);
        while (waitpid(middle, NULL, 0) < 0 && errno == EINTR) {
        }
        if (r != (ssize_t)sizeof got)
            snprintf(reply, sizeof reply, "failed %llu the forking process died", id);
        else if (got < 0)
            snprintf(reply, sizeof reply, "failed %llu fork: %s", id, strerror(-got));
        else
            snprintf(reply, sizeof reply, "forked %llu %d", id, (int)got);
    }
    close(pidpipe[0]);
    send_text(sock, reply);
    return 0;
}

int cowtemplate_serve(void) {
    const char* v = getenv("COWHERD_TEMPLATE_FD");
    if (!v || !*v) return 0;
    char* end = NULL;
    const long fd = strtol(v, &end, 10);
    if (*end || fd < 3 || fd > 65535) {
        errno = EBADF;
        return -1;
    }
    const int sock = (int)fd;
    if (fcntl(sock, F_SETFD, FD_CLOEXEC) != 0) return -1;
    const int fl = fcntl(sock, F_GETFL);
    if (fl < 0 || fcntl(sock, F_SETFL, fl & ~O_NONBLOCK) != 0) return -1; /* we wait on it */
    unsetenv("COWHERD_TEMPLATE_FD");
    if (send_text(sock, "ready") != 0) return -1;

    static char buf[kMaxMessage + 1];
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * kMaxFds)];
    } control;
    for (;;) {
        struct iovec iov = {buf, kMaxMessage};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = control.space;
        mh.msg_controllen = sizeof control.space;
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) exit(0); /* cowherd closed it: this generation is over */
        buf[n] = '\0';
        int fds[kMaxFds];
        int nfds = 0;
        for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            const int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k && nfds < kMaxFds; ++i)
                memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
        int in_worker = 0;
        if (strncmp(buf, "fork ", 5) == 0) {
            in_worker = fork_worker(sock, buf, fds, nfds);
        } else {
            send_text(sock, "failed 0 unknown request");
        }
        if (in_worker) return 1;
        for (int i = 0; i < nfds; ++i)
            close(fds[i]);
        if ((mh.msg_flags & MSG_CTRUNC) != 0) send_text(sock, "failed 0 too many fds");
    }
}
