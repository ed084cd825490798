/* rategen: a constant-rate HTTP/1.1 load generator (wrk2's model), single-threaded, epoll.
 *
 * Request i is scheduled at t0 + i / rate; latency is measured from the scheduled time, not
 * from the send, so a stalled server cannot hide its queueing delay (coordinated omission).
 * Each of `connections` keep-alive connections carries one request at a time; a request whose
 * time has come is sent on a free connection, or, if none is free, as soon as one frees (a
 * "late start", as is one sent more than 1 ms after its time). The wait between sends is an
 * epoll_pwait2 timeout in nanoseconds (Linux 5.11+; else an absolute CLOCK_MONOTONIC timerfd in
 * the epoll set): no busy polling, no millisecond rounding.
 *
 *   rategen HOST PORT RATE DURATION_S CONNECTIONS REQUEST_FILE EXPECT_HEX [LATENCY_FILE]
 *
 * REQUEST_FILE: pre-built raw requests, each framed as "<decimal length>\n<bytes>"; they are
 * sent in order and cycled if fewer than RATE * DURATION. EXPECT_HEX: bytes (hex, may be empty)
 * that must occur in a 200 answer's body, else it counts as bad_body. LATENCY_FILE: every
 * latency in seconds as native float64, in completion order. Prints one JSON object on stdout.
 * Responses must carry Content-Length (chunked answers are counted as errors).
 *
 *   gcc -O2 -o rategen rategen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LATE_NS 1000000LL   /* a send later than this after its time is a late start */
#define GRACE_NS 30000000000LL /* how long in-flight answers are awaited after the last send */

typedef struct {
    const char *data;
    size_t len;
} request_t;

enum { C_CONNECTING, C_IDLE, C_BUSY };

typedef struct {
    int fd;
    int state;
    int64_t scheduled; /* of the request in flight */
    const char *out;   /* unsent part of the request in flight */
    size_t out_left;
    char *in;
    size_t in_len, in_cap;
    int want_out; /* EPOLLOUT registered */
} conn_t;

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static int g_ep;
static conn_t *g_conns;
static int *g_free; /* stack of idle connection indices */
static int g_nfree;
static double *g_lat;
static long g_nlat, g_sent, g_bad_status, g_bad_body, g_errors, g_late, g_inflight;
static unsigned char *g_expect;
static size_t g_expect_len;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void set_events(int i, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = (uint32_t)i};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, g_conns[i].fd, &ev) < 0) die("epoll_ctl mod");
    g_conns[i].want_out = out;
}

static void open_conn(int i, int blocking) {
    conn_t *c = &g_conns[i];
    int fd = socket(g_addr.ss_family, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->in_len = 0;
    c->out_left = 0;
    int r = connect(fd, (struct sockaddr *)&g_addr, g_addrlen);
    if (blocking) {
        if (r < 0) die("connect");
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    } else if (r < 0 && errno != EINPROGRESS) {
        die("connect");
    }
    struct epoll_event ev = {.events = EPOLLIN | (blocking ? 0 : EPOLLOUT), .data.u32 = (uint32_t)i};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
    c->want_out = !blocking;
    if (blocking) {
        c->state = C_IDLE;
        g_free[g_nfree++] = i;
    } else {
        c->state = C_CONNECTING;
    }
}

/* drop a broken connection (the request in flight, if any, is an error) and dial again */
static void reconnect(int i) {
    conn_t *c = &g_conns[i];
    if (c->state == C_BUSY) {
        g_errors++;
        g_inflight--;
    } else if (c->state == C_IDLE) { /* remove it from the free stack */
        for (int k = 0; k < g_nfree; k++)
            if (g_free[k] == i) {
                g_free[k] = g_free[--g_nfree];
                break;
            }
    }
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    open_conn(i, 0);
}

static void flush_out(int i) {
    conn_t *c = &g_conns[i];
    while (c->out_left) {
        ssize_t n = send(c->fd, c->out, c->out_left, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            reconnect(i);
            return;
        }
        c->out += n;
        c->out_left -= (size_t)n;
    }
    if ((c->out_left != 0) != c->want_out) set_events(i, c->out_left != 0);
}

static void dispatch(const request_t *req, int64_t scheduled, int64_t now, int waited) {
    int i = g_free[--g_nfree];
    conn_t *c = &g_conns[i];
    if (waited || now - scheduled > LATE_NS) g_late++;
    c->state = C_BUSY;
    c->scheduled = scheduled;
    c->out = req->data;
    c->out_left = req->len;
    g_inflight++;
    flush_out(i);
}

/* a whole answer in c->in? returns its length (consumed), 0 if incomplete, -1 if unusable */
static long parse(conn_t *c, int *status, const char **body, size_t *body_len) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - c->in) + 4;
    if (head < 12 || memcmp(c->in, "HTTP/1.", 7) != 0) return -1;
    *status = (c->in[9] - '0') * 100 + (c->in[10] - '0') * 10 + (c->in[11] - '0');
    size_t length = 0;
    char *line = memchr(c->in, '\n', head) + 1;
    while (line < c->in + head - 2) {
        char *eol = memchr(line, '\n', (size_t)(c->in + head - line));
        if (!eol) break;
        size_t ll = (size_t)(eol - line);
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            length = strtoul(line + 15, NULL, 10);
        } else if (ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0 &&
                   memmem(line, ll, "chunked", 7)) {
            return -1;
        }
        line = eol + 1;
    }
    if (c->in_len < head + length) {
        if (head + length > c->in_cap) {
            c->in_cap = head + length;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in) die("realloc");
        }
        return 0;
    }
    *body = c->in + head;
    *body_len = length;
    return (long)(head + length);
}

