// wasi-malloc-probe: how much memory a C program gets under a container's memory limit.
//
// Usage: wasi-malloc-probe [max-mib] [abort]
// Allocates 1 MiB blocks, writing to every 4 KiB page of each, until malloc returns NULL (or max-mib blocks, default
// 4096, are held), then prints "malloc: <n> MiB" on stdout and exits 0. Under a limit the engine enforces on linear
// memory, malloc fails cleanly; if the kernel's OOM killer struck first, the task would end with 137 and print nothing.
// With "abort", a failed malloc is fatal, as in a program that does not check: it prints "malloc: <n> MiB, then out
// of memory" on stderr and calls abort(), which in wasm traps.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK (1024 * 1024)
#define PAGE 4096

// Each block starts with a pointer to the one before, and the newest is in a global, so every allocation is reachable
// after the loop: the compiler can neither drop a malloc nor its page writes.
struct block {
    struct block *previous;
};

struct block *volatile newest;

int main(int argc, char **argv) {
    long max = argc > 1 ? atol(argv[1]) : 4096;
    int fatal = argc > 2 && strcmp(argv[2], "abort") == 0;
    long count = 0;
    while (count < max) {
        struct block *b = malloc(BLOCK);
        if (b == NULL && fatal) {
            fprintf(stderr, "malloc: %ld MiB, then out of memory\n", count);
            abort();
        }
        if (b == NULL)
            break;
        for (size_t offset = PAGE; offset < BLOCK; offset += PAGE)
            ((volatile char *)b)[offset] = 1;
        b->previous = newest;
        newest = b;
        count++;
    }
    // Give one block back so that stdio, whatever it needs, cannot be the allocation that fails next.
    if (newest != NULL) {
        struct block *last = newest;
        newest = last->previous;
        free(last);
    }
    printf("malloc: %ld MiB\n", count);
    fflush(stdout);
    return 0;
}
