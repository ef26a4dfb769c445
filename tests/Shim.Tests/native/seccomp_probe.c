// seccomp-probe: has the kernel judge a compiled seccomp profile (KitSeccompBehaviourTests).
//
// Reads a profile in the byte form of Containerd.Shimkit.Seccomp.SeccompFilter ("SCF1", u32 filter flags, then
// struct sock_filter[]), installs it on itself for every thread as the instance process does (no_new_privs, then
// seccomp(SECCOMP_SET_MODE_FILTER, TSYNC | flags)), makes one system call and reports through its exit status alone,
// since the profile under test may forbid writing:
//
//   seccomp-probe PROFILE [thread] getppid [A0..A5]   getppid with these raw argument registers (the kernel
//                                                     ignores them, the filter sees them)
//   seccomp-probe PROFILE [thread] write FD           write(FD, "x", 1)
//
// Exit status: 0 when the call succeeded, its errno (1-249) when it failed, 250 when it was made on a second thread
// (created before the filter was installed) and that thread died, 255 on a usage or setup error (reason on stderr);
// death by SIGSYS when the filter killed the process or trapped.

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_PROGRAM (8 + 4096 * 8)
#define THREAD_DIED 250
#define SETUP_ERROR 255

static long call_nr;
static long args[6];
static int result = -1;
static pthread_barrier_t installed;

static int call(void) {
    long r = call_nr == SYS_write ? syscall(SYS_write, args[0], "x", 1)
                                  : syscall(call_nr, args[0], args[1], args[2], args[3], args[4], args[5]);
    if (r >= 0) {
        return 0;
    }
    return errno > 0 && errno < THREAD_DIED ? errno : SETUP_ERROR;
}

static void *second_thread(void *unused) {
    (void)unused;
    pthread_barrier_wait(&installed);
    result = call();
    return NULL;
}

static void fail(const char *what) {
    perror(what);
    exit(SETUP_ERROR);
}

int main(int argc, char **argv) {
    int a = 2;
    int threaded = argc > a && strcmp(argv[a], "thread") == 0;
    a += threaded;
    if (argc <= a || argc > a + 7) {
        fprintf(stderr, "usage: %s PROFILE [thread] getppid|write [ARG...]\n", argv[0]);
        return SETUP_ERROR;
    }
    if (strcmp(argv[a], "getppid") == 0) {
        call_nr = SYS_getppid;
    } else if (strcmp(argv[a], "write") == 0) {
        call_nr = SYS_write;
    } else {
        fprintf(stderr, "unknown call %s\n", argv[a]);
        return SETUP_ERROR;
    }
    for (int i = a + 1; i < argc; i++) {
        args[i - a - 1] = (long)strtoull(argv[i], NULL, 0);
    }

    static unsigned char profile[MAX_PROGRAM + 1];
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        fail(argv[1]);
    }
    size_t n = fread(profile, 1, sizeof profile, f);
    fclose(f);
    if (n < 16 || n > MAX_PROGRAM || (n - 8) % 8 != 0 || memcmp(profile, "SCF1", 4) != 0) {
        fprintf(stderr, "%s: not a compiled profile (%zu bytes)\n", argv[1], n);
        return SETUP_ERROR;
    }
    uint32_t flags;
    memcpy(&flags, profile + 4, sizeof flags);
    struct sock_fprog prog = {.len = (unsigned short)((n - 8) / 8), .filter = (struct sock_filter *)(profile + 8)};

    // A trapped or killed probe dies by SIGSYS, which dumps core: not into the test's folder.
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);

    pthread_t thread;
    if (threaded) {
        pthread_barrier_init(&installed, NULL, 2);
        if (pthread_create(&thread, NULL, second_thread, NULL) != 0) {
            fail("pthread_create");
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        fail("prctl(PR_SET_NO_NEW_PRIVS)");
    }
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC | flags, &prog);
    if (rc != 0) {
        if (rc > 0) {
            fprintf(stderr, "thread %ld could not be synchronised\n", rc);
            return SETUP_ERROR;
        }
        fail("seccomp");
    }
    if (!threaded) {
        _exit(call());
    }
    pthread_barrier_wait(&installed);
    pthread_join(thread, NULL);
    _exit(result < 0 ? THREAD_DIED : result);
}
