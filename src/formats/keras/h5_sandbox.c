/*
 * h5_sandbox.c - every libhdf5 call on an untrusted file runs in a child
 * process (see graft_h5__sandbox in h5.h).
 *
 * libhdf5 1.10 crashes, overflows and spins on hostile files (issue 18 item
 * 12; tests/fuzz/known-libhdf5/), and Debian's copy will not be
 * fixed under us.  So the parent never hands libhdf5 a byte of such a file:
 *  1. pipe, and a shared page for the child's "what am I doing" note;
 *  2. fork; the child resets the CLI's signal handlers, caps its address
 *     space (RLIMIT_AS: what it has plus a budget) and CPU time
 *     (RLIMIT_CPU), then installs a seccomp filter allowing only reading,
 *     memory mapping and writing to its pipe, and exits;
 *  3. the child opens the HDF5 image already mapped in memory (inherited
 *     from the parent) through the core driver, without copying it and
 *     without opening any file, runs the job and writes records to the
 *     pipe: [u8 kind][u32 le length][payload];
 *  4. the parent reads the records, handing each to the caller, until EOF,
 *     then reaps the child: a signal, an exit status other than 0 or a
 *     pipe that stays silent past the wall-clock limit becomes one line,
 *     "libhdf5 failed on this file (SIGSEGV while reading attribute
 *     'weight_names'); the file is malformed or hostile".
 *
 * Time limits (graft_h5__limits): a child gets 10 s of CPU plus 1 s per
 * 64 MiB of its work (dataset bytes to read, image bytes to rewrite), where
 * the work counts for at most 16 times the file's own bytes: a file may
 * declare terabytes of never-written chunks, which libhdf5 would fill with
 * zeros for hours.  The wall clock allows twice that CPU time plus 10 s of
 * silence on the pipe (a child blocked, not spinning, or starved on a busy
 * machine).  Reading 64 MiB through gzip takes about 0.3 s here, so a real
 * file has a wide margin; a hostile one is stopped within seconds.
 */
#define _GNU_SOURCE
#include "h5.h"
#include "rd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#define HAVE_SECCOMP 1
#endif

#define CRUMB_BYTES 4096
#define BASE_BUDGET (1ull << 30)   /* address space a child may add beyond its job's bytes */
#define JOB_PER_FILE_BYTE 16       /* job bytes a file's own bytes can honestly need */
/* Seconds of CPU for any job, plus 1 s per 64 MiB; seconds of silence on
 * the pipe beyond twice that (tests lower both). */
unsigned graft_h5__base_cpu = 10;
unsigned graft_h5__base_wall = 10;

void graft_h5__limits(const graft_h5_budget *b, unsigned *cpu, unsigned *wall)
{
    uint64_t cap = b->file > UINT64_MAX / JOB_PER_FILE_BYTE ? UINT64_MAX
                                                            : b->file * JOB_PER_FILE_BYTE;
    uint64_t work = b->work < cap ? b->work : cap;
    *cpu = graft_h5__base_cpu + (unsigned)(work >> 26 > 3600 ? 3600 : work >> 26);
    *wall = 2 * *cpu + graft_h5__base_wall;
}

static char *crumb;                /* the shared page, in a child only */

void graft_h5__doing(const char *fmt, ...)
{
    va_list ap;
    if (!crumb) return;
    va_start(ap, fmt);
    vsnprintf(crumb, CRUMB_BYTES, fmt, ap);
    va_end(ap);
}

bool graft_h5__in_child(void) { return crumb != NULL; }

/* ---- the image, opened in place ------------------------------------------ */

/* The child's one image: libhdf5 is handed its own pointer back for every
 * "copy" (property lists, the core driver's open), so nothing is copied; a
 * read-write image that grows is moved to the heap. */
static struct {
    uint8_t *p;
    size_t size;
} image;

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *ud)
{
    (void)op, (void)ud;
    return size == image.size ? image.p : NULL;
}

static void *img_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *ud)
{
    (void)op, (void)ud;
    if (dest != src) memmove(dest, src, size);
    return dest;
}

