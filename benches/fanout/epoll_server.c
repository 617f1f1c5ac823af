/*
 * The fan-out baseline: a plain single-threaded epoll MJPEG server in C.
 *
 *   epoll_server PORT FPS FRAME.jpg...
 *
 * Serves the given JPEG files in a ring at FPS frames a second, as
 * multipart/x-mixed-replace, to every connection. Each part (boundary, headers, JPEG and
 * the closing CRLF) is built once per frame into one buffer that every connection shares,
 * and goes out with one send() per connection; a connection that cannot take it all
 * finishes it on EPOLLOUT, then skips to the newest frame. The parts carry X-Frame-Seq and
 * X-Capture-Timestamp as camfleet's do, so the same client measures both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define BOUNDARY "camfleetframe"
#define MAX_CONNECTIONS 4096

struct part {
    int refs;
    size_t len;
    uint64_t seq;
    char bytes[];
};

struct connection {
    int fd;
    int streaming;       /* the request was read and the response head sent */
    struct part *part;   /* the part being sent, or NULL */
    size_t sent;         /* bytes of it sent so far */
    uint64_t last_seq;   /* the last part finished */
};

static struct connection *connections[MAX_CONNECTIONS];
static struct part *current;

static void release(struct part *p) {
    if (p && --p->refs == 0) free(p);
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static uint64_t now_micros(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static char *read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    struct stat st;
    if (fstat(fd, &st) < 0) die(path);
    char *data = malloc(st.st_size);
    if (!data || read(fd, data, st.st_size) != st.st_size) die(path);
    close(fd);
    *len = st.st_size;
    return data;
}

static void drop(int epoll, struct connection *c) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    release(c->part);
    connections[c->fd] = NULL;
    free(c);
}

/* Sends what is left of the connection's part, then starts the newest one if it has not
 * had it. Returns -1 when the connection is gone. */
static int pump(int epoll, struct connection *c) {
    for (;;) {
        if (!c->part) {
            if (!current || current->seq == c->last_seq) return 0;
            c->part = current;
            current->refs++;
            c->sent = 0;
        }
        ssize_t n = send(c->fd, c->part->bytes + c->sent, c->part->len - c->sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
                epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &ev);
                return 0;
            }
            return -1;
        }
        c->sent += (size_t)n;
        if (c->sent < c->part->len) continue;
        c->last_seq = c->part->seq;
        release(c->part);
        c->part = NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT FPS FRAME.jpg...\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int fps = atoi(argv[2]);
    int frames = argc - 3;
    char **jpeg = calloc(frames, sizeof *jpeg);
    size_t *jpeg_len = calloc(frames, sizeof *jpeg_len);
    for (int i = 0; i < frames; i++) jpeg[i] = read_file(argv[3 + i], &jpeg_len[i]);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(listener, 1024) < 0) die("listen");

    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    long interval_ns = 1000000000L / fps;
    struct itimerspec spec = {.it_interval = {0, interval_ns}, .it_value = {0, interval_ns}};
    timerfd_settime(timer, 0, &spec, NULL);

    int epoll = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &ev);
    ev.data.fd = timer;
    epoll_ctl(epoll, EPOLL_CTL_ADD, timer, &ev);

    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; "
                               "boundary=" BOUNDARY "\r\nCache-Control: no-cache\r\n\r\n";
    uint64_t seq = 0;
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epoll, events, 256, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                for (;;) {
                    int conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                    if (conn < 0) break;
                    if (conn >= MAX_CONNECTIONS) {
                        close(conn);
                        continue;
                    }
                    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct connection *c = calloc(1, sizeof *c);
                    c->fd = conn;
                    connections[conn] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = conn};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, conn, &cev);
                }
            } else if (fd == timer) {
                uint64_t ticks;
                if (read(timer, &ticks, sizeof ticks) != sizeof ticks) continue;
                seq++;
                size_t len = jpeg_len[seq % frames];
                char header[256];
                int header_len = snprintf(header, sizeof header,
                                          "--" BOUNDARY "\r\nContent-Type: image/jpeg\r\n"
                                          "Content-Length: %zu\r\nX-Frame-Seq: %llu\r\n"
                                          "X-Capture-Timestamp: %llu\r\n\r\n",
                                          len, (unsigned long long)seq,
                                          (unsigned long long)now_micros());
                struct part *p = malloc(sizeof *p + header_len + len + 2);
                p->refs = 1;
                p->seq = seq;
                p->len = header_len + len + 2;
                memcpy(p->bytes, header, header_len);
                memcpy(p->bytes + header_len, jpeg[seq % frames], len);
                memcpy(p->bytes + header_len + len, "\r\n", 2);
                release(current);
                current = p;
                for (int f = 0; f < MAX_CONNECTIONS; f++) {
                    struct connection *c = connections[f];
                    if (c && c->streaming && !c->part && pump(epoll, c) < 0) drop(epoll, c);
                }
            } else {
                struct connection *c = connections[fd];
                if (!c) continue;
                if (events[i].events & EPOLLIN) {
                    char request[4096];
                    ssize_t got = recv(fd, request, sizeof request, MSG_DONTWAIT);
                    if (got == 0 || (got < 0 && errno != EAGAIN)) {
                        drop(epoll, c);
                        continue;
                    }
                    if (!c->streaming && got > 0) {
                        /* One request per connection; its head is all the client sends. */
                        if (send(fd, head, sizeof head - 1, MSG_NOSIGNAL) != sizeof head - 1) {
                            drop(epoll, c);
                            continue;
                        }
                        c->streaming = 1;
                        c->last_seq = current ? current->seq : 0;
                    }
                }
                if ((events[i].events & EPOLLOUT) && c->streaming && pump(epoll, c) < 0)
                    drop(epoll, c);
            }
        }
    }
}
