/* A small HTTP service that limits each client IP with libcellgate: plain POSIX sockets, a
 * thread per connection (at most ACTIVE_MAX), one request per connection.
 *
 *   server [-t HEAD_TIMEOUT_MS] [-c CONNECTIONS_PER_CLIENT] ADDRESS PORT RATE [MAX_CLIENTS]
 *   server 127.0.0.1 0 "5/second"        port 0: the system picks a free one
 *
 * It prints "listening on http://ADDRESS:PORT/" on stdout once it accepts connections, and
 * stops on SIGINT or SIGTERM. Every request (any path but /stats) costs 1 for its client's IP
 * (IPv6 clients by /56, IPv4-mapped addresses as IPv4) on one cg_limiter: admitted, it answers
 * 200 with the IETF RateLimit and RateLimit-Policy headers; refused, 429 with Retry-After, the
 * same headers and core's JSON body {"error":"rate_limited","retry_after":N}. A full table (no
 * room for a new client among MAX_CLIENTS, none evicted) is a refusal like any other, with
 * reason table_full: the same 429, headers and body, Retry-After saying when a slot can be
 * reclaimed. GET /stats answers the table's counters.
 *
 * Slow and idle clients (slowloris): the whole request head must arrive within
 * HEAD_TIMEOUT_MS of the accept (default 5000), else the connection is answered 408 and
 * closed; trickling one byte at a time does not extend it. One client IP holds at most
 * CONNECTIONS_PER_CLIENT connections at once (default 8); more are answered 503 at once
 * without a thread, so one client cannot take the ACTIVE_MAX threads from the others. (Many
 * addresses at once can still fill ACTIVE_MAX: that is a job for a proxy or firewall in
 * front.)
 *
 * Build: cc -std=c11 -pthread server.c $(pkg-config --cflags --libs cellgate) -o server */
#define _POSIX_C_SOURCE 200809L
#include <cellgate.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 8192
#define HEADERS_MAX 1024
/* Connections served at once (one thread each); more are answered 503 by the accepting
 * thread. */
#define ACTIVE_MAX 256
/* How often a connection waiting for its head looks at `stopping`. */
#define POLL_SLICE_MS 100

static cg_limiter *limiter;
/* Connections held per client IP, counted by a second keyed limiter used as a semaphore:
 * its quota is CONNECTIONS_PER_CLIENT per CONNECTIONS_PER_CLIENT years, so a slot comes back
 * by itself only after a year; a check takes a slot, a refund gives it back. Lock-free, and
 * an idle client's key is reclaimed once all its slots are back. */
static cg_keyed_limiter *connections;
static long head_timeout_ms = 5000;
static unsigned long connections_per_client = 8;
/* Set by SIGINT/SIGTERM, read by every thread (a lock-free atomic is signal-safe). */
static atomic_int stopping = 0;
/* Connections being served: the limiters are freed once none is left. */
static atomic_int active = 0;

static void on_signal(int signal) {
    (void)signal;
    atomic_store(&stopping, 1);
}

static long long monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Writes all of `data`, retrying short writes. */
static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends a complete response: status line, `extra` header lines (each ending in CRLF), and
 * the body. */
static void respond(int fd, const char *status, const char *content_type, const char *extra,
                    size_t extra_len, const char *body, size_t body_len) {
    char head[HEADERS_MAX + 256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%.*s\r\n",
                     status, content_type, body_len, (int)extra_len, extra);
    if (n < 0 || (size_t)n >= sizeof head) return;
    if (write_all(fd, head, (size_t)n) == 0) write_all(fd, body, body_len);
}

/* The client's limiter key: its IP address (not the port), as libcellgate encodes it. */
static int client_key(const struct sockaddr_storage *peer, uint8_t *key, size_t *key_len) {
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)peer;
        return cg_client_key_from_ip((const uint8_t *)&v4->sin_addr, 4, 0, key,
                                     CG_CLIENT_KEY_MAX_LEN, key_len) == CG_STATUS_OK ? 0 : -1;
    }
    if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)peer;
        return cg_client_key_from_ip((const uint8_t *)&v6->sin6_addr, 16, 0, key,
                                     CG_CLIENT_KEY_MAX_LEN, key_len) == CG_STATUS_OK ? 0 : -1;
    }
    return -1;
}

