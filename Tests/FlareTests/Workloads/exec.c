// Replaces itself with another program: exec ./other ARGS...
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: exec PROGRAM [ARGS]\n"); return 2; }
    execv(argv[1], argv + 1);
    perror("execv");
    return 1;
}
