// wasi-demo-app: the WASI command the shims, tests and demos run.
//
// Usage: wasi-demo-app [command [args...]]
//   echo <args...>          print the args joined by spaces
//   sleep <seconds>         sleep (fractions allowed)
//   exit <code>             exit with that code
//   write <file> <content>  write the content (args joined by spaces) to the file
//   cat <file>              print the file (the isolation tests read bind mounts and probe escapes with it)
//   ls <dir>                print the names in the folder, one a line
//   daemon                  (default) print a verse every second, forever
// Anything else prints "unknown command: <name>" to stderr and exits 1. After a command finishes,
// "exiting" goes to stderr so tests can tell a clean finish from a kill.
//
// The module also exports `hello`, a second entry point for tests of custom
// entrypoints (an image entrypoint such as "/app.wasm#hello").

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void finish(void) {
    fflush(stdout);
    fputs("exiting\n", stderr);
    fflush(stderr);
}

static int cmd_echo(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (i > 0)
            putchar(' ');
        fputs(argv[i], stdout);
    }
    putchar('\n');
    return 0;
}

static int cmd_sleep(int argc, char **argv) {
    if (argc < 1) {
        fputs("sleep: missing seconds\n", stderr);
        return 1;
    }
    char *end = NULL;
    double seconds = strtod(argv[0], &end);
    if (end == argv[0] || *end != '\0' || seconds < 0) {
        fprintf(stderr, "sleep: invalid seconds: %s\n", argv[0]);
        return 1;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    // nanosleep can return early on an interrupt; keep sleeping for the remainder.
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

static int cmd_exit(int argc, char **argv) {
    int code = argc > 0 ? atoi(argv[0]) : 0;
    finish();
    // exit() rather than return: the code must reach the host unchanged.
    exit(code);
}

static int cmd_write(int argc, char **argv) {
    if (argc < 1) {
        fputs("write: missing file\n", stderr);
        return 1;
    }
    FILE *f = fopen(argv[0], "w");
    if (f == NULL) {
        fprintf(stderr, "write: cannot open %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (i > 1)
            fputc(' ', f);
        fputs(argv[i], f);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "write: cannot write %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    return 0;
}

static int cmd_cat(int argc, char **argv) {
    FILE *f = argc > 0 ? fopen(argv[0], "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "cat: cannot open %s: %s\n", argc > 0 ? argv[0] : "(missing file)", strerror(errno));
        return 1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}

static int cmd_ls(int argc, char **argv) {
    DIR *d = opendir(argc > 0 ? argv[0] : "/");
    if (d == NULL) {
        fprintf(stderr, "ls: cannot open %s: %s\n", argc > 0 ? argv[0] : "/", strerror(errno));
        return 1;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            puts(e->d_name);
    closedir(d);
    return 0;
}

static int cmd_daemon(void) {
    static const char *const verse[] = {
        "This is the song that never ends,",
        "it goes on and on, my friends.",
        "Some people started singing it, not knowing what it was,",
        "and they'll continue singing it forever just because...",
    };
    const size_t lines = sizeof verse / sizeof verse[0];
    for (size_t i = 0;; i = (i + 1) % lines) {
        puts(verse[i]);
        // Flushed every line: a container's stdout is a pipe, and a reader waits for each verse.
        fflush(stdout);
        sleep(1);
    }
}

int main(int argc, char **argv) {
    int rc;
    if (argc < 2 || strcmp(argv[1], "daemon") == 0) {
        rc = cmd_daemon();
    } else if (strcmp(argv[1], "echo") == 0) {
        rc = cmd_echo(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "sleep") == 0) {
        rc = cmd_sleep(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "exit") == 0) {
        rc = cmd_exit(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "write") == 0) {
        rc = cmd_write(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "cat") == 0) {
        rc = cmd_cat(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "ls") == 0) {
        rc = cmd_ls(argc - 2, argv + 2);
    } else {
        // On stderr, as runwasi's demo does: stdout stays clean for the commands' output.
        fprintf(stderr, "unknown command: %s\n", argv[1]);
        rc = 1;
    }
    finish();
    return rc;
}

// A second entry point. When the host calls it instead of _start, nothing of
// libc's start-up has run, so it writes with the raw POSIX write (one WASI
// fd_write call) rather than buffered stdio that would need flushing at exit.
__attribute__((export_name("hello"))) void hello(void) {
    static const char message[] = "hello from custom entrypoint\n";
    write(STDOUT_FILENO, message, sizeof message - 1);
}
