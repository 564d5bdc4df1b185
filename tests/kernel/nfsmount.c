/*
 * nfsmount: a minimal static mount helper for the ringnfs kernel smoke test.
 *
 * Busybox mount cannot mount nfs4 (the kernel wants text options with an
 * explicit addr= and a vers=, which mount.nfs normally fills in), so this
 * calls mount(2) directly:
 *
 *   nfsmount SOURCE TARGET ADDR CLIENTADDR [EXTRA_OPTIONS]
 *
 * e.g. nfsmount 10.0.2.100:/ /mnt 10.0.2.100 10.0.2.15 nconnect=4
 *
 * Without vers= in EXTRA_OPTIONS it negotiates like mount.nfs: vers=4.2
 * first, then vers=4.1 when the kernel answers EPROTONOSUPPORT (or any
 * other error: each attempt's errno is printed).  It prints
 * "NFSMOUNT OK opts=..." or "NFSMOUNT FAIL errno=N (msg) opts=..." and
 * exits 0 on success, the last errno otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

static int try_mount(const char *src, const char *tgt, const char *opts)
{
    if (mount(src, tgt, "nfs4", 0, opts) == 0) {
        printf("NFSMOUNT OK opts=%s\n", opts);
        fflush(stdout);
        return 0;
    }
    int e = errno;
    printf("NFSMOUNT FAIL errno=%d (%s) opts=%s\n", e, strerror(e), opts);
    fflush(stdout);
    return e;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s SOURCE TARGET ADDR CLIENTADDR [EXTRA_OPTIONS]\n", argv[0]);
        return 2;
    }
    const char *src = argv[1], *tgt = argv[2], *addr = argv[3], *caddr = argv[4];
    const char *extra = argc == 6 ? argv[5] : "";
    char opts[1024];
    if (strstr(extra, "vers=") != NULL) {
        snprintf(opts, sizeof opts, "addr=%s,clientaddr=%s%s%s", addr, caddr,
                 *extra ? "," : "", extra);
        return try_mount(src, tgt, opts);
    }
    static const char *versions[] = {"4.2", "4.1"};
    int rc = 0;
    for (unsigned i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        snprintf(opts, sizeof opts, "vers=%s,addr=%s,clientaddr=%s%s%s", versions[i],
                 addr, caddr, *extra ? "," : "", extra);
        rc = try_mount(src, tgt, opts);
        if (rc == 0)
            return 0;
    }
    return rc;
}
