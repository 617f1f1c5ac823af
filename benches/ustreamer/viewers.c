/*
 * MJPEG viewers for the side-by-side benchmark: N connections to one stream URL, served by
 * one epoll loop in one process, the same for every server measured.
 *
 *   viewers HOST PORT PATH N WARMUP_S MEASURE_S SERVER_PID
 *
 * Each connection sends one GET, reads the response head, then the body, chunked or not,
 * and counts the multipart parts whose Content-Length worth of JPEG arrived. Body bytes are
 * skipped, never copied. A part's capture time is read from camfleet's
 * `X-Capture-Timestamp` (microseconds, wall clock) or ustreamer's
 * `X-UStreamer-Grab-Time...` (seconds, monotonic clock, with `?extra_headers=1`); the
 * latency is the time from then to the part's last byte arriving.
 *
 * After WARMUP_S seconds it samples the server's CPU time, counts for MEASURE_S seconds,
 * samples again, and prints one line of key=value figures.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192

enum chunk_state { CHUNK_SIZE, CHUNK_DATA, CHUNK_END };

struct viewer {
    int fd;
    int in_response_body; /* the HTTP response head has been read */
    int chunked;
    enum chunk_state cstate;
    uint64_t chunk_left;
    char line[32];
    size_t line_len;
    /* the multipart layer */
    char head[HEAD_MAX];
    size_t head_len;
    int64_t body_left; /* -1: reading part headers */
    int64_t part_size;
    double captured_s; /* capture time of the part being read, 0 if unknown */
    int captured_monotonic;
    uint64_t frames;
    uint64_t bytes;
};

static int measuring;
static double *latencies;
static size_t latencies_len, latencies_cap;

static double now_s(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void part_done(struct viewer *v) {
    if (!measuring)
        return;
    v->frames++;
    v->bytes += (uint64_t)v->part_size;
    if (v->captured_s > 0) {
        double now = now_s(v->captured_monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME);
        if (latencies_len == latencies_cap) {
            latencies_cap = latencies_cap ? latencies_cap * 2 : 4096;
            latencies = realloc(latencies, latencies_cap * sizeof *latencies);
            if (!latencies)
                die("realloc");
        }
        latencies[latencies_len++] = (now - v->captured_s) * 1000.0;
    }
}

/* Reads one part's headers once their blank line has arrived. */
static void part_headers(struct viewer *v) {
    v->body_left = -1;
    v->captured_s = 0;
    for (char *line = v->head; line && *line; line = strstr(line, "\r\n")) {
        while (*line == '\r' || *line == '\n')
            line++;
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            v->body_left = v->part_size = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "X-Capture-Timestamp:", 20) == 0) {
            v->captured_s = (double)strtoull(line + 20, NULL, 10) / 1e6;
            v->captured_monotonic = 0;
        } else if (strncasecmp(line, "X-UStreamer-Grab-Time", 21) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                v->captured_s = strtod(colon + 1, NULL);
                v->captured_monotonic = 1;
            }
        }
    }
    v->head_len = 0;
}

/* Adds one byte to the head being read (`what` names it in the error); true once the
 * blank line that ends it has arrived. */
static int head_byte(struct viewer *v, char c, const char *what) {
    if (v->head_len >= HEAD_MAX - 1) {
        fprintf(stderr, "viewers: %s exceeds %d bytes\n", what, HEAD_MAX);
        exit(1);
    }
    v->head[v->head_len++] = c;
    v->head[v->head_len] = 0;
    size_t l = v->head_len;
    return l >= 4 && memcmp(v->head + l - 4, "\r\n\r\n", 4) == 0;
}

/* The multipart layer: part headers, then Content-Length bytes of JPEG, skipped. */
static void body_bytes(struct viewer *v, const char *p, size_t n) {
    while (n > 0) {
        if (v->body_left >= 0) {
            size_t take = (uint64_t)v->body_left < n ? (size_t)v->body_left : n;
            v->body_left -= (int64_t)take;
            p += take;
            n -= take;
            if (v->body_left == 0) {
                v->body_left = -1;
                part_done(v);
            }
            continue;
        }
        n--;
        if (head_byte(v, *p++, "a part's headers"))
            part_headers(v);
    }
}

/* The chunked transfer layer, if the response uses it. */
static void response_bytes(struct viewer *v, const char *p, size_t n) {
    if (!v->chunked) {
        body_bytes(v, p, n);
        return;
    }
    while (n > 0) {
        switch (v->cstate) {
        case CHUNK_SIZE:
            if (*p == '\n') {
                v->line[v->line_len] = 0;
                v->chunk_left = strtoull(v->line, NULL, 16);
                v->line_len = 0;
                v->cstate = v->chunk_left ? CHUNK_DATA : CHUNK_END;
            } else if (*p != '\r' && v->line_len < sizeof v->line - 1) {
                v->line[v->line_len++] = *p;
            }
            p++;
            n--;
            break;
        case CHUNK_DATA: {
            size_t take = v->chunk_left < n ? (size_t)v->chunk_left : n;
            body_bytes(v, p, take);
            v->chunk_left -= take;
            p += take;
            n -= take;
            if (v->chunk_left == 0)
                v->cstate = CHUNK_END;
            break;
        }
        case CHUNK_END:
            /* the CRLF after a chunk's data */
            if (*p == '\n')
                v->cstate = CHUNK_SIZE;
            p++;
            n--;
            break;
        }
    }
}

