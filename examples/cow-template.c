/* cow-template: a template for `spawn: template` in C, the demo, tests and benchmarks use.
 *
 * usage: cow-template [--table-mib N]
 *
 * It builds a table of N MiB (default 64) before it serves, the way a real program loads code
 * and data, then calls cowtemplate_serve(). Each worker it forks (or the process itself, when
 * started as a plain `spawn: exec` worker) prints one line to stdout,
 *   worker W pid P table N MiB sum S listen_pid L template_fd -
 * and waits for SIGTERM, to which it exits 0. Every worker reads the whole table, so each maps
 * all of it, and shares the pages with the template and its siblings. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cowtemplate.h"

int main(int argc, char** argv) {
    long mib = 64;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--table-mib") == 0 && i + 1 < argc) {
            mib = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: cow-template [--table-mib N]\n");
            return 2;
        }
    }
    if (mib < 0 || mib > 65536) {
        fprintf(stderr, "cow-template: --table-mib must be 0..65536\n");
        return 2;
    }
    const size_t size = (size_t)mib << 20;
    uint64_t* table = NULL;
    if (size > 0) {
        table = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (table == MAP_FAILED) {
            perror("cow-template: mmap");
            return 1;
        }
        for (size_t i = 0; i < size / sizeof *table; ++i)
            table[i] = i * 2654435761u;
    }
    if (cowtemplate_serve() < 0) {
        perror("cow-template: serving fork requests");
        return 1;
    }
    /* A worker (or a plain process). */
    uint64_t sum = 0;
    for (size_t i = 0; i < size / sizeof *table; ++i)
        sum += table[i];
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    sigprocmask(SIG_BLOCK, &term, NULL);
    const char* w = getenv("COWHERD_WORKER");
    const char* lp = getenv("LISTEN_PID");
    const char* tf = getenv("COWHERD_TEMPLATE_FD");
    printf("worker %s pid %d table %ld MiB sum %llu listen_pid %s template_fd %s\n", w ? w : "-",
           (int)getpid(), mib, (unsigned long long)sum, lp ? lp : "-", tf ? tf : "-");
    fflush(stdout);
    int sig = 0;
    sigwait(&term, &sig);
    return 0;
}
