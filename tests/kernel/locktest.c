/*
 * locktest: flock(2) and fcntl(2) byte-range locks on one file, for the ringnfs
 * kernel harness (Debian's busybox-static has no flock applet).
 *
 *   locktest FILE
 *
 * Over NFSv4 the Linux client turns flock() into a whole-file LOCK on the server,
 * so a second open file description (in a child process) must see the conflict:
 *   1. parent flock(LOCK_EX); child flock(LOCK_EX|LOCK_NB) fails with EWOULDBLOCK;
 *      parent LOCK_UN; child flock(LOCK_EX|LOCK_NB) succeeds, then unlocks;
 *   2. parent F_SETLK write lock on bytes [0,10); child F_SETLK on [5,15) fails
 *      with EAGAIN/EACCES, on [10,20) succeeds; F_GETLK in the child reports the
 *      parent's lock (its pid and range).
 * Prints one line per check and "LOCKTEST OK" (exit 0) or "LOCKTEST FAIL ..." (exit 1).
 *
 *   locktest hold FILE             F_SETLK write lock on bytes [0,10), held until SIGTERM
 *                                  or SIGUSR1, then F_UNLCK; prints "LOCKTEST HOLDING pid"
 *                                  once it has the lock, "LOCKTEST RELEASED" at the end.
 *   locktest trylock FILE busy|free  a non-blocking F_SETLK on [0,10) from this process:
 *                                  "busy" wants EAGAIN/EACCES (someone holds it), "free"
 *                                  wants it granted (then unlocks). Exit 0 when as wanted.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *path;

static void die(const char *what)
{
    printf("LOCKTEST FAIL %s: %s\n", what, strerror(errno));
    fflush(stdout);
    exit(1);
}

/* Run fn in a child with its own open file description; return its exit code. */
static int in_child(int (*fn)(int fd, long arg), long arg)
{
    fflush(stdout);
    pid_t p = fork();
    if (p < 0)
        die("fork");
    if (p == 0) {
        int fd = open(path, O_RDWR);
        if (fd < 0)
            die("child open");
        int rc = fn(fd, arg);
        fflush(stdout);
        _exit(rc);
    }
    int st;
    if (waitpid(p, &st, 0) < 0)
        die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

/* 0: got the flock; 1: EWOULDBLOCK; 2: other error */
static int child_flock(int fd, long arg)
{
    (void)arg;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        return 0;
    }
    if (errno == EWOULDBLOCK)
        return 1;
    printf("child flock: %s\n", strerror(errno));
    return 2;
}

/* 0: got the write lock on [arg, arg+10); 1: conflict; 2: other error */
static int child_setlk(int fd, long start)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 10};
    if (fcntl(fd, F_SETLK, &fl) == 0)
        return 0;
    if (errno == EAGAIN || errno == EACCES)
        return 1;
    printf("child F_SETLK: %s\n", strerror(errno));
    return 2;
}

/* 0: F_GETLK on [5,15) reports a write lock on [0,10) held by pid arg */
static int child_getlk(int fd, long owner)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 10};
    if (fcntl(fd, F_GETLK, &fl) != 0) {
        printf("child F_GETLK: %s\n", strerror(errno));
        return 2;
    }
    printf("F_GETLK: type=%s start=%ld len=%ld pid=%ld (parent %ld)\n",
           fl.l_type == F_WRLCK ? "F_WRLCK" : fl.l_type == F_UNLCK ? "F_UNLCK" : "other",
           (long)fl.l_start, (long)fl.l_len, (long)fl.l_pid, owner);
    return fl.l_type == F_WRLCK && fl.l_start == 0 && fl.l_len == 10 ? 0 : 1;
}

static void expect(int got, int want, const char *what)
{
    printf("%s: %s\n", what, got == want ? "as expected" : "WRONG");
    if (got != want) {
        printf("LOCKTEST FAIL %s (child result %d, want %d)\n", what, got, want);
        fflush(stdout);
        exit(1);
    }
}

/* hold FILE: lock [0,10) until SIGTERM or SIGUSR1, then unlock */
static int hold(void)
{
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        die("sigprocmask");
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        die("open");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    if (fcntl(fd, F_SETLK, &fl) != 0)
        die("F_SETLK [0,10)");
    printf("LOCKTEST HOLDING %ld [0,10)\n", (long)getpid());
    fflush(stdout);
    if (sigwait(&set, &sig) != 0)
        die("sigwait");
    fl.l_type = F_UNLCK;
    if (fcntl(fd, F_SETLK, &fl) != 0)
        die("F_SETLK unlock");
    close(fd);
    printf("LOCKTEST RELEASED (signal %d)\n", sig);
    return 0;
}

/* trylock FILE busy|free */
static int trylock(const char *want)
{
    int busy = strcmp(want, "busy") == 0;
    int fd = open(path, O_RDWR);
    if (fd < 0)
        die("open");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    int r = fcntl(fd, F_SETLK, &fl);
    if (r != 0 && errno != EAGAIN && errno != EACCES)
        die("F_SETLK [0,10)");
    printf("F_SETLK [0,10) by pid %ld: %s\n", (long)getpid(), r == 0 ? "granted" : strerror(errno));
    if (r == 0) {
        fl.l_type = F_UNLCK;
        if (fcntl(fd, F_SETLK, &fl) != 0)
            die("F_SETLK unlock");
    }
    close(fd);
    if ((r != 0) != busy) {
        printf("LOCKTEST FAIL the range is %s, want %s\n", r == 0 ? "free" : "busy", want);
        return 1;
    }
    printf("LOCKTEST OK the range is %s\n", want);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "hold") == 0) {
        path = argv[2];
        return hold();
    }
    if (argc == 4 && strcmp(argv[1], "trylock") == 0 &&
        (strcmp(argv[3], "busy") == 0 || strcmp(argv[3], "free") == 0)) {
        path = argv[2];
        return trylock(argv[3]);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE | hold FILE | trylock FILE busy|free\n", argv[0]);
        return 2;
    }
    path = argv[1];
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        die("open");
    if (write(fd, "0123456789abcdefghij", 20) != 20)
        die("write");

    if (flock(fd, LOCK_EX) != 0)
        die("flock(LOCK_EX)");
    expect(in_child(child_flock, 0), 1, "flock held: second LOCK_EX|LOCK_NB refused");
    if (flock(fd, LOCK_UN) != 0)
        die("flock(LOCK_UN)");
    expect(in_child(child_flock, 0), 0, "flock released: second LOCK_EX|LOCK_NB granted");

    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    if (fcntl(fd, F_SETLK, &fl) != 0)
        die("F_SETLK [0,10)");
    expect(in_child(child_setlk, 5), 1, "byte range [5,15) conflicts with [0,10)");
    expect(in_child(child_setlk, 10), 0, "byte range [10,20) is free");
    expect(in_child(child_getlk, (long)getpid()), 0, "F_GETLK reports the holder");
    fl.l_type = F_UNLCK;
    if (fcntl(fd, F_SETLK, &fl) != 0)
        die("F_SETLK unlock");
    expect(in_child(child_setlk, 5), 0, "byte range [5,15) free after unlock");
    close(fd);
    printf("LOCKTEST OK\n");
    return 0;
}