static void received(struct viewer *v, const char *p, size_t n) {
    if (v->in_response_body) {
        response_bytes(v, p, n);
        return;
    }
    while (n > 0 && !v->in_response_body) {
        n--;
        if (head_byte(v, *p++, "the response head")) {
            if (strncmp(v->head + 8, " 200", 4) != 0) {
                fprintf(stderr, "viewers: the server answered: %.*s\n",
                        (int)(strchr(v->head, '\r') - v->head), v->head);
                exit(1);
            }
            v->chunked = strcasestr(v->head, "Transfer-Encoding: chunked") != NULL;
            v->in_response_body = 1;
            v->head_len = 0;
        }
    }
    if (n > 0)
        response_bytes(v, p, n);
}

static double server_cpu_s(int pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die(path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    /* after the name: state, then 10 fields, then utime and stime */
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                     &stime) != 2) {
        fprintf(stderr, "viewers: cannot read %s\n", path);
        exit(1);
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static long server_rss_kb(int pid, const char *field) {
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die(path);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtol(line + strlen(field), NULL, 10);
    fclose(f);
    return kb;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double p) {
    if (n == 0)
        return -1;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: viewers HOST PORT PATH N WARMUP_S MEASURE_S SERVER_PID\n");
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]), count = atoi(argv[4]), pid = atoi(argv[7]);
    double warmup = atof(argv[5]), measure = atof(argv[6]);
    struct viewer *viewers = calloc((size_t)count, sizeof *viewers);
    int ep = epoll_create1(0);
    if (!viewers || ep < 0)
        die("setup");
    char request[1024];
    int request_len = snprintf(request, sizeof request,
                               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: viewers\r\n\r\n",
                               path, host, port);
    for (int i = 0; i < count; i++) {
        struct viewer *v = &viewers[i];
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, host, &addr.sin_addr);
        v->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (v->fd < 0 || connect(v->fd, (struct sockaddr *)&addr, sizeof addr) != 0)
            die("connect");
        if (write(v->fd, request, (size_t)request_len) != request_len)
            die("write");
        fcntl(v->fd, F_SETFL, O_NONBLOCK);
        v->body_left = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = v};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, v->fd, &ev) != 0)
            die("epoll_ctl");
    }
    static char buf[1 << 18];
    double start = now_s(CLOCK_MONOTONIC);
    double window_start = start + warmup, window_end = window_start + measure;
    double cpu_start = 0, cpu_end = 0;
    struct epoll_event events[256];
    for (;;) {
        double now = now_s(CLOCK_MONOTONIC);
        if (!measuring && now >= window_start) {
            measuring = 1;
            cpu_start = server_cpu_s(pid);
            for (int i = 0; i < count; i++)
                viewers[i].frames = viewers[i].bytes = 0;
        }
        if (measuring && now >= window_end) {
            cpu_end = server_cpu_s(pid);
            break;
        }
        double until = measuring ? window_end : window_start;
        int timeout = (int)((until - now) * 1000) + 1;
        int n = epoll_wait(ep, events, 256, timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct viewer *v = events[i].data.ptr;
            for (;;) {
                ssize_t got = read(v->fd, buf, sizeof buf);
                if (got > 0) {
                    received(v, buf, (size_t)got);
                    continue;
                }
                if (got == 0) {
                    fprintf(stderr, "viewers: the server closed a stream\n");
                    exit(1);
                }
                if (errno == EAGAIN || errno == EINTR)
                    break;
                die("read");
            }
        }
    }
    double *fps = malloc((size_t)count * sizeof *fps);
    uint64_t frames = 0, bytes = 0;
    for (int i = 0; i < count; i++) {
        fps[i] = (double)viewers[i].frames / measure;
        frames += viewers[i].frames;
        bytes += viewers[i].bytes;
    }
    qsort(fps, (size_t)count, sizeof *fps, cmp_double);
    qsort(latencies, latencies_len, sizeof *latencies, cmp_double);
    double cpu_ms = (cpu_end - cpu_start) * 1000.0;
    printf("frames=%llu bytes=%llu cpu_ms=%.0f cpu_ms_per_frame=%.3f fps_min=%.2f "
           "fps_median=%.2f latency_p50_ms=%.1f latency_p99_ms=%.1f rss_mib=%.1f "
           "rss_peak_mib=%.1f\n",
           (unsigned long long)frames, (unsigned long long)bytes, cpu_ms,
           frames ? cpu_ms / (double)frames : -1.0, fps[0], fps[count / 2],
           percentile(latencies, latencies_len, 0.50),
           percentile(latencies, latencies_len, 0.99),
           (double)server_rss_kb(pid, "VmRSS:") / 1024.0,
           (double)server_rss_kb(pid, "VmHWM:") / 1024.0);
    return 0;
}