static void *img_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *ud)
{
    uint8_t *n;
    (void)op, (void)ud;
    if (ptr != image.p || !(n = malloc(size ? size : 1))) return NULL;
    memcpy(n, ptr, size < image.size ? size : image.size);
    image.p = n; /* the old buffer is a mapping or a copy we never free: the child exits */
    image.size = size;
    return n;
}

static herr_t img_free(void *ptr, H5FD_file_image_op_t op, void *ud)
{
    (void)ptr, (void)op, (void)ud;
    return 0;
}

static void *ud_copy(void *ud) { return ud; }
static herr_t ud_free(void *ud) { (void)ud; return 0; }

void graft_h5__drop_pages(const uint8_t *p, size_t size)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + size) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

hid_t graft_h5__open_image(const uint8_t *p, size_t size, bool writable, graft_ctx *ctx)
{
    H5FD_file_image_callbacks_t cb = {img_malloc, img_memcpy, img_realloc, img_free,
                                      ud_copy,    ud_free,    &image};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = H5I_INVALID_HID;
    image.p = (uint8_t *)p;
    image.size = size;
    graft_h5__doing("opening the file");
    /* The core driver checks that no file of the image's name exists
     * (open() is refused here, which says as much). */
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 ||
        H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        H5Pset_file_image(fapl, image.p, image.size) < 0) {
        graft_h5__fail(ctx, GRAFT_ERROR, "HDF5 image of %zu bytes", size);
    } else {
        f = H5Fopen("graft-hdf5-image", writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
        if (f < 0) graft_h5__fail(ctx, GRAFT_ECORRUPT, "not a readable HDF5 file");
    }
    if (fapl >= 0) H5Pclose(fapl);
    return f;
}

/* ---- records --------------------------------------------------------------- */

#ifdef GRAFT_H5_IN_PROCESS
/* Measurement builds only (meson -Dhdf5_in_process=true, bench/h5_sandbox.sh):
 * the job runs in this process and its records go straight to the caller. */
static struct {
    graft_h5_record_fn fn;
    void *arg;
    int rc;
} direct;
#endif

int graft_h5__put(int fd, uint8_t kind, const void *p, size_t n)
{
    uint8_t head[5] = {kind};
    const uint8_t *b = p;
#ifdef GRAFT_H5_IN_PROCESS
    if (direct.fn) {
        if (direct.rc == GRAFT_OK) direct.rc = direct.fn(direct.arg, kind, p, n);
        return direct.rc < 0 ? -1 : 0;
    }
#endif
    if (n > UINT32_MAX) return -1;
    graft_put_le32(head + 1, (uint32_t)n);
    for (size_t done = 0, k; done < 5; done += k)
        if ((k = (size_t)write(fd, head + done, 5 - done)) == (size_t)-1) return -1;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

int graft_h5__put_error(int fd, const graft_ctx *ctx)
{
    const char *msg = graft_ctx_message(ctx);
    uint8_t buf[4 + GRAFT_MSG_MAX];
    size_t n = strlen(msg) > GRAFT_MSG_MAX ? GRAFT_MSG_MAX : strlen(msg);
    graft_put_le32(buf, (uint32_t)graft_ctx_status(ctx));
    memcpy(buf + 4, msg, n);
    return graft_h5__put(fd, 'E', buf, 4 + n);
}

#ifdef GRAFT_H5_IN_PROCESS
/* Close what a job left open (a child would just exit), objects first. */
static void close_all(void)
{
    static const unsigned kinds[] = {H5F_OBJ_ATTR, H5F_OBJ_DATASET, H5F_OBJ_GROUP,
                                     H5F_OBJ_DATATYPE, H5F_OBJ_FILE};
    hid_t ids[64];
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        ssize_t n;
        while ((n = H5Fget_obj_ids(H5F_OBJ_ALL, kinds[k], 64, ids)) > 0)
            for (ssize_t i = 0; i < n; i++)
                if (H5Idec_ref(ids[i]) < 0) return;
    }
    H5Eclear2(H5E_DEFAULT);
}

int graft_h5__sandbox(graft_h5_child_fn child, void *carg, const graft_h5_budget *budget,
                      graft_h5_record_fn fn, void *arg, graft_ctx *ctx)
{
    int rc;
    (void)budget;
    direct.fn = fn;
    direct.arg = arg;
    direct.rc = GRAFT_OK;
    rc = child(carg, -1, ctx);
    close_all();
    direct.fn = NULL;
    return direct.rc < 0 ? direct.rc : rc;
}
#else
/* ---- confinement ----------------------------------------------------------- */

