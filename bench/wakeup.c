// What waking an idle core costs on this machine: one-byte round trips over two pipes between
// a thread on core 1 and an echo thread on core 0. With `1` as the first argument, a
// SCHED_IDLE thread spins on core 0 so that core never halts while the echo thread sleeps;
// the difference between the two runs is the price of one wake-up of a halted core.
//
//   cc -O2 -pthread bench/wakeup.c -o /tmp/wakeup && /tmp/wakeup 0 && /tmp/wakeup 1
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUND_TRIPS 20000

static int to_echo[2], from_echo[2];
static volatile int stop;

static void pin(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *echo(void *unused) {
    char byte;
    pin(0);
    while (read(to_echo[0], &byte, 1) == 1 && byte != 'q') {
        if (write(from_echo[1], &byte, 1) != 1) break;
    }
    return unused;
}

static void *spin(void *unused) {
    struct sched_param param = {0};
    pin(0);
    sched_setscheduler(0, SCHED_IDLE, &param);
    while (!stop) __builtin_ia32_pause();
    return unused;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    static double took[ROUND_TRIPS];
    int spinning = argc > 1 && atoi(argv[1]);
    pthread_t echo_thread, spin_thread;
    char byte = 'x';
    if (pipe(to_echo) || pipe(from_echo)) return 1;
    pthread_create(&echo_thread, NULL, echo, NULL);
    if (spinning) pthread_create(&spin_thread, NULL, spin, NULL);
    pin(1);
    for (int i = 0; i < ROUND_TRIPS; i++) {
        double start = now_us();
        if (write(to_echo[1], &byte, 1) != 1 || read(from_echo[0], &byte, 1) != 1) return 1;
        took[i] = now_us() - start;
    }
    qsort(took, ROUND_TRIPS, sizeof took[0], by_value);
    printf("core 0 %s: round trip p50 %.1f us, p90 %.1f us, p99 %.1f us\n",
           spinning ? "kept busy" : "left to halt", took[ROUND_TRIPS / 2],
           took[ROUND_TRIPS * 9 / 10], took[ROUND_TRIPS * 99 / 100]);
    byte = 'q';
    stop = 1;
    return write(to_echo[1], &byte, 1) != 1;
}
