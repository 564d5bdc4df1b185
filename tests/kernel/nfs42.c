/*
 * nfs42: the syscalls busybox has no applet for, for the ringnfs kernel harness's v42
 * scenario (NFSv4.2 ALLOCATE, DEALLOCATE, SEEK, READ_PLUS, extended attributes).
 *
 *   nfs42 mk FILE              data at [0, 8 KiB) and [1 MiB, 1 MiB + 4 KiB), a hole
 *                              between, size 2 MiB (a hole to the end); fsync
 *   nfs42 seek FILE OFF data|hole
 *                              lseek(SEEK_DATA / SEEK_HOLE): the offset, or ENXIO
 *   nfs42 falloc FILE OFF LEN  fallocate(mode 0): allocate, growing the file
 *   nfs42 punch FILE OFF LEN   fallocate(PUNCH_HOLE | KEEP_SIZE)
 *   nfs42 blocks FILE          st_size and st_blocks (512-byte units)
 *   nfs42 xset FILE NAME VALUE [create|replace]
 *                              setxattr: prints "ok", or the errno name (EEXIST, ENODATA)
 *   nfs42 xget FILE NAME       getxattr: the value, or ENODATA
 *   nfs42 xlist FILE           listxattr: the names, space-separated
 *   nfs42 xrm FILE NAME        removexattr: "ok", or ENODATA
 *   nfs42 copy SRC DST         copy_file_range(2) of all of SRC into a new DST (what
 *                              cp may use; over NFSv4.2 the server's COPY): the bytes
 *                              copied
 *   nfs42 clone SRC DST        ioctl(FICLONE) of SRC into a new DST (cp --reflink;
 *                              over NFSv4.2 the server's CLONE): "ok", or the errno
 *                              name (EOPNOTSUPP where the exported file system has no
 *                              reflinks)
 *
 * Prints one line; exits 0, or 1 with "NFS42 FAIL what: error".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <unistd.h>

static void die(const char *what)
{
    printf("NFS42 FAIL %s: %s\n", what, strerror(errno));
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
        fprintf(stderr, "usage: nfs42 mk|seek|falloc|punch|blocks|xset|xget|xlist|xrm FILE ...\n");
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
    if (strcmp(cmd, "xset") == 0 && (argc == 5 || argc == 6)) {
        int flags = 0;
        if (argc == 6)
            flags = strcmp(argv[5], "create") == 0 ? XATTR_CREATE : XATTR_REPLACE;
        if (setxattr(path, argv[3], argv[4], strlen(argv[4]), flags) == 0) {
            printf("ok\n");
            return 0;
        }
        if (errno == EEXIST || errno == ENODATA) {
            printf("%s\n", errno == EEXIST ? "EEXIST" : "ENODATA");
            return 0;
        }
        die("setxattr");
    }
    if (strcmp(cmd, "xget") == 0 && argc == 4) {
        static char v[65536];
        ssize_t n = getxattr(path, argv[3], v, sizeof v);
        if (n < 0 && errno == ENODATA) {
            printf("ENODATA\n");
            return 0;
        }
        if (n < 0)
            die("getxattr");
        printf("%.*s\n", (int)n, v);
        return 0;
    }
    if (strcmp(cmd, "xlist") == 0) {
        static char l[65536];
        ssize_t n = listxattr(path, l, sizeof l);
        if (n < 0)
            die("listxattr");
        for (ssize_t i = 0; i < n; i += strlen(l + i) + 1)
            printf("%s%s", i ? " " : "", l + i);
        printf("\n");
        return 0;
    }
    if (strcmp(cmd, "xrm") == 0 && argc == 4) {
        if (removexattr(path, argv[3]) == 0) {
            printf("ok\n");
            return 0;
        }
        if (errno == ENODATA) {
            printf("ENODATA\n");
            return 0;
        }
        die("removexattr");
    }
    if (strcmp(cmd, "copy") == 0 && argc == 4) {
        int in = open_or_die(path, O_RDONLY);
        int out = open_or_die(argv[3], O_WRONLY | O_CREAT | O_TRUNC);
        struct stat st;
        if (fstat(in, &st) != 0)
            die("fstat");
        long long total = 0;
        for (;;) {
            ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(st.st_size - total), 0);
            if (n < 0)
                die("copy_file_range");
            if (n == 0)
                break;
            total += n;
        }
        if (fsync(out) != 0)
            die("fsync");
        printf("copied %lld\n", total);
        return 0;
    }
    if (strcmp(cmd, "clone") == 0 && argc == 4) {
        int in = open_or_die(path, O_RDONLY);
        int out = open_or_die(argv[3], O_WRONLY | O_CREAT | O_TRUNC);
        if (ioctl(out, FICLONE, in) == 0) {
            printf("ok\n");
            return 0;
        }
        if (errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL) {
            printf("%s\n", errno == EOPNOTSUPP ? "EOPNOTSUPP" : errno == EXDEV ? "EXDEV" : "EINVAL");
            return 0;
        }
        die("ioctl(FICLONE)");
    }
    fprintf(stderr, "nfs42: bad arguments\n");
    return 2;
}