static void on_readable(int i) {
    conn_t *c = &g_conns[i];
    for (;;) {
        if (c->in_len == c->in_cap) {
            c->in_cap *= 2;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in) die("realloc");
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            reconnect(i);
            return;
        }
        if (n == 0) { /* closed by the server */
            reconnect(i);
            return;
        }
        c->in_len += (size_t)n;
        if (c->in_len < c->in_cap) break; /* drained */
    }
    if (c->state != C_BUSY) { /* bytes nobody asked for */
        reconnect(i);
        return;
    }
    int status;
    const char *body;
    size_t body_len;
    long used = parse(c, &status, &body, &body_len);
    if (used == 0) return;
    if (used < 0) {
        reconnect(i);
        return;
    }
    g_lat[g_nlat++] = (double)(now_ns() - c->scheduled) / 1e9;
    g_sent++;
    g_inflight--;
    if (status != 200)
        g_bad_status++;
    else if (g_expect_len && !memmem(body, body_len, g_expect, g_expect_len))
        g_bad_body++;
    memmove(c->in, c->in + used, c->in_len - (size_t)used);
    c->in_len -= (size_t)used;
    c->state = C_IDLE;
    g_free[g_nfree++] = i;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, long n, double q) {
    if (n == 0) return 0.0;
    long k = (long)(q / 100.0 * (double)(n - 1) + 0.5);
    if (k > n - 1) k = n - 1;
    return sorted[k];
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 8 || argc > 9) {
        fprintf(stderr,
                "usage: %s HOST PORT RATE DURATION_S CONNECTIONS REQUEST_FILE EXPECT_HEX "
                "[LATENCY_FILE]\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    double rate = atof(argv[3]), duration = atof(argv[4]);
    int nconn = atoi(argv[5]);
    if (rate <= 0 || duration <= 0 || nconn <= 0) {
        fprintf(stderr, "rate, duration and connections must be positive\n");
        return 2;
    }
    long total = (long)(rate * duration);

    /* expect bytes */
    size_t hl = strlen(argv[7]);
    if (hl % 2) {
        fprintf(stderr, "EXPECT_HEX must have an even number of digits\n");
        return 2;
    }
    g_expect_len = hl / 2;
    g_expect = malloc(g_expect_len + 1);
    for (size_t k = 0; k < g_expect_len; k++) {
        int a = hexval(argv[7][2 * k]), b = hexval(argv[7][2 * k + 1]);
        if (a < 0 || b < 0) {
            fprintf(stderr, "EXPECT_HEX is not hex\n");
            return 2;
        }
        g_expect[k] = (unsigned char)(a * 16 + b);
    }

    /* the request file, read whole */
    FILE *f = fopen(argv[6], "rb");
    if (!f) die(argv[6]);
    fseek(f, 0, SEEK_END);
    long fsize = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *file = malloc((size_t)fsize + 1);
    if (fsize && fread(file, 1, (size_t)fsize, f) != (size_t)fsize) die("fread");
    fclose(f);
    long nreq = 0, capreq = 1024;
    request_t *reqs = malloc(sizeof *reqs * (size_t)capreq);
    for (long pos = 0; pos < fsize;) {
        char *nl = memchr(file + pos, '\n', (size_t)(fsize - pos));
        if (!nl) break;
        size_t len = strtoul(file + pos, NULL, 10);
        pos = nl - file + 1;
        if (len == 0 || pos + (long)len > fsize) {
            fprintf(stderr, "bad framing in %s\n", argv[6]);
            return 2;
        }
        if (nreq == capreq) reqs = realloc(reqs, sizeof *reqs * (size_t)(capreq *= 2));
        reqs[nreq].data = file + pos;
        reqs[nreq++].len = len;
        pos += (long)len;
    }
    if (nreq == 0) {
        fprintf(stderr, "no requests in %s\n", argv[6]);
        return 2;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "%s: %s\n", host, gai_strerror(gai));
        return 2;
    }
    memcpy(&g_addr, ai->ai_addr, ai->ai_addrlen);
    g_addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake up on time, not up to 50 us late */
    g_ep = epoll_create1(0);
    if (g_ep < 0) die("epoll_create1");
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (tfd < 0) die("timerfd_create");
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, tfd, &tev) < 0) die("epoll_ctl timer");

    g_conns = calloc((size_t)nconn, sizeof *g_conns);
    g_free = malloc(sizeof *g_free * (size_t)nconn);
    g_lat = malloc(sizeof *g_lat * (size_t)(total + 1));
    /* every connection is open before the clock starts: connecting is not the server's latency */
    for (int i = 0; i < nconn; i++) {
        g_conns[i].in_cap = 65536;
        g_conns[i].in = malloc(g_conns[i].in_cap);
        open_conn(i, 1);
    }

    const int64_t t0 = now_ns() + 100000000LL;
    const double interval = 1e9 / rate;
    long next = 0;
    int have_pwait2 = 1;
    int waited = 0;             /* request `next` came due while no connection was free */
    int64_t armed = -1;         /* when the timer is set to fire */
    int64_t give_up = 0;        /* set once everything is sent */
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_ns();
        /* send everything that is due, while connections are free */
        while (next < total) {
            int64_t sched = t0 + (int64_t)((double)next * interval);
            if (sched > now) break;
            if (g_nfree == 0) {
                waited = 1;
                break;
            }
            dispatch(&reqs[next % nreq], sched, now, waited);
            waited = 0;
            next++;
            now = now_ns();
        }
        if (next >= total) {
            if (g_inflight == 0) break;
            if (!give_up) give_up = now + GRACE_NS;
            if (now >= give_up) {
                g_errors += g_inflight; /* never answered */
                break;
            }
        }
        /* sleep until the next send is due (only if a connection is free to make it) */
        int64_t wake = -1;
        if (next < total && g_nfree > 0)
            wake = t0 + (int64_t)((double)next * interval);
        else if (next >= total)
            wake = give_up;
        int n = -1;