struct connection {
    int fd;
    /* The client's limiter key (its IP), and when it was accepted. */
    uint8_t key[CG_CLIENT_KEY_MAX_LEN];
    size_t key_len;
    long long accepted_ms;
};

/* Reads the request head (up to the blank line; bodies are ignored) into `request`, NUL-
 * terminated, within head_timeout_ms of the accept: the deadline is for the whole head, so a
 * client trickling bytes cannot hold the connection longer. Returns 1 with the head, 0 when
 * the client closed or sent more than fits (the caller answers what it got), -1 when the
 * deadline passed or the server is stopping. */
static int read_head(const struct connection *connection, char *request, size_t size) {
    size_t used = 0;
    request[0] = '\0';
    long long deadline_ms = connection->accepted_ms + head_timeout_ms;
    while (used < size - 1) {
        long long left_ms = deadline_ms - monotonic_ms();
        if (left_ms <= 0 || atomic_load(&stopping)) return -1;
        struct pollfd ready = {connection->fd, POLLIN, 0};
        int polled = poll(&ready, 1, left_ms < POLL_SLICE_MS ? (int)left_ms : POLL_SLICE_MS);
        if (polled < 0 && errno != EINTR) return 0;
        if (polled <= 0) continue;
        ssize_t n = read(connection->fd, request + used, size - 1 - used);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return 0;
        used += (size_t)n;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n") != NULL) return 1;
    }
    return 0;
}

static void serve_stats(int fd) {
    cg_keyed_stats stats;
    size_t count = 0;
    char body[256];
    if (cg_limiter_stats(limiter, &stats, 1, &count) != CG_STATUS_OK) return;
    int n = snprintf(body, sizeof body,
                     "{\"live_keys\":%llu,\"reclaimed\":%llu,\"rejected_full\":%llu,"
                     "\"admitted_untracked\":%llu,\"slot_count\":%llu}\n",
                     (unsigned long long)stats.live_keys, (unsigned long long)stats.reclaimed,
                     (unsigned long long)stats.rejected_full,
                     (unsigned long long)stats.admitted_untracked,
                     (unsigned long long)stats.slot_count);
    respond(fd, "200 OK", "application/json", "", 0, body, (size_t)n);
}

static void *serve(void *arg) {
    struct connection *connection = arg;
    int fd = connection->fd;
    char request[REQUEST_MAX];
    if (read_head(connection, request, sizeof request) < 0) {
        static const char body[] = "request head not received in time\n";
        respond(fd, "408 Request Timeout", "text/plain", "", 0, body, sizeof body - 1);
        goto done;
    }
    char method[16] = "", path[1024] = "";
    if (sscanf(request, "%15s %1023s", method, path) != 2) {
        static const char body[] = "bad request\n";
        respond(fd, "400 Bad Request", "text/plain", "", 0, body, sizeof body - 1);
        goto done;
    }
    if (strcmp(path, "/stats") == 0) {
        serve_stats(fd);
        goto done;
    }

    /* One decision per request, a full table's included (reason CG_REASON_TABLE_FULL: a
     * denial like any other). */
    cg_limiter_decision decision;
    cg_status status = cg_limiter_check(limiter, connection->key, connection->key_len, CG_NOW,
                                        NULL, 0, &decision);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "check failed: %s\n", cg_status_message(status));
        static const char body[] = "internal error\n";
        respond(fd, "500 Internal Server Error", "text/plain", "", 0, body, sizeof body - 1);
        goto done;
    }

    /* The rate-limit headers, on 200 and 429 alike. */
    char headers[HEADERS_MAX];
    size_t headers_len = 0;
    if (cg_limiter_render_headers(limiter, &decision, CG_HEADER_STYLE_IETF, 0, headers,
                                  sizeof headers, &headers_len) != CG_STATUS_OK)
        headers_len = 0;
    if (decision.allowed) {
        static const char body[] = "hello\n";
        respond(fd, "200 OK", "text/plain", headers, headers_len, body, sizeof body - 1);
    } else {
        char body[CG_MAX_429_BODY_BYTES];
        size_t body_len = 0;
        if (cg_limiter_render_429_body(limiter, &decision, body, sizeof body, &body_len) !=
            CG_STATUS_OK)
            body_len = 0;
        respond(fd, "429 Too Many Requests", "application/json", headers, headers_len, body,
                body_len);
    }
