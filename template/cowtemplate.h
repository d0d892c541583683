/* cowtemplate: the template side of cowherd's `spawn: template`, for C and C++ programs.
 *
 * A template is the program started once per pool generation, in template mode: it loads what
 * its workers should share (code, tables, models), then forks each worker on cowherd's request.
 * Every page it loaded before the fork is shared copy-on-write by all its workers.
 *
 *     int main(void) {
 *         load_the_big_table();            // shared by every worker
 *         if (cowtemplate_serve() < 0) return 1;
 *         return serve_requests();         // in each worker (or in a plain `spawn: exec` run)
 *     }
 *
 * cowtemplate_serve() returns 0 when the process is not a template (COWHERD_TEMPLATE_FD is not
 * set: a plain worker, so the same program runs under `spawn: exec`), 1 in each worker it forks,
 * once the worker is set up, and -1 with errno when it cannot start serving. In the template it
 * does not return: it exits 0 when cowherd closes the protocol socket.
 *
 * A worker, when cowtemplate_serve() returns 1 in it, is cowherd's child, not the template's:
 * on x86_64, aarch64 and riscv64 a single-threaded template makes it with one
 * clone(CLONE_PARENT); otherwise, or with COWHERD_TEMPLATE_CLONE=0 in the pool's env, it forks
 * twice and the middle process exits (cowherd is a subreaper). The one clone copies the page
 * tables once instead of twice, and skips glibc's at-fork steps: pthread_atfork handlers do not
 * run in the worker. It is in a session of its own, with every signal's
 * disposition at default and none blocked, stdin on /dev/null, stdout and stderr on cowherd's
 * capture pipes, the pool's listening sockets at fds 3.. (replacing whatever was there) with
 * LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, cowherd's variables set (COWHERD_WORKER, ...), and
 * no fd of the protocol left open. It runs only once cowherd has registered it (and placed it in
 * its cgroup).
 *
 * A template with more than one thread when a fork is asked for is refused (the fork copies
 * only the calling thread, with whatever locks the others held): the request fails with that
 * sentence. COWHERD_TEMPLATE_THREADS=allow says the program knows what it does.
 *
 * The protocol, on a SOCK_SEQPACKET socket inherited at fd COWHERD_TEMPLATE_FD (one message per
 * packet, text, lines separated by '\n'):
 *   template -> cowherd  "ready"                          once, when loaded
 *   cowherd -> template  "fork ID\nKEY=VALUE\n..."        with fds by SCM_RIGHTS: a pipe's read
 *                                                         end (the go signal), the worker's
 *                                                         stdout, its stderr, then its listening
 *                                                         sockets in order
 *   template -> cowherd  "forked ID PID" | "failed ID SENTENCE"
 * The worker then waits on the go pipe: one byte starts it; EOF (cowherd cancelled it) makes it
 * exit 0 at once. ID is cowherd's, echoed back; requests are answered in order. */
#ifndef COWTEMPLATE_H
#define COWTEMPLATE_H

#ifdef __cplusplus
extern "C" {
#endif

int cowtemplate_serve(void);

#ifdef __cplusplus
}
#endif

#endif
