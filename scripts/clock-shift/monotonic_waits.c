/*
 * Preloaded before libfaketime by scripts/test-clock-shift.sh only (test tooling, never shipped).
 *
 * libfaketime 0.9.10 (Debian 12) with FAKETIME_DONT_FAKE_MONOTONIC=1 (wall clock shifted, monotonic
 * clock real) gets three kinds of deadline wrong, so timed waits fail or never end:
 * - clock_nanosleep on the monotonic clock: it shifts the deadline, so Python 3.11's time.sleep fails
 *   with EINVAL (wolfcw/libfaketime#426). Here: straight to glibc (the deadline is already real).
 * - pthread_cond_timedwait on a CLOCK_MONOTONIC condvar: same (fixed upstream, libfaketime#503).
 *   Here: straight to glibc for monotonic condvars, through libfaketime for wall-clock ones.
 * - C11 cnd_timedwait (librdkafka's waits): not intercepted at all, so a deadline computed from the
 *   faked wall clock lies a year ahead and the wait never times out. Here: the deadline is moved back
 *   by the fake offset (faked wall clock - real wall clock) before glibc waits.
 *
 * Build: gcc -shared -fPIC -O2 -o monotonic_waits.so monotonic_waits.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

/* glibc >= 2.25 keeps a condvar's clock in bit 1 of __wrefs (nptl/pthread_cond_common.c). */
#define COND_CLOCK_MONOTONIC_MASK 2u

typedef int (*nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef int (*timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cnd_timedwait_fn)(cnd_t *, mtx_t *, const struct timespec *);
typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static void *glibc(void) {
    static void *handle;
    if (handle == NULL) {
        handle = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    }
    if (handle == NULL) {
        abort(); /* libc is always loaded: anything else means a broken environment */
    }
    return handle;
}

static void *resolve(void *where, const char *name, const char *version) {
    void *symbol = version ? dlvsym(where, name, version) : dlsym(where, name);
    if (symbol == NULL) {
        abort();
    }
    return symbol;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remain) {
    static nanosleep_fn real, faked;
    if (clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME) {
        if (real == NULL) {
            real = (nanosleep_fn)resolve(glibc(), "clock_nanosleep", "GLIBC_2.17");
        }
        return real(clock, flags, request, remain);
    }
    if (faked == NULL) {
        faked = (nanosleep_fn)resolve(RTLD_NEXT, "clock_nanosleep", NULL);
    }
    return faked(clock, flags, request, remain);
}

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                           const struct timespec *deadline) {
    static timedwait_fn real, faked;
    if (cond->__data.__wrefs & COND_CLOCK_MONOTONIC_MASK) {
        if (real == NULL) {
            real = (timedwait_fn)resolve(glibc(), "pthread_cond_timedwait", "GLIBC_2.3.2");
        }
        return real(cond, mutex, deadline);
    }
    if (faked == NULL) {
        faked = (timedwait_fn)resolve(RTLD_NEXT, "pthread_cond_timedwait", NULL);
    }
    return faked(cond, mutex, deadline);
}

/* Faked wall clock (libfaketime, first in the lookup order) minus the real one, in nanoseconds. */
static long long fake_offset_ns(void) {
    static clock_gettime_fn real;
    struct timespec faked_now, real_now;
    if (real == NULL) {
        real = (clock_gettime_fn)resolve(glibc(), "clock_gettime", "GLIBC_2.17");
    }
    clock_gettime(CLOCK_REALTIME, &faked_now);
    real(CLOCK_REALTIME, &real_now);
    return (faked_now.tv_sec - real_now.tv_sec) * 1000000000LL + (faked_now.tv_nsec - real_now.tv_nsec);
}

int cnd_timedwait(cnd_t *cond, mtx_t *mutex, const struct timespec *deadline) {
    static cnd_timedwait_fn real;
    if (real == NULL) {
        real = (cnd_timedwait_fn)resolve(glibc(), "cnd_timedwait", "GLIBC_2.34");
    }
    long long at_ns = deadline->tv_sec * 1000000000LL + deadline->tv_nsec - fake_offset_ns();
    struct timespec real_deadline = {.tv_sec = at_ns / 1000000000LL, .tv_nsec = at_ns % 1000000000LL};
    if (real_deadline.tv_nsec < 0) {
        real_deadline.tv_sec -= 1;
        real_deadline.tv_nsec += 1000000000LL;
    }
    return real(cond, mutex, &real_deadline);
}
