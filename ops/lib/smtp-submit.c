/* The SMTP submission client of ops/bench (built there with cc): SESSIONS persistent sessions, one thread
 * each with blocking sockets, each sending one message after another (one recipient, the same ~1 KB text as
 * ops/lib/bench.py's MESSAGE) for SECONDS; AUTH PLAIN first when a user is given, nothing else differs. No
 * PIPELINING: every command waits for its reply, as smtp-source does. It costs the shared cores a few
 * microseconds per message, where Python's smtplib cost ~0.5 ms (a quarter of the machine in that run).
 *
 *   smtp-submit PORT SESSIONS SECONDS LABEL [USER PASSWORD]
 *
 * Every session connects and logs in first; the SECONDS of sending start when all have (a login is a
 * deliberately slow password hash: Herald's scrypt costs ~0.1 s of a core, so 64 logins inside the measured
 * seconds measured the logins, not the messages). With HERALD_BENCH_READY=FILE, FILE is created then, so
 * that whoever measures the machine's CPU can start at that moment too.
 *
 * Prints the logins' time, "<label>: N messages/s accepted (…)", the latency from MAIL to the final dot's
 * 250, then "RESULT <accepted> <refused> <p99 ms>". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *message =
    "From: app@bench.example\r\nTo: user@example.org\r\nSubject: Your code\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nCode: 123456\r\n";

static int port;
static double seconds;
static const char *user, *password;
static char body[2048];
static pthread_barrier_t ready;
static double start, stop;

struct session {
    pthread_t thread;
    double *latencies;
    size_t count, capacity;
    long refused;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Reads one reply (all its lines); answers its code, or -1 when the connection failed. */
static int reply(int fd, char *buffer, size_t size, size_t *used) {
    for (;;) {
        /* A complete reply: its last line is "NNN " (not "NNN-") and ends with CRLF. */
        char *start = buffer;
        char *end;
        while ((end = memmem(start, *used - (start - buffer), "\r\n", 2)) != NULL) {
            if (end - start >= 3 && (end - start == 3 || start[3] == ' ')) {
                int code = atoi(start);
                size_t rest = *used - (end + 2 - buffer);
                memmove(buffer, end + 2, rest);
                *used = rest;
                return code;
            }
            start = end + 2;
        }
        if (*used == size) return -1;
        ssize_t n = read(fd, buffer + *used, size - *used);
        if (n <= 0) return -1;
        *used += (size_t)n;
    }
}

static int command(int fd, const char *text, size_t length, char *buffer, size_t size, size_t *used) {
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n <= 0) return -1;
        text += n;
        length -= (size_t)n;
    }
    return reply(fd, buffer, size, used);
}