#ifdef SYS_epoll_pwait2
        if (have_pwait2) { /* a nanosecond timeout: two system calls fewer than the timerfd */
            struct timespec ts = {0, 0};
            int64_t left = wake - now_ns();
            if (left > 0) {
                ts.tv_sec = left / 1000000000LL;
                ts.tv_nsec = left % 1000000000LL;
            }
            n = (int)syscall(SYS_epoll_pwait2, g_ep, evs, 256, wake > 0 ? &ts : NULL, NULL, 8);
            if (n < 0 && errno == ENOSYS) {
                have_pwait2 = 0; /* an older kernel: the timerfd from now on */
                continue;
            }
        } else
#endif
        {
            if (wake != armed) {
                struct itimerspec its = {0};
                if (wake > 0) {
                    its.it_value.tv_sec = wake / 1000000000LL;
                    its.it_value.tv_nsec = wake % 1000000000LL;
                }
                if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
                armed = wake;
            }
            n = epoll_wait(g_ep, evs, 256, -1);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            uint32_t i = evs[k].data.u32;
            if (i == UINT32_MAX) {
                uint64_t expirations;
                ssize_t r = read(tfd, &expirations, sizeof expirations);
                (void)r;
                armed = -1;
                continue;
            }
            conn_t *c = &g_conns[i];
            if (c->state == C_CONNECTING) {
                if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
                    g_errors++;
                    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    usleep(1000); /* do not spin on a refused connection */
                    open_conn((int)i, 0);
                    continue;
                }
                if (evs[k].events & EPOLLOUT) {
                    c->state = C_IDLE;
                    set_events((int)i, 0);
                    g_free[g_nfree++] = (int)i;
                }
                continue;
            }
            if ((evs[k].events & EPOLLOUT) && c->state == C_BUSY && c->out_left) {
                flush_out((int)i);
                if (c->state != C_BUSY) continue; /* it broke */
            }
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable((int)i);
        }
    }

    if (argc == 9) {
        FILE *lf = fopen(argv[8], "wb");
        if (!lf) die(argv[8]);
        if (g_nlat && fwrite(g_lat, sizeof *g_lat, (size_t)g_nlat, lf) != (size_t)g_nlat)
            die("fwrite");
        fclose(lf);
    }
    qsort(g_lat, (size_t)g_nlat, sizeof *g_lat, cmp_double);
    printf("{\"rate\": %.3f, \"duration_s\": %.6f, \"sent\": %ld, \"p50_ms\": %.3f, "
           "\"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"bad_status\": %ld, "
           "\"bad_body\": %ld, \"errors\": %ld, \"late_starts\": %ld}\n",
           rate, (double)total / rate, g_sent, pct(g_lat, g_nlat, 50) * 1e3,
           pct(g_lat, g_nlat, 90) * 1e3, pct(g_lat, g_nlat, 99) * 1e3,
           g_nlat ? g_lat[g_nlat - 1] * 1e3 : 0.0, g_bad_status, g_bad_body, g_errors, g_late);
    return 0;
}