#ifdef HAVE_SECCOMP
#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#else
#define ARCH AUDIT_ARCH_AARCH64
#endif
#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/* Reading, memory, signals, time, exiting; write() only to fd (not even
 * stderr: a sanitizer's report of libhdf5's own bug would break the
 * one-line error).  Anything else fails with EPERM. */
static int seccomp_confine(int fd)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        ALLOW(__NR_read), ALLOW(__NR_pread64), ALLOW(__NR_readv), ALLOW(__NR_lseek),
        ALLOW(__NR_fstat), ALLOW(__NR_newfstatat), ALLOW(__NR_mmap), ALLOW(__NR_munmap),
        ALLOW(__NR_mremap), ALLOW(__NR_madvise), ALLOW(__NR_mprotect), ALLOW(__NR_brk),
        ALLOW(__NR_close), ALLOW(__NR_futex), ALLOW(__NR_clock_gettime), ALLOW(__NR_getrandom),
        ALLOW(__NR_getpid), ALLOW(__NR_gettid), ALLOW(__NR_tgkill), ALLOW(__NR_rt_sigprocmask),
        ALLOW(__NR_rt_sigreturn), ALLOW(__NR_rt_sigaction), ALLOW(__NR_sigaltstack),
        ALLOW(__NR_sched_yield), ALLOW(__NR_exit),
        ALLOW(__NR_exit_group),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)fd, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof *f), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}
#endif

/* Bytes of address space this process has now (it may add the budget). */
static uint64_t vm_bytes(void)
{
    char buf[64] = {0};
    unsigned long long pages = 0;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, buf, sizeof buf - 1) > 0) sscanf(buf, "%llu", &pages);
        close(fd);
    }
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void confine(int fd, uint64_t job_bytes, unsigned cpu)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE};
    struct rlimit as, t = {cpu, cpu + 1};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
    as.rlim_cur = as.rlim_max = vm_bytes() + BASE_BUDGET + job_bytes;
    setrlimit(RLIMIT_AS, &as);
    setrlimit(RLIMIT_CPU, &t);
#ifdef HAVE_SECCOMP
    /* A kernel built without seccomp filters (EINVAL, ENOSYS) leaves the
     * resource limits alone, as on other systems; any other failure to
     * confine stops the child: libhdf5 never runs less confined than that. */
    if (seccomp_confine(fd) < 0 && errno != EINVAL && errno != ENOSYS) _exit(4);
#else
    (void)fd;
#endif
}

/* ---- the runner ------------------------------------------------------------- */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGSYS: return "SIGSYS (a forbidden system call)";
    default: return NULL;
    }
}

typedef struct reader {
    uint8_t head[5];
    size_t have;          /* bytes of head, then of payload */
    uint32_t len;
    uint8_t kind;
    uint8_t *payload;     /* malloc, len bytes */
    bool error;           /* an 'E' record came */
} reader;

/* Feed n bytes of the pipe through the record parser. */
static int feed(reader *r, const uint8_t *p, size_t n, graft_h5_record_fn fn, void *arg,
                graft_ctx *ctx)
{
    while (n) {
        if (r->have < 5) {
            size_t k = 5 - r->have < n ? 5 - r->have : n;
            memcpy(r->head + r->have, p, k);
            r->have += k, p += k, n -= k;
            if (r->have < 5) break;
            r->kind = r->head[0];
            r->len = graft_le32(r->head + 1);
            if (r->len > (64u << 20))
                return graft_error(ctx, GRAFT_ECORRUPT, "libhdf5 child: a record of %u bytes",
                                   r->len);
            free(r->payload);
            if (!(r->payload = graft_malloc(ctx, r->len ? r->len : 1)))
                return graft_error_oom(ctx, "a record from the libhdf5 child");
        }
        size_t k = r->len - (r->have - 5) < n ? r->len - (r->have - 5) : n;
        memcpy(r->payload + (r->have - 5), p, k);
        r->have += k, p += k, n -= k;
        if (r->have - 5 < r->len) continue;
        r->have = 0;
        if (r->kind == 'E') {
            char msg[GRAFT_MSG_MAX + 1];
            size_t m = r->len > 4 ? r->len - 4 : 0;
            if (m > GRAFT_MSG_MAX) m = GRAFT_MSG_MAX;
            memcpy(msg, r->payload + 4, m);
            msg[m] = '\0';
            r->error = true;
            int code = r->len >= 4 ? (int32_t)graft_le32(r->payload) : GRAFT_ERROR;
            return graft_error(ctx, code < 0 ? code : GRAFT_ERROR, "%s", msg);
        }
        GRAFT_TRY(fn(arg, r->kind, r->payload, r->len));
    }
    return GRAFT_OK;
}

