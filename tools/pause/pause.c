// pause: the process that holds a pod sandbox's namespaces open.
//
// It runs as PID 1 of its container, where the kernel delivers no signal that
// has no handler installed. So it installs handlers for SIGINT and SIGTERM to
// exit promptly when the sandbox is stopped, and reaps orphaned children, as
// init must, so they do not pile up as zombies.
// Built statically (gcc -static -O2) so the image needs nothing but this binary.

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int signo) {
    (void)signo;
    _exit(0);
}

static void on_child(int signo) {
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static void install(int signo, void (*handler)(int)) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;
    if (sigaction(signo, &action, NULL) != 0) {
        perror("pause: sigaction");
        exit(1);
    }
}

int main(void) {
    install(SIGINT, on_stop);
    install(SIGTERM, on_stop);
    install(SIGCHLD, on_child);
    if (getpid() != 1) {
        fputs("pause: warning: not running as PID 1\n", stderr);
    }
    for (;;) {
        pause();
    }
}