done:
    close(fd);
    /* Give the client's connection slot back. */
    cg_keyed_limiter_refund(connections, connection->key, connection->key_len, CG_NOW, 1, NULL);
    free(connection);
    atomic_fetch_sub(&active, 1);
    return NULL;
}

/* Answers 503 with Retry-After: 1 from the accepting thread, and closes. */
static void refuse(int fd, const char *reason) {
    char busy[256];
    int n = snprintf(busy, sizeof busy,
                     "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(reason), reason);
    if (n > 0 && (size_t)n < sizeof busy) write_all(fd, busy, (size_t)n);
    close(fd);
}

/* Listens on ADDRESS:PORT (IPv4 or IPv6); returns the socket, or -1. */
static int listen_on(const char *address, const char *port) {
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    int error = getaddrinfo(address, port, &hints, &found);
    if (error != 0) {
        fprintf(stderr, "%s: %s\n", address, gai_strerror(error));
        return -1;
    }
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        perror("listen");
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}

/* A whole decimal number in min..max, or -1. */
static long long parse_number(const char *text, long long min, long long max) {
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) return -1;
    return value;
}

static int usage(const char *program) {
    fprintf(stderr,
            "usage: %s [-t HEAD_TIMEOUT_MS] [-c CONNECTIONS_PER_CLIENT] ADDRESS PORT RATE "
            "[MAX_CLIENTS]\n"
            "  e.g. %s 127.0.0.1 8080 \"100/minute\"\n"
            "  -t  the whole request head must arrive within this (default 5000 ms)\n"
            "  -c  connections one client IP may hold at once (default 8, at most %d)\n",
            program, program, ACTIVE_MAX);
    return 2;
}