static void base64(const unsigned char *in, size_t length, char *out) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < length; i += 3) {
        unsigned v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
        out[o++] = table[v >> 18 & 63]; out[o++] = table[v >> 12 & 63]; out[o++] = table[v >> 6 & 63]; out[o++] = table[v & 63];
    }
    if (i < length) {
        unsigned v = in[i] << 16 | (i + 1 < length ? in[i + 1] << 8 : 0);
        out[o++] = table[v >> 18 & 63]; out[o++] = table[v >> 12 & 63];
        out[o++] = i + 1 < length ? table[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

/* Connects and logs in; answers the socket, or -1. */
static int open_session(char *buffer, size_t size, size_t *used) {
    char line[1024];
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0 || reply(fd, buffer, size, used) != 220) goto failed;
    if (command(fd, "EHLO client.bench.example\r\n", 27, buffer, size, used) != 250) goto failed;
    if (user) {
        unsigned char plain[512];
        size_t u = strlen(user), p = strlen(password);
        if (u + p + 2 > sizeof plain) goto failed;
        plain[0] = 0;
        memcpy(plain + 1, user, u);
        plain[u + 1] = 0;
        memcpy(plain + u + 2, password, p);
        char encoded[700];
        base64(plain, u + p + 2, encoded);
        int n = snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", encoded);
        if (command(fd, line, (size_t)n, buffer, size, used) != 235) goto failed;
    }
    return fd;
failed:
    fprintf(stderr, "a session failed before sending\n");
    close(fd);
    return -1;
}

static void *run(void *argument) {
    struct session *s = argument;
    char buffer[8192];
    size_t used = 0;
    int fd = open_session(buffer, sizeof buffer, &used);
    if (fd < 0) s->refused++;
    /* All sessions start sending together, once every one has logged in (or failed to). */
    if (pthread_barrier_wait(&ready) == PTHREAD_BARRIER_SERIAL_THREAD) {
        const char *file = getenv("HERALD_BENCH_READY");
        if (file) fclose(fopen(file, "w"));
        start = now();
        stop = start + seconds;
    }
    pthread_barrier_wait(&ready);
    if (fd < 0) return NULL;
    while (now() < stop) {
        double started = now();
        int code = command(fd, "MAIL FROM:<app@bench.example>\r\n", 31, buffer, sizeof buffer, &used);
        if (code == 250) code = command(fd, "RCPT TO:<user@example.org>\r\n", 28, buffer, sizeof buffer, &used);
        if (code == 250) code = command(fd, "DATA\r\n", 6, buffer, sizeof buffer, &used);
        if (code == 354) code = command(fd, body, strlen(body), buffer, sizeof buffer, &used);
        if (code < 0) { s->refused++; break; }
        if (code != 250) {
            s->refused++;
            if (command(fd, "RSET\r\n", 6, buffer, sizeof buffer, &used) != 250) break;
            continue;
        }
        if (s->count == s->capacity) {
            s->capacity = s->capacity ? s->capacity * 2 : 1024;
            s->latencies = realloc(s->latencies, s->capacity * sizeof(double));
        }
        s->latencies[s->count++] = now() - started;
    }
    command(fd, "QUIT\r\n", 6, buffer, sizeof buffer, &used);
    close(fd);
    return NULL;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: smtp-submit PORT SESSIONS SECONDS LABEL [USER PASSWORD]\n");
        return 2;
    }
    port = atoi(argv[1]);
    int sessions = atoi(argv[2]);
    seconds = atof(argv[3]);
    const char *label = argv[4];
    if (argc == 7) { user = argv[5]; password = argv[6]; }
    /* The text, "x" * 900, and the final dot, as ops/lib/bench.py's MESSAGE sends them. */
    size_t length = strlen(message);
    memcpy(body, message, length);
    memset(body + length, 'x', 900);
    memcpy(body + length + 900, "\r\n.\r\n", 6);
    struct session *all = calloc((size_t)sessions, sizeof *all);
    pthread_barrier_init(&ready, NULL, (unsigned)sessions);
    double began = now();
    for (int i = 0; i < sessions; i++) pthread_create(&all[i].thread, NULL, run, &all[i]);
    size_t total = 0;
    long refused = 0;
    for (int i = 0; i < sessions; i++) {
        pthread_join(all[i].thread, NULL);
        total += all[i].count;
        refused += all[i].refused;
    }
    printf("  (%d sessions connected%s in %.2f s before the %g s of sending)\n", sessions, user ? " and logged in" : "", start - began, seconds);
    if (total == 0) {
        printf("%s: no message was accepted (%ld refused)\nRESULT 0 %ld 0\n", label, refused, refused);
        return 1;
    }
    double *latencies = malloc(total * sizeof(double));
    size_t k = 0;
    for (int i = 0; i < sessions; i++)
        for (size_t j = 0; j < all[i].count; j++) latencies[k++] = all[i].latencies[j];
    qsort(latencies, total, sizeof(double), compare);
    double p50 = latencies[total / 2] * 1000, p99 = latencies[(size_t)(total * 0.99)] * 1000;
    printf("%s: %.0f messages/s accepted (%zu in %g s, %ld refused)\n", label, total / seconds, total, seconds, refused);
    printf("  latency (MAIL to the final 250) p50 %.1f ms, p99 %.1f ms\n", p50, p99);
    printf("RESULT %zu %ld %.1f\n", total, refused, p99);
    return 0;
}
