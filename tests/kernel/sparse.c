/*
 * sparse: the file-space syscalls busybox has no applet for, for the ringnfs kernel
 * harness's v42 scenario (NFSv4.2 ALLOCATE, DEALLOCATE, SEEK, READ_PLUS).
 *
 *   sparse mk FILE             data at [0, 8 KiB) and [1 MiB, 1 MiB + 4 KiB), a hole
 *                              between, size 2 MiB (a hole to the end); fsync
 *   sparse seek FILE OFF data|hole
 *                              lseek(SEEK_DATA / SEEK_HOLE): the offset, or ENXIO
 *   sparse falloc FILE OFF LEN fallocate(mode 0): allocate, growing the file
 *   sparse punch FILE OFF LEN  fallocate(PUNCH_HOLE | KEEP_SIZE)
 *   sparse blocks FILE         st_size and st_blocks (512-byte units)
 *
 * Prints one line; exits 0, or 1 with "SPARSE FAIL what: error".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what)
{
    printf("SPARSE FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static int open_or_die(const char *path, int flags)
{
    int fd = open(path, flags, 0644);
    if (fd < 0)
        die("open");
    return fd;
}

static void pattern(char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((i * 7 + seed) % 251 + 1);
}

static void write_at(int fd, const char *buf, size_t len, off_t off)
{
    if (pwrite(fd, buf, len, off) != (ssize_t)len)
        die("pwrite");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sparse mk|seek|falloc|punch|blocks FILE ...\n");
        return 2;
    }
    const char *cmd = argv[1], *path = argv[2];
    if (strcmp(cmd, "mk") == 0) {
        static char a[8192], b[4096];
        pattern(a, sizeof a, 1);
        pattern(b, sizeof b, 2);
        int fd = open_or_die(path, O_RDWR | O_CREAT | O_TRUNC);
        write_at(fd, a, sizeof a, 0);
        write_at(fd, b, sizeof b, 1 << 20);
        if (ftruncate(fd, 2 << 20) != 0)
            die("ftruncate");
        if (fsync(fd) != 0)
            die("fsync");
        printf("made %s\n", path);
        return 0;
    }
    if (strcmp(cmd, "seek") == 0 && argc == 5) {
        int fd = open_or_die(path, O_RDONLY);
        int whence = strcmp(argv[4], "data") == 0 ? SEEK_DATA : SEEK_HOLE;
        off_t r = lseek(fd, strtoll(argv[3], NULL, 0), whence);
        if (r < 0 && errno == ENXIO) {
            printf("ENXIO\n");
            return 0;
        }
        if (r < 0)
            die("lseek");
        printf("%lld\n", (long long)r);
        return 0;
    }
    if ((strcmp(cmd, "falloc") == 0 || strcmp(cmd, "punch") == 0) && argc == 5) {
        int fd = open_or_die(path, O_RDWR);
        int mode = cmd[0] == 'p' ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : 0;
        if (fallocate(fd, mode, strtoll(argv[3], NULL, 0), strtoll(argv[4], NULL, 0)) != 0)
            die("fallocate");
        if (fsync(fd) != 0)
            die("fsync");
        printf("%s done\n", cmd);
        return 0;
    }
    if (strcmp(cmd, "blocks") == 0) {
        struct stat st;
        if (stat(path, &st) != 0)
            die("stat");
        printf("size %lld blocks %lld\n", (long long)st.st_size, (long long)st.st_blocks);
        return 0;
    }
    fprintf(stderr, "sparse: bad arguments\n");
    return 2;
}