int graft_h5__sandbox(graft_h5_child_fn child, void *carg, const graft_h5_budget *budget,
                      graft_h5_record_fn fn, void *arg, graft_ctx *ctx)
{
    static const graft_h5_budget none = {0, 0, 0};
    const graft_h5_budget *b = budget ? budget : &none;
    int pfd[2] = {-1, -1}, status = 0, rc = GRAFT_OK;
    bool silent = false;        /* no answer past the wall-clock limit */
    unsigned cpu, wall;
    char *page = MAP_FAILED;
    reader rd = {0};
    uint8_t buf[1 << 16];
    pid_t pid;

    graft_h5__limits(b, &cpu, &wall);
    page = mmap(NULL, CRUMB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED || pipe2(pfd, O_CLOEXEC) < 0) {
        rc = graft_error(ctx, GRAFT_EIO, "cannot start the libhdf5 child: %s", strerror(errno));
        goto cleanup;
    }
    strcpy(page, "starting");
    pid = fork();
    if (pid < 0) {
        rc = graft_error(ctx, GRAFT_EIO, "cannot start the libhdf5 child: %s", strerror(errno));
        goto cleanup;
    }
    if (pid == 0) {
        close(pfd[0]);
        crumb = page;
        confine(pfd[1], b->mem, cpu);
        int r = child(carg, pfd[1], ctx);
        if (r < 0 && graft_h5__put_error(pfd[1], ctx) < 0) _exit(3);
        _exit(0);
    }
    close(pfd[1]);
    pfd[1] = -1;
    for (;;) {
        /* a child asleep (not spinning: RLIMIT_CPU ends that) is stopped too */
        struct pollfd p = {pfd[0], POLLIN, 0};
        int k = poll(&p, 1, (int)wall * 1000);
        if (k == 0) {
            kill(pid, SIGKILL);
            silent = true;
            break;
        }
        if (k < 0 && errno == EINTR) continue;
        ssize_t n = read(pfd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (rc == GRAFT_OK) rc = feed(&rd, buf, (size_t)n, fn, arg, ctx);
        if (rc < 0 && !rd.error) { /* the caller gave up: stop the child */
            kill(pid, SIGKILL);
            break;
        }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (rd.error || rc < 0) goto cleanup; /* the child's own error, or the caller's */
    if (silent || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || rd.have) {
        char what[96];
        const char *s = WIFSIGNALED(status) ? signal_name(WTERMSIG(status)) : NULL;
        page[CRUMB_BYTES - 1] = '\0';
        if (silent)
            snprintf(what, sizeof what, "timed out after %u s without an answer", wall);
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
            snprintf(what, sizeof what, "timed out after %u s of CPU time", cpu);
        else if (s)
            snprintf(what, sizeof what, "%s", s);
        else if (WIFSIGNALED(status))
            snprintf(what, sizeof what, "signal %d", WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            snprintf(what, sizeof what, "exit status %d", WEXITSTATUS(status));
        else
            snprintf(what, sizeof what, "a cut-off answer");
        rc = graft_error(ctx, GRAFT_ECORRUPT, "libhdf5 failed on this file (%s while %s); the file "
                         "is malformed or hostile", what, page);
    }
cleanup:
    free(rd.payload);
    if (pfd[0] >= 0) close(pfd[0]);
    if (pfd[1] >= 0) close(pfd[1]);
    if (page != MAP_FAILED) munmap(page, CRUMB_BYTES);
    return rc;
}
#endif
