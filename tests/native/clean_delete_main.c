// clean_delete_main.c: the stand-in for .NET's Main in NativeCleanDeleteTests. Linked with
// src/Containerd.Shimkit/native/clean_delete.c, whose constructor runs first: a run that prints "main" and exits 3
// is one the constructor let through to the runtime; a clean answer never gets here.
#include <stdio.h>

int main(void) {
    fputs("main\n", stdout);
    return 3;
}