int main(int argc, char **argv) {
    const char *program = argv[0];
    int option;
    while ((option = getopt(argc, argv, "t:c:")) != -1) {
        long long value;
        if (option == 't' && (value = parse_number(optarg, 1, 3600 * 1000)) > 0) {
            head_timeout_ms = (long)value;
        } else if (option == 'c' && (value = parse_number(optarg, 1, ACTIVE_MAX)) > 0) {
            connections_per_client = (unsigned long)value;
        } else {
            return usage(program);
        }
    }
    /* The positional arguments as argv[1..]. */
    argc -= optind - 1;
    argv += optind - 1;
    if (argc < 4 || argc > 5) return usage(program);
    size_t offset = 0;
    cg_limiter_quota per_ip = {{0, 0, 0}, NULL, 0, 0}; /* NULL: the default name, "5-in-10s" */
    cg_status status = cg_quota_parse(argv[3], CG_NUL_TERMINATED, &per_ip.quota, &offset);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "rate \"%s\": %s (at byte %zu)\n", argv[3], cg_status_message(status),
                offset);
        return 2;
    }
    long long max_clients = argc == 5 ? parse_number(argv[4], 1, LLONG_MAX) : 100000;
    if (max_clients < 0) return usage(program);
    cg_limiter_options options;
    cg_limiter_options_init(&options);
    options.max_keys = (size_t)max_clients;
    status = cg_limiter_new(&per_ip, 1, &options, &limiter);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "limiter: %s\n", cg_status_message(status));
        return 1;
    }
    /* The connection slots: N per N years (a slot per year comes back by itself), burst N.
     * At most ACTIVE_MAX clients hold a connection at once; 4 times that many keys keeps
     * CG_STATUS_TABLE_FULL away (it begins near 70 % of max_keys live). This one stays a
     * keyed limiter: it counts connections, and its refusal is the 503 below, not a rate
     * limit. */
    cg_quota slots;
    status = cg_quota_new(connections_per_client,
                          connections_per_client * 365 * CG_NS_PER_DAY, connections_per_client,
                          &slots);
    if (status == CG_STATUS_OK)
        status = cg_keyed_limiter_new(slots, CG_REFILL_GREEDY, 4 * ACTIVE_MAX, NULL, &connections);
    if (status != CG_STATUS_OK) {
        fprintf(stderr, "connection slots: %s\n", cg_status_message(status));
        cg_limiter_free(limiter);
        return 1;
    }

    int listener = listen_on(argv[1], argv[2]);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    char host[INET6_ADDRSTRLEN + 2] = "", port[16] = "";
    if (listener < 0 || getsockname(listener, (struct sockaddr *)&bound, &bound_len) != 0 ||
        getnameinfo((struct sockaddr *)&bound, bound_len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        if (listener >= 0) {
            perror("getsockname");
            close(listener);
        }
        cg_keyed_limiter_free(connections);
        cg_limiter_free(limiter);
        return 1;
    }
    /* SIGINT/SIGTERM interrupt accept() (no SA_RESTART) and stop the loop. They are blocked
     * in the connection threads (which inherit the mask they are created with), so that they
     * always reach the accepting thread; those threads see `stopping` within POLL_SLICE_MS. */
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals, accept_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    printf("listening on http://%s%s%s:%s/ (%s per client IP, library %s)\n",
           bound.ss_family == AF_INET6 ? "[" : "", host, bound.ss_family == AF_INET6 ? "]" : "",
           port, argv[3], cg_version());
    fflush(stdout);

    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    while (!atomic_load(&stopping)) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept(listener, (struct sockaddr *)&peer, &peer_len);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("accept");
            break;
        }
        /* A client that does not read its answer cannot hold its thread either. */
        struct timeval send_timeout = {head_timeout_ms / 1000, (head_timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
        struct connection *connection = malloc(sizeof *connection);
        if (connection == NULL) {
            refuse(fd, "out of memory\n");
            continue;
        }
        connection->fd = fd;
        connection->accepted_ms = monotonic_ms();
        if (client_key(&peer, connection->key, &connection->key_len) != 0) {
            free(connection);
            refuse(fd, "unknown client address\n");
            continue;
        }
        if (atomic_load(&active) >= ACTIVE_MAX) {
            free(connection);
            refuse(fd, "busy\n");
            continue;
        }
        /* One of this client's connection slots, or 503 now: no thread for it. */
        cg_decision slot;
        if (cg_keyed_limiter_check(connections, connection->key, connection->key_len, CG_NOW, 1,
                                   &slot) != CG_STATUS_OK ||
            !slot.allowed) {
            free(connection);
            refuse(fd, "too many connections from this client\n");
            continue;
        }
        pthread_t thread;
        atomic_fetch_add(&active, 1);
        pthread_sigmask(SIG_BLOCK, &stop_signals, &accept_mask);
        int created = pthread_create(&thread, &detached, serve, connection);
        pthread_sigmask(SIG_SETMASK, &accept_mask, NULL);
        if (created != 0) {
            atomic_fetch_sub(&active, 1);
            cg_keyed_limiter_refund(connections, connection->key, connection->key_len, CG_NOW, 1,
                                    NULL);
            free(connection);
            refuse(fd, "busy\n");
        }
    }
    pthread_attr_destroy(&detached);
    close(listener);
    /* Drain: connections being served still use the limiters (one waiting for its head gives
     * up within POLL_SLICE_MS of `stopping`; one writing, within the send timeout), then free
     * them. */
    for (int waited_ms = 0; atomic_load(&active) > 0 && waited_ms < 10000; waited_ms += 10) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (atomic_load(&active) == 0) {
        cg_keyed_limiter_free(connections);
        cg_limiter_free(limiter);
    }
    fprintf(stderr, "stopped\n");
    return 0;
}
